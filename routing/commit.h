// Whether a statement text may commit a transaction: COMMIT, END, COMMIT PREPARED or PREPARE
// TRANSACTION among its statements. When the server dies with such a text in flight, the client
// is told 08007 (transaction resolution unknown), never a plain failure: it may have committed.
#pragma once

#include <string_view>

namespace pglane::routing {

// True when any statement of `sql` starts with COMMIT or END, or is PREPARE TRANSACTION. Text the
// lexer cannot follow counts as committing (the answer must never be a false "no").
bool may_commit(std::string_view sql);

}  // namespace pglane::routing
