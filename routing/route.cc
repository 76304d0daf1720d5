#include "routing/route.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace pglane::routing {

const char* route_name(Route r) {
  switch (r) {
    case Route::kReader:
      return "reader";
    case Route::kWriter:
      return "writer";
    case Route::kAnalytics:
      return "analytics";
  }
  return "?";
}

void RelationCatalog::add_cascading(std::string_view name) {
  cascading_.emplace(name);
}

void RelationCatalog::add_view_base(std::string_view view, std::string_view base) {
  auto& bases = views_[std::string(view)];
  if (!base.empty()) {
    bases.emplace_back(base);
  }
}

void RelationCatalog::add_uncacheable(std::string_view name) {
  uncacheable_.emplace(name);
}

bool RelationCatalog::uncacheable(std::string_view name) const {
  return uncacheable_.contains(std::string(name));
}

bool RelationCatalog::cascades(std::string_view name) const {
  return cascading_.contains(std::string(name));
}

std::vector<std::string> RelationCatalog::bases(std::string_view name, bool& is_view,
                                                bool& complete) const {
  std::vector<std::string> out;
  complete = true;
  auto it = views_.find(std::string(name));
  is_view = it != views_.end();
  if (!is_view) {
    return out;
  }
  std::vector<std::string> todo = it->second;
  std::unordered_set<std::string> seen{std::string(name)};
  while (!todo.empty()) {
    std::string b = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(b).second) {
      continue;
    }
    if (seen.size() > 64) {
      complete = false;
      break;
    }
    auto v = views_.find(b);
    if (v == views_.end()) {
      out.push_back(std::move(b));
    } else {
      todo.insert(todo.end(), v->second.begin(), v->second.end());
    }
  }
  return out;
}

void FunctionCatalog::add(std::string_view schema, std::string_view name, bool read_only,
                          bool immutable) {
  // Overloads share a name: the name is as safe as its least safe overload.
  auto merge = [&](auto& map, std::string key) {
    auto [it, fresh] = map.emplace(std::move(key), Volatility{read_only, immutable});
    if (!fresh) {
      it->second.read_only = it->second.read_only && read_only;
      it->second.immutable = it->second.immutable && immutable;
    }
  };
  merge(qualified_, std::string(schema) + "." + std::string(name));
  merge(unqualified_, std::string(name));
}

const FunctionCatalog::Volatility* FunctionCatalog::find(const QualifiedName& fn) const {
  if (fn.schema.empty()) {
    auto it = unqualified_.find(fn.name);
    return it == unqualified_.end() ? nullptr : &it->second;
  }
  auto it = qualified_.find(fn.schema + "." + fn.name);
  return it == qualified_.end() ? nullptr : &it->second;
}

std::optional<bool> FunctionCatalog::read_only(const QualifiedName& fn) const {
  const Volatility* v = find(fn);
  return v == nullptr ? std::nullopt : std::optional<bool>(v->read_only);
}

std::optional<bool> FunctionCatalog::immutable(const QualifiedName& fn) const {
  const Volatility* v = find(fn);
  return v == nullptr ? std::nullopt : std::optional<bool>(v->immutable);
}

namespace {

// Functions pg_proc calls stable that still need the writer: they assign a transaction ID,
// which a standby cannot ("cannot assign TransactionIds during recovery").
bool assigns_xid(const QualifiedName& fn) {
  return (fn.schema.empty() || fn.schema == "pg_catalog") &&
         (fn.name == "txid_current" || fn.name == "pg_current_xact_id");
}

}  // namespace

Decision decide(const StatementInfo& info, Hint comment_hint, const RouteContext& ctx) {
  if (info.parse_failed) {
    return {Route::kWriter, "not parsed"};
  }
  if (info.needs_writer) {
    return {Route::kWriter, info.locks_rows ? "locks rows" : "writes"};
  }
  for (const auto& fn : info.functions) {
    if (assigns_xid(fn)) {
      return {Route::kWriter, "assigns a transaction ID"};
    }
    if (ctx.read_only_allow && ctx.read_only_allow->contains(fn.name) &&
        (fn.schema.empty() || fn.schema == "pg_catalog")) {
      continue;
    }
    std::optional<bool> ro = ctx.catalog ? ctx.catalog->read_only(fn) : std::nullopt;
    if (!ro.value_or(false)) {
      return {Route::kWriter, ro ? "calls a volatile function" : "calls an unknown function"};
    }
  }
  if (info.begins_transaction) {
    // The whole transaction runs where it starts (it never splits). A replica can serve it only
    // if it cannot write; SERIALIZABLE is refused on a standby.
    const bool read_only = info.txn_read_only || (ctx.default_read_only && !info.txn_read_write);
    const bool serializable =
        info.txn_serializable || (ctx.default_serializable && !info.txn_isolation_set);
    if (!read_only) {
      return {Route::kWriter, "read-write transaction"};
    }
    if (serializable) {
      return {Route::kWriter, "serializable transaction"};
    }
  }
  const Hint hint = comment_hint != Hint::kNone ? comment_hint : ctx.session_hint;
  switch (hint) {
    case Hint::kWriter:
      return {Route::kWriter, "hint"};
    case Hint::kAnalytics:
      return {Route::kAnalytics, "hint"};
    case Hint::kReader:
    case Hint::kNone:
      break;
  }
  return {Route::kReader, "read"};
}

int choose_replica(std::span<const Candidate> candidates, const ReadRequirement& need) {
  auto qualifies = [&](const Candidate& c) {
    return c.healthy && c.lag_ms <= need.max_lag_ms &&
           (need.min_lsn == 0 || c.replay_lsn >= need.min_lsn) && (need.remote || c.region == 0);
  };
  // The best region: our own if any of its replicas qualifies, else the one with the shortest
  // round trip to a qualifying replica.
  int best_region = -1;
  int64_t best_rtt = std::numeric_limits<int64_t>::max();
  for (const auto& c : candidates) {
    if (!qualifies(c)) {
      continue;
    }
    if (c.region == 0) {
      best_region = 0;
      break;
    }
    if (c.rtt_us < best_rtt) {
      best_rtt = c.rtt_us;
      best_region = c.region;
    }
  }
  if (best_region < 0) {
    return -1;
  }
  // The fewest outstanding transactions, then the shortest round trip among those.
  int least_busy = std::numeric_limits<int>::max();
  int64_t nearest = std::numeric_limits<int64_t>::max();
  for (const auto& c : candidates) {
    if (c.region == best_region && qualifies(c)) {
      if (c.outstanding < least_busy) {
        least_busy = c.outstanding;
        nearest = c.rtt_us;
      } else if (c.outstanding == least_busy) {
        nearest = std::min(nearest, c.rtt_us);
      }
    }
  }
  // Those about as near take turns (probe round trips jitter by tens of microseconds).
  const int64_t limit = nearest + nearest * kRttSlackPercent / 100 + kRttSlackUs;
  int equals = 0;
  for (const auto& c : candidates) {
    equals +=
        c.region == best_region && qualifies(c) && c.outstanding == least_busy && c.rtt_us <= limit;
  }
  if (equals == 0) {
    return -1;
  }
  int turn = static_cast<int>(need.rotation % static_cast<uint32_t>(equals));
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    if (c.region == best_region && qualifies(c) && c.outstanding == least_busy &&
        c.rtt_us <= limit && turn-- == 0) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

}  // namespace pglane::routing
