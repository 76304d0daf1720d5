// Placement: which server runs a unit that classify_unit (routing/unit.h) decided. The writer for
// writes, the analytics endpoint for analytics work when there is one, otherwise a replica
// chosen by choose_replica (routing/route.h) — with read-your-writes: after a client's write,
// its reads wait for a replica that has replayed past the write, or go to the writer.
//
// Sans-I/O: the cluster's health arrives through HealthView (proxy's Topology implements it;
// tests use a fake), the time as an argument.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "routing/floors.h"
#include "routing/route.h"

namespace pglane::routing {

// What placement needs to know about the cluster.
class HealthView {
 public:
  virtual ~HealthView() = default;
  virtual bool has_analytics() const = 0;
  // Appends one Candidate per replica to `out` (which arrives empty), always in the same order:
  // the index names the replica (Placement::replica, Placer::place's `excluded`). `healthy` is
  // up and in recovery.
  virtual void replicas(std::vector<Candidate>& out) const = 0;
  // Read-your-writes: the first writer WAL position sampled at or after `t`, if there is one yet
  // (otherwise the view may ask for a fresh sample soon).
  virtual std::optional<uint64_t> writer_lsn_since(std::chrono::steady_clock::time_point t) = 0;
};

// routing.read_your_writes: how a client's reads after its write see that write.
enum class ReadYourWritesMode {
  kLsn,     // a replica that has replayed past the writer position sampled after the write
  kWindow,  // the writer, for `window` after the write
  kOff,     // any replica within max_lag_ms
};

struct PlacementPolicy {
  int64_t max_lag_ms = 1000;  // routing.max_replica_lag_ms
  ReadYourWritesMode read_your_writes = ReadYourWritesMode::kLsn;
  // Whose writes beyond the client's own a read must see: the floor passed to place() is
  // honoured unless this is kOff or kSession.
  FloorScope scope = FloorScope::kTable;
  std::chrono::milliseconds window{2000};  // routing.read_your_writes_window_ms
  bool error_when_no_replica = false;      // routing.no_replica = "error"
  bool remote_replicas = true;             // routing.remote_replicas
};

struct Placement {
  enum class Where { kWriter, kReplica, kAnalytics, kNowhere };
  Where where = Where::kWriter;
  int replica = -1;  // kReplica: the index of the replica in HealthView::replicas
  int region = 0;    // kReplica: its Candidate::region (0 = the gateway's own region)
  // How the server is used: kWriter on the writer (for a read too when `fallback`), kReader on a
  // replica, kAnalytics on the analytics endpoint. kNowhere: kReader (a read no replica can
  // serve, with error_when_no_replica; the client gets an error).
  Route route = Route::kWriter;
  bool fallback = false;      // a read sent to the writer
  bool ryw_fallback = false;  // ... because of read-your-writes
};

// For logs: "writer", "analytics", "local replica", "remote replica",
// "writer (read-your-writes)", "writer (no replica qualifies)", "nowhere".
const char* describe(const Placement& p);

// One client's placement state: its pending read-your-writes. One per session; not thread-safe.
class Placer {
 public:
  explicit Placer(PlacementPolicy policy);
  // A reload changed the policy; the client's read-your-writes state stays.
  void set_policy(PlacementPolicy policy) { policy_ = policy; }
  const PlacementPolicy& policy() const { return policy_; }

  // Where a unit decided `d` runs now. `excluded`: indices of replicas that already failed this
  // unit (skipped as if unhealthy). `floor`: the latest committed write the read must see
  // (FloorBoard::floor; a default time_point for none). May consume the pending write (window
  // over, or its writer position learnt from `view`).
  Placement place(const Decision& d, HealthView& view, std::span<const int> excluded,
                  std::chrono::steady_clock::time_point now,
                  std::chrono::steady_clock::time_point floor = {});

  // The writer position a read must find replayed: the client's own write and `floor`
  // together. 0: no constraint; nullopt: not known yet, or the window keeps the read on the
  // writer (read-your-writes sends it to the writer).
  std::optional<uint64_t> required_lsn(HealthView& view, std::chrono::steady_clock::time_point now,
                                       std::chrono::steady_clock::time_point floor);

  // The client's attachment wrote and has just left its server (its transaction is over): later
  // reads must see this write.
  void wrote(std::chrono::steady_clock::time_point now);

 private:
  PlacementPolicy policy_;
  // Read-your-writes: after a writing transaction, reads wait for a replica past rw_lsn_.
  bool rw_pending_ = false;
  std::chrono::steady_clock::time_point rw_at_;  // when the write was acknowledged
  uint64_t rw_lsn_ = 0;                          // a writer position at or after it (0: unknown)
  // The last floor turned into a writer position (floors repeat: one lookup per change).
  std::chrono::steady_clock::time_point floor_at_{};
  uint64_t floor_lsn_ = 0;
  std::vector<Candidate> candidates_;  // scratch
  uint32_t rotation_;  // turns among equally good replicas; sessions start at different ones
};

}  // namespace pglane::routing
