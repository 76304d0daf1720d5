// TransactionPooling's part in the result cache (proxy/result_cache.h, docs/internals.md
// "Result cache"): look a read up before it is placed, answer a hit without a server, and keep
// a miss's answer for the store.
#include <chrono>

#include "cache/entry.h"
#include "proxy/floor_sync.h"
#include "proxy/freshness.h"
#include "proxy/txn_pooling.h"

namespace pglane::proxy {

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

asio::awaitable<End> TransactionPooling::try_cache(const routing::Unit& unit, bool& hit) {
  hit = false;
  fill_.pending = false;
  fill_.tap.stop();
  ResultCache* rc = result_cache();
  if (rc == nullptr || unit.reads.unknown || unit.reads.empty() || conv_.pinned() != nullptr ||
      conv_.settings().dirty() || conv_.settings().tainted()) {
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
  const cache::Verdict v = cache::decide(*a.info, sql, rc->rules(), catalog_.get());
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
  if (l1 != nullptr) {
    // The in-process layer: an answer known current at fresh_as_of serves while no floor of its
    // tables has moved since (every write acknowledged since has raised one, locally or
    // through the floor channel), with nothing on the channel unread.
    if (const cache::LocalEntry* le = l1->find(key, started)) {
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
  co_await rc->lookup(entry_.worker, db_key_, unit.reads, key, fill_.miss);
  switch (fill_.miss.what) {
    case ResultCache::Lookup::What::kHit: {
      hit = true;
      if (l1 != nullptr) {
        // Current as of the lookup (its versions said so); it lives no longer than in Redis.
        const int64_t left_ms = fill_.miss.expires_ms - wall_ms();
        l1->put(key, cache::LocalEntry{fill_.miss.payload, unit.reads, started,
                                       started + left_ms * 1000000});
      }
      local_reply_ = std::move(fill_.miss.payload);
      co_return co_await answer_cached(unit.size, started, false);
    }
    case ResultCache::Lookup::What::kMiss:
      fill_.pending = true;
      fill_.ttl_ms = v.ttl_ms;
      fill_.key = key;
      fill_.started = started;
      break;
    case ResultCache::Lookup::What::kUnavailable:
      break;  // Redis is down or slow: the database answers, nothing is stored
  }
  co_return End::kRunning;
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
  }
}

void TransactionPooling::tap_server_message(char type, std::string_view msg) {
  fill_.tap.on_message(type, msg);
  if (type != 'Z') {
    return;
  }
  ResultCache* rc = result_cache();
  if (rc == nullptr) {
    fill_.tap.stop();
    return;
  }
  if (fill_.tap.complete()) {
    std::string answer = fill_.tap.take();
    if (cache::LocalCache* l1 = rc->local(entry_.worker)) {
      // It ran on the writer after the lookup: current as of then.
      l1->put(fill_.key, cache::LocalEntry{answer, fill_.miss.reads, fill_.started,
                                           fill_.started + int64_t{fill_.ttl_ms} * 1000000});
    }
    rc->fill(entry_.worker, fill_.miss, std::move(answer), fill_.ttl_ms);
  } else {
    rc->stats().not_stored.fetch_add(1, std::memory_order_relaxed);
    fill_.tap.stop();
  }
}

}  // namespace pglane::proxy
