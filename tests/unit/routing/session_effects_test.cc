#include "routing/session_effects.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace pglane::routing {
namespace {

TEST(SessionEffects, PlainStatementsHaveNoEffect) {
  for (const char* sql : {"SELECT 1", "UPDATE t SET a = 1", "INSERT INTO t VALUES (1)",
                          "SET LOCAL statement_timeout = 5", "SET TRANSACTION READ ONLY",
                          "BEGIN; SELECT 1; COMMIT", "UNLISTEN *", "DISCARD PLANS"}) {
    auto fx = analyze_session_effects(sql);
    EXPECT_EQ(fx.pin_reason, nullptr) << sql;
    EXPECT_FALSE(fx.discard_all) << sql;
  }
  EXPECT_FALSE(analyze_session_effects("UPDATE t SET a = 1").may_change_settings);
  EXPECT_FALSE(analyze_session_effects("SET LOCAL work_mem = '1MB'").may_change_settings);
}

// Found by the session_effects fuzz target: "SET local = ..." sets a parameter named local
// (PostgreSQL's grammar reads LOCAL as the name when = or TO follows); it is not SET LOCAL.
TEST(SessionEffects, LocalOrSessionAsTheNameIsASessionSetting) {
  for (const char* sql :
       {"SET LOCAL = '5s'", "SET local TO 1", "SET session = 1", "SET transaction TO 1"}) {
    EXPECT_TRUE(analyze_session_effects(sql).may_change_settings) << sql;
  }
  // ... and SESSION or LOCAL followed by a dot starts a custom setting's name (fuzz finding).
  for (const char* sql : {"SET SESSION.\"My.Setting\" TO DEFAULT", "SET local.x = 1"}) {
    auto fx = analyze_session_effects(sql);
    EXPECT_TRUE(fx.may_change_settings) << sql;
    EXPECT_FALSE(fx.custom_settings.empty()) << sql;
  }
}

TEST(SessionEffects, SettingsChanges) {
  for (const char* sql :
       {"SET search_path TO foo", "set statement_timeout=5", "RESET ALL", "reset timezone",
        "SELECT set_config('a.b', 'c', false)", "/* c */ SET TimeZone = 'UTC'",
        "SELECT 1; SET work_mem = '8MB'", "DO $$ BEGIN PERFORM 1; END $$", "CALL p()",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"}) {
    EXPECT_TRUE(analyze_session_effects(sql).may_change_settings) << sql;
  }
}

TEST(SessionEffects, PinsStateThatCannotMove) {
  EXPECT_STREQ(analyze_session_effects("LISTEN ch").pin_reason, "LISTEN");
  EXPECT_STREQ(analyze_session_effects("CREATE TEMP TABLE t (a int)").pin_reason,
               "temporary table");
  EXPECT_STREQ(analyze_session_effects("create global temporary table t (a int)").pin_reason,
               "temporary table");
  EXPECT_STREQ(analyze_session_effects("SELECT * INTO TEMP t FROM x").pin_reason,
               "temporary table");
  EXPECT_STREQ(analyze_session_effects("SELECT pg_advisory_lock(1)").pin_reason,
               "session advisory lock");
  EXPECT_STREQ(analyze_session_effects("select PG_TRY_ADVISORY_LOCK(1)").pin_reason,
               "session advisory lock");
  EXPECT_EQ(analyze_session_effects("SELECT pg_advisory_xact_lock(1)").pin_reason, nullptr);
  EXPECT_STREQ(analyze_session_effects("DECLARE c CURSOR WITH HOLD FOR SELECT 1").pin_reason,
               "DECLARE ... WITH HOLD cursor");
  EXPECT_EQ(analyze_session_effects("DECLARE c CURSOR FOR SELECT 1").pin_reason, nullptr);
  EXPECT_STREQ(analyze_session_effects("SET ROLE admin").pin_reason, "SET ROLE");
  EXPECT_STREQ(analyze_session_effects("SET SESSION AUTHORIZATION bob").pin_reason,
               "SET SESSION AUTHORIZATION");
  EXPECT_STREQ(analyze_session_effects("LOAD 'auto_explain'").pin_reason, "LOAD");
  EXPECT_STREQ(analyze_session_effects("PREPARE q AS SELECT 1").pin_reason, "SQL PREPARE");
  EXPECT_EQ(analyze_session_effects("PREPARE TRANSACTION 'x'").pin_reason, nullptr);
}

TEST(SessionEffects, KeywordsInsideLiteralsAndCommentsAreIgnored) {
  for (const char* sql :
       {"SELECT 'LISTEN x'", "SELECT $$CREATE TEMP TABLE t$$", "SELECT 1 -- LISTEN x\n",
        "SELECT /* outer /* LISTEN */ x */ 1", "SELECT \"listen\" FROM t",
        "SELECT E'it\\'s; LISTEN x'", "SELECT $tag$ ; LISTEN a $tag$"}) {
    EXPECT_EQ(analyze_session_effects(sql).pin_reason, nullptr) << sql;
  }
}

TEST(SessionEffects, StatementBoundariesFollowStrings) {
  EXPECT_STREQ(analyze_session_effects("SELECT ';'; LISTEN x").pin_reason, "LISTEN");
  EXPECT_STREQ(analyze_session_effects("SELECT $$;$$; LISTEN x").pin_reason, "LISTEN");
}

TEST(SessionEffects, DiscardAndDeallocate) {
  auto fx = analyze_session_effects("DISCARD ALL");
  EXPECT_TRUE(fx.discard_all);
  EXPECT_TRUE(analyze_session_effects("DEALLOCATE ALL").deallocate_all);
  EXPECT_TRUE(analyze_session_effects("deallocate prepare all").deallocate_all);
  fx = analyze_session_effects("DEALLOCATE _pg3_1");
  EXPECT_TRUE(fx.is_single_deallocate);
  EXPECT_EQ(fx.deallocate_name, "_pg3_1");
  fx = analyze_session_effects("DEALLOCATE PREPARE \"MyStmt\"");
  EXPECT_TRUE(fx.is_single_deallocate);
  EXPECT_EQ(fx.deallocate_name, "MyStmt");
  EXPECT_EQ(analyze_session_effects("DEALLOCATE Foo").deallocate_name, "foo");
  EXPECT_FALSE(analyze_session_effects("DEALLOCATE a; SELECT 1").is_single_deallocate);
}

using Names = std::vector<std::string>;

TEST(SessionEffects, CustomSettingsAreNamed) {
  EXPECT_EQ(analyze_session_effects("SET app.tenant = 't2'").custom_settings, Names{"app.tenant"});
  EXPECT_EQ(analyze_session_effects("set session App.Tenant to 'x'").custom_settings,
            Names{"app.tenant"});
  EXPECT_EQ(analyze_session_effects("SET \"my\".\"key\" = 1").custom_settings, Names{"my.key"});
  EXPECT_EQ(analyze_session_effects("RESET app.tenant").custom_settings, Names{"app.tenant"});
  EXPECT_EQ(analyze_session_effects("SELECT set_config('app.tenant', $1, false)").custom_settings,
            Names{"app.tenant"});
  EXPECT_EQ(analyze_session_effects("select pg_catalog.set_config('a.b', 'x', is_local => false)")
                .custom_settings,
            Names{"a.b"});
  EXPECT_EQ(analyze_session_effects("SELECT set_config($$a.b$$, 'x', 'off')").custom_settings,
            Names{"a.b"});
  EXPECT_EQ(
      analyze_session_effects("SET a.x = 1; SELECT set_config('b.y', 'v', false); SET a.x = 2")
          .custom_settings,
      (Names{"a.x", "b.y"}));
  // Built-in settings are read from pg_settings; only dotted names need tracking.
  EXPECT_TRUE(analyze_session_effects("SET statement_timeout = 5").custom_settings.empty());
  EXPECT_TRUE(analyze_session_effects("SELECT set_config('work_mem', '1MB', false)")
                  .custom_settings.empty());
}

TEST(SessionEffects, TransactionScopedCustomSettingsAreNotTracked) {
  EXPECT_TRUE(analyze_session_effects("SET LOCAL app.tenant = 't2'").custom_settings.empty());
  EXPECT_TRUE(analyze_session_effects("SELECT set_config('app.tenant', 't2', true)")
                  .custom_settings.empty());
  EXPECT_TRUE(
      analyze_session_effects("SELECT set_config('app.t', 'x', 'on')").custom_settings.empty());
  EXPECT_TRUE(analyze_session_effects("SELECT 'SET app.tenant = 1'").custom_settings.empty());
}

TEST(SessionEffects, CustomSettingWithUnknownNamePins) {
  EXPECT_NE(analyze_session_effects("SELECT set_config($1, $2, false)").pin_reason, nullptr);
  EXPECT_NE(analyze_session_effects("SELECT set_config('app.' || 'x', 'v', false)").pin_reason,
            nullptr);
  EXPECT_NE(analyze_session_effects("SELECT set_config(E'a\\x2eb', 'v', false)").pin_reason,
            nullptr);
}

TEST(SessionEffects, DoBodiesAreScannedAndTaintTheServer) {
  auto fx = analyze_session_effects(
      "DO $$ BEGIN PERFORM set_config('app.tenant', 't2', false); SET app.user = 'u'; END $$");
  EXPECT_TRUE(fx.opaque_code);
  EXPECT_TRUE(fx.may_change_settings);
  EXPECT_EQ(fx.custom_settings, (Names{"app.tenant", "app.user"}));
  EXPECT_EQ(fx.pin_reason, nullptr);
  EXPECT_STREQ(analyze_session_effects("DO 'BEGIN LISTEN x; END'").pin_reason, "LISTEN");
  EXPECT_FALSE(analyze_session_effects("DO $$ BEGIN DEALLOCATE x; END $$").is_single_deallocate);
  EXPECT_TRUE(analyze_session_effects("CALL p()").opaque_code);
  EXPECT_FALSE(analyze_session_effects("SET app.x = 1").opaque_code);
}

TEST(SessionEffects, CallsOfFunctionsThatAreNotPostgresOwn) {
  for (const char* sql :
       {"SELECT set_tenant('t2')", "select app.set_tenant($1)", "SELECT * FROM get_orders(1)",
        "SELECT \"MyFunc\"()", "SELECT now(), my_helper(x) FROM t",
        "SELECT * FROM t JOIN f(1) x ON true", "SELECT * FROM t JOIN LATERAL f(t.a) x ON true",
        "SELECT * FROM t ORDER BY f(a)", "SELECT * FROM a JOIN b ON g(a.x) = b.y"}) {
    EXPECT_TRUE(analyze_session_effects(sql).calls_unknown_functions) << sql;
  }
  for (const char* sql :
       {"SELECT 1", "SELECT count(*), coalesce(a, b), now() FROM t",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, "
        "CURRENT_TIMESTAMP)",
        "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 5",
        "SELECT x::numeric(10, 2), cast(y AS varchar(20)) FROM t",
        "SELECT pg_catalog.set_config('a.b', 'c', false)", "CREATE TABLE t (a int)",
        "WITH w (a) AS (SELECT 1) SELECT * FROM w", "SELECT a FROM t WHERE a IN (1, 2)",
        "SELECT EXISTS (SELECT 1)",
        "SELECT array_agg(x) FILTER (WHERE x > 0) OVER (PARTITION BY y)",
        "INSERT INTO s.t (a) VALUES (1) ON CONFLICT (a) DO NOTHING"}) {
    EXPECT_FALSE(analyze_session_effects(sql).calls_unknown_functions) << sql;
  }
}

TEST(SessionEffects, ResetsAreNamed) {
  auto fx = analyze_session_effects("RESET app.tenant; RESET TimeZone");
  EXPECT_EQ(fx.reset_settings, (Names{"app.tenant", "timezone"}));
  EXPECT_FALSE(fx.reset_all);
  EXPECT_TRUE(analyze_session_effects("RESET ALL").reset_all);
  EXPECT_TRUE(analyze_session_effects("DISCARD ALL").reset_all);
  EXPECT_TRUE(analyze_session_effects("SET app.tenant = ''").reset_settings.empty());
}

TEST(SessionEffects, SetConfigWrittenWithCastsOrNamedArguments) {
  auto fx = analyze_session_effects("SELECT set_config('app.tenant'::text, $1::text, false)");
  EXPECT_EQ(fx.pin_reason, nullptr);
  EXPECT_EQ(fx.custom_settings, Names{"app.tenant"});
  fx = analyze_session_effects(
      "SELECT set_config(setting_name => 'app.t', new_value => $1, is_local => false)");
  EXPECT_EQ(fx.pin_reason, nullptr);
  EXPECT_EQ(fx.custom_settings, Names{"app.t"});
  EXPECT_TRUE(analyze_session_effects("SELECT set_config('a.b', 'v', is_local => true)")
                  .custom_settings.empty());
}

TEST(SessionEffects, NamesPglaneCannotReadTaintTheServer) {
  // U&"..." names carry escapes; a lexical error hides what follows it.
  EXPECT_TRUE(analyze_session_effects("SET U&\"app\\0041tenant\" = 't2'").opaque_code);
  EXPECT_TRUE(analyze_session_effects("SELECT 0x10; SET app.tenant = 't2'").opaque_code);
  EXPECT_FALSE(analyze_session_effects("SET app.tenant = 't2'").opaque_code);
  // "" inside a quoted name is one quote, and such a name is not one pglane writes into SQL.
  auto fx = analyze_session_effects("SET \"a\"\"b\".c = 1");
  EXPECT_TRUE(fx.custom_settings.empty());
  EXPECT_TRUE(fx.opaque_code);
}

// Found by the session_effects fuzz target.
TEST(SessionEffects, FuzzFindings) {
  EXPECT_STREQ(analyze_session_effects("CREATE TABLE pg_temp.t (a int)").pin_reason,
               "temporary table");
  EXPECT_STREQ(analyze_session_effects("SELECT 1 INTO \"pg_temp\".t").pin_reason,
               "temporary table");
  auto fx = analyze_session_effects("DEALLOCATE \"a\"\"b\"");
  EXPECT_TRUE(fx.is_single_deallocate);
  EXPECT_EQ(fx.deallocate_name, "a\"b");
  fx = analyze_session_effects("DEALLOCATE prepare");
  EXPECT_TRUE(fx.is_single_deallocate);
  EXPECT_EQ(fx.deallocate_name, "prepare");
  // Non-ASCII names are tracked when they are well-formed UTF-8; otherwise the server is reset.
  EXPECT_EQ(analyze_session_effects("SET app.t\xC3\xA9nant = 1").custom_settings,
            Names{"app.t\xC3\xA9nant"});
  fx = analyze_session_effects("SET app.t\xFF = 1");
  EXPECT_TRUE(fx.custom_settings.empty());
  EXPECT_TRUE(fx.opaque_code);
  // Identifiers are cut at 63 bytes, as PostgreSQL does.
  fx = analyze_session_effects("SET app." + std::string(70, 'x') + " = 1");
  EXPECT_EQ(fx.custom_settings, Names{"app." + std::string(63, 'x')});
}

TEST(SessionEffects, UnterminatedInputDoesNotCrash) {
  for (const char* sql :
       {"SELECT '", "SELECT \"", "SELECT $$", "/* /*", "SELECT E'\\", "$a", "$", ";;;", ""}) {
    analyze_session_effects(sql);
  }
}

// Found by the session_effects fuzz target: a 62-byte name ending in a 4-byte lead byte was cut
// to 61 bytes, though PostgreSQL truncates only names of 64 bytes or more.
TEST(SessionEffects, NamesUnder64BytesAreNotTruncated) {
  const std::string tail = std::string(61, 'x') + "\xf7";
  auto fx = analyze_session_effects("SET app." + tail + " = 1");
  EXPECT_TRUE(fx.opaque_code || !fx.custom_settings.empty());
  auto ok = analyze_session_effects("SET app." + std::string(63, 'y') + " = 1");
  ASSERT_EQ(ok.custom_settings.size(), 1u);
  EXPECT_EQ(ok.custom_settings[0], "app." + std::string(63, 'y'));
  auto cut = analyze_session_effects("SET app." + std::string(70, 'z') + " = 1");
  ASSERT_EQ(cut.custom_settings.size(), 1u);
  EXPECT_EQ(cut.custom_settings[0], "app." + std::string(63, 'z'));
}

}  // namespace
}  // namespace pglane::routing

namespace pglane::routing {
namespace {

// The raw-text scan for set_config() and session advisory locks looks only around underscores:
// names at the very start or end of the text, in any case, next to other underscores.
TEST(SessionEffects, RawCallNamesAreFoundWhereverTheyStand) {
  EXPECT_TRUE(analyze_session_effects("SET_CONFIG('a.b', 'c', false)").may_change_settings);
  EXPECT_TRUE(analyze_session_effects("select x_set_config_y").may_change_settings);
  EXPECT_STREQ(analyze_session_effects("SELECT __PG_TRY_ADVISORY_LOCK(1)").pin_reason,
               "session advisory lock");
  EXPECT_STREQ(analyze_session_effects("pg_advisory_lock").pin_reason, "session advisory lock");
  EXPECT_FALSE(analyze_session_effects("SELECT set_confi").may_change_settings);
  EXPECT_EQ(analyze_session_effects("SELECT pg_advisory_loc").pin_reason, nullptr);
  EXPECT_EQ(analyze_session_effects("_").pin_reason, nullptr);
}

}  // namespace
}  // namespace pglane::routing

namespace pglane::routing {
namespace {

// analyze_session_effects answers plain statements from their bytes; whatever it answers must be
// what the lexer-based scan answers, both for texts it takes and for the near misses it leaves
// to the lexer.
TEST(SessionEffects, ByteLevelFastPathAgreesWithTheLexer) {
  for (const char* sql : {
           "SELECT abalance FROM pgbench_accounts WHERE aid = 42",
           "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
           "  select * from t where a >= 1 and b <> 2 ;; ",
           "UPDATE pgbench_accounts SET abalance = abalance + -17 WHERE aid = 3",
           "UPDATE t SET a.b = 1",  // a composite field: the lexer's scan names it
           "update t set x = 1",
           "DELETE FROM t WHERE a = 1",
           "INSERT INTO t SELECT * FROM u",
           "VALUES 1",
           "TABLE t",
           "SELECT * INTO TEMP t FROM u",
           "SELECT * INTO temporary t FROM u",
           "SELECT * INTO pg_temp.t FROM u",
           "select x.temp from t",
           "SELECT set_config FROM t",
           "SELECT pg_advisory_lock FROM t",
           "SELECT 1; SELECT 2",
           "SELECT 1; SET a.b = 1",
           "SELECT 1 -- comment",
           "SELECT 1 /* c */",
           "SELECT 1 / 2",
           "SELECT 123abc",
           "SELECT 1e5",
           "SELECT 1_000",
           // Found in review: the lexer reads 1. / .5. as numbers and rejects what follows.
           "SELECT 1.a",
           "SELECT 1.e",
           "SELECT 1._x",
           "SELECT 1.2.a",
           "SELECT a.5.b",
           "SELECT .5",
           "SELECT t.a1 FROM t",
           "SELECT 1.5::numeric",
           "SELECT a::int FROM t",
           "SELECT f(1)",
           "SELECT 'x'",
           "SELECT \"a\" FROM t",
           "SELECT $1",
           "SELECT a FROM t WHERE b = 1 RESET",
           "RESET a.b",
           "SET a.b = 1",
           "SHOW x",
           "LISTEN x",
           "SELECT\tá FROM t",
           "SELECT a\\b",
           "",
           ";",
           "1",
           "SELECT 1 ; 2",
       }) {
    EXPECT_EQ(analyze_session_effects(sql), analyze_session_effects_lexed(sql)) << sql;
  }
  EXPECT_EQ(analyze_session_effects("UPDATE t SET a.b = 1").custom_settings,
            std::vector<std::string>{"a.b"});
  EXPECT_STREQ(analyze_session_effects("SELECT * INTO TEMP t FROM u").pin_reason,
               "temporary table");
  EXPECT_TRUE(analyze_session_effects("SELECT set_config FROM t").may_change_settings);
}

}  // namespace
}  // namespace pglane::routing
