#include "cache/policy.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "protocol/frame.h"
#include "protocol/messages.h"
#include "routing/lexer.h"

namespace pglane::cache {

namespace lex = routing::lex;

namespace {

using lex::trim_space;

bool starts_ieq(std::string_view s, std::string_view lower_prefix) {
  return s.size() >= lower_prefix.size() &&
         lex::ieq(s.substr(0, lower_prefix.size()), lower_prefix);
}

// "30s", "500ms", "2m", "30" (seconds). -1 when malformed.
int parse_ttl(std::string_view v) {
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || n < 0 || n > 86400000) {
    return -1;
  }
  std::string unit =
      lex::lower(std::string_view(end, static_cast<size_t>(v.data() + v.size() - end)));
  if (unit == "ms") {
    return n;
  }
  if (unit.empty() || unit == "s") {
    return n > 86400 ? -1 : n * 1000;
  }
  if (unit == "m" || unit == "min") {
    return n > 1440 ? -1 : n * 60000;
  }
  return -1;
}

// The body of a "pglane:" comment asks for caching: "cache" or "cache ttl=30s" among its words.
std::optional<int> hint_in(std::string_view body) {
  body = trim_space(body);
  if (!starts_ieq(body, "pglane:")) {
    return std::nullopt;
  }
  body.remove_prefix(7);
  std::optional<int> found;
  while (!body.empty()) {
    body = trim_space(body);
    const size_t sp = std::min(body.find_first_of(" \t\r\n"), body.size());
    const std::string_view word = body.substr(0, sp);
    body.remove_prefix(sp);
    if (lex::ieq(word, "cache")) {
      found = found.value_or(0);
    } else if (found && starts_ieq(word, "ttl=")) {
      const int ms = parse_ttl(word.substr(4));
      if (ms < 0) {
        return std::nullopt;  // a hint we cannot read caches nothing
      }
      found = ms;
    }
  }
  return found;
}

// Keywords that read the clock or the session's identity: SQLValueFunction nodes in the parse
// tree, not function calls, so the analysis does not list them.
constexpr std::array<std::string_view, 12> kVolatileWords = {
    "current_date",   "current_time",    "current_timestamp", "localtime",
    "localtimestamp", "current_role",    "current_user",      "session_user",
    "user",           "current_catalog", "current_schema",    "tablesample"};

// String literals the date/time input functions turn into the current time.
constexpr std::array<std::string_view, 4> kClockLiterals = {"now", "today", "tomorrow",
                                                            "yesterday"};

bool system_relation(const routing::QualifiedName& t) {
  const std::string schema = lex::lower(t.schema);
  if (schema == "pg_catalog" || schema == "information_schema" || schema.rfind("pg_", 0) == 0) {
    return true;  // pg_catalog, pg_temp_N, pg_toast...
  }
  return schema.empty() && lex::lower(t.name).rfind("pg_", 0) == 0;
}

bool listed(const routing::QualifiedName& t, const std::vector<std::string>& tables) {
  const std::string name = lex::lower(t.name);
  const std::string qualified = t.schema.empty() ? name : lex::lower(t.schema) + "." + name;
  for (const std::string& r : tables) {
    if (r == name || r == qualified) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string_view> cacheable_unit(std::string_view unit) {
  namespace p = protocol;
  std::optional<std::string_view> sql;
  int parses = 0;
  int binds = 0;
  int executes = 0;
  size_t pos = 0;
  while (pos < unit.size()) {
    auto h = p::decode_header(unit.substr(pos));
    if (h.status != p::DecodeStatus::kMessage || unit.size() - pos < h.frame.size) {
      return std::nullopt;
    }
    const std::string_view msg = unit.substr(pos, h.frame.size);
    pos += h.frame.size;
    p::Reader r(msg.substr(p::kHeaderSize));
    const bool last = pos == unit.size();
    switch (h.frame.type) {
      case 'Q':
        if (pos != h.frame.size || !last) {
          return std::nullopt;  // a Query alone, or nothing
        }
        return p::statement_text('Q', msg);
      case 'P':
        if (!r.cstring().empty() || !r.ok() || ++parses > 1 || binds > 0) {
          return std::nullopt;  // a named statement, or a second Parse
        }
        sql = p::statement_text('P', msg);
        break;
      case 'B':
        if (!r.cstring().empty() || !r.cstring().empty() || !r.ok() || ++binds > 1 || parses == 0) {
          return std::nullopt;  // named portal or statement, or a statement of an earlier unit
        }
        break;
      case 'D': {
        // Of this unit's statement or portal only: before them, the unnamed ones are whatever
        // an earlier unit left on some server.
        const uint8_t kind = r.u8();
        if (!r.cstring().empty() || !r.ok() ||
            !((kind == 'S' && parses > 0) || (kind == 'P' && binds > 0))) {
          return std::nullopt;
        }
        break;
      }
      case 'E':
        if (!r.cstring().empty() || r.i32() != 0 || !r.ok() || binds == 0 || ++executes > 1) {
          return std::nullopt;  // a named portal, or a row limit (a partial result)
        }
        break;
      case 'S':
        if (!last || executes != 1) {
          return std::nullopt;
        }
        return sql;
      default:
        return std::nullopt;  // Close, Flush, FunctionCall, COPY...
    }
  }
  return std::nullopt;  // no Sync
}

bool mentions_clock(std::string_view bytes) {
  const std::string s = lex::lower(bytes);
  for (std::string_view w : kClockLiterals) {
    if (s.find(w) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::optional<int> cache_hint_ms(std::string_view sql) {
  std::optional<int> ms;
  lex::find_leading_comment(sql, [&ms](std::string_view body) {
    ms = hint_in(body);
    return ms.has_value();
  });
  return ms;
}

Verdict decide(const routing::StatementInfo& info, std::string_view sql, const Rules& rules,
               const routing::FunctionCatalog* functions, bool seen_often) {
  Verdict v;
  using Kind = routing::StatementInfo::Kind;
  if (info.kind != Kind::kRead || info.statements != 1 || info.parse_failed || info.needs_writer ||
      info.locks_rows || !info.tables_written.empty()) {
    v.why = "not one plain read";
    return v;
  }
  if (info.tables_read.empty()) {
    v.why = "reads no table";
    return v;
  }
  // The rules first: most reads are not cached, and this costs no lexing.
  bool all_listed = true;
  for (const routing::QualifiedName& t : info.tables_read) {
    if (system_relation(t)) {
      v.why = "reads a system catalog";
      return v;
    }
    if (functions != nullptr && functions->relations().uncacheable(lex::lower(t.name))) {
      v.why = "reads a sequence, or a view over functions that are not immutable";
      return v;
    }
    all_listed = all_listed && listed(t, rules.tables);
  }
  const std::optional<int> hint = rules.hints ? cache_hint_ms(sql) : std::nullopt;
  if (!all_listed && !hint && !seen_often) {
    v.why = kNoRule;
    return v;
  }
  lex::Lexed lexed;
  lex::tokenize(sql, lexed);
  if (!lexed.ok) {
    v.why = "does not lex";
    return v;
  }
  const lex::Token* first = nullptr;
  for (const lex::Token& t : lexed.tokens) {
    if (first == nullptr) {
      first = &t;
    }
    if (t.type == lex::T::kWord) {
      for (std::string_view w : kVolatileWords) {
        if (lex::ieq(t.text, w)) {
          v.why = "reads the clock or the session's identity";
          return v;
        }
      }
    } else if (t.type == lex::T::kString) {
      if (t.text.find('\\') != std::string_view::npos || t.text.empty() || t.text[0] == 'e' ||
          t.text[0] == 'E' || t.text[0] == 'u' || t.text[0] == 'U') {
        v.why = "an escaped literal";  // E'\x6eow' reads the clock too
        return v;
      }
      const std::string s = lex::lower(t.text);
      for (std::string_view w : kClockLiterals) {
        if (s.find(w) != std::string::npos) {
          v.why = "a literal may read the clock";
          return v;
        }
      }
    }
  }
  if (first == nullptr || first->type != lex::T::kWord ||
      !(lex::ieq(first->text, "select") || lex::ieq(first->text, "with") ||
        lex::ieq(first->text, "values") || lex::ieq(first->text, "table"))) {
    v.why = "not a SELECT";  // SHOW, EXPLAIN, COPY TO...
    return v;
  }
  for (const routing::QualifiedName& fn : info.functions) {
    const std::optional<bool> imm = functions != nullptr ? functions->immutable(fn) : std::nullopt;
    if (!imm.value_or(false)) {
      v.why = "calls a function not known to be immutable";
      return v;
    }
  }
  v.cache = true;
  v.ttl_ms = std::min(hint && *hint > 0 ? *hint : rules.ttl_ms, rules.max_ttl_ms);
  return v;
}

}  // namespace pglane::cache
