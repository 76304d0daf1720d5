#include "routing/lexer.h"

#include <algorithm>

namespace pglane::routing::lex {

namespace {

bool ident_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
bool ident_char(unsigned char c) {
  return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}
bool digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool op_char(unsigned char c) {
  switch (c) {
    case '+':
    case '-':
    case '*':
    case '/':
    case '<':
    case '>':
    case '=':
    case '~':
    case '!':
    case '@':
    case '#':
    case '%':
    case '^':
    case '&':
    case '|':
    case '`':
    case '?':
      return true;
    default:
      return false;
  }
}

}  // namespace

size_t block_comment_end(std::string_view sql, size_t i) {
  const size_t n = sql.size();
  int depth = 0;
  while (i < n) {
    if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
      ++depth;
      i += 2;
    } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
      i += 2;
      if (--depth == 0) {
        return i;
      }
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

bool find_leading_comment(std::string_view sql,
                          const std::function<bool(std::string_view body)>& visit) {
  size_t i = 0;
  const size_t n = sql.size();
  while (i < n) {
    const char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n' && sql[i] != '\r') {  // -- ends at either
        ++i;
      }
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      const size_t start = i;
      i = block_comment_end(sql, i);
      if (i == std::string_view::npos) {
        return false;
      }
      if (visit(sql.substr(start + 2, i - start - 4))) {
        return true;
      }
    } else {
      return false;
    }
  }
  return false;
}

std::string_view trim_space(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

void tokenize(std::string_view sql, Lexed& out) {
  const size_t n = sql.size();
  // About one token per 5 bytes of SQL: one allocation for a short statement instead of one per
  // doubling (capped: a long text grows as it goes).
  out.tokens.reserve(out.tokens.size() + std::min<size_t>(n / 5 + 8, 512));
  size_t i = 0;
  auto push = [&](T type, size_t from, size_t to) {
    out.tokens.push_back(Token{type, sql.substr(from, to - from)});
  };
  // Skips a quoted run starting at sql[i] == quote; returns false if it never ends.
  auto skip_quoted = [&](char quote, bool backslash_escapes) {
    ++i;
    while (i < n) {
      const char c = sql[i];
      if (backslash_escapes && c == '\\') {
        i += 2;
        continue;
      }
      if (c == quote) {
        if (i + 1 < n && sql[i + 1] == quote) {
          i += 2;  // doubled quote
          continue;
        }
        ++i;
        return true;
      }
      ++i;
    }
    return false;
  };
  while (i < n) {
    const unsigned char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
      continue;
    }
    if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n' && sql[i] != '\r') {  // -- ends at either
        ++i;
      }
      continue;
    }
    if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      i = block_comment_end(sql, i);
      if (i == std::string_view::npos) {
        out.ok = false;
        return;
      }
      continue;
    }
    const size_t start = i;
    if (c == '\'') {
      if (!skip_quoted('\'', false)) {
        out.ok = false;
        return;
      }
      push(T::kString, start, i);
      continue;
    }
    if ((c == 'e' || c == 'E') && i + 1 < n && sql[i + 1] == '\'') {
      ++i;
      if (!skip_quoted('\'', true)) {
        out.ok = false;
        return;
      }
      push(T::kString, start, i);
      continue;
    }
    if ((c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') && i + 1 < n &&
        sql[i + 1] == '\'') {
      ++i;
      if (!skip_quoted('\'', false)) {
        out.ok = false;
        return;
      }
      push(T::kString, start, i);
      continue;
    }
    if ((c == 'u' || c == 'U') && i + 2 < n && sql[i + 1] == '&' &&
        (sql[i + 2] == '\'' || sql[i + 2] == '"')) {
      const char q = sql[i + 2];
      i += 2;
      if (!skip_quoted(q, false)) {
        out.ok = false;
        return;
      }
      push(q == '\'' ? T::kString : T::kQIdent, start, i);
      continue;
    }
    if (c == '"') {
      if (!skip_quoted('"', false)) {
        out.ok = false;
        return;
      }
      out.tokens.push_back(Token{T::kQIdent, sql.substr(start + 1, i - start - 2)});
      continue;
    }
    if (c == '$') {
      if (i + 1 < n && digit(sql[i + 1])) {
        ++i;
        while (i < n && digit(sql[i])) {
          ++i;
        }
        push(T::kParam, start, i);
        continue;
      }
      // Dollar quoting: $$...$$ or $tag$...$tag$ (the tag is an identifier without $).
      size_t j = i + 1;
      if (j < n && ident_start(sql[j])) {
        while (j < n && ident_char(sql[j]) && sql[j] != '$') {
          ++j;
        }
      }
      if (j < n && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        size_t end = sql.find(tag, j + 1);
        if (end == std::string_view::npos) {
          out.ok = false;
          return;
        }
        i = end + tag.size();
        push(T::kString, start, i);
        continue;
      }
      out.ok = false;  // a stray $ is not valid SQL outside identifiers
      return;
    }
    if (ident_start(c)) {
      while (i < n && ident_char(sql[i])) {
        ++i;
      }
      push(T::kWord, start, i);
      continue;
    }
    if (digit(c) || (c == '.' && i + 1 < n && digit(sql[i + 1]))) {
      while (i < n && (digit(sql[i]) || sql[i] == '.' || sql[i] == '_')) {
        if (sql[i] == '.' && i + 1 < n && sql[i + 1] == '.') {
          break;
        }
        ++i;
      }
      if (i < n && (sql[i] == 'e' || sql[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (sql[j] == '+' || sql[j] == '-')) {
          ++j;
        }
        if (j < n && digit(sql[j])) {
          i = j;
          while (i < n && digit(sql[i])) {
            ++i;
          }
        }
      }
      if (i < n && ident_start(sql[i])) {
        out.ok = false;  // 123abc: PostgreSQL 15 rejects junk after a number
        return;
      }
      push(T::kNumber, start, i);
      continue;
    }
    switch (c) {
      case '(':
        push(T::kLParen, i, i + 1);
        ++i;
        continue;
      case ')':
        push(T::kRParen, i, i + 1);
        ++i;
        continue;
      case '[':
        push(T::kLBracket, i, i + 1);
        ++i;
        continue;
      case ']':
        push(T::kRBracket, i, i + 1);
        ++i;
        continue;
      case ',':
        push(T::kComma, i, i + 1);
        ++i;
        continue;
      case '.':
        push(T::kDot, i, i + 1);
        ++i;
        continue;
      case ';':
        push(T::kSemi, i, i + 1);
        ++i;
        continue;
      case ':':
        if (i + 1 < n && sql[i + 1] == ':') {
          push(T::kCast, i, i + 2);
          i += 2;
        } else {
          push(T::kColon, i, i + 1);
          ++i;
        }
        continue;
      default:
        break;
    }
    if (op_char(c)) {
      while (i < n && op_char(sql[i])) {
        // A comment start ends an operator (docs 4.1.3).
        if ((sql[i] == '-' && i + 1 < n && sql[i + 1] == '-') ||
            (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*')) {
          break;
        }
        ++i;
      }
      if (i == start) {
        continue;  // the comment is handled on the next turn
      }
      push(i - start == 1 && c == '*' ? T::kStar : T::kOp, start, i);
      continue;
    }
    // Anything else (a backslash, a stray control character) is not SQL.
    out.ok = false;
    return;
  }
}

}  // namespace pglane::routing::lex
