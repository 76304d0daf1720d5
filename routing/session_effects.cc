#include "routing/session_effects.h"

#include <algorithm>
#include <array>
#include <optional>
#include <span>

#include "routing/lexer.h"

namespace pglane::routing {

namespace {

using lex::lower;
using lex::T;
using lex::Token;
using Tokens = std::span<const Token>;

// DO bodies are scanned as SQL; a body that itself runs DO is scanned this deep at most.
constexpr int kMaxDoDepth = 3;

// PostgreSQL 15's own function names (pg_catalog and information_schema), sorted.
constexpr std::string_view kBuiltinFunctions[] = {
#include "routing/builtin_functions.inc"
};

// Words that look like a call when followed by '(' but are syntax or type names.
constexpr std::string_view kNotFunctions[] = {
    "all",        "and",       "any",           "array",
    "as",         "between",   "bit",           "case",
    "cast",       "char",      "character",     "check",
    "coalesce",   "conflict",  "collation",     "constraint",
    "cube",       "dec",       "decimal",       "default",
    "delete",     "distinct",  "double",        "else",
    "exists",     "extract",   "filter",        "float",
    "from",       "greatest",  "grouping",      "groups",
    "if",         "in",        "insert",        "interval",
    "is",         "join",      "key",           "lateral",
    "least",      "national",  "nchar",         "normalize",
    "not",        "nullif",    "numeric",       "on",
    "or",         "over",      "overlay",       "partition",
    "position",   "precision", "primary",       "range",
    "references", "return",    "returning",     "returns",
    "rollup",     "row",       "rows",          "select",
    "sets",       "setof",     "some",          "substring",
    "table",      "then",      "time",          "timestamp",
    "treat",      "trim",      "unique",        "update",
    "using",      "values",    "varchar",       "varying",
    "when",       "where",     "while",         "window",
    "with",       "within",    "xmlattributes", "xmlconcat",
    "xmlelement", "xmlexists", "xmlforest",     "xmlparse",
    "xmlpi",      "xmlroot",   "xmlserialize",
};

// A word before a name that makes "name (" something other than a call: a table and its column
// list, a CTE, DDL.
constexpr std::string_view kNotCallContext[] = {
    "aggregate", "as",        "conflict",  "copy",       "domain",       "exclude", "foreign",
    "function",  "include",   "index",     "into",       "materialized", "of",      "only",
    "operator",  "procedure", "recursive", "references", "sequence",     "table",   "trigger",
    "type",      "update",    "view",      "with",
};

template <size_t N>
bool in_list(const std::string_view (&list)[N], std::string_view lower_word) {
  for (std::string_view w : list) {
    if (w == lower_word) {
      return true;
    }
  }
  return false;
}

// `=`, `TO` or `.` at i: what precedes is (the start of) the setting's name, not a keyword (SET
// local = 1 sets a parameter named "local", SET session.x TO 1 one named "session.x": LOCAL and
// SESSION are unreserved keywords, so PostgreSQL's grammar reads them as names there).
bool is_assignment(Tokens t, size_t i) {
  return i < t.size() && ((t[i].type == T::kOp && t[i].text == "=") || t[i].type == T::kDot ||
                          (t[i].type == T::kWord && lex::ieq(t[i].text, "to")));
}

bool is_word(Tokens t, size_t i, std::string_view lower_keyword) {
  return i < t.size() && t[i].type == T::kWord && lex::ieq(t[i].text, lower_keyword);
}

// set_config(), pg_advisory_lock() and pg_try_advisory_lock() anywhere in the raw text,
// case-insensitively. Each name has an underscore at a known place, so only the text around the
// underscores is compared (found with memchr), not the text at every position.
void scan_raw_calls(std::string_view sql, SessionEffects& fx) {
  for (size_t u = sql.find('_'); u != std::string_view::npos; u = sql.find('_', u + 1)) {
    if (u >= 3 && lex::ieq(sql.substr(u - 3, 10), "set_config")) {
      fx.may_change_settings = true;
    }
    if (u >= 2 && (lex::ieq(sql.substr(u - 2, 16), "pg_advisory_lock") ||
                   lex::ieq(sql.substr(u - 2, 20), "pg_try_advisory_lock"))) {
      fx.pin_reason = "session advisory lock";
    }
  }
}

// The value of a string literal token, or nullopt when it cannot be known lexically: escapes
// (E'\x..', or backslashes that standard_conforming_strings = off would interpret), U&'' and
// bit strings.
std::optional<std::string> literal_value(std::string_view text) {
  if (text.size() >= 2 && text.front() == '$') {
    const size_t tag_end = text.find('$', 1);
    if (tag_end == std::string_view::npos || text.size() < 2 * (tag_end + 1)) {
      return std::nullopt;
    }
    return std::string(text.substr(tag_end + 1, text.size() - 2 * (tag_end + 1)));
  }
  if (!text.empty() && (text.front() == 'e' || text.front() == 'E')) {
    text.remove_prefix(1);  // E'...' without backslashes is a plain literal
  }
  if (text.size() < 2 || text.front() != '\'' || text.back() != '\'' ||
      text.find('\\') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string out;
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    out.push_back(text[i]);
    if (text[i] == '\'') {
      ++i;  // '' is one quote
    }
  }
  return out;
}

// The text of a "quoted identifier" token ("" undone), or nullopt for U&"..." (escapes).
std::optional<std::string> quoted_ident(std::string_view text) {
  if (text.size() >= 2 && (text[0] == 'u' || text[0] == 'U') && text[1] == '&') {
    return std::nullopt;
  }
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    out.push_back(text[i]);
    if (text[i] == '"' && i + 1 < text.size() && text[i + 1] == '"') {
      ++i;
    }
  }
  return out;
}

// PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes, on a character boundary as
// its UTF-8 length rule sees it (pg_utf_mblen: the lead byte gives the length, any other byte is
// one character), so that even invalid input is cut where the server would cut it. Names of 63
// bytes or fewer are left alone, whatever their last character's lead byte says.
std::string truncate_identifier(std::string name) {
  if (name.size() < 64) {
    return name;
  }
  size_t n = 0;
  while (n < name.size()) {
    const auto c = static_cast<unsigned char>(name[n]);
    const size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (n + len > 63) {
      break;
    }
    n += len;
  }
  name.resize(std::min(n, name.size()));
  return name;
}

// A possibly qualified name starting at t[i] ("app.tenant", "a"."b"): its lower-cased text and
// the index after it. Empty when t[i] is not a name; nullopt when a part cannot be decoded.
std::pair<std::optional<std::string>, size_t> dotted_name(Tokens t, size_t i) {
  std::string name;
  while (i < t.size() && (t[i].type == T::kWord || t[i].type == T::kQIdent)) {
    if (t[i].type == T::kQIdent) {
      auto part = quoted_ident(t[i].text);
      if (!part) {
        return {std::nullopt, i + 1};
      }
      name += truncate_identifier(lower(*part));
    } else {
      name += truncate_identifier(lower(t[i].text));
    }
    ++i;
    if (i + 1 < t.size() && t[i].type == T::kDot) {
      name.push_back('.');
      ++i;
    } else {
      break;
    }
  }
  return {name, i};
}

// The arguments of the call whose '(' is t[open], split at top-level commas.
std::vector<Tokens> call_arguments(Tokens t, size_t open) {
  std::vector<Tokens> args;
  int depth = 0;
  size_t start = open + 1;
  for (size_t i = open; i < t.size(); ++i) {
    const T type = t[i].type;
    if (type == T::kLParen || type == T::kLBracket) {
      ++depth;
    } else if (type == T::kRParen || type == T::kRBracket) {
      if (--depth == 0) {
        args.push_back(t.subspan(start, i - start));
        return args;
      }
    } else if (type == T::kComma && depth == 1) {
      args.push_back(t.subspan(start, i - start));
      start = i + 1;
    }
  }
  args.push_back(t.subspan(start));  // unterminated: the server rejects it anyway
  return args;
}

// An argument without a leading "name =>" (named notation).
Tokens positional(Tokens arg) {
  if (arg.size() >= 2 && arg[0].type == T::kWord && arg[1].type == T::kOp && arg[1].text == "=>") {
    return arg.subspan(2);
  }
  return arg;
}

// The value of a string literal argument, also when cast ('app.tenant'::text).
std::optional<std::string> literal_argument(Tokens arg) {
  arg = positional(arg);
  const bool cast = arg.size() == 3 && arg[1].type == T::kCast && arg[2].type == T::kWord;
  if ((arg.size() != 1 && !cast) || arg[0].type != T::kString) {
    return std::nullopt;
  }
  return literal_value(arg[0].text);
}

bool is_true_literal(Tokens arg) {
  arg = positional(arg);
  if (arg.size() != 1) {
    return false;
  }
  if (arg[0].type == T::kWord) {
    return lex::ieq(arg[0].text, "true");
  }
  if (arg[0].type == T::kString) {
    auto v = literal_value(arg[0].text);
    return v && (lex::ieq(*v, "t") || lex::ieq(*v, "true") || lex::ieq(*v, "on") ||
                 lex::ieq(*v, "y") || lex::ieq(*v, "yes") || *v == "1");
  }
  return false;
}

// Well-formed UTF-8 (the server rejects anything else before running it).
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    if (c < 0x80) {
      len = 1;
    } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
    } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
      len = 4;
    }
    if (len == 0 || i + len > s.size()) {
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return false;
      }
    }
    i += len;
  }
  return true;
}

// A name pglane may put into its own SQL (as an E'' literal): identifier characters, including
// non-ASCII letters in well-formed UTF-8.
bool safe_setting_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || !valid_utf8(name)) {
    return false;
  }
  for (char c : name) {
    const bool ascii_ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '$';
    if (!ascii_ok && static_cast<unsigned char>(c) < 0x80) {
      return false;
    }
  }
  return true;
}

void add_custom(SessionEffects& fx, std::optional<std::string> maybe_name) {
  if (!maybe_name) {
    fx.opaque_code = true;  // a name we cannot decode: reset the server after
    fx.may_change_settings = true;
    return;
  }
  std::string name = std::move(*maybe_name);
  if (name.find('.') == std::string::npos) {
    return;  // a built-in setting: pg_settings shows it
  }
  if (!safe_setting_name(name)) {
    // Not a name pglane will put in its own SQL: the server is reset instead.
    fx.opaque_code = true;
    fx.may_change_settings = true;
    return;
  }
  if (std::find(fx.custom_settings.begin(), fx.custom_settings.end(), name) ==
      fx.custom_settings.end()) {
    fx.custom_settings.push_back(std::move(name));
  }
}

// Custom settings named anywhere in `t`: SET [SESSION] a.b, RESET a.b, set_config('a.b', v, l)
// with l not literally true. Matching anywhere (not only at statement starts) also covers
// PL/pgSQL bodies (BEGIN SET ...; PERFORM set_config(...)). Names in ALTER ROLE ... SET or an
// UPDATE's SET of a composite field are false positives that only cost a read-back.
void scan_custom_settings(Tokens t, SessionEffects& fx) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (is_word(t, i, "set") || is_word(t, i, "reset")) {
      size_t k = i + 1;
      if (is_word(t, k, "local") && !is_assignment(t, k + 1)) {
        continue;  // transaction-scoped
      }
      if (is_word(t, k, "session") && !is_assignment(t, k + 1)) {
        ++k;
      }
      if (is_word(t, k, "all") && is_word(t, i, "reset")) {
        fx.reset_all = true;
        continue;
      }
      auto name = dotted_name(t, k).first;
      if (is_word(t, i, "reset") && name && !name->empty()) {
        fx.reset_settings.push_back(*name);
      }
      add_custom(fx, std::move(name));
    } else if ((is_word(t, i, "set_config") ||
                (t[i].type == T::kQIdent && t[i].text == "set_config")) &&
               i + 1 < t.size() && t[i + 1].type == T::kLParen) {
      const auto args = call_arguments(t, i + 1);
      std::optional<std::string> name;
      if (!args.empty()) {
        name = literal_argument(args[0]);
      }
      if (!name) {
        // set_config($1, ...), or a computed name: whatever it sets cannot be read back.
        fx.pin_reason = "set_config() with a name pglane cannot read";
        continue;
      }
      if (args.size() >= 3 && is_true_literal(args[2])) {
        continue;  // is_local = true: gone at the end of the transaction
      }
      add_custom(fx, lower(*name));
    }
  }
}

// Calls of functions that are not PostgreSQL's own: "name (" where name is neither syntax nor a
// built-in, or "schema.name (" outside pg_catalog and information_schema.
bool calls_unknown_function(Tokens t) {
  for (size_t i = 0; i + 1 < t.size(); ++i) {
    if ((t[i].type != T::kWord && t[i].type != T::kQIdent) || t[i + 1].type != T::kLParen) {
      continue;
    }
    size_t first = i;  // start of a qualified name
    while (first >= 2 && t[first - 1].type == T::kDot &&
           (t[first - 2].type == T::kWord || t[first - 2].type == T::kQIdent)) {
      first -= 2;
    }
    if (first > 0) {
      const Token& before = t[first - 1];
      if (before.type == T::kCast) {
        continue;  // x::numeric(10, 2)
      }
      if (before.type == T::kWord && in_list(kNotCallContext, lower(before.text))) {
        continue;
      }
    }
    const std::string name =
        t[i].type == T::kWord ? lower(t[i].text) : quoted_ident(t[i].text).value_or("");
    if (first < i) {
      const std::string schema = lower(t[first].text);
      if (first + 2 == i && (schema == "pg_catalog" || schema == "information_schema") &&
          is_builtin_function(name)) {
        continue;
      }
      return true;
    }
    if (t[i].type == T::kWord && in_list(kNotFunctions, name)) {
      continue;
    }
    if (!is_builtin_function(name)) {
      return true;
    }
  }
  return false;
}

void analyze_into(std::string_view sql, SessionEffects& fx, int depth);

// One statement (no semicolons) of the string.
void analyze_statement(Tokens t, SessionEffects& fx, int depth) {
  if (t.empty() || t[0].type != T::kWord) {
    return;
  }
  const std::string_view first = t[0].text;
  if (lex::ieq(first, "set")) {
    if ((is_word(t, 1, "local") || is_word(t, 1, "transaction") || is_word(t, 1, "constraints")) &&
        !is_assignment(t, 2)) {
      return;  // transaction-scoped
    }
    if (is_word(t, 1, "role") || (is_word(t, 1, "session") && is_word(t, 2, "role"))) {
      fx.pin_reason = "SET ROLE";
    } else if ((is_word(t, 1, "session") && is_word(t, 2, "authorization")) ||
               is_word(t, 1, "session_authorization")) {
      fx.pin_reason = "SET SESSION AUTHORIZATION";
    }
    fx.may_change_settings = true;
  } else if (lex::ieq(first, "reset")) {
    fx.may_change_settings = true;
  } else if (lex::ieq(first, "discard")) {
    fx.may_change_settings = true;
    if (is_word(t, 1, "all")) {
      fx.discard_all = true;
      fx.reset_all = true;
    }
  } else if (lex::ieq(first, "do")) {
    // Procedural code can set anything. Its body is scanned as SQL for the names it sets; what
    // it runs out of sight (EXECUTE, functions) is covered by resetting the server afterwards.
    fx.may_change_settings = true;
    fx.opaque_code = true;
    for (const Token& tok : t) {
      if (tok.type == T::kString && depth < kMaxDoDepth) {
        if (auto body = literal_value(tok.text)) {
          SessionEffects inner;
          analyze_into(*body, inner, depth + 1);
          for (auto& name : inner.custom_settings) {
            add_custom(fx, std::move(name));
          }
          if (inner.pin_reason != nullptr) {
            fx.pin_reason = inner.pin_reason;
          }
        }
      }
    }
  } else if (lex::ieq(first, "call")) {
    fx.may_change_settings = true;
    fx.opaque_code = true;
  } else if (lex::ieq(first, "listen")) {
    fx.pin_reason = "LISTEN";
  } else if (lex::ieq(first, "load")) {
    fx.pin_reason = "LOAD";
  } else if (lex::ieq(first, "prepare") && !is_word(t, 1, "transaction")) {
    fx.pin_reason = "SQL PREPARE";
  } else if (lex::ieq(first, "declare")) {
    for (size_t k = 1; k + 1 < t.size(); ++k) {
      if (is_word(t, k, "with") && is_word(t, k + 1, "hold")) {
        fx.pin_reason = "DECLARE ... WITH HOLD cursor";
      }
    }
  } else if (lex::ieq(first, "deallocate")) {
    // DEALLOCATE [PREPARE] name; "DEALLOCATE prepare" deallocates a statement named prepare.
    const size_t k = is_word(t, 1, "prepare") && t.size() > 2 ? 2 : 1;
    if (is_word(t, k, "all")) {
      fx.deallocate_all = true;
    } else if (t.size() == k + 1 && (t[k].type == T::kWord || t[k].type == T::kQIdent)) {
      std::optional<std::string> name =
          t[k].type == T::kWord ? std::optional(lower(t[k].text)) : quoted_ident(t[k].text);
      if (name) {
        fx.is_single_deallocate = true;
        fx.deallocate_name = truncate_identifier(std::move(*name));
      }
    }
  }
  // Temporary objects: CREATE [GLOBAL|LOCAL] TEMP|TEMPORARY ..., SELECT ... INTO TEMP ...,
  // CREATE TABLE ... AS with a temp target.
  if (lex::ieq(first, "create") || lex::ieq(first, "select") || lex::ieq(first, "with")) {
    for (size_t k = 0; k < t.size(); ++k) {
      if (is_word(t, k, "temp") || is_word(t, k, "temporary")) {
        const bool after_create = lex::ieq(first, "create") && k <= 3;
        const bool after_into = k > 0 && is_word(t, k - 1, "into");
        if (after_create || after_into) {
          fx.pin_reason = "temporary table";
        }
      }
      // A name in the session's temporary schema: CREATE TABLE pg_temp.t ..., SELECT INTO
      // pg_temp.t.
      if (k + 1 < t.size() &&
          ((t[k].type == T::kWord && lex::ieq(t[k].text, "pg_temp")) ||
           (t[k].type == T::kQIdent && t[k].text == "pg_temp")) &&
          t[k + 1].type == T::kDot) {
        fx.pin_reason = "temporary table";
      }
    }
  }
}

void analyze_into(std::string_view sql, SessionEffects& fx, int depth) {
  // Function calls are also looked for in the raw text, so calls inside strings (function
  // bodies, EXECUTE arguments) count too.
  scan_raw_calls(sql, fx);
  // An unterminated literal or comment (or a character that is not SQL) stops the lexer; the
  // server rejects such a string whole, so what came before it is all that could run.
  lex::Lexed lexed;
  lex::tokenize(sql, lexed);
  if (!lexed.ok) {
    // Text the lexer cannot follow to its end (PostgreSQL 16's 0x10 literals, junk, or strings
    // read as PostgreSQL would with standard_conforming_strings off): what comes after the
    // stop may set anything.
    fx.may_change_settings = true;
    fx.opaque_code = true;
  }
  const Tokens all(lexed.tokens);
  scan_custom_settings(all, fx);
  if (calls_unknown_function(all)) {
    fx.calls_unknown_functions = true;
  }
  size_t start = 0;
  int statements = 0;
  for (size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || all[i].type == T::kSemi) {
      if (i > start) {
        ++statements;
        const Tokens stmt = all.subspan(start, i - start);
        analyze_statement(stmt, fx, depth);
        if (depth > 0) {
          // PL/pgSQL: a statement may also start after a block or branch keyword
          // (BEGIN LISTEN x; IF c THEN SET ...; LOOP ...).
          for (size_t k = 0; k + 1 < stmt.size(); ++k) {
            if (is_word(stmt, k, "begin") || is_word(stmt, k, "then") || is_word(stmt, k, "else") ||
                is_word(stmt, k, "loop")) {
              analyze_statement(stmt.subspan(k + 1), fx, depth);
            }
          }
        }
      }
      start = i + 1;
    }
  }
  if (statements > 1) {
    fx.is_single_deallocate = false;
  }
}

// Byte classes for plain_statement.
enum class B : unsigned char { kOther, kLetter, kDigit, kSpace, kPunct, kSemi, kCommentStart };

constexpr std::array<B, 256> kByteClass = [] {
  std::array<B, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) {
    t[c] = B::kLetter;
    t[c - 'a' + 'A'] = B::kLetter;
  }
  t['_'] = B::kLetter;
  for (int c = '0'; c <= '9'; ++c) {
    t[c] = B::kDigit;
  }
  for (unsigned char c : {' ', '\t', '\n', '\r', '\f', '\v'}) {
    t[c] = B::kSpace;
  }
  for (unsigned char c : {',', '.', '=', '<', '>', '+', '*', ':'}) {
    t[c] = B::kPunct;
  }
  t[';'] = B::kSemi;
  t['-'] = B::kCommentStart;
  t['/'] = B::kCommentStart;
  return t;
}();

// A word that, written anywhere, could give a plain statement effects: SET / RESET (a custom
// setting named in an UPDATE's SET counts, see scan_custom_settings), or a temporary table.
bool effect_word(std::string_view w) {
  switch (w.size()) {
    case 3:
      return lex::ieq(w, "set");
    case 4:
      return lex::ieq(w, "temp");
    case 5:
      return lex::ieq(w, "reset");
    case 7:
      return lex::ieq(w, "pg_temp");
    case 9:
      return lex::ieq(w, "temporary");
    default:
      return false;
  }
}

// One SELECT / INSERT / UPDATE / DELETE / VALUES / TABLE statement written only with ASCII
// words, numbers, whitespace and , . = < > + - * / : (and trailing semicolons), without SET,
// RESET or temporary-table words. Such text lexes cleanly and has no call (no parenthesis), no
// literal and no comment, so analyze_into would find nothing but what scan_raw_calls finds in
// the raw text. Decided in one pass over the bytes, without tokens: `SELECT abalance FROM
// pgbench_accounts WHERE aid = 42` is the common case of a pooled transaction.
bool plain_statement(std::string_view sql) {
  const size_t n = sql.size();
  auto cls = [&](size_t i) { return kByteClass[static_cast<unsigned char>(sql[i])]; };
  size_t i = 0;
  std::string_view first;
  bool ended = false;  // a semicolon was seen: only whitespace and semicolons may follow
  while (i < n) {
    switch (cls(i)) {
      case B::kLetter: {
        const size_t from = i;
        while (i < n && (cls(i) == B::kLetter || cls(i) == B::kDigit)) {
          ++i;
        }
        const std::string_view word = sql.substr(from, i - from);
        if (ended || effect_word(word)) {
          return false;
        }
        if (first.empty()) {
          first = word;
        }
        continue;
      }
      case B::kDigit:
        while (i < n && cls(i) == B::kDigit) {
          ++i;
        }
        if (ended || first.empty() || (i < n && (cls(i) == B::kLetter || sql[i] == '.'))) {
          return false;  // 123abc, 1e5, 1_000, 1.5, 1.a: the lexer's to judge
        }
        continue;
      case B::kSpace:
        break;
      case B::kSemi:
        ended = true;
        break;
      case B::kCommentStart:
        if (ended || (i + 1 < n && (sql[i + 1] == '-' || sql[i + 1] == '*'))) {
          return false;  // a comment
        }
        break;
      case B::kPunct:
        if (ended || (sql[i] == '.' && i + 1 < n && cls(i + 1) == B::kDigit)) {
          return false;  // .5 starts a number
        }
        break;
      case B::kOther:
        return false;  // ( ' " $, non-ASCII and the rest: the lexer's to judge
    }
    ++i;
  }
  switch (first.size()) {
    case 5:
      return lex::ieq(first, "table");
    case 6:
      return lex::ieq(first, "select") || lex::ieq(first, "insert") || lex::ieq(first, "update") ||
             lex::ieq(first, "delete") || lex::ieq(first, "values");
    default:
      return false;
  }
}

}  // namespace

SessionEffects analyze_session_effects(std::string_view sql) {
  if (plain_statement(sql)) {
    SessionEffects fx;
    scan_raw_calls(sql, fx);  // set_config or pg_advisory_lock written without a call
    return fx;
  }
  return analyze_session_effects_lexed(sql);
}

SessionEffects analyze_session_effects_lexed(std::string_view sql) {
  SessionEffects fx;
  analyze_into(sql, fx, 0);
  if (!fx.is_single_deallocate) {
    fx.deallocate_name.clear();
  }
  return fx;
}

bool is_builtin_function(std::string_view lower_name) {
  return std::binary_search(std::begin(kBuiltinFunctions), std::end(kBuiltinFunctions), lower_name);
}

}  // namespace pglane::routing
