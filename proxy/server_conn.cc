#include "proxy/server_conn.h"

#include <poll.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "protocol/scram.h"
#include "proxy/log.h"
#include "proxy/stats.h"

namespace pglane::proxy {

using namespace boost::asio::experimental::awaitable_operators;
namespace {
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
// Authentication messages from a server are small; anything larger is a misbehaving server.
constexpr std::size_t kMaxStartupMessage = 64 * 1024;
}  // namespace

ServerConn::~ServerConn() {
  stats().server_conns_open.fetch_sub(1, std::memory_order_relaxed);
}

void ServerConn::set_param(std::string_view name, std::string_view value) {
  for (auto& [k, v] : params) {
    if (k == name) {
      v.assign(value);
      return;
    }
  }
  params.emplace_back(std::string(name), std::string(value));
}

std::string_view ServerConn::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

bool ServerConn::looks_dead() {
  if (!in.empty() || stream.tls_holds_bytes()) {
    return true;  // bytes from an idle server: a FATAL notice, or worse
  }
  pollfd pfd{stream.socket().native_handle(), POLLIN, 0};
  int r = ::poll(&pfd, 1, 0);
  return r != 0;  // readable (EOF, FATAL notice), error, or poll failure
}

namespace {

ConnectResult fail(std::string sqlstate, std::string message) {
  ConnectResult r;
  r.sqlstate = std::move(sqlstate);
  r.message = std::move(message);
  return r;
}

// A login to a server that pglane's configuration cannot make: the operator gets the details
// (which server, what to change) in the log; the client gets a plain 28P01, as for a wrong
// password, and learns nothing about the servers behind pglane.
ConnectResult credential_failure(const ConnectRequest& req, const std::string& detail) {
  PGLANE_LOG_WARN("cannot log in to server %s as \"%s\": %s", req.endpoint.to_string(),
                  req.credential.user, detail);
  return fail(
      std::string(protocol::sqlstate::kInvalidPassword),
      absl::StrCat("pglane could not log in to the server as user \"", req.credential.user, "\""));
}

// The login exchange after TCP (and TLS) are up. Returns an empty result on success.
asio::awaitable<ConnectResult> login(ServerConn& conn, const ConnectRequest& req) {
  namespace p = protocol;
  std::string out;
  std::vector<std::pair<std::string, std::string>> params = {{"user", req.credential.user},
                                                             {"database", req.database}};
  params.insert(params.end(), req.extra_params.begin(), req.extra_params.end());
  p::encode_startup(out, params);
  if (auto ec = co_await conn.stream.write_all(out)) {
    co_return fail(std::string(p::sqlstate::kConnectionFailure),
                   absl::StrCat("server ", req.endpoint.to_string(), ": ", ec.message()));
  }
  std::unique_ptr<p::ScramClient> scram;
  for (;;) {
    error_code ec;
    auto d = co_await read_frame(conn.stream, conn.in, kMaxStartupMessage, ec);
    if (ec) {
      co_return fail(std::string(p::sqlstate::kConnectionFailure),
                     absl::StrCat("server ", req.endpoint.to_string(),
                                  " closed the connection during login: ", ec.message()));
    }
    if (d.status == p::DecodeStatus::kViolation) {
      co_return fail(std::string(p::sqlstate::kProtocolViolation),
                     absl::StrCat("server ", req.endpoint.to_string(),
                                  " broke the protocol during login: ", std::string(d.error)));
    }
    const p::Frame f = d.frame;
    std::string reply;
    bool done = false;
    switch (f.type) {
      case 'R': {
        auto auth = p::parse_auth(f.body);
        if (!auth) {
          co_return fail(std::string(p::sqlstate::kProtocolViolation),
                         "malformed authentication request from server");
        }
        if ((auth->code == 3 || auth->code == 5) && req.credential.password.empty()) {
          co_return credential_failure(
              req, absl::StrCat("the server asks for ", auth->code == 3 ? "a cleartext" : "an md5",
                                " password and pglane has none (SCRAM pass-through needs "
                                "scram-sha-256 on the server, or give the user a password)"));
        }
        switch (auth->code) {
          case 0:
            break;
          case 3:
            p::encode_password(reply, req.credential.password);
            break;
          case 5: {
            const auto* salt = reinterpret_cast<const std::uint8_t*>(auth->data.data());
            p::encode_password(reply, p::md5_password_response(req.credential.password,
                                                               req.credential.user, salt));
            break;
          }
          case 10: {
            // The mechanism list is NUL-separated. Over TLS, SCRAM-SHA-256-PLUS binds the login
            // to the server's certificate, so a man in the middle cannot relay it.
            std::string_view list = auth->data;
            bool offered = false;
            bool offered_plus = false;
            while (!list.empty()) {
              auto nul = list.find('\0');
              auto mech = list.substr(0, nul);
              offered |= mech == "SCRAM-SHA-256";
              offered_plus |= mech == "SCRAM-SHA-256-PLUS";
              if (nul == std::string_view::npos) {
                break;
              }
              list.remove_prefix(nul + 1);
            }
            const std::string binding =
                offered_plus ? conn.stream.tls_server_end_point(false) : std::string();
            if (!offered && binding.empty()) {
              co_return fail(std::string(p::sqlstate::kFeatureNotSupported),
                             "server offers no SASL mechanism pglane supports");
            }
            if (!req.credential.password.empty()) {
              scram = std::make_unique<p::ScramClient>(req.credential.password);
            } else if (req.scram_keys) {
              scram = std::make_unique<p::ScramClient>(*req.scram_keys);
            } else {
              co_return credential_failure(
                  req,
                  "no password configured, and no SCRAM keys to pass through (the client "
                  "did not log in with SCRAM, or logs in as another user)");
            }
            if (!binding.empty()) {
              scram->set_channel_binding(binding);
            }
            p::encode_sasl_initial(reply, binding.empty() ? "SCRAM-SHA-256" : "SCRAM-SHA-256-PLUS",
                                   scram->client_first());
            break;
          }
          case 11: {
            std::optional<std::string> final_msg;
            if (scram) {
              final_msg = scram->handle_server_first(auth->data);
            }
            if (!final_msg && scram && scram->keys_mismatch()) {
              co_return credential_failure(
                  req,
                  "SCRAM pass-through failed: the server stores another verifier (salt or "
                  "iteration count) than pglane's users file; copy its "
                  "pg_authid.rolpassword into the users file");
            }
            if (!final_msg) {
              co_return fail(std::string(p::sqlstate::kProtocolViolation),
                             "server sent an invalid SCRAM challenge");
            }
            p::encode_sasl_response(reply, *final_msg);
            break;
          }
          case 12:
            if (!scram || !scram->verify_server_final(auth->data)) {
              co_return fail(std::string(p::sqlstate::kInvalidPassword),
                             "server's SCRAM signature did not verify");
            }
            break;
          default:
            co_return fail(
                std::string(p::sqlstate::kFeatureNotSupported),
                absl::StrCat("server requested unsupported authentication method ", auth->code));
        }
        break;
      }
      case 'S':
        if (auto ps = p::parse_parameter_status(f.body)) {
          conn.set_param(ps->first, ps->second);
        }
        break;
      case 'K': {
        p::Reader r(f.body);
        conn.key.pid = r.i32();
        conn.key.secret = r.i32();
        break;
      }
      case 'Z':
        conn.status = f.body.empty() ? 'I' : f.body[0];
        done = true;
        break;
      case 'E': {
        ConnectResult r;
        auto ev = p::parse_error(f.body);
        r.sqlstate = ev && !ev->sqlstate.empty() ? std::string(ev->sqlstate)
                                                 : std::string(p::sqlstate::kConnectionFailure);
        r.message = ev ? std::string(ev->message) : "server refused the connection";
        r.server_error.assign(conn.in.data().substr(0, f.size));
        co_return r;
      }
      case 'N':
      case 'v':  // NegotiateProtocolVersion: we asked for 3.0 with no options; nothing to adapt.
        break;
      default:
        co_return fail(std::string(p::sqlstate::kProtocolViolation),
                       absl::StrCat("unexpected message '", std::string(1, f.type),
                                    "' from server during login"));
    }
    conn.in.consume(f.size);
    if (!reply.empty()) {
      if (auto wec = co_await conn.stream.write_all(reply)) {
        co_return fail(std::string(p::sqlstate::kConnectionFailure), wec.message());
      }
    }
    if (done) {
      co_return ConnectResult{};
    }
  }
}

asio::awaitable<ConnectResult> connect_and_login(ConnectRequest req) {
  namespace p = protocol;
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, results] =
      co_await resolver.async_resolve(req.endpoint.host, std::to_string(req.endpoint.port), kUse);
  if (rec) {
    co_return fail(std::string(p::sqlstate::kConnectionFailure),
                   absl::StrCat("cannot resolve ", req.endpoint.host, ": ", rec.message()));
  }
  tcp::socket sock(ex);
  auto [cec, ep] = co_await asio::async_connect(sock, results, kUse);
  if (cec) {
    co_return fail(
        std::string(p::sqlstate::kConnectionFailure),
        absl::StrCat("cannot connect to server ", req.endpoint.to_string(), ": ", cec.message()));
  }
  sock.set_option(tcp::no_delay(true));
  stats().server_conns_open.fetch_add(1, std::memory_order_relaxed);
  auto conn = std::make_unique<ServerConn>(std::move(sock));
  conn->endpoint = req.endpoint;
  if (req.tls_mode != conf::ServerTlsMode::kDisable) {
    std::string ssl_request;
    p::encode_ssl_request(ssl_request);
    if (auto ec = co_await conn->stream.write_all(ssl_request)) {
      co_return fail(std::string(p::sqlstate::kConnectionFailure), ec.message());
    }
    char answer = 0;
    auto [ec, n] = co_await asio::async_read(conn->stream.socket(), asio::buffer(&answer, 1), kUse);
    if (ec) {
      co_return fail(std::string(p::sqlstate::kConnectionFailure), ec.message());
    }
    if (answer == 'S') {
      // Anything the server sent after 'S' and before its TLS records would be fed to the
      // handshake as garbage and fail it; nothing is interpreted in plaintext.
      bool verify_name = req.tls_mode == conf::ServerTlsMode::kVerifyFull;
      if (auto hec = co_await conn->stream.handshake_client(*req.tls_ctx, req.endpoint.host,
                                                            verify_name)) {
        co_return fail(std::string(p::sqlstate::kConnectionFailure),
                       absl::StrCat("TLS handshake with server ", req.endpoint.to_string(),
                                    " failed: ", hec.message()));
      }
    } else if (answer == 'N') {
      if (req.tls_mode != conf::ServerTlsMode::kPrefer) {
        co_return fail(std::string(p::sqlstate::kConnectionFailure),
                       absl::StrCat("server ", req.endpoint.to_string(),
                                    " does not support TLS, and backend.tls.mode requires it"));
      }
    } else {
      co_return fail(std::string(p::sqlstate::kProtocolViolation),
                     "server answered SSLRequest with neither S nor N");
    }
  }
  ConnectResult r = co_await login(*conn, req);
  if (r.sqlstate.empty()) {
    conn->created = conn->last_used = std::chrono::steady_clock::now();
    r.conn = std::move(conn);
  }
  co_return r;
}

}  // namespace

asio::awaitable<ConnectResult> connect_server(ConnectRequest req) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, req.timeout);
  auto endpoint = req.endpoint.to_string();
  auto result = co_await (connect_and_login(std::move(req)) ||
                          timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  ConnectResult r;
  if (result.index() == 0) {
    r = std::move(std::get<0>(result));
  } else {
    r = fail(std::string(protocol::sqlstate::kConnectionFailure),
             absl::StrCat("timed out connecting to server ", endpoint));
  }
  if (r.conn) {
    stats().server_connects.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats().server_connect_failures.fetch_add(1, std::memory_order_relaxed);
    PGLANE_LOG_WARN("server %s: %s", endpoint, r.message);
  }
  co_return r;
}

namespace {

// Runs `sql` with the simple protocol to ReadyForQuery, keeping params and status current.
// Collects DataRows into `rows` and the first ErrorResponse into `error_out` when given.
asio::awaitable<bool> run_query(ServerConn& conn, std::string_view sql, std::string* error_out,
                                std::vector<std::vector<std::string>>* rows) {
  namespace p = protocol;
  std::string out;
  p::encode_query(out, sql);
  if (co_await conn.stream.write_all(out)) {
    co_return false;
  }
  bool ok = true;
  for (;;) {
    error_code ec;
    auto d = co_await read_frame(conn.stream, conn.in, p::kDefaultMaxMessage, ec);
    if (ec || d.status != p::DecodeStatus::kMessage) {
      co_return false;
    }
    const p::Frame f = d.frame;
    if (f.type == 'E') {
      if (ok && error_out) {
        error_out->assign(conn.in.data().substr(0, f.size));
      }
      ok = false;
    } else if (f.type == 'D' && rows) {
      p::Reader r(f.body);
      int n = r.i16();
      std::vector<std::string> row;
      for (int i = 0; i < n && r.ok(); ++i) {
        int len = r.i32();
        row.emplace_back(len < 0 ? std::string_view() : r.bytes(static_cast<size_t>(len)));
      }
      if (r.ok()) {
        rows->push_back(std::move(row));
      }
    } else if (f.type == 'S') {
      if (auto ps = p::parse_parameter_status(f.body)) {
        conn.set_param(ps->first, ps->second);
      }
    } else if (f.type == 'Z') {
      conn.status = f.body.empty() ? 'I' : f.body[0];
      conn.in.consume(f.size);
      co_return ok;
    }
    conn.in.consume(f.size);
  }
}

}  // namespace

asio::awaitable<bool> run_extended(ServerConn& conn, std::string_view messages, int syncs,
                                   std::string* replies) {
  namespace p = protocol;
  if (co_await conn.stream.write_all(messages)) {
    co_return false;
  }
  while (syncs > 0) {
    error_code ec;
    auto d = co_await read_frame(conn.stream, conn.in, p::kDefaultMaxMessage, ec);
    if (ec || d.status != p::DecodeStatus::kMessage) {
      co_return false;
    }
    const p::Frame f = d.frame;
    if (f.type == 'Z') {
      conn.status = f.body.empty() ? 'I' : f.body[0];
      --syncs;
    } else if (f.type == 'S') {
      if (auto ps = p::parse_parameter_status(f.body)) {
        conn.set_param(ps->first, ps->second);
      }
    } else if (f.type != 'N' && replies != nullptr) {
      replies->push_back(f.type);
    }
    conn.in.consume(f.size);
  }
  co_return true;
}

asio::awaitable<bool> run_simple_query(ServerConn& conn, std::string_view sql,
                                       std::string* error_out) {
  co_return co_await run_query(conn, sql, error_out, nullptr);
}

asio::awaitable<bool> run_query_rows(ServerConn& conn, std::string_view sql,
                                     std::vector<std::vector<std::string>>& rows) {
  co_return co_await run_query(conn, sql, nullptr, &rows);
}

asio::awaitable<void> send_cancel(conf::Endpoint endpoint, protocol::CancelKey key) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, results] =
      co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), kUse);
  if (rec) {
    co_return;
  }
  tcp::socket sock(ex);
  asio::steady_timer timer(ex, std::chrono::seconds(5));
  auto r = co_await (asio::async_connect(sock, results, kUse) ||
                     timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (r.index() != 0 || std::get<0>(std::get<0>(r))) {
    co_return;
  }
  std::string out;
  protocol::encode_cancel_request(out, key);
  Stream s(std::move(sock));
  co_await s.write_all(out);
  // The server closes the connection without a reply once it has read the request; wait for that
  // so the cancel is delivered before we return.
  char byte;
  timer.expires_after(std::chrono::seconds(2));
  co_await (s.socket().async_read_some(asio::buffer(&byte, 1), kUse) ||
            timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  stats().cancels_forwarded.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace pglane::proxy
