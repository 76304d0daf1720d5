// Stages 1 and 2 of a client session (docs/internals.md, "Session lifecycle"): the untyped
// startup packets (SSLRequest and the TLS handshake, GSSENCRequest, CancelRequest,
// StartupMessage) and then authentication against the users file (SCRAM-SHA-256 with channel
// binding over TLS, md5 or trust). The session runs it under proxy.auth_timeout_ms and takes
// over what it learnt.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "protocol/messages.h"
#include "protocol/scram.h"
#include "proxy/net.h"
#include "proxy/runtime.h"
#include "proxy/session_end.h"

namespace pglane::proxy {

class Login {
 public:
  // `client` and `in` (its read buffer) belong to the session and outlive this object.
  Login(Stream& client, Buffer& in, const Snapshot& snap, Runtime& runtime);

  // Negotiates and authenticates. End::kRunning: the client is in, as user() on database();
  // anything else ends the session, and error_bytes() is what to tell the client (may be
  // empty, e.g. when the client went away or asked to cancel).
  asio::awaitable<End> run();

  protocol::StartupParams& startup() { return startup_; }
  const std::string& user() const { return user_; }
  const std::string& database() const { return database_; }
  // The keys of a successful SCRAM proof, for pass-through logins to servers.
  std::optional<protocol::ScramKeys>& scram_keys() { return scram_keys_; }
  std::string& error_bytes() { return error_bytes_; }

 private:
  // SSLRequest / GSSENCRequest / CancelRequest / StartupMessage (docs 55.2.1, 55.2.10-11).
  asio::awaitable<End> negotiate();
  asio::awaitable<End> authenticate();
  // One password-phase message ('p'); anything else is a violation.
  asio::awaitable<std::optional<std::string>> read_password_message();
  End auth_io_end();
  // The verifier unknown users are checked against, so the wire looks the same (B14).
  protocol::ScramVerifier mock_verifier() const;
  void fail(std::string_view sqlstate, std::string_view message);

  Stream& client_;
  Buffer& cin_;
  const Snapshot& snap_;
  Runtime& runtime_;
  protocol::StartupParams startup_;
  std::string user_;
  std::string database_;
  std::optional<protocol::ScramKeys> scram_keys_;
  std::string error_bytes_;
  bool violation_in_auth_ = false;
};

}  // namespace pglane::proxy
