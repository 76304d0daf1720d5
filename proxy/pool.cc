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

PoolManager::Pool& PoolManager::pool_locked(const std::string& key, int worker) {
  Pool& pool = pools_[key];
  if (pool.idle.size() <= static_cast<size_t>(worker)) {
    pool.idle.resize(worker + 1);
  }
  return pool;
}

void PoolManager::grant_locked(Pool& pool, std::unique_ptr<ServerConn> conn) {
  auto w = std::move(pool.waiters.front());
  pool.waiters.pop_front();
  w->granted = true;
  w->conn = std::move(conn);
  asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
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

void PoolManager::retire(const conf::Endpoint& endpoint) {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  auto known = std::find_if(retired_.begin(), retired_.end(),
                            [&](const auto& r) { return r.first == endpoint; });
  if (known == retired_.end()) {
    retired_.emplace_back(endpoint, now);
  } else {
    known->second = now;
  }
  for (auto& [key, pool] : pools_) {
    for (auto& idle : pool.idle) {
      for (auto it = idle.begin(); it != idle.end();) {
        if ((*it)->endpoint == endpoint) {
          close_on_owner(std::move(*it));
          it = idle.erase(it);
          free_slot_locked(pool);
        } else {
          ++it;
        }
      }
    }
  }
}

asio::awaitable<AcquireResult> PoolManager::acquire(const std::string& key, int worker, int limit,
                                                    std::chrono::milliseconds queue_timeout,
                                                    std::chrono::milliseconds idle_timeout,
                                                    ConnectRequest req) {
  auto ex = co_await asio::this_coro::executor;
  std::shared_ptr<Waiter> waiter;
  {
    std::unique_lock lock(mu_);
    Pool& pool = pool_locked(key, worker);
    auto& mine = pool.idle[worker];
    while (!mine.empty()) {
      auto conn = std::move(mine.back());
      mine.pop_back();
      const bool expired = (idle_timeout.count() > 0 &&
                            std::chrono::steady_clock::now() - conn->last_used > idle_timeout) ||
                           retired_locked(*conn);
      if (!expired && !conn->looks_dead()) {
        co_return granted(std::move(conn));
      }
      // Idle too long (pool.server_idle_timeout_ms) or dead while idle (server restarted, its
      // own idle timeout): replace it.
      conn.reset();
      --pool.total;
    }
    if (pool.total < limit) {
      ++pool.total;
    } else {
      // Another worker's idle connection moves here (or, when it cannot, is closed there and its
      // slot reused here).
      bool stolen = false;
      for (auto& other : pool.idle) {
        if (!other.empty()) {
          auto conn = std::move(other.back());
          other.pop_back();
          stolen = true;
          if (!conn->looks_dead() && conn->stream.rehome(ex)) {
            co_return granted(std::move(conn));
          }
          close_on_owner(std::move(conn));
          break;
        }
      }
      if (!stolen) {
        waiter = std::make_shared<Waiter>(ex);
        waiter->worker = worker;
        waiter->timer.expires_after(queue_timeout);
        pool.waiters.push_back(waiter);
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
        Pool& pool = pools_[key];
        std::erase(pool.waiters, waiter);
        stats().pool_timeouts.fetch_add(1, std::memory_order_relaxed);
        AcquireResult r;
        r.sqlstate = protocol::sqlstate::kTooManyConnections;
        r.message = "no server connection available within pool.queue_timeout_ms";
        co_return r;
      }
    }
  }
  ConnectResult c = co_await connect_server(std::move(req));
  if (!c.conn) {
    std::lock_guard lock(mu_);
    free_slot_locked(pools_[key]);
    co_return AcquireResult{nullptr, std::move(c.sqlstate), std::move(c.message),
                            std::move(c.server_error)};
  }
  co_return granted(std::move(c.conn));
}

void PoolManager::release(const std::string& key, int worker, std::unique_ptr<ServerConn> conn) {
  conn->last_used = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  Pool& pool = pool_locked(key, worker);
  if (retired_locked(*conn)) {
    conn->stream.close();
    conn.reset();
    free_slot_locked(pool);
    return;
  }
  if (pool.waiters.empty()) {
    pool.idle[worker].push_back(std::move(conn));
    return;
  }
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

void PoolManager::discard(const std::string& key, std::unique_ptr<ServerConn> conn) {
  stats().server_closed_dirty.fetch_add(1, std::memory_order_relaxed);
  conn->stream.close();
  conn.reset();
  std::lock_guard lock(mu_);
  free_slot_locked(pools_[key]);
}

int PoolManager::open_count(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = pools_.find(key);
  return it == pools_.end() ? 0 : it->second.total;
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
    v.open = pool.total;
    v.waiting = static_cast<int>(pool.waiters.size());
    for (const auto& per_worker : pool.idle) {
      for (const auto& c : per_worker) {
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
}

PoolManager& pools() {
  static PoolManager manager;
  return manager;
}

}  // namespace pglane::proxy
