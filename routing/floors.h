// Freshness floors (docs/internals.md, "Freshness floors"): for each table, the moment the last
// write to it was known committed, by any client of this gateway (or, through the floor channel,
// of any gateway). A read of tables T may go to a replica only if that replica has replayed past
// the writer position sampled at or after the floors of T.
//
// A floor is a local steady-clock time, not a WAL position: the position of a commit is not
// known when it is acknowledged, but any writer position sampled after that moment bounds it
// (Placer turns the time into a position through HealthView::writer_lsn_since). That also makes
// a floor learnt from another gateway exact without comparing clocks: it is stamped with the
// time it arrived here, which is after the commit.
//
// Tables are named by database and unqualified, case-folded name (schemas are not resolved:
// public.t and audit.t share a floor, which only errs towards the writer). Floors live in a
// fixed array of atomic slots shared by every worker; a collision also only errs towards the
// writer. Writers raise slots with a compare-exchange; readers load them (no lock, no store).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "routing/route.h"
#include "routing/statement.h"

namespace pglane::routing {

// routing.read_your_writes: whose writes a read must see.
enum class FloorScope : uint8_t {
  kOff,       // nobody's: any replica within max_lag_ms
  kSession,   // the client's own writes (its attachment's commit position)
  kTable,     // the client's own, plus every committed write to the tables it reads
  kDatabase,  // the client's own, plus every committed write to its database
};

// The tables a unit (or a transaction's worth of units) touched, as floor keys. Up to kMax
// tables are named; beyond that, or when a statement's tables are not all known, `unknown`.
struct TableSet {
  static constexpr int kMax = 8;
  std::array<uint64_t, kMax> keys{};
  uint8_t count = 0;
  bool unknown = false;  // reads: any table may be involved; writes: any table may have changed

  void add(uint64_t key);
  void merge(const TableSet& other);
  bool empty() const { return count == 0 && !unknown; }
  void clear() { *this = TableSet{}; }
  std::span<const uint64_t> named() const { return {keys.data(), count}; }
};

// The floor key of a table name (unqualified; folded to lower case) and of a database.
uint64_t table_key(std::string_view name);
uint64_t database_key(std::string_view database);

// What a statement writes, for floors. With the database's catalog (`ctx.catalog`), a write to
// a table with triggers, rules, referencing foreign-key actions or inheritance, or to a view,
// is `unknown` (it may change other tables). Tables written by INSERT/UPDATE/DELETE/MERGE/COPY FROM
// (including writing CTEs) are named. Anything else that can change data is `unknown`: utility
// statements (DDL, TRUNCATE, DO, CALL...), a statement the parser rejected, and calls of
// functions not known to be read-only (`catalog`, `allow` as in RouteContext).
void add_writes(const StatementInfo& info, const RouteContext& ctx, TableSet& out);
// What a statement reads. A call of a function outside pg_catalog may read any table: `unknown`.
// A view reads its base tables (`ctx.catalog`'s relations).
void add_reads(const StatementInfo& info, const RouteContext& ctx, TableSet& out);

// What one gateway tells the others on the floor channel: tables of a database were written,
// committed. Text: "1 GATEWAY SENT_US DB TABLES", GATEWAY/DB/table keys in hex, TABLES "*" (every
// table) or comma-separated; SENT_US the sender's wall clock in microseconds (for measuring
// propagation only: floors never compare clocks).
struct FloorMessage {
  uint64_t gateway = 0;
  int64_t sent_us = 0;
  uint64_t db = 0;
  TableSet written;
};
std::string encode_floor_message(uint64_t gateway, int64_t sent_us, uint64_t db,
                                 const TableSet& written);
// nullopt for anything malformed (never trusted in part).
std::optional<FloorMessage> decode_floor_message(std::string_view text);

class FloorBoard {
 public:
  using Nanos = int64_t;  // steady_clock nanoseconds since its epoch; 0 = never

  // `slots` is rounded up to a power of two.
  explicit FloorBoard(size_t slots = 8192);
  FloorBoard(const FloorBoard&) = delete;
  FloorBoard& operator=(const FloorBoard&) = delete;

  // A committed write (known committed at `at`) to the tables in `written` of database `db`.
  // `written.unknown` raises the whole database's floor.
  void wrote(uint64_t db, const TableSet& written, Nanos at);
  // Every table of `db` may have changed (DDL, database scope).
  void wrote_database(uint64_t db, Nanos at);
  // Every table of every database may have changed (a missed floor message, say).
  void wrote_everything(Nanos at);

  // The floor a read of `read` in `db` must respect: the latest write it could observe.
  Nanos floor(uint64_t db, const TableSet& read) const;
  // The latest write anywhere in `db` (database scope).
  Nanos database_floor(uint64_t db) const;

 private:
  static void raise(std::atomic<Nanos>& slot, Nanos at);
  std::atomic<Nanos>& slot(uint64_t key) const;
  static uint64_t all_key(uint64_t db);  // "every table of db changed"
  static uint64_t any_key(uint64_t db);  // "some table of db changed"

  size_t mask_;
  std::unique_ptr<std::atomic<Nanos>[]> slots_;
  std::atomic<Nanos> everything_{0};
};

}  // namespace pglane::routing
