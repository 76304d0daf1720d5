#include "proxy/lifecycle.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <functional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "conf/describe.h"
#include "conf/loader.h"
#include "proxy/handover.h"
#include "proxy/live.h"
#include "proxy/log.h"
#include "proxy/metrics_http.h"
#include "proxy/server.h"
#include "proxy/sessions.h"
#include "proxy/stats.h"
#include "proxy/topology.h"

namespace pglane::proxy {

using boost::system::error_code;

Lifecycle::Lifecycle(asio::io_context& control, Runtime& runtime,
                     std::vector<std::unique_ptr<Worker>>& workers, const conf::Config& cfg)
    : control_(control),
      runtime_(runtime),
      workers_(workers),
      signals_(control, SIGINT, SIGTERM, SIGHUP),
      shutdown_timeout_(cfg.proxy.shutdown_timeout_ms) {
  signals_.add(SIGUSR1);
  signals_.add(SIGUSR2);
}

static sigset_t lifecycle_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&set, s);
  }
  return set;
}

void block_lifecycle_signals() {
  const sigset_t set = lifecycle_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void Lifecycle::start() {
  wait_signal();
  // The handlers exist now: what was sent while starting is delivered (see main.cc).
  const sigset_t set = lifecycle_signals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  asio::co_spawn(control_, give_back_memory(), asio::detached);
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    asio::co_spawn(control_, watchdog(std::chrono::microseconds(usec)), asio::detached);
  }
}

namespace {

// How a changed key takes effect on reload.
const char* how_applied(const std::string& key) {
  auto starts = [&](const char* prefix) { return key.rfind(prefix, 0) == 0; };
  auto ends = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    return key.size() >= n && key.compare(key.size() - n, n, suffix) == 0;
  };
  // Read where they are used, from live() (proxy/live.h), or by the control thread.
  static constexpr const char* kNow[] = {"proxy.log_level",
                                         "proxy.log_format",
                                         "proxy.slow_transaction_ms",
                                         "proxy.shutdown_timeout_ms",
                                         "proxy.max_client_conn",
                                         "pool.size",
                                         "pool.queue_timeout_ms",
                                         "pool.server_idle_timeout_ms",
                                         "health.interval_ms",
                                         "health.timeout_ms",
                                         "health.fall",
                                         "health.rise",
                                         "health.failover_interval_ms",
                                         "health.failover_timeout_ms",
                                         "routing.max_replica_lag_ms",
                                         "routing.read_your_writes",
                                         "routing.read_your_writes_window_ms",
                                         "routing.no_replica",
                                         "routing.remote_replicas"};
  for (const char* k : kNow) {
    if (key == k) {
      return "applied now";
    }
  }
  if (starts("regions[") && (ends(".writer") || ends(".readers"))) {
    return "applied now";
  }
  if (key == "proxy.listen_addr" || key == "proxy.listen_port" || key == "proxy.workers" ||
      key == "proxy.region" || starts("admin.metrics_") || starts("health.") ||
      starts("analytics.") || starts("redis.") || starts("cache.") ||
      key == "routing.read_only_functions" || key == "routing.analysis_cache_size" ||
      key == "routing.catalog_refresh_ms" || starts("regions[")) {
    return "needs a restart (SIGUSR2 upgrades in place without refusing a connection)";
  }
  return "applied to sessions that start from now";  // backend, tls, pool.mode, admin users...
}

}  // namespace

std::string Lifecycle::reload() {
  sd_notify(0, "RELOADING=1");
  const conf::ConfigPtr before = runtime_.snapshot()->config;
  std::string why;
  // Validate everything first: a bad file, users file or certificate changes nothing.
  auto next = conf::load_config(before->path);
  absl::StatusOr<std::shared_ptr<const Snapshot>> fresh =
      next.ok() ? make_snapshot(*next)
                : absl::StatusOr<std::shared_ptr<const Snapshot>>(next.status());
  if (!fresh.ok()) {
    why = std::string(fresh.status().message());
    PGLANE_LOG_ERROR("reload failed, nothing changed:");
    for (absl::string_view line : absl::StrSplit(why, '\n', absl::SkipEmpty())) {
      PGLANE_LOG_ERROR("  %s", line);
    }
  } else {
    const conf::Config& cfg = **next;
    runtime_.install(*fresh);
    live().apply(cfg);
    g_log_format.store(cfg.proxy.log_format, std::memory_order_relaxed);
    g_log_level.store(cfg.proxy.log_level, std::memory_order_relaxed);
    shutdown_timeout_ = std::chrono::milliseconds(cfg.proxy.shutdown_timeout_ms);
    process_control().shutdown_timeout_ms = cfg.proxy.shutdown_timeout_ms;
    std::vector<conf::KeyChange> changes = conf::diff(*before, cfg);
    PGLANE_LOG_INFO("reloaded %s (users file and TLS certificates re-read): %d keys changed",
                    cfg.path, changes.size());
    for (const conf::KeyChange& c : changes) {
      PGLANE_LOG_INFO("  %s: \"%s\" -> \"%s\": %s", c.key, c.before, c.after, how_applied(c.key));
    }
    if (Topology* t = topology()) {
      for (const std::string& note : t->reconcile(cfg)) {
        PGLANE_LOG_INFO("  %s", note);
      }
      t->reload_catalogs();  // function volatility may have changed too
    }
  }
  sd_notify(0, "READY=1");
  notify_status();
  return why;
}

void Lifecycle::shut_down(bool wait) {
  if (stopping_) {
    if (!forced_) {
      PGLANE_LOG_INFO("shutting down now, without waiting for transactions");
    }
    forced_ = true;
    return;
  }
  stopping_ = true;
  forced_ = !wait;
  asio::co_spawn(control_, drain(), asio::detached);
}

void Lifecycle::notify_status() {
  Topology* t = topology();
  EndpointState* w = t != nullptr ? t->writer() : nullptr;
  std::string status = absl::StrCat(
      stopping_ ? "draining; " : "", stats().clients_active.load(), " clients, ",
      stats().server_conns_open.load(), " server connections, writer ",
      w != nullptr ? w->name : std::string("none"), pause_gate().any() ? "; paused" : "");
  sd_notify(0, absl::StrCat("STATUS=", status).c_str());
}

void Lifecycle::wait_signal() {
  signals_.async_wait([this](error_code ec, int sig) {
    if (ec) {
      return;
    }
    if (sig == SIGUSR1) {
      // Counters and endpoint health, one line each (the console's SHOW HEALTH has more).
      if (Topology* t = topology()) {
        std::string text = t->describe();
        for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
          log_line(conf::LogLevel::kInfo, std::string(line));  // asked for: any log_level
        }
      } else {
        log_line(conf::LogLevel::kInfo, "routing off (no readers, or session pooling)");
      }
    } else if (sig == SIGHUP) {
      reload();
    } else if (sig == SIGUSR2) {
      upgrade();
    } else {
      PGLANE_LOG_INFO("received signal %d, shutting down%s", sig,
                      stopping_ ? " now" : " once transactions under way end");
      shut_down(true);
    }
    wait_signal();
  });
}

void Lifecycle::upgrade() {
  if (stopping_ || upgrading_) {
    PGLANE_LOG_WARN("SIGUSR2 ignored: %s", stopping_ ? "shutting down" : "an upgrade is under way");
    return;
  }
  std::vector<int> fds;
  for (auto& w : workers_) {
    for (auto& acc : w->acceptors) {
      if (acc->is_open()) {
        fds.push_back(acc->native_handle());
      }
    }
  }
  auto child = start_successor(fds);
  if (!child.ok()) {
    PGLANE_LOG_ERROR("online upgrade failed: %s", child.status().message());
    return;
  }
  upgrading_ = true;
  successor_ = child->pid;
  ready_pipe_.assign(child->ready_fd);
  PGLANE_LOG_INFO("online upgrade: started the new pglane, pid %d", successor_);
  asio::co_spawn(control_, await_successor(), asio::detached);
}

asio::awaitable<void> Lifecycle::await_successor() {
  char byte = 0;
  auto [ec, n] = co_await ready_pipe_.async_read_some(asio::buffer(&byte, 1),
                                                      asio::as_tuple(asio::use_awaitable));
  error_code ignored;
  ready_pipe_.close(ignored);
  if (!ec && n == 1 && byte == 'R') {
    PGLANE_LOG_INFO("online upgrade: pid %d serves; draining this process", successor_);
    handed_over_ = true;
    if (metrics_ != nullptr) {
      metrics_->stop();  // scrapes and /healthz go to the successor
    }
    if (!stopping_) {
      shut_down(true);  // (a SIGTERM that came first goes on as it was)
    }
    co_return;
  }
  int status = 0;
  pid_t done = waitpid(successor_, &status, 0);  // it closed the pipe: it is exiting
  PGLANE_LOG_ERROR(
      "online upgrade failed: the new pglane (pid %d) exited%s; still serving", successor_,
      done == successor_ && WIFEXITED(status) ? absl::StrCat(" with status ", WEXITSTATUS(status))
                                              : std::string());
  upgrading_ = false;
}

asio::awaitable<void> Lifecycle::sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(control_, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> Lifecycle::drain() {
  set_draining(true);
  if (!handed_over_) {
    sd_notify(0, "STOPPING=1");  // (after an upgrade the successor is the main process)
  }
  // New clients go to whoever else listens on the port (a new pglane during an upgrade).
  // Named: GCC 12 may end a temporary in a co_await expression too early.
  const std::function<void(int)> task = [this](int i) {
    error_code ignored;
    for (auto& acc : workers_[static_cast<size_t>(i)]->acceptors) {
      acc->close(ignored);
    }
  };
  co_await on_every_worker(task);
  const auto deadline = std::chrono::steady_clock::now() + shutdown_timeout_;
  // (Named, not temporaries: the awaitable runs later and takes them by reference.)
  const std::function<void(int)> drain_all = [](int i) {
    for (SessionEntry* e : worker_sessions(i).all()) {
      e->request_end(false);
    }
  };
  const std::function<void(int)> kill_all = [](int i) {
    for (SessionEntry* e : worker_sessions(i).all()) {
      e->request_end(true);
    }
  };
  int round = 0;
  while (!forced_ && stats().clients_active.load() > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    if (round++ % 10 == 0) {
      co_await on_every_worker(drain_all);  // again now and then: sessions that were logging in
      notify_status();
    }
    co_await sleep(std::chrono::milliseconds(50));
  }
  if (stats().clients_active.load() > 0) {
    PGLANE_LOG_WARN("closing %d clients still in a transaction", stats().clients_active.load());
  }
  co_await on_every_worker(kill_all);
  for (int i = 0; i < 40 && stats().clients_active.load() > 0; ++i) {
    co_await sleep(std::chrono::milliseconds(50));
  }
  for (auto& w : workers_) {
    w->io.stop();
  }
  signals_.cancel();
  control_.stop();
}

asio::awaitable<void> Lifecycle::give_back_memory() {
  // glibc keeps what thousands of closed sessions freed in its per-thread arenas (RSS stayed at
  // 171 MB after 2,000 idle TLS sessions had closed, from 20 MB before). When the sessions fell
  // to half their peak, and by at least 256, hand the free pages back. malloc_trim walks every
  // arena under its lock, a few milliseconds at most, and only after such a drop.
  int64_t peak = 0;
  for (;;) {
    co_await sleep(std::chrono::seconds(1));
    const int64_t now = stats().clients_active.load();
    peak = std::max(peak, now);
    if (peak - now >= 256 && now <= peak / 2) {
      const auto t0 = std::chrono::steady_clock::now();
      malloc_trim(0);
      PGLANE_LOG_INFO("gave free memory back after sessions fell from %d to %d (%d us)", peak, now,
                      std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - t0)
                          .count());
      peak = now;
    }
  }
}

asio::awaitable<void> Lifecycle::watchdog(std::chrono::microseconds period) {
  const auto tick = std::chrono::duration_cast<std::chrono::milliseconds>(period) / 3;
  std::vector<std::shared_ptr<std::atomic<bool>>> seen;
  for (size_t i = 0; i < workers_.size(); ++i) {
    seen.push_back(std::make_shared<std::atomic<bool>>(true));
  }
  bool warned = false;
  for (;;) {
    if (handed_over_) {
      co_return;  // the successor pings now; ours would hide a stuck successor
    }
    bool all = true;
    for (auto& s : seen) {
      all = all && s->load();
    }
    if (all) {
      sd_notify(0, "WATCHDOG=1");
      warned = false;
    } else if (!warned) {
      PGLANE_LOG_ERROR("a worker's event loop is stuck: not pinging the systemd watchdog");
      warned = true;
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (all || seen[i]->load()) {
        seen[i]->store(false);
        asio::post(workers_[i]->io, [s = seen[i]] { s->store(true); });
      }
    }
    co_await sleep(std::max(tick, std::chrono::milliseconds(10)));
  }
}

}  // namespace pglane::proxy
