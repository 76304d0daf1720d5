// A logged-in connection from pglane to one PostgreSQL server, and the coroutine that opens it:
// TCP connect, optional TLS (SSLRequest, docs 55.2.10), StartupMessage, authentication (SCRAM,
// md5 or cleartext) and the ParameterStatus/BackendKeyData burst up to the first ReadyForQuery.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "protocol/messages.h"
#include "protocol/scram.h"
#include "proxy/net.h"
#include "txn/statements.h"

namespace pglane::proxy {

struct ServerConn {
  explicit ServerConn(tcp::socket s) : stream(std::move(s)), in(16 * 1024) {}
  ~ServerConn();

  Stream stream;
  Buffer in;                // bytes read from the server, not yet relayed
  conf::Endpoint endpoint;  // where it is connected
  protocol::CancelKey key;  // the server's own BackendKeyData
  // ParameterStatus values as the server last reported them (name -> value), in report order.
  std::vector<std::pair<std::string, std::string>> params;
  char status = 'I';  // last ReadyForQuery status: I idle, T in transaction, E failed
  std::chrono::steady_clock::time_point created;
  std::chrono::steady_clock::time_point last_used;
  // PoolManager's retirement count when this connection was last found not retired (or was
  // opened): equal to the current count, no retirement can concern it (pool.cc).
  uint64_t retirements_seen = 0;

  // Transaction pooling: the named prepared statements (pglane's server-side names) this
  // connection holds, and the fingerprint of the session settings last applied to it (0 = the
  // server's defaults).
  txn::ServerStatements stmts;
  uint64_t settings_hash = 0;

  void set_param(std::string_view name, std::string_view value);
  std::string_view param(std::string_view name) const;
  // True when the socket shows EOF, an error or unsolicited bytes (an idle server sends nothing
  // unless it is going away), so the connection must not be handed out.
  bool looks_dead();
};

struct ConnectRequest {
  conf::Endpoint endpoint;
  std::string database;
  conf::BackendCredential credential;  // user must be non-empty here
  // Used when credential.password is empty and the server asks for SCRAM: the client's keys
  // (SCRAM pass-through). The server must store the verifier they came from.
  std::optional<protocol::ScramKeys> scram_keys;
  // Further StartupMessage parameters (session pooling passes the client's own, so RESET ALL
  // on the server returns to exactly what the client asked for).
  std::vector<std::pair<std::string, std::string>> extra_params;
  conf::ServerTlsMode tls_mode = conf::ServerTlsMode::kPrefer;
  boost::asio::ssl::context* tls_ctx = nullptr;  // required unless tls_mode is disable
  std::chrono::milliseconds timeout{5000};
};

struct ConnectResult {
  std::unique_ptr<ServerConn> conn;
  // On failure: the SQLSTATE and message to give the client. When the server itself refused
  // (e.g. 3D000 unknown database), `server_error` holds its whole ErrorResponse to forward.
  std::string sqlstate;
  std::string message;
  std::string server_error;
};

asio::awaitable<ConnectResult> connect_server(ConnectRequest req);

// Runs `sql` with the simple protocol and reads to ReadyForQuery, updating params and status.
// Returns false on I/O errors, protocol violations or when the server reported an error;
// `error_out` (if given) receives the ErrorResponse frame bytes of the first error.
asio::awaitable<bool> run_simple_query(ServerConn& conn, std::string_view sql,
                                       std::string* error_out = nullptr);

// Sends pre-encoded extended-protocol `messages` that contain `syncs` Syncs and reads the
// replies up to the last ReadyForQuery; `replies` (if given) gets the type byte of each reply
// other than ReadyForQuery, ParameterStatus and notices ('1', '3', 'E', ...). False only on I/O
// or framing failures: an ErrorResponse is a reply like any other.
asio::awaitable<bool> run_extended(ServerConn& conn, std::string_view messages, int syncs,
                                   std::string* replies = nullptr);

// Runs `sql` (one statement returning text columns) and collects its rows.
asio::awaitable<bool> run_query_rows(ServerConn& conn, std::string_view sql,
                                     std::vector<std::vector<std::string>>& rows);

// Sends a CancelRequest for `key` to `endpoint` over a fresh TCP connection (docs 55.2.8).
asio::awaitable<void> send_cancel(conf::Endpoint endpoint, protocol::CancelKey key);

}  // namespace pglane::proxy
