#include "proxy/session.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "protocol/messages.h"
#include "protocol/startup_options.h"
#include "proxy/admin.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/lease.h"
#include "proxy/log.h"
#include "proxy/login.h"
#include "proxy/metrics.h"
#include "proxy/relay.h"
#include "proxy/session_end.h"
#include "proxy/sessions.h"
#include "proxy/stats.h"
#include "proxy/topology.h"
#include "proxy/txn_pooling.h"
#include "routing/analyzer.h"
#include "routing/unit.h"
#include "txn/conversation.h"

namespace pglane::proxy {

using namespace boost::asio::experimental::awaitable_operators;
namespace p = protocol;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

// One worker's analyser; its cache serves every session of the worker.
routing::Analyzer& worker_analyzer(const conf::Config& cfg) {
  thread_local routing::Analyzer a(static_cast<size_t>(cfg.routing.analysis_cache_size));
  return a;
}

txn::ConversationOptions conversation_options(const conf::Config& cfg, bool routing) {
  txn::ConversationOptions o;
  o.routing = routing;
  o.reset_after_unknown_functions = cfg.pool.reset_after_unknown_functions;
  o.max_prepared_statements = static_cast<size_t>(cfg.pool.max_prepared_statements);
  o.max_message = cfg.proxy.max_message_size;
  return o;
}

bool splits() {
  Topology* t = topology();
  return t != nullptr && t->splits();
}

// One client session, login to finish, as one coroutine whose frame is this object: it owns
// the client connection and, through the lease, the server connection.
class Session {
 public:
  Session(tcp::socket socket, Runtime& runtime, int worker)
      : client_(std::move(socket)),
        runtime_(runtime),
        snap_(runtime.snapshot()),
        cfg_(*snap_->config),
        txn_mode_(cfg_.pool.mode == conf::PoolMode::kTransaction),
        routing_(splits()),
        memo_(routing_ ? &worker_analyzer(cfg_) : nullptr,
              topology() != nullptr ? &topology()->stats() : nullptr),
        conv_(conversation_options(cfg_, routing_), memo_),
        lease_(client_, *snap_, worker) {
    entry_.id = next_session_id();
    entry_.worker = worker;
    entry_.connected_at = std::chrono::system_clock::now();
    entry_.set_state(ClientState::kLogin);
    error_code ec;
    auto peer = client_.stream.socket().remote_endpoint(ec);
    if (!ec) {
      entry_.addr = absl::StrCat(peer.address().to_string(), ":", peer.port());
    }
    // Cancelling the client socket's pending operations wakes the session wherever it waits.
    entry_.wake = [this] {
      error_code ignored;
      client_.stream.socket().cancel(ignored);
    };
    entry_.at_boundary = [this] {
      if (!lease_ || lease_->status != 'I') {
        return false;
      }
      if (txn_mode_) {
        return pooling_ && conv_.pinned() != nullptr && !conv_.owes_replies() &&
               !pooling_->mid_frame();
      }
      return relay_ && !session_pooling_.owes_replies() && !relay_->mid_frame();
    };
    worker_sessions(worker).add(&entry_);
  }
  ~Session() { worker_sessions(entry_.worker).remove(&entry_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  asio::awaitable<void> run(bool over_limit) {
    End end = over_limit ? End::kTooManyClients : co_await login();
    if (end == End::kRunning && entry_.should_end_now()) {
      end = End::kShutdown;
    }
    if (end == End::kRunning) {
      note_identity();
      if (lease_.identity().database == cfg_.admin.database) {
        end = co_await console();
        co_await finish(end);
        co_return;
      }
      end = co_await attach_server();
      if (end == End::kRunning && entry_.kill) {
        end = End::kShutdown;  // KILL while it waited for its first server
      }
    }
    if (end == End::kRunning) {
      end = co_await serve();
    }
    co_await finish(end);
  }

 private:
  // ---- Stages 1 and 2: TLS/startup and authentication, under proxy.auth_timeout_ms ----

  asio::awaitable<End> login() {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, std::chrono::milliseconds(cfg_.proxy.auth_timeout_ms));
    Login login(client_.stream, client_.in, *snap_, runtime_);
    auto r = co_await (login.run() || timer.async_wait(kUse));
    if (r.index() == 1) {
      co_return End::kAuthTimeout;
    }
    client_.error_bytes = std::move(login.error_bytes());
    startup_ = std::move(login.startup());
    lease_.set_identity(Identity{login.user(), login.database(), std::move(login.scram_keys())});
    co_return std::get<0>(r);
  }

  // Who logged in, for the console and the per-user statistics.
  void note_identity() {
    entry_.user = lease_.identity().user;
    entry_.database = lease_.identity().database;
    entry_.tls = client_.stream.is_tls();
    entry_.application_name = std::string(startup_.get("application_name"));
  }

  // The admin console instead of a server (admin.database).
  asio::awaitable<End> console() {
    AdminRight right = admin_right(cfg_, entry_.user);
    if (right == AdminRight::kNone) {
      client_.fail(p::sqlstate::kInvalidAuthorization,
                   absl::StrCat("user \"", entry_.user,
                                "\" may not use the admin console (admin.users, "
                                "admin.stats_users)"));
      co_return End::kAuthFailed;
    }
    entry_.admin = true;
    co_return co_await serve_admin(client_, entry_, *snap_, right == AdminRight::kAdmin);
  }

  // ---- Stage 3: the session's first server, then AuthenticationOk and the rest ----

  // The client's startup parameters that become settings (everything but user, database,
  // replication and protocol options; `options` is split into its -c settings).
  End collect_startup_settings() {
    txn::SettingList settings;
    for (const auto& [k, v] : startup_.params) {
      if (k == "user" || k == "database" || k == "replication" || k.rfind("_pq_.", 0) == 0) {
        continue;
      }
      if (k == "options") {
        if (!p::parse_options(v, settings)) {
          client_.fail(p::sqlstate::kFeatureNotSupported,
                       "only -c name=value settings are supported in the options parameter");
          return End::kUnsupported;
        }
        continue;
      }
      settings.emplace_back(k, v);
    }
    for (const auto& [k, v] : settings) {
      if (!p::is_safe_guc_name(k)) {
        client_.fail(p::sqlstate::kProtocolViolation,
                     absl::StrCat("invalid parameter name \"", k, "\""));
        return End::kUnsupported;
      }
    }
    conv_.settings().set_startup(std::move(settings));
    return End::kRunning;
  }

  asio::awaitable<End> attach_server() {
    entry_.set_state(ClientState::kWaiting);
    if (pause_gate().any()) {
      const bool go_on = co_await wait_while_paused(entry_);
      if (!go_on) {
        co_return End::kShutdown;
      }
    }
    entry_.past_gate = true;
    End e = collect_startup_settings();
    if (e == End::kRunning) {
      // The writer; while there is none (failover), a splitting session logs in on a replica
      // so that its reads go on.
      Topology* t = topology();
      EndpointState* first = nullptr;
      if (routing_ && t != nullptr && (t->writer() == nullptr || t->searching())) {
        first = t->healthy_replica();
      }
      e = co_await lease_.acquire(first, conv_.settings().startup());
    }
    if (e != End::kRunning) {
      co_return e;
    }
    entry_.set_state(ClientState::kActive);
    entry_.set_server(lease_.get());
    // Statistics per (database, user) once a server accepted them: a made-up database name
    // creates no cell.
    entry_.stats = &worker_metrics(entry_.worker).user_stats(entry_.database, entry_.user);
    cancel_key_ = cancel_registry().register_client();
    lease_.set_cancel_key(*cancel_key_);
    e = co_await lease_.open_session(conv_, txn_mode_);
    if (e != End::kRunning) {
      co_return e;
    }
    std::string out;
    p::encode_auth_ok(out);
    for (const auto& [k, v] : lease_->params) {
      p::encode_parameter_status(out, k, v);
    }
    p::encode_backend_key_data(out, *cancel_key_);
    p::encode_ready_for_query(out, lease_->status);
    if (co_await client_.write(out)) {
      co_return End::kClientGone;
    }
    co_return End::kRunning;
  }

  // ---- Stage 4: serve, in the pool mode's way ----

  asio::awaitable<End> serve() {
    if (txn_mode_) {
      pooling_.emplace(client_, cfg_, lease_, conv_, memo_, routing_, entry_);
      co_return co_await pooling_->serve();
    }
    relay_.emplace(client_, cfg_);
    co_return co_await relay_->run(*lease_.get(), session_pooling_,
                                   std::chrono::milliseconds(cfg_.proxy.client_idle_timeout_ms));
  }

  // ---- Stage 5: one cleanup path for every ending ----

  asio::awaitable<void> finish(End end) {
    entry_.set_server(nullptr);
    if (entry_.should_end_now() && end == End::kClientGone) {
      end = End::kShutdown;  // KILL, a drain or the shutdown deadline cancelled the client's I/O
    }
    if (UserStats* us = entry_.stats) {
      us->queries.add(pooling_ ? pooling_->take_queries() : relay_ ? relay_->take_queries() : 0);
      if (!txn_mode_ && relay_) {
        us->transactions.add();  // session pooling: one unit, the session
      }
    }
    entry_.count_bytes(client_.stream.bytes_read, client_.stream.bytes_written);
    if (cancel_key_) {
      cancel_registry().unregister_client(*cancel_key_);
    }
    const EndingInfo info = ending_info(end);
    if (info.counter != nullptr) {
      info.counter->fetch_add(1, std::memory_order_relaxed);
    }
    if (client_.error_bytes.empty() && !info.sqlstate.empty()) {
      client_.fail(info.sqlstate, info.message);
    }
    // Tell the client why, unless a half-written message makes the stream unusable.
    const bool client_mid_frame =
        (relay_ && relay_->client_mid_frame()) || (pooling_ && pooling_->client_mid_frame());
    if (!client_.error_bytes.empty() && !client_mid_frame && !client_.broken() &&
        end != End::kClientGone && end != End::kTlsFailed) {
      co_await client_.stream.write_all(client_.error_bytes);
    }
    client_.stream.close();
    if (end != End::kCancelHandled && end != End::kClientGone) {
      PGLANE_LOG_DEBUG("session user=%s db=%s ended: %s", lease_.identity().user,
                       lease_.identity().database, end_name(end));
    }
    // This client's statements stop claiming their server names before the server is handed
    // on, so the next client's attach already sees them unused.
    conv_.forget_statements();
    if (pooling_) {
      co_await pooling_->abandon_writes();
      pooling_->leave_endpoint();
    }
    if (lease_) {
      const bool busy = txn_mode_ ? conv_.owes_replies() : session_pooling_.owes_replies();
      const bool mid_frame = (relay_ && relay_->mid_frame()) || (pooling_ && pooling_->mid_frame());
      const bool wipe = !txn_mode_ || conv_.pinned() != nullptr;
      co_await lease_.end(end, busy, mid_frame, wipe, conv_.settings());
    }
  }

  Client client_;
  Runtime& runtime_;
  std::shared_ptr<const Snapshot> snap_;  // config and users as of this session's start
  const conf::Config& cfg_;
  const bool txn_mode_;  // pool.mode = transaction
  const bool routing_;   // read/write splitting is on for this session
  p::StartupParams startup_;
  SessionEntry entry_;  // what the console, PAUSE and shutdown see of this session
  std::optional<p::CancelKey> cancel_key_;  // ours, given to the client in BackendKeyData

  routing::StatementMemo memo_;  // what the latest statement text does (routing, effects)
  txn::Conversation conv_;       // settings, pins, statements, replies owed (transaction layer)
  ServerLease lease_;            // the server connection, while the client has one
  // Stage 4: one of these, by pool mode.
  std::optional<TransactionPooling> pooling_;
  std::optional<Relay> relay_;
  SessionPooling session_pooling_;
};

}  // namespace

asio::awaitable<void> run_session(tcp::socket socket, Runtime& runtime, int worker) {
  struct Active {
    Active() { stats().clients_active.fetch_add(1, std::memory_order_relaxed); }
    ~Active() { stats().clients_active.fetch_sub(1, std::memory_order_relaxed); }
  } active;
  stats().clients_total.fetch_add(1, std::memory_order_relaxed);
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  const bool over_limit = stats().clients_active.load(std::memory_order_relaxed) >
                          runtime.snapshot()->config->proxy.max_client_conn;
  Session session(std::move(socket), runtime, worker);
  co_await session.run(over_limit);
}

}  // namespace pglane::proxy
