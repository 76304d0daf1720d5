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

#include "absl/status/statusor.h"
#include "cache/local.h"
#include "cache/policy.h"
#include "cache/redis/client.h"
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
  std::atomic<uint64_t> not_stored{0};   // the answer was an error, too large, or spoiled
  std::atomic<uint64_t> uncacheable{0};  // reads no rule or test let through
  std::atomic<uint64_t> hit_us_sum{0};   // lookup-to-answer time of hits
  std::atomic<uint64_t> hit_le_1ms{0};
  std::atomic<uint64_t> hit_le_5ms{0};
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
  // Stores an answer kept for a miss (detached: the client already has it).
  void fill(int worker, const Lookup& miss, std::string payload, int ttl_ms);
  // The worker's in-process layer, or null when cache.local_bytes is 0.
  cache::LocalCache* local(int worker) {
    return worker >= 0 && static_cast<size_t>(worker) < local_.size()
               ? local_[static_cast<size_t>(worker)].get()
               : nullptr;
  }

  ResultCacheStats& stats() { return stats_; }
  bool healthy(int worker) const;

 private:
  ResultCache() = default;
  std::vector<std::string> version_keys(uint64_t db, const routing::TableSet& reads) const;

  cache::Rules rules_;
  std::string secret_;
  std::string prefix_;
  size_t max_entry_bytes_ = 0;
  std::vector<std::unique_ptr<cache::redis::Client>> clients_;  // per worker
  std::vector<std::unique_ptr<cache::LocalCache>> local_;       // per worker
  std::vector<boost::asio::any_io_executor> executors_;
  // Per worker: the client's connection epoch last seen, and the wall clock (ms) of its last
  // reconnection (0: still on its first connection). Entries started before a reconnection are
  // not trusted (a Redis failover may have lost version writes).
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
