#include "routing/placement.h"

#include <algorithm>
#include <atomic>

namespace pglane::routing {

namespace {

Placement on_writer() {
  return {};
}

Placement read_on_writer(bool ryw) {
  Placement p;
  p.fallback = true;
  p.ryw_fallback = ryw;
  return p;
}

}  // namespace

const char* describe(const Placement& p) {
  switch (p.where) {
    case Placement::Where::kWriter:
      if (!p.fallback) {
        return "writer";
      }
      return p.ryw_fallback ? "writer (read-your-writes)" : "writer (no replica qualifies)";
    case Placement::Where::kReplica:
      return p.region == 0 ? "local replica" : "remote replica";
    case Placement::Where::kAnalytics:
      return "analytics";
    case Placement::Where::kNowhere:
      return "nowhere";
  }
  return "?";
}

std::optional<uint64_t> Placer::required_lsn(HealthView& view,
                                             std::chrono::steady_clock::time_point now,
                                             std::chrono::steady_clock::time_point floor) {
  uint64_t lsn = 0;
  if (rw_pending_) {
    switch (policy_.read_your_writes) {
      case ReadYourWritesMode::kLsn:
        if (rw_lsn_ == 0) {
          rw_lsn_ = view.writer_lsn_since(rw_at_).value_or(0);
        }
        if (rw_lsn_ == 0) {
          return std::nullopt;  // the commit position is not known yet
        }
        lsn = rw_lsn_;
        break;
      case ReadYourWritesMode::kWindow:
        if (now - rw_at_ < policy_.window) {
          return std::nullopt;
        }
        rw_pending_ = false;
        break;
      case ReadYourWritesMode::kOff:
        break;
    }
  }
  const bool floors = policy_.scope == FloorScope::kTable || policy_.scope == FloorScope::kDatabase;
  if (floors && floor != std::chrono::steady_clock::time_point{}) {
    if (floor != floor_at_) {
      std::optional<uint64_t> at = view.writer_lsn_since(floor);
      if (!at) {
        return std::nullopt;  // no writer position sampled since that write yet
      }
      floor_at_ = floor;
      floor_lsn_ = *at;
    }
    lsn = std::max(lsn, floor_lsn_);
  }
  return lsn;
}

Placement Placer::place(const Decision& d, HealthView& view, std::span<const int> excluded,
                        std::chrono::steady_clock::time_point now,
                        std::chrono::steady_clock::time_point floor) {
  if (d.route == Route::kAnalytics && view.has_analytics()) {
    Placement p;
    p.where = Placement::Where::kAnalytics;
    p.route = Route::kAnalytics;
    return p;
  }
  // Analytics work without an analytics endpoint is a read like any other.
  if (d.route == Route::kWriter) {
    // Failover will add "no writer right now" here: Where::kNowhere for a write.
    return on_writer();
  }
  ReadRequirement need;
  need.max_lag_ms = policy_.max_lag_ms;
  need.remote = policy_.remote_replicas;
  std::optional<uint64_t> min_lsn = required_lsn(view, now, floor);
  if (!min_lsn) {
    return read_on_writer(true);
  }
  need.min_lsn = *min_lsn;
  candidates_.clear();
  view.replicas(candidates_);
  for (int i : excluded) {
    if (i >= 0 && static_cast<size_t>(i) < candidates_.size()) {
      candidates_[i].healthy = false;
    }
  }
  need.rotation = rotation_++;
  const int pick = choose_replica(candidates_, need);
  if (pick >= 0) {
    Placement p;
    p.where = Placement::Where::kReplica;
    p.replica = pick;
    p.region = candidates_[pick].region;
    p.route = Route::kReader;
    return p;
  }
  // No replica has replayed the client's write: the writer serves the read, whatever
  // routing.no_replica says (the client's own write must be visible).
  const bool ryw = need.min_lsn != 0;
  if (policy_.error_when_no_replica && !ryw) {
    Placement p;
    p.where = Placement::Where::kNowhere;
    p.route = Route::kReader;
    return p;
  }
  return read_on_writer(ryw);
}

Placer::Placer(PlacementPolicy policy) : policy_(policy) {
  // One relaxed increment per session (not per read): sessions start their turns apart.
  static std::atomic<uint32_t> next_start{0};
  rotation_ = next_start.fetch_add(1, std::memory_order_relaxed);
}

void Placer::wrote(std::chrono::steady_clock::time_point now) {
  rw_pending_ = true;
  rw_at_ = now;
  rw_lsn_ = 0;
}

}  // namespace pglane::routing
