// Route decisions as pure functions: (StatementInfo, session state, function catalog) -> where
// a statement may go, and (candidate replicas' health) -> which replica serves a read. No I/O;
// proxy/ feeds them what the health checker and the catalog loader observed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "routing/statement.h"

namespace pglane::routing {

enum class Route : uint8_t {
  kReader,     // a replica may serve it (the writer can, too)
  kWriter,     // only the writer
  kAnalytics,  // the analytics endpoint (only ever a read)
};

const char* route_name(Route r);

// Which functions cannot write: pg_proc.provolatile, read from the server. A name is read-only
// when every overload of it is immutable or stable; unqualified names are read-only only when
// they are in every schema that has them (search_path is not resolved).
// What a database's catalog says about its tables, for freshness floors and the result cache
// (names unqualified and lower-case, like floors: same-named tables in two schemas share).
//  - cascading: a write to the table may change other tables, through a user trigger, a rule
//    other than a view's SELECT, a foreign key with an action that references it, or
//    inheritance/partitioning. Such a write counts for the whole database.
//  - views: what a view reads is what its base relations hold (from pg_depend, one level; a
//    view over a view is followed here).
//  - uncacheable: a sequence, or a view whose definition calls a function that is not
//    immutable or reads a system relation (the result cache's text test cannot see inside).
class RelationCatalog {
 public:
  void add_cascading(std::string_view name);
  // `base` empty: a view that reads no relation (only functions or constants).
  void add_view_base(std::string_view view, std::string_view base);
  void add_uncacheable(std::string_view name);
  bool cascades(std::string_view name) const;
  bool uncacheable(std::string_view name) const;
  // Whether the relations were read at all (without them nothing is known of triggers or views).
  bool loaded() const { return loaded_; }
  void set_loaded() { loaded_ = true; }
  // The base relations of view `name` (recursively, at most 64), or null when it is not a view.
  // `complete` is false when the expansion was cut short.
  std::vector<std::string> bases(std::string_view name, bool& is_view, bool& complete) const;
  bool empty() const { return cascading_.empty() && views_.empty(); }

 private:
  bool loaded_ = false;
  std::unordered_set<std::string> uncacheable_;
  std::unordered_set<std::string> cascading_;
  std::unordered_map<std::string, std::vector<std::string>> views_;
};

class FunctionCatalog {
 public:
  // `read_only`: no overload is volatile; `immutable`: every overload is immutable (the result
  // cache's test).
  void add(std::string_view schema, std::string_view name, bool read_only, bool immutable = false);
  // nullopt: no function of that name is known.
  std::optional<bool> read_only(const QualifiedName& fn) const;
  std::optional<bool> immutable(const QualifiedName& fn) const;
  size_t size() const { return qualified_.size(); }

  // The same database's tables (loaded with the functions, so one catalog per database).
  RelationCatalog& relations() { return relations_; }
  const RelationCatalog& relations() const { return relations_; }

 private:
  struct Volatility {
    bool read_only = false;
    bool immutable = false;
  };
  const Volatility* find(const QualifiedName& fn) const;

  std::unordered_map<std::string, Volatility> qualified_;    // "schema.name"
  std::unordered_map<std::string, Volatility> unqualified_;  // "name"
  RelationCatalog relations_;
};

struct RouteContext {
  const FunctionCatalog* catalog = nullptr;  // null: not loaded; every call is a possible write
  // Volatile functions known not to write (routing.read_only_functions).
  const std::unordered_set<std::string>* read_only_allow = nullptr;
  bool default_read_only = false;     // the session's default_transaction_read_only
  bool default_serializable = false;  // the session's default_transaction_isolation
  Hint session_hint = Hint::kNone;    // SET pglane.route
};

struct Decision {
  Route route = Route::kWriter;
  const char* why = "";
};

// Where the statement(s) may go. `comment_hint` is the leading /* pglane: route=... */.
Decision decide(const StatementInfo& info, Hint comment_hint, const RouteContext& ctx);

// ---- Choosing a replica ----

struct Candidate {
  bool healthy = false;     // up, and reports being in recovery
  int region = 0;           // 0 = the gateway's own region
  int64_t lag_ms = 0;       // replication lag as last measured
  uint64_t replay_lsn = 0;  // pg_last_wal_replay_lsn() as last measured
  int64_t rtt_us = 0;       // health-check round trip
  int outstanding = 0;      // transactions pglane has running on it now
};

struct ReadRequirement {
  int64_t max_lag_ms = 1000;
  uint64_t min_lsn = 0;  // read-your-writes: replayed at least this far (0 = no constraint)
  bool remote = true;    // other regions' replicas may serve it (when none of ours can)
  // Which of several equally good replicas to take (the caller advances it per read), so that
  // at low concurrency, when every replica has nothing outstanding, reads still spread.
  uint32_t rotation = 0;
};

// The replica to serve a read, or -1 for none qualifying. Own region first, then (unless
// `need.remote` is false) other regions in order of their best round trip; within a region, the
// fewest outstanding transactions; among those, replicas whose round trip is within
// kRttSlackPercent (plus kRttSlackUs) of the shortest take turns by `need.rotation`, and a
// clearly nearer one wins.
inline constexpr int64_t kRttSlackPercent = 25;
inline constexpr int64_t kRttSlackUs = 200;
int choose_replica(std::span<const Candidate> candidates, const ReadRequirement& need);

}  // namespace pglane::routing
