#include "txn/statements.h"

#include "absl/hash/hash.h"
#include "absl/strings/str_format.h"

namespace pglane::txn {

std::string server_statement_name(std::string_view query, std::string_view types) {
  uint64_t h = absl::HashOf(query, types);
  return absl::StrFormat("pgl_%016x_%zu", h, query.size());
}

bool KnownStatements::contains(const std::string& key) {
  std::lock_guard lock(mu_);
  return set_.contains(key);
}

void KnownStatements::clear() {
  std::lock_guard lock(mu_);
  set_.clear();
}

void KnownStatements::add(const std::string& key) {
  std::lock_guard lock(mu_);
  if (set_.size() >= kMax) {
    set_.clear();  // a crude bound; entries are re-learned from the next successful Parse
  }
  set_.insert(key);
}

KnownStatements& known_statements() {
  static KnownStatements known;
  return known;
}

void StatementOwners::add(const std::string& server_name) {
  std::lock_guard lock(mu_);
  ++counts_[server_name];
}

void StatementOwners::remove(const std::string& server_name) {
  std::lock_guard lock(mu_);
  auto it = counts_.find(server_name);
  if (it != counts_.end() && --it->second <= 0) {
    counts_.erase(it);
    epoch_.fetch_add(1, std::memory_order_release);
  }
}

bool StatementOwners::in_use(const std::string& server_name) {
  std::lock_guard lock(mu_);
  return counts_.contains(server_name);
}

std::vector<std::string> StatementOwners::unused(const std::list<std::string>& held) {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& name : held) {
    if (!counts_.contains(name)) {
      out.push_back(name);
    }
  }
  return out;
}

StatementOwners& statement_owners() {
  static StatementOwners owners;
  return owners;
}

bool ServerStatements::has(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return true;
}

std::optional<std::string> ServerStatements::add(const std::string& name, size_t max) {
  if (has(name)) {
    return std::nullopt;
  }
  lru_.push_front(name);
  index_[name] = lru_.begin();
  if (index_.size() <= max) {
    return std::nullopt;
  }
  std::string victim = std::move(lru_.back());
  lru_.pop_back();
  index_.erase(victim);
  return victim;
}

void ServerStatements::forget(const std::string& name) {
  if (auto it = index_.find(name); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
}

void ServerStatements::forget_all() {
  index_.clear();
  lru_.clear();
}

}  // namespace pglane::txn
