// WriterElection: who the writer is, from what instances report of themselves. And may_commit.
#include "routing/election.h"

#include "routing/commit.h"

#include <gtest/gtest.h>

namespace pglane::routing {
namespace {

using Event = WriterElection::Event;

InstanceReport primary(uint64_t timeline) {
  return {true, true, timeline};
}
InstanceReport standby() {
  return {true, false, 0};
}
InstanceReport down() {
  return {false, false, 0};
}

TEST(WriterElection, FirstElectionWaitsForEveryInstance) {
  WriterElection e(3, 2);
  EXPECT_EQ(e.report(0, primary(1)), Event::kNone);  // 1 and 2 not heard from yet
  EXPECT_EQ(e.writer(), -1);
  EXPECT_TRUE(e.searching());
  EXPECT_EQ(e.report(1, standby()), Event::kNone);
  EXPECT_EQ(e.report(2, down()), Event::kChosen);
  EXPECT_EQ(e.writer(), 0);
  EXPECT_FALSE(e.searching());
}

TEST(WriterElection, NewestTimelineWinsTheFirstElection) {
  // A stale primary (an old writer restarted standalone) answers first.
  WriterElection e(2, 2);
  e.report(0, primary(1));
  EXPECT_EQ(e.report(1, primary(2)), Event::kChosen);
  EXPECT_EQ(e.writer(), 1);
  EXPECT_TRUE(e.fenced(0));
  EXPECT_EQ(e.report(0, primary(1)), Event::kFenced);
  EXPECT_EQ(e.report(0, primary(1)), Event::kNone);  // said once
}

TEST(WriterElection, TwoClaimantsOnOneTimelineAreAmbiguous) {
  WriterElection e(2, 2);
  e.report(0, primary(3));
  EXPECT_EQ(e.report(1, primary(3)), Event::kAmbiguous);
  EXPECT_EQ(e.writer(), -1);
  EXPECT_EQ(e.report(1, primary(3)), Event::kNone);
  EXPECT_EQ(e.report(1, standby()), Event::kChosen);  // one stops claiming
  EXPECT_EQ(e.writer(), 0);
}

TEST(WriterElection, LostAfterFallFailuresThenPromotedReplicaChosen) {
  WriterElection e(2, 2);
  e.report(0, primary(1));
  e.report(1, standby());
  ASSERT_EQ(e.writer(), 0);
  EXPECT_EQ(e.report(0, down()), Event::kNone);
  EXPECT_EQ(e.writer(), 0);
  EXPECT_EQ(e.report(0, down()), Event::kLost);
  EXPECT_EQ(e.writer(), -1);
  EXPECT_TRUE(e.searching());
  const uint64_t before = e.changes();
  EXPECT_EQ(e.report(1, primary(2)), Event::kChosen);
  EXPECT_EQ(e.writer(), 1);
  EXPECT_EQ(e.writer_timeline(), 2u);
  EXPECT_EQ(e.changes(), before + 1);
  // The old writer returns as a standalone primary on its old timeline: fenced.
  EXPECT_EQ(e.report(0, primary(1)), Event::kFenced);
  EXPECT_EQ(e.writer(), 1);
}

TEST(WriterElection, OldWriterReturningOnItsTimelineIsNotElectedOverNobodyElse) {
  // No promotion happened: the same writer, back on its own timeline, is the writer again.
  WriterElection e(2, 1);
  e.report(0, primary(4));
  e.report(1, standby());
  EXPECT_EQ(e.report(0, down()), Event::kLost);
  EXPECT_EQ(e.report(0, primary(4)), Event::kChosen);
  EXPECT_EQ(e.writer(), 0);
}

TEST(WriterElection, StalePrimaryIsNotElectedWhileTheWriterIsMissing) {
  WriterElection e(3, 1);
  e.report(0, primary(1));
  e.report(1, standby());
  e.report(2, standby());
  e.report(1, down());
  e.report(2, standby());
  EXPECT_EQ(e.report(0, down()), Event::kLost);
  e.report(1, primary(2));  // promoted
  ASSERT_EQ(e.writer(), 1);
  EXPECT_EQ(e.report(1, down()), Event::kLost);  // and lost in turn
  // The first writer comes back on timeline 1: older than the last confirmed writer's.
  EXPECT_EQ(e.report(0, primary(1)), Event::kFenced);
  EXPECT_EQ(e.writer(), -1);
  EXPECT_EQ(e.report(2, primary(3)), Event::kChosen);
  EXPECT_EQ(e.writer(), 2);
}

TEST(WriterElection, DemotedWriterIsLostAtOnce) {
  WriterElection e(2, 3);
  e.report(0, primary(1));
  e.report(1, standby());
  EXPECT_EQ(e.report(0, standby()), Event::kLost);
  EXPECT_EQ(e.writer(), -1);
}

TEST(WriterElection, NewerTimelineDisplacesAWriterThatStillAnswers) {
  WriterElection e(2, 2);
  e.report(0, primary(1));
  e.report(1, standby());
  EXPECT_EQ(e.report(1, primary(2)), Event::kChosen);
  EXPECT_EQ(e.writer(), 1);
  EXPECT_EQ(e.report(0, primary(1)), Event::kFenced);
}

TEST(WriterElection, SuspicionSearchesUntilTheWriterAnswers) {
  WriterElection e(2, 2);
  e.report(0, primary(1));
  e.report(1, standby());
  EXPECT_FALSE(e.searching());
  e.suspect();
  EXPECT_TRUE(e.searching());
  EXPECT_EQ(e.report(0, primary(1)), Event::kNone);
  EXPECT_FALSE(e.searching());
  EXPECT_EQ(e.writer(), 0);
}

TEST(WriterElection, UnknownTimelinesNeedExactlyOneClaimant) {
  // Aurora: no timelines. The elected writer stays; another claimant is fenced.
  WriterElection e(3, 1);
  e.report(0, primary(0));
  e.report(1, standby());
  EXPECT_EQ(e.report(2, standby()), Event::kChosen);
  EXPECT_EQ(e.report(1, primary(0)), Event::kFenced);
  EXPECT_EQ(e.writer(), 0);
  EXPECT_EQ(e.report(0, down()), Event::kChosen);  // lost, and the other claimant takes over
  EXPECT_EQ(e.writer(), 1);
}

TEST(WriterElection, InstancesAddedLaterTakePart) {
  WriterElection e(1, 1);
  e.report(0, primary(0));
  ASSERT_EQ(e.writer(), 0);
  e.add_instance();
  EXPECT_EQ(e.size(), 2u);
  EXPECT_EQ(e.report(1, standby()), Event::kNone);
  EXPECT_EQ(e.report(0, standby()), Event::kLost);
  EXPECT_EQ(e.report(1, primary(0)), Event::kChosen);
}

}  // namespace
}  // namespace pglane::routing

// may_commit: the texts whose loss in flight is "transaction resolution unknown".

namespace pglane::routing {
namespace {

TEST(MayCommit, CommitLikeStatements) {
  EXPECT_TRUE(may_commit("COMMIT"));
  EXPECT_TRUE(may_commit("commit;"));
  EXPECT_TRUE(may_commit("END"));
  EXPECT_TRUE(may_commit("/* c */ COMMIT AND CHAIN"));
  EXPECT_TRUE(may_commit("COMMIT PREPARED 'x'"));
  EXPECT_TRUE(may_commit("PREPARE TRANSACTION 'x'"));
  EXPECT_TRUE(may_commit("INSERT INTO t VALUES (1); COMMIT"));
  // Several statements the lexer cannot follow: assume they may.
  EXPECT_TRUE(may_commit("INSERT INTO t VALUES (1); SELECT 'unterminated"));
  EXPECT_TRUE(may_commit("  end ;; "));
  EXPECT_TRUE(may_commit("SELECT ';'; COMMIT"));
}

TEST(MayCommit, OtherStatements) {
  EXPECT_FALSE(may_commit("ROLLBACK"));
  EXPECT_FALSE(may_commit("BEGIN"));
  EXPECT_FALSE(may_commit("SELECT 'COMMIT'"));
  EXPECT_FALSE(may_commit("INSERT INTO t VALUES (1)"));
  EXPECT_FALSE(may_commit("PREPARE p AS SELECT 1"));
  EXPECT_FALSE(may_commit("SELECT commit FROM t"));
  EXPECT_FALSE(may_commit("ENDX"));
  EXPECT_FALSE(may_commit("SELECT ';'"));
  // One statement the server cannot parse commits nothing.
  EXPECT_FALSE(may_commit("SELECT 'unterminated"));
}

}  // namespace
}  // namespace pglane::routing
