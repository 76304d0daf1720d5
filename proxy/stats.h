// Process-wide counters. Relaxed atomics: they are read by tests, logs and (later) the metrics
// endpoint, never used for synchronisation.
#pragma once

#include <atomic>
#include <cstdint>

namespace pglane::proxy {

struct Stats {
  std::atomic<int64_t> clients_active{0};
  std::atomic<int64_t> clients_total{0};
  std::atomic<int64_t> clients_rejected_max_conn{0};
  std::atomic<int64_t> auth_failures{0};
  std::atomic<int64_t> protocol_violations{0};
  std::atomic<int64_t> pool_timeouts{0};
  std::atomic<int64_t> server_connects{0};
  std::atomic<int64_t> server_connect_failures{0};
  std::atomic<int64_t> server_conns_open{0};
  std::atomic<int64_t> server_resets{0};
  std::atomic<int64_t> server_closed_dirty{0};
  std::atomic<int64_t> cancels_forwarded{0};
  std::atomic<int64_t> cancels_unmatched{0};
  std::atomic<int64_t> server_lost{0};
  std::atomic<int64_t> outcome_unknown{0};  // clients told 08007: a commit may have happened
  std::atomic<int64_t> writer_timeouts{0};  // units that found no writer within the timeout
  std::atomic<int64_t> idle_timeouts{0};
  std::atomic<int64_t> sessions_pinned{0};
  std::atomic<int64_t> sessions_shut_down{0};  // ended by a shutdown or KILL (57P01)
};

Stats& stats();

}  // namespace pglane::proxy
