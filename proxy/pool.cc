#include "proxy/pool.h"

#include <algorithm>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_split.h"
#include "protocol/messages.h"
#include "proxy/log.h"
#include "proxy/stats.h"

namespace pglane::proxy {

namespace {
AcquireResult granted(std::unique_ptr<ServerConn> conn) {
  AcquireResult r;
  r.conn = std::move(conn);
  return r;
}

// Closes a connection on the worker that owns its socket.
void close_on_owner(std::unique_ptr<ServerConn> conn) {
  auto ex = conn->stream.executor();
  asio::post(ex, [c = std::shared_ptr<ServerConn>(std::move(conn))] { c->stream.close(); });
}
}  // namespace

void PoolManager::set_workers(int n) {
  std::lock_guard lock(mu_);
  workers_ = std::max(1, n);
}

PoolManager::Pool& PoolManager::pool_locked(const std::string& key) {
  std::unique_ptr<Pool>& pool = pools_[key];
  if (!pool) {
    pool = std::make_unique<Pool>(static_cast<size_t>(workers_));
  }
  return *pool;
}

PoolManager::Pool& PoolManager::pool_for(const std::string& key) {
  struct Known {
    const PoolManager* owner = nullptr;
    uint64_t generation = 0;
    absl::flat_hash_map<std::string, Pool*> pools;
  };
  static thread_local Known known;
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  if (known.owner != this || known.generation != generation) {
    known.pools.clear();
    known.owner = this;
    known.generation = generation;
  }
  if (auto it = known.pools.find(key); it != known.pools.end()) {
    return *it->second;
  }
  std::lock_guard lock(mu_);
  Pool& pool = pool_locked(key);
  known.pools.emplace(key, &pool);
  return pool;
}

std::unique_ptr<ServerConn> PoolManager::pop_idle(Shard& shard) {
  std::lock_guard lock(shard.mu);
  if (shard.idle.empty()) {
    return nullptr;
  }
  auto conn = std::move(shard.idle.back());
  shard.idle.pop_back();
  return conn;
}

void PoolManager::push_idle(Shard& shard, std::unique_ptr<ServerConn> conn) {
  std::lock_guard lock(shard.mu);
  shard.idle.push_back(std::move(conn));
}

void PoolManager::grant_locked(Pool& pool, std::unique_ptr<ServerConn> conn) {
  auto w = std::move(pool.waiters.front());
  pool.waiters.pop_front();
  pool.waiting.fetch_sub(1);
  w->granted = true;
  w->conn = std::move(conn);
  asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
}

void PoolManager::hand_over_locked(Pool& pool, int worker, std::unique_ptr<ServerConn> conn) {
  if (pool.waiters.front()->worker == worker) {
    grant_locked(pool, std::move(conn));
    return;
  }
  // The first waiter lives on another worker: move the connection there, or (when it cannot
  // move) trade it for a slot there.
  if (conn->stream.rehome(pool.waiters.front()->timer.get_executor())) {
    grant_locked(pool, std::move(conn));
    return;
  }
  conn->stream.close();
  conn.reset();
  grant_locked(pool, nullptr);
}

void PoolManager::free_slot_locked(Pool& pool) {
  if (!pool.waiters.empty()) {
    grant_locked(pool, nullptr);
  } else {
    --pool.total;
  }
}

bool PoolManager::retired_locked(const ServerConn& conn) const {
  for (const auto& [endpoint, at] : retired_) {
    if (endpoint == conn.endpoint) {
      return conn.created <= at;
    }
  }
  return false;
}

bool PoolManager::retired(ServerConn& conn) {
  if (conn.retirements_seen == retirements_.load()) {
    return false;  // nothing was retired since it was last looked at (or made)
  }
  std::lock_guard lock(mu_);
  if (retired_locked(conn)) {
    return true;
  }
  conn.retirements_seen = retirements_.load();  // (changes only under mu_)
  return false;
}

void PoolManager::retire(const conf::Endpoint& endpoint) {
  std::lock_guard lock(mu_);
  retirements_.fetch_add(1);
  const auto now = std::chrono::steady_clock::now();
  auto known = std::find_if(retired_.begin(), retired_.end(),
                            [&](const auto& r) { return r.first == endpoint; });
  if (known == retired_.end()) {
    retired_.emplace_back(endpoint, now);
  } else {
    known->second = now;
  }
  for (auto& [key, pool] : pools_) {
    for (Shard& shard : pool->shards) {
      std::lock_guard shard_lock(shard.mu);
      for (auto it = shard.idle.begin(); it != shard.idle.end();) {
        if ((*it)->endpoint == endpoint) {
          close_on_owner(std::move(*it));
          it = shard.idle.erase(it);
          free_slot_locked(*pool);
        } else {
          ++it;
        }
      }
    }
  }
}

std::unique_ptr<ServerConn> PoolManager::take_idle(const std::string& key, int worker,
                                                   std::chrono::milliseconds idle_timeout) {
  Pool& pool = pool_for(key);
  Shard& mine = pool.shard(worker);
  // This worker's idle connections: its shard's lock only (mu_ just to free a dead one's slot,
  // or to look at a connection older than a retirement).
  while (auto conn = pop_idle(mine)) {
    const bool expired = idle_timeout.count() > 0 &&
                         std::chrono::steady_clock::now() - conn->last_used > idle_timeout;
    // (The liveness poll stays, one system call per take: a connection that died while idle
    // must not meet a client's statement, and Asio has no cheaper way to watch idle sockets.)
    if (!expired && !retired(*conn) && !conn->looks_dead()) {
      return conn;
    }
    // Idle too long (pool.server_idle_timeout_ms), retired, or dead while idle (server
    // restarted, its own idle timeout): replace it.
    conn.reset();
    std::lock_guard lock(mu_);
    free_slot_locked(pool);
  }
  return nullptr;
}

asio::awaitable<AcquireResult> PoolManager::acquire(const std::string& key, int worker, int limit,
                                                    std::chrono::milliseconds queue_timeout,
                                                    std::chrono::milliseconds idle_timeout,
                                                    const ConnectRequest& req) {
  auto ex = co_await asio::this_coro::executor;
  Pool& pool = pool_for(key);
  Shard& mine = pool.shard(worker);
  if (auto conn = take_idle(key, worker, idle_timeout)) {
    co_return granted(std::move(conn));
  }
  std::shared_ptr<Waiter> waiter;
  {
    std::unique_lock lock(mu_);
    if (pool.total < limit) {
      ++pool.total;
    } else {
      // Another worker's idle connection moves here (or, when it cannot, is closed there and
      // its slot reused here). Once counted as waiting, look again: a give-back that read
      // `waiting` before this left its connection in a shard.
      bool counted = false;
      bool took = false;  // a connection, or the slot of one that could not be used
      while (!took) {
        for (Shard& other : pool.shards) {
          auto conn = pop_idle(other);
          if (!conn) {
            continue;
          }
          took = true;
          if (counted) {
            pool.waiters.pop_back();  // ours: pushed below, under this same lock
            pool.waiting.fetch_sub(1);
            waiter.reset();
          }
          if (!retired_locked(*conn) && !conn->looks_dead() &&
              (&other == &mine || conn->stream.rehome(ex))) {
            co_return granted(std::move(conn));
          }
          close_on_owner(std::move(conn));  // its slot is ours: open a connection below
          break;
        }
        if (took || counted) {
          break;
        }
        waiter = std::make_shared<Waiter>(ex);
        waiter->worker = worker;
        waiter->timer.expires_after(queue_timeout);
        pool.waiters.push_back(waiter);
        pool.waiting.fetch_add(1);
        counted = true;
      }
    }
  }
  if (waiter) {
    for (;;) {
      co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
      std::unique_lock lock(mu_);
      if (waiter->granted) {
        if (waiter->conn) {
          co_return granted(std::move(waiter->conn));
        }
        break;  // a free slot: open a connection below
      }
      if (std::chrono::steady_clock::now() >= waiter->timer.expiry()) {
        if (std::erase(pool.waiters, waiter) > 0) {
          pool.waiting.fetch_sub(1);
        }
        stats().pool_timeouts.fetch_add(1, std::memory_order_relaxed);
        AcquireResult r;
        r.sqlstate = protocol::sqlstate::kTooManyConnections;
        r.message = "no server connection available within pool.queue_timeout_ms";
        co_return r;
      }
    }
  }
  ConnectRequest opening = req;  // (a copy: open_in_slot takes its request by value)
  co_return co_await open_in_slot(key, std::move(opening));
}

asio::awaitable<AcquireResult> PoolManager::open_in_slot(const std::string& key,
                                                         ConnectRequest req) {
  // Read before the connection's `created` is stamped: a retirement after this is looked at.
  const uint64_t retirements = retirements_.load();
  ConnectResult c = co_await connect_server(std::move(req));
  if (!c.conn) {
    std::lock_guard lock(mu_);
    free_slot_locked(pool_locked(key));
    co_return AcquireResult{nullptr, std::move(c.sqlstate), std::move(c.message),
                            std::move(c.server_error)};
  }
  c.conn->retirements_seen = retirements;
  co_return granted(std::move(c.conn));
}

void PoolManager::release(const std::string& key, int worker, std::unique_ptr<ServerConn> conn) {
  conn->last_used = std::chrono::steady_clock::now();
  Pool& pool = pool_for(key);
  const uint64_t seen = conn->retirements_seen;
  if (seen == retirements_.load() && pool.waiting.load() == 0) {
    push_idle(pool.shard(worker), std::move(conn));
    if (pool.waiting.load() == 0 && retirements_.load() == seen) {
      return;
    }
    // A client began waiting meanwhile (and may have missed this connection), or a retirement
    // swept the shards before this connection was in them: look again under the lock.
    std::lock_guard lock(mu_);
    Shard& mine = pool.shard(worker);
    while (!pool.waiters.empty() || retirements_.load() != seen) {
      auto idle = pop_idle(mine);
      if (!idle) {
        break;
      }
      if (retired_locked(*idle)) {
        close_on_owner(std::move(idle));
        free_slot_locked(pool);
      } else if (!pool.waiters.empty()) {
        hand_over_locked(pool, worker, std::move(idle));
      } else {
        idle->retirements_seen = retirements_.load();
        push_idle(mine, std::move(idle));
        break;
      }
    }
    return;
  }
  std::lock_guard lock(mu_);
  if (retired_locked(*conn)) {
    conn->stream.close();
    conn.reset();
    free_slot_locked(pool);
    return;
  }
  conn->retirements_seen = retirements_.load();
  if (pool.waiters.empty()) {
    push_idle(pool.shard(worker), std::move(conn));
    return;
  }
  hand_over_locked(pool, worker, std::move(conn));
}

void PoolManager::discard(const std::string& key, std::unique_ptr<ServerConn> conn) {
  stats().server_closed_dirty.fetch_add(1, std::memory_order_relaxed);
  conn->stream.close();
  conn.reset();
  std::lock_guard lock(mu_);
  free_slot_locked(pool_locked(key));
}

int PoolManager::open_count(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = pools_.find(key);
  return it == pools_.end() ? 0 : it->second->total;
}

std::vector<PoolView> PoolManager::view() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  std::vector<PoolView> out;
  for (const auto& [key, pool] : pools_) {
    PoolView v;
    std::vector<std::string> parts = absl::StrSplit(key, '\x1f');
    v.database = parts.size() > 0 ? parts[0] : "";
    v.user = parts.size() > 1 ? parts[1] : "";
    v.endpoint = parts.size() > 2 ? parts[2] : "";
    v.open = pool->total;
    v.waiting = static_cast<int>(pool->waiters.size());
    for (Shard& shard : pool->shards) {
      std::lock_guard shard_lock(shard.mu);
      for (const auto& c : shard.idle) {
        ++v.idle;
        v.idle_conns.emplace_back(
            c->key.pid,
            std::chrono::duration_cast<std::chrono::seconds>(now - c->last_used).count());
      }
    }
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const PoolView& a, const PoolView& b) {
    return std::tie(a.database, a.user, a.endpoint) < std::tie(b.database, b.user, b.endpoint);
  });
  return out;
}

void PoolManager::clear() {
  std::lock_guard lock(mu_);
  pools_.clear();
  generation_.fetch_add(1, std::memory_order_release);
}

PoolManager& pools() {
  static PoolManager manager;
  return manager;
}

}  // namespace pglane::proxy
