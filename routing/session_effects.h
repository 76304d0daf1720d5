// What a SQL string may do to session state that outlives its transaction. Transaction pooling
// needs this to know when a client's settings must be re-read, and when a client must keep its
// server connection ("pinning") because the state cannot move to another connection.
//
// The scan is lexical and conservative: it follows PostgreSQL's lexical rules (comments, nested
// block comments, '...' / E'...' strings, "quoted" identifiers, $tag$ dollar quoting) to find
// statement boundaries and leading keywords. A false positive costs one extra round trip (a
// settings re-read) or a pinned session; it never leaks state.
#pragma once

#include <string>
#include <string_view>

namespace pglane::routing {

struct SessionEffects {
  // SET / RESET / SET SESSION CHARACTERISTICS / set_config() / DISCARD / DO / CALL: the client's
  // session settings may have changed and must be re-read after the transaction.
  bool may_change_settings = false;
  bool discard_all = false;     // DISCARD ALL: every session state is gone (unpins)
  bool deallocate_all = false;  // DEALLOCATE [PREPARE] ALL
  // The statement is exactly one `DEALLOCATE [PREPARE] name` (name unquoted and lower-cased
  // unless it was written "quoted").
  bool is_single_deallocate = false;
  std::string deallocate_name;
  // Non-null when the session must stay on its server connection: a short reason for logs.
  const char* pin_reason = nullptr;
};

SessionEffects analyze_session_effects(std::string_view sql);

}  // namespace pglane::routing
