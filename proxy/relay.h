// The relay: one engine for both pool modes that moves whole frames between the client and its
// attached server, both directions at once, through bounded buffers. What happens to each frame
// is the policy's call (session pooling forwards everything; transaction pooling rewrites
// statements, answers some requests itself and gives the server back between transactions).
//
// The engine owns the framing: headers are decoded once per frame, a frame larger than what is
// buffered streams through in pieces, and each side's pending bytes are written in one send.
// It also keeps the server's ReadyForQuery status and ParameterStatus values.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/client.h"
#include "proxy/server_conn.h"
#include "proxy/session_end.h"
#include "txn/conversation.h"

namespace pglane::proxy {

class RelayPolicy {
 public:
  virtual ~RelayPolicy() = default;

  // ---- Client to server ----
  enum class Step {
    kStream,    // forward as it arrives (on_client_forwarded is told)
    kWhole,     // wait for the whole message and hand it to on_client_message
    kNeedMore,  // wait for more client bytes before deciding
    kReroute,   // this frame starts work for another server: stop here until the server is idle
  };
  // The first frame of a new client message; `from_here` is everything buffered from it on.
  virtual Step on_client_frame(char type, size_t size, std::string_view from_here) = 0;
  // A whole message (kWhole); appends what the server is to get to `out`. Anything but
  // kRunning ends the session.
  virtual End on_client_message(char type, std::string_view whole, std::string& out) = 0;
  virtual void on_client_forwarded(char type) = 0;
  // Replies made locally, to send before what goes to the server.
  virtual std::string take_local() { return {}; }
  // Client bytes consumed (sent to the server or answered) in one batch.
  virtual void on_client_consumed(std::string_view bytes) {}
  // After kReroute, once every reply is in: true moves the client (End::kDetach). `idle`: the
  // server is outside a transaction and could be handed back. Otherwise the frames stay here.
  virtual bool after_reroute_wait(bool idle) = 0;

  // ---- Server to client ----
  // Whether a server message of `type` is read whole (else it streams).
  virtual bool whole_from_server(char type, size_t size) = 0;
  // A whole server message, after the engine applied ReadyForQuery and ParameterStatus.
  virtual void on_server_message(char type, std::string_view msg, txn::ClientSink& sink) = 0;
  // The start of a streamed server message.
  virtual void on_server_stream(char type, txn::ClientSink& sink) = 0;

  // Whether something must run before the gathered server bytes reach the client (a floor to
  // share with other gateways before a commit is acknowledged), and that something.
  virtual bool hold_before_client_write() const { return false; }
  virtual asio::awaitable<void> before_client_write() { co_return; }

  // Replies the server still owes the client (Query, Sync, FunctionCall not answered yet).
  virtual bool owes_replies() const = 0;
  // The server may be handed back once it is idle with nothing owed (transaction pooling).
  virtual bool may_detach() const = 0;
};

// Session pooling: the server is the client's for the whole session, so every frame is forwarded
// as it arrives; only ReadyForQuery and ParameterStatus are read whole, to know whether the
// server is busy when the client goes away and what it has set.
class SessionPooling : public RelayPolicy {
 public:
  Step on_client_frame(char, size_t, std::string_view) override { return Step::kStream; }
  End on_client_message(char, std::string_view, std::string&) override { return End::kRunning; }
  // Each Query, FunctionCall and Sync is answered by exactly one ReadyForQuery.
  void on_client_forwarded(char type) override {
    if (type == 'Q' || type == 'S' || type == 'F') {
      ++pending_;
    }
  }
  bool after_reroute_wait(bool) override { return false; }
  bool whole_from_server(char type, size_t size) override {
    return (type == 'Z' || type == 'S') && size <= kMaxInspected;
  }
  void on_server_message(char type, std::string_view msg, txn::ClientSink& sink) override {
    if (type == 'Z' && pending_ > 0) {
      --pending_;
    }
    sink.pass(msg);
  }
  void on_server_stream(char, txn::ClientSink&) override {}
  bool owes_replies() const override { return pending_ > 0; }
  bool may_detach() const override { return false; }

 private:
  // Server messages read whole to track state are at most this large.
  static constexpr size_t kMaxInspected = 64 * 1024;
  int pending_ = 0;  // ReadyForQuery messages the server still owes the client
};

class Relay {
 public:
  Relay(Client& client, const conf::Config& cfg) : client_(client), cfg_(cfg) {}

  // Relays until the session ends, or (End::kDetach) the policy lets the server go.
  // `idle_timeout`: end an idle client (no request in flight, outside a transaction) after this.
  asio::awaitable<End> run(ServerConn& server, RelayPolicy& policy,
                           std::chrono::milliseconds idle_timeout);

  // Whether a frame is half relayed in either direction (the server cannot be reused then, and
  // the client's stream cannot take an error message mid-frame).
  bool mid_frame() const { return c2s_remaining_ > 0 || s2c_remaining_ > 0; }
  bool client_mid_frame() const { return s2c_remaining_ > 0; }
  // Query and Execute messages seen from the client since the last call.
  uint64_t take_queries() { return std::exchange(queries_, 0); }
  uint64_t peek_queries() const { return queries_; }

 private:
  asio::awaitable<End> client_to_server();
  asio::awaitable<End> server_to_client();
  asio::awaitable<End> idle_watchdog(std::chrono::milliseconds limit);
  asio::awaitable<End> reroute_wait();
  bool detachable() const;

  Client& client_;
  const conf::Config& cfg_;
  ServerConn* server_ = nullptr;
  RelayPolicy* policy_ = nullptr;

  size_t c2s_remaining_ = 0;    // bytes of a client message still to forward
  size_t s2c_remaining_ = 0;    // bytes of a server message still to forward
  bool c2s_writing_ = false;    // a write to the server is in progress
  bool s2c_writing_ = false;    // a write to the client is in progress (from the server side)
  bool detach_wanted_ = false;  // the server side saw the end of a transaction during a write
  std::chrono::steady_clock::time_point last_client_activity_;
  std::unique_ptr<asio::steady_timer> drained_;  // server side wakes client side: replies in
  bool awaiting_drain_ = false;                  // the client side waits on drained_
  uint64_t queries_ = 0;
};

}  // namespace pglane::proxy
