#include "routing/analyzer.h"

#include "routing/lexer.h"

namespace pglane::routing {

Analysis Analyzer::analyze(std::string_view sql, bool exact_writes) {
  Analysis out;
  out.hint = leading_hint(sql);
  lexed_.tokens.clear();
  lexed_.ok = true;
  lex::tokenize(sql, lexed_);
  if (auto fast = analyze_fast(lexed_);
      fast && !(exact_writes && fast->kind == StatementInfo::Kind::kWrite)) {
    ++counters_.fast;
    out.info = std::make_shared<const StatementInfo>(std::move(*fast));
    return out;
  }
  // Text that does not even lex is not worth a cache entry: it fails on the writer.
  const bool lexed = normalize(lexed_, key_);
  if (lexed && capacity_ > 0) {
    if (auto it = index_.find(std::string_view(key_)); it != index_.end()) {
      ++counters_.cache_hits;
      out.source = Analysis::Source::kCache;
      lru_.splice(lru_.begin(), lru_, it->second);
      out.info = it->second->second;
      return out;
    }
  }
  ++counters_.parsed;
  out.source = Analysis::Source::kParser;
  auto info = std::make_shared<const StatementInfo>(analyze_with_parser(sql));
  if (info->parse_failed) {
    ++counters_.parse_failed;
  }
  out.info = info;
  if (lexed && capacity_ > 0) {
    lru_.emplace_front(key_, info);
    index_.emplace(std::string_view(lru_.front().first), lru_.begin());
    while (index_.size() > capacity_) {
      index_.erase(std::string_view(lru_.back().first));
      lru_.pop_back();
    }
  }
  return out;
}

}  // namespace pglane::routing
