// Server connection pools, one per (database, backend user, server endpoint), shared by all
// worker threads: `pool.size` bounds the connections of a pool process-wide.
//
// A connection's socket belongs to one worker's io_context, so idle connections are kept per
// worker. A client whose worker has no idle connection may open a new one while the pool is under
// its limit; at the limit it takes another worker's idle connection, moved to its own worker
// (Stream::rehome, TLS included), or queues (FIFO). A connection released while a client waits
// is moved to the waiter's worker and handed over; only one that cannot move (bytes left in its
// TLS session) is closed and its slot granted instead, for the waiter to open a fresh one. Only
// pool bookkeeping takes the mutex; no query ever does.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_map.h"
#include "proxy/server_conn.h"

namespace pglane::proxy {

struct AcquireResult {
  std::unique_ptr<ServerConn> conn;
  std::string sqlstate;  // set on failure
  std::string message;
  std::string server_error;  // a server's own ErrorResponse to forward, if it refused us
};

// One pool as SHOW POOLS and /metrics see it.
struct PoolView {
  std::string database;
  std::string user;      // the server user
  std::string endpoint;  // host:port
  int open = 0;          // open connections, plus slots granted to connections being opened
  int idle = 0;
  int waiting = 0;  // clients queued for a connection
  // Idle connections: backend process id and seconds idle.
  std::vector<std::pair<int32_t, int64_t>> idle_conns;
};

class PoolManager {
 public:
  // `worker` is the caller's worker index; `req` says how to open a connection if one is needed.
  // Idle connections unused for longer than `idle_timeout` (0 = no limit) are closed, not used.
  asio::awaitable<AcquireResult> acquire(const std::string& key, int worker, int limit,
                                         std::chrono::milliseconds queue_timeout,
                                         std::chrono::milliseconds idle_timeout,
                                         ConnectRequest req);
  // Gives back a connection that is idle ('I') and reset. Must run on the conn's worker.
  void release(const std::string& key, int worker, std::unique_ptr<ServerConn> conn);
  // Closes a connection whose state is unknown or broken, freeing its slot.
  void discard(const std::string& key, std::unique_ptr<ServerConn> conn);

  // The endpoint stopped being what its connections were opened for (the writer failed over, or
  // lost the role): its idle connections are closed now, and connections to it opened before
  // now are closed when given back instead of being pooled.
  void retire(const conf::Endpoint& endpoint);

  // Process-wide count of open connections in a pool (tests, stats).
  int open_count(const std::string& key);
  std::vector<PoolView> view();
  // Drops every idle connection. Called at shutdown after the workers stopped and before their
  // io_contexts are destroyed, since the sockets belong to them.
  void clear();

 private:
  struct Waiter {
    explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;  // woken (cancelled) by a grant
    int worker = 0;
    bool granted = false;
    std::unique_ptr<ServerConn> conn;  // granted connection; null with granted = a free slot
  };
  struct Pool {
    int total = 0;  // open connections plus slots granted for connections being opened
    std::vector<std::vector<std::unique_ptr<ServerConn>>> idle;  // per worker, LIFO
    // shared_ptr: a granter on another thread posts a wake-up that may outlive the waiter's wait.
    std::deque<std::shared_ptr<Waiter>> waiters;
  };

  Pool& pool_locked(const std::string& key, int worker);
  // Hands a slot (conn == nullptr) or a connection to the first waiter. Requires mu_ held.
  void grant_locked(Pool& pool, std::unique_ptr<ServerConn> conn);
  void free_slot_locked(Pool& pool);
  bool retired_locked(const ServerConn& conn) const;

  std::mutex mu_;
  absl::flat_hash_map<std::string, Pool> pools_;
  // Retired endpoints and when (a handful at most: one per failover). Compared field by field,
  // since retired_locked runs on every release once there was a failover.
  std::vector<std::pair<conf::Endpoint, std::chrono::steady_clock::time_point>> retired_;
};

PoolManager& pools();

}  // namespace pglane::proxy
