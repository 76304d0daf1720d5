// TransactionPooling's part in freshness floors (routing/floors.h, docs/internals.md "Freshness
// floors"): what its writes raise and what its reads must respect.
#include "protocol/messages.h"
#include "proxy/floor_sync.h"
#include "proxy/freshness.h"
#include "proxy/topology.h"
#include "proxy/txn_pooling.h"

namespace pglane::proxy {

namespace p = protocol;

void TransactionPooling::note_writes(char type, std::string_view whole) {
  switch (type) {
    case 'Q':
    case 'P': {
      const std::string_view sql = p::statement_text(type, whole);
      if (sql.size() > routing::kMaxInspected) {
        written_.unknown = true;  // not analysed (the memo keeps nothing this long)
        return;
      }
      routing::Analysis a = memo_.analyze_write(sql);
      routing::add_writes(*a.info, route_context(), written_);
      ddl_written_ = ddl_written_ || a.info->kind == routing::StatementInfo::Kind::kUtility ||
                     a.info->parse_failed;
      if (type == 'P' && whole.size() > p::kHeaderSize && whole[p::kHeaderSize] == '\0') {
        unnamed_parsed_ = true;  // the unnamed statement's Bind finds it noted
      }
      return;
    }
    case 'B': {  // portal, then the statement name: a named statement's analysis from its Parse
      p::Reader r(whole.substr(std::min(whole.size(), p::kHeaderSize)));
      r.cstring();
      const std::string_view stmt = r.cstring();
      if (stmt.empty()) {
        if (!unnamed_parsed_) {
          written_.unknown = true;  // parsed in an earlier unit: not known here
        }
        return;
      }
      const routing::PreparedPlan* plan = conv_.plan(stmt);
      if (plan == nullptr || !plan->analysis.info) {
        written_.unknown = true;
        return;
      }
      routing::add_writes(*plan->analysis.info, route_context(), written_);
      return;
    }
    default:
      return;
  }
}

void TransactionPooling::on_client_forwarded(char type) {
  conv_.on_client_forwarded(type);
  // FunctionCall (and any Query or Parse too large to hold whole) is streamed, never seen by
  // note_writes: on the writer it may have written anything.
  if (routing_ && attached_route_ == routing::Route::kWriter &&
      (type == 'F' || ((type == 'Q' || type == 'P') && streamed_statement_))) {
    written_.unknown = true;
  }
  streamed_statement_ = false;
  if (type == 'S') {
    // (Sync is streamed, so it is seen here, not in note_writes.) The unnamed statement may be
    // replaced by the next unit's.
    unnamed_parsed_ = false;
  }
}

void TransactionPooling::stamp_floors(bool settled) {
  // Stamped after the server said idle and before the client hears it: any writer position
  // sampled from now on is at or past the commit.
  floor_board().wrote(db_key_, written_, floor_now());
  if (std::exchange(ddl_written_, false)) {
    // DDL may have added a trigger, a rule or a view: the relation catalog is read again
    // (at most once a second).
    topology()->reload_catalogs();
  }
  if (floor_sync() != nullptr) {
    to_publish_.merge(written_);
    publish_due_ = true;  // before_client_write() shares it before the client hears
  }
  if (settled) {
    written_.clear();
  }
}

asio::awaitable<void> TransactionPooling::abandon_writes() {
  if (!routing_ || (written_.empty() && !commit_in_flight_)) {
    co_return;
  }
  if (written_.empty()) {
    written_.unknown = true;  // a COMMIT whose transaction's writes are not known here
  }
  stamp_floors(true);
  if (publish_due_) {
    co_await before_client_write();
  }
}

asio::awaitable<void> TransactionPooling::before_client_write() {
  publish_due_ = false;
  FloorSync* sync = floor_sync();
  if (sync == nullptr || to_publish_.empty()) {
    co_return;
  }
  const routing::TableSet tables = to_publish_;
  to_publish_.clear();
  co_await sync->publish(entry_.worker, db_key_, tables);
}

std::chrono::steady_clock::time_point TransactionPooling::read_floor(const routing::Unit& u) {
  const routing::FloorScope scope = placer_.policy().scope;
  if (scope == routing::FloorScope::kTable || scope == routing::FloorScope::kDatabase) {
    if (const FloorSync* sync = floor_sync();
        sync != nullptr && (!sync->subscribed() || sync->maybe_behind())) {
      // Another gateway's floor is on its way, or could be missed (not subscribed): as if
      // every table had just been written.
      return floor_time(floor_now());
    }
  }
  switch (scope) {
    case routing::FloorScope::kTable:
      return floor_time(floor_board().floor(db_key_, u.reads));
    case routing::FloorScope::kDatabase:
      return floor_time(floor_board().database_floor(db_key_));
    case routing::FloorScope::kSession:
    case routing::FloorScope::kOff:
      break;
  }
  return {};
}

bool TransactionPooling::attached_fresh_for(const routing::Unit& u) {
  if (u.state != routing::UnitState::kDecided || attached_ == nullptr) {
    return true;
  }
  const auto floor = read_floor(u);
  std::optional<uint64_t> need =
      placer_.required_lsn(*topology(), std::chrono::steady_clock::now(), floor);
  return need && attached_->lsn.load(std::memory_order_relaxed) >= *need;
}

}  // namespace pglane::proxy
