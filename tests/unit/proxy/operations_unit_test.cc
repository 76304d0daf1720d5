// Pure parts of operations: console command words, histograms, the pause gate, SHOW CONFIG's
// masking and the Prometheus text (no servers).
#include <cstring>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "conf/describe.h"
#include "proxy/admin.h"
#include "proxy/metrics.h"
#include "proxy/metrics_http.h"
#include "proxy/sessions.h"

namespace pglane::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(AdminWords, LowerCasesSplitsAndStripsSemicolonsAndQuotes) {
  EXPECT_THAT(admin_words("  SHOW   Pools ;"), ElementsAre("show", "pools"));
  EXPECT_THAT(admin_words("pause \"MyDb\";"), ElementsAre("pause", "MyDb"));
  EXPECT_THAT(admin_words("SET log_level = 'DEBUG'"),
              ElementsAre("set", "log_level", "=", "DEBUG"));
  EXPECT_TRUE(admin_words(" \t\n;").empty());
  EXPECT_THAT(admin_words("kill\t42\r\n"), ElementsAre("kill", "42"));
}

TEST(Histogram, QuantilesAreBucketUpperBounds) {
  Histogram h;
  for (int i = 0; i < 98; ++i) {
    h.observe_us(80);  // <= 100 us
  }
  h.observe_us(3000);      // <= 5 ms
  h.observe_us(20000000);  // above every bound
  Histogram::Totals t;
  t.add(h);
  EXPECT_EQ(t.count, 100u);
  EXPECT_EQ(t.quantile_us(0.5), 100u);
  EXPECT_EQ(t.quantile_us(0.99), 5000u);
  EXPECT_GT(t.quantile_us(1.0), Histogram::kBoundsUs.back());
  Histogram::Totals empty;
  EXPECT_EQ(empty.quantile_us(0.99), 0u);
}

TEST(PauseGate, PausesOneDatabaseOrAll) {
  PauseGate g;
  EXPECT_FALSE(g.any());
  g.pause("app");
  EXPECT_TRUE(g.paused("app"));
  EXPECT_FALSE(g.paused("other"));
  EXPECT_FALSE(g.resume("other"));
  EXPECT_TRUE(g.resume("app"));
  EXPECT_FALSE(g.any());
  g.pause("");
  EXPECT_TRUE(g.paused("anything"));
  EXPECT_THAT(g.list(), ElementsAre("*"));
  EXPECT_TRUE(g.resume(""));
  EXPECT_FALSE(g.any());
}

TEST(SessionEntry, DrainWaitsForTheFirstTransactionKillDoesNot) {
  SessionEntry e;
  int woken = 0;
  e.wake = [&] { ++woken; };
  e.set_state(ClientState::kIdle);
  e.request_end(false);
  EXPECT_FALSE(e.should_end_now());  // connected, no transaction yet: it is served first
  EXPECT_EQ(woken, 0);
  e.transactions = 1;
  EXPECT_TRUE(e.should_end_now());
  e.request_end(false);
  EXPECT_EQ(woken, 1);
  SessionEntry active;
  active.wake = [&] { ++woken; };
  active.set_state(ClientState::kActive);
  active.transactions = 3;
  active.request_end(false);
  EXPECT_EQ(woken, 1);  // mid-transaction: ends at its boundary, not woken
  active.request_end(true);
  EXPECT_EQ(woken, 2);
  EXPECT_TRUE(active.should_end_now());
}

TEST(DescribeConfig, MasksEverySecret) {
  conf::Config c;
  c.backend.service.user = "svc";
  c.backend.service.password = "hunter2";
  c.backend.per_user["bob"] = {"bob_srv", "s3cret"};
  c.health.credential.password = "probe-pw";
  c.analytics.enabled = true;
  c.analytics.credential.password = "redshift-pw";
  std::string all;
  for (const auto& [k, v] : conf::describe(c)) {
    all += k + "=" + v + "\n";
  }
  for (const char* secret : {"hunter2", "s3cret", "probe-pw", "redshift-pw"}) {
    EXPECT_EQ(all.find(secret), std::string::npos) << secret;
  }
  EXPECT_THAT(all, HasSubstr("backend.password=********"));
  EXPECT_THAT(all, HasSubstr("backend.user=svc"));
}

TEST(PrometheusText, EveryFamilyHasHelpAndTypeAndHistogramsEndInInf) {
  worker_metrics(0).xact_by_route[0].observe_us(1500);
  worker_metrics(0).user_stats("app", "alice").transactions.add();
  std::string text = prometheus_text();
  EXPECT_THAT(text, HasSubstr("# TYPE pglane_clients_active gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE pglane_transaction_duration_seconds histogram\n"));
  EXPECT_THAT(
      text,
      HasSubstr("pglane_transaction_duration_seconds_bucket{route=\"writer\",le=\"0.0025\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("pglane_transaction_duration_seconds_bucket{route=\"writer\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("pglane_transactions_total{database=\"app\",user=\"alice\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("pglane_info{version=\""));
  // Every sample's family was declared.
  for (size_t at = 0; (at = text.find("\npglane_", at)) != std::string::npos; ++at) {
    std::string name = text.substr(at + 1, text.find_first_of("{ ", at + 1) - at - 1);
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() > std::strlen(suffix) &&
          name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0 &&
          text.find("# TYPE " + name + " ") == std::string::npos) {
        name.resize(name.size() - std::strlen(suffix));
      }
    }
    EXPECT_THAT(text, HasSubstr("# TYPE " + name + " ")) << name;
  }
}

}  // namespace
}  // namespace pglane::proxy
