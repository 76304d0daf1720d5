#include "proxy/cancel.h"

#include <cstring>

#include "protocol/scram.h"

namespace pglane::proxy {

protocol::CancelKey CancelRegistry::register_client() {
  std::lock_guard lock(mu_);
  for (;;) {
    std::string raw = protocol::random_bytes(8);
    protocol::CancelKey key;
    std::memcpy(&key.pid, raw.data(), 4);
    std::memcpy(&key.secret, raw.data() + 4, 4);
    key.pid &= 0x3fffffff;  // a positive, pid-looking number; drivers print it
    if (key.pid == 0) {
      continue;
    }
    if (entries_.try_emplace(key, std::nullopt).second) {
      return key;
    }
  }
}

void CancelRegistry::unregister_client(protocol::CancelKey key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

void CancelRegistry::attach(protocol::CancelKey key, const CancelTarget& target) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second = target;
  }
}

void CancelRegistry::detach(protocol::CancelKey key) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second.reset();
  }
}

std::optional<CancelTarget> CancelRegistry::lookup(protocol::CancelKey key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    return std::nullopt;
  }
  return it->second;
}

CancelRegistry& cancel_registry() {
  static CancelRegistry registry;
  return registry;
}

}  // namespace pglane::proxy
