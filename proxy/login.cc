#include "proxy/login.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "protocol/messages.h"
#include "proxy/cancel.h"
#include "proxy/log.h"
#include "proxy/server_conn.h"
#include "proxy/stats.h"

namespace pglane::proxy {

namespace p = protocol;

namespace {

// SASL and password messages are small (PostgreSQL allows 64 KiB, PG_MAX_AUTH_TOKEN_LENGTH).
constexpr std::size_t kMaxAuthMessage = 65535;

// True when `buf` is (the start of) a Terminate message: 'X' then the length 4.
bool is_terminate_prefix(std::string_view buf) {
  static constexpr std::string_view kTerminate("X\0\0\0\4", 5);
  return !buf.empty() && kTerminate.starts_with(buf.substr(0, kTerminate.size()));
}

}  // namespace

Login::Login(Stream& client, Buffer& in, const Snapshot& snap, Runtime& runtime)
    : client_(client), cin_(in), snap_(snap), runtime_(runtime) {}

void Login::fail(std::string_view sqlstate, std::string_view message) {
  error_bytes_ = p::fatal_error(sqlstate, message);
}

asio::awaitable<End> Login::run() {
  End e = co_await negotiate();
  if (e != End::kRunning) {
    co_return e;
  }
  co_return co_await authenticate();
}

// SSLRequest / GSSENCRequest / CancelRequest / StartupMessage (docs 55.2.1, 55.2.10-11).
asio::awaitable<End> Login::negotiate() {
  for (;;) {
    error_code ec;
    auto d = co_await read_startup(client_, cin_, ec);
    if (ec) {
      co_return End::kClientGone;
    }
    if (d.status == p::DecodeStatus::kViolation) {
      // A Terminate ('X', length 4) instead of a startup packet: a client giving up before it
      // began (node-postgres does this). PostgreSQL closes without a word, and so do we.
      if (is_terminate_prefix(cin_.data())) {
        co_return End::kClientGone;
      }
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
        const bool tls = f.code == p::kSslRequestCode && snap_.client_tls;
        char answer = tls ? 'S' : 'N';
        if (co_await client_.write_all(std::string_view(&answer, 1))) {
          co_return End::kClientGone;
        }
        if (tls) {
          if (auto hec = co_await client_.handshake_server(*snap_.client_tls)) {
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
    if (snap_.config->tls.mode == conf::ClientTlsMode::kRequire && !client_.is_tls()) {
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
asio::awaitable<std::optional<std::string>> Login::read_password_message() {
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

asio::awaitable<End> Login::authenticate() {
  const conf::UserEntry* entry = nullptr;
  if (auto it = snap_.users->find(user_); it != snap_.users->end()) {
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
    // Over TLS, SCRAM-SHA-256-PLUS binds the exchange to our certificate (B16), as
    // PostgreSQL offers it: a client with channel_binding=require accepts nothing less.
    p::ScramServer scram(std::move(*verifier), client_.tls_server_end_point(true));
    const std::vector<std::string> mechanisms = scram.mechanisms();
    p::encode_auth_sasl(out, std::vector<std::string_view>(mechanisms.begin(), mechanisms.end()));
    if (co_await client_.write_all(out)) {
      co_return End::kClientGone;
    }
    auto first = co_await read_password_message();
    if (!first) {
      co_return auth_io_end();
    }
    auto initial = p::parse_sasl_initial(*first);
    if (!initial ||
        std::find(mechanisms.begin(), mechanisms.end(), initial->mechanism) == mechanisms.end()) {
      fail(p::sqlstate::kProtocolViolation, "client selected an invalid SASL mechanism");
      co_return End::kClientViolation;
    }
    auto server_first = scram.handle_client_first(initial->mechanism, initial->data);
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
      scram_keys_ = scram.client_keys();
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

End Login::auth_io_end() {
  if (violation_in_auth_) {
    fail(p::sqlstate::kProtocolViolation, "expected a password message during authentication");
    return End::kClientViolation;
  }
  return End::kClientGone;
}

p::ScramVerifier Login::mock_verifier() const {
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

}  // namespace pglane::proxy
