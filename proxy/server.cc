#include "proxy/server.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "conf/loader.h"
#include "protocol/scram.h"
#include "proxy/floor_sync.h"
#include "proxy/handover.h"
#include "proxy/lifecycle.h"
#include "proxy/live.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/metrics_http.h"
#include "proxy/net.h"
#include "proxy/pool.h"
#include "proxy/result_cache.h"
#include "proxy/session.h"
#include "proxy/sessions.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "proxy/topology.h"

namespace pglane::proxy {

namespace {

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Runtime& runtime, int worker) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      // EMFILE and friends: back off briefly instead of spinning.
      PGLANE_LOG_WARN("accept failed: %s", ec.message());
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), run_session(std::move(socket), runtime, worker),
                   asio::detached);
  }
}

absl::StatusOr<std::unique_ptr<tcp::acceptor>> open_listener(asio::io_context& io,
                                                             const conf::Config& cfg) {
  error_code ec;
  auto addr = asio::ip::make_address(cfg.proxy.listen_addr, ec);
  if (ec) {
    return absl::InvalidArgumentError(cfg.path + ": proxy.listen_addr: not an IP address");
  }
  tcp::endpoint ep(addr, cfg.proxy.listen_port);
  auto acc = std::make_unique<tcp::acceptor>(io);
  acc->open(ep.protocol(), ec);
  if (!ec) {
    acc->set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    acc->set_option(reuse_port(true), ec);
  }
  if (!ec) {
    acc->bind(ep, ec);
  }
  if (!ec) {
    acc->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return absl::UnavailableError("cannot listen on " + cfg.proxy.listen_addr + ":" +
                                  std::to_string(cfg.proxy.listen_port) + ": " + ec.message());
  }
  return acc;
}

// Takes over a listening socket an old pglane handed over (online upgrade), if it listens where
// this config says; else closes it.
std::unique_ptr<tcp::acceptor> adopt_listener(asio::io_context& io, const conf::Config& cfg,
                                              int fd) {
  error_code ec;
  auto want = asio::ip::make_address(cfg.proxy.listen_addr, ec);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (ec || getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ::close(fd);
    return nullptr;
  }
  const bool v6 = ss.ss_family == AF_INET6;
  auto acc = std::make_unique<tcp::acceptor>(io);
  acc->assign(v6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return nullptr;
  }
  auto at = acc->local_endpoint(ec);
  if (ec || at.address() != want || at.port() != cfg.proxy.listen_port) {
    PGLANE_LOG_WARN(
        "not taking over the old process's listener on %s:%d: the config now says %s:%d",
        ec ? std::string("?") : at.address().to_string(), ec ? 0 : at.port(), cfg.proxy.listen_addr,
        cfg.proxy.listen_port);
    return nullptr;  // closes it
  }
  return acc;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Snapshot>> make_snapshot(conf::ConfigPtr config) {
  auto snap = std::make_shared<Snapshot>();
  auto users = conf::load_users(config->proxy.users_file);
  if (!users.ok()) {
    return users.status();
  }
  snap->users = std::make_shared<const conf::UserMap>(std::move(*users));
  auto client_tls = make_client_facing_context(config->tls, config->path);
  if (!client_tls.ok()) {
    return client_tls.status();
  }
  snap->client_tls = std::move(*client_tls);
  auto server_tls = make_server_facing_context(config->backend.tls, config->path);
  if (!server_tls.ok()) {
    return server_tls.status();
  }
  snap->server_tls = std::move(*server_tls);
  snap->config = std::move(config);
  return snap;
}

int run_server(const std::string& config_path) {
  auto config = conf::load_config(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "pglane: %s\n",
                 absl::StrReplaceAll(config.status().message(), {{"\n", "\npglane: "}}).c_str());
    return 2;
  }
  g_log_level = (*config)->proxy.log_level;
  live().apply(**config);
  g_log_format = (*config)->proxy.log_format;
  auto snap = make_snapshot(*config);
  if (!snap.ok()) {
    std::fprintf(stderr, "pglane: %s\n", std::string(snap.status().message()).c_str());
    return 2;
  }
  Runtime runtime;
  runtime.set_mock_secret(protocol::random_bytes(32));
  runtime.install(*snap);
  const conf::Config& cfg = **config;

  // The topology: which instance is the writer (followed through failover), replica health for
  // read/write splitting (which needs transaction pooling and somewhere to split to).
  auto topo = std::make_unique<Topology>(cfg);
  topo->start();
  set_topology(topo.get());
  topo->wait_ready(std::chrono::milliseconds(2 * cfg.health.timeout_ms + 1000));
  if (cfg.routing.enabled && cfg.pool.mode != conf::PoolMode::kTransaction &&
      (topo->instance_count() > 1 || cfg.analytics.enabled)) {
    PGLANE_LOG_WARN(
        "read/write splitting needs pool.mode = \"transaction\"; with session pooling every "
        "client stays on the writer");
  }

  int n = cfg.proxy.workers > 0
              ? cfg.proxy.workers
              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  pools().set_workers(n);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    workers.push_back(std::move(w));
  }
  // Listening sockets: taken over from an old pglane (online upgrade), one per worker and any
  // extra ones shared out, so that no connection waiting in their queues is lost; otherwise
  // (or for workers left without one) opened here.
  std::vector<int> inherited = take_inherited_listeners();
  for (size_t k = 0; k < inherited.size(); ++k) {
    Worker& w = *workers[k % workers.size()];
    if (auto acc = adopt_listener(w.io, cfg, inherited[k])) {
      w.acceptors.push_back(std::move(acc));
    }
  }
  if (!inherited.empty()) {
    PGLANE_LOG_INFO("took over %d listening sockets from the old pglane", inherited.size());
  }
  for (auto& w : workers) {
    if (w->acceptors.empty()) {
      auto acc = open_listener(w->io, cfg);
      if (!acc.ok()) {
        PGLANE_LOG_ERROR("%s", acc.status().message());
        return 1;
      }
      w->acceptors.push_back(std::move(*acc));
    }
    for (auto& acc : w->acceptors) {
      asio::co_spawn(w->io, accept_loop(*acc, runtime, w->index), asio::detached);
    }
  }

  std::vector<asio::any_io_executor> executors;
  for (auto& w : workers) {
    executors.push_back(w->io.get_executor());
  }
  set_worker_executors(std::move(executors));
  set_worker_count(n);

  // Signals, the console's RELOAD and SHUTDOWN, the metrics endpoint and the watchdog run on a
  // control io_context on the main thread.
  asio::io_context control(1);
  Lifecycle life(control, runtime, workers, cfg);
  ProcessControl& pc = process_control();
  pc.executor = control.get_executor();
  pc.shutdown_timeout_ms = cfg.proxy.shutdown_timeout_ms;
  pc.reload = [&life] { return life.reload(); };
  pc.shutdown = [&life](bool wait) { life.shut_down(wait); };
  std::unique_ptr<MetricsServer> metrics;
  if (cfg.admin.metrics) {
    auto m = MetricsServer::start(control, cfg);
    if (!m.ok()) {
      PGLANE_LOG_ERROR("%s", m.status().message());
      return 1;
    }
    metrics = std::move(*m);
    life.set_metrics(metrics.get());
  }
  // Floors shared with other gateways through Redis ([redis]); it outlives the workers.
  auto sync = FloorSync::create(cfg, control.get_executor(), worker_executors());
  if (!sync.ok()) {
    PGLANE_LOG_ERROR("%s", sync.status().message());
    return 2;
  }
  std::unique_ptr<FloorSync> floors = std::move(*sync);
  if (floors) {
    set_floor_sync(floors.get());
    floors->start();
  }
  // The result cache ([cache]); it outlives the workers too.
  auto made = ResultCache::create(cfg, worker_executors());
  if (!made.ok()) {
    PGLANE_LOG_ERROR("%s", made.status().message());
    return 2;
  }
  std::unique_ptr<ResultCache> results = std::move(*made);
  set_result_cache(results.get());
  life.start();

  for (auto& w : workers) {
    w->thread = std::thread([w = w.get()] { w->io.run(); });
  }
  PGLANE_LOG_INFO(
      "pglane listening on %s:%d with %d workers (pool mode %s, size %d)%s", cfg.proxy.listen_addr,
      cfg.proxy.listen_port, n,
      cfg.pool.mode == conf::PoolMode::kTransaction ? "transaction" : "session", cfg.pool.size,
      cfg.admin.metrics ? absl::StrCat("; metrics on ", cfg.admin.metrics_listen.to_string())
                        : std::string());
  if (started_by_upgrade()) {
    // This process replaces the one that started it: systemd's main process from now on.
    sd_notify(0, absl::StrCat("MAINPID=", getpid(), "\nREADY=1").c_str());
    tell_predecessor_ready();
  } else {
    sd_notify(0, "READY=1");
  }
  life.notify_status();
  control.run();
  if (metrics) {
    metrics->stop();
  }
  // The checkers first: a writer change retires pooled connections on the workers' contexts.
  topo->stop();
  for (auto& w : workers) {
    w->io.stop();
    w->thread.join();
  }
  if (floors) {
    set_floor_sync(nullptr);  // nothing uses it now that the workers are gone
  }
  set_result_cache(nullptr);
  process_control().reload = nullptr;
  process_control().shutdown = nullptr;
  pools().clear();
  set_topology(nullptr);
  return 0;
}

}  // namespace pglane::proxy
