// Per-worker measurements: latency histograms and per-(database, user) counters. Each worker
// writes only its own (single-writer relaxed atomics: a plain load and store, no locked
// instruction, no cache line shared with another worker on the query path); the admin console
// and the /metrics endpoint read and sum them from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pglane::proxy {

// A counter written by one thread only.
class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Latency in microseconds, in fixed buckets (upper bounds, Prometheus `le`), single writer.
class Histogram {
 public:
  static constexpr std::array<uint64_t, 16> kBoundsUs = {
      100,   250,    500,    1000,   2500,    5000,    10000,   25000,
      50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
  void observe(std::chrono::steady_clock::duration d);
  void observe_us(uint64_t us);

  // Summed over several histograms (a snapshot; buckets are not cumulative).
  struct Totals {
    std::array<uint64_t, kBoundsUs.size() + 1> buckets{};  // the last: above every bound
    uint64_t count = 0;
    uint64_t sum_us = 0;
    void add(const Histogram& h);
    // The q-quantile (0..1) in microseconds, as the upper bound of its bucket (0 when empty).
    uint64_t quantile_us(double q) const;
  };

 private:
  std::array<Counter, kBoundsUs.size() + 1> buckets_;
  Counter count_;
  Counter sum_us_;
};

// What SHOW STATS reports for one (database, user) on one worker.
struct UserStats {
  Counter transactions;  // units of work (transaction pooling) or sessions' transactions
  Counter queries;       // Query and Execute messages
  Counter bytes_in;      // from clients
  Counter bytes_out;     // to clients
  Histogram xact_time;   // a unit's time on a server, attach to detach
};

// Where a unit of work ran, for the per-route histogram.
enum class RouteKind { kWriter, kReplicaLocal, kReplicaRemote, kAnalytics, kCount };
const char* route_kind_name(RouteKind k);

struct alignas(64) WorkerMetrics {
  std::array<Histogram, static_cast<size_t>(RouteKind::kCount)> xact_by_route;
  Histogram pool_wait;  // a unit's wait for a server connection (acquire + prepare)

  // The (database, user) cell; created once per session, then used without the lock.
  UserStats& user_stats(const std::string& database, const std::string& user);
  // Calls f(database, user, stats) for every cell (under the worker's lock).
  template <typename F>
  void for_each_user(F&& f) {
    std::lock_guard lock(mu_);
    for (auto& [k, v] : users_) {
      f(k.first, k.second, *v);
    }
  }

 private:
  std::mutex mu_;  // taken once per session and by readers: never on the query path
  std::map<std::pair<std::string, std::string>, std::unique_ptr<UserStats>> users_;
};

// One (database, user)'s counters summed over every worker: SHOW STATS and /metrics.
struct UserTotals {
  uint64_t transactions = 0;
  uint64_t queries = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  Histogram::Totals xact_time;
};
std::map<std::pair<std::string, std::string>, UserTotals> sum_user_stats();

constexpr int kMaxWorkers = 257;  // proxy.workers is at most 256
WorkerMetrics& worker_metrics(int worker);
// How many workers run (set by run_server; readers sum [0, n)).
int worker_count();
void set_worker_count(int n);

}  // namespace pglane::proxy
