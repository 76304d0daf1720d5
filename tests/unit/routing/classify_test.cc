// The classification corpus (tests/data/classify_corpus.tsv) through the fast path + cache +
// parser, and through the parser alone: both must agree with the expected route.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "conf/config.h"
#include "routing/analyzer.h"
#include "routing/route.h"
#include "routing/statement.h"

namespace pglane::routing {
namespace {

std::string data_path(const char* name) {
  return std::string(PGLANE_SOURCE_DIR) + "/tests/data/" + name;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, '\t')) {
    out.push_back(field);
  }
  return out;
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

const FunctionCatalog& pg15_catalog() {
  static const FunctionCatalog catalog = [] {
    FunctionCatalog c;
    std::ifstream in(data_path("pg15_functions.tsv"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') {
        continue;
      }
      auto f = split_tabs(line);
      if (f.size() >= 3) {
        c.add(f[0], f[1], f[2] == "1");
      }
    }
    return c;
  }();
  return catalog;
}

// The configured default allow-list (conf/config.h), as pglane uses it.
const std::unordered_set<std::string>& allow_list() {
  static const std::unordered_set<std::string> allow = [] {
    const auto& names = conf::RoutingSection{}.read_only_functions;
    return std::unordered_set<std::string>(names.begin(), names.end());
  }();
  return allow;
}

struct Case {
  int line;
  std::string expected;
  std::string sql;
  std::string why;
};

std::vector<Case> corpus() {
  std::vector<Case> out;
  std::ifstream in(data_path("classify_corpus.tsv"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    auto f = split_tabs(line);
    Case c;
    c.line = n;
    c.expected = f.size() > 0 ? f[0] : "";
    c.sql = f.size() > 1 ? unescape(f[1]) : "";
    c.why = f.size() > 2 ? f[2] : "";
    out.push_back(std::move(c));
  }
  return out;
}

RouteContext context() {
  RouteContext ctx;
  ctx.catalog = &pg15_catalog();
  ctx.read_only_allow = &allow_list();
  return ctx;
}

TEST(ClassifyCorpus, HasEnoughCases) {
  EXPECT_GE(pg15_catalog().size(), 2000u);
  EXPECT_GE(corpus().size(), 200u);
}

TEST(ClassifyCorpus, FastPathPlusParserAgreesWithExpected) {
  Analyzer analyzer(1000);
  const auto ctx = context();
  int fast = 0;
  for (const auto& c : corpus()) {
    // Twice: the second answer may come from the cache and must not differ.
    for (int round = 0; round < 2; ++round) {
      Analysis a = analyzer.analyze(c.sql);
      Decision d = decide(*a.info, a.hint, ctx);
      EXPECT_EQ(route_name(d.route), c.expected)
          << "line " << c.line << " round " << round << ": " << c.sql << "\n  (" << c.why
          << ") decided: " << d.why << (a.info->by_parser ? " [parser]" : " [fast path]");
    }
    fast += analyze_fast(c.sql).has_value() ? 1 : 0;
  }
  const auto& n = analyzer.counters();
  std::printf(
      "corpus: %d statements answered by the fast path; analyzer: %lu fast, %lu cache "
      "hits, %lu parsed, %lu rejected\n",
      fast, static_cast<unsigned long>(n.fast), static_cast<unsigned long>(n.cache_hits),
      static_cast<unsigned long>(n.parsed), static_cast<unsigned long>(n.parse_failed));
}

TEST(ClassifyCorpus, ParserAloneAgreesWithExpected) {
  const auto ctx = context();
  for (const auto& c : corpus()) {
    StatementInfo info = analyze_with_parser(c.sql);
    Decision d = decide(info, leading_hint(c.sql), ctx);
    EXPECT_EQ(route_name(d.route), c.expected)
        << "line " << c.line << ": " << c.sql << "\n  (" << c.why << ") decided: " << d.why;
  }
}

TEST(Analyzer, FastPathAnswersPgbenchShapes) {
  for (const char* sql : {"SELECT abalance FROM pgbench_accounts WHERE aid = 4242;",
                          "UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 7;",
                          "SELECT a.x, b.y FROM a JOIN b ON a.id = b.aid JOIN c ON c.id = b.cid "
                          "WHERE a.z = $1 ORDER BY a.x LIMIT 10"}) {
    EXPECT_TRUE(analyze_fast(sql).has_value()) << sql;
  }
  auto info = analyze_fast("SELECT a.x FROM s.a JOIN b ON true, c WHERE x = 1");
  ASSERT_TRUE(info);
  ASSERT_EQ(info->tables_read.size(), 3u);
  EXPECT_EQ(info->tables_read[0], (QualifiedName{"s", "a"}));
  EXPECT_EQ(info->tables_read[1], (QualifiedName{"", "b"}));
  EXPECT_EQ(info->tables_read[2], (QualifiedName{"", "c"}));
}

TEST(Analyzer, CacheAnswersStatementsThatDifferOnlyInConstants) {
  Analyzer analyzer(10);
  analyzer.analyze("WITH x AS (SELECT 1) SELECT * FROM x WHERE a = 'one'");
  Analysis a = analyzer.analyze("WITH x AS (SELECT 2) SELECT * FROM x WHERE a = 'two'");
  EXPECT_EQ(analyzer.counters().parsed, 1u);
  EXPECT_EQ(analyzer.counters().cache_hits, 1u);
  EXPECT_EQ(a.info->kind, StatementInfo::Kind::kRead);
}

TEST(Analyzer, CacheIsBounded) {
  Analyzer analyzer(3);
  for (int i = 0; i < 10; ++i) {
    analyzer.analyze("WITH x AS (SELECT 1) SELECT * FROM x" + std::to_string(i));
  }
  EXPECT_EQ(analyzer.cached(), 3u);
}

TEST(Analyzer, ParserRecordsTablesAndFunctions) {
  StatementInfo info = analyze_with_parser(
      "WITH w AS (UPDATE s.t SET a = nextval('q') RETURNING *) SELECT * FROM w JOIN u ON true");
  EXPECT_TRUE(info.needs_writer);
  ASSERT_EQ(info.tables_written.size(), 1u);
  EXPECT_EQ(info.tables_written[0], (QualifiedName{"s", "t"}));
  ASSERT_EQ(info.functions.size(), 1u);
  EXPECT_EQ(info.functions[0].name, "nextval");
}

TEST(Decide, TransactionsNeverSplitAndSerializableStaysOnTheWriter) {
  auto ctx = context();
  auto route = [&](const char* sql) {
    return decide(*Analyzer(0).analyze(sql).info, leading_hint(sql), ctx).route;
  };
  EXPECT_EQ(route("BEGIN"), Route::kWriter);
  EXPECT_EQ(route("BEGIN READ ONLY"), Route::kReader);
  EXPECT_EQ(route("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"), Route::kWriter);
  ctx.default_read_only = true;
  EXPECT_EQ(route("BEGIN"), Route::kReader);
  EXPECT_EQ(route("BEGIN READ WRITE"), Route::kWriter);
  ctx.default_serializable = true;
  EXPECT_EQ(route("BEGIN"), Route::kWriter);
  EXPECT_EQ(route("BEGIN ISOLATION LEVEL REPEATABLE READ"), Route::kReader);
}

TEST(Decide, SessionHintMovesReadsOnly) {
  auto ctx = context();
  ctx.session_hint = Hint::kAnalytics;
  EXPECT_EQ(decide(*Analyzer(0).analyze("SELECT 1").info, Hint::kNone, ctx).route,
            Route::kAnalytics);
  EXPECT_EQ(decide(*Analyzer(0).analyze("DELETE FROM t").info, Hint::kNone, ctx).route,
            Route::kWriter);
  EXPECT_EQ(decide(*Analyzer(0).analyze("SELECT 1").info, Hint::kWriter, ctx).route,
            Route::kWriter);
}

TEST(Decide, UnknownCatalogSendsEveryCallToTheWriter) {
  RouteContext ctx;
  EXPECT_EQ(decide(*Analyzer(0).analyze("SELECT lower('A')").info, Hint::kNone, ctx).route,
            Route::kWriter);
  EXPECT_EQ(decide(*Analyzer(0).analyze("SELECT 1").info, Hint::kNone, ctx).route, Route::kReader);
}

TEST(ChooseReplica, PrefersOwnRegionThenNearestThenLeastBusy) {
  std::vector<Candidate> c(4);
  c[0] = {true, 1, 0, 100, 900, 0};  // remote, far
  c[1] = {true, 2, 0, 100, 300, 5};  // remote, near
  c[2] = {true, 0, 0, 100, 50, 3};   // local
  c[3] = {true, 0, 0, 100, 60, 1};   // local, less busy
  ReadRequirement need;
  EXPECT_EQ(choose_replica(c, need), 3);
  c[3].healthy = false;
  EXPECT_EQ(choose_replica(c, need), 2);
  c[2].lag_ms = 5000;  // too far behind
  EXPECT_EQ(choose_replica(c, need), 1);
  need.min_lsn = 200;  // read-your-writes: nobody has replayed that far
  EXPECT_EQ(choose_replica(c, need), -1);
  c[0].replay_lsn = 250;
  EXPECT_EQ(choose_replica(c, need), 0);
  need.remote = false;  // routing.remote_replicas = false: only the home region's replicas
  EXPECT_EQ(choose_replica(c, need), -1);
  c[2].lag_ms = 0;
  c[2].replay_lsn = 300;
  EXPECT_EQ(choose_replica(c, need), 2);
}

TEST(ChooseReplica, EquallyGoodReplicasTakeTurnsAClearlyNearerOneWins) {
  std::vector<Candidate> c(3);
  c[0] = {true, 0, 0, 100, 500, 0};
  c[1] = {true, 0, 0, 100, 540, 0};  // within the slack of c[0]
  c[2] = {true, 0, 0, 100, 900, 0};  // clearly farther
  ReadRequirement need;
  std::vector<int> picks;
  for (uint32_t r = 0; r < 4; ++r) {
    need.rotation = r;
    picks.push_back(choose_replica(c, need));
  }
  EXPECT_EQ(picks, (std::vector<int>{0, 1, 0, 1}));
  c[1].outstanding = 1;  // busier: out of the turns
  need.rotation = 1;
  EXPECT_EQ(choose_replica(c, need), 0);
  c[0].healthy = false;  // the only one left at the least outstanding is far, still chosen
  c[1].outstanding = 2;
  EXPECT_EQ(choose_replica(c, need), 2);
}

// Found in review: each of these once came out as a read.
TEST(ClassifyRegression, LineCommentEndsAtCarriageReturnToo) {
  const auto ctx = context();
  const std::string sql = "SELECT 1; --\rDELETE FROM t";
  EXPECT_EQ(decide(*Analyzer(0).analyze(sql).info, Hint::kNone, ctx).route, Route::kWriter);
  EXPECT_EQ(decide(analyze_with_parser(sql), Hint::kNone, ctx).route, Route::kWriter);
}

TEST(ClassifyRegression, CacheKeyKeepsLiteralsThatChangeTheRoute) {
  const auto ctx = context();
  Analyzer analyzer(100);
  EXPECT_EQ(
      decide(*analyzer.analyze("EXPLAIN (ANALYZE 0) DELETE FROM t").info, Hint::kNone, ctx).route,
      Route::kReader);
  EXPECT_EQ(
      decide(*analyzer.analyze("EXPLAIN (ANALYZE 1) DELETE FROM t").info, Hint::kNone, ctx).route,
      Route::kWriter);
}

TEST(ClassifyRegression, FunctionsNamedLikeKeywordsAreCalls) {
  const auto ctx = context();
  for (const char* sql : {"SELECT next('jobs')", "SELECT first(x) FROM t"}) {
    EXPECT_EQ(decide(*Analyzer(0).analyze(sql).info, Hint::kNone, ctx).route, Route::kWriter)
        << sql;
  }
  EXPECT_EQ(decide(*Analyzer(0).analyze("SELECT left('abc', 2)").info, Hint::kNone, ctx).route,
            Route::kReader);
}

// Found by the sql fuzz target: after a dot every word names a function, keywords included
// (f.as(...), m.user(...) may be volatile functions in schema f or m), so the fast path must
// record the call (or leave the statement to the parser), never skip it as syntax.
TEST(FastPath, KeywordCalledAfterADotIsAFunctionCall) {
  for (auto [sql, fn] : std::vector<std::pair<const char*, const char*>>{
           {"SELECT f.AS(\"for\")%f", "as"},
           {"SELECT+M.user()", "user"},
           {"SELECT s.select(1)", "select"},
           {"SELECT s.in(1)", "in"},
           {"SELECT s.current_timestamp(0)", "current_timestamp"}}) {
    auto info = analyze_fast(sql);
    if (!info) {
      continue;  // the parser decides
    }
    bool called = false;
    for (const auto& f : info->functions) {
      called = called || f.name == fn;
    }
    EXPECT_TRUE(called) << sql;
  }
}

// Found by the sql fuzz target ("SELECT+filter()"): OVER, FILTER, ROLLUP, CUBE and SETS are
// syntax only in their places; elsewhere they name functions (maybe volatile ones).
TEST(FastPath, ConstructWordsOutOfPlaceGoToTheParser) {
  for (const char* sql : {"SELECT+filter()", "SELECT over(1)", "SELECT rollup(x) FROM t",
                          "SELECT random() over(), rollup(0), now()", "SELECT cube(1, 2)",
                          "SELECT * FROM t WHERE sets(a)"}) {
    EXPECT_FALSE(analyze_fast(sql).has_value()) << sql;
  }
  for (const char* sql :
       {"SELECT count(*) FILTER (WHERE a > 0) FROM t", "SELECT sum(a) OVER (PARTITION BY b) FROM t",
        "SELECT a, b, count(*) FROM t GROUP BY ROLLUP (a, b)",
        "SELECT a FROM t GROUP BY GROUPING SETS ((a), ())"}) {
    auto info = analyze_fast(sql);
    if (info) {
      EXPECT_EQ(info->kind, StatementInfo::Kind::kRead) << sql;
    }
  }
}

}  // namespace
}  // namespace pglane::routing
