// The result cache's Redis side (docs/internals.md, "Result cache"): per-worker Redis clients,
// the lookup (the entry and the current versions of its tables in one MGET), the store (SET
// with a TTL, after the client has its answer) and the counters. What is cached and how keys and
// values look is cache/'s; when a session looks up and fills is TransactionPooling's
// (proxy/txn_cache.cc).
//
// Versions: every gateway that commits a write sets the written tables' version keys to a new
// token before the commit is acknowledged (FloorSync::publish). An entry remembers the versions
// it was filled under and is served only while they are all still current, so a write through
// any gateway retires it at once, without waiting for its TTL.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "cache/local.h"
#include "cache/policy.h"
#include "cache/redis/router.h"
#include "conf/config.h"
#include "routing/floors.h"

namespace pglane::proxy {

struct ResultCacheStats {
  std::atomic<uint64_t> lookups{0};
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> local_hits{0};   // of which from the in-process layer
  std::atomic<uint64_t> misses{0};       // no entry
  std::atomic<uint64_t> stale{0};        // an entry whose tables were written since
  std::atomic<uint64_t> rejected{0};     // bad signature, or older than a Redis reconnect
  std::atomic<uint64_t> unavailable{0};  // Redis failed or the breaker was open: database
  std::atomic<uint64_t> stores{0};
  std::atomic<uint64_t> store_failures{0};
  std::atomic<uint64_t> not_stored{0};    // the answer was an error, too large, or spoiled
  std::atomic<uint64_t> uncacheable{0};   // reads no rule or test let through
  std::atomic<uint64_t> flight_waits{0};  // misses that waited for another's fill of their key
  std::atomic<uint64_t> hit_us_sum{0};    // lookup-to-answer time of hits
  std::atomic<uint64_t> hit_le_1ms{0};
  std::atomic<uint64_t> hit_le_5ms{0};
};

// Single flight: while one session of a worker fills a key, the worker's other misses of that
// key wait for it (at most kFlightWait, at most kMaxFlightWaiters of them) and look again.
struct Flight {
  explicit Flight(const boost::asio::any_io_executor& ex)
      : landed(ex, boost::asio::steady_timer::time_point::max()) {}
  boost::asio::steady_timer landed;  // cancelled when the fill is stored or abandoned
  bool done = false;
  int waiters = 0;
};
inline constexpr std::chrono::milliseconds kFlightWait{1000};
inline constexpr int kMaxFlightWaiters = 64;

class ResultCache;

// The filler's hold on a flight: lands it (wakes the waiters) when destroyed.
class FlightTicket {
 public:
  FlightTicket(ResultCache* rc, int worker, std::string key, std::shared_ptr<Flight> f,
               std::shared_ptr<bool> alive)
      : rc_(rc),
        worker_(worker),
        key_(std::move(key)),
        f_(std::move(f)),
        alive_(std::move(alive)) {}
  ~FlightTicket();
  FlightTicket(const FlightTicket&) = delete;
  FlightTicket& operator=(const FlightTicket&) = delete;

 private:
  ResultCache* rc_;
  int worker_;
  std::string key_;
  std::shared_ptr<Flight> f_;
  std::shared_ptr<bool> alive_;
};

class ResultCache {
 public:
  // Null (and OK) when [cache] is not enabled.
  static absl::StatusOr<std::unique_ptr<ResultCache>> create(
      const conf::Config& cfg, const std::vector<boost::asio::any_io_executor>& workers);
  ~ResultCache();

  const cache::Rules& rules() const { return rules_; }
  const std::string& secret() const { return secret_; }
  size_t max_entry_bytes() const { return max_entry_bytes_; }

  struct Lookup {
    enum class What { kHit, kMiss, kUnavailable } what = What::kMiss;
    std::string redis_key;
    std::string payload;                    // kHit: the answer's bytes
    std::vector<std::string> version_keys;  // the database's, then each table's
    std::vector<std::string> versions;      // their values ("" = none yet)
    routing::TableSet reads;                // the tables the read reads
    int64_t started_ms = 0;                 // wall clock before the lookup
    int64_t expires_ms = 0;                 // kHit: wall clock when its TTL ends
  };
  // `key`: cache::result_key of the statement. On a miss, `out` has what fill() needs.
  boost::asio::awaitable<void> lookup(int worker, uint64_t db, const routing::TableSet& reads,
                                      const std::string& key, Lookup& out);
  // Stores an answer kept for a miss (detached: the client already has it). `ticket` lands
  // once the store is done.
  void fill(int worker, const Lookup& miss, std::string payload, int ttl_ms,
            std::unique_ptr<FlightTicket> ticket);
  // The flight filling `key` on `worker`, or null.
  std::shared_ptr<Flight> flight(int worker, const std::string& key);
  // Starts one (the caller fills `key`).
  std::unique_ptr<FlightTicket> take_off(int worker, const std::string& key);
  // Auto mode: how often this worker has seen `unit` (a statement's messages) in the current
  // minute, this time included.
  uint32_t seen(int worker, std::string_view unit);
  // The worker's in-process layer, or null when cache.local_bytes is 0.
  cache::LocalCache* local(int worker) {
    return worker >= 0 && static_cast<size_t>(worker) < local_.size()
               ? local_[static_cast<size_t>(worker)].get()
               : nullptr;
  }

  ResultCacheStats& stats() { return stats_; }
  bool healthy(int worker) const;
  // Redis Cluster redirections (-MOVED, -ASK) followed by every worker.
  uint64_t redirects() const;

 private:
  friend class FlightTicket;
  ResultCache() = default;
  void land(int worker, const std::string& key, const std::shared_ptr<Flight>& f);
  std::vector<std::string> version_keys(uint64_t db, const routing::TableSet& reads) const;

  cache::Rules rules_;
  std::string secret_;
  std::string prefix_;
  size_t max_entry_bytes_ = 0;
  bool encrypt_ = false;
  std::vector<std::unique_ptr<cache::redis::Router>> clients_;  // per worker
  std::vector<std::unique_ptr<cache::LocalCache>> local_;       // per worker
  // Per worker (touched only on its thread): auto mode's sightings, and when they were reset.
  struct Sightings {
    absl::flat_hash_map<uint64_t, uint32_t> count;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Sightings> seen_;
  // Per worker (touched only on its thread): keys being filled.
  std::vector<absl::flat_hash_map<std::string, std::shared_ptr<Flight>>> flights_;
  std::vector<boost::asio::any_io_executor> executors_;
  // Per worker: the client's connection epoch last seen, and the wall clock (ms) of its last
  // reconnection (the process start for the first connection). Entries started before it are
  // not trusted (a Redis failover may have lost version writes), nor another gateway's entries
  // started within kClockSkewMs after it.
  std::vector<uint64_t> epoch_seen_;
  std::vector<int64_t> reconnected_ms_;
  ResultCacheStats stats_;
  uint64_t token_base_ = 0;  // random per process: version tokens never repeat
  std::atomic<uint64_t> token_seq_{0};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The process's result cache, or null.
ResultCache* result_cache();
void set_result_cache(ResultCache* cache);

}  // namespace pglane::proxy
