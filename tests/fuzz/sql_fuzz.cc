// Fuzzes statement analysis (routing/lexer.h, routing/statement.h, routing/analyzer.h) with
// arbitrary SQL text, as a client sends it in a Query or Parse message.
//
// An input is one or two statements separated by a NUL byte (a NUL cannot occur inside a query
// string on the wire). Both go through one Analyzer, so the second may be answered from the
// cache entry of the first when the two normalize to the same key.
//
// Besides the sanitizers, it checks that every token lies inside the text it came from, in
// order, and the routing safety rule (TESTING.md D23): whatever the Analyzer answers (fast path,
// cache or parser) may send a statement to a replica only if libpg_query's own analysis of that
// very text would too (text the grammar rejects runs nowhere), and only a string the parser sees
// as `SET pglane.route` alone is answered by pglane itself.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_set>

#include "conf/config.h"
#include "routing/analyzer.h"
#include "routing/lexer.h"
#include "routing/route.h"
#include "routing/statement.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace pglane::routing;
using Kind = StatementInfo::Kind;

// The PostgreSQL 15 catalog the unit tests use, so that read-only functions can reach a replica.
const FunctionCatalog& catalog() {
  static const FunctionCatalog c = [] {
    FunctionCatalog out;
    std::ifstream in(std::string(PGLANE_SOURCE_DIR) + "/tests/data/pg15_functions.tsv");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') {
        continue;
      }
      const std::size_t t1 = line.find('\t');
      const std::size_t t2 = line.find('\t', t1 + 1);
      if (t1 != std::string::npos && t2 != std::string::npos) {
        out.add(line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1) == "1");
      }
    }
    return out;
  }();
  return c;
}

const std::unordered_set<std::string>& allow_list() {
  static const std::unordered_set<std::string> allow = [] {
    const auto& names = pglane::conf::RoutingSection{}.read_only_functions;
    return std::unordered_set<std::string>(names.begin(), names.end());
  }();
  return allow;
}

void check_tokens(std::string_view sql) {
  lex::Lexed lexed;
  lex::tokenize(sql, lexed);
  const char* end = sql.data();
  for (const lex::Token& t : lexed.tokens) {
    // Quoted identifiers come back without their quotes, so may be empty; nothing else is.
    FUZZ_CHECK(!t.text.empty() || t.type == lex::T::kQIdent);
    FUZZ_CHECK(t.text.data() >= end);
    FUZZ_CHECK(t.text.data() + t.text.size() <= sql.data() + sql.size());
    end = t.text.data() + t.text.size();
  }
  // The overloads over raw text and over tokens are the same analysis.
  std::string a;
  std::string b;
  const bool ok_a = normalize(sql, a);
  const bool ok_b = normalize(lexed, b);
  FUZZ_CHECK(ok_a == ok_b && a == b);
  FUZZ_CHECK(!ok_a || lexed.ok);  // text that does not lex has no key
  const auto fast = analyze_fast(lexed);
  FUZZ_CHECK(fast.has_value() == analyze_fast(sql).has_value());
  FUZZ_CHECK(!fast || lexed.ok);
  leading_hint(sql);
}

void check_route(std::string_view sql, const Analysis& analysis) {
  FUZZ_CHECK(analysis.info != nullptr);
  const StatementInfo& got = *analysis.info;
  const StatementInfo parsed = analyze_with_parser(sql);
  FUZZ_CHECK(parsed.by_parser);
  if (parsed.parse_failed) {
    // PostgreSQL parses a whole Query string before it runs any of it, so text its grammar
    // rejects runs nowhere: wherever it goes, it fails the same way.
    return;
  }
  if (got.kind == Kind::kPglaneSetting) {
    FUZZ_CHECK(parsed.kind == Kind::kPglaneSetting && parsed.set_route == got.set_route);
  }
  RouteContext ctx;
  ctx.catalog = &catalog();
  ctx.read_only_allow = &allow_list();
  for (bool default_read_only : {false, true}) {
    ctx.default_read_only = default_read_only;
    if (decide(got, Hint::kNone, ctx).route == Route::kReader) {
      if (decide(parsed, Hint::kNone, ctx).route != Route::kReader) {
        std::fprintf(stderr, "routed to a replica by the %s, to the writer by the parser (%s)\n",
                     analysis.source == Analysis::Source::kFast    ? "fast path"
                     : analysis.source == Analysis::Source::kCache ? "analysis cache"
                                                                   : "parser",
                     decide(parsed, Hint::kNone, ctx).why);
        FUZZ_CHECK(!"a write reaches a replica");
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view first = input.substr(0, nul);
  const std::string_view second =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  Analyzer analyzer(16);
  for (std::string_view sql : {first, second}) {
    // libpg_query reads a C string: text after a NUL is not part of the statement.
    sql = sql.substr(0, sql.find('\0'));
    check_tokens(sql);
    check_route(sql, analyzer.analyze(sql));
    if (nul == std::string_view::npos) {
      break;
    }
  }
  return 0;
}
