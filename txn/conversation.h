// The transaction layer of one client in transaction pooling: what it asked for, what it is owed,
// and what follows it from server to server. Sans-I/O: the session's relay hands it whole
// messages and sends what it writes; tests drive it with byte literals.
//
// It owns
//   - the queue of replies owed to the client, in order (PostgreSQL answers strictly in order,
//     docs 55.2.3), including replies pglane answers itself and replies to requests pglane
//     injected, which are swallowed;
//   - the client's named prepared statements and their server names (rewritten in Parse, Bind,
//     Describe and Close, parsed lazily on whichever server the client is on);
//   - the session's settings and pins;
//   - the retry log: what a read sent to a replica, while nothing of its answer has reached the
//     client, so it can run again elsewhere if the replica dies. Nothing else replays.
//
// Invariants (checked by tests/fuzz/txn_fuzz.cc): every server reply is matched to the request at
// the head of the queue; the client never gets more ReadyForQuery than it sent Query, Sync and
// FunctionCall; no server statement name is created from another client's names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "routing/unit.h"
#include "txn/client_settings.h"
#include "txn/statements.h"

namespace pglane::txn {

// Where the conversation's replies go. `pass` gets bytes of the server's own messages (views
// into the relay's input buffer, valid until the relay writes); `own` gets bytes pglane made.
class ClientSink {
 public:
  virtual ~ClientSink() = default;
  virtual void pass(std::string_view server_bytes) = 0;
  virtual void own(std::string bytes) = 0;
};

struct ConversationOptions {
  bool routing = false;  // read/write splitting: statements are analysed for routing
  bool reset_after_unknown_functions = true;  // pool.reset_after_unknown_functions
  size_t max_prepared_statements = 100;       // per server connection (pool.max_prepared_...)
  size_t max_message = 1 << 30;               // proxy.max_message_size
};

// A read is retried on another replica only if what it sent fits in this many bytes.
inline constexpr size_t kMaxRetryBytes = 64 * 1024;

class Conversation {
 public:
  // `memo` analyses statement texts (the session's; shared with unit classification).
  Conversation(ConversationOptions opts, routing::StatementMemo& memo);

  ClientSettings& settings() { return settings_; }
  const ClientSettings& settings() const { return settings_; }
  // standard_conforming_strings is off: the client's, else the server's default.
  bool scs_off() const { return settings_.scs_off().value_or(server_default_scs_off_); }
  void set_server_default_scs_off(bool off) { server_default_scs_off_ = off; }
  routing::Hint hint() const { return hint_; }  // SET pglane.route
  void set_hint(routing::Hint h) { hint_ = h; }

  // ---- Attachment ----

  // A server joins this client. `pool_key` scopes what is learned about statements; `retryable`:
  // a read on a replica, which may run again elsewhere if the replica dies unanswered;
  // `status`: the server's transaction status now.
  void attach(ServerStatements& server, const std::string& pool_key, bool retryable, char status);
  // The server leaves (idle, nothing owed).
  void detach();
  // Nothing owed and not discarding up to a Sync: the server may leave.
  bool settled() const { return expect_.empty() && !skipping_; }
  bool owes_replies() const { return !expect_.empty(); }
  // After an error in an extended-protocol batch, the server ignores everything up to Sync.
  bool skipping() const { return skipping_; }

  // Closes (Close + Sync, or "") the statements `server` holds that no connected client uses.
  std::string close_unused(ServerStatements& server) const;
  // Parse + Sync for each statement pglane answered alone that `server` lacks; `sent` gets
  // their server names. owed_parsed() takes the reply type per Parse ('1' or 'E').
  std::string owed_parses(const ServerStatements& server, const std::string& pool_key,
                          std::vector<std::string>& sent);
  void owed_parsed(ServerStatements& server, const std::vector<std::string>& sent,
                   std::string_view replies);
  bool has_owed() const { return !owed_.empty(); }

  // A batch of only named Parses of known statements and a Sync, with no server attached, is
  // answered here (KnownStatements). `pool_key` as for attach.
  enum class Prepared { kNo, kNeedMore, kAnswered };
  Prepared answer_known_prepare(std::string_view data, const std::string& pool_key,
                                std::string& reply, size_t& consumed);

  // ---- Client side ----

  enum class ClientResult { kOk, kInvalidParse, kInvalidBind };
  // One whole Query, Parse, Bind, Describe or Close, rewritten into `out` (what goes to the
  // server); local answers wait in the queue, or in take_local_now() when nothing is owed.
  // `server_status`: the attached server's last ReadyForQuery status.
  ClientResult on_client_message(char type, std::string_view whole, std::string& out,
                                 char server_status);
  // A message forwarded as it streams, without being looked at (too large, or not rewritten).
  void on_client_forwarded(char type);
  // Local replies to send before the next write to the server.
  std::string take_local_now() { return std::exchange(local_now_, std::string()); }

  // Pins: the client keeps its server. take_new_pin() reports a pin once, for logs and counters.
  void pin(const char* reason);
  const char* pinned() const { return pinned_; }
  const char* take_new_pin() { return std::exchange(new_pin_, nullptr); }
  void unpin() { pinned_ = nullptr; }

  // What the client's named statement does (for routing a Bind), or null.
  const routing::PreparedPlan* plan(std::string_view name) const;

  // ---- Server side ----

  // A RowDescription that must be held back: the read may still be retried elsewhere.
  bool holds(char type) const;
  void hold(std::string_view msg) { held_.assign(msg); }
  // A whole server message other than ParameterStatus bookkeeping (the relay applies that).
  void on_server_message(char type, std::string_view msg, ClientSink& sink);
  // The start of a message that streams (DataRow, CopyData, notices...).
  void on_server_stream(char type, ClientSink& sink);

  // ---- Retry log and server loss ----

  // Client bytes sent to the attached server (kept while the read may be retried).
  void note_sent(std::string_view bytes);
  bool retry_ok() const { return retry_ok_; }
  void no_retry() { retry_ok_ = false; }
  // The attached server died. Either the read runs again: `replay` gets what it was sent and
  // the result is -1; or the result is the number of ReadyForQuery the client is still owed
  // (each to follow an error).
  int lose_server(std::string& replay);

  // The client leaves: its statements stop claiming their server names.
  void forget_statements() { stmts_.clear(); }

 private:
  // One reply owed to the client.
  struct Expect {
    char kind = 0;            // P Parse, B Bind, C Close, D Describe statement, d Describe portal,
                              // E Execute, S Sync, Q Query, F FunctionCall, L local reply
    bool swallow = false;     // injected by pglane: its success reply is not the client's
    std::string server_stmt;  // Parse: server statement that does not exist if this fails
    std::string client_stmt;  // Parse: client statement that does not exist if this fails
    std::string evicted;      // injected Close: still on the server if the server skipped it
    std::string local;        // L: bytes to send when this entry reaches the head
    bool local_rfq = false;   // L: followed by ReadyForQuery with the current status
    bool unpins = false;      // Q: a DISCARD ALL, which unpins the client if it succeeds
    bool failed = false;      // Q: an ErrorResponse came for it
  };
  // A named statement as the client prepared it.
  struct ClientStatement {
    std::string query;
    std::string types;  // raw parameter-type tail of the Parse body
    std::string server_name;
    StatementClaim claim;        // keeps server_name on servers while this client has it
    routing::PreparedPlan plan;  // its session effects (applied at each Bind) and routing
  };

  ClientStatement make_statement(std::string_view query, std::string_view types,
                                 const routing::SessionEffects& fx);
  void push(char kind);
  void push_local(std::string bytes, bool rfq, char status);
  void emit_locals(ClientSink& sink);
  void ensure_statement(const ClientStatement& st, std::string& out);
  void send_parse(const ClientStatement& st, std::string_view client_name, std::string& out);
  // `unpin_when_confirmed`: DISCARD ALL unpins when the server confirms it, not now.
  void apply_effects(const routing::SessionEffects& fx, bool unpin_when_confirmed = false);
  void undo(const Expect& e);
  void answered(ClientSink& sink, std::string bytes);

  ConversationOptions opts_;
  routing::StatementMemo& memo_;
  ClientSettings settings_;
  bool server_default_scs_off_ = false;
  routing::Hint hint_ = routing::Hint::kNone;
  const char* pinned_ = nullptr;   // why this client keeps its server, if it does
  const char* new_pin_ = nullptr;  // pinned since take_new_pin() last looked

  ServerStatements* server_ = nullptr;  // the attached server's statements
  std::string pool_key_;                // scopes KnownStatements
  char status_ = 'I';                   // the attached server's last ReadyForQuery status
  std::deque<Expect> expect_;           // replies owed to the client, in order
  bool skipping_ = false;               // the server discards messages until Sync after an error
  std::string local_now_;               // local replies to send before the next server write

  absl::flat_hash_map<std::string, ClientStatement> stmts_;  // client name -> statement
  absl::flat_hash_set<std::string> owed_;  // answered by pglane alone, not parsed on a server

  bool retry_ok_ = false;  // nothing of this attachment has reached the client yet
  bool retried_ = false;   // this unit already ran again once
  std::string sent_;       // client bytes this attachment consumed, while retry_ok_
  std::string held_;       // RowDescription held back while the read may still be retried
};

}  // namespace pglane::txn
