// Request units (docs/internals.md, "Routing"): the pieces of a client's traffic that may run on
// different servers. A unit is one Query, or extended-protocol messages up to and including a
// Sync, or a Query that follows unsynced extended messages (it runs in their implicit
// transaction, PostgreSQL docs 55.2.4). classify_unit() reads a unit from the front of the
// client's buffered bytes and says where it may run; unit_fits() says whether an attached server
// may run it. Sans-I/O: the session feeds bytes, the statement memo and the routing context.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "routing/analyzer.h"
#include "routing/floors.h"
#include "routing/route.h"
#include "routing/session_effects.h"
#include "routing/statement.h"
#include "routing/stats.h"

namespace pglane::routing {

// A client message (or unit) longer than this is not held whole for analysis, and a statement
// text longer than this is not remembered by StatementMemo.
inline constexpr std::size_t kMaxInspected = std::size_t{64} * 1024;

// The last statement's analysis and session effects, remembered by text: a session looks at the
// same message twice (classify_unit, then again when it forwards the message). One per session;
// not thread-safe.
class StatementMemo {
 public:
  // `analyzer` null: routing is off; analyze() must not be called, and effects() scans afresh
  // each time. `stats` null: analyses are not counted.
  StatementMemo(Analyzer* analyzer, RouteStats* stats) : analyzer_(analyzer), stats_(stats) {}

  // The analysis of `sql`. A text that is not the remembered one is analysed, counted in the
  // stats by where the answer came from (fast path, cache, parser; parser rejections too) and
  // remembered, unless it is longer than kMaxInspected: then it is neither remembered nor
  // counted, and the memo is emptied.
  Analysis analyze(std::string_view sql);
  // The session effects of `sql` (analyze_session_effects). With routing on, a text that is not
  // the remembered one is analysed first (and remembered as above); the effects are computed at
  // most once per remembered text.
  SessionEffects effects(std::string_view sql);
  // For freshness floors: every table and function a write names (the fast path's answer for a
  // write is re-done by the parser, through the analyzer's cache). Not remembered.
  Analysis analyze_write(std::string_view sql);

 private:
  Analyzer* analyzer_;
  RouteStats* stats_;
  std::string sql_;  // the remembered text ("" with analysis_.info null: nothing remembered)
  Analysis analysis_;
  std::optional<SessionEffects> fx_;  // computed on the first effects() of sql_
};

enum class UnitState {
  kIncomplete,  // the unit has not all arrived: read more and classify again
  kNeutral,     // complete, with no work in it (a lone Sync, a Describe, a Close): any server
  kDecided,     // `d` says where it may run (possibly before all of it arrived: see Unit::size)
  kLocalSet,    // one Query that is only `SET pglane.route = ...`: pglane answers it itself
};

struct Unit {
  UnitState state = UnitState::kIncomplete;
  Decision d;                    // kDecided: where it may run; kNeutral: {kReader, "neutral"}
  Hint set_value = Hint::kNone;  // kLocalSet: the value of SET pglane.route
  // kNeutral, kDecided, kLocalSet: the bytes looked at. That is the whole unit except when a
  // message decided for the writer before the unit ended (nothing later can change that), or
  // when the unit was too large to analyse.
  std::size_t size = 0;
  // kDecided for a read: the tables its statements read, for freshness floors.
  TableSet reads;
};

// A named prepared statement as analysed at its Parse, for routing its Binds.
struct PreparedPlan {
  SessionEffects fx;
  Analysis analysis;  // info null: not analysed (the Bind goes to the writer)
};
// The client's named prepared statement `name`, or null when the client has none of that name.
using StatementLookup = absl::FunctionRef<const PreparedPlan*(std::string_view name)>;

// Classifies the unit at the front of `data` (the client's buffered, unforwarded bytes). The
// unit's route is the most demanding of its statements' (writer > analytics > reader); a
// statement that pins the session goes to the writer (a pinned client never moves).
//   - `scs_off`: standard_conforming_strings is off; every unit goes to the writer.
//   - `max_message`: the relay's cap on one message (frame violations are the relay's to report;
//     here they only send the unit to the writer).
//   - `lookup`: the client's named prepared statements, for Bind.
// Messages over kMaxInspected, units that do not end within kMaxInspected bytes, Flush without
// Sync, FunctionCall and Binds of unknown statements go to the writer.
Unit classify_unit(std::string_view data, StatementMemo& memo, const RouteContext& ctx,
                   bool scs_off, std::size_t max_message, StatementLookup lookup);

// Whether a server attached for route `attached` may run unit `u` (transactions never split: the
// caller checks that the server is idle before moving the client). Units that are not kDecided
// fit anywhere. A writer runs anything except analytics work while there is an analytics
// endpoint (`have_analytics`); a replica only reads; the analytics endpoint only analytics.
//
// No side effect: the caller records that its attachment wrote (for read-your-writes,
// Placer::wrote when it leaves) when attached == kWriter and u is kDecided with d.route kWriter.
bool unit_fits(Route attached, const Unit& u, bool have_analytics);

}  // namespace pglane::routing
