#include "proxy/session.h"

#include <openssl/hmac.h>

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "protocol/messages.h"
#include "protocol/scram.h"
#include "proxy/cancel.h"
#include "proxy/log.h"
#include "proxy/net.h"
#include "proxy/pool.h"
#include "proxy/stats.h"

namespace pglane::proxy {

using namespace boost::asio::experimental::awaitable_operators;
namespace p = protocol;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kRelayBuffer = 32 * 1024;
// SASL and password messages are small (PostgreSQL allows 64 KiB, PG_MAX_AUTH_TOKEN_LENGTH).
constexpr std::size_t kMaxAuthMessage = 65535;
// Server messages the relay reads whole to track state (ReadyForQuery, ParameterStatus).
constexpr std::size_t kMaxInspected = 64 * 1024;

// Every way a session ends. finish() maps each to what the client is told.
enum class End {
  kRunning,
  kClientTerminated,  // client sent Terminate ('X')
  kClientGone,        // client socket closed or failed
  kClientViolation,   // client broke the protocol: 08P01
  kCancelHandled,     // the connection was a CancelRequest
  kTlsFailed,         // TLS handshake failed
  kTlsRequired,       // plaintext startup while tls.mode = require: 28000
  kAuthFailed,        // 28P01
  kAuthTimeout,       // login took longer than proxy.auth_timeout_ms: 08006
  kUnsupported,       // protocol version or feature we do not serve: 0A000
  kTooManyClients,    // proxy.max_client_conn reached: 53300
  kNoServer,          // could not get a server connection (pool timeout, server down)
  kServerGone,        // server connection lost mid-session: 08006
  kServerViolation,   // server broke the protocol
  kIdleTimeout,       // proxy.client_idle_timeout_ms: 57P05
  kShutdown,          // pglane is stopping: 57P01
};

const char* end_name(End e) {
  switch (e) {
    case End::kRunning:
      return "running";
    case End::kClientTerminated:
      return "client_terminated";
    case End::kClientGone:
      return "client_gone";
    case End::kClientViolation:
      return "client_protocol_violation";
    case End::kCancelHandled:
      return "cancel_request";
    case End::kTlsFailed:
      return "tls_failed";
    case End::kTlsRequired:
      return "tls_required";
    case End::kAuthFailed:
      return "auth_failed";
    case End::kAuthTimeout:
      return "auth_timeout";
    case End::kUnsupported:
      return "unsupported";
    case End::kTooManyClients:
      return "too_many_clients";
    case End::kNoServer:
      return "no_server";
    case End::kServerGone:
      return "server_gone";
    case End::kServerViolation:
      return "server_protocol_violation";
    case End::kIdleTimeout:
      return "idle_timeout";
    case End::kShutdown:
      return "shutdown";
  }
  return "?";
}

std::string quote_literal(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') {
      out += '\'';
    }
    out += c;
  }
  out += '\'';
  return out;
}

bool is_safe_guc_name(std::string_view name) {
  if (name.empty() || name.size() > 63) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Splits the startup "options" parameter the way the postmaster does (pg_split_opts: spaces
// separate, backslash escapes) and keeps "-c name=value" / "--name=value" settings.
bool parse_options(std::string_view opts, std::vector<std::pair<std::string, std::string>>& out) {
  std::vector<std::string> words;
  std::string cur;
  bool have = false;
  for (size_t i = 0; i < opts.size(); ++i) {
    char c = opts[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (have) {
        words.push_back(std::move(cur));
        cur.clear();
        have = false;
      }
      continue;
    }
    if (c == '\\' && i + 1 < opts.size()) {
      c = opts[++i];
    }
    cur += c;
    have = true;
  }
  if (have) {
    words.push_back(std::move(cur));
  }
  for (size_t i = 0; i < words.size(); ++i) {
    std::string_view setting;
    if (words[i] == "-c" && i + 1 < words.size()) {
      setting = words[++i];
    } else if (words[i].rfind("-c", 0) == 0 && words[i].size() > 2) {
      setting = std::string_view(words[i]).substr(2);
    } else if (words[i].rfind("--", 0) == 0) {
      setting = std::string_view(words[i]).substr(2);
    } else {
      return false;  // other postgres command-line switches are not supported
    }
    auto eq = setting.find('=');
    if (eq == std::string_view::npos) {
      return false;
    }
    std::string name(setting.substr(0, eq));
    for (auto& ch : name) {
      if (ch == '-') {
        ch = '_';
      }
    }
    out.emplace_back(std::move(name), std::string(setting.substr(eq + 1)));
  }
  return true;
}

class Session {
 public:
  Session(tcp::socket socket, Runtime& runtime, int worker)
      : client_(std::move(socket)),
        runtime_(runtime),
        snap_(runtime.snapshot()),
        cfg_(*snap_->config),
        worker_(worker),
        cin_(kRelayBuffer) {}

  asio::awaitable<void> run() {
    End end = co_await login_with_deadline();
    if (end == End::kRunning) {
      end = co_await attach_server();
    }
    if (end == End::kRunning) {
      end = co_await relay();
    }
    co_await finish(end);
  }

 private:
  // ---- Stage 1 and 2: TLS/startup and authentication, under proxy.auth_timeout_ms ----

  asio::awaitable<End> login_with_deadline() {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, std::chrono::milliseconds(cfg_.proxy.auth_timeout_ms));
    auto r = co_await (login() || timer.async_wait(kUse));
    if (r.index() == 1) {
      fail(p::sqlstate::kConnectionFailure, "authentication timed out");
      co_return End::kAuthTimeout;
    }
    co_return std::get<0>(r);
  }

  asio::awaitable<End> login() {
    End e = co_await negotiate();
    if (e != End::kRunning) {
      co_return e;
    }
    co_return co_await authenticate();
  }

  // SSLRequest / GSSENCRequest / CancelRequest / StartupMessage (docs 55.2.1, 55.2.10-11).
  asio::awaitable<End> negotiate() {
    for (;;) {
      error_code ec;
      auto d = co_await read_startup(client_, cin_, ec);
      if (ec) {
        co_return End::kClientGone;
      }
      if (d.status == p::DecodeStatus::kViolation) {
        fail(p::sqlstate::kProtocolViolation,
             absl::StrCat("invalid startup packet: ", std::string(d.error)));
        co_return End::kClientViolation;
      }
      const p::StartupFrame f = d.frame;
      const bool trailing = cin_.size() > f.size;
      switch (f.code) {
        case p::kSslRequestCode:
        case p::kGssEncRequestCode: {
          // Anything sent after the request and before our answer was sent in plaintext before
          // encryption started; interpreting it is CVE-2021-23214. Close without reading it.
          if (trailing || client_.is_tls()) {
            fail(p::sqlstate::kProtocolViolation,
                 client_.is_tls() ? "SSLRequest inside TLS"
                                  : "received unencrypted data after SSL request");
            co_return End::kClientViolation;
          }
          cin_.consume(f.size);
          const bool tls = f.code == p::kSslRequestCode && snap_->client_tls;
          char answer = tls ? 'S' : 'N';
          if (co_await client_.write_all(std::string_view(&answer, 1))) {
            co_return End::kClientGone;
          }
          if (tls) {
            if (auto hec = co_await client_.handshake_server(*snap_->client_tls)) {
              PGLANE_LOG_DEBUG("client TLS handshake failed: %s", hec.message());
              co_return End::kTlsFailed;
            }
          }
          continue;
        }
        case p::kCancelRequestCode: {
          auto key = p::parse_cancel(f.body);
          if (key) {
            if (auto target = cancel_registry().lookup(*key)) {
              co_await send_cancel(target->endpoint, target->server_key);
            } else {
              stats().cancels_unmatched.fetch_add(1, std::memory_order_relaxed);
            }
          }
          co_return End::kCancelHandled;
        }
        default:
          break;
      }
      const std::uint16_t major = f.code >> 16;
      const std::uint16_t minor = f.code & 0xffff;
      if (major != 3) {
        fail(p::sqlstate::kFeatureNotSupported,
             absl::StrCat("unsupported frontend protocol ", major, ".", minor,
                          ": server supports 3.0 to 3.0"));
        co_return End::kUnsupported;
      }
      auto params = p::parse_startup(f.code, f.body);
      cin_.consume(f.size);
      if (!params) {
        fail(p::sqlstate::kProtocolViolation, "invalid startup packet layout");
        co_return End::kClientViolation;
      }
      startup_ = std::move(*params);
      if (cfg_.tls.mode == conf::ClientTlsMode::kRequire && !client_.is_tls()) {
        fail(p::sqlstate::kInvalidAuthorization,
             "pglane requires TLS for all connections (tls.mode = \"require\")");
        co_return End::kTlsRequired;
      }
      // Newer minor versions and _pq_ protocol options get NegotiateProtocolVersion: we speak 3.0
      // without options, and the client carries on with that (docs 55.2.1).
      std::vector<std::string_view> unsupported;
      for (const auto& [k, v] : startup_.params) {
        if (k.rfind("_pq_.", 0) == 0) {
          unsupported.push_back(k);
        }
      }
      if (minor > 0 || !unsupported.empty()) {
        std::string out;
        p::encode_negotiate_protocol_version(out, 0, unsupported);
        if (co_await client_.write_all(out)) {
          co_return End::kClientGone;
        }
      }
      user_ = std::string(startup_.get("user"));
      database_ = std::string(startup_.get("database"));
      if (database_.empty()) {
        database_ = user_;
      }
      if (!startup_.get("replication").empty() && startup_.get("replication") != "false" &&
          startup_.get("replication") != "0" && startup_.get("replication") != "off") {
        fail(p::sqlstate::kFeatureNotSupported, "pglane does not proxy replication connections");
        co_return End::kUnsupported;
      }
      co_return End::kRunning;
    }
  }

  // Reads one password-phase message ('p'); anything else is a violation (a second
  // StartupMessage during SASL, for instance, cannot change the identity fixed at startup).
  asio::awaitable<std::optional<std::string>> read_password_message() {
    error_code ec;
    auto d = co_await read_frame(client_, cin_, kMaxAuthMessage, ec);
    if (ec) {
      co_return std::nullopt;
    }
    if (d.status != p::DecodeStatus::kMessage || d.frame.type != 'p') {
      violation_in_auth_ = true;
      co_return std::nullopt;
    }
    std::string body(d.frame.body);
    cin_.consume(d.frame.size);
    co_return body;
  }

  asio::awaitable<End> authenticate() {
    const conf::UserEntry* entry = nullptr;
    if (auto it = snap_->users->find(user_); it != snap_->users->end()) {
      entry = &it->second;
    }
    const auto method = entry ? entry->method : conf::AuthMethod::kScramSha256;
    bool ok = false;
    std::string out;
    if (method == conf::AuthMethod::kTrust) {
      ok = true;
    } else if (method == conf::AuthMethod::kMd5) {
      std::string salt = p::random_bytes(4);
      const auto* salt_bytes = reinterpret_cast<const std::uint8_t*>(salt.data());
      p::encode_auth_md5(out, salt_bytes);
      if (co_await client_.write_all(out)) {
        co_return End::kClientGone;
      }
      auto msg = co_await read_password_message();
      if (!msg) {
        co_return auth_io_end();
      }
      std::string_view given(*msg);
      if (!given.empty() && given.back() == '\0') {
        given.remove_suffix(1);
      }
      ok = p::constant_time_equal(given, p::md5_response_from_stored(entry->secret, salt_bytes));
    } else {
      std::optional<p::ScramVerifier> verifier;
      if (entry) {
        verifier = p::parse_scram_verifier(entry->secret);
      }
      // Unknown users (and unusable verifiers) run the same exchange against a mock verifier
      // so the wire shows nothing different until the final 28P01 (TESTING.md B14).
      const bool real = verifier.has_value();
      if (!real) {
        verifier = mock_verifier();
      }
      p::ScramServer scram(std::move(*verifier));
      p::encode_auth_sasl(out, {"SCRAM-SHA-256"});
      if (co_await client_.write_all(out)) {
        co_return End::kClientGone;
      }
      auto first = co_await read_password_message();
      if (!first) {
        co_return auth_io_end();
      }
      auto initial = p::parse_sasl_initial(*first);
      if (!initial || initial->mechanism != "SCRAM-SHA-256") {
        fail(p::sqlstate::kProtocolViolation, "client selected an invalid SASL mechanism");
        co_return End::kClientViolation;
      }
      auto server_first = scram.handle_client_first(initial->data);
      if (!server_first) {
        fail(p::sqlstate::kProtocolViolation, "malformed SCRAM message");
        co_return End::kClientViolation;
      }
      out.clear();
      p::encode_auth_sasl_continue(out, *server_first);
      if (co_await client_.write_all(out)) {
        co_return End::kClientGone;
      }
      auto final_msg = co_await read_password_message();
      if (!final_msg) {
        co_return auth_io_end();
      }
      auto server_final = scram.handle_client_final(*final_msg);
      ok = real && server_final.has_value();
      if (ok) {
        out.clear();
        p::encode_auth_sasl_final(out, *server_final);
        if (co_await client_.write_all(out)) {
          co_return End::kClientGone;
        }
      }
    }
    if (!ok) {
      stats().auth_failures.fetch_add(1, std::memory_order_relaxed);
      // One message for unknown users and wrong passwords alike, as PostgreSQL words it.
      fail(p::sqlstate::kInvalidPassword,
           absl::StrCat("password authentication failed for user \"", user_, "\""));
      co_return End::kAuthFailed;
    }
    co_return End::kRunning;
  }

  End auth_io_end() {
    if (violation_in_auth_) {
      fail(p::sqlstate::kProtocolViolation, "expected a password message during authentication");
      return End::kClientViolation;
    }
    return End::kClientGone;
  }

  p::ScramVerifier mock_verifier() const {
    // Deterministic per user so repeated probes see the same salt, as for a real user.
    unsigned char mac[32];
    unsigned int len = 0;
    const auto& secret = runtime_.mock_secret();
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(user_.data()), user_.size(), mac, &len);
    p::ScramVerifier v;
    v.iterations = 4096;
    v.salt.assign(reinterpret_cast<char*>(mac), 16);
    v.stored_key = p::random_bytes(32);
    v.server_key = p::random_bytes(32);
    return v;
  }

  // ---- Stage 3: a server connection for this client ----

  asio::awaitable<End> attach_server() {
    const auto& cred = cfg_.backend.credential_for(user_);
    ConnectRequest req;
    req.endpoint = cfg_.home_region().writer;
    req.database = database_;
    req.credential.user = cred.user.empty() ? user_ : cred.user;
    req.credential.password = cred.password;
    req.tls_mode = cfg_.backend.tls.mode;
    req.tls_ctx = snap_->server_tls.get();
    req.timeout = std::chrono::milliseconds(cfg_.backend.connect_timeout_ms);
    pool_key_ =
        absl::StrCat(database_, "\x1f", req.credential.user, "\x1f", req.endpoint.to_string());
    auto endpoint = req.endpoint;
    AcquireResult got = co_await pools().acquire(
        pool_key_, worker_, cfg_.pool.size, std::chrono::milliseconds(cfg_.pool.queue_timeout_ms),
        std::chrono::milliseconds(cfg_.pool.server_idle_timeout_ms), std::move(req));
    if (!got.conn) {
      if (!got.server_error.empty()) {
        error_bytes_ = std::move(got.server_error);
      } else {
        fail(got.sqlstate, got.message);
      }
      co_return End::kNoServer;
    }
    server_ = std::move(got.conn);
    // Startup parameters the client asked for are applied with SET, so its session looks like a
    // direct connection; DISCARD ALL at release returns the server to its defaults.
    std::vector<std::pair<std::string, std::string>> settings;
    for (const auto& [k, v] : startup_.params) {
      if (k == "user" || k == "database" || k == "replication" || k.rfind("_pq_.", 0) == 0) {
        continue;
      }
      if (k == "options") {
        if (!parse_options(v, settings)) {
          fail(p::sqlstate::kFeatureNotSupported,
               "only -c name=value settings are supported in the options parameter");
          co_return End::kUnsupported;
        }
        continue;
      }
      settings.emplace_back(k, v);
    }
    std::string sql;
    for (const auto& [k, v] : settings) {
      if (!is_safe_guc_name(k)) {
        fail(p::sqlstate::kProtocolViolation, absl::StrCat("invalid parameter name \"", k, "\""));
        co_return End::kClientViolation;
      }
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
    }
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
    if (server_) {
      co_await return_server(end);
    }
  }

  // A server goes back to the pool only idle and reset; otherwise it is closed (and its running
  // query cancelled first, since PostgreSQL notices a closed socket only when it next does I/O).
  asio::awaitable<void> return_server(End end) {
    const bool server_ok = end != End::kServerGone && end != End::kServerViolation;
    const bool mid_message = c2s_remaining_ > 0 || s2c_remaining_ > 0 || !server_->in.empty();
    if (server_ok && !mid_message && pending_ == 0) {
      bool ok = true;
      if (server_->status != 'I') {
        ok = co_await run_simple_query(*server_, "ROLLBACK");
      }
      ok = ok && co_await run_simple_query(*server_, "DISCARD ALL");
      if (ok && server_->status == 'I') {
        stats().server_resets.fetch_add(1, std::memory_order_relaxed);
        pools().release(pool_key_, worker_, std::move(server_));
        co_return;
      }
    } else if (server_ok && pending_ > 0) {
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
  bool violation_in_auth_ = false;

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
