#include "proxy/session_end.h"

#include "protocol/messages.h"
#include "proxy/stats.h"

namespace pglane::proxy {

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
    case End::kServerClosed:
      return "server_closed";
    case End::kServerViolation:
      return "server_protocol_violation";
    case End::kIdleTimeout:
      return "idle_timeout";
    case End::kShutdown:
      return "shutdown";
    case End::kDetach:
      return "detach";
  }
  return "?";
}

EndingInfo ending_info(End e) {
  namespace s = protocol::sqlstate;
  switch (e) {
    case End::kClientViolation:
      return {s::kProtocolViolation, "invalid message", &stats().protocol_violations};
    case End::kAuthTimeout:
      return {s::kConnectionFailure, "authentication timed out", nullptr};
    case End::kTooManyClients:
      return {s::kTooManyConnections, "sorry, too many clients already",
              &stats().clients_rejected_max_conn};
    case End::kServerGone:
      return {s::kConnectionFailure, "server connection lost", &stats().server_lost};
    case End::kServerClosed:
      return {{}, {}, &stats().server_lost};
    case End::kServerViolation:
      return {s::kConnectionFailure, "server broke the protocol; connection closed", nullptr};
    case End::kIdleTimeout:
      return {s::kIdleSessionTimeout, "terminating connection due to idle timeout",
              &stats().idle_timeouts};
    case End::kShutdown:
      return {s::kAdminShutdown, "terminating connection due to administrator command",
              &stats().sessions_shut_down};
    default:
      return {};
  }
}

}  // namespace pglane::proxy
