#include "proxy/live.h"

namespace pglane::proxy {

void LiveSettings::apply(const conf::Config& cfg) {
  constexpr auto r = std::memory_order_relaxed;
  pool_size.store(cfg.pool.size, r);
  queue_timeout_ms.store(cfg.pool.queue_timeout_ms, r);
  server_idle_timeout_ms.store(cfg.pool.server_idle_timeout_ms, r);
  interval_ms.store(cfg.health.interval_ms, r);
  timeout_ms.store(cfg.health.timeout_ms, r);
  fall.store(cfg.health.fall, r);
  rise.store(cfg.health.rise, r);
  failover_interval_ms.store(cfg.health.failover_interval_ms, r);
  failover_timeout_ms.store(cfg.health.failover_timeout_ms, r);
  max_replica_lag_ms.store(cfg.routing.max_replica_lag_ms, r);
  read_your_writes.store(static_cast<int>(cfg.routing.read_your_writes), r);
  read_your_writes_window_ms.store(cfg.routing.read_your_writes_window_ms, r);
  no_replica_error.store(cfg.routing.no_replica == conf::NoReplica::kError, r);
  remote_replicas.store(cfg.routing.remote_replicas, r);
  slow_transaction_ms.store(cfg.proxy.slow_transaction_ms, r);
  generation.fetch_add(1, std::memory_order_release);
}

routing::PlacementPolicy LiveSettings::placement() const {
  constexpr auto r = std::memory_order_relaxed;
  routing::PlacementPolicy policy;
  policy.max_lag_ms = max_replica_lag_ms.load(r);
  switch (static_cast<conf::ReadYourWrites>(read_your_writes.load(r))) {
    case conf::ReadYourWrites::kTable:
      policy.read_your_writes = routing::ReadYourWritesMode::kLsn;
      policy.scope = routing::FloorScope::kTable;
      break;
    case conf::ReadYourWrites::kDatabase:
      policy.read_your_writes = routing::ReadYourWritesMode::kLsn;
      policy.scope = routing::FloorScope::kDatabase;
      break;
    case conf::ReadYourWrites::kSession:
      policy.read_your_writes = routing::ReadYourWritesMode::kLsn;
      policy.scope = routing::FloorScope::kSession;
      break;
    case conf::ReadYourWrites::kWindow:
      policy.read_your_writes = routing::ReadYourWritesMode::kWindow;
      policy.scope = routing::FloorScope::kSession;
      break;
    case conf::ReadYourWrites::kOff:
      policy.read_your_writes = routing::ReadYourWritesMode::kOff;
      policy.scope = routing::FloorScope::kOff;
      break;
  }
  policy.window = std::chrono::milliseconds(read_your_writes_window_ms.load(r));
  policy.error_when_no_replica = no_replica_error.load(r);
  policy.remote_replicas = remote_replicas.load(r);
  return policy;
}

LiveSettings& live() {
  static LiveSettings s;
  return s;
}

}  // namespace pglane::proxy
