// Failover on real servers (../shared/TESTING.md F34-F36, F38): each test runs its own cluster
// (ScratchCluster), kills or stops its primary, promotes a replica, and checks what clients of
// pglane saw and what the servers hold afterwards.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/failover_util.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

// Every test runs with both topology sources: static (roles from pg_is_in_recovery() and
// timelines) and aurora (the sandbox's Aurora stand-in, roles from aurora_replica_status()).
class Failover : public ::testing::TestWithParam<bool> {
 protected:
  bool aurora() const { return GetParam(); }
  std::string flags() const { return aurora() ? "--aurora=local" : ""; }
  ProxySettings settings(const ScratchCluster& cl, int failover_timeout_ms = 10000) const {
    return failover_settings(cl, aurora(), failover_timeout_ms);
  }
};

// F34, F35: the primary dies (immediate shutdown) and its replica is promoted while a client
// writes through pglane. Every acknowledged write is on the new primary, writes resume soon after
// the promotion is visible, and once the old primary comes back as a standalone writer on its old
// timeline, nothing reaches it.
TEST_P(Failover, KillPromoteLosesNoAcknowledgedWriteAndFencesTheOldPrimary) {
  ScratchCluster cl(1, flags());
  ASSERT_TRUE(cl.ok()) << cl.error();
  create_writes_table(cl);
  // Commits are acknowledged once the replica has them (as Aurora acknowledges only durable
  // commits). With asynchronous replication a promotion itself loses the commits the replica had
  // not received yet, whatever the proxy does.
  {
    Conn su = superuser(cl, 0);
    exec_ok(su.get(), "ALTER SYSTEM SET synchronous_standby_names = '*'");
    exec_ok(su.get(), "ALTER SYSTEM SET synchronous_commit = on");  // the sandbox turns it off
    exec_ok(su.get(), "SELECT pg_reload_conf()");
  }
  Proxy proxy(settings(cl));
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "writer is 127.0.0.1:" + cl.port(0), 5s)) << proxy.log_tail();

  // A reader alongside: at most one failed read.
  std::atomic<bool> stop_reads{false};
  std::atomic<int> failed_reads{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    Conn c = connect(proxy.conninfo());
    while (!stop_reads) {
      if (PQstatus(c.get()) != CONNECTION_OK) {
        c = connect(proxy.conninfo("connect_timeout=5"));
        continue;
      }
      Result r = exec(c.get(), "SELECT count(*) FROM pg_class");
      if (PQresultStatus(r.get()) == PGRES_TUPLES_OK) {
        ++reads;
      } else {
        ++failed_reads;
      }
      std::this_thread::sleep_for(5ms);
    }
  });

  WriterLoop writes(proxy, 1);
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(cl.pg_ctl(0, "-m immediate stop"), 0);
  std::this_thread::sleep_for(300ms);
  const auto promote_started = Clock::now();
  ASSERT_EQ(cl.pg_ctl(1, "-w promote"), 0);
  Clock::time_point visible{};
  for (int i = 0; i < 200; ++i) {
    if (!in_recovery(cl, 1)) {
      visible = Clock::now();
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_NE(visible, Clock::time_point{}) << "the replica never left recovery";
  std::this_thread::sleep_for(2s);
  auto resumed = writes.first_ack_after(visible);
  ASSERT_TRUE(resumed.has_value()) << "no write acknowledged after the promotion\n"
                                   << proxy.log_tail();
  const auto outage = std::chrono::duration_cast<std::chrono::milliseconds>(*resumed - visible);
  auto from_promote = writes.first_ack_after(promote_started);
  std::printf(
      "[ failover ] first write acknowledged %lld ms after `pg_ctl promote` started, %lld ms "
      "after the test saw the promotion; %d write errors, %d failed reads of %d\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(*from_promote - promote_started)
              .count()),
      static_cast<long long>(outage.count()), writes.failures(), failed_reads.load(), reads.load());
  EXPECT_LE(outage, 1000ms) << proxy.log_tail();

  // The old primary comes back as a standalone writer on its old timeline.
  ASSERT_EQ(cl.pg_ctl(0, "-w -t 60 start"), 0);
  ASSERT_TRUE(wait_log(proxy, "127.0.0.1:" + cl.port(0) + " (local) claims to be a writer", 10s))
      << proxy.log_tail();
  const int64_t fenced_from = writes.next();
  std::this_thread::sleep_for(1s);
  writes.stop();
  stop_reads = true;
  reader.join();

  const std::set<int64_t> acked = writes.acknowledged();
  ASSERT_GT(acked.size(), 20u);
  ASSERT_GT(*acked.rbegin(), fenced_from) << "no write acknowledged once the old primary was back";
  Conn now_primary = superuser(cl, 1);
  std::set<int64_t> present;
  Result rows = exec(now_primary.get(), "SELECT id FROM fo_writes");
  ASSERT_EQ(PQresultStatus(rows.get()), PGRES_TUPLES_OK);
  for (int i = 0; i < PQntuples(rows.get()); ++i) {
    present.insert(std::atoll(PQgetvalue(rows.get(), i, 0)));
  }
  int lost = 0;
  for (int64_t id : acked) {
    lost += present.count(id) == 0 ? 1 : 0;
  }
  EXPECT_EQ(lost, 0) << "acknowledged writes missing on the new primary: " << acked.size()
                     << " acknowledged (" << *acked.begin() << ".." << *acked.rbegin() << "), "
                     << present.size() << " present"
                     << (present.empty() ? std::string()
                                         : " (" + std::to_string(*present.begin()) + ".." +
                                               std::to_string(*present.rbegin()) + ")");
  // Nothing written while the old primary was back reached it.
  Conn old_primary = superuser(cl, 0);
  ASSERT_EQ(PQstatus(old_primary.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(old_primary.get(), "SELECT count(*) FROM fo_writes WHERE id >= " +
                                               std::to_string(fenced_from)),
            "0")
      << "a write reached the old primary";
  EXPECT_LE(failed_reads.load(), 1);
  EXPECT_NE(proxy.log_tail(200000).find("writer is 127.0.0.1:" + cl.port(1)), std::string::npos);
}

// F36: a COMMIT in flight when the writer's backend dies gets 08007, never success; and the
// client's connection closes.
TEST_P(Failover, CommitInFlightWhenTheWriterDiesIsResolutionUnknown) {
  ScratchCluster cl(1, flags());
  ASSERT_TRUE(cl.ok()) << cl.error();
  create_writes_table(cl);
  Proxy proxy(settings(cl));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "BEGIN");
  exec_ok(c.get(), "INSERT INTO fo_writes VALUES (1)");
  const pid_t backend = std::atoi(query_value(c.get(), "SELECT pg_backend_pid()").c_str());
  ASSERT_GT(backend, 0);
  ASSERT_EQ(kill(backend, SIGSTOP), 0);
  ASSERT_EQ(PQsendQuery(c.get(), "COMMIT"), 1);
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(kill(backend, SIGKILL), 0);  // the postmaster restarts the cluster (crash recovery)
  std::string state;
  std::string message;
  while (PGresult* r = PQgetResult(c.get())) {
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
      state = "success";
    } else if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
      state = s;
      message = PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  EXPECT_EQ(state, "08007") << message << PQerrorMessage(c.get());
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  // The writer comes back (same instance, same timeline) and takes writes again.
  Conn again;
  for (int i = 0; i < 100; ++i) {
    again = connect(proxy.conninfo("connect_timeout=5"));
    if (PQstatus(again.get()) == CONNECTION_OK &&
        PQresultStatus(exec(again.get(), "INSERT INTO fo_writes VALUES (2)").get()) ==
            PGRES_COMMAND_OK) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(query_value(again.get(), "SELECT count(*) FROM fo_writes WHERE id = 2"), "1")
      << proxy.log_tail();
}

// F38: the primary hangs (SIGSTOP). pglane declares it lost within the probe timeout, a write
// waits no longer than failover_timeout_ms and fails with 57P03; reads go on on the replica, and
// writes resume when the primary does.
TEST_P(Failover, HungPrimaryIsDetectedAndWritesWaitNoLongerThanTheTimeout) {
  ScratchCluster cl(1, flags());
  ASSERT_TRUE(cl.ok()) << cl.error();
  create_writes_table(cl);
  Proxy proxy(settings(cl, 2000));
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "writer is 127.0.0.1:" + cl.port(0), 5s)) << proxy.log_tail();
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "INSERT INTO fo_writes VALUES (1)");
  // A client inside a transaction, whose next statement will be in flight when the writer hangs.
  Conn inflight = connect_ok(proxy.conninfo());
  exec_ok(inflight.get(), "BEGIN");
  exec_ok(inflight.get(), "INSERT INTO fo_writes VALUES (1000)");
  const pid_t postmaster = cl.postmaster_pid(0);
  ASSERT_GT(postmaster, 0);
  signal_instance(postmaster, SIGSTOP);
  struct Resume {
    pid_t pid;
    ~Resume() { signal_instance(pid, SIGCONT); }
  } resume{postmaster};
  const auto stopped = Clock::now();
  ASSERT_EQ(PQsendQuery(inflight.get(), "INSERT INTO fo_writes VALUES (1001)"), 1);
  ASSERT_TRUE(wait_log(proxy, "writer 127.0.0.1:" + cl.port(0) + " (local) lost", 5s))
      << proxy.log_tail();
  const auto detected = Clock::now() - stopped;
  // fall = 2 probes of timeout_ms = 500 each, plus an interval.
  EXPECT_LT(detected, 2500ms);
  // The statement in flight on the hung writer fails once the writer is declared lost (its
  // connection is cut), instead of waiting on TCP for minutes; the client's connection closes.
  std::string inflight_state;
  while (PGresult* r = PQgetResult(inflight.get())) {
    if (const char* st = PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
      inflight_state = st;
    }
    PQclear(r);
  }
  EXPECT_LT(Clock::now() - stopped, 3500ms);
  EXPECT_EQ(inflight_state, "08006") << PQerrorMessage(inflight.get());
  EXPECT_EQ(PQstatus(inflight.get()), CONNECTION_BAD);
  const auto start = Clock::now();
  Result r = exec(c.get(), "INSERT INTO fo_writes VALUES (2)");
  const auto waited = Clock::now() - start;
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(c.get())), "57P03") << PQerrorMessage(c.get());
  EXPECT_LT(waited, 3500ms);
  Conn reader = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(reader.get(), "SELECT 40 + 2"), "42");
  signal_instance(postmaster, SIGCONT);
  ASSERT_TRUE(wait_log(proxy, "writer is 127.0.0.1:" + cl.port(0), 5s, 2)) << proxy.log_tail();
  Conn after = connect_ok(proxy.conninfo());
  EXPECT_TRUE(eventually_ok(after, "INSERT INTO fo_writes VALUES (3)")) << proxy.log_tail();
}

INSTANTIATE_TEST_SUITE_P(Sources, Failover, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "aurora" : "static"; });

}  // namespace
}  // namespace pglane::itest
