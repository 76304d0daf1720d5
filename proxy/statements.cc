#include "proxy/statements.h"

namespace pglane::proxy {

bool KnownStatements::contains(const std::string& key) {
  std::lock_guard lock(mu_);
  return set_.contains(key);
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

}  // namespace pglane::proxy
