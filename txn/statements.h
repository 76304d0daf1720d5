// What pglane knows about its server-side prepared statements (transaction pooling). A client's
// named statement is prepared on servers under a name derived from its text and parameter types
// ("pgl_<hash>_<length>", server_statement_name), so clients preparing the same statement share
// it. Sans-I/O.
//
// Both registries are process-wide (a server connection may serve clients of every worker) and
// take their mutex once per client Parse batch, ParseComplete, Close or disconnect, never per
// Bind/Execute. (A per-worker KnownStatements was tried: more Parses then reached servers, and
// clients saw more of other connected clients' statements in pg_prepared_statements.)
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace pglane::txn {

// The name a client statement gets on servers: the same text and parameter types (the raw
// tail of the Parse body) give the same name.
std::string server_statement_name(std::string_view query, std::string_view types);

// Statements (pool key + server name) that some server has parsed successfully. A client that
// prepares one of them while it holds no server gets ParseComplete from pglane itself: drivers
// such as pgbench prepare synchronously, and making them wait for a server held by another
// client of the same (blocked) thread would deadlock until the queue timeout. If the statement
// stopped being valid (DDL), the error surfaces at its first Bind instead. Process-wide: one
// mutex per Parse-only batch and per ParseComplete, never per Bind/Execute.
class KnownStatements {
 public:
  bool contains(const std::string& key);
  void add(const std::string& key);
  void clear();  // tests and fuzzing: each case starts with nothing known

 private:
  static constexpr size_t kMax = 100000;
  std::mutex mu_;
  absl::flat_hash_set<std::string> set_;
};
KnownStatements& known_statements();

// How many connected clients' statements use each server name. A server statement that no
// connected client uses any more is closed before the server is handed to the next client, so
// a client sees in pg_prepared_statements what it would see on a direct connection (statements
// of clients that have left do not linger). The epoch changes whenever a name loses its last
// user, so a server checks its statements only when something may have died since it last did.
class StatementOwners {
 public:
  void add(const std::string& server_name);
  void remove(const std::string& server_name);
  bool in_use(const std::string& server_name);
  // The names in `held` that no connected client uses.
  std::vector<std::string> unused(const std::list<std::string>& held);
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

 private:
  std::mutex mu_;
  absl::flat_hash_map<std::string, int> counts_;
  std::atomic<uint64_t> epoch_{1};
};
StatementOwners& statement_owners();

// One client statement's claim on its server name, for as long as the client keeps the
// statement (move-only; released on destruction).
class StatementClaim {
 public:
  StatementClaim() = default;
  explicit StatementClaim(std::string server_name) : name_(std::move(server_name)) {
    statement_owners().add(name_);
  }
  StatementClaim(StatementClaim&& o) noexcept : name_(std::exchange(o.name_, {})) {}
  StatementClaim& operator=(StatementClaim&& o) noexcept {
    if (this != &o) {
      release();
      name_ = std::exchange(o.name_, {});
    }
    return *this;
  }
  StatementClaim(const StatementClaim&) = delete;
  StatementClaim& operator=(const StatementClaim&) = delete;
  ~StatementClaim() { release(); }

 private:
  void release() {
    if (!name_.empty()) {
      statement_owners().remove(name_);
      name_.clear();
    }
  }
  std::string name_;
};

// The named statements (server names) one server connection holds, most recently used first.
class ServerStatements {
 public:
  bool has(const std::string& name);  // and marks it most recently used
  bool contains(const std::string& name) const { return index_.contains(name); }
  // Records a statement; returns the least recently used one to Close when over `max`.
  std::optional<std::string> add(const std::string& name, size_t max);
  void forget(const std::string& name);
  void forget_all();
  size_t size() const { return index_.size(); }
  const std::list<std::string>& lru() const { return lru_; }

  // StatementOwners::epoch() when this server last closed statements no client uses.
  uint64_t owners_epoch = 0;

 private:
  std::list<std::string> lru_;
  absl::flat_hash_map<std::string, std::list<std::string>::iterator> index_;
};

}  // namespace pglane::txn
