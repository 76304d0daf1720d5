// The result cache's in-process layer: one per worker thread (not thread-safe), least recently
// used out first within a byte budget. It keeps answers this worker filled or fetched from
// Redis, each with the local time as of which it was known current ("fresh as of"); whoever
// serves one checks that no freshness floor of its tables moved since (proxy/txn_cache.cc), so
// a hit needs no Redis round trip. Pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pglane::cache {

struct LocalEntry {
  std::string payload;
  int64_t fresh_as_of = 0;  // steady_clock ns: every write acknowledged before is in it
  int64_t expires = 0;      // steady_clock ns: its TTL ends
};

class LocalCache {
 public:
  explicit LocalCache(size_t budget_bytes) : budget_(budget_bytes) {}

  // The entry under `key` that has not expired at `now`, or null. Marks it recently used.
  const LocalEntry* find(const std::string& key, int64_t now);
  // Replaces any entry under `key`; evicts the least recently used beyond the budget. An entry
  // larger than a quarter of the budget is not kept.
  void put(const std::string& key, LocalEntry e);
  void erase(const std::string& key);
  size_t bytes() const { return bytes_; }
  size_t size() const { return map_.size(); }

 private:
  using Order = std::list<std::string>;  // most recently used first
  struct Slot {
    LocalEntry entry;
    Order::iterator at;
  };
  static size_t cost(const std::string& key, const LocalEntry& e) {
    // The key is held twice (map and order list), plus nodes and bookkeeping.
    return 2 * key.size() + e.payload.size() + 256;
  }

  size_t budget_;
  size_t bytes_ = 0;
  Order order_;
  std::unordered_map<std::string, Slot> map_;
};

}  // namespace pglane::cache
