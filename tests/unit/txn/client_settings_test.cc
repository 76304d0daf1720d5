#include "txn/client_settings.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "routing/session_effects.h"

namespace pglane::txn {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Rows = std::vector<std::vector<std::string>>;

routing::SessionEffects fx(const char* sql) {
  return routing::analyze_session_effects(sql);
}

TEST(ClientSettings, QuoteLiteralIsSafeWhateverStandardConformingStrings) {
  EXPECT_EQ(quote_literal("plain"), "E'plain'");
  EXPECT_EQ(quote_literal("it's"), "E'it''s'");
  EXPECT_EQ(quote_literal("a\\'; DROP"), "E'a\\\\''; DROP'");
  EXPECT_EQ(set_config_sql({{"a.b", "x"}, {"TimeZone", "UTC"}}),
            "SELECT pg_catalog.set_config(E'a.b', E'x', false), "
            "pg_catalog.set_config(E'TimeZone', E'UTC', false)");
}

TEST(ClientSettings, CustomNamesAreReadBackByName) {
  ClientSettings s;
  EXPECT_THAT(s.read_query(), Not(HasSubstr("current_setting")));
  s.note(fx("SET app.tenant = 't2'"), true, false);
  EXPECT_TRUE(s.dirty());
  EXPECT_THAT(s.read_query(), HasSubstr("ARRAY[E'app.tenant']"));
  EXPECT_TRUE(s.absorb(Rows{{"app.tenant", "t2"}}).empty());
  EXPECT_FALSE(s.dirty());
  EXPECT_NE(s.fingerprint(), 0u);
  EXPECT_EQ(s.fingerprint() % 2, 1u);
}

TEST(ClientSettings, FingerprintsDecideTheReplay) {
  ClientSettings a;
  EXPECT_EQ(a.fingerprint(), 0u);
  EXPECT_EQ(a.replay_sql(0), "");
  EXPECT_EQ(a.replay_sql(kTaintedSettings), "RESET ALL");  // defaults, from a tainted server
  a.absorb(Rows{{"app.tenant", "t2"}, {"statement_timeout", "5000"}});
  EXPECT_EQ(a.replay_sql(a.fingerprint()), "");
  EXPECT_EQ(a.replay_sql(0),
            "RESET ALL;SELECT pg_catalog.set_config(E'app.tenant', E't2', false), "
            "pg_catalog.set_config(E'statement_timeout', E'5000', false)");
  ClientSettings b;
  b.absorb(Rows{{"app.tenant", "t1"}, {"statement_timeout", "5000"}});
  EXPECT_NE(a.fingerprint(), b.fingerprint());
}

TEST(ClientSettings, OpaqueCodeTaintsTheServerOnce) {
  ClientSettings s;
  s.note(fx("CALL p()"), true, false);
  EXPECT_TRUE(s.dirty());
  s.absorb({});
  EXPECT_EQ(s.release_fingerprint(), kTaintedSettings);
  EXPECT_EQ(s.release_fingerprint(), 0u);  // the next server it uses is clean again
  s.note(fx("SELECT my_helper()"), true, false);
  EXPECT_EQ(s.release_fingerprint(), kTaintedSettings);
  s.note(fx("SELECT my_helper()"), false, false);  // pool.reset_after_unknown_functions off
  EXPECT_EQ(s.release_fingerprint(), 0u);
  s.note(fx("SELECT 1"), true, /*scs_off=*/true);
  EXPECT_EQ(s.release_fingerprint(), kTaintedSettings);
}

TEST(ClientSettings, ResetReturnsStartupValuesButEmptyStaysEmpty) {
  ClientSettings s;
  s.set_startup({{"application_name", "app"}, {"app.tenant", "t2"}});
  EXPECT_THAT(s.read_query(), HasSubstr("E'app.tenant'"));
  // Applied at login: both present.
  EXPECT_TRUE(s.absorb(Rows{{"app.tenant", "t2"}, {"application_name", "app"}}).empty());
  // SET app.tenant = '': kept.
  s.note(fx("SET app.tenant = ''"), true, false);
  EXPECT_TRUE(s.absorb(Rows{{"app.tenant", ""}, {"application_name", "app"}}).empty());
  // RESET app.tenant: back to the startup value; RESET ALL: both.
  s.note(fx("RESET app.tenant"), true, false);
  EXPECT_EQ(s.absorb(Rows{{"app.tenant", ""}, {"application_name", "app"}}),
            (SettingList{{"app.tenant", "t2"}}));
  s.note(fx("RESET ALL"), true, false);
  EXPECT_EQ(s.absorb(Rows{{"app.tenant", ""}}),
            (SettingList{{"application_name", "app"}, {"app.tenant", "t2"}}));
}

TEST(ClientSettings, RoutingRelevantSettings) {
  ClientSettings s;
  s.absorb(Rows{{"default_transaction_isolation", "serializable"},
                {"default_transaction_read_only", "on"},
                {"standard_conforming_strings", "off"}});
  EXPECT_TRUE(s.default_read_only());
  EXPECT_TRUE(s.default_serializable());
  EXPECT_EQ(s.scs_off(), true);
  s.absorb({});
  EXPECT_FALSE(s.default_read_only());
  EXPECT_FALSE(s.scs_off().has_value());
}

}  // namespace
}  // namespace pglane::txn
