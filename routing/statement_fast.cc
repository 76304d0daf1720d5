// The fast path of statement analysis: tokens in, a certain answer or none out. Everything it
// is unsure of goes to the parser, so each rule below only has to be right when it answers.
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "routing/lexer.h"
#include "routing/statement.h"

namespace pglane::routing {

using lex::ieq;
using lex::lower;
using lex::T;
using lex::Token;

const char* hint_name(Hint h) {
  switch (h) {
    case Hint::kWriter:
      return "writer";
    case Hint::kReader:
      return "reader";
    case Hint::kAnalytics:
      return "analytics";
    case Hint::kNone:
      break;
  }
  return "default";
}

std::optional<Hint> parse_hint_value(std::string_view v) {
  if (ieq(v, "writer")) {
    return Hint::kWriter;
  }
  if (ieq(v, "reader")) {
    return Hint::kReader;
  }
  if (ieq(v, "analytics")) {
    return Hint::kAnalytics;
  }
  if (ieq(v, "default")) {
    return Hint::kNone;
  }
  return std::nullopt;
}

namespace {

using lex::trim_space;

// "pglane: route=reader" (spaces allowed around '='). Anything else is not a hint.
Hint hint_from_comment(std::string_view body) {
  body = trim_space(body);
  constexpr std::string_view kPrefix = "pglane:";
  if (body.size() < kPrefix.size() || !ieq(body.substr(0, kPrefix.size()), kPrefix)) {
    return Hint::kNone;
  }
  body = trim_space(body.substr(kPrefix.size()));
  constexpr std::string_view kKey = "route";
  if (body.size() < kKey.size() || !ieq(body.substr(0, kKey.size()), kKey)) {
    return Hint::kNone;
  }
  body = trim_space(body.substr(kKey.size()));
  if (body.empty() || body.front() != '=') {
    return Hint::kNone;
  }
  body = trim_space(body.substr(1));
  auto h = parse_hint_value(body);
  return h ? *h : Hint::kNone;
}

// Words that are grammar, not names, where the fast path meets them in a SELECT. A word that is
// not here is taken for an identifier.
constexpr std::array<std::string_view, 62> k_is_keyword = {
    "select", "from",    "where",   "group",     "by",        "having", "order", "limit",
    "offset", "as",      "and",     "or",        "not",       "in",     "is",    "null",
    "true",   "false",   "like",    "ilike",     "between",   "case",   "when",  "then",
    "else",   "end",     "join",    "inner",     "left",      "right",  "full",  "outer",
    "cross",  "on",      "using",   "distinct",  "asc",       "desc",   "nulls", "first",
    "last",   "exists",  "union",   "all",       "intersect", "except", "any",   "some",
    "cast",   "lateral", "natural", "fetch",     "next",      "rows",   "row",   "only",
    "for",    "similar", "escape",  "symmetric", "isnull",    "notnull"};

// Keywords that may be followed by '(' without it being a call: subqueries, lists, grouping.
constexpr std::array<std::string_view, 31> k_paren_follows_ok = {
    "select",  "from",   "where", "having", "on",       "and",   "or",        "not",
    "in",      "exists", "any",   "all",    "some",     "union", "intersect", "except",
    "join",    "by",     "then",  "else",   "when",     "case",  "as",        "lateral",
    "between", "like",   "ilike", "using",  "distinct", "limit", "offset"};

// Keywords that stand for a value (SQL value functions and constants).
constexpr std::array<std::string_view, 15> k_is_value_keyword = {
    "null",           "true",
    "false",          "current_date",
    "current_time",   "current_timestamp",
    "localtime",      "localtimestamp",
    "current_user",   "session_user",
    "current_role",   "user",
    "current_schema", "current_catalog",
    "default"};

// Words followed by '(' that are grammar constructs rather than calls of a pg_proc function
// (or become calls of immutable pg_catalog functions, like EXTRACT and SUBSTRING).
constexpr std::array<std::string_view, 25> k_is_construct = {
    "coalesce", "nullif",  "greatest", "least",    "exists",    "in",   "any",
    "all",      "some",    "array",    "row",      "values",    "cast", "over",
    "filter",   "extract", "overlay",  "position", "substring", "trim", "grouping",
    "lateral",  "rollup",  "cube",     "sets"};

// Keywords after which an expression or a name must follow.
constexpr std::array<std::string_view, 19> k_wants_operand = {
    "from", "where", "having", "on",  "and",  "or",    "join",    "by",    "then", "else",
    "when", "limit", "offset", "not", "like", "ilike", "between", "using", "case"};

// Word classes, looked up once per word through a table bucketed by length (a linear scan of
// every list for every token cost more than the rest of the fast path together).
enum WordFlag : uint8_t {
  kKeywordFlag = 1,
  kParenOkFlag = 2,
  kValueFlag = 4,
  kConstructFlag = 8,
  kWantsOperandFlag = 16,
};

class WordTable {
 public:
  WordTable() {
    add(k_is_keyword, kKeywordFlag);
    add(k_paren_follows_ok, kParenOkFlag);
    add(k_is_value_keyword, kValueFlag);
    add(k_is_construct, kConstructFlag);
    add(k_wants_operand, kWantsOperandFlag);
  }
  uint8_t flags(std::string_view w) const {
    if (w.size() >= kMaxLen) {
      return 0;
    }
    for (const auto& [word, f] : buckets_[w.size()]) {
      if (ieq(w, word)) {
        return f;
      }
    }
    return 0;
  }

 private:
  static constexpr size_t kMaxLen = 24;
  template <size_t N>
  void add(const std::array<std::string_view, N>& words, uint8_t flag) {
    for (auto w : words) {
      auto& bucket = buckets_[w.size()];
      auto it =
          std::find_if(bucket.begin(), bucket.end(), [&](const auto& e) { return e.first == w; });
      if (it == bucket.end()) {
        bucket.emplace_back(w, flag);
      } else {
        it->second |= flag;
      }
    }
  }
  std::array<std::vector<std::pair<std::string_view, uint8_t>>, kMaxLen> buckets_;
};

uint8_t word_flags(std::string_view w) {
  static const WordTable table;
  return table.flags(w);
}
bool is_keyword(std::string_view w) {
  return word_flags(w) & kKeywordFlag;
}
bool paren_follows_ok(std::string_view w) {
  return word_flags(w) & kParenOkFlag;
}
bool is_value_keyword(std::string_view w) {
  return word_flags(w) & kValueFlag;
}
bool is_construct(std::string_view w) {
  return word_flags(w) & kConstructFlag;
}
bool wants_operand(std::string_view w) {
  return word_flags(w) & kWantsOperandFlag;
}

std::string name_text(const Token& t) {
  return t.type == T::kQIdent ? std::string(t.text) : lower(t.text);
}

bool is_name(const Token& t) {
  return (t.type == T::kWord && !is_keyword(t.text)) || t.type == T::kQIdent;
}

// An operand: something with a value or a name.
bool is_operand(const Token& t) {
  switch (t.type) {
    case T::kQIdent:
    case T::kString:
    case T::kNumber:
    case T::kParam:
    case T::kRParen:
    case T::kRBracket:
      return true;
    case T::kWord: {
      const uint8_t f = word_flags(t.text);
      return !(f & kKeywordFlag) || (f & kValueFlag);
    }
    default:
      return false;
  }
}

// Reads a possibly schema-qualified name at toks[i]; returns the index after it.
size_t read_name(const std::vector<Token>& toks, size_t i, size_t end, QualifiedName& out) {
  out = {};
  if (i >= end || !is_name(toks[i])) {
    return i;
  }
  out.name = name_text(toks[i]);
  if (i + 2 < end && toks[i + 1].type == T::kDot && is_name(toks[i + 2])) {
    out.schema = std::move(out.name);
    out.name = name_text(toks[i + 2]);
    return i + 3;
  }
  return i + 1;
}

// A plain SELECT: reads unless it locks rows. Returns false when unsure.
bool classify_select(const std::vector<Token>& toks, size_t b, size_t e, StatementInfo& info) {
  int depth = 0;
  bool in_from = false;  // after FROM/JOIN at the current level: names are tables
  int from_depth = -1;
  for (size_t i = b; i < e; ++i) {
    const Token& t = toks[i];
    const Token* prev = i > b ? &toks[i - 1] : nullptr;
    const Token* next = i + 1 < e ? &toks[i + 1] : nullptr;
    switch (t.type) {
      case T::kLParen:
        ++depth;
        break;
      case T::kRParen:
        if (--depth < 0) {
          return false;
        }
        if (depth < from_depth) {
          in_from = false;
          from_depth = -1;
        }
        break;
      case T::kString:
        // Typed literals (interval '1 day') and continued strings are rare: parser.
        if (prev && (prev->type == T::kWord || prev->type == T::kString)) {
          return false;
        }
        break;
      case T::kStar:
        // A column wildcard is followed by a comma, FROM or ')' (or is count(*)); after an
        // operand it is multiplication.
        if (prev && !is_operand(*prev) && next && next->type != T::kComma &&
            next->type != T::kRParen && !(next->type == T::kWord && ieq(next->text, "from"))) {
          return false;
        }
        break;
      case T::kWord: {
        std::string_view w = t.text;
        if (ieq(w, "into") || ieq(w, "with") || ieq(w, "insert") || ieq(w, "update") ||
            ieq(w, "delete") || ieq(w, "merge") || ieq(w, "window") || ieq(w, "tablesample") ||
            ieq(w, "values") || ieq(w, "ordinality") || ieq(w, "within")) {
          return false;  // SELECT INTO, CTEs in subqueries, names that look like commands...
        }
        if (ieq(w, "for")) {
          if (next && next->type == T::kWord &&
              (ieq(next->text, "update") || ieq(next->text, "share") || ieq(next->text, "no") ||
               ieq(next->text, "key"))) {
            info.locks_rows = true;
            info.needs_writer = true;
            return true;  // a locking clause: the writer, whatever else is there
          }
          // FOR inside SUBSTRING(... FOR n) and similar: fine if it is inside parentheses.
          if (depth == 0) {
            return false;
          }
          break;
        }
        if (ieq(w, "from") || ieq(w, "join")) {
          in_from = true;
          from_depth = depth;
          QualifiedName name;
          size_t j = i + 1;
          if (j < e && toks[j].type == T::kWord && ieq(toks[j].text, "only")) {
            ++j;
          }
          size_t after = read_name(toks, j, e, name);
          if (after != j && (after >= e || toks[after].type != T::kLParen)) {
            info.tables_read.push_back(std::move(name));
          }
          break;
        }
        if (in_from && depth == from_depth &&
            (ieq(w, "where") || ieq(w, "group") || ieq(w, "order") || ieq(w, "limit") ||
             ieq(w, "having") || ieq(w, "union") || ieq(w, "except") || ieq(w, "intersect") ||
             ieq(w, "offset") || ieq(w, "fetch"))) {
          in_from = false;
        }
        if (wants_operand(w) && (!next || next->type == T::kRParen || next->type == T::kComma ||
                                 next->type == T::kSemi)) {
          return false;
        }
        break;
      }
      case T::kComma:
        if (!next || next->type == T::kRParen ||
            (next->type == T::kWord && is_keyword(next->text) && !is_value_keyword(next->text) &&
             !ieq(next->text, "lateral") && !ieq(next->text, "not") && !ieq(next->text, "exists") &&
             !ieq(next->text, "case") && !ieq(next->text, "cast") && !ieq(next->text, "row") &&
             !ieq(next->text, "any") && !ieq(next->text, "all"))) {
          return false;
        }
        if (in_from && depth == from_depth) {
          QualifiedName name;
          size_t after = read_name(toks, i + 1, e, name);
          if (after != i + 1 && (after >= e || toks[after].type != T::kLParen)) {
            info.tables_read.push_back(std::move(name));
          }
        }
        break;
      case T::kOp:
        if (!next) {
          return false;
        }
        break;
      case T::kLBracket:
      case T::kRBracket:
      case T::kColon:
      case T::kCast:
      case T::kDot:
      case T::kNumber:
      case T::kParam:
      case T::kQIdent:
        break;
      case T::kSemi:
        return false;
    }
    // Function calls: a name followed by '('.
    if ((t.type == T::kWord || t.type == T::kQIdent) && next && next->type == T::kLParen) {
      // After a dot every word names a function (s.as(...), s.user(...)), keywords included.
      const bool qualified = prev && prev->type == T::kDot;
      if (t.type == T::kWord && is_keyword(t.text) && !qualified) {
        if (!paren_follows_ok(t.text)) {
          return false;  // left(...), first(...): a function named like a keyword: parser
        }
        continue;  // IN (...), EXISTS (...), ANY (...), OVER (...)...
      }
      if (t.type == T::kWord && !qualified && (is_construct(t.text) || is_value_keyword(t.text))) {
        // OVER and FILTER are syntax only right after a call's ')', and ROLLUP, CUBE and SETS
        // only in a GROUP BY list: anywhere else they may name a user's function (which may be
        // volatile), so the parser decides.
        const bool after_call = prev && prev->type == T::kRParen;
        // (After a comma it may as well be a select-list call: the parser decides.)
        const bool in_group_by = prev && prev->type == T::kWord &&
                                 (ieq(prev->text, "by") || ieq(prev->text, "grouping"));
        if ((ieq(t.text, "over") || ieq(t.text, "filter")) && !after_call) {
          return false;
        }
        if ((ieq(t.text, "rollup") || ieq(t.text, "cube") || ieq(t.text, "sets")) && !in_group_by) {
          return false;
        }
        continue;  // ... and current_timestamp(0), localtime(3): precision, not a call
      }
      QualifiedName fn;
      fn.name = name_text(t);
      if (prev && prev->type == T::kDot) {
        // schema.function(...): the schema is the token before the dot.
        if (i < b + 2 || !is_name(toks[i - 2])) {
          return false;
        }
        fn.schema = name_text(toks[i - 2]);
        prev = i >= b + 3 ? &toks[i - 3] : nullptr;
      }
      if (prev) {
        // After AS or :: it is a type or a column alias list; after a name or ')' it is an
        // alias list of a FROM item ("t x(a, b)"): not calls, but not worth telling apart here.
        if (prev->type == T::kCast || (prev->type == T::kWord && ieq(prev->text, "as"))) {
          continue;
        }
        if (is_operand(*prev)) {
          return false;
        }
      }
      info.functions.push_back(std::move(fn));
      continue;
    }
    // Two operands in a row are a value and its alias ("a x", "(subquery) s"); a third, or an
    // alias after *, is not SQL.
    if (prev && is_operand(*prev) && is_operand(t) && t.type != T::kRParen &&
        t.type != T::kRBracket) {
      if (!is_name(t) || prev->type == T::kStar) {
        return false;
      }
      if (i >= b + 2 && is_operand(toks[i - 2]) && toks[i - 2].type != T::kRParen &&
          !(toks[i - 2].type == T::kWord && is_keyword(toks[i - 2].text))) {
        return false;
      }
      if (next && is_operand(*next) && next->type != T::kRParen) {
        return false;
      }
    }
    if (prev && prev->type == T::kStar && t.type != T::kComma && t.type != T::kRParen &&
        !(t.type == T::kWord && is_keyword(t.text)) && i >= b + 2 && !is_operand(toks[i - 2])) {
      return false;
    }
  }
  if (depth != 0) {
    return false;
  }
  const Token& last = toks[e - 1];
  if (!(is_operand(last) || last.type == T::kStar ||
        (last.type == T::kWord &&
         (ieq(last.text, "select") || ieq(last.text, "asc") || ieq(last.text, "desc") ||
          ieq(last.text, "first") || ieq(last.text, "last") || ieq(last.text, "only"))))) {
    return false;
  }
  info.kind = StatementInfo::Kind::kRead;
  return true;
}

// BEGIN / START TRANSACTION / SET TRANSACTION modes, from toks[i]. Returns false when unsure.
bool read_transaction_modes(const std::vector<Token>& toks, size_t i, size_t e,
                            StatementInfo& info) {
  while (i < e) {
    auto word = [&](size_t k, std::string_view kw) {
      return k < e && toks[k].type == T::kWord && ieq(toks[k].text, kw);
    };
    if (word(i, "isolation") && word(i + 1, "level")) {
      info.txn_isolation_set = true;
      if (word(i + 2, "serializable")) {
        info.txn_serializable = true;
        i += 3;
      } else if (word(i + 2, "repeatable") && word(i + 3, "read")) {
        i += 4;
      } else if (word(i + 2, "read") && (word(i + 3, "committed") || word(i + 3, "uncommitted"))) {
        i += 4;
      } else {
        return false;
      }
    } else if (word(i, "read") && word(i + 1, "only")) {
      info.txn_read_only = true;
      i += 2;
    } else if (word(i, "read") && word(i + 1, "write")) {
      info.txn_read_write = true;
      i += 2;
    } else if (word(i, "deferrable")) {
      i += 1;
    } else if (word(i, "not") && word(i + 1, "deferrable")) {
      i += 2;
    } else {
      return false;
    }
    if (i < e) {
      if (toks[i].type != T::kComma) {
        continue;  // modes may also be separated by spaces
      }
      if (++i >= e) {
        return false;
      }
    }
  }
  return true;
}

// One statement, toks[b, e). Returns false when unsure.
bool classify_one(const std::vector<Token>& toks, size_t b, size_t e, StatementInfo& info) {
  const Token& first = toks[b];
  if (first.type != T::kWord) {
    return false;  // '(' SELECT ..., or not SQL: the parser decides
  }
  std::string_view w = first.text;
  auto word = [&](size_t k, std::string_view kw) {
    return k < e && toks[k].type == T::kWord && ieq(toks[k].text, kw);
  };
  using K = StatementInfo::Kind;
  if (ieq(w, "select")) {
    return classify_select(toks, b, e, info);
  }
  if (ieq(w, "insert") || ieq(w, "update") || ieq(w, "delete") || ieq(w, "merge") ||
      ieq(w, "truncate")) {
    // Certain: these write, and if they are not valid SQL they fail on the writer as well.
    info.kind = K::kWrite;
    info.needs_writer = true;
    size_t j = b + 1;
    if (word(j, "into") || word(j, "from") || word(j, "table")) {
      ++j;
    }
    if (word(j, "only")) {
      ++j;
    }
    QualifiedName name;
    if (read_name(toks, j, e, name) != j) {
      info.tables_written.push_back(std::move(name));
    }
    return true;
  }
  static constexpr std::array<std::string_view, 25> kUtility = {
      "create",   "alter",   "drop",    "grant",   "revoke",  "comment",    "vacuum",
      "analyze",  "analyse", "cluster", "reindex", "refresh", "checkpoint", "lock",
      "call",     "do",      "load",    "prepare", "execute", "security",   "import",
      "reassign", "listen",  "notify",  "unlisten"};
  for (auto k : kUtility) {
    if (ieq(w, k)) {
      info.kind = K::kUtility;
      info.needs_writer = true;
      return true;
    }
  }
  if (ieq(w, "begin") || ieq(w, "start")) {
    size_t j = b + 1;
    if (ieq(w, "start")) {
      if (!word(j, "transaction")) {
        return false;
      }
      ++j;
    } else if (word(j, "work") || word(j, "transaction")) {
      ++j;
    }
    info.kind = K::kTransaction;
    info.begins_transaction = true;
    return read_transaction_modes(toks, j, e, info);
  }
  if (ieq(w, "commit") || ieq(w, "end") || ieq(w, "rollback") || ieq(w, "abort")) {
    if (word(b + 1, "prepared")) {
      info.kind = K::kUtility;
      info.needs_writer = true;
      return true;
    }
    size_t j = b + 1;
    if (word(j, "work") || word(j, "transaction")) {
      ++j;
    }
    if (j == e) {
      info.kind = K::kTransaction;
      return true;
    }
    return false;  // AND CHAIN, ROLLBACK TO ...: parser
  }
  if (ieq(w, "set")) {
    size_t j = b + 1;
    if (word(j, "role") || (word(j, "session") && word(j + 1, "authorization"))) {
      info.kind = K::kUtility;  // pins the session: writer
      info.needs_writer = true;
      return true;
    }
    if (word(j, "transaction")) {
      info.kind = K::kTransaction;
      return read_transaction_modes(toks, j + 1, e, info);
    }
    if (word(j, "session") || word(j, "local")) {
      ++j;
      if (word(j, "characteristics") || word(j, "role") || word(j, "authorization")) {
        return false;
      }
    }
    // SET name {TO | =} value[, ...]
    if (j >= e || toks[j].type != T::kWord) {
      return false;
    }
    size_t name_end = j + 1;
    while (name_end + 1 < e && toks[name_end].type == T::kDot &&
           (toks[name_end + 1].type == T::kWord || toks[name_end + 1].type == T::kQIdent)) {
      name_end += 2;
    }
    if (name_end >= e ||
        !(word(name_end, "to") || (toks[name_end].type == T::kOp && toks[name_end].text == "="))) {
      return false;
    }
    if (name_end + 1 >= e) {
      return false;
    }
    if (name_end == j + 3 && ieq(toks[j].text, "pglane") && ieq(toks[j + 2].text, "route")) {
      if (name_end + 2 != e) {
        return false;
      }
      const Token& v = toks[name_end + 1];
      std::string_view text = v.text;
      if (v.type == T::kString && text.size() >= 2 && text.front() == '\'') {
        text = text.substr(1, text.size() - 2);
      } else if (v.type != T::kWord) {
        return false;
      }
      auto h = parse_hint_value(text);
      if (!h) {
        return false;
      }
      info.kind = K::kPglaneSetting;
      info.set_route = *h;
      return true;
    }
    for (size_t k = name_end + 1; k < e; ++k) {
      if (toks[k].type == T::kLParen || toks[k].type == T::kRParen) {
        return false;
      }
    }
    info.kind = K::kSetting;
    return true;
  }
  if (ieq(w, "reset")) {
    if (word(b + 1, "role") || word(b + 1, "session")) {
      info.kind = K::kUtility;
      info.needs_writer = true;
      return true;
    }
    if (e == b + 2 && toks[b + 1].type == T::kWord) {
      info.kind = K::kSetting;
      return true;
    }
    return false;
  }
  if (ieq(w, "show") && e == b + 2 && toks[b + 1].type == T::kWord) {
    info.kind = K::kRead;
    return true;
  }
  if (ieq(w, "discard") && e == b + 2 &&
      (word(b + 1, "all") || word(b + 1, "plans") || word(b + 1, "sequences") ||
       word(b + 1, "temp") || word(b + 1, "temporary"))) {
    info.kind = K::kSetting;
    return true;
  }
  return false;
}

}  // namespace

Hint leading_hint(std::string_view sql) {
  Hint h = Hint::kNone;
  lex::find_leading_comment(sql, [&h](std::string_view body) {
    h = hint_from_comment(body);
    return h != Hint::kNone;
  });
  return h;
}

bool normalize(std::string_view sql, std::string& out) {
  lex::Lexed lexed;
  lexed.tokens.reserve(128);
  lex::tokenize(sql, lexed);
  return normalize(lexed, out);
}

bool normalize(const lex::Lexed& lexed, std::string& out) {
  out.clear();
  if (!lexed.ok) {
    return false;
  }
  // In EXPLAIN options (ANALYZE 0/1) and SET values (SET pglane.route = 'writer') a literal can
  // change the route: such statements keep their literals in the key.
  bool keep_literals = false;
  for (size_t i = 0; i < lexed.tokens.size(); ++i) {
    const auto& t = lexed.tokens[i];
    if (i == 0 || lexed.tokens[i - 1].type == T::kSemi) {
      keep_literals |= t.type == T::kWord && (ieq(t.text, "explain") || ieq(t.text, "set"));
    }
    if (t.type == T::kString && i > 0 && lexed.tokens[i - 1].type == T::kString) {
      // 'a' 'b' is one string across a newline and an error on one line: whitespace matters,
      // so such text is not folded into a shared cache key.
      return false;
    }
    switch (t.type) {
      case T::kString:
      case T::kNumber:
        if (keep_literals) {
          out.append(t.text);
        } else {
          out += '?';
        }
        break;
      case T::kWord:
        for (char c : t.text) {
          out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
        break;
      case T::kQIdent:
        out += '"';
        out.append(t.text);
        out += '"';
        break;
      default:
        out.append(t.text);
        break;
    }
    out += ' ';
  }
  return true;
}

std::optional<StatementInfo> analyze_fast(std::string_view sql) {
  lex::Lexed lexed;
  lexed.tokens.reserve(128);
  lex::tokenize(sql, lexed);
  return analyze_fast(lexed);
}

std::optional<StatementInfo> analyze_fast(const lex::Lexed& lexed) {
  if (!lexed.ok) {
    return std::nullopt;
  }
  StatementInfo info;
  const auto& toks = lexed.tokens;
  size_t b = 0;
  using K = StatementInfo::Kind;
  auto rank = [](K k) {
    switch (k) {
      case K::kWrite:
        return 5;
      case K::kUtility:
        return 4;
      case K::kTransaction:
        return 3;
      case K::kPglaneSetting:
        return 2;
      case K::kSetting:
        return 1;
      case K::kRead:
        return 0;
      case K::kEmpty:
        break;
    }
    return -1;
  };
  while (b < toks.size()) {
    size_t e = b;
    while (e < toks.size() && toks[e].type != T::kSemi) {
      ++e;
    }
    if (e > b) {
      StatementInfo one;
      if (!classify_one(toks, b, e, one)) {
        return std::nullopt;
      }
      if (one.kind == K::kPglaneSetting && (info.statements > 0 || e + 1 < toks.size())) {
        return std::nullopt;  // SET pglane.route only on its own
      }
      ++info.statements;
      if (rank(one.kind) > rank(info.kind)) {
        info.kind = one.kind;
      }
      info.needs_writer |= one.needs_writer;
      info.locks_rows |= one.locks_rows;
      info.begins_transaction |= one.begins_transaction;
      info.txn_read_only |= one.txn_read_only;
      info.txn_read_write |= one.txn_read_write;
      info.txn_serializable |= one.txn_serializable;
      info.txn_isolation_set |= one.txn_isolation_set;
      info.set_route = one.set_route;
      info.tables_read.insert(info.tables_read.end(), one.tables_read.begin(),
                              one.tables_read.end());
      info.tables_written.insert(info.tables_written.end(), one.tables_written.begin(),
                                 one.tables_written.end());
      info.functions.insert(info.functions.end(), one.functions.begin(), one.functions.end());
    }
    b = e + 1;
  }
  return info;
}

}  // namespace pglane::routing
