// TransactionPooling's part in the result cache (proxy/result_cache.h, docs/internals.md
// "Result cache"): look a read up before it is placed, answer a hit without a server, and keep
// a miss's answer for the store.
#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cache/entry.h"
#include "proxy/floor_sync.h"
#include "proxy/freshness.h"
#include "proxy/txn_pooling.h"

namespace pglane::proxy {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

asio::awaitable<End> TransactionPooling::try_cache(const routing::Unit& unit, bool& hit) {
  hit = false;
  end_fill();
  ResultCache* rc = result_cache();
  // Without the database's catalog, views, triggers and function volatility are unknown.
  if (rc == nullptr || unit.reads.unknown || unit.reads.empty() || conv_.pinned() != nullptr ||
      conv_.settings().dirty() || conv_.settings().tainted() || catalog_ == nullptr ||
      !catalog_->relations().loaded()) {
    co_return End::kRunning;
  }
  // One simple Query, or Parse/Bind/Describe/Execute/Sync of the unnamed statement and portal.
  const std::string_view data = client_.in.data();
  if (data.size() < unit.size) {
    co_return End::kRunning;
  }
  const std::string_view unit_bytes = data.substr(0, unit.size);
  const std::optional<std::string_view> text = cache::cacheable_unit(unit_bytes);
  if (!text) {
    co_return End::kRunning;
  }
  const std::string_view sql = *text;
  routing::Analysis a = memo_.analyze(sql);
  if (!a.info) {
    co_return End::kRunning;
  }
  cache::Verdict v = cache::decide(*a.info, sql, rc->rules(), catalog_.get());
  if (!v.cache && v.why == cache::kNoRule && rc->rules().auto_after > 0 &&
      rc->seen(entry_.worker, unit_bytes) >= static_cast<uint32_t>(rc->rules().auto_after)) {
    v = cache::decide(*a.info, sql, rc->rules(), catalog_.get(), true);  // seen often: auto
  }
  if (v.cache && unit_bytes[0] == 'P' &&
      cache::mentions_clock(unit_bytes.substr(unit_bytes.find('B')))) {
    v = cache::Verdict{};  // a parameter such as 'now'::timestamptz
  }
  if (!v.cache) {
    rc->stats().uncacheable.fetch_add(1, std::memory_order_relaxed);
    co_return End::kRunning;
  }
  cache::KeyParts kp;
  kp.database = lease_.identity().database;
  kp.user = lease_.identity().user;
  kp.startup = &conv_.settings().startup();
  kp.settings = &conv_.settings().values();
  kp.sql = unit_bytes;  // the text, and for the extended protocol parameters and formats too
  const std::string key = cache::result_key(kp, rc->secret());
  const int64_t started = floor_now();
  cache::LocalCache* l1 = rc->local(entry_.worker);
  for (int attempt = 0;; ++attempt) {
    if (l1 != nullptr) {
      // The in-process layer: an answer known current at fresh_as_of serves while no floor of
      // its tables has moved since (every write acknowledged since has raised one, locally or
      // through the floor channel), with nothing on the channel unread.
      if (const cache::LocalEntry* le = l1->find(key, floor_now())) {
        rc->stats().lookups.fetch_add(1, std::memory_order_relaxed);
        const FloorSync* fs = floor_sync();
        if (fs != nullptr && fs->subscribed() && !fs->maybe_behind() &&
            floor_board().floor(db_key_, unit.reads) < le->fresh_as_of) {
          hit = true;
          local_reply_ = le->payload;
          co_return co_await answer_cached(unit.size, started, true);
        }
        l1->erase(key);
      }
    }
    const int64_t looked = floor_now();
    co_await rc->lookup(entry_.worker, db_key_, unit.reads, key, fill_.miss);
    if (fill_.miss.what == ResultCache::Lookup::What::kHit) {
      hit = true;
      if (l1 != nullptr) {
        // Current as of the lookup (its versions said so); it lives no longer than in Redis.
        const int64_t left_ms = fill_.miss.expires_ms - wall_ms();
        l1->put(key, cache::LocalEntry{fill_.miss.payload, looked, looked + left_ms * 1000000});
      }
      local_reply_ = std::move(fill_.miss.payload);
      co_return co_await answer_cached(unit.size, started, false);
    }
    if (fill_.miss.what == ResultCache::Lookup::What::kUnavailable) {
      co_return End::kRunning;  // Redis is down or slow: the database answers, nothing stored
    }
    // A miss. If another session of this worker is filling the key, wait for it (bounded) and
    // look again; a second miss goes to the database without a fill of its own.
    std::shared_ptr<Flight> flight = rc->flight(entry_.worker, key);
    if (flight != nullptr) {
      if (attempt > 0 || flight->waiters >= kMaxFlightWaiters) {
        co_return End::kRunning;
      }
      rc->stats().flight_waits.fetch_add(1, std::memory_order_relaxed);
      ++flight->waiters;
      if (!flight->done) {
        asio::steady_timer bound(co_await asio::this_coro::executor, kFlightWait);
        co_await (flight->landed.async_wait(kUse) || bound.async_wait(kUse));
      }
      --flight->waiters;
      continue;
    }
    fill_.ticket = rc->take_off(entry_.worker, key);
    fill_.pending = true;
    fill_.ttl_ms = v.ttl_ms;
    fill_.key = key;
    fill_.started = looked;
    co_return End::kRunning;
  }
}

void TransactionPooling::end_fill() {
  if (fill_.ticket != nullptr) {
    // Its answer was spoiled (an error, a notice, too large) or its server went away.
    if (ResultCache* rc = result_cache()) {
      rc->stats().not_stored.fetch_add(1, std::memory_order_relaxed);
    }
  }
  fill_.pending = false;
  fill_.tap.stop();
  fill_.ticket.reset();  // the waiters look again (and go to the database)
}

// A hit: local_reply_ holds the answer (the unit's replies up to its ReadyForQuery).
asio::awaitable<End> TransactionPooling::answer_cached(size_t unit_size, int64_t started,
                                                       bool local) {
  End e = co_await answer_locally(unit_size);
  const auto us = (floor_now() - started) / 1000;
  ResultCacheStats& st = result_cache()->stats();
  st.hits.fetch_add(1, std::memory_order_relaxed);
  if (local) {
    st.local_hits.fetch_add(1, std::memory_order_relaxed);
  }
  st.hit_us_sum.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
  if (us <= 1000) {
    st.hit_le_1ms.fetch_add(1, std::memory_order_relaxed);
  }
  if (us <= 5000) {
    st.hit_le_5ms.fetch_add(1, std::memory_order_relaxed);
  }
  if (UserStats* us_stats = entry_.stats) {
    us_stats->queries.add(1);
  }
  co_return e;
}

// The fill's unit (its Query or Parse first) is going to the server with nothing owed before it:
// what comes back until ReadyForQuery is its answer.
void TransactionPooling::tap_client_query() {
  if (!fill_.pending) {
    return;
  }
  fill_.pending = false;
  if (ResultCache* rc = result_cache(); rc != nullptr && !conv_.owes_replies()) {
    fill_.tap.start(rc->max_entry_bytes());
  } else {
    end_fill();
  }
}

void TransactionPooling::tap_server_message(char type, std::string_view msg) {
  fill_.tap.on_message(type, msg);
  if (type != 'Z') {
    return;
  }
  ResultCache* rc = result_cache();
  if (rc == nullptr) {
    end_fill();
    return;
  }
  if (fill_.tap.complete()) {
    std::string answer = fill_.tap.take();
    if (cache::LocalCache* l1 = rc->local(entry_.worker)) {
      // It ran on the writer after the lookup: current as of then.
      l1->put(fill_.key, cache::LocalEntry{answer, fill_.started,
                                           fill_.started + int64_t{fill_.ttl_ms} * 1000000});
    }
    rc->fill(entry_.worker, fill_.miss, std::move(answer), fill_.ttl_ms, std::move(fill_.ticket));
  }
  end_fill();  // (counts an answer not stored)
}

}  // namespace pglane::proxy
