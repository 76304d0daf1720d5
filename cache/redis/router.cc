#include "cache/redis/router.h"

#include "absl/strings/str_cat.h"
#include "cache/redis/cluster.h"

namespace pglane::cache::redis {

Router::Router(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls,
               const Options& seed)
    : ex_(std::move(ex)), tls_(std::move(tls)), seed_(seed) {
  nodes_.push_back(std::make_unique<Client>(ex_, tls_, seed_));
  names_.push_back(absl::StrCat(seed_.host, ":", seed_.port));
  slots_.fill(0);
}

uint64_t Router::epoch() const {
  uint64_t sum = 0;
  for (const auto& n : nodes_) {
    sum += n->epoch();
  }
  return sum;
}

Client* Router::node(const std::string& host, uint16_t port) {
  const std::string name = absl::StrCat(host, ":", port);
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) {
      return nodes_[i].get();
    }
  }
  if (nodes_.size() >= 1024) {
    return nullptr;  // a cluster does not have this many masters: something is wrong
  }
  Options o = seed_;
  o.host = host;
  o.port = port;
  // (server_name stays: ElastiCache's nodes share the configuration endpoint's certificate
  // name; empty, each node's certificate must name its address.)
  nodes_.push_back(std::make_unique<Client>(ex_, tls_, o));
  names_.push_back(name);
  return nodes_.back().get();
}

asio::awaitable<absl::StatusOr<Reply>> Router::call(std::span<const std::string_view> args,
                                                    int key) {
  int slot = -1;
  if (key >= 0 && static_cast<size_t>(key) < args.size()) {
    slot = key_slot(args[static_cast<size_t>(key)]);
  }
  co_return co_await call_slot(args, slot);
}

asio::awaitable<absl::StatusOr<Reply>> Router::call_slot(std::span<const std::string_view> args,
                                                         int slot) {
  if (slot >= static_cast<int>(slots_.size())) {
    slot = -1;
  }
  Client* c = nodes_[slot >= 0 ? static_cast<size_t>(slots_[static_cast<size_t>(slot)]) : 0].get();
  absl::StatusOr<Reply> r = co_await c->call(args);
  for (int hop = 0; hop < kMaxRedirects && r.ok(); ++hop) {
    std::optional<Redirect> to = parse_redirect(*r);
    if (!to) {
      break;
    }
    Client* target = node(to->host, to->port);
    if (target == nullptr) {
      break;
    }
    if (to->ask) {
      stats_.asked.fetch_add(1, std::memory_order_relaxed);
      std::string_view asking[1] = {"ASKING"};
      absl::StatusOr<Reply> ok = co_await target->call(asking);
      if (!ok.ok()) {
        co_return ok;
      }
    } else {
      stats_.moved.fetch_add(1, std::memory_order_relaxed);
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].get() == target) {
          slots_[static_cast<size_t>(to->slot)] = static_cast<int16_t>(i);
        }
      }
    }
    r = co_await target->call(args);
  }
  co_return r;
}

}  // namespace pglane::cache::redis
