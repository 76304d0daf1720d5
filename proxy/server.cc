#include "proxy/server.h"

#include <systemd/sd-daemon.h>

#include <atomic>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "conf/loader.h"
#include "protocol/scram.h"
#include "proxy/log.h"
#include "proxy/net.h"
#include "proxy/pool.h"
#include "proxy/session.h"
#include "proxy/tls.h"
#include "proxy/topology.h"

namespace pglane::proxy {

namespace {

struct Worker {
  int index = 0;
  asio::io_context io{1};  // one thread per io_context: no locking inside Asio
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;
};

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
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    auto acc = open_listener(w->io, cfg);
    if (!acc.ok()) {
      PGLANE_LOG_ERROR("%s", acc.status().message());
      return 1;
    }
    w->acceptor = std::move(*acc);
    asio::co_spawn(w->io, accept_loop(*w->acceptor, runtime, i), asio::detached);
    workers.push_back(std::move(w));
  }

  // Signals are handled on a control io_context on the main thread.
  asio::io_context control(1);
  asio::signal_set signals(control, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR1);
  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](error_code ec, int sig) {
      if (ec) {
        return;
      }
      if (sig == SIGUSR1) {
        // Counters and endpoint health, one line each, until the admin console exists.
        if (Topology* t = topology()) {
          std::string text = t->describe();
          for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
            log_line(conf::LogLevel::kInfo, std::string(line));  // asked for: any log_level
          }
        } else {
          log_line(conf::LogLevel::kInfo, "routing off (no readers, or session pooling)");
        }
        wait_signal();
        return;
      }
      if (sig == SIGHUP) {
        sd_notify(0, "RELOADING=1");
        auto fresh = make_snapshot(runtime.snapshot()->config);
        if (fresh.ok()) {
          runtime.install(*fresh);
          if (Topology* t = topology()) {
            t->reload_catalogs();  // function volatility may have changed too
          }
          PGLANE_LOG_INFO("reloaded users file and TLS certificates");
        } else {
          PGLANE_LOG_ERROR("reload failed, keeping the previous settings: %s",
                           fresh.status().message());
        }
        sd_notify(0, "READY=1");
        wait_signal();
        return;
      }
      PGLANE_LOG_INFO("received signal %d, shutting down", sig);
      sd_notify(0, "STOPPING=1");
      for (auto& w : workers) {
        w->io.stop();
      }
      control.stop();
    });
  };
  wait_signal();

  for (auto& w : workers) {
    w->thread = std::thread([w = w.get()] { w->io.run(); });
  }
  PGLANE_LOG_INFO("pglane listening on %s:%d with %d workers (pool mode %s, size %d)",
                  cfg.proxy.listen_addr, cfg.proxy.listen_port, n,
                  cfg.pool.mode == conf::PoolMode::kTransaction ? "transaction" : "session",
                  cfg.pool.size);
  sd_notify(0, "READY=1");
  control.run();
  // The checkers first: a writer change retires pooled connections on the workers' contexts.
  topo->stop();
  for (auto& w : workers) {
    w->io.stop();
    w->thread.join();
  }
  pools().clear();
  set_topology(nullptr);
  return 0;
}

}  // namespace pglane::proxy
