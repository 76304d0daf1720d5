// TransactionPooling's part in the result cache (proxy/result_cache.h, docs/internals.md
// "Result cache"): look a read up before it is placed, answer a hit without a server, and keep
// a miss's answer for the store.
#include "cache/entry.h"
#include "proxy/txn_pooling.h"

namespace pglane::proxy {

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
  const auto asked = std::chrono::steady_clock::now();
  co_await rc->lookup(entry_.worker, db_key_, unit.reads, key, fill_.miss);
  switch (fill_.miss.what) {
    case ResultCache::Lookup::What::kHit: {
      hit = true;
      local_reply_ = std::move(fill_.miss.payload);
      End e = co_await answer_locally(unit.size);
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - asked)
                          .count();
      ResultCacheStats& st = rc->stats();
      st.hits.fetch_add(1, std::memory_order_relaxed);
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
    case ResultCache::Lookup::What::kMiss:
      fill_.pending = true;
      fill_.ttl_ms = v.ttl_ms;
      break;
    case ResultCache::Lookup::What::kUnavailable:
      break;  // Redis is down or slow: the database answers, nothing is stored
  }
  co_return End::kRunning;
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
    rc->fill(entry_.worker, fill_.miss, fill_.tap.take(), fill_.ttl_ms);
  } else {
    rc->stats().not_stored.fetch_add(1, std::memory_order_relaxed);
    fill_.tap.stop();
  }
}

}  // namespace pglane::proxy
