// The query cache's narrow interface (implemented on Redis in cache/redis/ by the cache issue).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pglane::cache {

class CacheStore {
 public:
  virtual ~CacheStore() = default;
  virtual std::optional<std::string> get(std::string_view key) = 0;
  virtual void put(std::string_view key, std::string_view value, int ttl_ms) = 0;
};

}  // namespace pglane::cache
