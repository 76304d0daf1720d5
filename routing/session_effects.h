// What a SQL string may do to session state that outlives its transaction. Transaction pooling
// needs this to know when a client's settings must be re-read, which custom settings to read
// back by name, when a server must be reset before another client may use it, and when a client
// must keep its server connection ("pinning") because the state cannot move.
//
// The scan is lexical (routing/lexer.h, PostgreSQL's lexical rules) and conservative: a false
// positive costs one extra round trip (a settings re-read), a tracked name that turns out unset,
// or a pinned session; it never leaks state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pglane::routing {

struct SessionEffects {
  // SET / RESET / SET SESSION CHARACTERISTICS / set_config() / DISCARD / DO / CALL: the client's
  // session settings may have changed and must be re-read after the transaction.
  bool may_change_settings = false;
  // Custom (placeholder) settings, "prefix.name" lower-cased, that the statements may set with
  // session scope. PostgreSQL hides placeholders from pg_settings and SHOW ALL, so the session
  // reads these back by name with current_setting(name, true).
  std::vector<std::string> custom_settings;
  // Built-in or custom settings the statements RESET by name (lower-cased), and RESET ALL /
  // DISCARD ALL: a startup parameter then returns to its startup value.
  std::vector<std::string> reset_settings;
  bool reset_all = false;
  // DO / CALL, or text pglane cannot scan (a lexical error, a U&"..." name): code or names it
  // cannot see may have set custom settings. The server is reset (RESET ALL) before any client
  // uses it again.
  bool opaque_code = false;
  // A call of a function that is not one of PostgreSQL's own (pg_catalog, information_schema):
  // it may set settings too (a tenant set_config inside a helper function). Whether that taints
  // the server is the session's policy (pool.reset_after_unknown_functions).
  bool calls_unknown_functions = false;
  bool discard_all = false;     // DISCARD ALL: every session state is gone (unpins)
  bool deallocate_all = false;  // DEALLOCATE [PREPARE] ALL
  // The statement is exactly one `DEALLOCATE [PREPARE] name` (name unquoted and lower-cased
  // unless it was written "quoted").
  bool is_single_deallocate = false;
  std::string deallocate_name;
  // Non-null when the session must stay on its server connection: a short reason for logs.
  const char* pin_reason = nullptr;

  bool operator==(const SessionEffects&) const = default;
};

SessionEffects analyze_session_effects(std::string_view sql);
// The same answer, always through the lexer: analyze_session_effects decides a plain one-statement
// SELECT, INSERT, UPDATE or DELETE from its bytes alone, and the unit tests and the fuzz target
// check that both agree.
SessionEffects analyze_session_effects_lexed(std::string_view sql);

// Whether `lower_name` is one of PostgreSQL 15's own functions (pg_catalog, information_schema).
bool is_builtin_function(std::string_view lower_name);

}  // namespace pglane::routing
