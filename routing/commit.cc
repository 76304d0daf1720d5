#include "routing/commit.h"

#include "routing/lexer.h"

namespace pglane::routing {

bool may_commit(std::string_view sql) {
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
