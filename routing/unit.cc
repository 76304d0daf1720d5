#include "routing/unit.h"

#include <cassert>

#include "protocol/frame.h"

namespace pglane::routing {

namespace p = protocol;

Analysis StatementMemo::analyze(std::string_view sql) {
  assert(analyzer_ != nullptr);  // routing is off: nothing may ask for an analysis
  if (sql == sql_ && analysis_.info) {
    return analysis_;
  }
  Analysis a = analyzer_->analyze(sql);
  if (sql.size() > kMaxInspected) {
    sql_.clear();
    sql_.shrink_to_fit();  // not worth holding a huge text for
    analysis_ = {};
    fx_.reset();
    return a;
  }
  sql_.assign(sql);
  analysis_ = a;
  fx_.reset();
  if (stats_ == nullptr) {
    return a;
  }
  switch (a.source) {
    case Analysis::Source::kFast:
      stats_->analysis_fast.fetch_add(1, std::memory_order_relaxed);
      break;
    case Analysis::Source::kCache:
      stats_->analysis_cache_hits.fetch_add(1, std::memory_order_relaxed);
      break;
    case Analysis::Source::kParser:
      stats_->analysis_parsed.fetch_add(1, std::memory_order_relaxed);
      if (a.info->parse_failed) {
        stats_->analysis_rejected.fetch_add(1, std::memory_order_relaxed);
      }
      break;
  }
  return a;
}

Analysis StatementMemo::analyze_write(std::string_view sql) {
  Analysis a = analyze(sql);
  if (a.info->by_parser || a.info->kind != StatementInfo::Kind::kWrite) {
    return a;
  }
  return analyzer_->analyze(sql, true);
}

SessionEffects StatementMemo::effects(std::string_view sql) {
  if (analyzer_ == nullptr) {
    return analyze_session_effects(sql);
  }
  if (sql != sql_ || !analysis_.info) {
    analyze(sql);
    if (sql != sql_) {
      return analyze_session_effects(sql);  // too large to remember
    }
  }
  if (!fx_) {
    fx_ = analyze_session_effects(sql);
  }
  return *fx_;
}

namespace {

int route_rank(Route r) {
  return r == Route::kWriter ? 2 : r == Route::kAnalytics ? 1 : 0;
}

}  // namespace

Unit classify_unit(std::string_view data, StatementMemo& memo, const RouteContext& ctx,
                   bool scs_off, std::size_t max_message, StatementLookup lookup) {
  Unit u;
  if (scs_off) {
    // With standard_conforming_strings off, backslashes escape quotes: our lexer and the parser
    // read '...' differently from the server, so nothing is trusted to be a read.
    u.state = UnitState::kDecided;
    u.d = {Route::kWriter, "standard_conforming_strings is off"};
    return u;
  }
  bool any = false;
  Decision worst{Route::kReader, "neutral"};
  auto merge = [&](Decision d) {
    if (!any || route_rank(d.route) > route_rank(worst.route)) {
      worst = d;
    }
    any = true;
  };
  auto decided = [&](std::size_t size) {
    u.state = any ? UnitState::kDecided : UnitState::kNeutral;
    u.d = worst;
    u.size = size;
    return u;
  };
  // A statement that pins its session must run on the writer: a pinned client never moves.
  auto merge_statement = [&](std::string_view sql) {
    Analysis a = memo.analyze(sql);
    if (memo.effects(sql).pin_reason != nullptr) {
      merge({Route::kWriter, "pins the session"});
    } else {
      merge(decide(*a.info, a.hint, ctx));
      add_reads(*a.info, ctx, u.reads);
    }
  };
  std::size_t pos = 0;
  for (;;) {
    if (any && worst.route == Route::kWriter) {
      return decided(pos);  // nothing later can change that
    }
    auto h = p::decode_header(data.substr(pos), max_message);
    const bool too_big = h.status == p::DecodeStatus::kViolation ||
                         (h.status == p::DecodeStatus::kMessage && h.frame.size > kMaxInspected) ||
                         pos > kMaxInspected;
    if (too_big) {
      // The relay reports violations; a unit too large to hold for analysis goes to the writer,
      // where anything may run.
      merge({Route::kWriter, "not analysed"});
      return decided(pos);
    }
    if (h.status == p::DecodeStatus::kNeedMore || data.size() - pos < h.frame.size) {
      if (data.size() >= kMaxInspected) {
        merge({Route::kWriter, "not analysed"});
        return decided(pos);
      }
      return u;  // wait for the rest of the unit
    }
    const char type = h.frame.type;
    p::Reader r(data.substr(pos + p::kHeaderSize, h.frame.size - p::kHeaderSize));
    pos += h.frame.size;
    switch (type) {
      case 'Q': {
        // (After extended messages without a Sync, a Query still runs in their implicit
        // transaction: it is part of this unit and ends it.) `SET pglane.route` is answered
        // locally only when it is the whole unit.
        std::string_view sql = r.cstring();
        Analysis a = memo.analyze(sql);
        if (a.info->kind == StatementInfo::Kind::kPglaneSetting && pos == h.frame.size) {
          u.state = UnitState::kLocalSet;
          u.set_value = a.info->set_route;
          u.size = pos;
          return u;
        }
        merge_statement(sql);
        return decided(pos);
      }
      case 'P': {  // Parse: name, then the statement text
        r.cstring();
        merge_statement(r.cstring());
        break;
      }
      case 'B': {  // Bind: portal, then the statement name ("" = the unnamed statement)
        r.cstring();
        std::string_view stmt = r.cstring();
        if (!stmt.empty()) {
          const PreparedPlan* plan = lookup(stmt);
          if (plan != nullptr && plan->analysis.info) {
            if (plan->fx.pin_reason != nullptr) {
              merge({Route::kWriter, "pins the session"});
            } else {
              merge(decide(*plan->analysis.info, plan->analysis.hint, ctx));
              add_reads(*plan->analysis.info, ctx, u.reads);
            }
          } else {
            merge({Route::kWriter, "unknown statement"});
          }
        }
        break;
      }
      case 'F':  // FunctionCall: a unit of its own, and it may call anything
        merge({Route::kWriter, "function call"});
        return decided(pos);
      case 'S':  // Sync ends the unit
        return decided(pos);
      case 'H':
        // Flush without Sync: the client waits for answers before sending more, and the
        // implicit transaction may go on with anything, so only the writer can take it.
        merge({Route::kWriter, "flushed without Sync"});
        return decided(pos);
      case 'D':  // Describe, Execute, Close: the work was named by Parse/Bind
      case 'E':
      case 'C':
        break;
      default:  // COPY data and anything else: continues what the server is doing
        return decided(pos);
    }
  }
}

bool unit_fits(Route attached, const Unit& u, bool have_analytics) {
  if (u.state != UnitState::kDecided) {
    return true;
  }
  switch (attached) {
    case Route::kWriter:
      return u.d.route != Route::kAnalytics || !have_analytics;
    case Route::kReader:
      return u.d.route == Route::kReader;
    case Route::kAnalytics:
      return u.d.route == Route::kAnalytics;
  }
  return true;
}

}  // namespace pglane::routing
