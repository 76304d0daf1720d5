// The result cache's keys and values (docs/internals.md, "Result cache"). Pure.
//
// Key: HMAC-SHA-256 under the configured secret of everything that can change a result: the
// database, the login user, every setting the session has (startup parameters and SET values,
// which carry role, search_path, TimeZone, DateStyle, extra_float_digits, custom settings...)
// and the exact statement text (literals included). Keyed, so Redis never sees statement text
// and nobody without the secret can compute where an entry lives.
//
// Value: the wire bytes of the answer (RowDescription, DataRows, CommandComplete), the versions
// of its tables when the query started, when it started, and an HMAC-SHA-256 over all of it and
// the Redis key it is stored under, so a forged, corrupted or moved entry is rejected. The
// answer's bytes may be AES-256-GCM encrypted (cache.encrypt), so Redis holds no row data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pglane::cache {

using SettingPairs = std::vector<std::pair<std::string, std::string>>;

struct KeyParts {
  std::string_view database;
  std::string_view user;
  const SettingPairs* startup = nullptr;   // startup parameters that are settings
  const SettingPairs* settings = nullptr;  // session-level settings as last read
  std::string_view sql;
};

// 64 lower-case hex digits.
std::string result_key(const KeyParts& parts, std::string_view secret);

struct Entry {
  int64_t created_ms = 0;             // wall clock when the query that filled it started
  int32_t ttl_ms = 0;                 // its lifetime from then
  uint64_t creator = 0;               // the gateway process that filled it (random id)
  std::vector<std::string> versions;  // of its tables, as looked up before it ran ("" = none)
  std::string payload;                // T, D..., C as the server sent them
};

// The stored form of `e` for Redis key `redis_key`; `encrypt`: its payload is AES-256-GCM
// encrypted (key derived from `secret`, the Redis key as associated data). "" if OpenSSL failed.
std::string seal(const Entry& e, std::string_view redis_key, std::string_view secret,
                 bool encrypt = false);
// nullopt when `value` is not an entry sealed for `redis_key` under `secret`.
std::optional<Entry> open(std::string_view value, std::string_view redis_key,
                          std::string_view secret);

// Where things live in Redis. Every key of a database shares one hash tag, so that one lookup
// (versions and entry in one MGET) touches one Redis Cluster shard.
std::string database_tag(std::string_view prefix, uint64_t db);            // "pglane:{db:HEX}"
std::string version_key(std::string_view tag, uint64_t table);             // TAG ":v:HEX"
std::string database_version_key(std::string_view tag);                    // TAG ":v:*"
std::string entry_key(std::string_view tag, std::string_view result_key);  // TAG ":c:KEY"

}  // namespace pglane::cache
