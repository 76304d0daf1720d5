// A client's hold on one server connection: taken from the pool (which opens one if needed),
// brought to the client's settings and statements, pointed at by the client's cancel key, and
// given back idle and reset, or closed. Transaction pooling takes and gives back one per
// transaction; session pooling one per session.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "protocol/messages.h"
#include "protocol/scram.h"
#include "proxy/client.h"
#include "proxy/runtime.h"
#include "proxy/server_conn.h"
#include "proxy/session_end.h"
#include "proxy/topology.h"
#include "txn/conversation.h"

namespace pglane::proxy {

// Who the client is, for servers.
struct Identity {
  std::string user;
  std::string database;
  // The keys recovered from the client's SCRAM proof (SCRAM clients only), for servers that are
  // configured without a password.
  std::optional<protocol::ScramKeys> scram_keys;
};

class ServerLease {
 public:
  ServerLease(Client& client, const Snapshot& snap, int worker)
      : client_(client), snap_(snap), cfg_(*snap.config), worker_(worker) {}
  ~ServerLease() { untrack(); }
  ServerLease(const ServerLease&) = delete;
  ServerLease& operator=(const ServerLease&) = delete;

  // Shuts down the socket of every server connection leased to a client now whose endpoint is
  // `endpoint` (it lost the writer role: a hung writer would keep them waiting on TCP for
  // minutes). Their sessions see the server fail at once: 08006/08007, then the close. Any
  // thread.
  static void cut(const conf::Endpoint& endpoint);

  void set_identity(Identity who) { who_ = std::move(who); }
  const Identity& identity() const { return who_; }
  void set_cancel_key(protocol::CancelKey key) { cancel_key_ = key; }

  ServerConn* get() const { return server_.get(); }
  ServerConn* operator->() const { return server_.get(); }
  explicit operator bool() const { return server_ != nullptr; }

  // Takes a server connection to `endpoint`, or with null to the writer: the one the topology
  // names now, waiting up to health.failover_timeout_ms while there is none, and trying the next
  // one when the writer cannot be reached (nothing was sent to it yet). On failure returns
  // kNoServer with the client's error set; failed_sqlstate() is pglane's own SQLSTATE for it
  // ("" when the server refused the client and its ErrorResponse is forwarded).
  asio::awaitable<End> acquire(EndpointState* endpoint, const txn::SettingList& startup_settings);
  // The endpoint of the connection acquire() took (null without a topology: unit tests).
  EndpointState* endpoint() const { return endpoint_; }
  const std::string& failed_sqlstate() const { return failed_sqlstate_; }
  // Database, server user and endpoint (and session pooling's startup parameters).
  const std::string& pool_key() const { return pool_key_; }

  // The session's first server (stage 3): the client's startup parameters applied (transaction
  // pooling) and read back without telling the client, which must see no ParameterStatus before
  // AuthenticationOk. Then the cancel key points at it.
  asio::awaitable<End> open_session(txn::Conversation& conv, bool transaction_pooling);

  // Transaction pooling: brings an acquired server to this client's statements and settings,
  // then points the cancel key at it. On failure the server is closed, the client's error is
  // set and the result is kNoServer.
  asio::awaitable<End> prepare(txn::Conversation& conv);

  // Reads the client's session-level settings back (txn::ClientSettings writes the query) and
  // puts back startup settings a RESET removed, telling the client (docs 55.2.7) when
  // `notify_client`.
  asio::awaitable<bool> refresh_settings(txn::Conversation& conv, bool notify_client);

  // Transaction pooling, between transactions: the server goes back to the pool carrying the
  // fingerprint of the client's settings.
  asio::awaitable<void> release(txn::Conversation& conv);
  // The server is broken or in an unknown state: closed, its slot freed.
  void discard();

  // The session ended (stage 5). A server goes back to the pool only idle and reset; otherwise
  // it is closed, and its running query cancelled first, since PostgreSQL notices a closed
  // socket only when it next does I/O. `busy`: replies still owed; `mid_frame`: a message half
  // relayed; `wipe`: session state of unknown extent (session pooling, or a pinned client).
  asio::awaitable<void> end(End end, bool busy, bool mid_frame, bool wipe,
                            const txn::ClientSettings& settings);

 private:
  // The leased connection is listed per worker so that cut() can find it.
  void track();
  void untrack();
  ConnectRequest connect_request(const EndpointState* endpoint,
                                 const txn::SettingList& startup_settings);
  asio::awaitable<std::optional<txn::SettingList>> read_settings(txn::Conversation& conv);
  asio::awaitable<End> acquire_from(EndpointState* endpoint,
                                    const txn::SettingList& startup_settings);
  // The writer, once there is one and no search for it is under way; null at `deadline`.
  asio::awaitable<EndpointState*> await_writer(std::chrono::steady_clock::time_point deadline);
  void point_cancel_here();

  Client& client_;
  const Snapshot& snap_;
  const conf::Config& cfg_;
  const int worker_;
  Identity who_;
  std::optional<protocol::CancelKey> cancel_key_;
  std::unique_ptr<ServerConn> server_;
  EndpointState* endpoint_ = nullptr;
  std::string pool_key_;
  std::string failed_sqlstate_;
  // The last connect request and what it was for: built again only when the target changes,
  // not on every transaction's acquire (pool_key_ goes with it).
  std::optional<ConnectRequest> req_;
  conf::Endpoint req_target_;
  bool req_analytics_ = false;
};

}  // namespace pglane::proxy
