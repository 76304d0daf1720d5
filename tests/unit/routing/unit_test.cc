// Request units (routing/unit.h): classify_unit over frames built with protocol's encoders, the
// statement memo, and unit_fits.
#include "routing/unit.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include "protocol/messages.h"

namespace pglane::routing {
namespace {

namespace p = protocol;

// A frame protocol/ has no encoder for (Execute, Flush, FunctionCall, CopyData).
std::string frame(char type, std::string_view body) {
  std::string out(1, type);
  const uint32_t len = static_cast<uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((len >> shift) & 0xff));
  }
  out.append(body);
  return out;
}

std::string query(std::string_view sql) {
  std::string out;
  p::encode_query(out, sql);
  return out;
}

std::string parse(std::string_view name, std::string_view sql) {
  std::string out;
  p::encode_parse(out, name, sql, std::string_view("\0\0", 2));  // no parameter types
  return out;
}

std::string bind(std::string_view statement) {
  std::string out;
  // No parameter formats, no parameters, no result formats.
  p::encode_bind(out, "", statement, std::string_view("\0\0\0\0\0\0", 6));
  return out;
}

std::string describe_portal() {
  std::string out;
  p::encode_describe(out, 'P', "");
  return out;
}

std::string execute() {
  return frame('E', std::string_view("\0\0\0\0\0", 5));  // unnamed portal, no row limit
}

std::string sync() {
  std::string out;
  p::encode_sync(out);
  return out;
}

std::string flush() {
  return frame('H', "");
}

// Parse, Bind, Describe, Execute, Sync of `sql` through the unnamed statement.
std::string extended(std::string_view sql) {
  return parse("", sql) + bind("") + describe_portal() + execute() + sync();
}

class UnitTest : public ::testing::Test {
 protected:
  Unit classify(std::string_view data, bool scs_off = false) {
    auto lookup = [this](std::string_view name) -> const PreparedPlan* {
      auto it = plans_.find(std::string(name));
      return it == plans_.end() ? nullptr : &it->second;
    };
    return classify_unit(data, memo_, ctx_, scs_off, p::kDefaultMaxMessage, lookup);
  }

  // A named statement as the session keeps it after the client's Parse.
  void prepare(const std::string& name, std::string_view sql) {
    PreparedPlan plan;
    plan.fx = analyze_session_effects(sql);
    plan.analysis = analyzer_.analyze(sql);
    plans_[name] = plan;
  }

  int64_t analyses() const {
    return stats_.analysis_fast.load() + stats_.analysis_cache_hits.load() +
           stats_.analysis_parsed.load();
  }

  Analyzer analyzer_;
  RouteStats stats_;
  StatementMemo memo_{&analyzer_, &stats_};
  RouteContext ctx_;  // no function catalog: every function call is a possible write
  std::unordered_map<std::string, PreparedPlan> plans_;
};

TEST_F(UnitTest, SimpleSelectIsAReader) {
  const std::string data = query("SELECT 1");
  Unit u = classify(data);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kReader);
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, UpdateGoesToTheWriter) {
  const std::string data = query("UPDATE t SET a = 1");
  Unit u = classify(data);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, OnlyTheFirstQueryIsTheUnit) {
  const std::string first = query("SELECT 1");
  Unit u = classify(first + query("UPDATE t SET a = 1"));
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kReader);
  EXPECT_EQ(u.size, first.size());
}

TEST_F(UnitTest, RouteSettingAloneIsAnsweredLocally) {
  const std::string set = query("SET pglane.route = writer");
  Unit u = classify(set + query("SELECT 1"));
  EXPECT_EQ(u.state, UnitState::kLocalSet);
  EXPECT_EQ(u.set_value, Hint::kWriter);
  EXPECT_EQ(u.size, set.size());
}

TEST_F(UnitTest, RouteSettingAfterUnsyncedMessagesIsPartOfTheirUnit) {
  const std::string data = parse("", "SELECT 1") + query("SET pglane.route = writer");
  Unit u = classify(data);
  EXPECT_NE(u.state, UnitState::kLocalSet);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, ExtendedSelectIsAReaderOfAllItsBytes) {
  const std::string data = extended("SELECT 1");
  Unit u = classify(data + query("UPDATE t SET a = 1"));
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kReader);
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, IncompleteAtEveryByteUntilTheSync) {
  const std::string data = extended("SELECT 1");
  for (size_t cut = 0; cut < data.size(); ++cut) {
    EXPECT_EQ(classify(std::string_view(data).substr(0, cut)).state, UnitState::kIncomplete)
        << "cut at " << cut;
  }
  Unit u = classify(data);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kReader);
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, SimpleQueryIncompleteAtEveryByte) {
  const std::string data = query("SELECT 1");
  for (size_t cut = 0; cut < data.size(); ++cut) {
    EXPECT_EQ(classify(std::string_view(data).substr(0, cut)).state, UnitState::kIncomplete)
        << "cut at " << cut;
  }
  EXPECT_EQ(classify(data).state, UnitState::kDecided);
}

TEST_F(UnitTest, AWriteDecidesBeforeTheUnitEnds) {
  const std::string p = parse("", "UPDATE t SET a = 1");
  const std::string data = p + bind("") + execute() + sync();
  for (size_t cut = p.size(); cut <= data.size(); ++cut) {
    Unit u = classify(std::string_view(data).substr(0, cut));
    EXPECT_EQ(u.state, UnitState::kDecided) << "cut at " << cut;
    EXPECT_EQ(u.d.route, Route::kWriter);
    EXPECT_EQ(u.size, p.size());  // what was looked at, not the whole unit
  }
}

TEST_F(UnitTest, BindOfAnUnknownStatementGoesToTheWriter) {
  Unit u = classify(bind("s1") + execute() + sync());
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "unknown statement");
}

TEST_F(UnitTest, BindOfAnUnanalysedStatementGoesToTheWriter) {
  plans_["s1"] = PreparedPlan{};  // analysis.info null
  Unit u = classify(bind("s1") + execute() + sync());
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "unknown statement");
}

TEST_F(UnitTest, BindOfAKnownStatementTakesItsDecision) {
  prepare("r", "SELECT 1");
  prepare("w", "DELETE FROM t");
  const std::string read = bind("r") + execute() + sync();
  Unit u = classify(read);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kReader);
  EXPECT_EQ(u.size, read.size());
  u = classify(bind("w") + execute() + sync());
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "writes");
}

TEST_F(UnitTest, BindOfAPinningStatementGoesToTheWriter) {
  prepare("l", "LISTEN x");
  Unit u = classify(bind("l") + execute() + sync());
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "pins the session");
}

TEST_F(UnitTest, BindOfTheUnnamedStatementAloneIsNeutral) {
  const std::string data = bind("") + execute() + sync();
  Unit u = classify(data);
  EXPECT_EQ(u.state, UnitState::kNeutral);
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, PinningStatementGoesToTheWriter) {
  Unit u = classify(query("LISTEN x"));
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "pins the session");
  u = classify(extended("SELECT pg_advisory_lock(1)"));
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "pins the session");
}

TEST_F(UnitTest, FlushWithoutSyncGoesToTheWriter) {
  const std::string data = parse("", "SELECT 1") + bind("") + execute() + flush();
  Unit u = classify(data + sync());
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "flushed without Sync");
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, FunctionCallGoesToTheWriter) {
  // FunctionCall: function OID, no argument formats, no arguments, text result.
  const std::string data = frame('F', std::string_view("\0\0\x04\xd2\0\0\0\0\0\0", 10));
  Unit u = classify(data);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "function call");
  EXPECT_EQ(u.size, data.size());
}

TEST_F(UnitTest, StandardConformingStringsOffSendsEverythingToTheWriter) {
  Unit u = classify(query("SELECT 1"), /*scs_off=*/true);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "standard_conforming_strings is off");
  EXPECT_EQ(analyses(), 0);
}

TEST_F(UnitTest, LoneSyncIsNeutral) {
  Unit u = classify(sync() + query("UPDATE t SET a = 1"));
  EXPECT_EQ(u.state, UnitState::kNeutral);
  EXPECT_EQ(u.size, 5u);
}

TEST_F(UnitTest, CopyDataContinuesWhatTheServerDoes) {
  Unit u = classify(frame('d', "1\t2\n"));
  EXPECT_EQ(u.state, UnitState::kNeutral);
}

TEST_F(UnitTest, AnalyticsHintMergesBelowTheWriter) {
  const std::string analytics = "/* pglane: route=analytics */ SELECT 1";
  Unit u = classify(extended(analytics));
  EXPECT_EQ(u.d.route, Route::kAnalytics);
  u = classify(parse("", "SELECT 1") + parse("", analytics) + sync());
  EXPECT_EQ(u.d.route, Route::kAnalytics);
  u = classify(parse("", analytics) + parse("", "INSERT INTO t VALUES (1)") + sync());
  EXPECT_EQ(u.d.route, Route::kWriter);
}

// A Parse of more than kMaxInspected bytes, whole or just its header.
std::string huge_parse() {
  std::string sql = "SELECT 1 ";
  sql.append(kMaxInspected, ' ');
  return parse("", sql);
}

TEST_F(UnitTest, ParseOverSixtyFourKibIsNotAnalysed) {
  const std::string data = huge_parse() + sync();
  Unit u = classify(data);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "not analysed");
  EXPECT_EQ(u.size, 0u);
  // Decided from the header alone.
  u = classify(std::string_view(data).substr(0, p::kHeaderSize));
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_STREQ(u.d.why, "not analysed");
  EXPECT_EQ(analyses(), 0);
}

TEST_F(UnitTest, UnitNotEndingWithinSixtyFourKibIsNotAnalysed) {
  std::string data;
  while (data.size() <= kMaxInspected) {
    data += parse("", "SELECT 1") + bind("") + execute();
  }
  Unit u = classify(data + sync());
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "not analysed");
  // Without its end: as much buffered as the session holds for analysis.
  u = classify(data);
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_STREQ(u.d.why, "not analysed");
}

TEST_F(UnitTest, FrameViolationGoesToTheWriter) {
  const std::string data = query("SELECT 1");
  Unit u = classify_unit(data, memo_, ctx_, false, /*max_message=*/4, [](std::string_view) {
    return static_cast<const PreparedPlan*>(nullptr);
  });
  EXPECT_EQ(u.state, UnitState::kDecided);
  EXPECT_EQ(u.d.route, Route::kWriter);
  EXPECT_STREQ(u.d.why, "not analysed");
}

TEST_F(UnitTest, TheSameTextIsAnalysedOnce) {
  const std::string data = extended("SELECT 1");
  classify(data);
  classify(data);
  memo_.analyze("SELECT 1");
  memo_.effects("SELECT 1");
  EXPECT_EQ(analyses(), 1);
  EXPECT_EQ(stats_.analysis_fast.load(), 1);
  EXPECT_EQ(analyzer_.counters().fast, 1u);
  classify(query("SELECT 2"));
  EXPECT_EQ(analyses(), 2);
}

TEST(StatementMemoTest, CountsByWhereTheAnswerCameFrom) {
  Analyzer analyzer;
  RouteStats stats;
  StatementMemo memo(&analyzer, &stats);
  memo.analyze("SELEC 1");  // the parser rejects it
  EXPECT_EQ(stats.analysis_parsed.load(), 1);
  EXPECT_EQ(stats.analysis_rejected.load(), 1);
  memo.analyze("SELECT 1");
  EXPECT_EQ(stats.analysis_fast.load(), 1);
}

TEST(StatementMemoTest, HugeTextsAreNeitherRememberedNorCounted) {
  Analyzer analyzer;
  RouteStats stats;
  StatementMemo memo(&analyzer, &stats);
  std::string sql = "SELECT 1 ";
  sql.append(kMaxInspected, ' ');
  EXPECT_TRUE(memo.analyze(sql).info);
  EXPECT_TRUE(memo.analyze(sql).info);
  EXPECT_EQ(analyzer.counters().fast, 2u);
  EXPECT_EQ(stats.analysis_fast.load(), 0);
  EXPECT_EQ(memo.effects(sql).pin_reason, nullptr);
}

TEST(StatementMemoTest, EffectsWithRoutingOff) {
  StatementMemo memo(nullptr, nullptr);
  EXPECT_STREQ(memo.effects("LISTEN x").pin_reason, "LISTEN");
  EXPECT_TRUE(memo.effects("SET work_mem = '1MB'").may_change_settings);
}

TEST(StatementMemoTest, WorksWithoutStats) {
  Analyzer analyzer;
  StatementMemo memo(&analyzer, nullptr);
  EXPECT_EQ(memo.analyze("SELECT 1").info->kind, StatementInfo::Kind::kRead);
  EXPECT_STREQ(memo.effects("LISTEN x").pin_reason, "LISTEN");
}

Unit decided(Route r) {
  Unit u;
  u.state = UnitState::kDecided;
  u.d = {r, "test"};
  return u;
}

TEST(UnitFitsTest, UndecidedUnitsFitAnywhere) {
  Unit neutral;
  neutral.state = UnitState::kNeutral;
  for (Route attached : {Route::kWriter, Route::kReader, Route::kAnalytics}) {
    EXPECT_TRUE(unit_fits(attached, neutral, true));
    EXPECT_TRUE(unit_fits(attached, Unit{}, true));
  }
}

TEST(UnitFitsTest, WriterRunsAllButAnalyticsWhenThereIsAnAnalyticsEndpoint) {
  EXPECT_TRUE(unit_fits(Route::kWriter, decided(Route::kWriter), true));
  EXPECT_TRUE(unit_fits(Route::kWriter, decided(Route::kReader), true));
  EXPECT_FALSE(unit_fits(Route::kWriter, decided(Route::kAnalytics), true));
  EXPECT_TRUE(unit_fits(Route::kWriter, decided(Route::kAnalytics), false));
}

TEST(UnitFitsTest, ReplicaOnlyReadsAnalyticsOnlyAnalytics) {
  EXPECT_TRUE(unit_fits(Route::kReader, decided(Route::kReader), true));
  EXPECT_FALSE(unit_fits(Route::kReader, decided(Route::kWriter), true));
  EXPECT_FALSE(unit_fits(Route::kReader, decided(Route::kAnalytics), false));
  EXPECT_TRUE(unit_fits(Route::kAnalytics, decided(Route::kAnalytics), true));
  EXPECT_FALSE(unit_fits(Route::kAnalytics, decided(Route::kReader), true));
  EXPECT_FALSE(unit_fits(Route::kAnalytics, decided(Route::kWriter), true));
}

}  // namespace
}  // namespace pglane::routing
