// The cluster as pglane sees it: every configured endpoint with its measured health, and the
// health checker that measures it.
//
// Each endpoint is probed by its own thread with libpq in non-blocking mode under a deadline, so
// a hung server never blocks a worker's event loop or another endpoint's probe. Workers read
// the results through atomics (no locks on the query path); routing/ gets them as plain
// Candidate values (routing::choose_replica).
//
// Probe (docs 9.27.4, 9.27.5): pg_is_in_recovery(); on a replica pg_last_wal_replay_lsn(), on
// the writer pg_current_wal_lsn(); the round trip of the probe query. A replica's lag is how
// long ago the writer first reported a WAL position the replica has not replayed yet (from the
// writer's recent samples), which stays right on an idle cluster where replay timestamps age.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "conf/config.h"
#include "routing/placement.h"
#include "routing/route.h"
#include "routing/stats.h"

namespace pglane::proxy {

using SteadyTime = std::chrono::steady_clock::time_point;

struct EndpointState {
  conf::Endpoint endpoint;
  std::string name;     // "host:port"
  std::string region;   // name of its region
  int region_rank = 0;  // 0 = the gateway's own region, 1.. = other regions
  bool configured_writer = false;
  bool analytics = false;  // the analytics endpoint (not a replica, never written)

  std::atomic<bool> up{false};           // passed its checks (replicas start down until then)
  std::atomic<bool> in_recovery{false};  // what the server says, not what the config says
  std::atomic<uint64_t> lsn{0};          // replay LSN (replica) or current WAL LSN (writer)
  std::atomic<int64_t> lag_ms{0};
  std::atomic<int64_t> rtt_us{0};
  std::atomic<int> outstanding{0};  // transactions pglane runs on it now
  std::atomic<int64_t> probes_failed{0};
  std::atomic<int64_t> reads{0};           // transactions routed here as reads
  std::atomic<bool> reported_down{false};  // a session saw it fail since the last check
  std::atomic<uint64_t> reports{0};        // how many times; a probe spanning one is void

  // Checker-thread state.
  int fails_in_row = 0;
  int oks_in_row = 0;
  bool role_warned = false;
};

using RouteStats = routing::RouteStats;  // process-wide routing counters

// The health view routing::Placer places units with: replicas by index in replicas() order.
class Topology : public routing::HealthView {
 public:
  explicit Topology(const conf::Config& cfg);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Starts the checker threads (one per endpoint, one for the function catalog).
  void start();
  void stop();

  EndpointState& writer() { return *writer_; }
  EndpointState* analytics() { return analytics_.get(); }
  const std::vector<std::unique_ptr<EndpointState>>& replicas() const { return replicas_; }

  // A passive failure seen by a session (connection refused, connection lost): the endpoint is
  // down at once and comes back only by passing checks.
  void report_failure(EndpointState& ep);

  // ---- routing::HealthView ----
  bool has_analytics() const override { return analytics_ != nullptr; }
  void replicas(std::vector<routing::Candidate>& out) const override;
  // Read-your-writes: the first writer LSN sampled at or after `t`, if there is one yet.
  // Otherwise asks the writer's checker for a fresh sample soon and returns nullopt.
  std::optional<uint64_t> writer_lsn_since(SteadyTime t) override;

  // The function volatility catalog of `database`, or null until it has been loaded (the
  // database is queued for loading on first ask).
  std::shared_ptr<const routing::FunctionCatalog> catalog(const std::string& database);
  const std::unordered_set<std::string>& read_only_allow() const { return allow_; }
  // Re-reads every loaded catalog now (SIGHUP: after CREATE/ALTER FUNCTION, say).
  void reload_catalogs();

  RouteStats& stats() { return stats_; }
  std::string describe() const;  // counters, then one line per endpoint: for logs and tests

 private:
  struct Sample {
    SteadyTime at;  // when the probe query was sent
    uint64_t lsn;
  };
  void probe_loop(EndpointState& ep);
  void catalog_loop();
  void record_writer_sample(SteadyTime at, uint64_t lsn);
  int64_t lag_behind_writer(uint64_t replay_lsn, SteadyTime now, int64_t ts_lag);
  void mark(EndpointState& ep, bool ok);
  // libpq connection parameters for the checker's own connections.
  std::vector<std::pair<std::string, std::string>> conn_params(const conf::Endpoint& endpoint,
                                                               const std::string& database,
                                                               const char* app) const;

  conf::Config cfg_;
  std::unique_ptr<EndpointState> writer_;
  std::vector<std::unique_ptr<EndpointState>> replicas_;
  std::unique_ptr<EndpointState> analytics_;
  std::unordered_set<std::string> allow_;
  RouteStats stats_;

  std::mutex mu_;
  std::condition_variable wake_;  // stop, sample requests, catalog requests
  bool stopping_ = false;
  bool sample_wanted_ = false;
  bool catalogs_stale_ = false;        // reload_catalogs() was asked
  std::deque<Sample> writer_samples_;  // WAL positions with when each was first seen
  SteadyTime last_sample_at_{};        // the latest writer sample, whatever its position
  bool samples_dropped_ = false;       // the oldest positions were forgotten
  std::unordered_map<std::string, std::shared_ptr<const routing::FunctionCatalog>> catalogs_;
  std::unordered_set<std::string> catalog_wanted_;
  std::vector<std::thread> threads_;
};

// The process's topology (set by run_server; null in unit tests).
Topology* topology();
void set_topology(Topology* t);

}  // namespace pglane::proxy
