// Statement analysis with a fast path and a cache in front of the parser. One Analyzer per
// worker thread (it is not thread-safe, by design: no locks on the query path).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "routing/lexer.h"
#include "routing/statement.h"

namespace pglane::routing {

struct Analysis {
  enum class Source : uint8_t { kFast, kCache, kParser };
  std::shared_ptr<const StatementInfo> info;
  Hint hint = Hint::kNone;  // the leading /* pglane: route=... */ comment
  Source source = Source::kFast;
};

struct AnalyzerCounters {
  uint64_t fast = 0;        // answered by the fast path
  uint64_t cache_hits = 0;  // answered from the cache (the fast path was not sure)
  uint64_t parsed = 0;      // went to libpg_query
  uint64_t parse_failed = 0;
};

class Analyzer {
 public:
  // `capacity` analyses are kept, least recently used first out; 0 disables the cache.
  explicit Analyzer(size_t capacity = 10000) : capacity_(capacity) {}

  // `exact_writes`: a write the fast path recognised goes to the parser (or the cache) anyway,
  // for every table and function it names (the fast path stops at the first table).
  Analysis analyze(std::string_view sql, bool exact_writes = false);
  const AnalyzerCounters& counters() const { return counters_; }
  size_t cached() const { return index_.size(); }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const StatementInfo>>;
  size_t capacity_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
  std::string key_;   // scratch
  lex::Lexed lexed_;  // scratch: the statement's tokens, for the fast path and the cache key
  AnalyzerCounters counters_;
};

}  // namespace pglane::routing
