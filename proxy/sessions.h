// Every client session of the process, for the admin console (SHOW CLIENTS and SERVERS, KILL),
// PAUSE and graceful shutdown. Each worker keeps its own list, touched only on its own thread;
// other threads reach it by running a function on every worker (on_every_worker), so the query
// path takes no lock and shares no cache line for this.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "conf/config.h"
#include "proxy/metrics.h"

namespace pglane::proxy {

struct ServerConn;

enum class ClientState {
  kLogin,    // TLS, startup, authentication, first server
  kIdle,     // between transactions (transaction pooling), holding no server
  kWaiting,  // waiting for a server connection (or for RESUME)
  kActive,   // on a server
};
const char* client_state_name(ClientState s);

// One session as the rest of the process sees it. Owned by the session; every field is written
// and read on the session's worker thread only.
struct SessionEntry {
  uint64_t id = 0;
  int worker = 0;
  std::string addr;  // the client's address and port
  bool tls = false;
  std::string user;
  std::string database;
  std::string application_name;
  bool admin = false;  // a console session
  ClientState state = ClientState::kLogin;
  std::chrono::system_clock::time_point connected_at;
  std::chrono::steady_clock::time_point state_since;
  // The server connection it holds now (copied: the connection may go before the entry learns).
  std::string server;              // host:port; empty: none
  std::string server_text;         // the last endpoint's host:port, kept
  conf::Endpoint server_endpoint;  // what server_text was made from
  int32_t server_pid = 0;
  std::chrono::steady_clock::time_point server_created;
  void set_server(const ServerConn* conn);
  // Adds the client bytes moved since the last call (totals as the stream counts them) to
  // `stats`.
  void count_bytes(uint64_t read_total, uint64_t written_total);
  uint64_t bytes_read_counted = 0;
  uint64_t bytes_written_counted = 0;
  uint64_t transactions = 0;
  UserStats* stats = nullptr;  // this (database, user)'s counters on this worker, once known

  // Asked to end: `drain` at its next transaction boundary, `kill` now. Set through
  // request_end(); the session checks should_end_now() where it waits. A draining session that
  // has not finished a transaction yet (it may have connected an instant before the listener
  // closed, its first query on the way) runs one first: a client that connected in time is
  // served, not refused.
  bool drain = false;
  bool kill = false;
  // Wakes the session's pending waits (set by the session).
  std::function<void()> wake;

  // Passed the pause gate and not back between transactions yet (PAUSE waits for these too:
  // they are about to run a transaction even while still waiting for a server).
  bool past_gate = false;
  // Session pooling, or a pinned transaction-pooling client (the session holds its server):
  // whether it is between transactions now (server idle, nothing owed), set by the session.
  std::function<bool()> at_boundary;

  void set_state(ClientState s) {
    state = s;
    state_since = std::chrono::steady_clock::now();
    if (s == ClientState::kIdle) {
      past_gate = false;
    }
  }
  bool should_end_now() const {
    return kill || (drain && (transactions > 0 || admin || state == ClientState::kActive));
  }
  // Sets drain or kill and wakes the session if it is waiting where that matters.
  void request_end(bool now);
};

// The sessions of one worker (its thread only).
class WorkerSessions {
 public:
  void add(SessionEntry* e);
  void remove(SessionEntry* e);
  const std::vector<SessionEntry*>& all() const { return entries_; }

 private:
  std::vector<SessionEntry*> entries_;
};
WorkerSessions& worker_sessions(int worker);
uint64_t next_session_id();

// The workers' executors, by index (set by run_server before any session starts).
void set_worker_executors(std::vector<boost::asio::any_io_executor> executors);
const std::vector<boost::asio::any_io_executor>& worker_executors();

// Runs fn(worker) on each worker's thread and returns once every one has run (or after
// `limit`, should a worker be stuck: fn must then keep what it touches alive, e.g. through a
// shared_ptr). May be called from a worker's own coroutine. (fn by reference: GCC 12 miscopies
// non-trivial by-value coroutine parameters; it is copied before the first suspension.)
boost::asio::awaitable<void> on_every_worker(
    const std::function<void(int)>& fn,
    std::chrono::milliseconds limit = std::chrono::milliseconds(5000));
// Runs fn on `target`'s thread and returns once it has run.
boost::asio::awaitable<void> run_on(
    const boost::asio::any_io_executor& target, const std::function<void()>& fn,
    std::chrono::milliseconds limit = std::chrono::milliseconds(30000));

// PAUSE / RESUME: new units of work of a paused database wait (transactions under way finish).
class PauseGate {
 public:
  bool any() const { return any_.load(std::memory_order_relaxed); }
  bool paused(const std::string& database) const;
  // "" = every database.
  void pause(const std::string& database);
  // Returns false when `database` was not paused.
  bool resume(const std::string& database);
  std::vector<std::string> list() const;  // "*" for every database

 private:
  mutable std::mutex mu_;
  std::atomic<bool> any_{false};
  bool all_ = false;
  std::set<std::string> databases_;
};
PauseGate& pause_gate();
// Waits while `entry`'s database is paused. False: the session was asked to end meanwhile.
boost::asio::awaitable<bool> wait_while_paused(SessionEntry& entry);

// What the admin console asks of the process: set by run_server, run on its control thread.
struct ProcessControl {
  boost::asio::any_io_executor executor;            // the control thread
  std::function<std::string()> reload;              // "" when reloaded, else why not
  std::function<void(bool wait)> shutdown;          // wait: drain first
  std::atomic<int64_t> shutdown_timeout_ms{30000};  // read by the console's PAUSE
};
ProcessControl& process_control();

}  // namespace pglane::proxy
