// Maps the BackendKeyData pglane gives each client to the server connection that client is using
// right now, so a CancelRequest reaches exactly that server (docs 55.2.8). Keys are random; a
// client that has no server attached has no target, and its cancel goes nowhere.
#pragma once

#include <mutex>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "conf/config.h"
#include "protocol/messages.h"

namespace pglane::proxy {

struct CancelTarget {
  conf::Endpoint endpoint;
  protocol::CancelKey server_key;
};

class CancelRegistry {
 public:
  // Allocates a fresh random key for a new client session.
  protocol::CancelKey register_client();
  void unregister_client(protocol::CancelKey key);
  // Points the client's key at a server connection, or at nothing.
  void attach(protocol::CancelKey key, const CancelTarget& target);
  void detach(protocol::CancelKey key);
  // The target for a CancelRequest, if the key is known (compared in full) and attached.
  std::optional<CancelTarget> lookup(protocol::CancelKey key);

 private:
  struct KeyHash {
    size_t operator()(const protocol::CancelKey& k) const {
      return std::hash<uint64_t>()((uint64_t(uint32_t(k.pid)) << 32) | uint32_t(k.secret));
    }
  };
  std::mutex mu_;
  absl::flat_hash_map<protocol::CancelKey, std::optional<CancelTarget>, KeyHash> entries_;
};

CancelRegistry& cancel_registry();

}  // namespace pglane::proxy
