#include "routing/commit.h"

#include "routing/lexer.h"

namespace pglane::routing {

namespace {

bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

bool may_commit(std::string_view sql) {
  // One statement (no ';' but trailing ones) that starts with a word: that word decides, without
  // lexing the rest. (Text the server cannot parse, an unterminated literal say, commits nothing
  // either.) Comments, quotes and several statements take the lexer.
  const size_t semi = sql.find(';');
  if (semi == std::string_view::npos ||
      sql.find_first_not_of(" \t\r\n\f;", semi) == std::string_view::npos) {
    const size_t from = sql.find_first_not_of(" \t\r\n\f");
    if (from != std::string_view::npos &&
        ((sql[from] | 0x20) >= 'a' && (sql[from] | 0x20) <= 'z')) {
      size_t to = from;
      while (to < sql.size() && word_char(sql[to])) {
        ++to;
      }
      const std::string_view first = sql.substr(from, to - from);
      if (lex::ieq(first, "commit") || lex::ieq(first, "end")) {
        return true;
      }
      if (!lex::ieq(first, "prepare")) {
        return false;
      }
    }
  }
  lex::Lexed lexed;
  lex::tokenize(sql, lexed);
  if (!lexed.ok) {
    return true;
  }
  const auto& t = lexed.tokens;
  bool at_start = true;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].type == lex::T::kSemi) {
      at_start = true;
      continue;
    }
    if (!at_start) {
      continue;
    }
    at_start = false;
    if (t[i].type != lex::T::kWord) {
      continue;
    }
    if (lex::ieq(t[i].text, "commit") || lex::ieq(t[i].text, "end")) {
      return true;
    }
    if (lex::ieq(t[i].text, "prepare") && i + 1 < t.size() && t[i + 1].type == lex::T::kWord &&
        lex::ieq(t[i + 1].text, "transaction")) {
      return true;
    }
  }
  return false;
}

}  // namespace pglane::routing
