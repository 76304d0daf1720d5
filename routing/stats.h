// Routing counters, process-wide: every worker's sessions bump them (relaxed atomics, no locks on
// the query path); the admin console and the logs read them.
#pragma once

#include <atomic>
#include <cstdint>

namespace pglane::routing {

struct RouteStats {
  std::atomic<int64_t> reads_local{0};   // reads served by a replica of our region
  std::atomic<int64_t> reads_remote{0};  // reads served by another region's replica
  std::atomic<int64_t> reads_writer{0};  // reads that went to the writer (no replica, RYW)
  std::atomic<int64_t> reads_ryw{0};     // ... of which because of read-your-writes
  std::atomic<int64_t> writes{0};
  std::atomic<int64_t> analytics{0};
  std::atomic<int64_t> retries{0};   // reads retried after their replica failed
  std::atomic<int64_t> reroutes{0};  // pipelined units that needed another server
  std::atomic<int64_t> analysis_fast{0};
  std::atomic<int64_t> analysis_cache_hits{0};
  std::atomic<int64_t> analysis_parsed{0};
  std::atomic<int64_t> analysis_rejected{0};
};

}  // namespace pglane::routing
