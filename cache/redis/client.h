// A pipelined Redis client for one worker thread: one connection (Connection) shared by every
// session of the worker, commands written back to back and replies matched in order, a
// per-command timeout, and a circuit breaker so that while Redis is down or slow, callers fail
// at once instead of each waiting out a timeout. Not thread-safe: one per worker executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/status/statusor.h"
#include "cache/redis/connection.h"

namespace pglane::cache::redis {

struct ClientStats {
  uint64_t calls = 0;
  uint64_t failures = 0;  // errors, timeouts and calls refused by the open breaker
  uint64_t timeouts = 0;
  uint64_t connects = 0;  // successful (re)connections
  uint64_t breaker_opens = 0;
};

class Client {
 public:
  Client(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls, const Options& opts);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One command. Fails at once while the breaker is open; otherwise within the connect timeout
  // (when a connection must be made) plus the command timeout.
  asio::awaitable<absl::StatusOr<Reply>> call(std::span<const std::string_view> args);

  // Whether the last attempt to reach Redis worked (the breaker is closed).
  bool healthy() const { return open_until_ == Clock::time_point{} && conn_.is_open(); }
  // Bumped at every new connection: a reader of cached entries can tell that it may have missed
  // invalidations while disconnected.
  uint64_t epoch() const { return epoch_; }
  const ClientStats& stats() const { return stats_; }
  void close();

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiter {
    explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<absl::StatusOr<Reply>> result;  // set by the reader
    bool abandoned = false;                       // its caller timed out and left
  };

  asio::awaitable<absl::Status> connect();
  asio::awaitable<void> read_replies(uint64_t epoch);
  asio::awaitable<void> write_pending();
  void fail_all(const absl::Status& why);
  void trip();  // a failure: open the breaker for the current backoff

  asio::any_io_executor ex_;
  Connection conn_;
  Options opts_;
  std::deque<std::shared_ptr<Waiter>> inflight_;  // in the order their replies will come
  std::string pending_;                           // commands formatted, not yet written
  std::string writing_buf_;
  bool writing_ = false;
  bool connecting_ = false;
  std::unique_ptr<asio::steady_timer> connected_;  // callers waiting for connect() to finish
  uint64_t epoch_ = 0;
  Clock::time_point open_until_{};  // breaker open until then
  std::chrono::milliseconds backoff_{100};
  ClientStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for detached coroutines
};

}  // namespace pglane::cache::redis
