#include "proxy/floor_sync.h"

#include <chrono>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "cache/entry.h"
#include "cache/redis/cluster.h"
#include "proxy/freshness.h"
#include "proxy/log.h"
#include "proxy/topology.h"

namespace pglane::proxy {

namespace asio = boost::asio;
namespace redis = cache::redis;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
FloorSync* g_sync = nullptr;

// KEYS: the version keys of what was written; ARGV: the new token, the channel, the message
// (an empty channel: a cluster, where the floor goes by SPUBLISH to the channel's own node).
constexpr std::string_view kPublishScript =
    "local ok = true "
    "for i = 1, #KEYS do "
    "  local r = redis.pcall('SET', KEYS[i], ARGV[1]) "
    "  if type(r) == 'table' and r.err then ok = false end "
    "end "
    "local n = 0 "
    "if ARGV[2] ~= '' then n = redis.call('PUBLISH', ARGV[2], ARGV[3]) end "
    "if not ok then return redis.error_reply('PGLANE versions not set (the floor was published)') "
    "end "
    "return n";

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void raise_max(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

}  // namespace

absl::Status redis_setup(const conf::Config& cfg, redis::Options& opts,
                         std::shared_ptr<asio::ssl::context>& tls) {
  const conf::RedisSection& r = cfg.redis;
  opts.host = r.endpoint.host;
  opts.port = r.endpoint.port;
  opts.tls = r.tls;
  opts.server_name = r.server_name;
  opts.user = r.credential.user;
  opts.password = r.credential.password;
  opts.connect_timeout = std::chrono::milliseconds(r.connect_timeout_ms);
  opts.command_timeout = std::chrono::milliseconds(r.command_timeout_ms);
  tls = nullptr;
  if (r.tls) {
    auto ctx = redis::make_tls_context(r.ca_file, r.cert_file, r.key_file);
    if (!ctx.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(cfg.path, ": redis: ", ctx.status().message()));
    }
    tls = *ctx;
  }
  return absl::OkStatus();
}

uint64_t FloorSyncStats::delay_quantile_us(double q) const {
  uint64_t total = 0;
  for (const auto& b : delay_buckets) {
    total += b.load(std::memory_order_relaxed);
  }
  if (total == 0) {
    return 0;
  }
  const auto want = static_cast<uint64_t>(q * static_cast<double>(total) + 0.999999);
  uint64_t seen = 0;
  for (size_t i = 0; i < delay_buckets.size(); ++i) {
    seen += delay_buckets[i].load(std::memory_order_relaxed);
    if (seen >= want) {
      return i < kDelayBoundsUs.size() ? kDelayBoundsUs[i]
                                       : delay_max_us.load(std::memory_order_relaxed);
    }
  }
  return delay_max_us.load(std::memory_order_relaxed);
}

FloorSync* floor_sync() {
  return g_sync;
}

void set_floor_sync(FloorSync* sync) {
  g_sync = sync;
}

absl::StatusOr<std::unique_ptr<FloorSync>> FloorSync::create(
    const conf::Config& cfg, asio::any_io_executor control,
    const std::vector<asio::any_io_executor>& workers) {
  if (!cfg.redis.enabled) {
    return nullptr;
  }
  const conf::RedisSection& r = cfg.redis;
  redis::Options opts;
  std::shared_ptr<asio::ssl::context> tls;
  if (absl::Status st = redis_setup(cfg, opts, tls); !st.ok()) {
    return st;
  }
  std::unique_ptr<FloorSync> s(new FloorSync());
  s->channel_ = r.floor_channel;
  s->key_prefix_ = cfg.cache.key_prefix;
  s->wait_ms_ = r.floor_wait_ms;
  s->sharded_ = r.cluster;
  s->control_ = control;
  std::random_device rd;
  s->gateway_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  for (const auto& ex : workers) {
    s->clients_.push_back(std::make_unique<redis::Router>(ex, tls, opts));
  }
  s->executors_ = workers;
  redis::Subscriber::Hooks hooks;
  FloorSync* self = s.get();
  hooks.message = [self](std::string_view m) { self->on_message(m); };
  hooks.subscribed = [self] {
    self->distrust();  // anything sent while we were away is lost
    self->subscribed_.store(true, std::memory_order_relaxed);
    PGLANE_LOG_INFO("floor channel: subscribed to %s", self->channel_);
  };
  hooks.lost = [self, ep = r.endpoint.to_string()](const absl::Status& why) {
    const bool was = self->subscribed_.exchange(false, std::memory_order_relaxed);
    self->distrust();
    if (was) {
      PGLANE_LOG_WARN(
          "floor channel: lost (%s); reads need the writer's latest position until "
          "it is back",
          why.message());
    } else {
      PGLANE_LOG_DEBUG("floor channel: %s unreachable: %s", ep, why.message());
    }
  };
  s->subscriber_ =
      std::make_unique<redis::Subscriber>(control, tls, opts, r.floor_channel, hooks, r.cluster);
  return s;
}

FloorSync::~FloorSync() {
  *alive_ = false;
}

void FloorSync::start() {
  distrust();
  subscriber_->start();
  auto alive = alive_;
  asio::co_spawn(
      control_,
      [this, alive]() -> asio::awaitable<void> {
        if (*alive) {
          co_await outage_ticks();
        }
      },
      asio::detached);
}

void FloorSync::stop() {
  *alive_ = false;
  subscriber_->stop();
}

asio::awaitable<void> FloorSync::outage_ticks() {
  auto alive = alive_;
  asio::steady_timer t(control_);
  while (*alive) {
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(kUse);
    if (*alive && !subscribed()) {
      distrust();
    }
  }
}

void FloorSync::distrust() {
  stats_.resyncs.fetch_add(1, std::memory_order_relaxed);
  floor_board().wrote_everything(floor_now());
}

void FloorSync::on_message(std::string_view payload) {
  std::optional<routing::FloorMessage> d = routing::decode_floor_message(payload);
  if (!d) {
    PGLANE_LOG_DEBUG("floor channel: ignored a malformed message");
    return;
  }
  if (d->gateway == gateway_) {
    return;  // ours: the board has it already
  }
  floor_board().wrote(d->db, d->written, floor_now());
  if (d->written.unknown) {
    // DDL elsewhere may have added a trigger, a rule or a view (at most once a second).
    if (Topology* t = topology()) {
      t->reload_catalogs();
    }
  }
  stats_.received.fetch_add(1, std::memory_order_relaxed);
  const int64_t delay = std::max<int64_t>(0, wall_us() - d->sent_us);
  stats_.delay_sum_us.fetch_add(static_cast<uint64_t>(delay), std::memory_order_relaxed);
  raise_max(stats_.delay_max_us, static_cast<uint64_t>(delay));
  size_t b = 0;
  while (b < FloorSyncStats::kDelayBoundsUs.size() &&
         static_cast<uint64_t>(delay) > FloorSyncStats::kDelayBoundsUs[b]) {
    ++b;
  }
  stats_.delay_buckets[b].fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<void> FloorSync::publish(int worker, uint64_t db,
                                         const routing::TableSet& written) {
  if (worker < 0 || static_cast<size_t>(worker) >= clients_.size()) {
    co_return;
  }
  // The PUBLISH runs as a coroutine of its own on this worker, never cancelled half-written;
  // the session waits for it at most wait_ms_.
  struct Done {
    explicit Done(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool finished = false;
  };
  const asio::any_io_executor& ex = executors_[static_cast<size_t>(worker)];
  auto done = std::make_shared<Done>(ex);
  done->timer.expires_after(std::chrono::milliseconds(wait_ms_));
  auto alive = alive_;
  redis::Router* client = clients_[static_cast<size_t>(worker)].get();
  std::string message = routing::encode_floor_message(gateway_, wall_us(), db, written);
  // The written tables' versions (the result cache's invalidation; proxy/result_cache.h) change
  // in the same script as the PUBLISH, before the commit is acknowledged.
  std::vector<std::string> keys;
  const std::string tag = cache::database_tag(key_prefix_, db);
  keys.push_back(cache::database_version_key(tag));
  if (!written.unknown) {
    keys.clear();
    for (uint64_t t : written.named()) {
      keys.push_back(cache::version_key(tag, t));
    }
  }
  std::string token =
      absl::StrCat(absl::Hex(gateway_), ".", token_seq_.fetch_add(1, std::memory_order_relaxed));
  asio::co_spawn(
      ex,
      [this, alive, client, done, message = std::move(message), keys = std::move(keys),
       token = std::move(token), db, written]() -> asio::awaitable<void> {
        if (!*alive) {
          co_return;
        }
        std::vector<std::string_view> args = {"EVAL", kPublishScript};
        const std::string nkeys = std::to_string(keys.size());
        args.push_back(nkeys);
        args.insert(args.end(), keys.begin(), keys.end());
        args.push_back(token);
        args.push_back(sharded_ ? std::string_view() : std::string_view(channel_));
        args.push_back(message);
        // (The keys, all under the database's hash tag, pick the cluster node.)
        auto r = co_await client->call(args, keys.empty() ? -1 : 3);
        if (r.ok() && r->is_error()) {
          r = absl::PermissionDeniedError("redis: " + r->str);  // -NOPERM and the like
        }
        if (r.ok() && *alive && sharded_) {
          // In a cluster a PUBLISH reaches other nodes' subscribers over the cluster bus, later
          // than anything here could prove; a sharded one is delivered by the channel's own
          // node, where every gateway subscribes.
          std::string_view spublish[3] = {"SPUBLISH", channel_, message};
          r = co_await client->call(spublish, 1);
          if (r.ok() && r->is_error()) {
            r = absl::PermissionDeniedError("redis: " + r->str);
          }
        }
        if (r.ok() && *alive) {
          // Redis writes a PUBLISH's reply and its messages to subscribers in the same pass of
          // its event loop, in no set order, so the reply alone does not prove that the other
          // gateways' sockets have the message. A command sent after the reply is read in a
          // later pass, after that one: its reply does (at the node that delivered it).
          std::string_view ping[1] = {"PING"};
          r = co_await client->call_slot(ping, sharded_ ? redis::key_slot(channel_) : -1);
        }
        if (*alive) {
          // The versions changed (or failed to) only now: raise the floors again, so that a
          // cache lookup that began before this, and saw the old versions, is not kept in the
          // in-process layer as current (proxy/txn_cache.cc).
          floor_board().wrote(db, written, floor_now());
        }
        done->finished = true;
        done->timer.cancel();
        if (*alive) {
          (r.ok() ? stats_.published : stats_.publish_failures)
              .fetch_add(1, std::memory_order_relaxed);
        }
      },
      asio::detached);
  if (wait_ms_ > 0 && !done->finished) {
    co_await done->timer.async_wait(kUse);
  }
}

}  // namespace pglane::proxy
