#include "cache/redis/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pglane::cache::redis {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kMaxBackoff{5000};

}  // namespace

Client::Client(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls,
               const Options& opts)
    : ex_(ex), conn_(ex, std::move(tls), opts), opts_(opts) {}

Client::~Client() {
  *alive_ = false;
  close();
}

void Client::close() {
  conn_.close();
  fail_all(absl::UnavailableError("redis: connection closed"));
}

void Client::fail_all(const absl::Status& why) {
  for (auto& w : inflight_) {
    w->result = why;
    w->timer.cancel();
  }
  inflight_.clear();
  pending_.clear();
}

void Client::trip() {
  ++stats_.breaker_opens;
  open_until_ = Clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  conn_.close();
  fail_all(absl::UnavailableError("redis: unavailable (circuit open)"));
}

asio::awaitable<absl::Status> Client::connect() {
  auto alive = alive_;
  connecting_ = true;
  absl::Status s = co_await conn_.open();
  if (!*alive) {
    co_return absl::CancelledError("redis: client closed");
  }
  connecting_ = false;
  if (connected_) {
    connected_->cancel();  // callers that waited for this connection go on
    connected_.reset();
  }
  if (!s.ok()) {
    co_return s;
  }
  ++stats_.connects;
  ++epoch_;
  open_until_ = {};
  backoff_ = std::chrono::milliseconds(100);
  const uint64_t epoch = epoch_;
  asio::co_spawn(
      ex_,
      [this, alive, epoch]() -> asio::awaitable<void> {
        if (*alive) {
          co_await read_replies(epoch);
        }
      },
      asio::detached);
  co_return absl::OkStatus();
}

asio::awaitable<void> Client::read_replies(uint64_t epoch) {
  auto alive = alive_;
  while (*alive && epoch == epoch_ && conn_.is_open()) {
    absl::StatusOr<Reply> r = co_await conn_.receive();
    if (!*alive || epoch != epoch_) {
      co_return;  // a newer connection took over
    }
    if (!r.ok()) {
      if (open_until_ == Clock::time_point{}) {
        trip();  // the connection broke under us
      } else {
        fail_all(r.status());  // trip() closed it
      }
      co_return;
    }
    if (inflight_.empty()) {
      continue;  // nothing asked for it (a push message): ignore
    }
    std::shared_ptr<Waiter> w = std::move(inflight_.front());
    inflight_.pop_front();
    if (!w->abandoned) {
      w->result = std::move(r);
      w->timer.cancel();
    }
  }
}

asio::awaitable<void> Client::write_pending() {
  auto alive = alive_;
  writing_ = true;
  while (!pending_.empty() && conn_.is_open()) {
    writing_buf_.swap(pending_);
    pending_.clear();
    absl::Status s = co_await conn_.send(writing_buf_);
    if (!*alive) {
      co_return;
    }
    writing_buf_.clear();
    if (!s.ok()) {
      trip();
      break;
    }
  }
  writing_ = false;
}

asio::awaitable<absl::StatusOr<Reply>> Client::call(std::span<const std::string_view> args) {
  auto alive = alive_;
  ++stats_.calls;
  if (open_until_ != Clock::time_point{} && Clock::now() < open_until_) {
    ++stats_.failures;
    co_return absl::UnavailableError("redis: unavailable (circuit open)");
  }
  if (connecting_) {
    // Another caller is connecting (AUTH may be under way: no second writer): wait for it, at
    // most the connect timeout.
    if (!connected_) {
      connected_ = std::make_unique<asio::steady_timer>(ex_);
      connected_->expires_at(asio::steady_timer::time_point::max());
    }
    asio::steady_timer limit(ex_, opts_.connect_timeout);
    auto* waiting = connected_.get();
    co_await (waiting->async_wait(kUse) || limit.async_wait(kUse));
    if (!*alive) {
      co_return absl::CancelledError("redis: client closed");
    }
    if (connecting_ || !conn_.is_open()) {
      ++stats_.failures;
      co_return absl::UnavailableError("redis: connecting");
    }
  }
  if (!conn_.is_open()) {
    absl::Status s = co_await connect();
    if (!*alive) {
      co_return absl::CancelledError("redis: client closed");
    }
    if (!s.ok()) {
      ++stats_.failures;
      trip();
      co_return s;
    }
  }
  auto w = std::make_shared<Waiter>(ex_);
  w->timer.expires_after(opts_.command_timeout);
  format_command(args, pending_);
  inflight_.push_back(w);
  if (!writing_) {
    co_await write_pending();  // this caller writes for everyone who queued meanwhile
    if (!*alive) {
      co_return absl::CancelledError("redis: client closed");
    }
  }
  if (!w->result) {
    co_await w->timer.async_wait(kUse);
    if (!*alive) {
      co_return absl::CancelledError("redis: client closed");
    }
  }
  if (!w->result) {
    w->abandoned = true;  // its reply, when it comes, is dropped
    ++stats_.timeouts;
    ++stats_.failures;
    trip();  // slow is as bad as down: callers go to the database until the backoff ends
    co_return absl::DeadlineExceededError("redis: no reply in time");
  }
  if (!w->result->ok()) {
    ++stats_.failures;
  }
  co_return std::move(*w->result);
}

}  // namespace pglane::cache::redis
