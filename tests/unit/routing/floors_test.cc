// Freshness floors (routing/floors.h): what statements write and read, the shared board, and
// placement honouring a floor. No servers, no clock.
#include "routing/floors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

#include "routing/analyzer.h"
#include "routing/placement.h"
#include "routing/statement.h"

namespace pglane::routing {
namespace {

TableSet writes_of(std::string_view sql, const FunctionCatalog* catalog = nullptr) {
  StatementInfo info = analyze_with_parser(sql);
  RouteContext ctx;
  ctx.catalog = catalog;
  TableSet out;
  add_writes(info, ctx, out);
  return out;
}

TableSet reads_of(std::string_view sql, const FunctionCatalog* catalog = nullptr) {
  StatementInfo info = analyze_with_parser(sql);
  RouteContext ctx;
  ctx.catalog = catalog;
  TableSet out;
  add_reads(info, ctx, out);
  return out;
}

bool names(const TableSet& s, std::string_view table) {
  for (uint64_t k : s.named()) {
    if (k == table_key(table)) {
      return true;
    }
  }
  return false;
}

TEST(Floors, PlainWritesNameTheirTable) {
  for (const char* sql : {"INSERT INTO items VALUES (1)", "UPDATE public.Items SET x = 1",
                          "DELETE FROM items WHERE id = 2",
                          "MERGE INTO items t USING src s ON t.id = s.id WHEN MATCHED THEN DELETE",
                          "COPY items FROM STDIN"}) {
    TableSet w = writes_of(sql);
    EXPECT_FALSE(w.unknown) << sql;
    EXPECT_TRUE(names(w, "items")) << sql;
  }
}

TEST(Floors, WritingCteNamesBothTargets) {
  TableSet w = writes_of(
      "WITH moved AS (DELETE FROM queue RETURNING *) INSERT INTO done SELECT * FROM moved");
  EXPECT_FALSE(w.unknown);
  EXPECT_TRUE(names(w, "queue"));
  EXPECT_TRUE(names(w, "done"));
}

TEST(Floors, UnattributableWritesAreUnknown) {
  for (const char* sql :
       {"TRUNCATE items", "ALTER TABLE items ADD COLUMN y int", "DO $$ BEGIN END $$",
        "CALL refresh()", "SELECT my_volatile_function()", "SELECT * INTO copy FROM items",
        "INSERT INTO items VALUES (nextval('s'))", "this is not sql"}) {
    EXPECT_TRUE(writes_of(sql).unknown) << sql;
  }
}

TEST(Floors, ReadsAndReadOnlyFunctionsWriteNothing) {
  FunctionCatalog cat;
  cat.add("pg_catalog", "lower", true);
  for (const char* sql : {"SELECT * FROM items", "SELECT lower(name) FROM items",
                          "SELECT * FROM items FOR UPDATE", "BEGIN", "SET x = 1"}) {
    TableSet w = writes_of(sql, &cat);
    EXPECT_TRUE(w.empty()) << sql;
  }
}

TEST(Floors, ReadsNameTheirTablesAndUserFunctionsReadAnything) {
  TableSet r =
      reads_of("SELECT * FROM items i JOIN Orders o ON o.item = i.id WHERE lower(i.x) = 'a'");
  EXPECT_FALSE(r.unknown);
  EXPECT_TRUE(names(r, "items"));
  EXPECT_TRUE(names(r, "orders"));
  EXPECT_TRUE(reads_of("SELECT report_total()").unknown);
  EXPECT_TRUE(reads_of("SELECT app.report_total()").unknown);
  EXPECT_FALSE(reads_of("SELECT pg_catalog.now()").unknown);
}

TEST(Floors, ReadOnlyTransactionStartCountsAsReadingEverything) {
  // Its later statements run where BEGIN ran, without being placed again.
  EXPECT_TRUE(reads_of("BEGIN READ ONLY").unknown);
  EXPECT_TRUE(reads_of("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").unknown);
}

TEST(Floors, WritesTheFastPathKnowsAreReparsedForEveryTableAndFunction) {
  Analyzer analyzer;
  RouteContext ctx;
  TableSet calls;
  add_writes(*analyzer.analyze("INSERT INTO t VALUES (f())", true).info, ctx, calls);
  EXPECT_TRUE(calls.unknown);
  TableSet two;
  add_writes(*analyzer.analyze("UPDATE a SET x = b.x FROM b WHERE a.id = b.id", true).info, ctx,
             two);
  EXPECT_FALSE(two.unknown);
  EXPECT_TRUE(names(two, "a"));
  TableSet truncate;
  add_writes(*analyzer.analyze("TRUNCATE a, b", true).info, ctx, truncate);
  EXPECT_TRUE(truncate.unknown || (names(truncate, "a") && names(truncate, "b")));
}

TEST(Floors, ManyTablesBecomeUnknown) {
  TableSet s;
  for (int i = 0; i < TableSet::kMax + 1; ++i) {
    s.add(table_key("t" + std::to_string(i)));
  }
  EXPECT_TRUE(s.unknown);
  EXPECT_EQ(s.count, TableSet::kMax);
}

TEST(Floors, BoardKeepsTheLatestWritePerTable) {
  FloorBoard b(64);
  const uint64_t app = database_key("app");
  const uint64_t other = database_key("other");
  TableSet items;
  items.add(table_key("items"));
  TableSet orders;
  orders.add(table_key("orders"));
  EXPECT_EQ(b.floor(app, items), 0);
  b.wrote(app, items, 100);
  b.wrote(app, items, 50);  // an older stamp never lowers a floor
  EXPECT_EQ(b.floor(app, items), 100);
  EXPECT_EQ(b.floor(other, items), 0);  // another database's table of the same name
  // orders may share a slot with something, but never reads lower than its own writes.
  EXPECT_LE(b.floor(app, orders), 100);
  b.wrote(app, orders, 200);
  EXPECT_EQ(b.floor(app, orders), 200);
  TableSet unknown;
  unknown.unknown = true;
  EXPECT_EQ(b.floor(app, unknown), 200);  // a read of unknown tables sees every write
  EXPECT_EQ(b.database_floor(app), 200);
  b.wrote(app, unknown, 300);  // DDL: every table of the database
  EXPECT_EQ(b.floor(app, items), 300);
  EXPECT_EQ(b.floor(other, items), 0);
  b.wrote_everything(400);
  EXPECT_EQ(b.floor(other, items), 400);
}

class FakeView : public HealthView {
 public:
  bool has_analytics() const override { return false; }
  void replicas(std::vector<Candidate>& out) const override {
    out.insert(out.end(), reps.begin(), reps.end());
  }
  std::optional<uint64_t> writer_lsn_since(std::chrono::steady_clock::time_point t) override {
    ++asks;
    return t <= sampled_at ? std::optional<uint64_t>(lsn) : std::nullopt;
  }
  std::vector<Candidate> reps;
  std::chrono::steady_clock::time_point sampled_at;
  uint64_t lsn = 0;
  int asks = 0;
};

TEST(Floors, PlacementWaitsForAReplicaPastTheFloor) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);
  FakeView view;
  Candidate c;
  c.healthy = true;
  c.replay_lsn = 100;
  view.reps = {c};
  Placer placer{PlacementPolicy{}};
  const Decision read{Route::kReader, "read"};
  // No floor: the replica.
  EXPECT_EQ(placer.place(read, view, {}, t0).where, Placement::Where::kReplica);
  // A write at t0 not sampled yet: the writer.
  Placement p = placer.place(read, view, {}, t0, t0);
  EXPECT_EQ(p.where, Placement::Where::kWriter);
  EXPECT_TRUE(p.ryw_fallback);
  // Sampled at 150: the replica at 100 has not replayed it.
  view.sampled_at = t0 + std::chrono::milliseconds(5);
  view.lsn = 150;
  EXPECT_EQ(placer.place(read, view, {}, t0, t0).where, Placement::Where::kWriter);
  // Once it has, it serves the read; the floor's position is asked once.
  view.reps[0].replay_lsn = 150;
  const int asks = view.asks;
  EXPECT_EQ(placer.place(read, view, {}, t0, t0).where, Placement::Where::kReplica);
  EXPECT_EQ(view.asks, asks);
  // Session scope ignores other clients' floors.
  PlacementPolicy session;
  session.scope = FloorScope::kSession;
  Placer own{session};
  view.reps[0].replay_lsn = 0;
  EXPECT_EQ(own.place(read, view, {}, t0, t0).where, Placement::Where::kReplica);
}

TEST(Floors, MessagesRoundTripAndAnythingMalformedIsRefused) {
  TableSet w;
  w.add(table_key("items"));
  w.add(table_key("orders"));
  const std::string text = encode_floor_message(0xabcdef, 1700000000123456, 0x42, w);
  std::optional<FloorMessage> m = decode_floor_message(text);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->gateway, 0xabcdefu);
  EXPECT_EQ(m->sent_us, 1700000000123456);
  EXPECT_EQ(m->db, 0x42u);
  EXPECT_TRUE(names(m->written, "items"));
  EXPECT_TRUE(names(m->written, "orders"));
  EXPECT_FALSE(m->written.unknown);
  TableSet all;
  all.unknown = true;
  std::optional<FloorMessage> db = decode_floor_message(encode_floor_message(1, 2, 3, all));
  ASSERT_TRUE(db);
  EXPECT_TRUE(db->written.unknown);
  for (const char* bad :
       {"", "1", "2 a 1 b c", "1 a 1 b", "1 a 1 b c,", "1 a -1 b c", "1 a 1 b c extra",
        "1 xyz 1 b c", "1 a 1 b ,", "1 a 1 b 12345678901234567"}) {
    EXPECT_FALSE(decode_floor_message(bad)) << bad;
  }
}

TEST(Floors, CatalogRelationsWidenWritesAndExpandViews) {
  FunctionCatalog cat;
  // Relations that could not be read: every write may have changed anything.
  EXPECT_TRUE(writes_of("UPDATE items SET x = 1", &cat).unknown);
  cat.relations().set_loaded();
  cat.relations().add_cascading("parents");  // ON DELETE CASCADE from children
  cat.relations().add_cascading("audited");  // a user trigger
  cat.relations().add_view_base("v_items", "items");
  cat.relations().add_view_base("v_both", "v_items");
  cat.relations().add_view_base("v_both", "other");
  cat.relations().add_view_base("v_loop", "v_loop2");
  cat.relations().add_view_base("v_loop2", "v_loop");
  EXPECT_TRUE(writes_of("DELETE FROM parents WHERE id = 1", &cat).unknown);
  EXPECT_TRUE(writes_of("UPDATE Audited SET x = 1", &cat).unknown);
  EXPECT_TRUE(writes_of("UPDATE v_items SET x = 1", &cat).unknown);
  TableSet plain = writes_of("UPDATE items SET x = 1", &cat);
  EXPECT_FALSE(plain.unknown);
  EXPECT_TRUE(names(plain, "items"));
  TableSet r = reads_of("SELECT * FROM v_both", &cat);
  EXPECT_FALSE(r.unknown);
  EXPECT_TRUE(names(r, "items"));
  EXPECT_TRUE(names(r, "other"));
  EXPECT_TRUE(names(r, "v_both"));               // (a table of that name in another schema)
  cat.relations().add_view_base("v_const", "");  // SELECT 1 AS x: no relation
  EXPECT_TRUE(reads_of("SELECT * FROM v_const", &cat).unknown);
  EXPECT_TRUE(reads_of("SELECT * FROM v_loop", &cat).unknown);  // no base table found
  EXPECT_TRUE(names(reads_of("SELECT * FROM parents", &cat), "parents"));
}

}  // namespace
}  // namespace pglane::routing
