// PostgreSQL's lexical rules (docs 4.1), enough to split statements and recognise keywords
// without being fooled by what is inside literals and comments: -- and nested /* */ comments,
// '...' with '' doubling, E'...' with backslash escapes, U&'...', "quoted identifiers" with ""
// doubling, $tag$ dollar quoting, $1 parameters, :: casts. Internal to routing/.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pglane::routing::lex {

enum class T : unsigned char {
  kWord,    // keyword or unquoted identifier (compare with ieq)
  kQIdent,  // "quoted identifier" (text without the quotes; "" not undone)
  kString,  // any string literal, including dollar-quoted ones
  kNumber,
  kParam,  // $1
  kOp,     // operator characters (+ - * / < > = ~ ! @ # % ^ & | ` ?), one token per run
  kStar,   // a lone *
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kSemi,
  kCast,   // ::
  kColon,  // : (array slices)
};

struct Token {
  T type;
  std::string_view text;
};

struct Lexed {
  std::vector<Token> tokens;
  bool ok = true;  // false: unterminated string, comment or quoted identifier
};

// The index just past the block comment that starts at sql[i] ("/*"), or npos if it never ends.
// Block comments nest (docs 4.1.5).
size_t block_comment_end(std::string_view sql, size_t i);

// The body of each block comment before the first token of `sql` (line comments and
// whitespace skipped), in order, to `visit` until it returns true. Returns whether one did.
bool find_leading_comment(std::string_view sql,
                          const std::function<bool(std::string_view body)>& visit);

// `s` without leading and trailing spaces, tabs and line breaks.
std::string_view trim_space(std::string_view s);

// Appends the tokens of `sql` to out.tokens.
void tokenize(std::string_view sql, Lexed& out);

// ASCII lower-casing (identifiers fold this way; bytes >= 0x80 are kept).
inline std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// ASCII case-insensitive comparison with a lower-case keyword.
inline bool ieq(std::string_view word, std::string_view lower_keyword) {
  if (word.size() != lower_keyword.size()) {
    return false;
  }
  for (size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != lower_keyword[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace pglane::routing::lex
