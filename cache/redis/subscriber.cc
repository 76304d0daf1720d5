#include "cache/redis/subscriber.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "cache/redis/cluster.h"

namespace pglane::cache::redis {

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

}  // namespace

Subscriber::Subscriber(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls,
                       const Options& opts, std::string channel, Hooks hooks, bool sharded)
    : ex_(ex),
      conn_(ex, std::move(tls), opts),
      channel_(std::move(channel)),
      hooks_(std::move(hooks)),
      sharded_(sharded),
      seed_(opts) {
  conn_.set_unhandled_flag(&unhandled_);
}

bool Subscriber::maybe_unhandled() const {
  if (unhandled_.load(std::memory_order_acquire)) {
    return true;
  }
  const int fd = fd_.load(std::memory_order_acquire);
  int pending = 0;
  return fd >= 0 && ::ioctl(fd, FIONREAD, &pending) == 0 && pending > 0;
}

Subscriber::~Subscriber() {
  *alive_ = false;
  conn_.close();
}

void Subscriber::start() {
  auto alive = alive_;
  asio::co_spawn(
      ex_,
      [this, alive]() -> asio::awaitable<void> {
        if (*alive) {
          co_await run();
        }
      },
      asio::detached);
}

void Subscriber::stop() {
  *alive_ = false;
  conn_.close();
}

asio::awaitable<void> Subscriber::run() {
  auto alive = alive_;
  std::chrono::milliseconds backoff{100};
  int hops = 0;  // redirections followed in a row (nodes that disagree must not spin us)
  while (*alive) {
    const auto started = std::chrono::steady_clock::now();
    absl::Status s = co_await session();
    if (!*alive) {
      co_return;
    }
    fd_.store(-1, std::memory_order_release);
    const bool was_subscribed = subscribed_;
    subscribed_ = false;
    if (hooks_.lost) {
      hooks_.lost(s);
    }
    if (was_subscribed) {
      hops = 0;
    }
    if (std::exchange(redirected_, false) && ++hops <= 3) {
      continue;  // to the node the seed named, at once
    }
    if (sharded_) {
      conn_.retarget(seed_.host, seed_.port);  // the node may be gone: ask the seed again
    }
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10)) {
      backoff = std::chrono::milliseconds(100);  // it had been up a while: retry soon
    }
    asio::steady_timer t(ex_, backoff);
    co_await t.async_wait(kUse);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

asio::awaitable<absl::Status> Subscriber::session() {
  auto alive = alive_;
  fd_.store(-1, std::memory_order_release);
  absl::Status s = co_await conn_.open();
  if (!s.ok()) {
    co_return s;
  }
  fd_.store(conn_.native_handle(), std::memory_order_release);
  const char* const verb = sharded_ ? "SSUBSCRIBE" : "SUBSCRIBE";
  std::string_view args[2] = {verb, channel_};
  std::string out;
  format_command(args, out);
  s = co_await conn_.send(out);
  if (!s.ok()) {
    co_return s;
  }
  for (;;) {
    absl::StatusOr<Reply> r = co_await conn_.receive();
    if (!*alive) {
      co_return absl::CancelledError("stopped");
    }
    if (!r.ok()) {
      co_return r.status();
    }
    if (r->is_error()) {
      if (std::optional<Redirect> to = parse_redirect(*r); to && sharded_ && !subscribed_) {
        conn_.retarget(to->host, to->port);
        redirected_ = true;
        co_return absl::UnavailableError(
            absl::StrCat("redis: the channel's slot is served by ", to->host, ":", to->port));
      }
      conn_.close();
      co_return absl::PermissionDeniedError(absl::StrCat("redis: ", verb, " refused: ", r->str));
    }
    if (r->type != Reply::Type::kArray || r->elements.size() < 3) {
      continue;
    }
    const std::string& kind = r->elements[0].str;
    if (kind == "subscribe" || kind == "ssubscribe") {
      subscribed_ = true;
      if (hooks_.subscribed) {
        hooks_.subscribed();
      }
    } else if ((kind == "message" || kind == "smessage") && hooks_.message) {
      hooks_.message(r->elements[2].str);
    } else if (kind == "sunsubscribe" || kind == "unsubscribe") {
      conn_.close();  // the slot moved (or the server dropped us): subscribe again
      co_return absl::UnavailableError("redis: the subscription was ended by the server");
    }
  }
}

}  // namespace pglane::cache::redis
