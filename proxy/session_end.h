// Every way a client session can end, named once. Session::finish() maps each to what the client
// is told (docs/internals.md, "How sessions end").
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace pglane::proxy {

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
  kServerClosed,      // the server ended the session with a FATAL the client already has
  kServerViolation,   // server broke the protocol
  kIdleTimeout,       // proxy.client_idle_timeout_ms: 57P05
  kShutdown,          // asked to end (shutdown, KILL): 57P01
  kDetach,            // transaction mode: transaction over, server goes back (not an ending)
};

const char* end_name(End e);

// What finish() does for an ending: the SQLSTATE and message the client is sent when the part
// that ended the session said nothing more specific, and the counter
// in stats() it bumps (null: none, or counted where it happened).
struct EndingInfo {
  std::string_view sqlstate;  // empty: nothing to send
  std::string_view message;
  std::atomic<int64_t>* counter = nullptr;
};
EndingInfo ending_info(End e);

}  // namespace pglane::proxy
