#include "cache/local.h"

namespace pglane::cache {

const LocalEntry* LocalCache::find(const std::string& key, int64_t now) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    return nullptr;
  }
  if (it->second.entry.expires <= now) {
    erase(key);
    return nullptr;
  }
  order_.splice(order_.begin(), order_, it->second.at);
  return &it->second.entry;
}

void LocalCache::put(const std::string& key, LocalEntry e) {
  erase(key);
  const size_t c = cost(key, e);
  if (c > budget_ / 4) {
    return;
  }
  while (bytes_ + c > budget_ && !order_.empty()) {
    erase(order_.back());
  }
  order_.push_front(key);
  bytes_ += c;
  map_.emplace(key, Slot{std::move(e), order_.begin()});
}

void LocalCache::erase(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    return;
  }
  bytes_ -= cost(key, it->second.entry);
  order_.erase(it->second.at);
  map_.erase(it);
}

}  // namespace pglane::cache
