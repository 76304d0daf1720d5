// Redis Cluster, the parts that need no socket: which hash slot a key lives in (CRC16 of the
// key, or of its {hash tag}), and the -MOVED / -ASK redirections a node answers with when the
// slot is served elsewhere. Sans-I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/redis/resp.h"

namespace pglane::cache::redis {

inline constexpr int kClusterSlots = 16384;

// The slot of `key`: CRC16 (XMODEM) of the part between the first '{' and the next '}' when
// that part is not empty, else of the whole key; modulo 16384.
int key_slot(std::string_view key);

struct Redirect {
  bool ask = false;  // -ASK: this command only (send ASKING first); -MOVED: from now on
  int slot = 0;
  std::string host;
  uint16_t port = 0;
};

// The redirection an error reply carries ("MOVED 3999 127.0.0.1:6381", "ASK ..."), or nullopt.
std::optional<Redirect> parse_redirect(const Reply& r);

}  // namespace pglane::cache::redis
