// Placement (routing/placement.h) against a scripted health view: no servers, no clock.
#include "routing/placement.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

namespace pglane::routing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class FakeView : public HealthView {
 public:
  bool has_analytics() const override { return analytics; }
  void replicas(std::vector<Candidate>& out) const override {
    out.insert(out.end(), reps.begin(), reps.end());
  }
  std::optional<uint64_t> writer_lsn_since(Clock::time_point t) override {
    ++lsn_asks;
    asked_since = t;
    return lsn;
  }

  bool analytics = false;
  std::vector<Candidate> reps;
  std::optional<uint64_t> lsn;
  int lsn_asks = 0;
  Clock::time_point asked_since;
};

Candidate replica(int region, uint64_t replay_lsn = 0, int64_t rtt_us = 100) {
  Candidate c;
  c.healthy = true;
  c.region = region;
  c.replay_lsn = replay_lsn;
  c.rtt_us = rtt_us;
  return c;
}

constexpr Decision kRead{Route::kReader, "read"};
constexpr Decision kWrite{Route::kWriter, "writes"};
constexpr Decision kAnalyticsWork{Route::kAnalytics, "hint"};

class PlacementTest : public ::testing::Test {
 protected:
  Placement place(const Decision& d, std::vector<int> excluded = {}) {
    return placer_.place(d, view_, excluded, now_);
  }
  void use(PlacementPolicy policy) { placer_ = Placer(policy); }

  FakeView view_;
  PlacementPolicy policy_;
  Placer placer_{policy_};
  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1);
};

TEST_F(PlacementTest, WriteGoesToTheWriter) {
  view_.reps = {replica(0)};
  Placement p = place(kWrite);
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_EQ(p.route, Route::kWriter);
  EXPECT_FALSE(p.fallback);
  EXPECT_FALSE(p.ryw_fallback);
  EXPECT_STREQ(describe(p), "writer");
}

TEST_F(PlacementTest, AnalyticsWithAnAnalyticsEndpoint) {
  view_.analytics = true;
  view_.reps = {replica(0)};
  Placement p = place(kAnalyticsWork);
  EXPECT_EQ(p.where, Placement::Where::kAnalytics);
  EXPECT_EQ(p.route, Route::kAnalytics);
  EXPECT_STREQ(describe(p), "analytics");
}

TEST_F(PlacementTest, AnalyticsWithoutAnAnalyticsEndpointIsARead) {
  view_.reps = {replica(0)};
  Placement p = place(kAnalyticsWork);
  EXPECT_EQ(p.where, Placement::Where::kReplica);
  EXPECT_EQ(p.replica, 0);
  EXPECT_EQ(p.route, Route::kReader);
}

TEST_F(PlacementTest, ReadGoesToAReplicaOfOurRegionFirst) {
  view_.reps = {replica(1, 0, 10), replica(0, 0, 5000), replica(2, 0, 1)};
  Placement p = place(kRead);
  EXPECT_EQ(p.where, Placement::Where::kReplica);
  EXPECT_EQ(p.replica, 1);
  EXPECT_EQ(p.region, 0);
  EXPECT_EQ(p.route, Route::kReader);
  EXPECT_FALSE(p.fallback);
  EXPECT_STREQ(describe(p), "local replica");
}

TEST_F(PlacementTest, RemoteReplicaWhenOurRegionHasNone) {
  view_.reps = {replica(1, 0, 10), replica(2, 0, 1)};
  view_.reps.push_back(replica(0));
  view_.reps.back().healthy = false;
  Placement p = place(kRead);
  EXPECT_EQ(p.replica, 1);  // the shortest round trip
  EXPECT_EQ(p.region, 2);
  EXPECT_STREQ(describe(p), "remote replica");
}

TEST_F(PlacementTest, ExcludedReplicaIsSkipped) {
  view_.reps = {replica(0), replica(0)};
  EXPECT_EQ(place(kRead, {0}).replica, 1);
  EXPECT_EQ(place(kRead, {1}).replica, 0);
  EXPECT_EQ(place(kRead, {7, -1}).where, Placement::Where::kReplica);  // not a replica's index
  Placement p = place(kRead, {0, 1});
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_TRUE(p.fallback);
}

TEST_F(PlacementTest, LaggingReplicaIsSkipped) {
  view_.reps = {replica(0), replica(1)};
  view_.reps[0].lag_ms = 1001;
  EXPECT_EQ(place(kRead).replica, 1);
}

TEST_F(PlacementTest, NoHealthyReplicaSendsReadsToTheWriter) {
  view_.reps = {replica(0), replica(1)};
  view_.reps[0].healthy = false;
  view_.reps[1].healthy = false;
  Placement p = place(kRead);
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_EQ(p.route, Route::kWriter);
  EXPECT_TRUE(p.fallback);
  EXPECT_FALSE(p.ryw_fallback);
  EXPECT_STREQ(describe(p), "writer (no replica qualifies)");
  view_.reps.clear();
  EXPECT_TRUE(place(kRead).fallback);
}

TEST_F(PlacementTest, NoHealthyReplicaIsNowhereWhenConfiguredToFail) {
  policy_.error_when_no_replica = true;
  use(policy_);
  view_.reps = {replica(0)};
  view_.reps[0].healthy = false;
  Placement p = place(kRead);
  EXPECT_EQ(p.where, Placement::Where::kNowhere);
  EXPECT_EQ(p.route, Route::kReader);
  EXPECT_STREQ(describe(p), "nowhere");
  EXPECT_EQ(place(kWrite).where, Placement::Where::kWriter);  // writes are not affected
}

TEST_F(PlacementTest, ReadAfterWriteWaitsForTheWriterPosition) {
  view_.reps = {replica(0, 90), replica(0, 150)};
  const auto wrote_at = now_;
  placer_.wrote(wrote_at);
  now_ += milliseconds(5);
  Placement p = place(kRead);  // the position after the write is not known yet
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_TRUE(p.fallback);
  EXPECT_TRUE(p.ryw_fallback);
  EXPECT_STREQ(describe(p), "writer (read-your-writes)");
  EXPECT_EQ(view_.asked_since, wrote_at);

  view_.lsn = 100;
  p = place(kRead);
  EXPECT_EQ(p.where, Placement::Where::kReplica);
  EXPECT_EQ(p.replica, 1);  // replica 0 has not replayed the write
  EXPECT_FALSE(p.fallback);

  // The position is learnt once.
  const int asks = view_.lsn_asks;
  view_.lsn.reset();
  EXPECT_EQ(place(kRead).replica, 1);
  EXPECT_EQ(view_.lsn_asks, asks);
}

TEST_F(PlacementTest, WritesDoNotWaitForReadYourWrites) {
  view_.reps = {replica(0)};
  placer_.wrote(now_);
  Placement p = place(kWrite);
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_FALSE(p.fallback);
  EXPECT_EQ(view_.lsn_asks, 0);
}

TEST_F(PlacementTest, NoReplicaPastTheWriteMeansTheWriterEvenWhenConfiguredToFail) {
  policy_.error_when_no_replica = true;
  use(policy_);
  view_.reps = {replica(0, 90)};
  view_.lsn = 100;
  placer_.wrote(now_);
  Placement p = place(kRead);
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_TRUE(p.fallback);
  EXPECT_TRUE(p.ryw_fallback);
  view_.reps[0].replay_lsn = 100;
  EXPECT_EQ(place(kRead).where, Placement::Where::kReplica);
}

TEST_F(PlacementTest, ANewWriteForgetsTheOldPosition) {
  view_.reps = {replica(0, 150)};
  view_.lsn = 100;
  placer_.wrote(now_);
  EXPECT_EQ(place(kRead).where, Placement::Where::kReplica);
  now_ += milliseconds(10);
  placer_.wrote(now_);
  view_.lsn = 200;
  Placement p = place(kRead);
  EXPECT_EQ(view_.asked_since, now_);
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_TRUE(p.ryw_fallback);
}

TEST_F(PlacementTest, WindowKeepsReadsOnTheWriterForAWhile) {
  policy_.read_your_writes = ReadYourWritesMode::kWindow;
  policy_.window = milliseconds(2000);
  use(policy_);
  view_.reps = {replica(0)};
  placer_.wrote(now_);
  now_ += milliseconds(1999);
  Placement p = place(kRead);
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_TRUE(p.ryw_fallback);
  now_ += milliseconds(1);
  EXPECT_EQ(place(kRead).where, Placement::Where::kReplica);
  EXPECT_EQ(view_.lsn_asks, 0);
  // The window is over for good, until the next write.
  view_.reps[0].healthy = false;
  p = place(kRead);
  EXPECT_TRUE(p.fallback);
  EXPECT_FALSE(p.ryw_fallback);
}

TEST_F(PlacementTest, OffIgnoresWrites) {
  policy_.read_your_writes = ReadYourWritesMode::kOff;
  use(policy_);
  view_.reps = {replica(0, 1)};
  placer_.wrote(now_);
  Placement p = place(kRead);
  EXPECT_EQ(p.where, Placement::Where::kReplica);
  EXPECT_EQ(view_.lsn_asks, 0);
}

}  // namespace
}  // namespace pglane::routing
