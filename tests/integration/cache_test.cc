// The result cache against the sandbox's primary, two streaming replicas and TLS Redis: hits are
// answered without a server, a write through any gateway retires the entries of its tables at
// once, entries are keyed by the session's settings, and a forged entry is never served.
#include <libpq-fe.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "cache/entry.h"
#include "cache/redis/cluster.h"
#include "gtest/gtest.h"
#include "routing/floors.h"
#include "tests/integration/failover_util.h"
#include "tests/integration/harness.h"
#include "tests/integration/own_redis.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kRead = "SELECT v FROM ca_items WHERE id = 1";

class ResultCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!sandbox_ready()) {
      return;
    }
    Conn d = connect_direct();
    exec_ok(
        d.get(),
        "DROP TABLE IF EXISTS ca_items, ca_other, ca_parent, ca_child, ca_src, ca_log, ca_kinds, "
        "ca_rls CASCADE;"
        "DROP ROLE IF EXISTS ca_reader;"
        "CREATE ROLE ca_reader;"
        "GRANT ca_reader TO pglane_app;"
        // Every kind of write (E29), and rows by tenant with a column grant (E27).
        "CREATE TABLE ca_kinds (id int PRIMARY KEY, v int);"
        "CREATE TABLE ca_rls (id int, tenant text, v int);"
        "INSERT INTO ca_rls VALUES (1, 'a', 10), (1, 'b', 20);"
        "ALTER TABLE ca_rls ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY by_tenant ON ca_rls USING (tenant = current_setting('app.tenant', true));"
        "GRANT SELECT (id, tenant) ON ca_rls TO ca_reader;"
        "GRANT ALL ON ca_kinds, ca_rls TO pglane_app;"
        "ALTER TABLE ca_kinds OWNER TO pglane_app;"  // (its DDL runs through pglane)
        "CREATE TABLE ca_items (id int PRIMARY KEY, v int);"
        "CREATE TABLE ca_other (id int PRIMARY KEY, v int);"
        "INSERT INTO ca_items VALUES (1, 0), (2, 0); INSERT INTO ca_other VALUES (1, 0);"
        "CREATE VIEW ca_view AS SELECT id, v * 10 AS v10 FROM ca_items;"
        // A cascading delete, and a trigger that writes another table.
        "CREATE TABLE ca_parent (id int PRIMARY KEY);"
        "CREATE TABLE ca_child (id int PRIMARY KEY, "
        "parent int REFERENCES ca_parent ON DELETE CASCADE);"
        "INSERT INTO ca_parent SELECT g FROM generate_series(1, 500) g;"
        "INSERT INTO ca_child SELECT g, g FROM generate_series(1, 500) g;"
        "CREATE TABLE ca_src (id serial PRIMARY KEY);"
        "CREATE TABLE ca_log (id int);"
        "CREATE FUNCTION ca_log_it() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO ca_log VALUES (NEW.id); RETURN NEW; END $$;"
        "CREATE TRIGGER ca_src_log AFTER INSERT ON ca_src FOR EACH ROW EXECUTE FUNCTION "
        "ca_log_it();"
        "GRANT ALL ON ca_items, ca_other, ca_view, ca_parent, ca_child, ca_src, ca_log, "
        "ca_src_id_seq TO pglane_app;");
    wait_function_replicated("pg_sleep");  // (any catalog read: the replicas are caught up)
  }
  void SetUp() override {
    prefix_ = "pgltest" + std::to_string(getpid()) + "_" + std::to_string(++round_);
    key_file_ = sandbox_dir() + "/cache-" + prefix_ + ".key";
    save_file(key_file_, "8f2a6c1e9b7d4f3a0c5e8b2d6f1a9c7e4b3d0f8a2c6e1b9d7f5a3c0e8b4d2f6a\n");
  }
  void TearDown() override { on_every_replica("SELECT pg_wal_replay_resume()"); }

  // `redis_port`: a Redis of the test's own instead of the sandbox's; `local_bytes`: the
  // in-process layer (0: every lookup goes to Redis).
  ProxySettings settings(int redis_port = 0, int local_bytes = 1 << 20,
                         const std::string& more_cache = "") const {
    ProxySettings s;
    s.pool_mode = "transaction";
    s.pool_size = 10;
    s.backend_tls_mode = "disable";
    for (const auto& port : replica_ports()) {
      s.readers.push_back("127.0.0.1:" + port);
    }
    s.extra_toml =
        "[health]\ninterval_ms = 100\n[routing]\nmax_replica_lag_ms = 3600000\n" +
        (redis_port == 0 ? redis_toml("pglane:test:floors:" + prefix_)
                         : "[redis]\nendpoint = \"127.0.0.1:" + std::to_string(redis_port) +
                               "\"\nca_file = \"" + env("TLS_CA") + "\"\n" + redis_more_) +
        "[cache]\nenabled = true\ntables = [\"ca_items\", \"ca_view\", \"ca_child\", "
        "\"ca_log\", \"ca_kinds\", \"ca_rls\"]\nhmac_key_file = \"" +
        key_file_ + "\"\nkey_prefix = \"" + prefix_ +
        "\"\nencrypt = true\nlocal_bytes = " + std::to_string(local_bytes) + "\n" + more_cache +
        "[admin]\nusers = [\"" + env("APP_USER") + "\"]\n";
    return s;
  }

  std::string redis(const std::string& args) const {
    return shell_output("redis-cli --tls --cacert " + env("TLS_CA") + " -p " +
                        env("REDIS_TLS_PORT") + " " + args + " 2>&1");
  }

  std::string prefix_;
  std::string key_file_;
  std::string redis_more_;  // more [redis] keys, with a Redis of the test's own
  static inline int round_ = 0;
};

// A counter of the admin console's `show` (SHOW CACHE, SHOW ROUTES), -1 when absent.
int64_t admin_stat(const Proxy& p, const char* show, const std::string& name) {
  Conn admin = connect_ok(p.conninfo("dbname=pglane"));
  Result r = exec(admin.get(), show);
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    if (name == PQgetvalue(r.get(), i, 0)) {
      return std::stoll(PQgetvalue(r.get(), i, 1));
    }
  }
  return -1;
}

int64_t cache_stat(const Proxy& p, const std::string& name) {
  return admin_stat(p, "SHOW CACHE", name);
}

// Stores happen after the client has its answer: wait for them.
bool wait_stat(const Proxy& p, const std::string& name, int64_t at_least,
               std::chrono::milliseconds limit = 5s) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (cache_stat(p, name) >= at_least) {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Runs `sql` until an answer is stored (the first miss gives a never-written table a version;
// the next one stores).
void fill(const Proxy& p, PGconn* c, const std::string& sql) {
  const int64_t before = cache_stat(p, "stores");
  for (int i = 0; i < 3 && cache_stat(p, "stores") == before; ++i) {
    query_value(c, sql);
    wait_stat(p, "stores", before + 1, 500ms);
  }
}

TEST_F(ResultCacheTest, HitsAreServedAndWritesRetireThem) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "floor channel: subscribed", 5s)) << proxy.log_tail();
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "UPDATE ca_items SET v = 1 WHERE id = 1");
  fill(proxy, c.get(), kRead);
  ASSERT_GE(cache_stat(proxy, "stores"), 1) << proxy.log_tail();
  const int64_t hits = cache_stat(proxy, "hits");
  EXPECT_EQ(query_value(c.get(), kRead), "1");
  EXPECT_EQ(cache_stat(proxy, "hits"), hits + 1);
  // Served from the cache even with every server unable to answer in time: no server is used.
  Conn other = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(other.get(), kRead), "1");
  EXPECT_EQ(cache_stat(proxy, "hits"), hits + 2);

  // A write retires the entry at once; the next read sees it, and refills.
  exec_ok(c.get(), "UPDATE ca_items SET v = 2 WHERE id = 1");
  EXPECT_EQ(query_value(other.get(), kRead), "2");
  EXPECT_GE(cache_stat(proxy, "stale"), 1);
  // A write to another table does not.
  fill(proxy, c.get(), kRead);
  const int64_t hits2 = cache_stat(proxy, "hits");
  exec_ok(c.get(), "UPDATE ca_other SET v = v + 1 WHERE id = 1");
  EXPECT_EQ(query_value(other.get(), kRead), "2");
  EXPECT_EQ(cache_stat(proxy, "hits"), hits2 + 1);
  // DDL (any unattributed write) retires every entry of the database.
  exec_ok(c.get(), "CREATE TABLE IF NOT EXISTS ca_ddl (x int)");
  exec_ok(c.get(), "DROP TABLE ca_ddl");
  EXPECT_EQ(query_value(other.get(), kRead), "2");
  EXPECT_EQ(cache_stat(proxy, "hits"), hits2 + 1);

  // Uncacheable reads are never looked up.
  const int64_t lookups = cache_stat(proxy, "lookups");
  query_value(other.get(), "SELECT v FROM ca_other WHERE id = 1");  // not listed
  query_value(other.get(), "SELECT now() IS NOT NULL FROM ca_items WHERE id = 1");
  query_value(other.get(), "SELECT v FROM ca_items WHERE id = 1 FOR UPDATE");
  EXPECT_EQ(cache_stat(proxy, "lookups"), lookups);
  // Inside a transaction the server answers.
  exec_ok(other.get(), "BEGIN");
  EXPECT_EQ(query_value(other.get(), kRead), "2");
  exec_ok(other.get(), "COMMIT");
  EXPECT_EQ(cache_stat(proxy, "lookups"), lookups);
}

// The pairs with the cache on: replay paused everywhere, a write then a read on a fresh
// connection, 300 times. Neither a replica nor an entry may answer with the old value.
TEST_F(ResultCacheTest, WriteThenReadIsNeverStale) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "floor channel: subscribed", 5s)) << proxy.log_tail();
  on_every_replica("SELECT pg_wal_replay_pause()");
  Conn w = connect_ok(proxy.conninfo());
  int stale = 0;
  for (int i = 1; i <= 300; ++i) {
    exec_ok(w.get(), "UPDATE ca_items SET v = " + std::to_string(i) + " WHERE id = 1");
    Conn r = connect_ok(proxy.conninfo());
    for (int k = 0; k < 2; ++k) {  // the second read may be a hit
      if (query_value(r.get(), kRead) != std::to_string(i)) {
        ++stale;
      }
    }
  }
  EXPECT_EQ(stale, 0);
  EXPECT_GE(cache_stat(proxy, "hits"), 100) << proxy.log_tail();
}

// Writes that reach other tables through the catalog (a cascading delete, a trigger) and a
// view over a written table: with replay paused and the cache on, every read sees the write.
TEST_F(ResultCacheTest, CascadesTriggersAndViewsAreFollowed) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "floor channel: subscribed", 5s)) << proxy.log_tail();
  Conn w = connect_ok(proxy.conninfo());
  const char* children = "SELECT count(*) FROM ca_child";
  const char* logged = "SELECT count(*) FROM ca_log";
  const char* view = "SELECT v10 FROM ca_view WHERE id = 2";
  fill(proxy, w.get(), children);
  fill(proxy, w.get(), logged);
  fill(proxy, w.get(), view);
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  for (int i = 1; i <= 50; ++i) {
    Conn r = connect_ok(proxy.conninfo());
    const int kids = std::stoi(query_value(r.get(), children));
    exec_ok(w.get(), "DELETE FROM ca_parent WHERE id = " + std::to_string(i));
    stale += std::stoi(query_value(r.get(), children)) != kids - 1;
    stale += std::stoi(query_value(r.get(), children)) != kids - 1;  // maybe a hit
    const int logs = std::stoi(query_value(r.get(), logged));
    exec_ok(w.get(), "INSERT INTO ca_src DEFAULT VALUES");
    stale += std::stoi(query_value(r.get(), logged)) != logs + 1;
    stale += std::stoi(query_value(r.get(), logged)) != logs + 1;
    exec_ok(w.get(), "UPDATE ca_items SET v = " + std::to_string(i) + " WHERE id = 2");
    stale += query_value(r.get(), view) != std::to_string(i * 10);
    stale += query_value(r.get(), view) != std::to_string(i * 10);
  }
  EXPECT_EQ(stale, 0);
  EXPECT_GE(cache_stat(proxy, "hits"), 50) << proxy.log_tail();
}

// Two gateways share the cache: an entry stored by one is a hit on the other, and a write
// through either retires it for both.
TEST_F(ResultCacheTest, GatewaysShareEntriesAndInvalidations) {
  Proxy a(settings());
  Proxy b(settings());
  START_PROXY(a);
  START_PROXY(b);
  ASSERT_TRUE(wait_log(a, "floor channel: subscribed", 5s)) << a.log_tail();
  ASSERT_TRUE(wait_log(b, "floor channel: subscribed", 5s)) << b.log_tail();
  Conn ca = connect_ok(a.conninfo());
  Conn cb = connect_ok(b.conninfo());
  // Another gateway's entries are trusted once they began a second (the clock-skew allowance)
  // after this one connected to Redis.
  std::this_thread::sleep_for(1100ms);
  exec_ok(ca.get(), "UPDATE ca_items SET v = 10 WHERE id = 1");
  fill(a, ca.get(), kRead);
  EXPECT_EQ(query_value(cb.get(), kRead), "10");
  EXPECT_EQ(cache_stat(b, "hits"), 1);
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  for (int i = 11; i <= 60; ++i) {
    exec_ok(cb.get(), "UPDATE ca_items SET v = " + std::to_string(i) + " WHERE id = 1");
    for (int k = 0; k < 2; ++k) {
      if (query_value(ca.get(), kRead) != std::to_string(i)) {
        ++stale;
      }
    }
  }
  EXPECT_EQ(stale, 0);
  EXPECT_GE(cache_stat(a, "hits"), 20);
}

// Redis Cluster (three TLS masters): both gateways start at a node that serves neither the
// database's keys nor the floor channel, follow MOVED to them, share entries and floors (by
// sharded Pub/Sub), and no read is stale.
TEST_F(ResultCacheTest, RedisClusterIsFollowedAndSharesFloors) {
  OwnCluster cluster;
  ASSERT_TRUE(cluster.start()) << cluster.create_log();
  const std::string channel = "pglane:test:floors:" + prefix_;
  const int db_slot =
      cache::redis::key_slot(cache::database_tag(prefix_, routing::database_key("app")));
  const int owner_db = cluster.owner(db_slot);
  const int owner_channel = cluster.owner(cache::redis::key_slot(channel));
  ASSERT_NE(owner_db, 0);
  int seed = 0;
  for (int i = 0; i < 3; ++i) {
    if (cluster.port(i) != owner_db && (seed == 0 || cluster.port(i) != owner_channel)) {
      seed = cluster.port(i);
    }
  }
  redis_more_ = "cluster = true\nfloor_channel = \"" + channel + "\"\n";
  Proxy a(settings(seed, 0));
  Proxy b(settings(seed, 0));
  START_PROXY(a);
  START_PROXY(b);
  ASSERT_TRUE(wait_log(a, "floor channel: subscribed", 5s)) << a.log_tail();
  ASSERT_TRUE(wait_log(b, "floor channel: subscribed", 5s)) << b.log_tail();
  Conn ca = connect_ok(a.conninfo());
  Conn cb = connect_ok(b.conninfo());
  std::this_thread::sleep_for(1100ms);  // (the clock-skew allowance; see above)
  exec_ok(ca.get(), "UPDATE ca_items SET v = 10 WHERE id = 1");
  fill(a, ca.get(), kRead);
  EXPECT_EQ(query_value(cb.get(), kRead), "10");
  EXPECT_EQ(cache_stat(b, "hits"), 1) << b.log_tail();
  EXPECT_GE(cache_stat(a, "redis_redirects"), 1);
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  for (int i = 11; i <= 40; ++i) {
    const std::string v = std::to_string(i);
    exec_ok(cb.get(), "UPDATE ca_items SET v = " + v + " WHERE id = 1");
    exec_ok(cb.get(), "UPDATE ca_other SET v = " + v + " WHERE id = 1");
    // The cache (versions at the database's node) and routing (floors from the channel's).
    stale += query_value(ca.get(), kRead) != v;
    stale += query_value(ca.get(), "SELECT v FROM ca_other WHERE id = 1") != v;
  }
  EXPECT_EQ(stale, 0);
  EXPECT_GE(admin_stat(a, "SHOW ROUTES", "floor_received"), 30) << a.log_tail();
  EXPECT_EQ(admin_stat(b, "SHOW ROUTES", "floor_publish_failures"), 0) << b.log_tail();
}

// Drivers' parameterised reads (libpq's PQexecParams: Parse, Bind, Describe, Execute, Sync of
// the unnamed statement) are cached per parameter value and format; a row-limited fetch is not.
TEST_F(ResultCacheTest, ExtendedProtocolReadsAreCachedPerParameters) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "UPDATE ca_items SET v = 31 WHERE id = 1");
  exec_ok(c.get(), "UPDATE ca_items SET v = 32 WHERE id = 2");
  auto read = [&](const char* id, int result_format = 0) {
    const char* values[] = {id};
    Result r(PQexecParams(c.get(), "SELECT v FROM ca_items WHERE id = $1::int", 1, nullptr, values,
                          nullptr, nullptr, result_format));
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    if (result_format == 1) {
      return std::string(PQgetvalue(r.get(), 0, 0), 4) == std::string("\0\0\0\x1f", 4)
                 ? std::string("31")
                 : std::string("?");
    }
    return std::string(PQgetvalue(r.get(), 0, 0));
  };
  int64_t stores = cache_stat(proxy, "stores");
  for (int i = 0; i < 3 && cache_stat(proxy, "stores") == stores; ++i) {
    EXPECT_EQ(read("1"), "31");
    wait_stat(proxy, "stores", stores + 1, 500ms);
  }
  ASSERT_GT(cache_stat(proxy, "stores"), stores) << proxy.log_tail();
  int64_t hits = cache_stat(proxy, "hits");
  EXPECT_EQ(read("1"), "31");
  EXPECT_EQ(cache_stat(proxy, "hits"), hits + 1);
  EXPECT_EQ(read("2"), "32");  // another value: another entry
  EXPECT_EQ(cache_stat(proxy, "hits"), hits + 1);
  EXPECT_EQ(read("1", 1), "31");  // binary results: another entry
  EXPECT_EQ(cache_stat(proxy, "hits"), hits + 1);
  exec_ok(c.get(), "UPDATE ca_items SET v = 33 WHERE id = 1");
  EXPECT_EQ(read("1"), "33");
  EXPECT_EQ(cache_stat(proxy, "hits"), hits + 1);
}

// Redis killed and restarted under a write/read loop through two gateways: reads are answered
// by the database while it is down (the breaker adds no wait), nothing stale is ever served, and
// hits resume once it is back.
TEST_F(ResultCacheTest, RedisKilledAndRestartedUnderLoad) {
  OwnRedis redis;
  ASSERT_TRUE(redis.start());
  Proxy a(settings(redis.port()));
  Proxy b(settings(redis.port()));
  START_PROXY(a);
  START_PROXY(b);
  ASSERT_TRUE(wait_log(b, "floor channel: subscribed", 5s)) << b.log_tail();
  Conn w = connect_ok(a.conninfo());
  Conn r = connect_ok(b.conninfo());
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  int value = 1000;
  auto pairs = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ++value;
      exec_ok(w.get(), "UPDATE ca_items SET v = " + std::to_string(value) + " WHERE id = 1");
      for (int k = 0; k < 3; ++k) {
        stale += query_value(r.get(), kRead) != std::to_string(value);
      }
    }
  };
  pairs(50);
  const int64_t hits_before = cache_stat(b, "hits");
  EXPECT_GE(hits_before, 50);
  redis.stop();
  const auto down_at = Clock::now();
  pairs(50);
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down_at).count();
  EXPECT_GE(cache_stat(b, "unavailable"), 1);
  ASSERT_TRUE(redis.start());
  ASSERT_TRUE(wait_log(b, "floor channel: subscribed", 10s, 2)) << b.log_tail();
  pairs(10);
  // Entries that began less than a second (the clock-skew allowance) after a reconnection are
  // not trusted; then hits resume.
  std::this_thread::sleep_for(1200ms);
  pairs(40);
  EXPECT_EQ(stale, 0);
  EXPECT_GT(cache_stat(b, "hits"), hits_before + 20) << b.log_tail();
  std::printf("cache: 50 write + 150 read with Redis down took %lld ms\n",
              static_cast<long long>(took));
}

// Concurrent misses of one key: one session per worker runs the query, the others wait for its
// store and are answered from it.
TEST_F(ResultCacheTest, ConcurrentMissesAreSingleFlighted) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  // About 5 M rows to count: long enough for the clients to overlap.
  const std::string slow =
      "/* pglane: cache ttl=60s */ SELECT count(*) FROM ca_parent a, ca_parent b, "
      "(SELECT * FROM ca_parent ORDER BY id LIMIT 20) c";
  Conn direct = connect_direct();
  const std::string expected = query_value(direct.get(), slow);
  {
    Conn c = connect_ok(proxy.conninfo());
    query_value(c.get(), "SELECT v FROM ca_items WHERE id = 2");  // (versions set up)
    exec_ok(c.get(), "UPDATE ca_items SET v = v WHERE id = 1");
  }
  constexpr int kClients = 8;
  std::vector<Conn> conns;
  for (int i = 0; i < kClients; ++i) {
    conns.push_back(connect_ok(proxy.conninfo()));
  }
  std::vector<std::string> answers(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] { answers[i] = query_value(conns[i].get(), slow); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const std::string& a : answers) {
    EXPECT_EQ(a, expected);
  }
  // At most one leader per worker ran it; every other client waited for one, or came after its
  // store and hit.
  EXPECT_GE(cache_stat(proxy, "flight_waits"), 1) << proxy.log_tail();
  EXPECT_GE(cache_stat(proxy, "flight_waits") + cache_stat(proxy, "hits"), kClients - 2);
  EXPECT_LE(cache_stat(proxy, "stores"), 2);
}

// Auto mode: an eligible statement of a table nobody listed is cached once seen often enough.
TEST_F(ResultCacheTest, AutoModeCachesWhatIsReadOften) {
  Proxy proxy(settings(0, 1 << 20, "auto_after = 3\n"));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  const char* sql = "SELECT v FROM ca_other WHERE id = 1";
  for (int i = 0; i < 8; ++i) {
    query_value(c.get(), sql);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(cache_stat(proxy, "stores"), 1) << proxy.log_tail();
  EXPECT_GE(cache_stat(proxy, "hits"), 1);
  exec_ok(c.get(), "UPDATE ca_other SET v = v + 1 WHERE id = 1");
  Conn direct = connect_direct();
  EXPECT_EQ(query_value(c.get(), sql), query_value(direct.get(), sql));
}

// Sessions whose settings differ never share an entry, and the role is one of the settings.
TEST_F(ResultCacheTest, EntriesAreKeyedBySessionSettings) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  const std::string sql = "SELECT v::float8 / 3 FROM ca_items WHERE id = 2";
  fill(proxy, c.get(), sql);
  const std::string full = query_value(c.get(), sql);
  Conn d = connect_ok(proxy.conninfo());
  exec_ok(d.get(), "SET extra_float_digits = -3");
  exec_ok(d.get(), "UPDATE ca_items SET v = 1 WHERE id = 2");
  fill(proxy, c.get(), sql);
  const int64_t hits = cache_stat(proxy, "hits");
  const std::string shorter = query_value(d.get(), sql);
  EXPECT_EQ(cache_stat(proxy, "hits"), hits);  // not c's entry
  EXPECT_EQ(shorter, "0.333333333333");
  EXPECT_EQ(query_value(c.get(), sql), "0.3333333333333333");
}

// Every kind of committed write retires the entries of its table for a reader on another
// connection, with replay paused (so neither a replica nor the cache may answer from before
// it); a rolled-back write is never seen; DDL changes what is served (TESTING.md E29).
TEST_F(ResultCacheTest, EveryKindOfWriteRetiresEntries) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "floor channel: subscribed", 5s)) << proxy.log_tail();
  Conn w = connect_ok(proxy.conninfo());
  Conn r = connect_ok(proxy.conninfo());
  exec_ok(w.get(), "TRUNCATE ca_kinds");
  exec_ok(w.get(), "INSERT INTO ca_kinds VALUES (1, 0)");
  const std::string read = "SELECT v FROM ca_kinds WHERE id = 1";
  fill(proxy, r.get(), read);
  on_every_replica("SELECT pg_wal_replay_pause()");
  struct Step {
    const char* write;
    const char* expect;
  };
  const Step steps[] = {
      {"UPDATE ca_kinds SET v = 1 WHERE id = 1", "1"},
      {"WITH u AS (UPDATE ca_kinds SET v = 2 WHERE id = 1 RETURNING 1) SELECT count(*) FROM u",
       "2"},
      {"MERGE INTO ca_kinds k USING (VALUES (1, 3)) s(id, v) ON k.id = s.id "
       "WHEN MATCHED THEN UPDATE SET v = s.v",
       "3"},
      {"DELETE FROM ca_kinds WHERE id = 1", ""},
      {"INSERT INTO ca_kinds VALUES (1, 4)", "4"},
      {"TRUNCATE ca_kinds", ""},
      {"COPY", "5"},  // COPY ca_kinds FROM STDIN, below
  };
  for (const Step& s : steps) {
    // The entry is current first (a hit), then the write, then the read must see it.
    fill(proxy, r.get(), read);
    const int64_t hits = cache_stat(proxy, "hits");
    query_value(r.get(), read);
    EXPECT_GT(cache_stat(proxy, "hits"), hits) << "not served from the cache before: " << s.write;
    if (std::string(s.write) == "COPY") {
      Result start = exec(w.get(), "COPY ca_kinds (id, v) FROM STDIN");
      ASSERT_EQ(PQresultStatus(start.get()), PGRES_COPY_IN);
      const std::string row = "1\t5\n";
      ASSERT_EQ(PQputCopyData(w.get(), row.data(), static_cast<int>(row.size())), 1);
      ASSERT_EQ(PQputCopyEnd(w.get(), nullptr), 1);
      Result done(PQgetResult(w.get()));
      ASSERT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQerrorMessage(w.get());
      while (Result more{PQgetResult(w.get())}) {
      }
    } else {
      exec_ok(w.get(), s.write);
    }
    EXPECT_EQ(query_value(r.get(), read), s.expect) << "stale after: " << s.write;
  }
  // A write rolled back is never served, neither while it is open nor after.
  query_value(r.get(), read);
  exec_ok(w.get(), "BEGIN");
  exec_ok(w.get(), "UPDATE ca_kinds SET v = 99 WHERE id = 1");
  EXPECT_EQ(query_value(w.get(), read), "99");
  EXPECT_EQ(query_value(r.get(), read), "5");
  exec_ok(w.get(), "ROLLBACK");
  EXPECT_EQ(query_value(r.get(), read), "5");
  EXPECT_EQ(query_value(w.get(), read), "5");
  // DDL: the same statement's answer changes shape.
  const std::string star = "SELECT * FROM ca_kinds WHERE id = 1";
  fill(proxy, r.get(), star);
  exec_ok(w.get(), "ALTER TABLE ca_kinds ADD COLUMN w int DEFAULT 7");
  Result after = exec(r.get(), star);
  ASSERT_EQ(PQresultStatus(after.get()), PGRES_TUPLES_OK);
  EXPECT_EQ(PQnfields(after.get()), 3) << "an entry from before the DDL was served";
  exec_ok(w.get(), "ALTER TABLE ca_kinds DROP COLUMN w");
}

// Rows a policy shows one tenant are never served to another, nor to a role without the
// column's grant (TESTING.md E27): the key covers the custom settings and the role.
TEST_F(ResultCacheTest, NoLeakAcrossTenantsOrRoles) {
  Proxy proxy(settings());
  START_PROXY(proxy);
  const std::string read = "SELECT v FROM ca_rls WHERE id = 1";
  Conn a = connect_ok(proxy.conninfo());
  exec_ok(a.get(), "SET app.tenant = 'a'");
  fill(proxy, a.get(), read);
  EXPECT_EQ(query_value(a.get(), read), "10");
  Conn b = connect_ok(proxy.conninfo());
  exec_ok(b.get(), "SET app.tenant = 'b'");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(query_value(b.get(), read), "20");
  }
  Conn none = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(none.get(), read), "");  // no tenant: no rows
  Conn role = connect_ok(proxy.conninfo());
  exec_ok(role.get(), "SET app.tenant = 'a'");
  exec_ok(role.get(), "SET ROLE ca_reader");
  Result denied = exec(role.get(), read);
  EXPECT_EQ(PQresultStatus(denied.get()), PGRES_FATAL_ERROR) << "a role without v's grant read it";
  EXPECT_EQ(sqlstate(denied.get()), "42501");
  EXPECT_EQ(query_value(a.get(), read), "10");
}

// An entry changed in Redis (forged, corrupted, or copied under another key) is rejected and
// the database answers.
TEST_F(ResultCacheTest, ForgedEntriesAreRejected) {
  ProxySettings s = settings(0, 0);  // (the in-process layer would answer from memory)
  const int mport = any_free_port();
  s.extra_toml += "metrics_listen = \"127.0.0.1:" + std::to_string(mport) + "\"\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "UPDATE ca_items SET v = 5 WHERE id = 1");
  fill(proxy, c.get(), kRead);
  const std::string keys = redis("--scan --pattern '" + prefix_ + ":*:c:*'");
  ASSERT_NE(keys.find(":c:"), std::string::npos) << keys;
  const std::string key = keys.substr(0, keys.find('\n'));
  // Encrypted (cache.encrypt): no row data in the clear.
  EXPECT_EQ(redis("--no-raw GET '" + key + "'").substr(0, 7), "\"PGLC2E")
      << redis("GET '" + key + "'");
  redis("SET '" + key + "' 'PGLC2 forged rows' PX 60000");
  const int64_t rejected = cache_stat(proxy, "rejected");
  EXPECT_EQ(query_value(c.get(), kRead), "5");
  EXPECT_EQ(cache_stat(proxy, "rejected"), rejected + 1);
  EXPECT_TRUE(read_file(proxy.log_path()).find("signature does not verify") != std::string::npos);

  // The counters are in /metrics, which promtool accepts.
  const std::string metrics = sandbox_dir() + "/cache-metrics-" + prefix_ + ".txt";
  shell_output(
      "bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(mport) +
      "; printf \"GET /metrics HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3' | sed '1,/^\\r$/d' > " +
      metrics);
  const std::string body = read_file(metrics);
  EXPECT_NE(body.find("pglane_cache_rejected_total 1"), std::string::npos) << body.substr(0, 2000);
  EXPECT_NE(body.find("pglane_cache_hit_seconds_bucket{le=\"0.001\"}"), std::string::npos);
  const std::string promtool = find_on_path("promtool");
  if (!promtool.empty()) {
    EXPECT_EQ(shell_output(promtool + " check metrics < " + metrics + " >/dev/null 2>&1; echo $?"),
              "0\n");
  }
}

}  // namespace
}  // namespace pglane::itest
