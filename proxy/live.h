// Settings every session reads where it uses them rather than from the snapshot it started with,
// so that a reload applies them to every client at once: pool limits, the health checker's
// timing, the wait for a writer and the replica placement policy. Relaxed atomics, written only
// by the control thread (at start and on reload): on the query path they are plain loads of a
// cache line nobody writes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "conf/config.h"
#include "routing/placement.h"

namespace pglane::proxy {

struct LiveSettings {
  // Bumped by every apply(): a session that sees it change refreshes its placement policy.
  std::atomic<uint64_t> generation{0};
  // [pool]
  std::atomic<int> pool_size{20};
  std::atomic<int> queue_timeout_ms{5000};
  std::atomic<int> server_idle_timeout_ms{600000};
  // [health]
  std::atomic<int> interval_ms{1000};
  std::atomic<int> timeout_ms{1000};
  std::atomic<int> fall{2};
  std::atomic<int> rise{1};
  std::atomic<int> failover_interval_ms{100};
  std::atomic<int> failover_timeout_ms{30000};
  // [routing] placement
  std::atomic<int> max_replica_lag_ms{1000};
  std::atomic<int> read_your_writes{0};  // conf::ReadYourWrites
  std::atomic<int> read_your_writes_window_ms{2000};
  std::atomic<bool> no_replica_error{false};
  std::atomic<bool> remote_replicas{true};
  // [proxy]
  std::atomic<int> slow_transaction_ms{0};

  void apply(const conf::Config& cfg);
  routing::PlacementPolicy placement() const;

  static std::chrono::milliseconds ms(const std::atomic<int>& v) {
    return std::chrono::milliseconds(v.load(std::memory_order_relaxed));
  }
};

LiveSettings& live();

}  // namespace pglane::proxy
