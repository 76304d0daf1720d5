// Statement analysis costs: the fast path on a cache miss (it does not use the cache), the
// analyser's cache hit path, the libpg_query fallback, and the session-effects scan every
// pooled statement gets (byte-level for plain statements, else lexed). Run:
// build/bench/analysis_bench
#include <benchmark/benchmark.h>

#include "routing/analyzer.h"
#include "routing/route.h"
#include "routing/session_effects.h"
#include "routing/statement.h"

namespace {

using namespace pglane::routing;

constexpr const char* kPgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
constexpr const char* kPgbenchUpdate =
    "UPDATE pgbench_accounts SET abalance = abalance + -3112 WHERE aid = 48213;";
constexpr const char* kJoin =
    "SELECT o.id, c.name, sum(l.qty * l.price) AS total FROM orders o "
    "JOIN customers c ON c.id = o.customer_id JOIN order_lines l ON l.order_id = o.id "
    "WHERE o.created_at >= $1 AND c.region = $2 GROUP BY o.id, c.name ORDER BY total DESC "
    "LIMIT 20";
constexpr const char* kCte =
    "WITH recent AS (SELECT customer_id, count(*) AS n FROM orders WHERE created_at > now() - "
    "interval '7 days' GROUP BY customer_id) SELECT c.name, r.n FROM recent r JOIN customers c "
    "ON c.id = r.customer_id ORDER BY r.n DESC LIMIT 10";

void BM_Fast(benchmark::State& state, const char* sql) {
  for (auto _ : state) {
    auto info = analyze_fast(sql);
    benchmark::DoNotOptimize(info);
  }
}
BENCHMARK_CAPTURE(BM_Fast, pgbench_select, kPgbenchSelect);
BENCHMARK_CAPTURE(BM_Fast, pgbench_update, kPgbenchUpdate);
BENCHMARK_CAPTURE(BM_Fast, three_table_join, kJoin);

void BM_Parser(benchmark::State& state, const char* sql) {
  for (auto _ : state) {
    auto info = analyze_with_parser(sql);
    benchmark::DoNotOptimize(info);
  }
}
BENCHMARK_CAPTURE(BM_Parser, pgbench_select, kPgbenchSelect);
BENCHMARK_CAPTURE(BM_Parser, three_table_join, kJoin);
BENCHMARK_CAPTURE(BM_Parser, cte, kCte);

// The whole analyser: fast path first; a CTE misses it and is answered by the cache.
void BM_Analyzer(benchmark::State& state, const char* sql) {
  Analyzer analyzer(1000);
  analyzer.analyze(sql);
  for (auto _ : state) {
    auto a = analyzer.analyze(sql);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK_CAPTURE(BM_Analyzer, pgbench_select, kPgbenchSelect);
BENCHMARK_CAPTURE(BM_Analyzer, cte_cache_hit, kCte);

// `scan`: analyze_session_effects (byte-level for plain statements) or the lexed reference.
void BM_SessionEffects(benchmark::State& state, SessionEffects (*scan)(std::string_view),
                       const char* sql) {
  for (auto _ : state) {
    auto fx = scan(sql);
    benchmark::DoNotOptimize(fx);
  }
}
BENCHMARK_CAPTURE(BM_SessionEffects, pgbench_select, analyze_session_effects, kPgbenchSelect);
BENCHMARK_CAPTURE(BM_SessionEffects, pgbench_update, analyze_session_effects, kPgbenchUpdate);
BENCHMARK_CAPTURE(BM_SessionEffects, three_table_join, analyze_session_effects, kJoin);
BENCHMARK_CAPTURE(BM_SessionEffects, lexed_pgbench_select, analyze_session_effects_lexed,
                  kPgbenchSelect);
BENCHMARK_CAPTURE(BM_SessionEffects, lexed_pgbench_update, analyze_session_effects_lexed,
                  kPgbenchUpdate);

// Analysis plus the route decision, as a session does it per statement.
void BM_AnalyzeAndDecide(benchmark::State& state) {
  Analyzer analyzer(1000);
  FunctionCatalog catalog;
  catalog.add("pg_catalog", "sum", true);
  catalog.add("pg_catalog", "now", true);
  RouteContext ctx;
  ctx.catalog = &catalog;
  for (auto _ : state) {
    auto a = analyzer.analyze(kJoin);
    auto d = decide(*a.info, a.hint, ctx);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_AnalyzeAndDecide);

}  // namespace
