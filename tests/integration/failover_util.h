// Helpers of the failover tests (failover_test.cc, aurora_test.cc): clusters of their own, a
// client writing through pglane, waiting on pglane's log, hanging a server.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace pglane::itest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The [[regions]] of an aurora source over a scratch cluster: instances instance-1.. mapped to
// their ports (the first `mapped` of them; the others reachable by no address), the first
// primary as the cluster endpoint.
inline std::string aurora_region_toml(const ScratchCluster& cl, int mapped = -1,
                                      const std::string& name = "local") {
  std::string t = "[[regions]]\nname = \"" + name + "\"\nsource = \"aurora\"\n" +
                  "cluster_endpoint = \"127.0.0.1:" + cl.port(0) + "\"\n[regions.instances]\n";
  const int n = mapped < 0 ? cl.instances() : mapped;
  for (int i = 0; i < n; ++i) {
    t += "instance-" + std::to_string(i + 1) + " = \"127.0.0.1:" + cl.port(i) + "\"\n";
  }
  return t;
}

inline ProxySettings failover_settings(const ScratchCluster& cl, bool aurora,
                                       int failover_timeout_ms = 10000) {
  ProxySettings s;
  s.cluster = &cl;
  s.pool_mode = "transaction";
  s.pool_size = 5;
  s.backend_tls_mode = "require";
  if (aurora) {
    s.regions_toml = aurora_region_toml(cl);
  } else {
    s.readers = {"127.0.0.1:" + cl.port(1)};
  }
  s.extra_toml =
      "[health]\ninterval_ms = 200\ntimeout_ms = 500\nfall = 2\n"
      "failover_interval_ms = 50\nfailover_timeout_ms = " +
      std::to_string(failover_timeout_ms) + "\n";
  return s;
}

inline Conn superuser(const ScratchCluster& cl, int instance) {
  return connect(cl.superuser_conninfo(instance));
}

// The table the tests write to, on the first primary.
inline void create_writes_table(const ScratchCluster& cl) {
  Conn su = superuser(cl, 0);
  exec_ok(su.get(), "CREATE TABLE fo_writes (id bigint PRIMARY KEY)");
  exec_ok(su.get(), "GRANT ALL ON fo_writes TO pglane_app");
}

// Runs `sql` on `c` until it succeeds (at most 50 tries, 100 ms apart): writes resuming after a
// failover.
inline bool eventually_ok(Conn& c, const std::string& sql) {
  for (int i = 0; i < 50; ++i) {
    if (PQresultStatus(exec(c.get(), sql).get()) == PGRES_COMMAND_OK) {
      return true;
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

inline bool in_recovery(const ScratchCluster& cl, int instance) {
  Conn c = superuser(cl, instance);
  return PQstatus(c.get()) == CONNECTION_OK &&
         query_value(c.get(), "SELECT pg_is_in_recovery()") == "t";
}

inline int count_in_log(const Proxy& proxy, const std::string& text) {
  const std::string log = proxy.log_tail(1000000);
  int n = 0;
  for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) {
    ++n;
  }
  return n;
}

// Waits until pglane's log holds `text` at least `times` times.
inline bool wait_log(const Proxy& proxy, const std::string& text, std::chrono::milliseconds timeout,
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
inline void signal_instance(pid_t postmaster, int sig) {
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

}  // namespace pglane::itest
