// One worker's way to a Redis that may be a cluster: a Client per node, the seed (the
// configured endpoint) first. Commands that name a key go to the node its slot was last seen
// on; a -MOVED reply teaches the slot's node and the command goes there, a -ASK reply sends it
// there once (after ASKING), at most kMaxRedirects hops. Against a single Redis it is the seed
// Client and nothing else. Not thread-safe: one per worker executor.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "absl/status/statusor.h"
#include "cache/redis/client.h"

namespace pglane::cache::redis {

struct RouterStats {               // (atomic: read from other threads for the console)
  std::atomic<uint64_t> moved{0};  // -MOVED redirections followed
  std::atomic<uint64_t> asked{0};  // -ASK redirections followed
};

class Router {
 public:
  static constexpr int kMaxRedirects = 3;

  Router(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls, const Options& seed);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // `key`: the index in `args` of the key that picks the node (-1: any node, the seed).
  asio::awaitable<absl::StatusOr<Reply>> call(std::span<const std::string_view> args, int key);
  // To the node last seen serving `slot` (-1: the seed); for commands that name no key but
  // must reach a given node (a PING after a SPUBLISH).
  asio::awaitable<absl::StatusOr<Reply>> call_slot(std::span<const std::string_view> args,
                                                   int slot);

  bool healthy() const { return nodes_.front()->healthy(); }
  // Bumped whenever any node's connection is made anew (see Client::epoch).
  uint64_t epoch() const;
  const RouterStats& stats() const { return stats_; }

 private:
  Client* node(const std::string& host, uint16_t port);

  asio::any_io_executor ex_;
  std::shared_ptr<asio::ssl::context> tls_;
  Options seed_;
  std::vector<std::unique_ptr<Client>> nodes_;  // [0]: the seed
  std::vector<std::string> names_;              // "host:port" of each
  std::array<int16_t, 16384> slots_;            // slot -> node index (0 until a MOVED says)
  RouterStats stats_;
};

}  // namespace pglane::cache::redis
