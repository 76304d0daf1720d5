// What a SQL string does, as far as routing cares: whether it can write, what it reads and
// writes, which functions it calls, how it starts or ends a transaction, and the routing hint a
// client put in front of it.
//
// Two analysers produce the same StatementInfo:
//  - analyze_fast(): a hand-written lexer over PostgreSQL's lexical rules plus a conservative
//    classifier for the common shapes (plain SELECT, INSERT/UPDATE/DELETE, BEGIN/COMMIT, SET...).
//    It answers only when it is certain; otherwise it says so and the parser decides.
//  - analyze_with_parser(): the real PostgreSQL 15 grammar (libpg_query), walked generically
//    through the protobuf-c descriptors of its parse tree. A statement it rejects goes to the
//    writer.
// Analyzer (routing/analyzer.h) puts the two together behind a bounded cache.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pglane::routing {

namespace lex {
struct Lexed;
}

// Where a client asked a statement to go, by comment hint or by `SET pglane.route`.
enum class Hint : uint8_t { kNone, kWriter, kReader, kAnalytics };

const char* hint_name(Hint h);
std::optional<Hint> parse_hint_value(
    std::string_view v);  // "writer" | "reader" | "analytics" | "default"

struct QualifiedName {
  std::string schema;  // empty when written unqualified
  std::string name;
  bool operator==(const QualifiedName&) const = default;
};

struct StatementInfo {
  enum class Kind : uint8_t {
    kEmpty,          // nothing but whitespace, comments and semicolons
    kRead,           // SELECT, VALUES, TABLE, SHOW, EXPLAIN (no ANALYZE of a write), COPY TO...
    kWrite,          // INSERT/UPDATE/DELETE/MERGE, locking SELECT, SELECT INTO, COPY FROM...
    kTransaction,    // BEGIN/START/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/SET TRANSACTION
    kSetting,        // SET/RESET/DISCARD/DEALLOCATE: follows the session wherever it goes
    kUtility,        // DDL and every other utility statement: writer
    kPglaneSetting,  // SET pglane.route = ...: answered by pglane itself
  };
  // The most demanding statement of the string decides (write > utility > transaction > read).
  Kind kind = Kind::kEmpty;
  bool needs_writer = false;  // certain to need the writer, whatever functions it calls
  bool locks_rows = false;    // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
  bool parse_failed = false;  // the parser rejected it: writer
  int statements = 0;

  // Transaction control (any statement of the string).
  bool begins_transaction = false;  // BEGIN / START TRANSACTION
  bool txn_read_only = false;       // ... READ ONLY (or SET TRANSACTION READ ONLY)
  bool txn_read_write = false;      // ... READ WRITE
  bool txn_serializable = false;    // ... ISOLATION LEVEL SERIALIZABLE
  bool txn_isolation_set = false;   // any explicit isolation level

  std::vector<QualifiedName> tables_read;
  std::vector<QualifiedName> tables_written;
  std::vector<QualifiedName> functions;  // every function called, as written

  Hint set_route = Hint::kNone;  // kPglaneSetting: the value of SET pglane.route
  bool by_parser = false;        // produced by libpg_query (false: the fast path)
};

// The fast path. Returns nullopt when it is not certain.
std::optional<StatementInfo> analyze_fast(std::string_view sql);
// The same over text already tokenised (routing/lexer.h), so Analyzer lexes once for both the
// fast path and the cache key.
std::optional<StatementInfo> analyze_fast(const lex::Lexed& lexed);

// The authority: libpg_query. Never fails; a rejected statement has parse_failed set.
StatementInfo analyze_with_parser(std::string_view sql);

// A leading `/* pglane: route=... */` comment (only before the first token), else kNone.
Hint leading_hint(std::string_view sql);

// The statement text with comments, whitespace and literal values folded away, so statements
// that differ only in constants share one cache entry. Literals never change a route. Returns
// false when the text does not lex (unterminated string, comment or dollar quote).
bool normalize(std::string_view sql, std::string& out);
bool normalize(const lex::Lexed& lexed, std::string& out);

}  // namespace pglane::routing
