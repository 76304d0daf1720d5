// Freshness floors shared between gateways through Redis Pub/Sub (docs/internals.md, "Freshness
// floors"). A session whose writing transaction committed publishes the tables it wrote on the
// floor channel through its worker's Redis client, waiting at most redis.floor_wait_ms for
// Redis to take it before the client hears of the commit. Every gateway subscribes (on the
// control thread) and raises its own FloorBoard for what others wrote, stamped with the time
// the message arrived (after the commit, so exact without comparing clocks).
//
// Whenever the subscription is not up (at start, after a failure), messages may have been
// missed: the whole board is raised to "now" at once and every 100 ms until it is back, so
// reads need a replica that has replayed past the writer's latest position. Correct, at the
// price of more reads on the writer during a Redis outage.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/status/statusor.h"
#include "cache/redis/router.h"
#include "cache/redis/subscriber.h"
#include "conf/config.h"
#include "routing/floors.h"

namespace pglane::proxy {

struct FloorSyncStats {
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> publish_failures{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> resyncs{0};  // the board raised whole: subscription (re)made or lost
  // Propagation delay of received messages (sender's wall clock to ours), microseconds.
  std::atomic<uint64_t> delay_sum_us{0};
  std::atomic<uint64_t> delay_max_us{0};
  // How many arrived within each bound (not cumulative; the last bucket is everything later).
  static constexpr std::array<uint64_t, 10> kDelayBoundsUs = {100,  250,   500,   1000,  2500,
                                                              5000, 10000, 25000, 50000, 100000};
  std::array<std::atomic<uint64_t>, kDelayBoundsUs.size() + 1> delay_buckets{};
  // The bound (µs) under which a fraction `q` of the messages arrived (nearest bucket bound;
  // the maximum for the last bucket), 0 with none.
  uint64_t delay_quantile_us(double q) const;
};

class FloorSync {
 public:
  // Null (and OK) when [redis] is not configured. `control`: where the subscription runs;
  // `workers`: one Redis client each.
  static absl::StatusOr<std::unique_ptr<FloorSync>> create(
      const conf::Config& cfg, boost::asio::any_io_executor control,
      const std::vector<boost::asio::any_io_executor>& workers);
  ~FloorSync();

  void start();  // on the control thread
  void stop();   // on the control thread

  // From a session on `worker`: `written` tables of database `db` changed (committed).
  // Returns once Redis took the message, it failed, or floor_wait_ms passed.
  boost::asio::awaitable<void> publish(int worker, uint64_t db, const routing::TableSet& written);
  bool waits() const { return wait_ms_ > 0; }

  bool subscribed() const { return subscribed_.load(std::memory_order_relaxed); }
  // Thread-safe: floor messages may have arrived that the board does not have yet (a read
  // placed now must not trust it). One ioctl.
  bool maybe_behind() const { return subscriber_->maybe_unhandled(); }
  const FloorSyncStats& stats() const { return stats_; }

 private:
  FloorSync() = default;
  void on_message(std::string_view payload);
  void distrust();  // raise the whole board to now
  boost::asio::awaitable<void> outage_ticks();

  std::string channel_;
  std::string key_prefix_;  // cache.key_prefix: where the tables' versions live
  int wait_ms_ = 0;
  bool sharded_ = false;                // redis.cluster: SPUBLISH/SSUBSCRIBE
  std::atomic<uint64_t> token_seq_{0};  // version tokens: gateway_ "." sequence
  uint64_t gateway_ = 0;                // random per process: our own messages are ignored
  std::vector<std::unique_ptr<cache::redis::Router>> clients_;  // per worker
  std::vector<boost::asio::any_io_executor> executors_;         // the workers
  std::unique_ptr<cache::redis::Subscriber> subscriber_;
  boost::asio::any_io_executor control_;
  std::atomic<bool> subscribed_{false};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  FloorSyncStats stats_;
};

// The Redis client options and TLS context [redis] describes (errors name the config file).
absl::Status redis_setup(const conf::Config& cfg, cache::redis::Options& opts,
                         std::shared_ptr<boost::asio::ssl::context>& tls);

// The process's FloorSync, or null without [redis].
FloorSync* floor_sync();
void set_floor_sync(FloorSync* sync);

}  // namespace pglane::proxy
