// The authoritative analysis: libpg_query's PostgreSQL 15 grammar. The parse tree comes back as
// protobuf-c messages; rather than a switch over ~250 node types, the walker below follows every
// message-typed field through the protobuf-c descriptors and looks only at the nodes that matter
// for routing. New node types in a future grammar are walked without code changes.
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <cstring>

#include "routing/lexer.h"
#include "routing/statement.h"

namespace pglane::routing {

namespace {

using K = StatementInfo::Kind;

bool is(const ProtobufCMessage* m, const ProtobufCMessageDescriptor& d) {
  return m != nullptr && m->descriptor == &d;
}

std::string_view str(const char* s) {
  return s ? std::string_view(s) : std::string_view();
}

// The name list of a FuncCall: [schema,] name as String nodes.
QualifiedName func_name(const PgQuery__FuncCall* f) {
  QualifiedName q;
  if (f->n_funcname >= 1) {
    const PgQuery__Node* last = f->funcname[f->n_funcname - 1];
    if (last->node_case == PG_QUERY__NODE__NODE_STRING) {
      q.name = str(last->string->sval);
    }
  }
  if (f->n_funcname >= 2) {
    const PgQuery__Node* schema = f->funcname[f->n_funcname - 2];
    if (schema->node_case == PG_QUERY__NODE__NODE_STRING) {
      q.schema = str(schema->string->sval);
    }
  }
  return q;
}

QualifiedName range_name(const PgQuery__RangeVar* r) {
  return QualifiedName{std::string(str(r->schemaname)), std::string(str(r->relname))};
}

// A DefElem's value as text ("serializable", "1", "true"...); empty when it has none.
std::string def_value(const PgQuery__Node* arg) {
  if (arg == nullptr) {
    return {};
  }
  switch (arg->node_case) {
    case PG_QUERY__NODE__NODE_STRING:
      return std::string(str(arg->string->sval));
    case PG_QUERY__NODE__NODE_INTEGER:
      return std::to_string(arg->integer->ival);
    case PG_QUERY__NODE__NODE_BOOLEAN:
      return arg->boolean->boolval ? "true" : "false";
    case PG_QUERY__NODE__NODE_A_CONST: {
      const PgQuery__AConst* c = arg->a_const;
      switch (c->val_case) {
        case PG_QUERY__A__CONST__VAL_SVAL:
          return std::string(str(c->sval->sval));
        case PG_QUERY__A__CONST__VAL_IVAL:
          return std::to_string(c->ival->ival);
        case PG_QUERY__A__CONST__VAL_BOOLVAL:
          return c->boolval->boolval ? "true" : "false";
        default:
          return "?";
      }
    }
    default:
      return "?";
  }
}

bool falsy(std::string_view v) {
  return lex::ieq(v, "false") || lex::ieq(v, "off") || lex::ieq(v, "no") || v == "0";
}

void transaction_options(PgQuery__Node** opts, size_t n, StatementInfo& info) {
  for (size_t i = 0; i < n; ++i) {
    if (opts[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM) {
      continue;
    }
    const PgQuery__DefElem* d = opts[i]->def_elem;
    std::string_view name = str(d->defname);
    std::string value = def_value(d->arg);
    if (name == "transaction_isolation") {
      info.txn_isolation_set = true;
      if (lex::ieq(value, "serializable")) {
        info.txn_serializable = true;
      }
    } else if (name == "transaction_read_only") {
      if (falsy(value)) {
        info.txn_read_write = true;
      } else {
        info.txn_read_only = true;
      }
    }
  }
}

struct Walker {
  StatementInfo& info;

  void message(const ProtobufCMessage* m) {
    if (m == nullptr) {
      return;
    }
    if (!visit(m)) {
      return;
    }
    children(m);
  }

  // Every message-typed child, through the descriptor (singular, oneof and repeated fields).
  void children(const ProtobufCMessage* m, const ProtobufCMessage* skip = nullptr) {
    const ProtobufCMessageDescriptor* d = m->descriptor;
    const auto* base = reinterpret_cast<const char*>(m);
    for (unsigned i = 0; i < d->n_fields; ++i) {
      const ProtobufCFieldDescriptor& f = d->fields[i];
      if (f.type != PROTOBUF_C_TYPE_MESSAGE) {
        continue;
      }
      if (f.label == PROTOBUF_C_LABEL_REPEATED) {
        size_t count = *reinterpret_cast<const size_t*>(base + f.quantifier_offset);
        auto* const* arr = *reinterpret_cast<ProtobufCMessage** const*>(base + f.offset);
        for (size_t k = 0; k < count; ++k) {
          message(arr[k]);
        }
        continue;
      }
      if (f.flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which = *reinterpret_cast<const uint32_t*>(base + f.quantifier_offset);
        if (which != f.id) {
          continue;
        }
      }
      const auto* child = *reinterpret_cast<ProtobufCMessage* const*>(base + f.offset);
      if (child != skip) {
        message(child);
      }
    }
  }

  void write(K kind = K::kWrite) {
    info.needs_writer = true;
    if (info.kind != K::kWrite) {
      info.kind = kind;
    }
  }

  // INSERT/UPDATE/DELETE/MERGE: the target is written, everything else in it is walked.
  bool written(const ProtobufCMessage* m, const PgQuery__RangeVar* target) {
    if (target != nullptr) {
      info.tables_written.push_back(range_name(target));
    }
    write();
    children(m, target ? &target->base : nullptr);
    return false;
  }

  // Returns whether to walk the node's children.
  bool visit(const ProtobufCMessage* m) {
    if (is(m, pg_query__func_call__descriptor)) {
      info.functions.push_back(func_name(reinterpret_cast<const PgQuery__FuncCall*>(m)));
      return true;
    }
    if (is(m, pg_query__range_var__descriptor)) {
      info.tables_read.push_back(range_name(reinterpret_cast<const PgQuery__RangeVar*>(m)));
      return false;
    }
    if (is(m, pg_query__select_stmt__descriptor)) {
      auto* s = reinterpret_cast<const PgQuery__SelectStmt*>(m);
      if (s->into_clause != nullptr) {
        write();  // SELECT INTO creates a table
      }
      if (s->n_locking_clause > 0) {
        info.locks_rows = true;
        write();
      }
      return true;
    }
    if (is(m, pg_query__insert_stmt__descriptor)) {
      return written(m, reinterpret_cast<const PgQuery__InsertStmt*>(m)->relation);
    }
    if (is(m, pg_query__update_stmt__descriptor)) {
      return written(m, reinterpret_cast<const PgQuery__UpdateStmt*>(m)->relation);
    }
    if (is(m, pg_query__delete_stmt__descriptor)) {
      return written(m, reinterpret_cast<const PgQuery__DeleteStmt*>(m)->relation);
    }
    if (is(m, pg_query__merge_stmt__descriptor)) {
      return written(m, reinterpret_cast<const PgQuery__MergeStmt*>(m)->relation);
    }
    return true;
  }
};

// One top-level statement.
void classify(const PgQuery__Node* stmt, StatementInfo& info) {
  Walker w{info};
  switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
      if (info.kind == K::kEmpty) {
        info.kind = K::kRead;
      }
      w.message(&stmt->base);
      return;
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT:
    case PG_QUERY__NODE__NODE_MERGE_STMT:
      w.message(&stmt->base);
      return;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
      const PgQuery__ExplainStmt* e = stmt->explain_stmt;
      bool analyze = false;
      for (size_t i = 0; i < e->n_options; ++i) {
        if (e->options[i]->node_case == PG_QUERY__NODE__NODE_DEF_ELEM) {
          const PgQuery__DefElem* d = e->options[i]->def_elem;
          if (str(d->defname) == "analyze") {
            analyze = d->arg == nullptr || !falsy(def_value(d->arg));
          }
        }
      }
      if (info.kind == K::kEmpty) {
        info.kind = K::kRead;
      }
      if (analyze && e->query) {
        classify(e->query, info);  // it runs: whatever the statement does happens
      }
      return;  // without ANALYZE nothing is executed, not even its functions
    }
    case PG_QUERY__NODE__NODE_COPY_STMT: {
      const PgQuery__CopyStmt* c = stmt->copy_stmt;
      if (c->is_from) {
        if (c->relation) {
          info.tables_written.push_back(range_name(c->relation));
        }
        w.write();
        return;
      }
      if (info.kind == K::kEmpty) {
        info.kind = K::kRead;
      }
      if (c->relation) {
        info.tables_read.push_back(range_name(c->relation));
      }
      if (c->query) {
        w.message(&c->query->base);
      }
      return;
    }
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT: {
      const PgQuery__TransactionStmt* t = stmt->transaction_stmt;
      switch (t->kind) {
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
          info.begins_transaction = true;
          transaction_options(t->options, t->n_options, info);
          break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
          w.write(K::kUtility);
          return;
        default:
          break;
      }
      if (info.kind == K::kEmpty || info.kind == K::kRead || info.kind == K::kSetting ||
          info.kind == K::kPglaneSetting) {
        info.kind = K::kTransaction;
      }
      return;
    }
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT: {
      const PgQuery__VariableSetStmt* v = stmt->variable_set_stmt;
      std::string_view name = str(v->name);
      if (name == "role" || name == "session_authorization") {
        w.write(K::kUtility);  // pins the session to its server: writer
        return;
      }
      if (name == "TRANSACTION") {
        transaction_options(v->args, v->n_args, info);
        if (info.kind == K::kEmpty || info.kind == K::kRead || info.kind == K::kSetting) {
          info.kind = K::kTransaction;
        }
        return;
      }
      if (name == "pglane.route" && v->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE &&
          v->n_args == 1) {
        if (auto h = parse_hint_value(def_value(v->args[0]))) {
          if (info.kind == K::kEmpty) {
            info.kind = K::kPglaneSetting;
            info.set_route = *h;
            return;
          }
        }
      }
      if (info.kind == K::kEmpty || info.kind == K::kRead) {
        info.kind = K::kSetting;
      }
      // SET x = f(...) is not valid SQL, but set values can hold no function calls anyway.
      return;
    }
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
    case PG_QUERY__NODE__NODE_FETCH_STMT:
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
      if (info.kind == K::kEmpty) {
        info.kind = K::kRead;
      }
      return;
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
      if (info.kind == K::kEmpty || info.kind == K::kRead) {
        info.kind = K::kSetting;
      }
      return;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT: {
      const PgQuery__DeclareCursorStmt* d = stmt->declare_cursor_stmt;
      constexpr int kCursorOptHold = 0x0020;  // parsenodes.h CURSOR_OPT_HOLD
      if (d->options & kCursorOptHold) {
        w.write(K::kUtility);  // WITH HOLD outlives the transaction: pins the session
        return;
      }
      if (info.kind == K::kEmpty) {
        info.kind = K::kRead;
      }
      if (d->query) {
        w.message(&d->query->base);
      }
      return;
    }
    default:
      // DDL and every other utility statement: CREATE TABLE AS, CALL, DO, LOCK, LISTEN, NOTIFY,
      // VACUUM, PREPARE, EXECUTE, LOAD, CHECKPOINT...
      w.write(K::kUtility);
      return;
  }
}

}  // namespace

StatementInfo analyze_with_parser(std::string_view sql) {
  StatementInfo info;
  info.by_parser = true;
  std::string text(sql);  // libpg_query wants a NUL-terminated string
  PgQueryProtobufParseResult r = pg_query_parse_protobuf(text.c_str());
  if (r.error != nullptr) {
    info.parse_failed = true;
    info.needs_writer = true;
    info.kind = K::kWrite;
    pg_query_free_protobuf_parse_result(r);
    return info;
  }
  PgQuery__ParseResult* tree = pg_query__parse_result__unpack(
      nullptr, r.parse_tree.len, reinterpret_cast<const uint8_t*>(r.parse_tree.data));
  if (tree == nullptr) {
    info.parse_failed = true;
    info.needs_writer = true;
    info.kind = K::kWrite;
  } else {
    for (size_t i = 0; i < tree->n_stmts; ++i) {
      if (tree->stmts[i]->stmt != nullptr) {
        ++info.statements;
        classify(tree->stmts[i]->stmt, info);
      }
    }
    if (info.kind == K::kPglaneSetting && info.statements != 1) {
      info.kind = K::kSetting;  // SET pglane.route only counts on its own
    }
    pg_query__parse_result__free_unpacked(tree, nullptr);
  }
  pg_query_free_protobuf_parse_result(r);
  return info;
}

}  // namespace pglane::routing
