#include "protocol/startup_options.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace pglane::protocol {
namespace {

using Settings = std::vector<std::pair<std::string, std::string>>;

TEST(StartupOptions, SplitsLikeThePostmaster) {
  Settings out;
  ASSERT_TRUE(parse_options("-c statement_timeout=5s --work-mem=8MB -capp.tenant=t\\ 2", out));
  EXPECT_EQ(out,
            (Settings{{"statement_timeout", "5s"}, {"work_mem", "8MB"}, {"app.tenant", "t 2"}}));
  out.clear();
  ASSERT_TRUE(parse_options("  ", out));
  EXPECT_TRUE(out.empty());
}

TEST(StartupOptions, OtherSwitchesAreRefused) {
  Settings out;
  EXPECT_FALSE(parse_options("-D /data", out));
  EXPECT_FALSE(parse_options("-c novalue", out));
  EXPECT_FALSE(parse_options("-c", out));
}

TEST(StartupOptions, SafeNames) {
  EXPECT_TRUE(is_safe_guc_name("application_name"));
  EXPECT_TRUE(is_safe_guc_name("app.tenant"));
  EXPECT_FALSE(is_safe_guc_name(""));
  EXPECT_FALSE(is_safe_guc_name("a;b"));
  EXPECT_FALSE(is_safe_guc_name("a b"));
  EXPECT_FALSE(is_safe_guc_name(std::string(64, 'a')));
}

}  // namespace
}  // namespace pglane::protocol
