#include "proxy/result_cache.h"

#include <chrono>
#include <functional>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "absl/strings/str_cat.h"
#include "cache/entry.h"
#include "proxy/floor_sync.h"
#include "proxy/log.h"

namespace pglane::proxy {

namespace asio = boost::asio;
namespace redis = cache::redis;

namespace {

ResultCache* g_cache = nullptr;

// Another gateway's clock may run this far ahead of ours: an entry must have started this long
// after our reconnection to be trusted.
constexpr int64_t kClockSkewMs = 1000;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ResultCache* result_cache() {
  return g_cache;
}

void set_result_cache(ResultCache* cache) {
  g_cache = cache;
}

absl::StatusOr<std::unique_ptr<ResultCache>> ResultCache::create(
    const conf::Config& cfg, const std::vector<asio::any_io_executor>& workers) {
  if (!cfg.cache.enabled) {
    return nullptr;
  }
  redis::Options opts;
  std::shared_ptr<asio::ssl::context> tls;
  if (absl::Status s = redis_setup(cfg, opts, tls); !s.ok()) {
    return s;
  }
  std::unique_ptr<ResultCache> c(new ResultCache());
  for (const std::string& t : cfg.cache.tables) {
    std::string lower = t;
    for (char& ch : lower) {
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    c->rules_.tables.push_back(std::move(lower));
  }
  c->rules_.hints = cfg.cache.hints;
  c->rules_.ttl_ms = cfg.cache.ttl_ms;
  c->rules_.max_ttl_ms = cfg.cache.max_ttl_ms;
  c->secret_ = cfg.cache.hmac_key;
  c->prefix_ = cfg.cache.key_prefix;
  c->max_entry_bytes_ = static_cast<size_t>(cfg.cache.max_entry_bytes);
  c->encrypt_ = cfg.cache.encrypt;
  for (const auto& ex : workers) {
    c->clients_.push_back(std::make_unique<redis::Router>(ex, tls, opts));
  }
  c->executors_ = workers;
  c->flights_.resize(workers.size());
  c->seen_.resize(workers.size());
  c->rules_.auto_after = cfg.cache.auto_after;
  if (cfg.cache.local_bytes > 0 && !workers.empty()) {
    for (size_t i = 0; i < workers.size(); ++i) {
      c->local_.push_back(std::make_unique<cache::LocalCache>(
          static_cast<size_t>(cfg.cache.local_bytes) / workers.size()));
    }
  }
  std::random_device rd;
  c->token_base_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  c->epoch_seen_.assign(workers.size(), 0);
  // The first connection counts as one: entries from before this process (a Redis failover it
  // did not witness may have lost version writes) are not trusted either.
  c->reconnected_ms_.assign(workers.size(), wall_ms());
  return c;
}

ResultCache::~ResultCache() {
  *alive_ = false;
}

bool ResultCache::healthy(int worker) const {
  return worker >= 0 && static_cast<size_t>(worker) < clients_.size() &&
         clients_[static_cast<size_t>(worker)]->healthy();
}

uint64_t ResultCache::redirects() const {
  uint64_t n = 0;
  for (const auto& c : clients_) {
    n += c->stats().moved.load(std::memory_order_relaxed) +
         c->stats().asked.load(std::memory_order_relaxed);
  }
  return n;
}

std::vector<std::string> ResultCache::version_keys(uint64_t db,
                                                   const routing::TableSet& reads) const {
  const std::string tag = cache::database_tag(prefix_, db);
  std::vector<std::string> keys;
  keys.reserve(reads.count + 2);
  keys.push_back(cache::database_version_key(tag));
  for (uint64_t t : reads.named()) {
    keys.push_back(cache::version_key(tag, t));
  }
  return keys;
}

asio::awaitable<void> ResultCache::lookup(int worker, uint64_t db, const routing::TableSet& reads,
                                          const std::string& key, Lookup& out) {
  auto alive = alive_;
  out = Lookup{};
  out.started_ms = wall_ms();
  stats_.lookups.fetch_add(1, std::memory_order_relaxed);
  const size_t w = static_cast<size_t>(worker);
  if (worker < 0 || w >= clients_.size()) {
    out.what = Lookup::What::kUnavailable;
    co_return;
  }
  out.reads = reads;
  out.version_keys = version_keys(db, reads);
  const std::vector<std::string>& keys = out.version_keys;
  out.redis_key = cache::entry_key(cache::database_tag(prefix_, db), key);
  std::vector<std::string_view> args;
  args.reserve(keys.size() + 2);
  args.push_back("MGET");
  for (const std::string& k : keys) {
    args.push_back(k);
  }
  args.push_back(out.redis_key);
  redis::Router* client = clients_[w].get();
  absl::StatusOr<redis::Reply> r = co_await client->call(args, 1);
  if (!*alive) {
    out.what = Lookup::What::kUnavailable;
    co_return;
  }
  if (!r.ok() || r->type != redis::Reply::Type::kArray || r->elements.size() != keys.size() + 1) {
    out.what = Lookup::What::kUnavailable;
    stats_.unavailable.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
  if (client->epoch() != epoch_seen_[w]) {
    if (epoch_seen_[w] != 0) {
      reconnected_ms_[w] = wall_ms();  // a reconnection, not the first connection
    }
    epoch_seen_[w] = client->epoch();
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const redis::Reply& v = r->elements[i];
    out.versions.push_back(v.type == redis::Reply::Type::kString ? v.str : std::string());
  }
  const redis::Reply& stored = r->elements.back();
  if (stored.type != redis::Reply::Type::kString) {
    stats_.misses.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
  std::optional<cache::Entry> e = cache::open(stored.str, out.redis_key, secret_);
  // Our own entries need no allowance for another gateway's clock.
  if (!e || e->created_ms <= reconnected_ms_[w] + (e->creator == token_base_ ? 0 : kClockSkewMs)) {
    if (!e) {
      PGLANE_LOG_WARN("result cache: rejected entry %s: its signature does not verify",
                      out.redis_key);
    }
    stats_.rejected.fetch_add(1, std::memory_order_relaxed);
    co_return;  // a miss: the fill replaces it
  }
  bool current = e->versions.size() == out.versions.size();
  for (size_t i = 0; current && i < out.versions.size(); ++i) {
    current = !out.versions[i].empty() && e->versions[i] == out.versions[i];
  }
  if (!current) {
    stats_.stale.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
  out.what = Lookup::What::kHit;
  out.payload = std::move(e->payload);
  out.expires_ms = e->created_ms + e->ttl_ms;
}

FlightTicket::~FlightTicket() {
  if (*alive_) {
    rc_->land(worker_, key_, f_);
  }
}

uint32_t ResultCache::seen(int worker, std::string_view unit) {
  if (worker < 0 || static_cast<size_t>(worker) >= seen_.size()) {
    return 0;
  }
  Sightings& s = seen_[static_cast<size_t>(worker)];
  const auto now = std::chrono::steady_clock::now();
  // A minute's window, and a bound on memory: forget everything at either.
  if (now - s.since > std::chrono::minutes(1) || s.count.size() > 65536) {
    s.count.clear();
    s.since = now;
  }
  return ++s.count[std::hash<std::string_view>{}(unit)];
}

std::shared_ptr<Flight> ResultCache::flight(int worker, const std::string& key) {
  if (worker < 0 || static_cast<size_t>(worker) >= flights_.size()) {
    return nullptr;
  }
  auto& m = flights_[static_cast<size_t>(worker)];
  auto it = m.find(key);
  return it == m.end() ? nullptr : it->second;
}

std::unique_ptr<FlightTicket> ResultCache::take_off(int worker, const std::string& key) {
  if (worker < 0 || static_cast<size_t>(worker) >= flights_.size()) {
    return nullptr;
  }
  auto f = std::make_shared<Flight>(executors_[static_cast<size_t>(worker)]);
  flights_[static_cast<size_t>(worker)][key] = f;
  return std::make_unique<FlightTicket>(this, worker, key, std::move(f), alive_);
}

void ResultCache::land(int worker, const std::string& key, const std::shared_ptr<Flight>& f) {
  auto& m = flights_[static_cast<size_t>(worker)];
  auto it = m.find(key);
  if (it != m.end() && it->second == f) {
    m.erase(it);
  }
  f->done = true;
  f->landed.cancel();
}

void ResultCache::fill(int worker, const Lookup& miss, std::string payload, int ttl_ms,
                       std::unique_ptr<FlightTicket> ticket) {
  const size_t w = static_cast<size_t>(worker);
  if (worker < 0 || w >= clients_.size()) {
    return;
  }
  // A table never written through a gateway has no version yet. It gets a fresh token (SET NX)
  // first, and the entry is stored under it only if every such SET won: a write that set the
  // key first, after the lookup, makes this answer possibly older than it (not stored); one
  // that sets it later retires the entry like any other. (An entry trusting "no version" would
  // be current again if a version key were evicted.)
  std::vector<std::pair<std::string, std::string>> inits;  // version key, token
  std::vector<size_t> init_at;
  for (size_t i = 0; i < miss.versions.size(); ++i) {
    if (miss.versions[i].empty()) {
      inits.emplace_back(miss.version_keys[i],
                         absl::StrCat(absl::Hex(token_base_), ".",
                                      token_seq_.fetch_add(1, std::memory_order_relaxed)));
      init_at.push_back(i);
    }
  }
  cache::Entry e;
  e.created_ms = miss.started_ms;
  e.ttl_ms = ttl_ms;
  e.creator = token_base_;
  e.versions = miss.versions;
  for (size_t j = 0; j < inits.size(); ++j) {
    e.versions[init_at[j]] = inits[j].second;
  }
  e.payload = std::move(payload);
  std::string value = cache::seal(e, miss.redis_key, secret_, encrypt_);
  if (value.empty()) {
    stats_.store_failures.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto alive = alive_;
  redis::Router* client = clients_[w].get();
  asio::co_spawn(
      executors_[w],
      [this, alive, client, key = miss.redis_key, value = std::move(value),
       inits = std::move(inits), ttl = std::to_string(ttl_ms),
       ticket = std::shared_ptr<FlightTicket>(std::move(ticket))]() -> asio::awaitable<void> {
        for (const auto& [vkey, token] : inits) {
          if (!*alive) {
            co_return;
          }
          std::string_view nx[4] = {"SET", vkey, token, "NX"};
          auto r = co_await client->call(nx, 1);
          if (!*alive) {
            co_return;
          }
          if (!r.ok() || r->type != redis::Reply::Type::kStatus) {
            stats_.not_stored.fetch_add(1, std::memory_order_relaxed);  // lost the race
            co_return;
          }
        }
        if (!*alive) {
          co_return;
        }
        std::string_view args[5] = {"SET", key, value, "PX", ttl};
        auto r = co_await client->call(args, 1);
        if (*alive) {
          (r.ok() && !r->is_error() ? stats_.stores : stats_.store_failures)
              .fetch_add(1, std::memory_order_relaxed);
        }
      },
      asio::detached);
}

}  // namespace pglane::proxy
