#include "proxy/session.h"

#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "protocol/messages.h"
#include "protocol/scram.h"
#include "protocol/startup_options.h"
#include "proxy/cancel.h"
#include "proxy/log.h"
#include "proxy/login.h"
#include "proxy/net.h"
#include "proxy/pool.h"
#include "proxy/session_end.h"
#include "proxy/statements.h"
#include "proxy/stats.h"
#include "proxy/topology.h"
#include "routing/analyzer.h"
#include "routing/route.h"
#include "routing/session_effects.h"
#include "txn/client_settings.h"

namespace pglane::proxy {

using namespace boost::asio::experimental::awaitable_operators;
namespace p = protocol;
using p::is_safe_guc_name;
using p::parse_options;
using txn::quote_literal;
using txn::set_config_sql;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kRelayBuffer = 32 * 1024;
// Server messages the relay reads whole to track state (ReadyForQuery, ParameterStatus).
constexpr std::size_t kMaxInspected = 64 * 1024;
// Client messages that transaction pooling may rewrite or analyse are held whole up to this size.
constexpr std::size_t kMaxRewrite = 16 * 1024 * 1024;
// A read is retried on another replica only if what it sent fits in this many bytes.
constexpr std::size_t kMaxRetryBytes = 64 * 1024;

class Session {
 public:
  Session(tcp::socket socket, Runtime& runtime, int worker)
      : client_(std::move(socket)),
        runtime_(runtime),
        snap_(runtime.snapshot()),
        cfg_(*snap_->config),
        worker_(worker),
        cin_(kRelayBuffer),
        client_free_(client_.executor()),
        drained_(client_.executor()) {
    Topology* t = topology();
    routing_ = t != nullptr && cfg_.routing.enabled &&
               cfg_.pool.mode == conf::PoolMode::kTransaction &&
               (!t->replicas().empty() || t->analytics() != nullptr);
  }

  asio::awaitable<void> run() {
    End end = co_await login_with_deadline();
    if (end == End::kRunning) {
      end = co_await attach_server();
    }
    if (end == End::kRunning) {
      end = cfg_.pool.mode == conf::PoolMode::kTransaction ? co_await serve_transaction()
                                                           : co_await relay();
    }
    co_await finish(end);
  }

 private:
  // ---- Stage 1 and 2: TLS/startup and authentication, under proxy.auth_timeout_ms ----

  asio::awaitable<End> login_with_deadline() {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, std::chrono::milliseconds(cfg_.proxy.auth_timeout_ms));
    Login login(client_, cin_, *snap_, runtime_);
    auto r = co_await (login.run() || timer.async_wait(kUse));
    if (r.index() == 1) {
      fail(p::sqlstate::kConnectionFailure, "authentication timed out");
      co_return End::kAuthTimeout;
    }
    error_bytes_ = std::move(login.error_bytes());
    startup_ = std::move(login.startup());
    user_ = login.user();
    database_ = login.database();
    scram_keys_ = std::move(login.scram_keys());
    co_return std::get<0>(r);
  }

  // ---- Stage 3: a server connection for this client ----

  // The client's startup parameters that become settings (everything but user, database,
  // replication and protocol options; `options` is split into its -c settings).
  bool collect_startup_settings() {
    txn::SettingList startup_settings;
    for (const auto& [k, v] : startup_.params) {
      if (k == "user" || k == "database" || k == "replication" || k.rfind("_pq_.", 0) == 0) {
        continue;
      }
      if (k == "options") {
        if (!parse_options(v, startup_settings)) {
          fail(p::sqlstate::kFeatureNotSupported,
               "only -c name=value settings are supported in the options parameter");
          return false;
        }
        continue;
      }
      startup_settings.emplace_back(k, v);
    }
    for (const auto& [k, v] : startup_settings) {
      if (!is_safe_guc_name(k)) {
        fail(p::sqlstate::kProtocolViolation, absl::StrCat("invalid parameter name \"", k, "\""));
        return false;
      }
    }
    client_settings_.set_startup(std::move(startup_settings));
    return true;
  }

  // How to reach `endpoint` (null: the writer) as this client.
  ConnectRequest connect_request(const EndpointState* endpoint) {
    const bool analytics = endpoint != nullptr && endpoint->analytics;
    const auto& cred = analytics ? cfg_.analytics.credential : cfg_.backend.credential_for(user_);
    ConnectRequest req;
    req.endpoint = endpoint ? endpoint->endpoint : cfg_.home_region().writer;
    req.database =
        analytics && !cfg_.analytics.database.empty() ? cfg_.analytics.database : database_;
    req.credential.user = cred.user.empty() ? user_ : cred.user;
    req.credential.password = cred.password;
    if (cred.password.empty() && req.credential.user == user_) {
      // No password configured: log in as the client itself with the keys of its own SCRAM
      // proof. Never as another role: those keys open only the client's own account.
      req.scram_keys = scram_keys_;
    }
    req.tls_mode = cfg_.backend.tls.mode;
    req.tls_ctx = snap_->server_tls.get();
    req.timeout = std::chrono::milliseconds(cfg_.backend.connect_timeout_ms);
    pool_key_ =
        absl::StrCat(database_, "\x1f", req.credential.user, "\x1f", req.endpoint.to_string());
    const txn::SettingList& startup_settings = client_settings_.startup();
    if (cfg_.pool.mode == conf::PoolMode::kSession && !startup_settings.empty()) {
      // Session pooling: the server connection starts with the client's own parameters, and
      // only clients asking for the same ones share it.
      req.extra_params = startup_settings;
      absl::StrAppend(&pool_key_, "\x1f", absl::HashOf(startup_settings));
    }
    return req;
  }

  // Takes a server connection to `endpoint` (null: the writer) from the pool into server_, or
  // says why not.
  asio::awaitable<End> acquire_server(const EndpointState* endpoint = nullptr) {
    ConnectRequest req = connect_request(endpoint);
    AcquireResult got = co_await pools().acquire(
        pool_key_, worker_, cfg_.pool.size, std::chrono::milliseconds(cfg_.pool.queue_timeout_ms),
        std::chrono::milliseconds(cfg_.pool.server_idle_timeout_ms), std::move(req));
    if (!got.conn) {
      acquire_failed_sqlstate_ = got.server_error.empty() ? got.sqlstate : "";
      if (!got.server_error.empty()) {
        error_bytes_ = std::move(got.server_error);
      } else {
        fail(got.sqlstate, got.message);
      }
      co_return End::kNoServer;
    }
    server_ = std::move(got.conn);
    co_return End::kRunning;
  }

  asio::awaitable<End> attach_server() {
    if (!collect_startup_settings()) {
      co_return End::kUnsupported;
    }
    End acquired = co_await acquire_server();
    if (acquired != End::kRunning) {
      co_return acquired;
    }
    const auto endpoint = server_->endpoint;
    const bool txn = cfg_.pool.mode == conf::PoolMode::kTransaction;
    if (txn) {
      bool purged = co_await close_unused_statements();
      if (!purged) {
        co_return End::kServerGone;
      }
    }
    if (txn && server_->settings_hash != 0) {
      // Another client's settings: back to the server defaults before applying ours.
      if (!co_await run_simple_query(*server_, "RESET ALL")) {
        co_return End::kServerGone;
      }
      server_->settings_hash = 0;
    }
    // Transaction pooling applies the client's startup parameters with SET (a server connection
    // serves many clients) and replays them wherever the client goes.
    const auto& settings = txn ? client_settings_.startup() : txn::SettingList{};
    std::string sql;
    for (const auto& [k, v] : settings) {
      if (server_->param(k) == v) {
        continue;
      }
      absl::StrAppend(&sql, "SET ", k, " = ", quote_literal(v), ";");
    }
    if (!sql.empty()) {
      std::string error;
      if (!co_await run_simple_query(*server_, sql, &error)) {
        if (!error.empty()) {
          error_bytes_ = std::move(error);
          co_return End::kUnsupported;
        }
        co_return End::kServerGone;
      }
      // Transaction pooling replays these on whichever server the client lands on.
      if (txn) {
        // (co_await is kept out of && and ||: GCC 12 miscompiles it there.) No ParameterStatus
        // may reach the client before AuthenticationOk (pgjdbc rejects it): the values it would
        // carry are in server_->params and go out with the others below.
        bool refreshed = co_await refresh_settings(/*notify_client=*/false);
        if (!refreshed) {
          co_return End::kServerGone;
        }
      }
    }
    server_->settings_hash = client_settings_.fingerprint();
    server_default_scs_off_ = server_->param("standard_conforming_strings") == "off";
    scs_off_ = client_settings_.scs_off().value_or(server_default_scs_off_);
    cancel_key_ = cancel_registry().register_client();
    have_cancel_key_ = true;
    cancel_registry().attach(cancel_key_, CancelTarget{endpoint, server_->key});
    std::string out;
    p::encode_auth_ok(out);
    for (const auto& [k, v] : server_->params) {
      p::encode_parameter_status(out, k, v);
    }
    p::encode_backend_key_data(out, cancel_key_);
    p::encode_ready_for_query(out, server_->status);
    if (co_await client_.write_all(out)) {
      co_return End::kClientGone;
    }
    co_return End::kRunning;
  }

  // ---- Stage 4: relay, both directions at once, streaming through bounded buffers ----

  asio::awaitable<End> relay() {
    if (cfg_.proxy.client_idle_timeout_ms > 0) {
      auto r = co_await (client_to_server() || server_to_client() || idle_watchdog());
      co_return std::visit([](End e) { return e; }, r);
    }
    auto r = co_await (client_to_server() || server_to_client());
    co_return std::visit([](End e) { return e; }, r);
  }

  // Client -> server. Messages are forwarded as they arrive; only headers are looked at. Each
  // Query, FunctionCall and Sync is answered by exactly one ReadyForQuery, which is how we know
  // whether the server is busy when the client goes away.
  asio::awaitable<End> client_to_server() {
    const std::size_t max_message = cfg_.proxy.max_message_size;
    for (;;) {
      auto [ec, n] = co_await client_.read_some(cin_.prepare());
      if (ec) {
        co_return End::kClientGone;
      }
      cin_.commit(n);
      last_client_activity_ = std::chrono::steady_clock::now();
      std::string_view data = cin_.data();
      std::size_t pos = 0;
      End stop = End::kRunning;
      while (pos < data.size()) {
        if (c2s_remaining_ > 0) {
          std::size_t take = std::min(c2s_remaining_, data.size() - pos);
          pos += take;
          c2s_remaining_ -= take;
          continue;
        }
        auto h = p::decode_header(data.substr(pos), max_message);
        if (h.status == p::DecodeStatus::kNeedMore) {
          break;
        }
        if (h.status == p::DecodeStatus::kViolation) {
          fail(p::sqlstate::kProtocolViolation,
               absl::StrCat("invalid message: ", std::string(h.error)));
          stop = End::kClientViolation;
          break;
        }
        const char type = h.frame.type;
        if (type == 'X') {
          stop = End::kClientTerminated;
          break;
        }
        if (type == 'Q' || type == 'S' || type == 'F') {
          ++pending_;
        }
        std::size_t take = std::min(h.frame.size, data.size() - pos);
        pos += take;
        c2s_remaining_ = h.frame.size - take;
      }
      if (pos > 0) {
        if (co_await server_->stream.write_all(data.substr(0, pos))) {
          co_return End::kServerGone;
        }
        cin_.consume(pos);
      }
      if (stop != End::kRunning) {
        co_return stop;
      }
    }
  }

  // Server -> client. ReadyForQuery and ParameterStatus are read whole to track the transaction
  // status and the server's settings; everything else streams through.
  asio::awaitable<End> server_to_client() {
    Buffer& in = server_->in;
    std::size_t need = 1;
    for (;;) {
      if (in.size() < need || in.empty()) {
        auto [ec, n] =
            co_await server_->stream.read_some(in.prepare(need - std::min(need, in.size())));
        if (ec) {
          co_return End::kServerGone;
        }
        in.commit(n);
      }
      std::string_view data = in.data();
      std::size_t pos = 0;
      need = 1;
      while (pos < data.size()) {
        if (s2c_remaining_ > 0) {
          std::size_t take = std::min(s2c_remaining_, data.size() - pos);
          pos += take;
          s2c_remaining_ -= take;
          continue;
        }
        auto h = p::decode_header(data.substr(pos), p::kDefaultMaxMessage);
        if (h.status == p::DecodeStatus::kNeedMore) {
          need = (data.size() - pos) + 1;
          break;
        }
        if (h.status == p::DecodeStatus::kViolation) {
          co_return End::kServerViolation;
        }
        const char type = h.frame.type;
        const std::size_t size = h.frame.size;
        if ((type == 'Z' || type == 'S') && size <= kMaxInspected) {
          if (data.size() - pos < size) {
            need = size;  // wait for the whole message; earlier bytes are flushed first
            break;
          }
          std::string_view body = data.substr(pos + p::kHeaderSize, size - p::kHeaderSize);
          if (type == 'Z') {
            if (pending_ > 0) {
              --pending_;
            }
            server_->status = body.empty() ? 'I' : body[0];
          } else if (auto ps = p::parse_parameter_status(body)) {
            server_->set_param(ps->first, ps->second);
          }
          pos += size;
          continue;
        }
        std::size_t take = std::min(size, data.size() - pos);
        pos += take;
        s2c_remaining_ = size - take;
      }
      if (pos > 0) {
        s2c_writing_ = true;
        auto ec = co_await client_.write_all(data.substr(0, pos));
        s2c_writing_ = false;
        if (ec) {
          co_return End::kClientGone;
        }
        in.consume(pos);
      }
    }
  }

  asio::awaitable<End> idle_watchdog() {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex);
    const auto limit = std::chrono::milliseconds(cfg_.proxy.client_idle_timeout_ms);
    last_client_activity_ = std::chrono::steady_clock::now();
    for (;;) {
      timer.expires_at(last_client_activity_ + limit);
      co_await timer.async_wait(kUse);
      // Only a client that is idle outside a transaction and not waiting on a result times out.
      if (std::chrono::steady_clock::now() >= last_client_activity_ + limit && pending_ == 0 &&
          server_->status == 'I') {
        fail(p::sqlstate::kIdleSessionTimeout, "terminating connection due to idle timeout");
        co_return End::kIdleTimeout;
      }
      if (std::chrono::steady_clock::now() >= last_client_activity_ + limit) {
        last_client_activity_ = std::chrono::steady_clock::now();
      }
    }
  }

  // ---- Stage 4, transaction pooling: a server only between a transaction's first message and
  // the ReadyForQuery that reports idle. See docs/internals.md, "Transaction pooling". ----

  // What the client is owed for each message forwarded (or answered locally), in order. Server
  // responses are matched to the head entry; PostgreSQL answers strictly in order (docs 55.2.3).
  struct Expect {
    char kind = 0;            // P Parse, B Bind, C Close, D Describe statement, d Describe portal,
                              // E Execute, S Sync, Q Query, F FunctionCall, L local reply
    bool swallow = false;     // injected by pglane: its success reply is not the client's
    std::string server_stmt;  // Parse: server statement that does not exist if this fails
    std::string client_stmt;  // Parse: client statement that does not exist if this fails
    std::string evicted;      // injected Close: still on the server if the server skipped it
    std::string local;        // L: bytes to send when this entry reaches the head
    bool local_rfq = false;   // L: followed by ReadyForQuery with the current status
  };

  // A named statement as the client prepared it; `server_name` is derived from text and types,
  // so clients preparing the same statement share it on every server.
  struct ClientStatement {
    std::string query;
    std::string types;  // raw parameter-type tail of the Parse body
    std::string server_name;
    StatementClaim claim;        // keeps server_name on servers while this client has it
    routing::SessionEffects fx;  // applied each time the statement is bound
    routing::Analysis analysis;  // what it does, for routing each Bind (analysed at Parse)
  };

  static bool terminal_for(char kind, char type) {
    switch (kind) {
      case 'P':
        return type == '1';
      case 'B':
        return type == '2';
      case 'C':
        return type == '3';
      case 'D':
      case 'd':
        return type == 'T' || type == 'n';
      case 'E':
        return type == 'C' || type == 'I' || type == 's';
      default:
        return type == 'Z';  // S, Q, F
    }
  }

  static std::string server_name_for(std::string_view query, std::string_view types) {
    uint64_t h = absl::HashOf(query, types);
    return absl::StrFormat("pgl_%016x_%zu", h, query.size());
  }

  asio::awaitable<End> serve_transaction() {
    for (;;) {
      if (server_ && !pinned_) {
        co_await detach();
      }
      if (!server_) {
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
        e = co_await attach_for_transaction(answered);
        if (e != End::kRunning) {
          co_return e;
        }
        if (answered) {
          continue;  // answered without a server (SET pglane.route, no replica)
        }
      }
      End e;
      if (cfg_.proxy.client_idle_timeout_ms > 0 && pinned_) {
        auto r = co_await (c2s_txn() || s2c_txn() || idle_watchdog());
        e = std::visit([](End x) { return x; }, r);
      } else {
        auto r = co_await (c2s_txn() || s2c_txn());
        e = std::visit([](End x) { return x; }, r);
      }
      if (e == End::kServerGone && c2s_remaining_ == 0 && s2c_remaining_ == 0) {
        // The server died under this client. Its transaction is gone (rolled back by the
        // server's death); the client keeps its session and learns it from an error in place
        // of the replies it is owed, or of the next ones it asks for.
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

  std::string lost_error() const {
    std::string out;
    p::ErrorFields f;
    f.sqlstate = p::sqlstate::kConnectionFailure;
    f.message = "server connection lost; the current transaction was rolled back";
    p::encode_error(out, f);
    return out;
  }

  asio::awaitable<End> survive_server_loss() {
    stats().server_lost.fetch_add(1, std::memory_order_relaxed);
    PGLANE_LOG_WARN("user=%s db=%s: server %s lost mid-transaction", user_, database_,
                    server_->endpoint.to_string());
    const bool in_transaction = server_->status != 'I';
    cancel_registry().detach(cancel_key_);
    pools().discard(pool_key_, std::move(server_));
    pinned_ = nullptr;  // whatever pinned us died with the server
    const bool was_read = attached_route_ == routing::Route::kReader && attached_ != nullptr;
    if (was_read) {
      topology()->report_failure(*attached_);
    }
    leave_endpoint();
    held_.clear();  // a held RowDescription of the lost query is not the client's any more
    if (was_read && retry_ok_ && !retried_) {
      // A read whose replica died before the client saw any of its answer: run it again on
      // another node, once. Put back what the lost server was sent, ahead of what followed.
      retried_ = true;
      retry_ok_ = false;
      expect_.clear();
      skipping_ = false;
      std::string rest(cin_.data());
      cin_.consume(cin_.size());
      attach_raw_.append(rest);
      auto room = cin_.prepare(attach_raw_.size());
      std::memcpy(room.data(), attach_raw_.data(), attach_raw_.size());
      cin_.commit(attach_raw_.size());
      attach_raw_.clear();
      topology()->stats().retries.fetch_add(1, std::memory_order_relaxed);
      co_return End::kRunning;
    }
    int owed = 0;
    for (const auto& e : expect_) {
      owed += (e.kind == 'S' || e.kind == 'Q' || e.kind == 'F') ? 1 : 0;
    }
    expect_.clear();
    skipping_ = false;
    if (owed == 0 && !in_transaction) {
      co_return End::kRunning;  // nothing was lost that the client relied on
    }
    std::string out;
    if (owed > 0) {
      out = lost_error();
      for (int i = 0; i < owed; ++i) {
        p::encode_ready_for_query(out, 'I');
      }
    } else {
      // Idle inside a transaction: answer the client's next Query/Sync with the error, dropping
      // what it sends up to there (it belongs to the lost transaction; a COMMIT must not reach
      // a fresh server and "succeed").
      for (;;) {
        auto h = p::decode_header(cin_.data(), cfg_.proxy.max_message_size);
        if (h.status == p::DecodeStatus::kViolation) {
          fail(p::sqlstate::kProtocolViolation, "invalid message");
          co_return End::kClientViolation;
        }
        if (h.status == p::DecodeStatus::kMessage && cin_.size() >= h.frame.size) {
          const char t = h.frame.type;
          cin_.consume(h.frame.size);
          if (t == 'X') {
            co_return End::kClientTerminated;
          }
          if (t == 'S' || t == 'Q' || t == 'F') {
            break;
          }
          continue;
        }
        auto [ec, n] = co_await client_.read_some(
            cin_.prepare(h.status == p::DecodeStatus::kMessage ? h.frame.size - cin_.size() : 1));
        if (ec) {
          co_return End::kClientGone;
        }
        cin_.commit(n);
      }
      out = lost_error();
      p::encode_ready_for_query(out, 'I');
    }
    std::vector<asio::const_buffer> bufs{asio::buffer(out)};
    if (co_await write_client(bufs)) {
      co_return End::kClientGone;
    }
    co_return End::kRunning;
  }

  // A batch of only named Parses of known statements and a Sync, outside a transaction, is
  // answered without a server (see KnownStatements).
  asio::awaitable<End> answer_known_prepare(bool& answered) {
    answered = false;
    for (;;) {
      // Each Parse is decoded, hashed and analysed once; the batch is answered only when it
      // turns out to be complete and eligible.
      std::string_view data = cin_.data();
      std::size_t pos = 0;
      std::vector<std::pair<std::string, ClientStatement>> batch;
      bool synced = false;
      while (!synced) {
        auto h = p::decode_header(data.substr(pos), cfg_.proxy.max_message_size);
        if (h.status == p::DecodeStatus::kNeedMore ||
            (h.status == p::DecodeStatus::kMessage && h.frame.size <= kMaxInspected &&
             data.size() - pos < h.frame.size)) {
          break;  // eligible so far; the rest of the batch has not arrived
        }
        if (h.status != p::DecodeStatus::kMessage || h.frame.size > kMaxInspected) {
          co_return End::kRunning;
        }
        const char t = h.frame.type;
        if (t == 'S' && !batch.empty()) {
          synced = true;
        } else if (t == 'P') {
          p::Reader r(data.substr(pos + p::kHeaderSize, h.frame.size - p::kHeaderSize));
          std::string_view name = r.cstring();
          ClientStatement st;
          st.query = std::string(r.cstring());
          st.types = std::string(r.rest());
          st.server_name = server_name_for(st.query, st.types);
          st.fx = routing::analyze_session_effects(st.query);
          if (routing_) {
            st.analysis = analyze(st.query);
          }
          if (!r.ok() || name.empty() || st.fx.pin_reason ||
              !known_statements().contains(pool_key_ + st.server_name)) {
            co_return End::kRunning;
          }
          batch.emplace_back(std::string(name), std::move(st));
        } else {
          co_return End::kRunning;
        }
        pos += h.frame.size;
      }
      if (synced) {
        std::string reply;
        for (auto& [name, st] : batch) {
          st.claim = StatementClaim(st.server_name);  // claimed only once accepted
          stmts_[name] = std::move(st);
          owed_.insert(name);
          p::encode_parse_complete(reply);
        }
        answered = true;
        co_return co_await answer_locally(pos, std::move(reply));
      }
      auto [ec, n] = co_await client_.read_some(cin_.prepare());
      if (ec) {
        co_return End::kClientGone;
      }
      cin_.commit(n);
    }
  }

  // Idle between transactions: no server, and no read buffer either.
  asio::awaitable<End> wait_for_client() {
    if (!cin_.empty()) {
      co_return End::kRunning;
    }
    cin_.release_if_empty();
    if (cfg_.proxy.client_idle_timeout_ms > 0) {
      auto ex = co_await asio::this_coro::executor;
      asio::steady_timer timer(ex, std::chrono::milliseconds(cfg_.proxy.client_idle_timeout_ms));
      auto r = co_await (client_.wait_readable() || timer.async_wait(kUse));
      if (r.index() == 1) {
        fail(p::sqlstate::kIdleSessionTimeout, "terminating connection due to idle timeout");
        co_return End::kIdleTimeout;
      }
    } else {
      co_await client_.wait_readable();
    }
    auto [ec, n] = co_await client_.read_some(cin_.prepare());
    if (ec) {
      co_return End::kClientGone;
    }
    cin_.commit(n);
    auto h = p::decode_header(cin_.data(), cfg_.proxy.max_message_size);
    if (h.status == p::DecodeStatus::kMessage && h.frame.type == 'X') {
      co_return End::kClientTerminated;
    }
    co_return End::kRunning;
  }

  asio::awaitable<End> attach_for_transaction(bool& answered) {
    answered = false;
    // Between transactions, a failure to get a server ends the session like a direct server
    // that cannot take more connections: PostgreSQL has no error for a healthy idle session.
    EndpointState* endpoint = nullptr;
    routing::Route route = routing::Route::kWriter;
    if (routing_) {
      Unit unit;
      for (;;) {
        unit = classify_unit(cin_.data());
        if (unit.state != UnitState::kIncomplete || cin_.size() >= kMaxInspected) {
          break;
        }
        auto [ec, n] = co_await client_.read_some(cin_.prepare());
        if (ec) {
          co_return End::kClientGone;
        }
        cin_.commit(n);
      }
      if (unit.state == UnitState::kLocalSet) {
        answered = true;
        co_return co_await answer_route_setting(unit);
      }
      // A unit with no work in it (a lone Sync, a Describe) goes to the writer, which can answer
      // anything, without counting as a write.
      const bool neutral = unit.state == UnitState::kNeutral;
      routing::Decision decision = unit.state == UnitState::kDecided
                                       ? unit.d
                                       : routing::Decision{routing::Route::kWriter, "neutral"};
      if (unit.state == UnitState::kIncomplete) {
        decision = {routing::Route::kWriter, "too large to analyse"};
      }
      excluded_.clear();
      for (;;) {
        Target target = choose_target(decision);
        if (target.endpoint == nullptr) {
          answered = true;
          co_return co_await reject_unit(unit, p::sqlstate::kCannotConnectNow,
                                         "no replica can serve this read now "
                                         "(routing.no_replica = \"error\")");
        }
        End e = co_await acquire_server(target.endpoint);
        if (e == End::kRunning) {
          endpoint = target.endpoint;
          route = target.route;
          neutral_unit_ = neutral;
          count_route(target, decision);
          break;
        }
        // Only a connection-level failure (08xxx) says the replica is unwell; pool timeouts
        // and the server refusing this client (28P01, 3D000...) do not.
        if (target.route != routing::Route::kReader ||
            acquire_failed_sqlstate_.rfind("08", 0) != 0) {
          co_return e;
        }
        // A replica that cannot be reached: mark it down and try the next choice.
        error_bytes_.clear();
        topology()->report_failure(*target.endpoint);
        excluded_.push_back(target.endpoint);
      }
    } else {
      End e = co_await acquire_server();
      if (e != End::kRunning) {
        co_return e;
      }
    }
    bool purged = co_await close_unused_statements();
    if (purged && !owed_.empty()) {
      purged = co_await parse_owed_statements();
    }
    if (!purged) {
      pools().discard(pool_key_, std::move(server_));
      fail(p::sqlstate::kConnectionFailure, "lost a server connection while preparing it");
      co_return End::kNoServer;
    }
    if (std::string sql = client_settings_.replay_sql(server_->settings_hash); !sql.empty()) {
      if (!co_await run_simple_query(*server_, sql)) {
        pools().discard(pool_key_, std::move(server_));
        fail(p::sqlstate::kConnectionFailure, "could not restore session settings on a server");
        co_return End::kNoServer;
      }
      server_->settings_hash = client_settings_.fingerprint();
    }
    cancel_registry().attach(cancel_key_, CancelTarget{server_->endpoint, server_->key});
    if (routing_) {
      attached_ = endpoint;
      attached_->outstanding.fetch_add(1, std::memory_order_relaxed);
      attached_route_ = route;
      attached_wrote_ = route == routing::Route::kWriter && !fallback_ && !neutral_unit_;
      unit_checked_ = true;  // the first unit chose this server
      since_sync_ = false;
      retry_ok_ = route == routing::Route::kReader && !retried_;
      attach_raw_.clear();
    }
    co_return End::kRunning;
  }

  // ---- Read/write splitting (docs/internals.md, "Routing") ----

  // One worker's analyser; its cache serves every session of the worker.
  routing::Analyzer& analyzer() {
    thread_local routing::Analyzer a(static_cast<size_t>(cfg_.routing.analysis_cache_size));
    return a;
  }

  // The same message is looked at twice (classify_unit, then on_client_message): the last
  // statement's analysis and session effects are remembered by text.
  routing::Analysis analyze(std::string_view sql) {
    if (sql == memo_sql_ && memo_analysis_.info) {
      return memo_analysis_;
    }
    routing::Analysis a = analyzer().analyze(sql);
    if (sql.size() > kMaxInspected) {
      memo_sql_.clear();
      memo_sql_.shrink_to_fit();  // not worth holding a huge text for
      memo_analysis_ = {};
      memo_fx_.reset();
      return a;
    }
    memo_sql_.assign(sql);
    memo_analysis_ = a;
    memo_fx_.reset();
    RouteStats& rs = topology()->stats();
    switch (a.source) {
      case routing::Analysis::Source::kFast:
        rs.analysis_fast.fetch_add(1, std::memory_order_relaxed);
        break;
      case routing::Analysis::Source::kCache:
        rs.analysis_cache_hits.fetch_add(1, std::memory_order_relaxed);
        break;
      case routing::Analysis::Source::kParser:
        rs.analysis_parsed.fetch_add(1, std::memory_order_relaxed);
        if (a.info->parse_failed) {
          rs.analysis_rejected.fetch_add(1, std::memory_order_relaxed);
        }
        break;
    }
    return a;
  }

  routing::SessionEffects session_effects(std::string_view sql) {
    if (!routing_) {
      return routing::analyze_session_effects(sql);
    }
    if (sql != memo_sql_ || !memo_analysis_.info) {
      analyze(sql);
      if (sql != memo_sql_) {
        return routing::analyze_session_effects(sql);  // too large to remember
      }
    }
    if (!memo_fx_) {
      memo_fx_ = routing::analyze_session_effects(sql);
    }
    return *memo_fx_;
  }

  routing::RouteContext route_context() {
    const auto now = std::chrono::steady_clock::now();
    if (!catalog_ || now - catalog_at_ > std::chrono::seconds(1)) {
      catalog_ = topology()->catalog(database_);
      catalog_at_ = now;
    }
    routing::RouteContext ctx;
    ctx.catalog = catalog_.get();
    ctx.read_only_allow = &topology()->read_only_allow();
    ctx.default_read_only = client_settings_.default_read_only();
    ctx.default_serializable = client_settings_.default_serializable();
    ctx.session_hint = session_hint_;
    return ctx;
  }

  enum class UnitState { kIncomplete, kNeutral, kDecided, kLocalSet };
  // A request unit: one Query, or extended-protocol messages up to and including Sync. A unit
  // runs on one server; units are where a client's work may move between servers.
  struct Unit {
    UnitState state = UnitState::kIncomplete;
    routing::Decision d;
    routing::Hint set_value = routing::Hint::kNone;  // kLocalSet: SET pglane.route
    std::size_t size = 0;                            // bytes, once complete
  };

  static int route_rank(routing::Route r) {
    return r == routing::Route::kWriter ? 2 : r == routing::Route::kAnalytics ? 1 : 0;
  }

  Unit classify_unit(std::string_view data) {
    Unit u;
    if (scs_off_) {
      // With standard_conforming_strings off, backslashes escape quotes: our lexer and the
      // parser read '...' differently from the server, so nothing is trusted to be a read.
      u.state = UnitState::kDecided;
      u.d = {routing::Route::kWriter, "standard_conforming_strings is off"};
      return u;
    }
    const routing::RouteContext ctx = route_context();
    bool any = false;
    routing::Decision worst{routing::Route::kReader, "neutral"};
    auto merge = [&](routing::Decision d) {
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
      routing::Analysis a = analyze(sql);
      if (session_effects(sql).pin_reason != nullptr) {
        merge({routing::Route::kWriter, "pins the session"});
      } else {
        merge(routing::decide(*a.info, a.hint, ctx));
      }
      return a;
    };
    std::size_t pos = 0;
    for (;;) {
      if (any && worst.route == routing::Route::kWriter) {
        return decided(pos);  // nothing later can change that
      }
      auto h = p::decode_header(data.substr(pos), cfg_.proxy.max_message_size);
      const bool too_big =
          h.status == p::DecodeStatus::kViolation ||
          (h.status == p::DecodeStatus::kMessage && h.frame.size > kMaxInspected) ||
          pos > kMaxInspected;
      if (too_big) {
        // The relay reports violations; a unit too large to hold for analysis goes to the
        // writer, where anything may run.
        merge({routing::Route::kWriter, "not analysed"});
        return decided(pos);
      }
      if (h.status == p::DecodeStatus::kNeedMore || data.size() - pos < h.frame.size) {
        if (data.size() >= kMaxInspected) {
          merge({routing::Route::kWriter, "not analysed"});
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
          // transaction: it is part of this unit and ends it.)
          std::string_view sql = r.cstring();
          routing::Analysis a = analyze(sql);
          if (a.info->kind == routing::StatementInfo::Kind::kPglaneSetting && pos == h.frame.size) {
            u.state = UnitState::kLocalSet;
            u.set_value = a.info->set_route;
            u.size = pos;
            return u;
          }
          merge_statement(sql);
          return decided(pos);
        }
        case 'P': {
          r.cstring();
          merge_statement(r.cstring());
          break;
        }
        case 'B': {
          r.cstring();
          std::string_view stmt = r.cstring();
          if (!stmt.empty()) {
            auto it = stmts_.find(std::string(stmt));
            if (it != stmts_.end() && it->second.analysis.info) {
              if (it->second.fx.pin_reason != nullptr) {
                merge({routing::Route::kWriter, "pins the session"});
              } else {
                merge(routing::decide(*it->second.analysis.info, it->second.analysis.hint, ctx));
              }
            } else {
              merge({routing::Route::kWriter, "unknown statement"});
            }
          }
          break;
        }
        case 'F':  // FunctionCall: a unit of its own, and it may call anything
          merge({routing::Route::kWriter, "function call"});
          return decided(pos);
        case 'S':  // Sync ends the unit
          return decided(pos);
        case 'H':
          // Flush without Sync: the client waits for answers before sending more, and the
          // implicit transaction may go on with anything, so only the writer can take it.
          merge({routing::Route::kWriter, "flushed without Sync"});
          return decided(pos);
        case 'D':
        case 'E':
        case 'C':
          break;
        default:  // COPY data and anything else: continues what the server is doing
          return decided(pos);
      }
    }
  }

  struct Target {
    EndpointState* endpoint = nullptr;
    routing::Route route = routing::Route::kWriter;
  };

  // Where a unit with decision `d` runs now. Sets fallback_ (a read sent to the writer) and
  // ryw_fallback_ (... because of read-your-writes).
  Target choose_target(const routing::Decision& d) {
    Topology& t = *topology();
    fallback_ = false;
    ryw_fallback_ = false;
    if (d.route == routing::Route::kAnalytics && t.analytics() != nullptr) {
      return {t.analytics(), routing::Route::kAnalytics};
    }
    if (d.route == routing::Route::kWriter) {
      return {&t.writer(), routing::Route::kWriter};
    }
    routing::ReadRequirement need;
    need.max_lag_ms = cfg_.routing.max_replica_lag_ms;
    if (rw_pending_) {
      switch (cfg_.routing.read_your_writes) {
        case conf::ReadYourWrites::kLsn:
          if (rw_lsn_ == 0) {
            rw_lsn_ = t.writer_lsn_since(rw_at_).value_or(0);
          }
          if (rw_lsn_ == 0) {
            fallback_ = ryw_fallback_ = true;  // the commit position is not known yet
            return {&t.writer(), routing::Route::kWriter};
          }
          need.min_lsn = rw_lsn_;
          break;
        case conf::ReadYourWrites::kWindow:
          if (std::chrono::steady_clock::now() - rw_at_ <
              std::chrono::milliseconds(cfg_.routing.read_your_writes_window_ms)) {
            fallback_ = ryw_fallback_ = true;
            return {&t.writer(), routing::Route::kWriter};
          }
          rw_pending_ = false;
          break;
        case conf::ReadYourWrites::kOff:
          break;
      }
    }
    const auto& replicas = t.replicas();
    candidates_.resize(replicas.size());
    for (size_t i = 0; i < replicas.size(); ++i) {
      const EndpointState& r = *replicas[i];
      routing::Candidate& c = candidates_[i];
      c.healthy = r.up.load(std::memory_order_relaxed) &&
                  r.in_recovery.load(std::memory_order_relaxed) &&
                  std::find(excluded_.begin(), excluded_.end(), &r) == excluded_.end();
      c.region = r.region_rank;
      c.lag_ms = r.lag_ms.load(std::memory_order_relaxed);
      c.replay_lsn = r.lsn.load(std::memory_order_relaxed);
      c.rtt_us = r.rtt_us.load(std::memory_order_relaxed);
      c.outstanding = r.outstanding.load(std::memory_order_relaxed);
    }
    int pick = routing::choose_replica(candidates_, need);
    if (pick >= 0) {
      return {replicas[pick].get(), routing::Route::kReader};
    }
    if (need.min_lsn != 0) {
      ryw_fallback_ = true;
    }
    if (cfg_.routing.no_replica == conf::NoReplica::kError && !ryw_fallback_) {
      return {nullptr, routing::Route::kReader};
    }
    fallback_ = true;
    return {&t.writer(), routing::Route::kWriter};
  }

  void count_route(const Target& target, const routing::Decision& d) {
    RouteStats& rs = topology()->stats();
    const char* where = "writer";
    if (target.route == routing::Route::kAnalytics) {
      rs.analytics.fetch_add(1, std::memory_order_relaxed);
      where = "analytics";
    } else if (target.route == routing::Route::kReader) {
      target.endpoint->reads.fetch_add(1, std::memory_order_relaxed);
      if (target.endpoint->region_rank == 0) {
        rs.reads_local.fetch_add(1, std::memory_order_relaxed);
        where = "local replica";
      } else {
        rs.reads_remote.fetch_add(1, std::memory_order_relaxed);
        where = "remote replica";
      }
    } else if (fallback_) {
      rs.reads_writer.fetch_add(1, std::memory_order_relaxed);
      if (ryw_fallback_) {
        rs.reads_ryw.fetch_add(1, std::memory_order_relaxed);
      }
      where = ryw_fallback_ ? "writer (read-your-writes)" : "writer (no replica qualifies)";
    } else {
      rs.writes.fetch_add(1, std::memory_order_relaxed);
    }
    PGLANE_LOG_DEBUG("user=%s db=%s: %s -> %s %s", user_, database_, d.why, where,
                     target.endpoint->name);
  }

  // Whether the attached server may run a unit decided `d` (transactions never split: the caller
  // checks that the server is idle before moving).
  bool fits(const Unit& u) {
    if (u.state != UnitState::kDecided) {
      return true;
    }
    switch (attached_route_) {
      case routing::Route::kWriter:
        if (u.d.route == routing::Route::kWriter) {
          attached_wrote_ = true;
        }
        return u.d.route != routing::Route::kAnalytics || topology()->analytics() == nullptr;
      case routing::Route::kReader:
        return u.d.route == routing::Route::kReader;
      case routing::Route::kAnalytics:
        return u.d.route == routing::Route::kAnalytics;
    }
    return true;
  }

  // The endpoint bookkeeping of a server leaving this client.
  void leave_endpoint() {
    if (attached_ == nullptr) {
      return;
    }
    attached_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    attached_ = nullptr;
    if (attached_wrote_) {
      // Read-your-writes: later reads need a replica that has replayed past this point.
      rw_pending_ = true;
      rw_at_ = std::chrono::steady_clock::now();
      rw_lsn_ = 0;
      attached_wrote_ = false;
    }
  }

  // SET pglane.route = ...: answered here, on no server.
  asio::awaitable<End> answer_route_setting(const Unit& u) {
    session_hint_ = u.set_value;
    std::string reply;
    p::encode_command_complete(reply, "SET");
    co_return co_await answer_locally(u.size, std::move(reply));
  }

  // Answers a whole unit with an error, as the server would have, without running it.
  asio::awaitable<End> reject_unit(const Unit& u, std::string_view sqlstate,
                                   std::string_view message) {
    std::string reply;
    p::ErrorFields f;
    f.sqlstate = sqlstate;
    f.message = message;
    p::encode_error(reply, f);
    co_return co_await answer_locally(u.size, std::move(reply));
  }

  // Answers the client's next `consumed` bytes (whole requests, outside a transaction) without a
  // server: `reply`, then ReadyForQuery.
  asio::awaitable<End> answer_locally(std::size_t consumed, std::string reply) {
    cin_.consume(consumed);
    p::encode_ready_for_query(reply, 'I');
    std::vector<asio::const_buffer> bufs{asio::buffer(reply)};
    if (co_await write_client(bufs)) {
      co_return End::kClientGone;
    }
    co_return End::kRunning;
  }

  // Closes the statements of the attached server that no connected client uses any more (their
  // clients left), so this client's pg_prepared_statements shows only what a direct connection
  // would: its own statements, and those of clients still connected that share the server. Runs
  // only when a statement lost its last user since this server last checked.
  asio::awaitable<bool> close_unused_statements() {
    const uint64_t epoch = statement_owners().epoch();
    if (server_->stmts_epoch == epoch) {
      co_return true;
    }
    server_->stmts_epoch = epoch;
    // Close (docs 55.7) succeeds for a name the server no longer has (a client may have run
    // DEALLOCATE pgl_... itself), where DEALLOCATE would fail the whole batch.
    std::string msgs;
    for (const auto& name : statement_owners().unused(server_->stmt_lru)) {
      p::encode_close(msgs, 'S', name);
      server_->forget_stmt(name);
    }
    if (msgs.empty()) {
      co_return true;
    }
    p::encode_sync(msgs);
    co_return co_await run_extended(*server_, msgs, 1);
  }

  // Parses on the attached server the statements pglane answered alone since the client last
  // held one (owed_), so its pg_prepared_statements shows them as on a direct connection. Each
  // Parse has its own Sync and every reply is swallowed: a failure here only means the
  // statement is parsed when it is bound, where the error reaches the client as usual.
  asio::awaitable<bool> parse_owed_statements() {
    std::string msgs;
    std::vector<std::string> sent;
    for (const auto& name : owed_) {
      auto it = stmts_.find(name);
      if (it == stmts_.end() || server_->has_stmt(it->second.server_name) ||
          server_->stmts.size() + sent.size() >=
              static_cast<size_t>(cfg_.pool.max_prepared_statements) ||
          !known_statements().contains(pool_key_ + it->second.server_name)) {
        continue;
      }
      p::encode_parse(msgs, it->second.server_name, it->second.query, it->second.types);
      p::encode_sync(msgs);
      sent.push_back(it->second.server_name);
    }
    owed_.clear();
    if (sent.empty()) {
      co_return true;
    }
    std::string replies;
    if (!co_await run_extended(*server_, msgs, static_cast<int>(sent.size()), &replies)) {
      co_return false;
    }
    // One reply per Parse: '1' ParseComplete or 'E'.
    for (size_t i = 0; i < sent.size() && i < replies.size(); ++i) {
      if (replies[i] == '1') {
        server_->add_stmt(sent[i], std::numeric_limits<size_t>::max());
      }
    }
    co_return true;
  }

  // Reads the client's session-level settings back from the server (txn::ClientSettings writes
  // the query): this covers SET, RESET, set_config(), rolled-back SETs and settings changed
  // inside functions alike, custom settings included. Returns the startup settings to put back.
  asio::awaitable<std::optional<txn::SettingList>> read_session_settings() {
    std::vector<std::vector<std::string>> rows;
    bool ok = co_await run_query_rows(*server_, client_settings_.read_query(), rows);
    if (!ok) {
      co_return std::nullopt;
    }
    txn::SettingList missing = client_settings_.absorb(rows);
    scs_off_ = client_settings_.scs_off().value_or(server_default_scs_off_);
    co_return missing;
  }

  asio::awaitable<bool> refresh_settings(bool notify_client = true) {
    auto missing = co_await read_session_settings();
    if (!missing) {
      co_return false;
    }
    // On a direct connection RESET returns a startup parameter to the value the client gave at
    // startup; here those were applied with SET, so put back the ones RESET removed and tell the
    // client (ParameterStatus may arrive at any time, docs 55.2.7).
    if (missing->empty()) {
      co_return true;
    }
    std::vector<std::string> restored;
    for (const auto& [name, value] : *missing) {
      restored.push_back(absl::AsciiStrToLower(name));
    }
    bool ok = co_await run_simple_query(*server_, set_config_sql(*missing));
    if (ok) {
      ok = (co_await read_session_settings()).has_value();
    }
    if (!ok) {
      co_return false;
    }
    std::string status;
    for (const auto& [k, v] : server_->params) {
      if (std::find(restored.begin(), restored.end(), absl::AsciiStrToLower(k)) != restored.end()) {
        p::encode_parameter_status(status, k, v);
      }
    }
    if (notify_client && !status.empty()) {
      std::vector<asio::const_buffer> bufs{asio::buffer(status)};
      co_await write_client(bufs);
    }
    co_return true;
  }

  asio::awaitable<void> detach() {
    cancel_registry().detach(cancel_key_);
    detach_wanted_ = false;
    leave_endpoint();
    retried_ = false;
    if (client_settings_.dirty()) {
      bool refreshed = co_await refresh_settings();
      if (!refreshed) {
        pools().discard(pool_key_, std::move(server_));
        co_return;
      }
    }
    server_->settings_hash = client_settings_.release_fingerprint();
    pools().release(pool_key_, worker_, std::move(server_));
  }

  bool detachable() const {
    return !pinned_ && expect_.empty() && server_->status == 'I' && c2s_remaining_ == 0 &&
           s2c_remaining_ == 0 && !skipping_;
  }

  void pin(const char* reason) {
    if (!pinned_) {
      pinned_ = reason;
      stats().sessions_pinned.fetch_add(1, std::memory_order_relaxed);
      PGLANE_LOG_INFO("user=%s db=%s pinned to its server connection: %s", user_, database_,
                      reason);
    }
  }

  void apply_effects(const routing::SessionEffects& fx) {
    if (fx.pin_reason) {
      pin(fx.pin_reason);
    }
    client_settings_.note(fx, cfg_.pool.reset_after_unknown_functions, scs_off_);
    if (fx.discard_all || fx.deallocate_all) {
      stmts_.clear();
      server_->forget_all_stmts();
    }
    if (fx.discard_all) {
      pinned_ = nullptr;  // DISCARD ALL drops every kind of session state that pinned us
    }
  }

  void push_local(std::string bytes, bool rfq) {
    if (expect_.empty()) {
      local_now_.append(bytes);
      if (rfq) {
        p::encode_ready_for_query(local_now_, server_->status);
      }
      return;
    }
    Expect e;
    e.kind = 'L';
    e.local = std::move(bytes);
    e.local_rfq = rfq;
    expect_.push_back(std::move(e));
  }

  void push(char kind) {
    Expect e;
    e.kind = kind;
    expect_.push_back(std::move(e));
  }

  // Makes sure the server holds `st`, injecting Close (LRU eviction) and Parse as needed; their
  // replies are swallowed.
  void ensure_statement(const ClientStatement& st, std::string& out) {
    if (!server_->has_stmt(st.server_name)) {
      send_parse(st, "", out);
    }
  }

  // Parses `st` on the server under its server name, evicting the least recently used statement
  // with a Close when the server holds too many. `client_name` empty means pglane injected the
  // Parse for a Bind/Describe, so its reply is swallowed; otherwise it answers the client's Parse.
  void send_parse(const ClientStatement& st, std::string_view client_name, std::string& out) {
    if (auto victim = server_->add_stmt(st.server_name, cfg_.pool.max_prepared_statements)) {
      p::encode_close(out, 'S', *victim);
      Expect c;
      c.kind = 'C';
      c.swallow = true;
      c.evicted = *victim;
      expect_.push_back(std::move(c));
    }
    p::encode_parse(out, st.server_name, st.query, st.types);
    Expect e;
    e.kind = 'P';
    e.swallow = client_name.empty();
    e.server_stmt = st.server_name;
    e.client_stmt = std::string(client_name);
    expect_.push_back(std::move(e));
  }

  // Handles one whole Query/Parse/Bind/Describe/Close from the client.
  End on_client_message(char type, std::string_view whole, std::string_view body,
                        std::string& out) {
    if (skipping_) {
      // The server discards everything up to Sync after an error; so do we.
      out.append(whole);
      return End::kRunning;
    }
    p::Reader r(body);
    switch (type) {
      case 'Q': {
        std::string_view sql = r.cstring();
        if (routing_) {
          routing::Analysis a = analyze(sql);
          if (a.info->kind == routing::StatementInfo::Kind::kPglaneSetting) {
            session_hint_ = a.info->set_route;
            std::string reply;
            p::encode_command_complete(reply, "SET");
            push_local(std::move(reply), true);
            return End::kRunning;
          }
        }
        auto fx = session_effects(sql);
        if (fx.is_single_deallocate) {
          if (auto it = stmts_.find(fx.deallocate_name); it != stmts_.end()) {
            // A protocol-level statement (drivers deallocate them with SQL): only this client's
            // name goes away; the server keeps it for others. When no client uses it any more
            // and this server has it, the server deallocates it (the reply is the same).
            const std::string server_name = it->second.server_name;
            stmts_.erase(it);
            retry_ok_ = false;  // replaying would not find the name again
            if (server_->has_stmt(server_name) && !statement_owners().in_use(server_name)) {
              server_->forget_stmt(server_name);
              p::encode_query(out, "DEALLOCATE " + server_name);
              push('Q');
              expect_.back().evicted = server_name;  // still there if the DEALLOCATE fails
              return End::kRunning;
            }
            std::string reply;
            p::encode_command_complete(reply, "DEALLOCATE");
            push_local(std::move(reply), true);
            return End::kRunning;
          }
        }
        apply_effects(fx);
        push('Q');
        out.append(whole);
        return End::kRunning;
      }
      case 'P': {
        std::string_view name = r.cstring();
        std::string_view query = r.cstring();
        std::string_view types = r.rest();
        if (!r.ok()) {
          fail(p::sqlstate::kProtocolViolation, "invalid Parse message");
          return End::kClientViolation;
        }
        auto fx = session_effects(query);
        if (name.empty()) {
          if (fx.is_single_deallocate) {
            if (auto it = stmts_.find(fx.deallocate_name); it != stmts_.end()) {
              // DEALLOCATE of a protocol-level statement through the extended protocol (psycopg
              // does this): the server knows it by its pglane name. It leaves this server for
              // every client; others get it re-Parsed when they need it.
              // The statement may not be on this server (it is re-Parsed lazily): make sure it
              // is, so the DEALLOCATE succeeds as it would on a direct connection.
              ensure_statement(it->second, out);
              std::string server_name = it->second.server_name;
              stmts_.erase(it);
              retry_ok_ = false;
              server_->forget_stmt(server_name);
              p::encode_parse(out, "", "DEALLOCATE " + server_name, types);
              push('P');
              return End::kRunning;
            }
          }
          apply_effects(fx);
          push('P');
          out.append(whole);
          return End::kRunning;
        }
        ClientStatement st;
        st.query = std::string(query);
        st.types = std::string(types);
        st.server_name = server_name_for(query, types);
        st.claim = StatementClaim(st.server_name);
        st.fx = fx;
        if (routing_) {
          st.analysis = analyze(query);
        }
        if (server_->has_stmt(st.server_name)) {
          std::string reply;
          p::encode_parse_complete(reply);
          push_local(std::move(reply), false);
        } else {
          send_parse(st, name, out);
        }
        stmts_[std::string(name)] = std::move(st);
        return End::kRunning;
      }
      case 'B': {
        std::string_view portal = r.cstring();
        std::string_view stmt = r.cstring();
        std::string_view tail = r.rest();
        if (!r.ok()) {
          fail(p::sqlstate::kProtocolViolation, "invalid Bind message");
          return End::kClientViolation;
        }
        auto it = stmt.empty() ? stmts_.end() : stmts_.find(std::string(stmt));
        if (it == stmts_.end()) {
          push('B');
          out.append(whole);  // unnamed, or unknown: the server reports 26000 itself
          return End::kRunning;
        }
        ensure_statement(it->second, out);
        p::encode_bind(out, portal, it->second.server_name, tail);
        push('B');
        // Effects apply when the statement runs; a prepared DEALLOCATE ALL or DISCARD ALL also
        // clears stmts_, so `it` is not used after this.
        routing::SessionEffects fx = it->second.fx;
        apply_effects(fx);
        return End::kRunning;
      }
      case 'D': {
        char kind = static_cast<char>(r.u8());
        std::string_view name = r.cstring();
        if (kind == 'S' && !name.empty()) {
          if (auto it = stmts_.find(std::string(name)); it != stmts_.end()) {
            ensure_statement(it->second, out);
            p::encode_describe(out, 'S', it->second.server_name);
            push('D');
            return End::kRunning;
          }
        }
        push(kind == 'S' ? 'D' : 'd');
        out.append(whole);
        return End::kRunning;
      }
      case 'C': {
        char kind = static_cast<char>(r.u8());
        std::string_view name = r.cstring();
        if (kind == 'S' && !name.empty()) {
          // Closing a statement only forgets the client's name for it (closing a statement that
          // does not exist is not an error either, docs 55.7 Close).
          stmts_.erase(std::string(name));
          retry_ok_ = false;
          std::string reply;
          p::encode_close_complete(reply);
          push_local(std::move(reply), false);
          return End::kRunning;
        }
        push('C');
        out.append(whole);
        return End::kRunning;
      }
      default:
        out.append(whole);
        return End::kRunning;
    }
  }

  // `answers`: false when the bytes are only notices (a dying server's "terminating
  // connection" warning), which do not stop a read from being retried elsewhere.
  asio::awaitable<error_code> write_client(const std::vector<asio::const_buffer>& bufs,
                                           bool answers = true) {
    // Both relay directions may answer the client (local replies come from the client side);
    // writes must not interleave.
    while (client_busy_) {
      client_free_.expires_at(asio::steady_timer::time_point::max());
      co_await client_free_.async_wait(kUse);
    }
    if (client_broken_) {
      co_return asio::error::broken_pipe;
    }
    client_busy_ = true;
    if (answers) {
      retry_ok_ = false;  // the client has seen part of an answer: nothing can be re-run now
    }
    // If this coroutine is cancelled mid-write (the other relay direction ended), the client's
    // stream may hold half a message: later writes must fail rather than wait or corrupt it.
    struct Done {
      Session& s;
      bool finished = false;
      ~Done() {
        s.client_busy_ = false;
        s.client_free_.cancel();
        if (!finished) {
          s.client_broken_ = true;
        }
      }
    } done{*this};
    auto ec = co_await client_.write_all(bufs);
    done.finished = !ec;  // a failed or cancelled write (operation_aborted) may be half done
    co_return ec;
  }

  asio::awaitable<End> c2s_txn() {
    const std::size_t max_message = cfg_.proxy.max_message_size;
    std::string out;
    std::size_t need = 1;
    for (;;) {
      if (cin_.size() < need) {
        auto [ec, n] = co_await client_.read_some(cin_.prepare(need - cin_.size()));
        if (ec) {
          co_return End::kClientGone;
        }
        cin_.commit(n);
        last_client_activity_ = std::chrono::steady_clock::now();
      }
      std::string_view data = cin_.data();
      std::size_t pos = 0;
      End stop = End::kRunning;
      bool reroute = false;
      out.clear();
      need = 1;
      while (pos < data.size()) {
        if (c2s_remaining_ > 0) {
          std::size_t take = std::min(c2s_remaining_, data.size() - pos);
          out.append(data.substr(pos, take));
          pos += take;
          c2s_remaining_ -= take;
          continue;
        }
        auto h = p::decode_header(data.substr(pos), max_message);
        if (h.status == p::DecodeStatus::kNeedMore) {
          need = data.size() - pos + 1;
          break;
        }
        if (h.status == p::DecodeStatus::kViolation) {
          fail(p::sqlstate::kProtocolViolation,
               absl::StrCat("invalid message: ", std::string(h.error)));
          stop = End::kClientViolation;
          break;
        }
        const char type = h.frame.type;
        const std::size_t size = h.frame.size;
        if (type == 'X') {
          stop = End::kClientTerminated;
          break;
        }
        if ((type == 'Q' || type == 'F') && !since_sync_) {
          unit_checked_ = false;  // a unit of its own (unless it continues unsynced messages)
        }
        if (stay_here_) {
          unit_checked_ = true;  // found to belong to the open transaction on this server
          stay_here_ = false;
        }
        const bool begins_work = type == 'Q' || type == 'P' || type == 'B' || type == 'F';
        if (routing_ && begins_work && !unit_checked_ && !pinned_ && !skipping_) {
          // The first work of a new unit on an attached server: it stays here if this server
          // can run it, or if the server turns out to be inside a transaction (transactions
          // never split).
          Unit u = classify_unit(data.substr(pos));
          if (u.state == UnitState::kIncomplete) {
            need = data.size() - pos + 1;
            break;
          }
          if (!fits(u)) {
            reroute = true;
            break;
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
        const bool rewritable =
            type == 'Q' || type == 'P' || type == 'B' || type == 'D' || type == 'C';
        if (rewritable && size <= kMaxRewrite) {
          if (data.size() - pos < size) {
            need = size;
            break;
          }
          End e = on_client_message(type, data.substr(pos, size),
                                    data.substr(pos + p::kHeaderSize, size - p::kHeaderSize), out);
          if (e != End::kRunning) {
            stop = e;
            break;
          }
          pos += size;
          continue;
        }
        if (rewritable) {
          // Too large to hold for analysis: keep this client on its server from now on.
          pin("message too large to analyse");
        }
        if (!skipping_) {
          switch (type) {
            case 'Q':
            case 'P':
            case 'B':
            case 'C':
            case 'E':
            case 'F':
            case 'D':
            case 'S':
              push(type);
              break;
            default:
              break;
          }
        }
        if (type == 'S') {
          skipping_ = false;
        }
        std::size_t take = std::min(size, data.size() - pos);
        out.append(data.substr(pos, take));
        pos += take;
        c2s_remaining_ = size - take;
      }
      if (!local_now_.empty()) {
        std::string local = std::move(local_now_);
        local_now_.clear();
        // (Built outside the co_await: GCC 12 miscompiles braced lists inside co_await.)
        std::vector<asio::const_buffer> bufs{asio::buffer(local)};
        if (co_await write_client(bufs)) {
          co_return End::kClientGone;
        }
      }
      if (!out.empty()) {
        c2s_writing_ = true;
        struct Writing {
          bool& flag;
          ~Writing() { flag = false; }
        } writing{c2s_writing_};
        auto ec = co_await server_->stream.write_all(out);
        if (ec) {
          co_return End::kServerGone;
        }
      }
      if (retry_ok_) {
        attach_raw_.append(data.substr(0, pos));
        if (attach_raw_.size() > kMaxRetryBytes) {
          retry_ok_ = false;
          attach_raw_.clear();
        }
      }
      cin_.consume(pos);
      if (stop != End::kRunning) {
        co_return stop;
      }
      if (reroute) {
        // The next unit belongs on another server. Wait for this one's answers; then move if
        // the server is idle, or stay if the client left a transaction open here.
        while (!expect_.empty() || s2c_writing_ || s2c_remaining_ > 0) {
          drained_.expires_at(asio::steady_timer::time_point::max());
          co_await drained_.async_wait(kUse);
        }
        if (server_->status == 'I' && !since_sync_ && detachable()) {
          topology()->stats().reroutes.fetch_add(1, std::memory_order_relaxed);
          co_return End::kDetach;
        }
        stay_here_ = true;
        need = 1;
        continue;
      }
      if (detach_wanted_ && detachable()) {
        co_return End::kDetach;
      }
    }
  }

  // A failed or skipped Parse leaves no statement behind; a skipped eviction leaves it in place.
  void undo(const Expect& e) {
    if (!e.server_stmt.empty()) {
      server_->forget_stmt(e.server_stmt);
      if (!e.client_stmt.empty()) {
        if (auto it = stmts_.find(e.client_stmt);
            it != stmts_.end() && it->second.server_name == e.server_stmt) {
          stmts_.erase(it);
        }
      }
    }
    if (!e.evicted.empty()) {
      server_->add_stmt(e.evicted, std::numeric_limits<size_t>::max());
    }
  }

  asio::awaitable<End> s2c_txn() {
    Buffer& in = server_->in;
    std::size_t need = 1;
    std::vector<asio::const_buffer> gather;
    std::deque<std::string> owned;
    for (;;) {
      if (in.size() < need) {
        auto [ec, n] = co_await server_->stream.read_some(in.prepare(need - in.size()));
        if (ec) {
          co_return End::kServerGone;
        }
        in.commit(n);
      }
      std::string_view data = in.data();
      std::size_t pos = 0;
      need = 1;
      gather.clear();
      owned.clear();
      bool answers = false;  // anything but notices in this batch
      const char* run_end = nullptr;
      auto emit = [&](std::string_view bytes) {
        if (run_end == bytes.data() && !gather.empty()) {
          gather.back() =
              asio::const_buffer(gather.back().data(), gather.back().size() + bytes.size());
        } else {
          gather.emplace_back(bytes.data(), bytes.size());
        }
        run_end = bytes.data() + bytes.size();
      };
      auto emit_owned = [&](std::string s) {
        answers = true;
        owned.push_back(std::move(s));
        gather.emplace_back(owned.back().data(), owned.back().size());
        run_end = nullptr;
      };
      auto emit_locals = [&] {
        while (!expect_.empty() && expect_.front().kind == 'L') {
          std::string bytes = std::move(expect_.front().local);
          if (expect_.front().local_rfq) {
            p::encode_ready_for_query(bytes, server_->status);
          }
          expect_.pop_front();
          emit_owned(std::move(bytes));
        }
      };
      bool idle_after = false;
      while (pos < data.size()) {
        if (s2c_remaining_ > 0) {
          std::size_t take = std::min(s2c_remaining_, data.size() - pos);
          emit(data.substr(pos, take));
          pos += take;
          s2c_remaining_ -= take;
          continue;
        }
        auto h = p::decode_header(data.substr(pos), cfg_.proxy.max_message_size);
        if (h.status == p::DecodeStatus::kNeedMore) {
          need = data.size() - pos + 1;
          break;
        }
        if (h.status == p::DecodeStatus::kViolation) {
          co_return End::kServerViolation;
        }
        const char type = h.frame.type;
        const std::size_t size = h.frame.size;
        // Rows and COPY data stream; replies that complete a request are read whole so local
        // replies can follow them exactly.
        const bool streams = type == 'D' || type == 'd' || type == 'A' || type == 'N';
        // A retryable read's RowDescription is held back until its first row (or whatever
        // follows): PostgreSQL sends it before running the query, and a replayed query on
        // another node sends its own.
        const bool hold = type == 'T' && retry_ok_ && held_.empty() && !expect_.empty() &&
                          expect_.front().kind == 'Q' && attached_route_ == routing::Route::kReader;
        if (type != 'N' && !hold) {
          if (!held_.empty()) {
            emit_owned(std::exchange(held_, std::string()));
          }
          answers = true;
        }
        if (!streams) {
          if (data.size() - pos < size) {
            need = size;
            break;
          }
          std::string_view msg = data.substr(pos, size);
          std::string_view body = msg.substr(p::kHeaderSize);
          pos += size;
          if (hold) {
            held_.assign(msg.data(), msg.size());
            continue;
          }
          bool forward = true;
          if (type == 'S') {
            if (auto ps = p::parse_parameter_status(body)) {
              server_->set_param(ps->first, ps->second);
            }
          } else if (type == 'Z') {
            server_->status = body.empty() ? 'I' : body[0];
            if (!expect_.empty()) {
              expect_.pop_front();
            }
            emit(msg);
            emit_locals();
            forward = false;
            idle_after = server_->status == 'I';
          } else if (type == 'E' && expect_.empty()) {
            // Unsolicited: the server's notice that it is terminating. The loss is reported to
            // the client when it next needs the server (survive_server_loss).
            forward = false;
          } else if (!expect_.empty()) {
            Expect& head = expect_.front();
            if (type == 'E' && head.kind == 'Q' && !head.evicted.empty()) {
              undo(head);  // a rewritten DEALLOCATE failed (aborted transaction): still there
              head.evicted.clear();
            }
            if (type == 'E' && head.kind != 'Q' && head.kind != 'F' && head.kind != 'S') {
              // Extended-protocol error: the server now skips everything up to Sync.
              undo(head);
              expect_.pop_front();
              while (!expect_.empty() && expect_.front().kind != 'S') {
                undo(expect_.front());
                expect_.pop_front();
              }
              if (expect_.empty()) {
                skipping_ = true;
              }
            } else if (terminal_for(head.kind, type)) {
              if (type == '1' && !head.server_stmt.empty()) {
                known_statements().add(pool_key_ + head.server_stmt);
              }
              // Replies to requests pglane injected (Parse/Close of managed statements) are
              // swallowed; errors are not, since they explain the failure of the client's batch.
              const bool reply_is_clients = !head.swallow;
              expect_.pop_front();
              if (reply_is_clients) {
                emit(msg);
              }
              emit_locals();
              continue;
            }
          }
          if (forward) {
            emit(msg);
          }
          if (type != 'Z' && type != 'S' && type != 'N') {
            idle_after = false;
          }
          continue;
        }
        std::size_t take = std::min(size, data.size() - pos);
        emit(data.substr(pos, take));
        pos += take;
        s2c_remaining_ = size - take;
      }
      if (!gather.empty()) {
        s2c_writing_ = true;
        auto ec = co_await write_client(gather, answers);
        s2c_writing_ = false;
        if (ec) {
          co_return End::kClientGone;
        }
      }
      in.consume(pos);
      if (expect_.empty()) {
        drained_.cancel();  // c2s may be waiting to move the next unit to another server
      }
      if (idle_after && detachable()) {
        if (c2s_writing_) {
          detach_wanted_ = true;
        } else {
          co_return End::kDetach;
        }
      }
    }
  }

  // ---- Stage 5: one cleanup path for every ending ----

  asio::awaitable<void> finish(End end) {
    if (have_cancel_key_) {
      cancel_registry().unregister_client(cancel_key_);
    }
    if (end == End::kServerGone) {
      stats().server_lost.fetch_add(1, std::memory_order_relaxed);
      fail(p::sqlstate::kConnectionFailure, "server connection lost");
    } else if (end == End::kServerViolation) {
      fail(p::sqlstate::kConnectionFailure, "server broke the protocol; connection closed");
    } else if (end == End::kClientViolation) {
      stats().protocol_violations.fetch_add(1, std::memory_order_relaxed);
    } else if (end == End::kIdleTimeout) {
      stats().idle_timeouts.fetch_add(1, std::memory_order_relaxed);
    }
    // Tell the client why, unless a half-written message makes the stream unusable.
    const bool client_stream_clean = s2c_remaining_ == 0 && !s2c_writing_;
    if (!error_bytes_.empty() && client_stream_clean && end != End::kClientGone &&
        end != End::kTlsFailed) {
      co_await client_.write_all(error_bytes_);
    }
    client_.close();
    if (end != End::kCancelHandled && end != End::kClientGone) {
      PGLANE_LOG_DEBUG("session user=%s db=%s ended: %s", user_, database_, end_name(end));
    }
    // This client's statements stop claiming their server names before the server is handed
    // on, so the next client's attach already sees them unused.
    stmts_.clear();
    if (server_) {
      co_await return_server(end);
    }
  }

  // A server goes back to the pool only idle and reset; otherwise it is closed (and its running
  // query cancelled first, since PostgreSQL notices a closed socket only when it next does I/O).
  asio::awaitable<void> return_server(End end) {
    leave_endpoint();
    const bool txn = cfg_.pool.mode == conf::PoolMode::kTransaction;
    const bool server_ok = end != End::kServerGone && end != End::kServerViolation;
    const bool mid_message = c2s_remaining_ > 0 || s2c_remaining_ > 0 || !server_->in.empty();
    const bool busy = txn ? !expect_.empty() : pending_ > 0;
    if (server_ok && !mid_message && !busy) {
      bool ok = true;
      if (server_->status != 'I') {
        ok = co_await run_simple_query(*server_, "ROLLBACK");
      }
      if (!txn || pinned_) {
        // Session state of unknown extent (or state that pinned the client): wipe it all.
        if (ok) {
          ok = co_await run_simple_query(*server_, "DISCARD ALL");
        }
        server_->forget_all_stmts();
        server_->settings_hash = 0;
      } else if (client_settings_.dirty() || client_settings_.tainted()) {
        if (ok) {
          ok = co_await run_simple_query(*server_, "RESET ALL");
        }
        server_->settings_hash = 0;
      } else {
        server_->settings_hash = client_settings_.fingerprint();
      }
      if (ok && server_->status == 'I') {
        stats().server_resets.fetch_add(1, std::memory_order_relaxed);
        pools().release(pool_key_, worker_, std::move(server_));
        co_return;
      }
    } else if (server_ok && busy) {
      auto ex = co_await asio::this_coro::executor;
      asio::co_spawn(ex, send_cancel(server_->endpoint, server_->key), asio::detached);
    }
    pools().discard(pool_key_, std::move(server_));
  }

  void fail(std::string_view sqlstate, std::string_view message) {
    error_bytes_ = p::fatal_error(sqlstate, message);
  }

  Stream client_;
  Runtime& runtime_;
  std::shared_ptr<const Snapshot> snap_;  // config and users as of this session's start
  const conf::Config& cfg_;
  const int worker_;
  Buffer cin_;  // bytes from the client not yet relayed

  p::StartupParams startup_;
  std::string user_;
  std::string database_;

  std::unique_ptr<ServerConn> server_;
  std::string pool_key_;
  p::CancelKey cancel_key_;
  bool have_cancel_key_ = false;

  // Relay state.
  int pending_ = 0;                // ReadyForQuery messages the server still owes the client
  std::size_t c2s_remaining_ = 0;  // bytes of a client message still to forward
  std::size_t s2c_remaining_ = 0;  // bytes of a server message still to forward
  bool s2c_writing_ = false;       // a write to the client is in progress
  std::chrono::steady_clock::time_point last_client_activity_;

  std::string error_bytes_;  // ErrorResponse to send the client before closing

  // Transaction pooling state.
  std::deque<Expect> expect_;  // replies owed to the client, in order
  bool skipping_ = false;      // server discards messages until Sync after an error
  absl::flat_hash_map<std::string, ClientStatement> stmts_;  // client name -> statement
  absl::flat_hash_set<std::string> owed_;  // answered by pglane alone, not parsed on a server
  // Startup parameters and session settings that follow the client from server to server.
  txn::ClientSettings client_settings_;
  // The keys recovered from the client's SCRAM proof (SCRAM clients only), for servers that are
  // configured without a password.
  std::optional<p::ScramKeys> scram_keys_;
  const char* pinned_ = nullptr;    // why this client keeps its server, if it does
  bool detach_wanted_ = false;      // server side saw the end of a transaction during a write
  bool c2s_writing_ = false;        // a write to the server is in progress
  std::string local_now_;           // local replies to send before the next server write
  bool client_busy_ = false;        // a write to the client is in progress
  bool client_broken_ = false;      // a client write was abandoned half done
  asio::steady_timer client_free_;  // wakes writers waiting for client_busy_

  // Read/write splitting state (transaction pooling with routing.enabled).
  bool routing_ = false;                                     // splitting is on for this session
  EndpointState* attached_ = nullptr;                        // endpoint of server_ while attached
  routing::Route attached_route_ = routing::Route::kWriter;  // what server_ was chosen for
  bool attached_wrote_ = false;  // a unit on this attachment needed the writer
  bool unit_checked_ = false;    // the current unit was found to fit server_
  std::string memo_sql_;         // analyze() / session_effects() memo
  routing::Analysis memo_analysis_;
  std::optional<routing::SessionEffects> memo_fx_;
  bool stay_here_ = false;
  bool since_sync_ = false;
  bool neutral_unit_ =
      false;  // the attaching unit had no work in it  // extended messages went to server_ since
              // the last Sync      // the next unit stays: the client's transaction is open here
  asio::steady_timer drained_;                  // s2c wakes c2s when every reply is in
  bool fallback_ = false;                       // choose_target: a read goes to the writer
  bool ryw_fallback_ = false;                   // ... because of read-your-writes
  std::vector<const EndpointState*> excluded_;  // replicas that failed this unit
  std::vector<routing::Candidate> candidates_;  // scratch for choose_target
  // Read-your-writes: after a writing transaction, reads wait for a replica past rw_lsn_.
  bool rw_pending_ = false;
  std::chrono::steady_clock::time_point rw_at_;  // when the write was acknowledged
  uint64_t rw_lsn_ = 0;                          // a writer position at or after it (0: unknown)
  routing::Hint session_hint_ = routing::Hint::kNone;  // SET pglane.route
  bool scs_off_ = false;                 // standard_conforming_strings is off: no splitting
  bool server_default_scs_off_ = false;  // ... because the server's default is off
  std::shared_ptr<const routing::FunctionCatalog> catalog_;
  std::chrono::steady_clock::time_point catalog_at_;
  // Retrying a read once when its replica dies before the client saw any answer.
  bool retry_ok_ = false;  // nothing of this attachment has reached the client yet
  bool retried_ = false;   // this unit was already retried
  std::string attach_raw_;
  std::string held_;  // RowDescription held back while a read may still be retried  // the client
                      // bytes this attachment consumed, while retry_ok_
  std::string acquire_failed_sqlstate_;
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
  auto snap = runtime.snapshot();
  if (stats().clients_active.load(std::memory_order_relaxed) >
      snap->config->proxy.max_client_conn) {
    stats().clients_rejected_max_conn.fetch_add(1, std::memory_order_relaxed);
    Stream s(std::move(socket));
    co_await s.write_all(
        p::fatal_error(p::sqlstate::kTooManyConnections, "sorry, too many clients already"));
    s.close();
    co_return;
  }
  Session session(std::move(socket), runtime, worker);
  co_await session.run();
}

}  // namespace pglane::proxy
