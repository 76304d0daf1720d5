#include "proxy/session_end.h"

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
    case End::kServerViolation:
      return "server_protocol_violation";
    case End::kIdleTimeout:
      return "idle_timeout";
    case End::kDetach:
      return "detach";
  }
  return "?";
}

}  // namespace pglane::proxy
