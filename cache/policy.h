// Which reads the result cache may answer (docs/internals.md, "Result cache"). Pure: from a
// statement's analysis, its text and the rules in [cache].
//
// A statement is cached only when its result depends on nothing but the rows of the tables it
// names and the session's settings (which are in the key): one plain SELECT (or VALUES/TABLE)
// of named tables, no locking clause, no TABLESAMPLE, no system catalog, no function that is not
// known immutable, no CURRENT_* / LOCALTIME* / USER keyword and no 'now'-like literal.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/route.h"
#include "routing/statement.h"

namespace pglane::cache {

struct Rules {
  std::vector<std::string> tables;  // "name" (any schema) or "schema.name", lower case
  bool hints = true;                // honour /* pglane: cache ttl=... */
  int ttl_ms = 30000;
  int max_ttl_ms = 3600000;
  int auto_after = 0;  // a statement seen this often is cached as if listed (0: never)
};

// Verdict::why when only the rules kept a statement out (auto mode may let it in).
// An array, not a pointer: one object with one address in every translation unit, so
// `why == kNoRule` holds wherever the verdict was made (a literal's address need not).
inline constexpr char kNoRule[] = "no rule caches it";

struct Verdict {
  bool cache = false;
  int ttl_ms = 0;
  const char* why = "";  // why not (for logs and SHOW CACHE)
};

// A leading /* pglane: cache */ or /* pglane: cache ttl=30s */ comment (ms, s or m; a bare
// number is seconds). nullopt: no cache hint; 0: a hint without ttl.
std::optional<int> cache_hint_ms(std::string_view sql);

// The statement text of a unit of work the cache can answer whole, or nullopt: one simple Query;
// or, in the extended protocol, one Parse of the unnamed statement, one Bind of it to the
// unnamed portal, Describes of either, one Execute of the unnamed portal with no row limit (a
// partial fetch is never stored or served), and a Sync that ends the unit, nothing else.
// `unit`: the unit's bytes (whole messages).
std::optional<std::string_view> cacheable_unit(std::string_view unit);

// Whether `bytes` (a Bind's parameters) may hold a date/time input that reads the clock
// ('now', 'today', 'tomorrow', 'yesterday'), in any case.
bool mentions_clock(std::string_view bytes);

// Whether the statement's result may be cached. `functions`: the database's volatility catalog
// (null: not loaded, so any function call is uncacheable). `seen_often`: auto mode counted it
// often enough to cache it as if its tables were listed.
Verdict decide(const routing::StatementInfo& info, std::string_view sql, const Rules& rules,
               const routing::FunctionCatalog* functions, bool seen_often = false);

}  // namespace pglane::cache
