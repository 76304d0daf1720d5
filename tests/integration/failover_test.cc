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

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

ProxySettings failover_settings(const ScratchCluster& cl, int failover_timeout_ms = 10000) {
  ProxySettings s;
  s.cluster = &cl;
  s.pool_mode = "transaction";
  s.pool_size = 5;
  s.backend_tls_mode = "require";
  s.readers = {"127.0.0.1:" + cl.port(1)};
  s.extra_toml =
      "[health]\ninterval_ms = 200\ntimeout_ms = 500\nfall = 2\n"
      "failover_interval_ms = 50\nfailover_timeout_ms = " +
      std::to_string(failover_timeout_ms) + "\n";
  return s;
}

Conn superuser(const ScratchCluster& cl, int instance) {
  return connect(cl.superuser_conninfo(instance));
}

// The table the tests write to, on the first primary.
void create_writes_table(const ScratchCluster& cl) {
  Conn su = superuser(cl, 0);
  exec_ok(su.get(), "CREATE TABLE fo_writes (id bigint PRIMARY KEY)");
  exec_ok(su.get(), "GRANT ALL ON fo_writes TO pglane_app");
}

bool in_recovery(const ScratchCluster& cl, int instance) {
  Conn c = superuser(cl, instance);
  return PQstatus(c.get()) == CONNECTION_OK &&
         query_value(c.get(), "SELECT pg_is_in_recovery()") == "t";
}

int count_in_log(const Proxy& proxy, const std::string& text) {
  const std::string log = proxy.log_tail(1000000);
  int n = 0;
  for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) {
    ++n;
  }
  return n;
}

// Waits until pglane's log holds `text` at least `times` times.
bool wait_log(const Proxy& proxy, const std::string& text, std::chrono::milliseconds timeout,
              int times = 1) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (count_in_log(proxy, text) >= times) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// SIGSTOP / SIGCONT to a postmaster and every process it forked (the backends).
void signal_instance(pid_t postmaster, int sig) {
  const char* name = sig == SIGSTOP ? "STOP" : "CONT";
  std::string cmd = std::string("pkill -") + name + " -P " + std::to_string(postmaster);
  (void)std::system(cmd.c_str());
  kill(postmaster, sig);
}

// One client writing rows 1, 2, 3... through pglane in autocommit, reconnecting after an error.
class WriterLoop {
 public:
  WriterLoop(const Proxy& proxy, int64_t first) : proxy_(proxy), next_(first) {
    thread_ = std::thread([this] { run(); });
  }
  ~WriterLoop() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  std::set<int64_t> acknowledged() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  int failures() const { return failures_; }
  int64_t next() const { return next_; }
  // The first acknowledgement at or after `t`.
  std::optional<Clock::time_point> first_ack_after(Clock::time_point t) {
    std::lock_guard lock(mu_);
    for (auto at : ack_times_) {
      if (at >= t) {
        return at;
      }
    }
    return std::nullopt;
  }

 private:
  void run() {
    Conn c;
    while (!stop_) {
      if (!c || PQstatus(c.get()) != CONNECTION_OK) {
        c = connect(proxy_.conninfo("connect_timeout=5"));
        if (PQstatus(c.get()) != CONNECTION_OK) {
          ++failures_;
          std::this_thread::sleep_for(20ms);
          continue;
        }
      }
      const int64_t id = next_++;
      Result r = exec(c.get(), "INSERT INTO fo_writes VALUES (" + std::to_string(id) + ")");
      if (PQresultStatus(r.get()) == PGRES_COMMAND_OK) {
        std::lock_guard lock(mu_);
        acked_.insert(id);
        ack_times_.push_back(Clock::now());
      } else {
        ++failures_;
        std::this_thread::sleep_for(10ms);
      }
    }
  }

  const Proxy& proxy_;
  std::atomic<int64_t> next_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::mutex mu_;
  std::set<int64_t> acked_;
  std::vector<Clock::time_point> ack_times_;
  std::thread thread_;
};

// F34, F35: the primary dies (immediate shutdown) and its replica is promoted while a client
// writes through pglane. Every acknowledged write is on the new primary, writes resume soon after
// the promotion is visible, and once the old primary comes back as a standalone writer on its old
// timeline, nothing reaches it.
TEST(Failover, KillPromoteLosesNoAcknowledgedWriteAndFencesTheOldPrimary) {
  ScratchCluster cl(1);
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
  Proxy proxy(failover_settings(cl));
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
TEST(Failover, CommitInFlightWhenTheWriterDiesIsResolutionUnknown) {
  ScratchCluster cl(1);
  ASSERT_TRUE(cl.ok()) << cl.error();
  create_writes_table(cl);
  Proxy proxy(failover_settings(cl));
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
TEST(Failover, HungPrimaryIsDetectedAndWritesWaitNoLongerThanTheTimeout) {
  ScratchCluster cl(1);
  ASSERT_TRUE(cl.ok()) << cl.error();
  create_writes_table(cl);
  Proxy proxy(failover_settings(cl, 2000));
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "writer is 127.0.0.1:" + cl.port(0), 5s)) << proxy.log_tail();
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "INSERT INTO fo_writes VALUES (1)");
  const pid_t postmaster = cl.postmaster_pid(0);
  ASSERT_GT(postmaster, 0);
  signal_instance(postmaster, SIGSTOP);
  struct Resume {
    pid_t pid;
    ~Resume() { signal_instance(pid, SIGCONT); }
  } resume{postmaster};
  const auto stopped = Clock::now();
  ASSERT_TRUE(wait_log(proxy, "writer 127.0.0.1:" + cl.port(0) + " (local) lost", 5s))
      << proxy.log_tail();
  const auto detected = Clock::now() - stopped;
  // fall = 2 probes of timeout_ms = 500 each, plus an interval.
  EXPECT_LT(detected, 2500ms);
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
  bool wrote = false;
  for (int i = 0; i < 50 && !wrote; ++i) {
    wrote = PQresultStatus(exec(after.get(), "INSERT INTO fo_writes VALUES (3)").get()) ==
            PGRES_COMMAND_OK;
    if (!wrote) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_TRUE(wrote) << proxy.log_tail();
}

}  // namespace
}  // namespace pglane::itest
