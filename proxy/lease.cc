#include "proxy/lease.h"

#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <mutex>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proxy/cancel.h"
#include "proxy/live.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/stats.h"
#include "proxy/topology.h"

namespace pglane::proxy {

namespace p = protocol;

ConnectRequest ServerLease::connect_request(const EndpointState* endpoint,
                                            const txn::SettingList& startup_settings) {
  const bool analytics = endpoint != nullptr && endpoint->analytics;
  const auto& cred = analytics ? cfg_.analytics.credential : cfg_.backend.credential_for(who_.user);
  ConnectRequest req;
  req.endpoint = endpoint ? endpoint->endpoint : cfg_.home_region().writer;
  req.database =
      analytics && !cfg_.analytics.database.empty() ? cfg_.analytics.database : who_.database;
  req.credential.user = cred.user.empty() ? who_.user : cred.user;
  req.credential.password = cred.password;
  if (cred.password.empty() && req.credential.user == who_.user) {
    // No password configured: log in as the client itself with the keys of its own SCRAM
    // proof. Never as another role: those keys open only the client's own account.
    req.scram_keys = who_.scram_keys;
  }
  req.tls_mode = cfg_.backend.tls.mode;
  req.tls_ctx = snap_.server_tls.get();
  req.timeout = std::chrono::milliseconds(cfg_.backend.connect_timeout_ms);
  pool_key_ =
      absl::StrCat(who_.database, "\x1f", req.credential.user, "\x1f", req.endpoint.to_string());
  if (cfg_.pool.mode == conf::PoolMode::kSession && !startup_settings.empty()) {
    // Session pooling: the server connection starts with the client's own parameters, and only
    // clients asking for the same ones share it.
    req.extra_params = startup_settings;
    absl::StrAppend(&pool_key_, "\x1f", absl::HashOf(startup_settings));
  }
  return req;
}

asio::awaitable<End> ServerLease::acquire(EndpointState* endpoint,
                                          const txn::SettingList& startup_settings) {
  Topology* t = topology();
  if (endpoint != nullptr || t == nullptr) {
    co_return co_await acquire_from(endpoint, startup_settings);
  }
  // The writer, following failover: a writer that cannot be reached is reported (every instance
  // is then probed fast) and the next one confirmed is tried, until the deadline.
  const auto deadline =
      std::chrono::steady_clock::now() + LiveSettings::ms(live().failover_timeout_ms);
  for (;;) {
    EndpointState* writer = co_await await_writer(deadline);
    if (writer == nullptr) {
      stats().writer_timeouts.fetch_add(1, std::memory_order_relaxed);
      failed_sqlstate_ = p::sqlstate::kCannotConnectNow;
      client_.fail(
          p::sqlstate::kCannotConnectNow,
          absl::StrCat("no writer is available; waited ", live().failover_timeout_ms.load(),
                       " ms (health.failover_timeout_ms): ", t->why_no_writer()));
      co_return End::kNoServer;
    }
    End e = co_await acquire_from(writer, startup_settings);
    if (e == End::kRunning && t->writer() != writer) {
      // It lost the role while we connected: cut() ran before this connection was tracked (a
      // change published after the check above finds it tracked, and cuts it).
      discard();
      continue;
    }
    if (e == End::kRunning || failed_sqlstate_.rfind("08", 0) != 0 ||
        std::chrono::steady_clock::now() >= deadline) {
      co_return e;
    }
    client_.error_bytes.clear();
    t->report_failure(*writer);
  }
}

asio::awaitable<EndpointState*> ServerLease::await_writer(
    std::chrono::steady_clock::time_point deadline) {
  Topology& t = *topology();
  EndpointState* w = t.writer();
  if (w != nullptr && !t.searching()) {
    co_return w;
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    w = t.writer();
    if (w != nullptr && !t.searching()) {
      co_return w;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      co_return nullptr;
    }
    // A search ends within a few probe intervals; polling at a fraction of one keeps the added
    // delay small without a wake-up channel from the checker threads to every worker.
    timer.expires_after(std::min<std::chrono::steady_clock::duration>(
        deadline - now, std::chrono::milliseconds(10)));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<End> ServerLease::acquire_from(EndpointState* endpoint,
                                               const txn::SettingList& startup_settings) {
  failed_sqlstate_.clear();
  const conf::Endpoint& target = endpoint ? endpoint->endpoint : cfg_.home_region().writer;
  const bool analytics = endpoint != nullptr && endpoint->analytics;
  if (!req_ || !(req_target_ == target) || req_analytics_ != analytics) {
    req_ = connect_request(endpoint, startup_settings);  // and pool_key_
    req_target_ = target;
    req_analytics_ = analytics;
  }
  AcquireResult got;
  got.conn = pools().take_idle(pool_key_, worker_, LiveSettings::ms(live().server_idle_timeout_ms));
  if (!got.conn) {
    got = co_await pools().acquire(pool_key_, worker_,
                                   live().pool_size.load(std::memory_order_relaxed),
                                   LiveSettings::ms(live().queue_timeout_ms),
                                   LiveSettings::ms(live().server_idle_timeout_ms), *req_);
  }
  if (!got.conn) {
    failed_sqlstate_ = got.server_error.empty() ? got.sqlstate : "";
    if (!got.server_error.empty()) {
      client_.error_bytes = std::move(got.server_error);
    } else {
      client_.fail(got.sqlstate, got.message);
    }
    co_return End::kNoServer;
  }
  assert(server_ == nullptr);  // a tracked connection is never overwritten
  server_ = std::move(got.conn);
  endpoint_ = endpoint;
  track();
  co_return End::kRunning;
}

namespace {

// Leased connections per worker: each list is touched by its worker on every lease and by cut()
// only after a failover, so its lock is uncontended and never shared between workers.
struct alignas(64) WorkerLeases {
  std::mutex mu;
  std::vector<ServerConn*> conns;
};
constexpr size_t kMaxWorkers = 257;  // proxy.workers is at most 256
WorkerLeases g_leases[kMaxWorkers];

WorkerLeases& leases_of(int worker) {
  return g_leases[static_cast<size_t>(worker) % kMaxWorkers];
}

}  // namespace

void ServerLease::track() {
  assert(server_ != nullptr);
  WorkerLeases& w = leases_of(worker_);
  std::lock_guard lock(w.mu);
  w.conns.push_back(server_.get());
}

void ServerLease::untrack() {
  if (server_ == nullptr) {
    return;
  }
  WorkerLeases& w = leases_of(worker_);
  std::lock_guard lock(w.mu);
  auto it = std::find(w.conns.begin(), w.conns.end(), server_.get());
  if (it != w.conns.end()) {
    *it = w.conns.back();
    w.conns.pop_back();
  }
}

void ServerLease::cut(const conf::Endpoint& endpoint) {
  int cut = 0;
  for (WorkerLeases& w : g_leases) {
    std::lock_guard lock(w.mu);
    for (ServerConn* c : w.conns) {
      // Listed means leased and alive: it is untracked before it is given back or destroyed,
      // and a leased connection is never moved or closed, so its descriptor is this one.
      // shutdown(2) from this thread is safe; its owner's pending read then fails.
      if (c->endpoint == endpoint) {
        ::shutdown(c->stream.socket().native_handle(), SHUT_RDWR);
        ++cut;
      }
    }
  }
  if (cut > 0) {
    PGLANE_LOG_WARN("closed %d server connections in use to %s, which lost the writer role", cut,
                    endpoint.to_string());
  }
}

void ServerLease::point_cancel_here() {
  if (cancel_key_) {
    cancel_registry().attach(*cancel_key_, CancelTarget{server_->endpoint, server_->key});
  }
}

asio::awaitable<End> ServerLease::open_session(txn::Conversation& conv, bool transaction_pooling) {
  if (transaction_pooling) {
    std::string close = conv.close_unused(server_->stmts);
    if (!close.empty() && !co_await run_extended(*server_, close, 1)) {
      co_return End::kServerGone;
    }
    if (server_->settings_hash != 0) {
      // Another client's settings: back to the server defaults before applying ours.
      if (!co_await run_simple_query(*server_, "RESET ALL")) {
        co_return End::kServerGone;
      }
      server_->settings_hash = 0;
    }
    // Transaction pooling applies the client's startup parameters with SET (a server connection
    // serves many clients) and replays them wherever the client goes. Session pooling sent them
    // in the server's StartupMessage.
    std::string sql;
    for (const auto& [k, v] : conv.settings().startup()) {
      if (server_->param(k) != v) {
        absl::StrAppend(&sql, "SET ", k, " = ", txn::quote_literal(v), ";");
      }
    }
    if (!sql.empty()) {
      std::string error;
      if (!co_await run_simple_query(*server_, sql, &error)) {
        if (!error.empty()) {
          client_.error_bytes = std::move(error);
          co_return End::kUnsupported;
        }
        co_return End::kServerGone;
      }
      // (co_await is kept out of && and ||: GCC 12 miscompiles it there.) The values any
      // ParameterStatus would carry are in server_->params and reach the client with the others.
      bool refreshed = co_await refresh_settings(conv, /*notify_client=*/false);
      if (!refreshed) {
        co_return End::kServerGone;
      }
    }
  }
  server_->settings_hash = conv.settings().fingerprint();
  conv.set_server_default_scs_off(server_->param("standard_conforming_strings") == "off");
  point_cancel_here();
  co_return End::kRunning;
}

asio::awaitable<End> ServerLease::prepare(txn::Conversation& conv) {
  bool ok = true;
  if (std::string close = conv.close_unused(server_->stmts); !close.empty()) {
    ok = co_await run_extended(*server_, close, 1);
  }
  // Statements pglane answered alone since the client last held a server are parsed here, so
  // its pg_prepared_statements shows them as on a direct connection. Each Parse has its own
  // Sync and every reply is swallowed.
  if (ok && conv.has_owed()) {
    std::vector<std::string> sent;
    std::string parses = conv.owed_parses(server_->stmts, pool_key_, sent);
    if (!sent.empty()) {
      std::string replies;
      ok = co_await run_extended(*server_, parses, static_cast<int>(sent.size()), &replies);
      if (ok) {
        conv.owed_parsed(server_->stmts, sent, replies);
      }
    }
  }
  if (!ok) {
    discard();
    client_.fail(p::sqlstate::kConnectionFailure, "lost a server connection while preparing it");
    co_return End::kNoServer;
  }
  if (std::string sql = conv.settings().replay_sql(server_->settings_hash); !sql.empty()) {
    if (!co_await run_simple_query(*server_, sql)) {
      discard();
      client_.fail(p::sqlstate::kConnectionFailure,
                   "could not restore session settings on a server");
      co_return End::kNoServer;
    }
    server_->settings_hash = conv.settings().fingerprint();
  }
  point_cancel_here();
  co_return End::kRunning;
}

asio::awaitable<std::optional<txn::SettingList>> ServerLease::read_settings(
    txn::Conversation& conv) {
  std::vector<std::vector<std::string>> rows;
  bool ok = co_await run_query_rows(*server_, conv.settings().read_query(), rows);
  if (!ok) {
    co_return std::nullopt;
  }
  co_return conv.settings().absorb(rows);
}

asio::awaitable<bool> ServerLease::refresh_settings(txn::Conversation& conv, bool notify_client) {
  auto missing = co_await read_settings(conv);
  if (!missing) {
    co_return false;
  }
  // On a direct connection RESET returns a startup parameter to the value the client gave at
  // startup; here those were applied with SET, so put back the ones RESET removed and tell the
  // client (ParameterStatus may arrive at any time, docs 55.2.7).
  if (missing->empty()) {
    co_return true;
  }
  std::vector<std::string> restored;
  for (const auto& [name, value] : *missing) {
    restored.push_back(absl::AsciiStrToLower(name));
  }
  bool ok = co_await run_simple_query(*server_, txn::set_config_sql(*missing));
  if (ok) {
    ok = (co_await read_settings(conv)).has_value();
  }
  if (!ok) {
    co_return false;
  }
  std::string status;
  for (const auto& [k, v] : server_->params) {
    if (std::find(restored.begin(), restored.end(), absl::AsciiStrToLower(k)) != restored.end()) {
      p::encode_parameter_status(status, k, v);
    }
  }
  if (notify_client && !status.empty()) {
    co_await client_.write(status);
  }
  co_return true;
}

asio::awaitable<void> ServerLease::release(txn::Conversation& conv) {
  if (cancel_key_) {
    cancel_registry().detach(*cancel_key_);
  }
  if (conv.settings().dirty()) {
    bool refreshed = co_await refresh_settings(conv, /*notify_client=*/true);
    if (!refreshed) {
      discard();
      co_return;
    }
  }
  server_->settings_hash = conv.settings().release_fingerprint();
  untrack();
  pools().release(pool_key_, worker_, std::move(server_));
}

void ServerLease::discard() {
  if (cancel_key_) {
    cancel_registry().detach(*cancel_key_);
  }
  untrack();
  pools().discard(pool_key_, std::move(server_));
}

asio::awaitable<void> ServerLease::end(End end, bool busy, bool mid_frame, bool wipe,
                                       const txn::ClientSettings& settings) {
  const bool server_ok = end != End::kServerGone && end != End::kServerViolation;
  mid_frame = mid_frame || !server_->in.empty();
  if (server_ok && !mid_frame && !busy) {
    bool ok = true;
    if (server_->status != 'I') {
      ok = co_await run_simple_query(*server_, "ROLLBACK");
    }
    if (wipe) {
      if (ok) {
        ok = co_await run_simple_query(*server_, "DISCARD ALL");
      }
      server_->stmts.forget_all();
      server_->settings_hash = 0;
    } else if (settings.dirty() || settings.tainted()) {
      if (ok) {
        ok = co_await run_simple_query(*server_, "RESET ALL");
      }
      server_->settings_hash = 0;
    } else {
      server_->settings_hash = settings.fingerprint();
    }
    if (ok && server_->status == 'I') {
      stats().server_resets.fetch_add(1, std::memory_order_relaxed);
      untrack();
      pools().release(pool_key_, worker_, std::move(server_));
      co_return;
    }
  } else if (server_ok && busy) {
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, send_cancel(server_->endpoint, server_->key), asio::detached);
  }
  untrack();
  pools().discard(pool_key_, std::move(server_));
}

}  // namespace pglane::proxy
