// The cluster as pglane sees it: every configured instance with its measured health and role,
// the current writer, and the health checker that measures them.
//
// Each instance is probed by its own thread with libpq in non-blocking mode under a deadline
// (proxy/probe.h), so a hung server never blocks a worker's event loop or another instance's
// probe. Workers read the results through atomics (no locks on the query path); routing/ gets
// them as plain Candidate values (routing::choose_replica).
//
// Roles come from the servers, never from the configuration (docs/internals.md, "Failover"): each
// probe asks pg_is_in_recovery() and, on a primary, its timeline; routing::WriterElection turns
// the reports into the one writer, or none while a failover is under way. A writer suspected by a
// session (its connection lost, or 25006 from it) or missing makes every instance be probed every
// health.failover_interval_ms until exactly one writer is confirmed.
//
// Replica lag (docs 9.27.4, 9.27.5): on a replica pg_last_wal_replay_lsn(), on the writer
// pg_current_wal_insert_lsn(). A replica's lag is how long ago the writer first reported a WAL
// position the replica has not replayed yet (from the writer's recent samples), which stays right
// on an idle cluster where replay timestamps age.
#pragma once

#include <array>
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
#include "proxy/observe.h"
#include "routing/election.h"
#include "routing/placement.h"
#include "routing/route.h"
#include "routing/stats.h"

namespace pglane::proxy {

using SteadyTime = std::chrono::steady_clock::time_point;

struct EndpointState {
  conf::Endpoint endpoint;
  std::string name;          // "host:port"
  std::string region;        // name of its region
  int region_rank = 0;       // 0 = the gateway's own region, 1.. = other regions
  size_t index = 0;          // among the instances (Topology::instance, HealthView::replicas order)
  bool analytics = false;    // the analytics endpoint (not a replica, never written)
  size_t config_region = 0;  // its region in conf::Config::regions
  ProbeKind kind = ProbeKind::kStatic;  // how it is probed (its region's topology source)
  std::string server_id;                // aurora: its instance id
  // aurora: the writer no longer lists it (the instance was deleted): still probed, but never
  // elected and never used until the writer lists it again.
  std::atomic<bool> removed{false};

  std::atomic<bool> up{false};           // passed its checks (instances start down until then)
  std::atomic<bool> in_recovery{false};  // what the server says, not what the config says
  std::atomic<bool> fenced{false};       // claims to be a writer but is not the elected one
  std::atomic<uint64_t> timeline{0};     // a primary's timeline (0 = unknown or in recovery)
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
  int unlisted = 0;  // aurora: writer probes in a row that did not list it (guarded by mu_)
  SteadyTime unlisted_since{};   // aurora: since when (guarded by mu_)
  bool outsider_logged = false;  // aurora: removed yet claiming the writer role, logged
  std::string last_error;        // the latest failed check's reason (guarded by Topology's mutex)
};

// One endpoint's state at one moment, copied out for readers on any thread.
struct EndpointView {
  std::string name;
  std::string region;
  std::string role;  // writer, replica, fenced, removed, down, unknown, analytics
  bool up = false;
  bool in_recovery = false;
  uint64_t timeline = 0;
  uint64_t lsn = 0;
  int64_t lag_ms = 0;
  int64_t rtt_us = 0;
  int outstanding = 0;
  int64_t reads = 0;
  int64_t probes_failed = 0;
  std::string last_error;
};

using RouteStats = routing::RouteStats;  // process-wide routing counters

// The health view routing::Placer places units with: replicas by index in replicas() order.
class Topology : public routing::HealthView {
 public:
  explicit Topology(const conf::Config& cfg);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Starts the checker threads (one per instance, one for the function catalog).
  void start();
  // Waits, at most `limit`, until a writer is confirmed and the function volatility of every
  // database has been read, so that the first clients are routed right.
  void wait_ready(std::chrono::milliseconds limit);
  void stop();

  // The writer now, or null while there is none (failover under way, or two claimants).
  EndpointState* writer() const { return writer_.load(std::memory_order_acquire); }
  // A replica that can serve reads now (the gateway's own region first), or null.
  EndpointState* healthy_replica() const;
  // Why there is no writer, for the clients that waited for one in vain: each instance's role
  // or last probe error.
  std::string why_no_writer() const;
  // Every instance is being probed fast: the writer is missing or suspect.
  bool searching() const { return searching_.load(std::memory_order_acquire); }
  // How many times the writer has changed (to another instance or to none).
  uint64_t writer_changes() const { return writer_changes_.load(std::memory_order_acquire); }
  EndpointState* analytics() { return analytics_.get(); }
  // Read/write splitting runs: it is on, with transaction pooling (which moves clients between
  // servers) and somewhere other than the writer to send reads.
  bool splits() const {
    return cfg_.routing.enabled && cfg_.pool.mode == conf::PoolMode::kTransaction &&
           (instance_count() > 1 || aurora_ || analytics_ != nullptr);
  }
  // Every database instance (writer and replicas alike: roles change), by index. Aurora
  // instances are added while running; an index, once given, always names the same instance.
  size_t instance_count() const { return count_.load(std::memory_order_acquire); }
  EndpointState& instance(size_t i) const { return *instances_[i]; }
  // At most this many instances (Aurora: 16 per cluster, a Global Database up to 11 clusters).
  static constexpr size_t kMaxInstances = 256;

  // A passive failure seen by a session (connection refused, connection lost). A replica is down
  // at once and comes back only by passing checks; the writer becomes suspect (every instance is
  // probed fast until it answers again or another is elected).
  void report_failure(EndpointState& ep);
  // The writer answered 25006 "read-only transaction" to a unit that needed it: it may have been
  // demoted under us. Suspect it, as above.
  void report_read_only(EndpointState& ep);

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
  // Re-reads every loaded catalog soon: now, or a second after the last time it was asked
  // (SIGHUP after CREATE/ALTER FUNCTION; a session after an unattributed write, DDL among them).
  void reload_catalogs();
  // Reload: static regions' instances as `next` lists them (new ones added and probed, missing
  // ones removed: never routed to again, their idle pooled connections closed). Returns one
  // line per change, for the log.
  std::vector<std::string> reconcile(const conf::Config& next);
  // The instance at "host:port", or null (mu_ held once start() ran).
  EndpointState* by_name_locked(const std::string& name) const;

  RouteStats& stats() { return stats_; }
  // Every endpoint as it is now (instances, then the analytics endpoint): for the console's
  // SHOW HEALTH, /metrics and describe().
  std::vector<EndpointView> view() const;
  std::string describe() const;  // counters, then one line per endpoint: for logs and tests

 private:
  struct Sample {
    SteadyTime at;  // when the probe query that first saw this position was sent
    uint64_t lsn;
    SteadyTime last_at;  // ... and the latest one that still saw it
  };
  void probe_loop(EndpointState& ep);
  // aurora: reads the topology from a region's cluster endpoint while none of its instances is
  // up (at startup, or when they are all gone).
  void discover_loop(size_t region);
  // aurora: adds the members `from` lists that pglane does not know yet; the writer's list also
  // removes the instances it no longer names and brings back removed ones it names again.
  void merge_members(const EndpointState& from, const Observation& seen, bool from_writer);
  // Adds an instance (mu_ held once start() ran) and, once started, its checker thread. Returns
  // the instance already known at that address instead, if any; null when there is no room.
  EndpointState* add_instance_locked(const conf::Endpoint& ep, size_t region,
                                     const std::string& server_id);
  // aurora: where instance `id` of `region` listens (the map, else the pattern).
  std::optional<conf::Endpoint> address_of(const conf::Region& region, const std::string& id) const;
  void catalog_loop();
  std::vector<std::string> list_databases();
  void record_writer_sample(SteadyTime at, uint64_t lsn);
  int64_t lag_behind_writer(uint64_t replay_lsn, SteadyTime now, int64_t ts_lag);
  void mark(EndpointState& ep, bool ok);
  void suspect_writer(EndpointState& ep, const char* why);
  // Feeds a probe's report to the election and publishes what it decided. Requires mu_ held;
  // returns the endpoint whose pooled connections must be retired (the writer that lost the
  // role), if any.
  EndpointState* elect_locked(EndpointState& ep, const routing::InstanceReport& r);
  // A writer that lost the role (elect_locked returned it; mu_ not held): its idle pooled
  // connections close, and so do the ones clients hold now.
  void retire(EndpointState& old_writer);
  // libpq connection parameters for the checker's own connections.
  std::vector<std::pair<std::string, std::string>> conn_params(const conf::Endpoint& endpoint,
                                                               const std::string& database,
                                                               const char* app) const;

  conf::Config cfg_;
  std::vector<int> region_rank_;  // by config region: 0 = the home region
  // Slots [0, count_) are set, each before count_ is raised past it; never shrinks.
  std::array<std::unique_ptr<EndpointState>, kMaxInstances> instances_;
  std::atomic<size_t> count_{0};
  bool aurora_ = false;   // some region's topology comes from Aurora
  bool started_ = false;  // start() ran: new instances get their checker thread at once
  std::atomic<EndpointState*> writer_{nullptr};
  std::atomic<uint64_t> writer_changes_{0};
  std::atomic<bool> searching_{true};  // probe fast (mirrors election_.searching())
  bool probing_ = true;  // false: one instance trusted as the writer, no probe threads
  std::atomic<bool> catalogs_ready_{false};  // the startup databases' catalogs were tried
  std::unique_ptr<EndpointState> analytics_;
  std::unordered_set<std::string> allow_;
  RouteStats stats_;

  mutable std::mutex mu_;
  std::condition_variable wake_;  // stop, sample requests, catalog requests, a search starting
  routing::WriterElection election_;
  uint64_t search_epoch_ = 0;  // bumped when a search starts: probes wake at once
  bool stopping_ = false;
  bool sample_wanted_ = false;
  bool catalogs_stale_ = false;        // reload_catalogs() was asked
  SteadyTime catalogs_loaded_at_{};    // when reload_catalogs() was last served
  std::deque<Sample> writer_samples_;  // WAL positions with when each was first seen
  SteadyTime last_sample_at_{};        // the latest writer sample, whatever its position
  bool samples_dropped_ = false;       // the oldest positions were forgotten
  std::unordered_map<std::string, std::shared_ptr<const routing::FunctionCatalog>> catalogs_;
  std::unordered_set<std::string> catalog_wanted_;
  std::unordered_set<std::string> unaddressable_;  // aurora ids already warned about
  std::vector<std::thread> threads_;
};

// The process's topology (set by run_server; null in unit tests).
Topology* topology();
void set_topology(Topology* t);

}  // namespace pglane::proxy
