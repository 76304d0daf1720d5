// A Redis Pub/Sub subscription that stays up: connects, SUBSCRIBEs, hands every message to a
// callback, and on any failure reconnects with backoff. `subscribed` is called after every
// (re)subscription, so that the owner can distrust whatever it may have missed meanwhile.
//
// Sharded (Redis Cluster): SSUBSCRIBE at the node that owns the channel's slot. The seed
// answers -MOVED with that node, which is then connected to at once; when the slot moves away,
// the node ends the subscription ("sunsubscribe"), and the subscriber starts again at the seed.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "absl/status/status.h"
#include "cache/redis/connection.h"

namespace pglane::cache::redis {

class Subscriber {
 public:
  struct Hooks {
    std::function<void(std::string_view payload)> message;
    std::function<void()> subscribed;               // after each (re)subscription
    std::function<void(const absl::Status&)> lost;  // the subscription broke (or never came)
  };

  Subscriber(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls, const Options& opts,
             std::string channel, Hooks hooks, bool sharded = false);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  void start();  // spawns the loop on the executor
  void stop();   // from the executor's thread
  bool subscribed() const { return subscribed_; }
  // Thread-safe: whether messages may have arrived that the hooks have not seen yet (bytes in
  // the socket or read and not handed over). One ioctl.
  bool maybe_unhandled() const;

 private:
  asio::awaitable<void> run();
  asio::awaitable<absl::Status> session();

  asio::any_io_executor ex_;
  Connection conn_;
  std::string channel_;
  Hooks hooks_;
  bool sharded_ = false;
  Options seed_;
  bool redirected_ = false;  // the last session ended in a -MOVED: reconnect without waiting
  bool subscribed_ = false;
  std::atomic<int> fd_{-1};
  std::atomic<bool> unhandled_{false};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pglane::cache::redis
