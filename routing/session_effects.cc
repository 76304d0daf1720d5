#include "routing/session_effects.h"

#include <algorithm>
#include <optional>
#include <span>

#include "routing/lexer.h"

namespace pglane::routing {

namespace {

using lex::T;
using lex::Token;
using Tokens = std::span<const Token>;

// DO bodies are scanned as SQL; a body that itself runs DO is scanned this deep at most.
constexpr int kMaxDoDepth = 3;

bool is_word(Tokens t, size_t i, std::string_view lower_keyword) {
  return i < t.size() && t[i].type == T::kWord && lex::ieq(t[i].text, lower_keyword);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) {
    return false;
  }
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (lex::ieq(hay.substr(i, needle.size()), needle)) {
      return true;
    }
  }
  return false;
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

// A possibly qualified name starting at t[i] ("app.tenant", "a"."b"): its lower-cased text and
// the index after it. Empty when t[i] is not a name.
std::pair<std::string, size_t> dotted_name(Tokens t, size_t i) {
  std::string name;
  while (i < t.size() && (t[i].type == T::kWord || t[i].type == T::kQIdent)) {
    name += lower(t[i].text);
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

bool is_true_literal(Tokens arg) {
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

void add_custom(SessionEffects& fx, std::string name) {
  if (name.find('.') == std::string::npos) {
    return;  // a built-in setting: pg_settings shows it
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
      if (is_word(t, k, "local")) {
        continue;  // transaction-scoped
      }
      if (is_word(t, k, "session")) {
        ++k;
      }
      add_custom(fx, dotted_name(t, k).first);
    } else if ((is_word(t, i, "set_config") ||
                (t[i].type == T::kQIdent && t[i].text == "set_config")) &&
               i + 1 < t.size() && t[i + 1].type == T::kLParen) {
      const auto args = call_arguments(t, i + 1);
      std::optional<std::string> name;
      if (!args.empty() && args[0].size() == 1 && args[0][0].type == T::kString) {
        name = literal_value(args[0][0].text);
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

void analyze_into(std::string_view sql, SessionEffects& fx, int depth);

// One statement (no semicolons) of the string.
void analyze_statement(Tokens t, SessionEffects& fx, int depth) {
  if (t.empty() || t[0].type != T::kWord) {
    return;
  }
  const std::string_view first = t[0].text;
  if (lex::ieq(first, "set")) {
    if (is_word(t, 1, "local") || is_word(t, 1, "transaction") || is_word(t, 1, "constraints")) {
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
    const size_t k = is_word(t, 1, "prepare") ? 2 : 1;
    if (is_word(t, k, "all")) {
      fx.deallocate_all = true;
    } else if (t.size() == k + 1 && (t[k].type == T::kWord || t[k].type == T::kQIdent)) {
      fx.is_single_deallocate = true;
      fx.deallocate_name = t[k].type == T::kWord ? lower(t[k].text) : std::string(t[k].text);
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
    }
  }
}

void analyze_into(std::string_view sql, SessionEffects& fx, int depth) {
  // Function calls are also looked for in the raw text, so calls inside strings (function
  // bodies, EXECUTE arguments) count too.
  if (contains_ci(sql, "set_config")) {
    fx.may_change_settings = true;
  }
  if (contains_ci(sql, "pg_advisory_lock") || contains_ci(sql, "pg_try_advisory_lock")) {
    fx.pin_reason = "session advisory lock";
  }
  // An unterminated literal or comment (or a character that is not SQL) stops the lexer; the
  // server rejects such a string whole, so what came before it is all that could run.
  lex::Lexed lexed;
  lex::tokenize(sql, lexed);
  const Tokens all(lexed.tokens);
  scan_custom_settings(all, fx);
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

}  // namespace

SessionEffects analyze_session_effects(std::string_view sql) {
  SessionEffects fx;
  analyze_into(sql, fx, 0);
  if (!fx.is_single_deallocate) {
    fx.deallocate_name.clear();
  }
  return fx;
}

}  // namespace pglane::routing
