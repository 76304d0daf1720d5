#include "proxy/metrics.h"

#include <algorithm>

namespace pglane::proxy {

void Histogram::observe(std::chrono::steady_clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  observe_us(us < 0 ? 0 : static_cast<uint64_t>(us));
}

void Histogram::observe_us(uint64_t us) {
  size_t i = static_cast<size_t>(std::lower_bound(kBoundsUs.begin(), kBoundsUs.end(), us) -
                                 kBoundsUs.begin());
  buckets_[i].add();
  count_.add();
  sum_us_.add(us);
}

void Histogram::Totals::add(const Histogram& h) {
  for (size_t i = 0; i < buckets.size(); ++i) {
    buckets[i] += h.buckets_[i].get();
  }
  count += h.count_.get();
  sum_us += h.sum_us_.get();
}

uint64_t Histogram::Totals::quantile_us(double q) const {
  uint64_t total = 0;
  for (uint64_t b : buckets) {
    total += b;
  }
  if (total == 0) {
    return 0;
  }
  auto rank = static_cast<uint64_t>(q * static_cast<double>(total));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (seen >= rank) {
      return i < kBoundsUs.size() ? kBoundsUs[i] : kBoundsUs.back() * 2;
    }
  }
  return kBoundsUs.back() * 2;
}

const char* route_kind_name(RouteKind k) {
  switch (k) {
    case RouteKind::kWriter:
      return "writer";
    case RouteKind::kReplicaLocal:
      return "replica_local";
    case RouteKind::kReplicaRemote:
      return "replica_remote";
    case RouteKind::kAnalytics:
      return "analytics";
    case RouteKind::kCount:
      break;
  }
  return "?";
}

UserStats& WorkerMetrics::user_stats(const std::string& database, const std::string& user) {
  std::lock_guard lock(mu_);
  auto& slot = users_[{database, user}];
  if (!slot) {
    slot = std::make_unique<UserStats>();
  }
  return *slot;
}

namespace {
WorkerMetrics g_workers[kMaxWorkers];
std::atomic<int> g_worker_count{1};
}  // namespace

WorkerMetrics& worker_metrics(int worker) {
  return g_workers[static_cast<size_t>(worker) % kMaxWorkers];
}
std::map<std::pair<std::string, std::string>, UserTotals> sum_user_stats() {
  std::map<std::pair<std::string, std::string>, UserTotals> sums;
  for (int i = 0; i < worker_count(); ++i) {
    worker_metrics(i).for_each_user(
        [&](const std::string& db, const std::string& user, const UserStats& s) {
          UserTotals& t = sums[{db, user}];
          t.transactions += s.transactions.get();
          t.queries += s.queries.get();
          t.bytes_in += s.bytes_in.get();
          t.bytes_out += s.bytes_out.get();
          t.xact_time.add(s.xact_time);
        });
  }
  return sums;
}

int worker_count() {
  return g_worker_count.load(std::memory_order_relaxed);
}
void set_worker_count(int n) {
  g_worker_count.store(n, std::memory_order_relaxed);
}

}  // namespace pglane::proxy
