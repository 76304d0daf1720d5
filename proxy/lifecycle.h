// The process's control thread (docs/internals.md, "Operations"): signals, reload, the drain on
// shutdown, the online upgrade and the systemd watchdog, on the main thread's io_context.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>

#include "conf/config.h"
#include "proxy/metrics_http.h"
#include "proxy/runtime.h"

namespace pglane::proxy {

namespace asio = boost::asio;

// One worker thread: its io_context and listening sockets.
struct Worker {
  int index = 0;
  // One thread runs it. Asio still locks inside (a hint of 1 is a locking hint), and the pool
  // relies on that: moving a connection between workers deregisters its socket from this
  // reactor on another thread. Never BOOST_ASIO_CONCURRENCY_HINT_UNSAFE.
  asio::io_context io{1};
  // Keeps run() going once the listener closed (draining): the console and the shutdown still
  // post work to this worker.
  asio::executor_work_guard<asio::io_context::executor_type> keep{io.get_executor()};
  // Usually one; more when an old pglane with more workers handed over its sockets.
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
  std::thread thread;
};

// The process's control thread: signals, reload, shutdown (drain, then close), the systemd
// watchdog.
// Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 in the calling thread (main, before any
// other thread starts); Lifecycle::start unblocks them once it handles them.
void block_lifecycle_signals();

class Lifecycle {
 public:
  Lifecycle(asio::io_context& control, Runtime& runtime,
            std::vector<std::unique_ptr<Worker>>& workers, const conf::Config& cfg);

  // Starts handling signals and, when systemd asked for one, the watchdog.
  void start();

  // "" when the new users and certificates are in, else why nothing changed.
  std::string reload();

  // wait: stop accepting, let transactions under way finish (up to proxy.shutdown_timeout_ms),
  // close idle clients with 57P01, then stop. A second request while draining stops at once.
  void shut_down(bool wait);

  // The metrics endpoint, closed when a successor takes over.
  void set_metrics(MetricsServer* m) { metrics_ = m; }

  // STATUS= for systemd: clients, server connections, the writer, draining or paused.
  void notify_status();

 private:
  void wait_signal();

  // SIGUSR2: start the successor with our listening sockets; drain once it serves.
  void upgrade();

  asio::awaitable<void> await_successor();

  asio::awaitable<void> sleep(std::chrono::milliseconds d);

  asio::awaitable<void> drain();

  // WATCHDOG=1 only while every worker's event loop turns: each tick asks every worker to
  // check in, and pings only if all checked in since the previous tick.
  asio::awaitable<void> watchdog(std::chrono::microseconds period);
  // Every second: after a large drop in sessions, malloc_trim (RSS returns after load).
  asio::awaitable<void> give_back_memory();

  asio::io_context& control_;
  Runtime& runtime_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  asio::signal_set signals_;
  std::chrono::milliseconds shutdown_timeout_;
  bool stopping_ = false;
  bool forced_ = false;
  asio::posix::stream_descriptor ready_pipe_{control_};  // the successor says it serves
  pid_t successor_ = -1;
  bool upgrading_ = false;
  bool handed_over_ = false;  // the successor serves: it is systemd's main process now
  MetricsServer* metrics_ = nullptr;
};

}  // namespace pglane::proxy
