// Server connection pools, one per (database, backend user, server endpoint), shared by all
// worker threads: `pool.size` bounds the connections of a pool process-wide.
//
// A connection's socket belongs to one worker's io_context, so idle connections are kept per
// worker, in a shard with its own lock. A client whose worker has no idle connection may open a
// new one while the pool is under its limit; at the limit it takes another worker's idle
// connection, moved to its own worker (Stream::rehome, TLS included), or queues (FIFO). A
// connection released while a client waits is moved to the waiter's worker and handed over;
// only one that cannot move (bytes left in its TLS session) is closed and its slot granted
// instead, for the waiter to open a fresh one.
//
// Locks: a transaction's take and give-back, when this worker has an idle connection and nobody
// waits, touch only the worker's shard (uncontended: the other workers take it only to steal, to
// retire or for SHOW POOLS) and a per-thread map from pool key to pool. Everything else (the
// count of open connections, the queue, stealing, retiring) runs under the manager's mutex.
// Lost wake-ups: a give-back pushes to its shard and then reads `waiting`; a new waiter counts
// itself in `waiting` and then scans every shard, under the same shard locks, so one of the two
// sees the other.
#pragma once

#include <atomic>
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
  // The number of workers (worker indexes are below it). Before the first acquire; default 256,
  // the most proxy.workers allows.
  void set_workers(int n);
  // `worker` is the caller's worker index; `req` says how to open a connection if one is needed
  // (copied only then; it must outlive the call). Idle connections unused for longer than
  // `idle_timeout` (0 = no limit) are closed, not used.
  // This worker's idle connection for `key`, if it has a live one (acquire's first step, without
  // a coroutine: most takes end here).
  std::unique_ptr<ServerConn> take_idle(const std::string& key, int worker,
                                        std::chrono::milliseconds idle_timeout);
  asio::awaitable<AcquireResult> acquire(const std::string& key, int worker, int limit,
                                         std::chrono::milliseconds queue_timeout,
                                         std::chrono::milliseconds idle_timeout,
                                         const ConnectRequest& req);
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
  struct alignas(64) Shard {  // one worker's idle connections (own cache line: no false sharing)
    std::mutex mu;
    std::vector<std::unique_ptr<ServerConn>> idle;  // LIFO
  };
  struct Pool {
    explicit Pool(size_t workers) : shards(workers) {}
    Shard& shard(int worker) { return shards[static_cast<size_t>(worker)]; }
    int total = 0;  // open connections plus slots granted for connections being opened (mu_)
    std::vector<Shard> shards;  // one per worker; never resized (indexed without mu_)
    // shared_ptr: a granter on another thread posts a wake-up that may outlive the waiter's wait.
    std::deque<std::shared_ptr<Waiter>> waiters;  // mu_
    std::atomic<int> waiting{0};                  // waiters.size(), read without mu_
  };

  // The pool of `key`, from this thread's map (no lock) or created under mu_.
  Pool& pool_for(const std::string& key);
  Pool& pool_locked(const std::string& key);
  // Pops this worker's most recently used idle connection, or null.
  static std::unique_ptr<ServerConn> pop_idle(Shard& shard);
  static void push_idle(Shard& shard, std::unique_ptr<ServerConn> conn);
  // Hands a slot (conn == nullptr) or a connection to the first waiter. Requires mu_ held.
  void grant_locked(Pool& pool, std::unique_ptr<ServerConn> conn);
  // Gives `conn` (released on `worker`) to the first waiter: directly, moved to its worker, or
  // (when it cannot move) closed for a slot. Requires mu_ held and a waiter.
  void hand_over_locked(Pool& pool, int worker, std::unique_ptr<ServerConn> conn);
  void free_slot_locked(Pool& pool);
  // Opens a connection in a slot already counted in `total` (freed again on failure).
  asio::awaitable<AcquireResult> open_in_slot(const std::string& key, ConnectRequest req);
  bool retired_locked(const ServerConn& conn) const;
  // Whether `conn` was opened before a retirement of its endpoint; takes mu_ only when a
  // retirement happened since the connection was last looked at.
  bool retired(ServerConn& conn);

  std::mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Pool>> pools_;  // (stable addresses)
  int workers_ = 256;
  std::atomic<uint64_t> retirements_{0};  // retire() calls (under mu_); see ServerConn
  std::atomic<uint64_t> generation_{0};   // bumped by clear(): per-thread maps start over
  // Retired endpoints and when (a handful at most: one per failover). Compared field by field,
  // since retired_locked runs on every release once there was a failover.
  std::vector<std::pair<conf::Endpoint, std::chrono::steady_clock::time_point>> retired_;
};

PoolManager& pools();

}  // namespace pglane::proxy
