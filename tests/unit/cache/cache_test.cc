// The result cache's pure parts: what may be cached (policy), keys and signed values (entry),
// and the tap that keeps an answer.
#include <gtest/gtest.h>

#include "cache/entry.h"
#include "cache/local.h"
#include "cache/policy.h"
#include "cache/redis/cluster.h"
#include "cache/tap.h"
#include "protocol/messages.h"
#include "routing/statement.h"

namespace pglane::cache {
namespace {

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";

const routing::FunctionCatalog& catalog() {
  static const routing::FunctionCatalog c = [] {
    routing::FunctionCatalog f;
    f.add("pg_catalog", "count", true, true);
    f.add("pg_catalog", "sum", true, true);
    f.add("pg_catalog", "lower", true, true);
    f.add("pg_catalog", "now", true, false);
    f.add("pg_catalog", "random", false, false);
    f.relations().set_loaded();
    f.relations().add_uncacheable("items_seq");
    f.relations().add_uncacheable("v_now");
    return f;
  }();
  return c;
}

Verdict verdict(std::string_view sql, std::vector<std::string> tables = {"items", "s.orders"}) {
  Rules rules;
  rules.tables = std::move(tables);
  return decide(routing::analyze_with_parser(sql), sql, rules, &catalog());
}

TEST(CachePolicy, PlainReadsOfListedTablesAreCached) {
  EXPECT_TRUE(verdict("SELECT name FROM items WHERE id = 5").cache);
  EXPECT_TRUE(verdict("SELECT count(*), sum(x) FROM items JOIN s.orders o USING (id)").cache);
  EXPECT_TRUE(verdict("select lower(name) from public.items").cache);
  EXPECT_EQ(verdict("SELECT 1 FROM items").ttl_ms, 30000);
}

TEST(CachePolicy, NeverCached) {
  for (const char* sql : {
           "SELECT now() FROM items",                                // stable function
           "SELECT random() FROM items",                             // volatile
           "SELECT my_fn(id) FROM items",                            // unknown function
           "SELECT * FROM items WHERE d > current_date",             // SQLValueFunction
           "SELECT current_user, id FROM items",                     // identity
           "SELECT * FROM items WHERE t > 'now'::timestamptz",       // clock literal
           "SELECT * FROM items WHERE t > E'\\x6eow'::timestamptz",  // escaped
           "SELECT * FROM items WHERE t > U&'n\\006Fw'::timestamptz",
           "SELECT last_value FROM items_seq",  // a sequence (catalog)
           "SELECT * FROM v_now",               // a view calling now()
           "SELECT * FROM items TABLESAMPLE SYSTEM (10)",
           "SELECT * FROM items FOR UPDATE",
           "SELECT * FROM items FOR SHARE",
           "SELECT * FROM pg_catalog.pg_class",
           "SELECT * FROM pg_stat_activity",
           "SELECT * FROM items; SELECT 1",  // two statements
           "SELECT 1",                       // no table
           "INSERT INTO items VALUES (1)",
           "WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d",
           "SHOW search_path",
           "EXPLAIN SELECT * FROM items",
           "SELECT * FROM other",     // not listed
           "SELECT * FROM t.orders",  // listed in another schema only
       }) {
    EXPECT_FALSE(verdict(sql).cache) << sql;
  }
  // Without the database's function catalog no function call is cached.
  Rules rules{{"items"}};
  const char* sql = "SELECT count(*) FROM items";
  EXPECT_FALSE(decide(routing::analyze_with_parser(sql), sql, rules, nullptr).cache);
}

TEST(CachePolicy, AutoModeCachesStatementsSeenOften) {
  Rules rules;
  const char* sql = "SELECT * FROM unlisted WHERE id = 1";
  const auto info = routing::analyze_with_parser(sql);
  Verdict v = decide(info, sql, rules, &catalog());
  EXPECT_FALSE(v.cache);
  EXPECT_EQ(v.why, kNoRule);
  EXPECT_TRUE(decide(info, sql, rules, &catalog(), true).cache);
  // Seen often or not, what may never be cached is not.
  const char* now = "SELECT now() FROM unlisted";
  EXPECT_FALSE(decide(routing::analyze_with_parser(now), now, rules, &catalog(), true).cache);
}

TEST(CachePolicy, ParametersThatReadTheClock) {
  EXPECT_TRUE(mentions_clock(std::string("B\0\0\0\x10\0\0\0\0\0\1\0\0\0\3NOW", 18)));
  EXPECT_TRUE(mentions_clock("...Today..."));
  EXPECT_FALSE(mentions_clock(std::string("B\0\0\0\x0e\0\0\0\0\0\1\0\0\0\0042", 16)));
}

TEST(CachePolicy, HintsCacheUnlistedTables) {
  EXPECT_EQ(cache_hint_ms("/* pglane: cache ttl=5s */ SELECT 1"), 5000);
  EXPECT_EQ(cache_hint_ms("/* pglane: cache ttl=250ms */SELECT 1"), 250);
  EXPECT_EQ(cache_hint_ms("/* pglane: cache ttl=2m */SELECT 1"), 120000);
  EXPECT_EQ(cache_hint_ms("/* pglane: cache */SELECT 1"), 0);
  EXPECT_EQ(cache_hint_ms("-- x\n/* other */ /* pglane: cache ttl=7 */ SELECT"), 7000);
  EXPECT_EQ(cache_hint_ms("SELECT 1 /* pglane: cache */"), std::nullopt);
  EXPECT_EQ(cache_hint_ms("/* pglane: cache ttl=soon */ SELECT 1"), std::nullopt);
  EXPECT_EQ(cache_hint_ms("/* pglane: route=reader */ SELECT 1"), std::nullopt);
  Verdict v = verdict("/* pglane: cache ttl=5s */ SELECT * FROM other", {});
  EXPECT_TRUE(v.cache);
  EXPECT_EQ(v.ttl_ms, 5000);
  Rules rules;
  rules.hints = false;
  const char* sql = "/* pglane: cache */ SELECT * FROM other";
  EXPECT_FALSE(decide(routing::analyze_with_parser(sql), sql, rules, &catalog()).cache);
  // The hint never makes an uncacheable statement cacheable.
  EXPECT_FALSE(verdict("/* pglane: cache */ SELECT now() FROM other", {}).cache);
  // A hint's ttl is capped.
  rules = Rules{};
  rules.max_ttl_ms = 1000;
  sql = "/* pglane: cache ttl=60s */ SELECT * FROM other";
  EXPECT_EQ(decide(routing::analyze_with_parser(sql), sql, rules, &catalog()).ttl_ms, 1000);
}

TEST(CacheKey, EverythingThatChangesAResultChangesTheKey) {
  SettingPairs startup = {{"search_path", "app"}};
  SettingPairs settings = {{"TimeZone", "UTC"}};
  KeyParts base{"db", "alice", &startup, &settings, "SELECT * FROM items"};
  const std::string k = result_key(base, kSecret);
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, result_key(base, kSecret));
  auto differs = [&](KeyParts p) { return result_key(p, kSecret) != k; };
  KeyParts p = base;
  p.database = "db2";
  EXPECT_TRUE(differs(p));
  p = base;
  p.user = "bob";
  EXPECT_TRUE(differs(p));
  p = base;
  p.sql = "SELECT * FROM items ";
  EXPECT_TRUE(differs(p));
  SettingPairs other = {{"TimeZone", "Europe/Paris"}};
  p = base;
  p.settings = &other;
  EXPECT_TRUE(differs(p));
  SettingPairs role = {{"TimeZone", "UTC"}, {"role", "reporting"}};
  p = base;
  p.settings = &role;
  EXPECT_TRUE(differs(p));
  // A setting moved between startup and SET is a different session state, and no
  // concatenation of names and values collides.
  SettingPairs a = {{"ab", "c"}};
  SettingPairs b = {{"a", "bc"}};
  p = base;
  p.settings = &a;
  KeyParts q = base;
  q.settings = &b;
  EXPECT_NE(result_key(p, kSecret), result_key(q, kSecret));
  EXPECT_NE(result_key(base, kSecret), result_key(base, "another secret of 32 bytes......."));
}

TEST(CacheEntry, SealedValuesOpenOnlyUnchangedUnderTheirKey) {
  Entry e;
  e.created_ms = 1767225600123;
  e.ttl_ms = 30000;
  e.creator = 0x0123456789abcdefULL;
  e.versions = {"a.1", "", "b.7"};
  e.payload = std::string("T\0\0\0\6\0\0", 7);
  const std::string v = seal(e, "pglane:{db:1}:c:ab", kSecret);
  auto back = open(v, "pglane:{db:1}:c:ab", kSecret);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->created_ms, e.created_ms);
  EXPECT_EQ(back->ttl_ms, e.ttl_ms);
  EXPECT_EQ(back->creator, e.creator);
  EXPECT_EQ(back->versions, e.versions);
  EXPECT_EQ(back->payload, e.payload);
  EXPECT_FALSE(open(v, "pglane:{db:1}:c:ac", kSecret));  // moved to another key
  EXPECT_FALSE(open(v, "pglane:{db:1}:c:ab", "x" + std::string(kSecret)));
  for (size_t i = 0; i < v.size(); ++i) {
    std::string bad = v;
    bad[i] ^= 1;
    EXPECT_FALSE(open(bad, "pglane:{db:1}:c:ab", kSecret)) << i;
  }
  EXPECT_FALSE(open(v.substr(0, v.size() - 1), "pglane:{db:1}:c:ab", kSecret));
  EXPECT_FALSE(open("", "k", kSecret));
}

TEST(CacheEntry, EncryptedValuesHideTheRowsAndOpenTheSame) {
  Entry e;
  e.created_ms = 5;
  e.versions = {"a.1"};
  e.payload = "D secret row bytes";
  const std::string v = seal(e, "k1", kSecret, true);
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.find("secret row"), std::string::npos);
  EXPECT_NE(seal(e, "k1", kSecret, true), v);  // a fresh nonce each time
  auto back = open(v, "k1", kSecret);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->payload, e.payload);
  EXPECT_EQ(back->versions, e.versions);
  EXPECT_FALSE(open(v, "k2", kSecret));
  for (size_t i = 0; i < v.size(); i += 7) {
    std::string bad = v;
    bad[i] ^= 0x20;
    EXPECT_FALSE(open(bad, "k1", kSecret)) << i;
  }
}

TEST(CacheEntry, KeysShareTheirDatabasesHashTag) {
  const std::string tag = database_tag("pglane", 0xabc);
  EXPECT_EQ(tag, "pglane:{db:abc}");
  EXPECT_EQ(version_key(tag, 0x12), "pglane:{db:abc}:v:12");
  EXPECT_EQ(database_version_key(tag), "pglane:{db:abc}:v:*");
  EXPECT_EQ(entry_key(tag, "ff"), "pglane:{db:abc}:c:ff");
}

std::string msg(char type, std::string_view body) {
  std::string out(1, type);
  const uint32_t len = static_cast<uint32_t>(body.size() + 4);
  out.push_back(static_cast<char>(len >> 24));
  out.push_back(static_cast<char>(len >> 16));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len));
  out.append(body);
  return out;
}

TEST(CacheTap, KeepsRowDescriptionRowsAndCompletion) {
  Tap t;
  t.start(1 << 20);
  const std::string T = msg('T', "xx"), D = msg('D', "row"),
                    C = msg('C', std::string("SELECT 2\0", 9));
  EXPECT_TRUE(t.wants_whole('D', 10));
  t.on_message('T', T);
  t.on_message('D', D);
  t.on_message('D', D);
  t.on_message('C', C);
  t.on_message('Z', msg('Z', "I"));
  ASSERT_TRUE(t.complete());
  EXPECT_EQ(t.take(), T + D + D + C);
  EXPECT_FALSE(t.active());
}

std::string cstr(std::string_view s) {
  return std::string(s) + '\0';
}

std::string parse(std::string_view name, std::string_view sql) {
  return msg('P', cstr(name) + cstr(sql) + std::string("\0\0", 2));
}
std::string bind(std::string_view portal, std::string_view stmt) {
  // no parameter formats, no parameters, no result formats
  return msg('B', cstr(portal) + cstr(stmt) + std::string(6, '\0'));
}
std::string describe(char kind, std::string_view name) {
  return msg('D', std::string(1, kind) + cstr(name));
}
std::string execute(std::string_view portal, uint32_t max_rows) {
  std::string b = cstr(portal);
  for (int i = 3; i >= 0; --i) {
    b.push_back(static_cast<char>(max_rows >> (8 * i)));
  }
  return msg('E', b);
}
const std::string kSync = msg('S', "");

TEST(CacheUnit, SimpleQueriesAndUnnamedExtendedUnits) {
  const std::string q = msg('Q', cstr("SELECT 1 FROM items"));
  EXPECT_EQ(cacheable_unit(q), "SELECT 1 FROM items");
  const std::string sql = "SELECT v FROM items WHERE id = $1";
  const std::string libpq =
      parse("", sql) + bind("", "") + describe('P', "") + execute("", 0) + kSync;
  EXPECT_EQ(cacheable_unit(libpq), sql);
  EXPECT_EQ(
      cacheable_unit(parse("", sql) + describe('S', "") + bind("", "") + execute("", 0) + kSync),
      sql);
  for (const std::string& bad : {
           q + q,                                                       // two units
           parse("s1", sql) + bind("", "s1") + execute("", 0) + kSync,  // named statement
           parse("", sql) + bind("p", "") + execute("p", 0) + kSync,    // named portal
           parse("", sql) + bind("", "") + execute("", 10) + kSync,     // a row limit
           bind("", "") + execute("", 0) + kSync,                       // parsed earlier
           parse("", sql) + bind("", "") + execute("", 0),              // no Sync
           parse("", sql) + bind("", "") + execute("", 0) + execute("", 0) + kSync,
           parse("", sql) + parse("", sql) + bind("", "") + execute("", 0) + kSync,
           parse("", sql) + bind("", "") + msg('H', "") + execute("", 0) + kSync,  // Flush
           parse("", sql) + bind("", "") + execute("", 0) + kSync + q,
           describe('S', "") + parse("", sql) + bind("", "") + execute("", 0) + kSync,
           parse("", sql) + describe('P', "") + bind("", "") + execute("", 0) + kSync,
           parse("", sql).substr(0, 7),
       }) {
    EXPECT_FALSE(cacheable_unit(bad)) << bad.size();
  }
}

TEST(CacheTap, KeepsAnExtendedUnitsAnswer) {
  Tap t;
  t.start(1 << 20);
  const std::string answer =
      msg('1', "") + msg('2', "") + msg('T', "xx") + msg('D', "r") + msg('C', cstr("SELECT 1"));
  for (size_t pos = 0; pos < answer.size();) {
    const uint32_t len = (uint8_t(answer[pos + 3]) << 8) | uint8_t(answer[pos + 4]);
    t.on_message(answer[pos], answer.substr(pos, len + 1));
    pos += len + 1;
  }
  t.on_message('Z', msg('Z', "I"));
  ASSERT_TRUE(t.complete());
  EXPECT_EQ(t.take(), answer);
}

TEST(CacheTap, AnythingElseSpoilsIt) {
  const std::string T = msg('T', "xx"), D = msg('D', "row"), C = msg('C', "SELECT 1");
  auto run = [&](std::vector<std::pair<char, std::string>> seq, size_t cap = 1 << 20) {
    Tap t;
    t.start(cap);
    for (auto& [type, m] : seq) {
      t.on_message(type, m);
    }
    return t.complete();
  };
  EXPECT_FALSE(run({{'E', msg('E', "x")}, {'Z', msg('Z', "I")}}));
  EXPECT_FALSE(run({{'1', msg('1', "")},
                    {'2', msg('2', "")},
                    {'s', msg('s', "")},
                    {'Z', msg('Z', "I")}}));  // PortalSuspended: a partial result
  EXPECT_FALSE(run({{'T', T}, {'N', msg('N', "x")}, {'C', C}, {'Z', msg('Z', "I")}}));
  EXPECT_FALSE(run({{'T', T}, {'C', C}, {'T', T}, {'C', C}, {'Z', msg('Z', "I")}}));
  EXPECT_FALSE(run({{'T', T}, {'C', C}, {'Z', msg('Z', "T")}}));  // inside a transaction
  EXPECT_FALSE(run({{'T', T}, {'D', D}, {'C', C}, {'Z', msg('Z', "I")}}, T.size() + 2));
  EXPECT_FALSE(run({{'I', msg('I', "")}, {'Z', msg('Z', "I")}}));
  Tap t;
  t.start(100);
  t.on_message('T', T);
  t.on_stream();  // a row too large to read whole
  t.on_message('C', C);
  t.on_message('Z', msg('Z', "I"));
  EXPECT_FALSE(t.complete());
}

TEST(CacheLocal, ExpiresAndEvictsLeastRecentlyUsedWithinItsBudget) {
  LocalCache c(4096);
  auto entry = [](size_t n, int64_t expires) {
    LocalEntry e;
    e.payload.assign(n, 'x');
    e.fresh_as_of = 1;
    e.expires = expires;
    return e;
  };
  for (const char* k : {"a", "b", "c", "d"}) {
    c.put(k, entry(700, 100));  // 958 bytes each with the key and bookkeeping
  }
  ASSERT_NE(c.find("a", 10), nullptr);  // a is now the most recently used
  c.put("e", entry(700, 100));          // over budget: b, the least recently used, goes
  EXPECT_EQ(c.find("b", 10), nullptr);
  EXPECT_NE(c.find("a", 10), nullptr);
  EXPECT_NE(c.find("e", 10), nullptr);
  EXPECT_LE(c.bytes(), 4096u);
  EXPECT_EQ(c.find("a", 100), nullptr);  // expired
  EXPECT_EQ(c.size(), 3u);
  c.put("huge", entry(2000, 100));  // more than a quarter of the budget: not kept
  EXPECT_EQ(c.find("huge", 10), nullptr);
  c.put("d", entry(10, 200));  // replaced
  EXPECT_EQ(c.find("d", 10)->payload.size(), 10u);
}

TEST(RedisCluster, KeySlotsFollowHashTags) {
  using redis::key_slot;
  EXPECT_EQ(key_slot("123456789"), 0x31C3);  // CRC16/XMODEM's check value
  EXPECT_EQ(key_slot("foo"), 12182);         // CLUSTER KEYSLOT foo
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("pglane:{db:ab}:v:1"), key_slot("other:{db:ab}:c:ff"));
  EXPECT_EQ(key_slot("{}x"), key_slot("{}x"));  // an empty tag hashes the whole key
  EXPECT_NE(key_slot("{}x"), key_slot("x"));
}

TEST(RedisCluster, RedirectsAreParsed) {
  redis::Reply moved;
  moved.type = redis::Reply::Type::kError;
  moved.str = "MOVED 3999 127.0.0.1:6381";
  auto d = redis::parse_redirect(moved);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->ask);
  EXPECT_EQ(d->slot, 3999);
  EXPECT_EQ(d->host, "127.0.0.1");
  EXPECT_EQ(d->port, 6381);
  redis::Reply ask = moved;
  ask.str = "ASK 1 [::1]:7000";
  d = redis::parse_redirect(ask);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->ask);
  EXPECT_EQ(d->host, "::1");
  for (const char* bad : {"MOVED", "MOVED 99999 h:1", "MOVED 1 h", "MOVED 1 h:0", "ERR x",
                          "MOVED x h:1", "ASK 1 :5"}) {
    redis::Reply r = moved;
    r.str = bad;
    EXPECT_FALSE(redis::parse_redirect(r)) << bad;
  }
  redis::Reply ok;
  ok.type = redis::Reply::Type::kStatus;
  ok.str = "MOVED 1 h:1";
  EXPECT_FALSE(redis::parse_redirect(ok));
}

}  // namespace
}  // namespace pglane::cache
