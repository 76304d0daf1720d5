// Fuzzes the session-state scan (routing/session_effects.h) with arbitrary SQL text.
//
// The scan is lexical and may over-report (an extra settings read-back, a needless pin), but it
// must never under-report: a missed SET, temporary table or LISTEN leaks one client's session
// state to the next client of a pooled server (TESTING.md C18). So whenever libpg_query, the
// PostgreSQL 15 grammar itself, parses the text, each top-level statement it finds must be
// reflected in what the scan says: session SETs and RESETs change settings (and name their
// custom settings), DISCARD and DO/CALL are seen, and LISTEN, LOAD, PREPARE, WITH HOLD cursors,
// SET ROLE / SESSION AUTHORIZATION and temporary relations pin the session.
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "routing/session_effects.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pglane::routing::SessionEffects;

// DECLARE ... WITH HOLD sets this bit in DeclareCursorStmt.options (parsenodes.h).
constexpr int32_t kCursorOptHold = 0x0020;

std::string_view str(const char* s) {
  return s == nullptr ? std::string_view() : std::string_view(s);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// A relation that lives only as long as the session: TEMP / TEMPORARY, or created in pg_temp
// (PostgreSQL makes a relation in pg_temp temporary whatever the statement says).
bool temporary(const PgQuery__RangeVar* rel) {
  return rel != nullptr && (str(rel->relpersistence) == "t" || str(rel->schemaname) == "pg_temp");
}

// PostgreSQL 15 accepts a custom (placeholder) setting only under a name of two or more simple
// identifiers joined by dots (guc.c, valid_custom_variable_name); SET of any other dotted name
// fails on the server, so there is nothing to read back.
bool valid_custom_name(std::string_view name) {
  bool saw_dot = false;
  bool part_start = true;
  for (const char c : name) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                        static_cast<unsigned char>(c) >= 0x80;
    if (c == '.') {
      if (part_start) {
        return false;
      }
      saw_dot = true;
      part_start = true;
    } else if (letter) {
      part_start = false;
    } else if (part_start || !((c >= '0' && c <= '9') || c == '$')) {
      return false;
    }
  }
  return !part_start && saw_dot;
}

bool has_custom(const SessionEffects& fx, std::string_view name) {
  return std::find(fx.custom_settings.begin(), fx.custom_settings.end(), lower(name)) !=
         fx.custom_settings.end();
}

void report(const char* what, std::string_view sql) {
  std::fprintf(stderr, "session effects missed: %s\n  in: %.*s\n", what,
               static_cast<int>(std::min<std::size_t>(sql.size(), 500)), sql.data());
}

#define EXPECT_SEEN(cond, what) \
  do {                          \
    if (!(cond)) {              \
      report(what, sql);        \
      FUZZ_CHECK(cond);         \
    }                           \
  } while (0)

void check_statement(const PgQuery__Node* node, const SessionEffects& fx, std::string_view sql,
                     bool only_statement) {
  switch (node->node_case) {
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT: {
      const PgQuery__VariableSetStmt* s = node->variable_set_stmt;
      const std::string_view name = str(s->name);
      if (s->is_local || name == "TRANSACTION" || name == "TRANSACTION SNAPSHOT") {
        break;  // gone at the end of the transaction
      }
      EXPECT_SEEN(fx.may_change_settings, "a session SET/RESET");
      const bool named = s->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE ||
                         s->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT ||
                         s->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_SET_CURRENT ||
                         s->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET;
      if (named && valid_custom_name(name)) {
        // Named, or (a name pglane will not write into its own SQL) the server is reset after.
        EXPECT_SEEN(has_custom(fx, name) || fx.opaque_code, "the name of a custom setting");
      }
      if (s->kind != PG_QUERY__VARIABLE_SET_KIND__VAR_RESET &&
          (name == "role" || name == "session_authorization")) {
        EXPECT_SEEN(fx.pin_reason != nullptr, "SET ROLE / SESSION AUTHORIZATION");
      }
      break;
    }
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
      EXPECT_SEEN(fx.may_change_settings, "DISCARD");
      if (node->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL) {
        EXPECT_SEEN(fx.discard_all, "DISCARD ALL");
      }
      break;
    case PG_QUERY__NODE__NODE_DO_STMT:
    case PG_QUERY__NODE__NODE_CALL_STMT:
      EXPECT_SEEN(fx.may_change_settings && fx.opaque_code, "DO / CALL");
      break;
    case PG_QUERY__NODE__NODE_LISTEN_STMT:
    case PG_QUERY__NODE__NODE_LOAD_STMT:
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
      EXPECT_SEEN(fx.pin_reason != nullptr, "LISTEN / LOAD / PREPARE");
      break;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
      if (node->declare_cursor_stmt->options & kCursorOptHold) {
        EXPECT_SEEN(fx.pin_reason != nullptr, "a WITH HOLD cursor");
      }
      break;
    case PG_QUERY__NODE__NODE_CREATE_STMT:
      EXPECT_SEEN(!temporary(node->create_stmt->relation) || fx.pin_reason != nullptr,
                  "a temporary table");
      break;
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
      const PgQuery__IntoClause* into = node->create_table_as_stmt->into;
      EXPECT_SEEN(into == nullptr || !temporary(into->rel) || fx.pin_reason != nullptr,
                  "a temporary table (CREATE TABLE AS)");
      break;
    }
    case PG_QUERY__NODE__NODE_VIEW_STMT:
      EXPECT_SEEN(!temporary(node->view_stmt->view) || fx.pin_reason != nullptr,
                  "a temporary view");
      break;
    case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
      EXPECT_SEEN(!temporary(node->create_seq_stmt->sequence) || fx.pin_reason != nullptr,
                  "a temporary sequence");
      break;
    case PG_QUERY__NODE__NODE_SELECT_STMT:
      // SELECT ... INTO [TEMP] t; in a set operation the INTO sits on the leftmost SELECT.
      for (const PgQuery__SelectStmt* s = node->select_stmt; s != nullptr; s = s->larg) {
        if (s->into_clause != nullptr) {
          EXPECT_SEEN(!temporary(s->into_clause->rel) || fx.pin_reason != nullptr,
                      "a temporary table (SELECT INTO)");
        }
      }
      break;
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT: {
      const std::string_view name = str(node->deallocate_stmt->name);
      if (name.empty()) {
        EXPECT_SEEN(fx.deallocate_all, "DEALLOCATE ALL");
      } else if (only_statement) {
        EXPECT_SEEN(fx.is_single_deallocate && fx.deallocate_name == name,
                    "the name in DEALLOCATE");
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A query string on the wire is a C string: it ends at the first NUL.
  std::string sql(reinterpret_cast<const char*>(data), size);
  sql.resize(std::string_view(sql).find('\0') == std::string_view::npos
                 ? sql.size()
                 : std::string_view(sql).find('\0'));
  const SessionEffects fx = pglane::routing::analyze_session_effects(sql);
  // The byte-level fast path answers exactly as the lexer would.
  FUZZ_CHECK(fx == pglane::routing::analyze_session_effects_lexed(sql));

  // Shape of the answer itself.
  FUZZ_CHECK(!fx.discard_all || fx.may_change_settings);
  FUZZ_CHECK(!fx.opaque_code || fx.may_change_settings);
  FUZZ_CHECK(fx.is_single_deallocate || fx.deallocate_name.empty());
  for (std::size_t i = 0; i < fx.custom_settings.size(); ++i) {
    const std::string& name = fx.custom_settings[i];
    FUZZ_CHECK(name.find('.') != std::string::npos && name == lower(name));
    FUZZ_CHECK(std::count(fx.custom_settings.begin(), fx.custom_settings.end(), name) == 1);
  }

  // What the grammar sees must be reflected in the answer.
  PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql.c_str());
  if (r.error == nullptr) {
    PgQuery__ParseResult* tree = pg_query__parse_result__unpack(
        nullptr, r.parse_tree.len, reinterpret_cast<const uint8_t*>(r.parse_tree.data));
    if (tree != nullptr) {
      for (std::size_t i = 0; i < tree->n_stmts; ++i) {
        if (tree->stmts[i]->stmt != nullptr) {
          check_statement(tree->stmts[i]->stmt, fx, sql, tree->n_stmts == 1);
        }
      }
      pg_query__parse_result__free_unpacked(tree, nullptr);
    }
  }
  pg_query_free_protobuf_parse_result(r);
  return 0;
}
