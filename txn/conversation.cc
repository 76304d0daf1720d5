#include "txn/conversation.h"

#include <limits>
#include <utility>

#include "absl/strings/string_view.h"
#include "protocol/messages.h"

namespace pglane::txn {

namespace p = protocol;

namespace {

// Whether a server message of `type` completes the request of `kind` (docs 55.7: each extended
// request has one success reply; Query, Sync and FunctionCall end at ReadyForQuery).
bool terminal_for(char kind, char type) {
  switch (kind) {
    case 'P':
      return type == '1';
    case 'B':
      return type == '2';
    case 'C':
      return type == '3';
    case 'D':
    case 'd':
      return type == 'T' || type == 'n';
    case 'E':
      return type == 'C' || type == 'I' || type == 's';
    default:
      return type == 'Z';  // S, Q, F
  }
}

bool owes_ready(char kind) {
  return kind == 'S' || kind == 'Q' || kind == 'F';
}

// Debian's abseil has its own string_view: heterogeneous lookups need it.
absl::string_view key(std::string_view s) {
  return {s.data(), s.size()};
}

}  // namespace

Conversation::Conversation(ConversationOptions opts, routing::StatementMemo& memo)
    : opts_(opts), memo_(memo) {}

// ---- Attachment ----

void Conversation::attach(ServerStatements& server, const std::string& pool_key, bool retryable,
                          char status) {
  server_ = &server;
  pool_key_.assign(pool_key);  // reuses the buffer: attach runs once per transaction
  status_ = status;
  retry_ok_ = retryable && !retried_;
  sent_.clear();
}

void Conversation::detach() {
  server_ = nullptr;
  retried_ = false;
  retry_ok_ = false;
  sent_.clear();
}

std::string Conversation::close_unused(ServerStatements& server) const {
  const uint64_t epoch = statement_owners().epoch();
  if (server.owners_epoch == epoch) {
    return {};
  }
  server.owners_epoch = epoch;
  // Close (docs 55.7) succeeds for a name the server no longer has (a client may have run
  // DEALLOCATE pgl_... itself), where DEALLOCATE would fail the whole batch.
  std::string msgs;
  for (const auto& name : statement_owners().unused(server.lru())) {
    p::encode_close(msgs, 'S', name);
    server.forget(name);
  }
  if (!msgs.empty()) {
    p::encode_sync(msgs);
  }
  return msgs;
}

std::string Conversation::owed_parses(const ServerStatements& server, const std::string& pool_key,
                                      std::vector<std::string>& sent) {
  std::string msgs;
  sent.clear();
  for (const auto& name : owed_) {
    auto it = stmts_.find(key(name));
    if (it == stmts_.end() || server.contains(it->second.server_name) ||
        server.size() + sent.size() >= opts_.max_prepared_statements ||
        !known_statements().contains(pool_key + it->second.server_name)) {
      continue;
    }
    p::encode_parse(msgs, it->second.server_name, it->second.query, it->second.types);
    p::encode_sync(msgs);
    sent.push_back(it->second.server_name);
  }
  owed_.clear();
  return msgs;
}

void Conversation::owed_parsed(ServerStatements& server, const std::vector<std::string>& sent,
                               std::string_view replies) {
  // One reply per Parse: '1' ParseComplete or 'E'. A failure only means the statement is parsed
  // when it is bound, where the error reaches the client as usual.
  for (size_t i = 0; i < sent.size() && i < replies.size(); ++i) {
    if (replies[i] == '1') {
      server.add(sent[i], std::numeric_limits<size_t>::max());
    }
  }
}

Conversation::Prepared Conversation::answer_known_prepare(std::string_view data,
                                                          const std::string& pool_key,
                                                          std::string& reply, size_t& consumed) {
  // Each Parse is decoded, hashed and analysed once; the batch is answered only when it turns
  // out to be complete and eligible.
  std::vector<std::pair<std::string, ClientStatement>> batch;
  size_t pos = 0;
  for (;;) {
    auto h = p::decode_header(data.substr(pos), opts_.max_message);
    if (h.status == p::DecodeStatus::kNeedMore ||
        (h.status == p::DecodeStatus::kMessage && h.frame.size <= routing::kMaxInspected &&
         data.size() - pos < h.frame.size)) {
      return Prepared::kNeedMore;  // eligible so far; the rest of the batch has not arrived
    }
    if (h.status != p::DecodeStatus::kMessage || h.frame.size > routing::kMaxInspected) {
      return Prepared::kNo;
    }
    const char t = h.frame.type;
    if (t == 'S' && !batch.empty()) {
      pos += h.frame.size;
      break;
    }
    if (t != 'P') {
      return Prepared::kNo;
    }
    p::Reader r(data.substr(pos + p::kHeaderSize, h.frame.size - p::kHeaderSize));
    std::string_view name = r.cstring();
    std::string_view query = r.cstring();
    std::string_view types = r.rest();
    if (!r.ok() || name.empty()) {
      return Prepared::kNo;
    }
    routing::SessionEffects fx = memo_.effects(query);
    if (fx.pin_reason != nullptr) {
      return Prepared::kNo;
    }
    std::string server_name = server_statement_name(query, types);
    if (!known_statements().contains(pool_key + server_name)) {
      return Prepared::kNo;
    }
    ClientStatement st;
    st.query = std::string(query);
    st.types = std::string(types);
    st.server_name = std::move(server_name);
    st.plan.fx = std::move(fx);
    if (opts_.routing) {
      st.plan.analysis = memo_.analyze(query);
    }
    batch.emplace_back(std::string(name), std::move(st));
    pos += h.frame.size;
  }
  for (auto& [name, st] : batch) {
    st.claim = StatementClaim(st.server_name);  // claimed only once accepted
    stmts_[name] = std::move(st);
    owed_.insert(name);
    p::encode_parse_complete(reply);
  }
  consumed = pos;
  return Prepared::kAnswered;
}

// ---- Client side ----

Conversation::ClientStatement Conversation::make_statement(std::string_view query,
                                                           std::string_view types,
                                                           const routing::SessionEffects& fx) {
  ClientStatement st;
  st.query = std::string(query);
  st.types = std::string(types);
  st.server_name = server_statement_name(query, types);
  st.claim = StatementClaim(st.server_name);
  st.plan.fx = fx;
  if (opts_.routing) {
    st.plan.analysis = memo_.analyze(query);
  }
  return st;
}

void Conversation::push(char kind) {
  Expect e;
  e.kind = kind;
  expect_.push_back(std::move(e));
}

void Conversation::push_local(std::string bytes, bool rfq, char status) {
  if (expect_.empty()) {
    local_now_.append(bytes);
    if (rfq) {
      p::encode_ready_for_query(local_now_, status);
    }
    retry_ok_ = false;  // the client is about to see an answer
    return;
  }
  Expect e;
  e.kind = 'L';
  e.local = std::move(bytes);
  e.local_rfq = rfq;
  expect_.push_back(std::move(e));
}

void Conversation::pin(const char* reason) {
  if (pinned_ == nullptr) {
    pinned_ = reason;
    new_pin_ = reason;
  }
}

void Conversation::apply_effects(const routing::SessionEffects& fx, bool unpin_when_confirmed) {
  if (fx.pin_reason != nullptr) {
    pin(fx.pin_reason);
  }
  settings_.note(fx, opts_.reset_after_unknown_functions, scs_off());
  if (fx.discard_all || fx.deallocate_all) {
    stmts_.clear();
    server_->forget_all();
  }
  if (fx.discard_all && !unpin_when_confirmed) {
    pinned_ = nullptr;  // DISCARD ALL drops every kind of session state that pinned us
  }
}

void Conversation::ensure_statement(const ClientStatement& st, std::string& out) {
  if (!server_->has(st.server_name)) {
    send_parse(st, "", out);
  }
}

// Parses `st` on the server under its server name, evicting the least recently used statement
// with a Close when the server holds too many. `client_name` empty means pglane injected the
// Parse for a Bind/Describe, so its reply is swallowed; otherwise it answers the client's Parse.
void Conversation::send_parse(const ClientStatement& st, std::string_view client_name,
                              std::string& out) {
  if (auto victim = server_->add(st.server_name, opts_.max_prepared_statements)) {
    p::encode_close(out, 'S', *victim);
    Expect c;
    c.kind = 'C';
    c.swallow = true;
    c.evicted = *victim;
    expect_.push_back(std::move(c));
  }
  p::encode_parse(out, st.server_name, st.query, st.types);
  Expect e;
  e.kind = 'P';
  e.swallow = client_name.empty();
  e.server_stmt = st.server_name;
  e.client_stmt = std::string(client_name);
  expect_.push_back(std::move(e));
}

Conversation::ClientResult Conversation::on_client_message(char type, std::string_view whole,
                                                           std::string& out, char server_status) {
  if (skipping_) {
    // The server discards everything up to Sync after an error; so do we.
    out.append(whole);
    return ClientResult::kOk;
  }
  p::Reader r(whole.substr(p::kHeaderSize));
  switch (type) {
    case 'Q': {
      std::string_view sql = r.cstring();
      if (opts_.routing) {
        routing::Analysis a = memo_.analyze(sql);
        if (a.info->kind == routing::StatementInfo::Kind::kPglaneSetting) {
          hint_ = a.info->set_route;
          std::string reply;
          p::encode_command_complete(reply, "SET");
          push_local(std::move(reply), true, server_status);
          return ClientResult::kOk;
        }
      }
      routing::SessionEffects fx = memo_.effects(sql);
      if (fx.is_single_deallocate) {
        if (auto it = stmts_.find(fx.deallocate_name); it != stmts_.end()) {
          // A protocol-level statement (drivers deallocate them with SQL): only this client's
          // name goes away; the server keeps it for others. When no client uses it any more and
          // this server has it, the server deallocates it (the reply is the same).
          const std::string server_name = it->second.server_name;
          stmts_.erase(it);
          retry_ok_ = false;  // replaying would not find the name again
          if (server_->has(server_name) && !statement_owners().in_use(server_name)) {
            server_->forget(server_name);
            p::encode_query(out, "DEALLOCATE " + server_name);
            push('Q');
            expect_.back().evicted = server_name;  // still there if the DEALLOCATE fails
            return ClientResult::kOk;
          }
          std::string reply;
          p::encode_command_complete(reply, "DEALLOCATE");
          push_local(std::move(reply), true, server_status);
          return ClientResult::kOk;
        }
      }
      // A Query's DISCARD ALL unpins only once the server has run it: a failed one (inside a
      // transaction block, say) leaves LISTEN, temporary tables and the rest in place.
      apply_effects(fx, /*unpin_when_confirmed=*/true);
      push('Q');
      expect_.back().unpins = fx.discard_all;
      out.append(whole);
      return ClientResult::kOk;
    }
    case 'P': {
      std::string_view name = r.cstring();
      std::string_view query = r.cstring();
      std::string_view types = r.rest();
      if (!r.ok()) {
        return ClientResult::kInvalidParse;
      }
      routing::SessionEffects fx = memo_.effects(query);
      if (name.empty()) {
        if (fx.is_single_deallocate) {
          if (auto it = stmts_.find(fx.deallocate_name); it != stmts_.end()) {
            // DEALLOCATE of a protocol-level statement through the extended protocol (psycopg
            // does this): the server knows it by its pglane name. It leaves this server for every
            // client; others get it re-Parsed when they need it. The statement may not be on this
            // server (it is re-Parsed lazily): make sure it is, so the DEALLOCATE succeeds as it
            // would on a direct connection.
            ensure_statement(it->second, out);
            std::string server_name = it->second.server_name;
            stmts_.erase(it);
            retry_ok_ = false;
            server_->forget(server_name);
            p::encode_parse(out, "", "DEALLOCATE " + server_name, types);
            push('P');
            return ClientResult::kOk;
          }
        }
        apply_effects(fx);
        push('P');
        out.append(whole);
        return ClientResult::kOk;
      }
      ClientStatement st = make_statement(query, types, fx);
      if (server_->has(st.server_name)) {
        std::string reply;
        p::encode_parse_complete(reply);
        push_local(std::move(reply), false, server_status);
      } else {
        send_parse(st, name, out);
      }
      stmts_[std::string(name)] = std::move(st);
      return ClientResult::kOk;
    }
    case 'B': {
      std::string_view portal = r.cstring();
      std::string_view stmt = r.cstring();
      std::string_view tail = r.rest();
      if (!r.ok()) {
        return ClientResult::kInvalidBind;
      }
      auto it = stmt.empty() ? stmts_.end() : stmts_.find(key(stmt));
      if (it == stmts_.end()) {
        push('B');
        out.append(whole);  // unnamed, or unknown: the server reports 26000 itself
        return ClientResult::kOk;
      }
      ensure_statement(it->second, out);
      p::encode_bind(out, portal, it->second.server_name, tail);
      push('B');
      // Effects apply when the statement runs; a prepared DEALLOCATE ALL or DISCARD ALL also
      // clears stmts_, so `it` is not used after this.
      routing::SessionEffects fx = it->second.plan.fx;
      apply_effects(fx);
      return ClientResult::kOk;
    }
    case 'D': {
      char kind = static_cast<char>(r.u8());
      std::string_view name = r.cstring();
      if (kind == 'S' && !name.empty()) {
        if (auto it = stmts_.find(key(name)); it != stmts_.end()) {
          ensure_statement(it->second, out);
          p::encode_describe(out, 'S', it->second.server_name);
          push('D');
          return ClientResult::kOk;
        }
      }
      push(kind == 'S' ? 'D' : 'd');
      out.append(whole);
      return ClientResult::kOk;
    }
    case 'C': {
      char kind = static_cast<char>(r.u8());
      std::string_view name = r.cstring();
      if (kind == 'S' && !name.empty()) {
        // Closing a statement only forgets the client's name for it (closing a statement that
        // does not exist is not an error either, docs 55.7 Close).
        if (auto it = stmts_.find(key(name)); it != stmts_.end()) {
          stmts_.erase(it);
        }
        retry_ok_ = false;
        std::string reply;
        p::encode_close_complete(reply);
        push_local(std::move(reply), false, server_status);
        return ClientResult::kOk;
      }
      push('C');
      out.append(whole);
      return ClientResult::kOk;
    }
    default:
      out.append(whole);
      return ClientResult::kOk;
  }
}

void Conversation::on_client_forwarded(char type) {
  if (type == 'S') {
    // The Sync that ends skipping is answered too: the server discards messages up to it and
    // then sends ReadyForQuery.
    push('S');
    skipping_ = false;
    return;
  }
  if (!skipping_) {
    switch (type) {
      case 'Q':
      case 'P':
      case 'B':
      case 'C':
      case 'E':
      case 'F':
      case 'D':
        push(type);
        break;
      default:
        break;
    }
  }
}

const routing::PreparedPlan* Conversation::plan(std::string_view name) const {
  auto it = stmts_.find(key(name));
  if (it == stmts_.end() || !it->second.plan.analysis.info) {
    return nullptr;
  }
  return &it->second.plan;
}

// ---- Server side ----

bool Conversation::holds(char type) const {
  // PostgreSQL sends a Query's RowDescription before running it; a replayed query on another
  // node sends its own, so the first one waits for a row (or whatever follows).
  return type == 'T' && retry_ok_ && held_.empty() && !expect_.empty() &&
         expect_.front().kind == 'Q';
}

void Conversation::answered(ClientSink& sink, std::string bytes) {
  retry_ok_ = false;  // the client has seen part of an answer: nothing can be re-run now
  sink.own(std::move(bytes));
}

void Conversation::emit_locals(ClientSink& sink) {
  while (!expect_.empty() && expect_.front().kind == 'L') {
    std::string bytes = std::move(expect_.front().local);
    if (expect_.front().local_rfq) {
      p::encode_ready_for_query(bytes, status_);
    }
    expect_.pop_front();
    answered(sink, std::move(bytes));
  }
}

void Conversation::on_server_stream(char type, ClientSink& sink) {
  if (type != 'N') {
    if (!held_.empty()) {
      answered(sink, std::exchange(held_, std::string()));
    }
    retry_ok_ = false;
  }
}

// A failed or skipped Parse leaves no statement behind; a skipped eviction leaves it in place.
void Conversation::undo(const Expect& e) {
  if (!e.server_stmt.empty()) {
    server_->forget(e.server_stmt);
    if (!e.client_stmt.empty()) {
      if (auto it = stmts_.find(e.client_stmt);
          it != stmts_.end() && it->second.server_name == e.server_stmt) {
        stmts_.erase(it);
      }
    }
  }
  if (!e.evicted.empty()) {
    server_->add(e.evicted, std::numeric_limits<size_t>::max());
  }
}

void Conversation::on_server_message(char type, std::string_view msg, ClientSink& sink) {
  on_server_stream(type, sink);
  if (type == 'Z') {
    std::string_view body = msg.substr(p::kHeaderSize);
    status_ = body.empty() ? 'I' : body[0];
    if (!expect_.empty()) {
      if (expect_.front().unpins && !expect_.front().failed) {
        pinned_ = nullptr;  // DISCARD ALL ran: every kind of session state that pinned us is gone
      }
      expect_.pop_front();
    }
    sink.pass(msg);
    emit_locals(sink);
    return;
  }
  if (type == 'E' && expect_.empty()) {
    // Unsolicited: the server's notice that it is terminating. The loss is reported to the
    // client when it next needs the server.
    return;
  }
  if (!expect_.empty()) {
    Expect& head = expect_.front();
    if (type == 'E' && head.kind == 'Q') {
      head.failed = true;
    }
    if (type == 'E' && head.kind == 'Q' && !head.evicted.empty()) {
      undo(head);  // a rewritten DEALLOCATE failed (aborted transaction): still there
      head.evicted.clear();
    }
    if (type == 'E' && !owes_ready(head.kind)) {
      // Extended-protocol error: the server now skips everything up to Sync. What the failed
      // and skipped requests would have done is undone newest first, so that an eviction and a
      // later Parse of the same name end as the server has them.
      size_t n = 1;
      while (n < expect_.size() && expect_[n].kind != 'S') {
        ++n;
      }
      for (size_t i = n; i-- > 0;) {
        undo(expect_[i]);
      }
      expect_.erase(expect_.begin(), expect_.begin() + static_cast<std::ptrdiff_t>(n));
      if (expect_.empty()) {
        skipping_ = true;
      }
    } else if (terminal_for(head.kind, type)) {
      if (type == '1' && !head.server_stmt.empty()) {
        known_statements().add(pool_key_ + head.server_stmt);
      }
      // Replies to requests pglane injected (Parse/Close of managed statements) are swallowed;
      // errors are not, since they explain the failure of the client's batch.
      const bool reply_is_clients = !head.swallow;
      expect_.pop_front();
      if (reply_is_clients) {
        sink.pass(msg);
      }
      emit_locals(sink);
      return;
    }
  }
  sink.pass(msg);
}

// ---- Retry log and server loss ----

void Conversation::note_sent(std::string_view bytes) {
  if (!retry_ok_) {
    return;
  }
  sent_.append(bytes);
  if (sent_.size() > kMaxRetryBytes) {
    retry_ok_ = false;
    sent_.clear();
  }
}

int Conversation::lose_server(std::string& replay) {
  server_ = nullptr;
  pinned_ = nullptr;  // whatever pinned us died with the server
  held_.clear();      // a held RowDescription of the lost query is not the client's any more
  skipping_ = false;
  if (retry_ok_ && !retried_) {
    // A read whose replica died before the client saw any of its answer: it runs again on
    // another node, once, starting with what the lost server was sent.
    retried_ = true;
    retry_ok_ = false;
    expect_.clear();
    replay = std::exchange(sent_, std::string());
    return -1;
  }
  int owed = 0;
  for (const auto& e : expect_) {
    // Local replies that end with ReadyForQuery (SET pglane.route, DEALLOCATE) are owed too.
    owed += owes_ready(e.kind) || (e.kind == 'L' && e.local_rfq) ? 1 : 0;
  }
  expect_.clear();
  retry_ok_ = false;
  sent_.clear();
  return owed;
}

}  // namespace pglane::txn
