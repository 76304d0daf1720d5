#include "proxy/txn_pooling.h"

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "protocol/messages.h"
#include "proxy/live.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/stats.h"
#include "routing/commit.h"

namespace pglane::proxy {

using namespace boost::asio::experimental::awaitable_operators;
namespace p = protocol;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
// Client messages that transaction pooling may rewrite or analyse are held whole up to this size.
constexpr size_t kMaxRewrite = 16 * 1024 * 1024;

}  // namespace

TransactionPooling::TransactionPooling(Client& client, const conf::Config& cfg, ServerLease& lease,
                                       txn::Conversation& conv, routing::StatementMemo& memo,
                                       bool routing, SessionEntry& entry)
    : client_(client),
      cfg_(cfg),
      lease_(lease),
      conv_(conv),
      memo_(memo),
      relay_(client, cfg),
      routing_(routing),
      entry_(entry),
      placer_(routing::PlacementPolicy{}) {
  // The generation first: a reload between the two reads is then seen at the first unit.
  policy_generation_ = live().generation.load(std::memory_order_acquire);
  placer_.set_policy(live().placement());
}

asio::awaitable<End> TransactionPooling::serve() {
  conv_.attach(lease_->stmts, lease_.pool_key(), false, lease_->status);
  db_key_ = routing::database_key(lease_.identity().database);
  attached_ = lease_.endpoint();  // the session's first server (the writer)
  if (attached_ != nullptr) {
    attached_->outstanding.fetch_add(1, std::memory_order_relaxed);
  }
  entry_.set_state(ClientState::kActive);
  entry_.set_server(lease_.get());
  unit_start_ = std::chrono::steady_clock::now();
  for (;;) {
    if (lease_ && conv_.pinned() == nullptr) {
      co_await detach();
    }
    if (!lease_) {
      End e = co_await wait_for_client();
      if (e != End::kRunning) {
        co_return e;
      }
      bool answered = false;
      e = co_await answer_known_prepare(answered);
      if (e != End::kRunning) {
        co_return e;
      }
      if (answered) {
        continue;
      }
      e = co_await attach(answered);
      if (e != End::kRunning) {
        co_return e;
      }
      if (answered) {
        continue;  // answered without a server (SET pglane.route, no replica)
      }
    }
    // An unpinned client is never idle here: it is between transactions in wait_for_client.
    const auto idle = conv_.pinned() != nullptr
                          ? std::chrono::milliseconds(cfg_.proxy.client_idle_timeout_ms)
                          : std::chrono::milliseconds(0);
    End e = co_await relay_.run(*lease_.get(), *this, idle);
    note_pins();
    if (e == End::kServerGone && !relay_.mid_frame()) {
      // The server died under this client: a read not yet answered runs again elsewhere, a
      // client that relied on nothing there carries on, and any other is told what it lost and
      // closed, as a direct server's death would close it.
      e = co_await survive_server_loss();
      if (e == End::kRunning) {
        continue;
      }
    }
    if (e != End::kDetach) {
      co_return e;
    }
  }
}

void TransactionPooling::note_pins() {
  if (const char* reason = conv_.take_new_pin()) {
    stats().sessions_pinned.fetch_add(1, std::memory_order_relaxed);
    PGLANE_LOG_INFO("user=%s db=%s pinned to its server connection: %s", lease_.identity().user,
                    lease_.identity().database, reason);
  }
}

// Idle between transactions: no server, and no read block either. The wait is a read into the
// Buffer's small inline area, which a short request fills whole (a readiness wait would cost an
// epoll_ctl re-arm per transaction, and a second call to read the request once it came).
asio::awaitable<End> TransactionPooling::wait_for_client() {
  entry_.set_state(ClientState::kIdle);
  if (entry_.should_end_now()) {
    co_return End::kShutdown;  // shutdown or KILL: between transactions, nothing is lost
  }
  Buffer& cin = client_.in;
  if (!cin.empty()) {
    co_return End::kRunning;
  }
  Stream::ReadResult got;  // (prepare_small gives an empty block back first)
  if (cfg_.proxy.client_idle_timeout_ms > 0) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, std::chrono::milliseconds(cfg_.proxy.client_idle_timeout_ms));
    auto r = co_await (client_.stream.read_some(cin.prepare_small()) || timer.async_wait(kUse));
    if (r.index() == 1) {
      client_.fail(p::sqlstate::kIdleSessionTimeout, "terminating connection due to idle timeout");
      co_return End::kIdleTimeout;
    }
    got = std::get<0>(r);
  } else {
    got = co_await client_.stream.read_some(cin.prepare_small());
  }
  if (entry_.should_end_now()) {
    co_return End::kShutdown;  // woken by the request (the read was cancelled)
  }
  if (std::get<0>(got)) {
    co_return End::kClientGone;
  }
  client_.stream.count_read(std::get<1>(got));
  cin.commit(std::get<1>(got));
  auto h = p::decode_header(cin.data(), cfg_.proxy.max_message_size);
  if (h.status == p::DecodeStatus::kMessage && h.frame.type == 'X') {
    co_return End::kClientTerminated;
  }
  co_return End::kRunning;
}

// A batch of only named Parses of known statements and a Sync, outside a transaction, is
// answered without a server (see txn::KnownStatements).
asio::awaitable<End> TransactionPooling::answer_known_prepare(bool& answered) {
  answered = false;
  for (;;) {
    size_t consumed = 0;
    auto r =
        conv_.answer_known_prepare(client_.in.data(), lease_.pool_key(), local_reply_, consumed);
    if (r == txn::Conversation::Prepared::kNo) {
      co_return End::kRunning;
    }
    if (r == txn::Conversation::Prepared::kAnswered) {
      answered = true;
      co_return co_await answer_locally(consumed);
    }
    auto [ec, n] = co_await client_.stream.read_some(client_.in.prepare());
    if (ec) {
      co_return End::kClientGone;
    }
    client_.stream.count_read(n);
    client_.in.commit(n);
  }
}

// Answers the client's next `consumed` bytes (whole requests, outside a transaction) without a
// server: local_reply_, then ReadyForQuery. (The reply is a member, not a by-value parameter:
// GCC 12 miscompiled `co_await answer_locally(n, std::move(reply))` here, resuming a frame that
// had already finished; see tests Routing.AnalyticsHints*.)
asio::awaitable<End> TransactionPooling::answer_locally(size_t consumed) {
  client_.in.consume(consumed);
  p::encode_ready_for_query(local_reply_, 'I');
  std::vector<asio::const_buffer> bufs{asio::buffer(local_reply_)};
  error_code ec = co_await client_.write(bufs);
  local_reply_.clear();
  if (ec) {
    co_return End::kClientGone;
  }
  co_return End::kRunning;
}

asio::awaitable<End> TransactionPooling::attach(bool& answered) {
  answered = false;
  entry_.set_state(ClientState::kWaiting);
  if (pause_gate().any()) {
    const bool go_on = co_await wait_while_paused(entry_);  // (no co_await inside &&: GCC 12)
    if (!go_on) {
      co_return End::kShutdown;
    }
  }
  entry_.past_gate = true;
  const auto asked = std::chrono::steady_clock::now();
  if (const uint64_t g = live().generation.load(std::memory_order_acquire);
      g != policy_generation_) {
    placer_.set_policy(live().placement());  // a reload changed [routing]
    policy_generation_ = g;
  }
  // Between transactions, a failure to get a server ends the session like a direct server that
  // cannot take more connections: PostgreSQL has no error for a healthy idle session.
  Target target;
  bool writes = false;
  End e = End::kRunning;
  if (routing_) {
    e = co_await route_unit(target, writes, answered);
  } else {
    e = co_await lease_.acquire(nullptr, conv_.settings().startup());
  }
  if (e != End::kRunning || answered) {
    co_return e;
  }
  e = co_await lease_.prepare(conv_);
  if (e == End::kRunning) {
    begin_attachment(lease_.endpoint(), target.route, writes);
    unit_start_ = std::chrono::steady_clock::now();
    unit_wait_ = unit_start_ - asked;
    worker_metrics(entry_.worker).pool_wait.observe(unit_wait_);
    entry_.set_state(ClientState::kActive);
    entry_.set_server(lease_.get());
    if (entry_.kill) {
      co_return End::kShutdown;  // KILL while it waited for a server: nothing ran yet
    }
  }
  co_return e;
}

asio::awaitable<End> TransactionPooling::route_unit(Target& target, bool& writes, bool& answered) {
  end_fill();  // a fill belongs to the unit that looked it up, nothing later
  routing::Unit unit = classify(client_.in.data());
  while (unit.state == routing::UnitState::kIncomplete &&
         client_.in.size() < routing::kMaxInspected) {
    auto [ec, n] = co_await client_.stream.read_some(client_.in.prepare());
    if (ec) {
      co_return End::kClientGone;
    }
    client_.stream.count_read(n);
    client_.in.commit(n);
    unit = classify(client_.in.data());
  }
  if (unit.state == routing::UnitState::kLocalSet) {
    answered = true;
    co_return co_await answer_route_setting(unit);
  }
  if (unit.state == routing::UnitState::kDecided && unit.d.route == routing::Route::kReader) {
    bool hit = false;
    End e = co_await try_cache(unit, hit);
    if (hit || e != End::kRunning) {
      answered = hit;
      co_return e;
    }
  }
  End e = co_await place_and_acquire(unit, target, answered);
  // A unit with no work in it (a lone Sync, a Describe) does not count as a write.
  writes = target.route == routing::Route::kWriter && !target.placement.fallback &&
           unit.state != routing::UnitState::kNeutral && !fill_.pending;
  co_return e;
}

// SET pglane.route = ...: answered here, on no server.
asio::awaitable<End> TransactionPooling::answer_route_setting(const routing::Unit& unit) {
  conv_.set_hint(unit.set_value);
  p::encode_command_complete(local_reply_, "SET");
  co_return co_await answer_locally(unit.size);
}

// Answers a whole unit with an error, as the server would have, without running it.
asio::awaitable<End> TransactionPooling::reject_unit(const routing::Unit& unit) {
  end_fill();
  p::ErrorFields f;
  f.sqlstate = p::sqlstate::kCannotConnectNow;
  f.message = "no replica can serve this read now (routing.no_replica = \"error\")";
  p::encode_error(local_reply_, f);
  co_return co_await answer_locally(unit.size);
}

asio::awaitable<End> TransactionPooling::place_and_acquire(const routing::Unit& unit,
                                                           Target& target, bool& answered) {
  // A unit with no work in it goes to the writer, which can answer anything.
  routing::Decision decision = unit.state == routing::UnitState::kDecided
                                   ? unit.d
                                   : routing::Decision{routing::Route::kWriter, "neutral"};
  if (unit.state == routing::UnitState::kIncomplete) {
    decision = {routing::Route::kWriter, "too large to analyse"};
  }
  excluded_.clear();
  const auto floor = decision.route == routing::Route::kWriter
                         ? std::chrono::steady_clock::time_point{}
                         : read_floor(unit);
  if (fill_.pending) {
    // A cache fill must see every write acknowledged before its lookup: the writer, whatever
    // routing.read_your_writes says.
    decision = {routing::Route::kWriter, "cache fill"};
  }
  for (;;) {
    target = choose_target(decision, floor);
    if (target.placement.where == routing::Placement::Where::kNowhere) {
      answered = true;
      co_return co_await reject_unit(unit);
    }
    // (A null endpoint is the writer, followed through failover by the lease.)
    End e = co_await lease_.acquire(target.endpoint, conv_.settings().startup());
    if (e == End::kRunning) {
      target.endpoint = lease_.endpoint();
      count_route(target, decision);
      co_return End::kRunning;
    }
    // Only a connection-level failure (08xxx) says the replica is unwell; pool timeouts and the
    // server refusing this client (28P01, 3D000...) do not.
    if (target.route != routing::Route::kReader || lease_.failed_sqlstate().rfind("08", 0) != 0) {
      co_return e;
    }
    // A replica that cannot be reached: mark it down and try the next choice.
    client_.error_bytes.clear();
    topology()->report_failure(*target.endpoint);
    excluded_.push_back(target.placement.replica);
  }
}

void TransactionPooling::begin_attachment(EndpointState* endpoint, routing::Route route,
                                          bool writes) {
  commit_in_flight_ = false;
  server_fatal_ = false;
  if (endpoint != nullptr) {
    attached_ = endpoint;
    attached_->outstanding.fetch_add(1, std::memory_order_relaxed);
  }
  attached_route_ = route;
  attached_wrote_ = writes;
  unit_checked_ = true;  // the first unit chose this server
  since_sync_ = false;
  conv_.attach(lease_->stmts, lease_.pool_key(), routing_ && route == routing::Route::kReader,
               lease_->status);
}

// The endpoint bookkeeping of a server leaving this client.
void TransactionPooling::leave_endpoint() {
  if (attached_ == nullptr) {
    return;
  }
  attached_->outstanding.fetch_sub(1, std::memory_order_relaxed);
  attached_ = nullptr;
  if (attached_wrote_) {
    // Read-your-writes: later reads need a replica that has replayed past this point.
    placer_.wrote(std::chrono::steady_clock::now());
    attached_wrote_ = false;
  }
}

void TransactionPooling::account_unit() {
  entry_.set_server(nullptr);
  if (std::exchange(login_unit_, false)) {
    return;  // the session's first server, taken at login: not a unit of the client's
  }
  const auto took = std::chrono::steady_clock::now() - unit_start_;
  RouteKind kind = RouteKind::kWriter;
  if (attached_route_ == routing::Route::kAnalytics) {
    kind = RouteKind::kAnalytics;
  } else if (attached_route_ == routing::Route::kReader && attached_ != nullptr) {
    kind = attached_->region_rank == 0 ? RouteKind::kReplicaLocal : RouteKind::kReplicaRemote;
  }
  WorkerMetrics& wm = worker_metrics(entry_.worker);
  wm.xact_by_route[static_cast<size_t>(kind)].observe(took);
  ++entry_.transactions;
  const int slow_ms = live().slow_transaction_ms.load(std::memory_order_relaxed);
  if (slow_ms > 0 && took >= std::chrono::milliseconds(slow_ms)) {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    PGLANE_LOG_INFO(
        "slow transaction: client=%d user=%s db=%s route=%s server=%s wait_ms=%.3f ms=%.3f "
        "queries=%d",
        entry_.id, entry_.user, entry_.database, route_kind_name(kind),
        lease_ ? lease_->endpoint.to_string() : std::string("?"),
        duration_cast<microseconds>(unit_wait_).count() / 1000.0,
        duration_cast<microseconds>(took).count() / 1000.0, relay_.peek_queries());
  }
  if (UserStats* us = entry_.stats) {
    us->transactions.add();
    us->xact_time.observe(took);
    us->queries.add(relay_.take_queries());
  }
  entry_.count_bytes(client_.stream.bytes_read, client_.stream.bytes_written);
}

asio::awaitable<void> TransactionPooling::detach() {
  end_fill();
  account_unit();
  leave_endpoint();
  conv_.detach();
  co_await lease_.release(conv_);
}

asio::awaitable<End> TransactionPooling::survive_server_loss() {
  PGLANE_LOG_WARN("user=%s db=%s: server %s lost mid-transaction", lease_.identity().user,
                  lease_.identity().database, lease_->endpoint.to_string());
  const char status = lease_->status;
  const bool was_pinned = conv_.pinned() != nullptr;
  // An autocommit write in flight may have committed before the server died, as may a COMMIT.
  const bool may_have_committed =
      commit_in_flight_ || (status == 'I' && (attached_wrote_ || !routing_));
  if (may_have_committed && !written_.empty()) {
    stamp_floors(true);  // it may have committed: later reads must not miss it
  }
  if (publish_due_) {
    co_await before_client_write();
  }
  written_.clear();
  end_fill();
  lease_.discard();
  EndpointState* lost = attached_;
  if (lost != nullptr &&
      (attached_route_ == routing::Route::kReader || lost == topology()->writer())) {
    topology()->report_failure(*lost);  // a replica is down; the writer is suspect
  }
  leave_endpoint();
  std::string replay;
  const int owed = conv_.lose_server(replay);
  if (server_fatal_) {
    // The server said why it ended the session (57P01 from pg_terminate_backend, say) and the
    // client has it: the connection closes after it, as it would without pglane.
    co_return End::kServerClosed;
  }
  if (owed < 0) {
    // A read whose replica died before the client saw any of its answer runs again on another
    // node: what the lost server was sent goes back ahead of what followed.
    replay.append(client_.in.data());
    client_.in.consume(client_.in.size());
    auto room = client_.in.prepare(replay.size());
    std::memcpy(room.data(), replay.data(), replay.size());
    client_.in.commit(replay.size());
    stats().server_lost.fetch_add(1, std::memory_order_relaxed);
    topology()->stats().retries.fetch_add(1, std::memory_order_relaxed);
    co_return End::kRunning;
  }
  if (owed == 0 && status == 'I' && !was_pinned) {
    stats().server_lost.fetch_add(1, std::memory_order_relaxed);
    co_return End::kRunning;  // nothing was lost that the client relied on
  }
  // The client relied on the lost server: a transaction, replies owed, or session state (a
  // pinned client). It is told which outcome it faces and its connection closes (finish()).
  if (owed > 0 && may_have_committed) {
    stats().outcome_unknown.fetch_add(1, std::memory_order_relaxed);
    client_.fail(p::sqlstate::kTransactionResolutionUnknown,
                 "server connection lost while a commit may have been under way: whether the "
                 "transaction committed is unknown");
  } else if (status != 'I' || owed > 0) {
    client_.fail(p::sqlstate::kConnectionFailure,
                 "server connection lost; the current transaction was rolled back");
  } else {
    client_.fail(p::sqlstate::kConnectionFailure,
                 "server connection lost; the session's state on it is gone");
  }
  co_return End::kServerGone;
}

// ---- The relay's questions ----

RelayPolicy::Step TransactionPooling::on_client_frame(char type, size_t size,
                                                      std::string_view from_here) {
  if ((type == 'Q' || type == 'F') && !since_sync_) {
    unit_checked_ = false;  // a unit of its own (unless it continues unsynced messages)
  }
  if (stay_here_) {
    unit_checked_ = true;  // found to belong to the open transaction on this server
    stay_here_ = false;
  }
  const bool begins_work = type == 'Q' || type == 'P' || type == 'B' || type == 'F';
  if (routing_ && begins_work && !unit_checked_ && conv_.pinned() == nullptr && !conv_.skipping()) {
    // The first work of a new unit on an attached server: it stays here if this server can run
    // it, or if the server turns out to be inside a transaction (transactions never split).
    routing::Unit u = classify(from_here);
    if (u.state == routing::UnitState::kIncomplete) {
      return Step::kNeedMore;
    }
    if (!routing::unit_fits(attached_route_, u, topology()->analytics() != nullptr) ||
        (attached_route_ == routing::Route::kReader && !attached_fresh_for(u))) {
      return Step::kReroute;
    }
    if (attached_route_ == routing::Route::kWriter && u.state == routing::UnitState::kDecided &&
        u.d.route == routing::Route::kWriter) {
      attached_wrote_ = true;
    }
    unit_checked_ = true;
  }
  if (type == 'S' || type == 'Q' || type == 'F') {
    unit_checked_ = false;  // the next work starts a new unit
    since_sync_ = false;
  } else if (type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' ||
             type == 'H') {
    since_sync_ = true;  // an implicit transaction may be open until the next Sync
  }
  const bool rewritable = type == 'Q' || type == 'P' || type == 'B' || type == 'D' || type == 'C';
  if (rewritable && size <= kMaxRewrite) {
    return Step::kWhole;
  }
  if (rewritable) {
    conv_.pin("message too large to analyse");  // keep this client on its server from now on
    streamed_statement_ = true;                 // what it writes is not known (floors)
  }
  return Step::kStream;
}

End TransactionPooling::on_client_message(char type, std::string_view whole, std::string& out) {
  if (!commit_in_flight_ && (type == 'Q' || type == 'P')) {
    commit_in_flight_ = routing::may_commit(p::statement_text(type, whole));
  }
  if (routing_ && attached_route_ == routing::Route::kWriter) {
    note_writes(type, whole);
  }
  if (type == 'Q' || type == 'P') {
    tap_client_query();
  }
  auto r = conv_.on_client_message(type, whole, out, lease_->status);
  note_pins();
  switch (r) {
    case txn::Conversation::ClientResult::kOk:
      return End::kRunning;
    case txn::Conversation::ClientResult::kInvalidParse:
      client_.fail(p::sqlstate::kProtocolViolation, "invalid Parse message");
      return End::kClientViolation;
    case txn::Conversation::ClientResult::kInvalidBind:
      client_.fail(p::sqlstate::kProtocolViolation, "invalid Bind message");
      return End::kClientViolation;
  }
  return End::kRunning;
}

bool TransactionPooling::after_reroute_wait(bool idle) {
  if (idle && !since_sync_) {
    topology()->stats().reroutes.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  stay_here_ = true;
  return false;
}

bool TransactionPooling::whole_from_server(char type, size_t size) {
  if (fill_.tap.wants_whole(type, size)) {
    return true;  // a row the result cache keeps
  }
  // Rows and COPY data stream; replies that complete a request are read whole so local replies
  // can follow them exactly.
  return type != 'D' && type != 'd' && type != 'A' && type != 'N';
}

void TransactionPooling::on_server_message(char type, std::string_view msg, txn::ClientSink& sink) {
  if (fill_.tap.active()) {
    tap_server_message(type, msg);
  }
  if (type == 'E' && msg.size() > 5) {
    const std::string_view body = msg.substr(5);
    std::string_view severity = p::error_field(body, 'V');
    if (severity.empty()) {
      severity = p::error_field(body, 'S');
    }
    if ((severity == "FATAL" || severity == "PANIC") && !conv_.owes_replies()) {
      // Unsolicited: the server is ending the session (pg_terminate_backend, shutdown). A
      // client that relies on this server (inside a transaction, or pinned) gets the FATAL and
      // then the close, as without pglane; any other carries on elsewhere and never sees it.
      if (lease_->status != 'I' || conv_.pinned() != nullptr) {
        server_fatal_ = true;
        sink.pass(msg);
      }
      return;
    }
    if (severity == "FATAL" || severity == "PANIC") {
      server_fatal_ = true;  // the answer to the client's request: it sees it, then the close
    }
    if (p::error_field(body, 'C') == p::sqlstate::kReadOnlySqlTransaction && attached_ != nullptr &&
        attached_ == topology()->writer()) {
      topology()->report_read_only(*attached_);  // demoted under us?
    }
  } else if (type == 'Z' && !conv_.owes_replies()) {
    commit_in_flight_ = false;
  }
  if (conv_.holds(type)) {
    conv_.hold(msg);
  } else {
    conv_.on_server_message(type, msg, sink);
  }
  if (type == 'Z' && !written_.empty() && lease_->status == 'I') {
    // The sink only gathers: the client has not seen this ReadyForQuery yet.
    stamp_floors(!conv_.owes_replies());
  }
}

// ---- Read/write splitting (docs/internals.md, "Routing") ----

routing::RouteContext TransactionPooling::route_context() {
  const auto now = std::chrono::steady_clock::now();
  if (!catalog_ || now - catalog_at_ > std::chrono::seconds(1)) {
    catalog_ = topology()->catalog(lease_.identity().database);
    catalog_at_ = now;
  }
  routing::RouteContext ctx;
  ctx.catalog = catalog_.get();
  ctx.read_only_allow = &topology()->read_only_allow();
  ctx.default_read_only = conv_.settings().default_read_only();
  ctx.default_serializable = conv_.settings().default_serializable();
  ctx.session_hint = conv_.hint();
  return ctx;
}

routing::Unit TransactionPooling::classify(std::string_view data) {
  return routing::classify_unit(data, memo_, route_context(), conv_.scs_off(),
                                cfg_.proxy.max_message_size,
                                [this](std::string_view name) { return conv_.plan(name); });
}

TransactionPooling::Target TransactionPooling::choose_target(
    const routing::Decision& d, std::chrono::steady_clock::time_point floor) {
  Topology& t = *topology();
  Target target;
  target.placement = placer_.place(d, t, excluded_, std::chrono::steady_clock::now(), floor);
  switch (target.placement.where) {
    case routing::Placement::Where::kWriter:
      target.endpoint = nullptr;  // the writer at acquire time (ServerLease::acquire)
      break;
    case routing::Placement::Where::kAnalytics:
      target.endpoint = t.analytics();
      break;
    case routing::Placement::Where::kReplica:
      target.endpoint = &t.instance(static_cast<size_t>(target.placement.replica));
      break;
    case routing::Placement::Where::kNowhere:
      target.endpoint = nullptr;
      break;
  }
  target.route = target.placement.route;
  return target;
}

void TransactionPooling::count_route(const Target& target, const routing::Decision& d) {
  routing::RouteStats& rs = topology()->stats();
  const routing::Placement& pl = target.placement;
  if (target.route == routing::Route::kAnalytics) {
    rs.analytics.fetch_add(1, std::memory_order_relaxed);
  } else if (target.route == routing::Route::kReader) {
    target.endpoint->reads.fetch_add(1, std::memory_order_relaxed);
    auto& counter = target.endpoint->region_rank == 0 ? rs.reads_local : rs.reads_remote;
    counter.fetch_add(1, std::memory_order_relaxed);
  } else if (pl.fallback || fill_.pending) {
    rs.reads_writer.fetch_add(1, std::memory_order_relaxed);
    if (pl.ryw_fallback) {
      rs.reads_ryw.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    rs.writes.fetch_add(1, std::memory_order_relaxed);
  }
  PGLANE_LOG_DEBUG("user=%s db=%s: %s -> %s %s", lease_.identity().user, lease_.identity().database,
                   d.why, routing::describe(pl), target.endpoint->name);
}

}  // namespace pglane::proxy
