#include "routing/session_effects.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "routing/lexer.h"

namespace pglane::routing {

namespace {

struct Token {
  std::string text;  // keywords/identifiers lower-cased; quoted identifiers verbatim
  bool quoted = false;
};

bool ident_start(unsigned char c) {
  return std::isalpha(c) || c == '_' || c >= 0x80;
}
bool ident_char(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

// Splits `sql` into statements of word tokens. Literals, numbers and operators are dropped; only
// words matter for the decisions below. Unterminated constructs end the scan (the server will
// reject the statement anyway).
std::vector<std::vector<Token>> tokenize(std::string_view sql) {
  std::vector<std::vector<Token>> statements(1);
  size_t i = 0;
  const size_t n = sql.size();
  auto skip_quoted = [&](char quote, bool backslash_escapes) {
    ++i;
    while (i < n) {
      if (backslash_escapes && sql[i] == '\\') {
        i += 2;
        continue;
      }
      if (sql[i] == quote) {
        if (i + 1 < n && sql[i + 1] == quote) {
          i += 2;
          continue;
        }
        ++i;
        return;
      }
      ++i;
    }
  };
  while (i < n) {
    const unsigned char c = sql[i];
    if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n' && sql[i] != '\r') {  // -- ends at either
        ++i;
      }
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      i = std::min(lex::block_comment_end(sql, i), n);
    } else if (c == '\'') {
      skip_quoted('\'', false);
    } else if ((c == 'e' || c == 'E') && i + 1 < n && sql[i + 1] == '\'') {
      ++i;
      skip_quoted('\'', true);
    } else if (c == '"') {
      size_t start = i + 1;
      skip_quoted('"', false);
      std::string ident;
      for (size_t k = start; k + 1 < i; ++k) {
        ident += sql[k];
        if (sql[k] == '"') {
          ++k;  // "" inside a quoted identifier is one "
        }
      }
      statements.back().push_back({std::move(ident), true});
    } else if (c == '$' && i + 1 < n && (sql[i + 1] == '$' || ident_start(sql[i + 1]))) {
      // Dollar quoting: $tag$ ... $tag$. A $ followed by digits is a parameter, handled below.
      size_t j = i + 1;
      while (j < n && sql[j] != '$' && ident_char(sql[j]) && sql[j] != '$') {
        ++j;
      }
      if (j < n && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        size_t end = sql.find(tag, j + 1);
        i = end == std::string_view::npos ? n : end + tag.size();
      } else {
        i = j;
      }
    } else if (ident_start(c)) {
      size_t start = i;
      while (i < n && ident_char(sql[i])) {
        ++i;
      }
      std::string word(sql.substr(start, i - start));
      for (auto& ch : word) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      statements.back().push_back({std::move(word), false});
    } else if (c == ';') {
      if (!statements.back().empty()) {
        statements.emplace_back();
      }
      ++i;
    } else {
      ++i;
    }
  }
  if (statements.back().empty() && statements.size() > 1) {
    statements.pop_back();
  }
  return statements;
}

bool word_is(const std::vector<Token>& t, size_t i, std::string_view w) {
  return i < t.size() && !t[i].quoted && t[i].text == w;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) {
    return false;
  }
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && std::tolower(static_cast<unsigned char>(hay[i + k])) == needle[k]) {
      ++k;
    }
    if (k == needle.size()) {
      return true;
    }
  }
  return false;
}

}  // namespace

SessionEffects analyze_session_effects(std::string_view sql) {
  SessionEffects fx;
  // Function calls are found in the raw text, so calls inside DO bodies and strings count too.
  if (contains_ci(sql, "set_config")) {
    fx.may_change_settings = true;
  }
  if (contains_ci(sql, "pg_advisory_lock") || contains_ci(sql, "pg_try_advisory_lock")) {
    fx.pin_reason = "session advisory lock";
  }
  const auto statements = tokenize(sql);
  for (const auto& t : statements) {
    if (t.empty()) {
      continue;
    }
    const std::string& first = t[0].quoted ? std::string() : t[0].text;
    if (first == "set") {
      if (word_is(t, 1, "local") || word_is(t, 1, "transaction") || word_is(t, 1, "constraints")) {
        continue;  // transaction-scoped
      }
      if (word_is(t, 1, "role") || (word_is(t, 1, "session") && word_is(t, 2, "role"))) {
        fx.pin_reason = "SET ROLE";
      } else if ((word_is(t, 1, "session") && word_is(t, 2, "authorization")) ||
                 word_is(t, 1, "session_authorization")) {
        fx.pin_reason = "SET SESSION AUTHORIZATION";
      } else if (word_is(t, 1, "role") || word_is(t, 2, "role")) {
        fx.pin_reason = "SET ROLE";
      }
      fx.may_change_settings = true;
    } else if (first == "reset") {
      fx.may_change_settings = true;
    } else if (first == "discard") {
      fx.may_change_settings = true;
      if (word_is(t, 1, "all")) {
        fx.discard_all = true;
      }
    } else if (first == "do" || first == "call") {
      fx.may_change_settings = true;  // procedural code can SET anything
    } else if (first == "listen") {
      fx.pin_reason = "LISTEN";
    } else if (first == "load") {
      fx.pin_reason = "LOAD";
    } else if (first == "prepare" && !word_is(t, 1, "transaction")) {
      fx.pin_reason = "SQL PREPARE";
    } else if (first == "declare") {
      for (size_t k = 1; k + 1 < t.size(); ++k) {
        if (word_is(t, k, "with") && word_is(t, k + 1, "hold")) {
          fx.pin_reason = "DECLARE ... WITH HOLD cursor";
        }
      }
    } else if (first == "deallocate") {
      size_t k = word_is(t, 1, "prepare") ? 2 : 1;
      if (word_is(t, k, "all")) {
        fx.deallocate_all = true;
      } else if (statements.size() == 1 && t.size() == k + 1) {
        fx.is_single_deallocate = true;
        fx.deallocate_name = t[k].text;
      }
    }
    // Temporary objects: CREATE [GLOBAL|LOCAL] TEMP|TEMPORARY ..., SELECT ... INTO TEMP ...,
    // CREATE TABLE ... AS with a temp target.
    if (first == "create" || first == "select" || first == "with") {
      for (size_t k = 0; k < t.size(); ++k) {
        if (word_is(t, k, "temp") || word_is(t, k, "temporary")) {
          bool after_create = first == "create" && k <= 3;
          bool after_into = k > 0 && word_is(t, k - 1, "into");
          if (after_create || after_into) {
            fx.pin_reason = "temporary table";
          }
        }
      }
    }
  }
  return fx;
}

}  // namespace pglane::routing
