// Fuzzes the transaction layer of transaction pooling (txn/conversation.h): one or two clients'
// Conversations on one or two server connections, against a small model of PostgreSQL that
// answers what pglane actually wrote to it. The harness plays the relay (proxy/relay.cc,
// proxy/txn_pooling.cc, proxy/lease.cc): it hands the Conversation whole client and server
// messages, attaches and detaches servers where the relay would, and survives server losses as
// lose_server() asks.
//
// Input: byte 0 picks the configuration (routing, max_prepared_statements 1..4, reads retryable,
// one or two clients, one or two servers). Then each operation is one byte (the high bit picks
// the client) and its arguments: a client message (Q P B D C E S H F) with statement names,
// portals and texts from small tables, so that clients collide on both; the server working
// through what it was sent (rows and some failures chosen by the input, the rest following from
// the text: a syntax error fails at Parse, DISCARD ALL in a transaction block fails...); replies
// delivered to the client in batches; a notice; the server dying, with or without a FATAL error
// first; the client leaving its server; a batch of Parses of known statements answered with no
// server; the client reconnecting.
//
// Checked after every step (each check has a name, printed when it fails):
//   replies        what the client receives is a valid reply stream for what it sent (docs
//                  55.2.3): in order, one reply per request, never a reply to a request pglane
//                  injected, never an unsolicited error, never more ReadyForQuery than Query +
//                  Sync + FunctionCall; skipping to Sync after an extended-protocol error
//   names          every statement name pglane sends (Parse, Bind, Describe, Close, DEALLOCATE)
//                  is "", the client's own name of that message, or the pgl_ name of a text this
//                  same client parsed: no statement crosses clients
//   parse-existing pglane never Parses a server name the server already has (42P05)
//   missing        a statement the client prepared (it got ParseComplete) and has not closed is
//                  never reported missing (26000)
//   belief         when the server has answered everything, ServerStatements lists exactly the
//                  statements the server has
//   settled-owed   the conversation is never settled (its server may be handed on) while the
//                  server still owes the client a reply
//   owed-forever   when the server has answered everything, nothing is owed any more, and after
//                  a Sync the conversation is settled
//   loss           after a server loss the client is left waiting for nothing
//   retry          once anything but a notice reached the client, retry_ok() is false, and a
//                  read is replayed only if the client saw none of its answer
// Set TXN_FUZZ_SKIP=name,name to stop enforcing checks for bugs already reported (to look for
// others), and TXN_FUZZ_TRACE=1 to print the operations of a failing input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.h"
#include "protocol/messages.h"
#include "routing/analyzer.h"
#include "routing/unit.h"
#include "tests/fuzz/fuzz_check.h"
#include "txn/conversation.h"
#include "txn/statements.h"

namespace {

namespace p = pglane::protocol;
namespace txn = pglane::txn;
using namespace std::string_literals;

// ---- Checks ----

std::set<std::string, std::less<>>& skipped_checks() {
  static std::set<std::string, std::less<>> skipped;
  return skipped;
}
bool g_trace = false;
std::vector<std::string> g_log;

// The operations of the input, kept only with TXN_FUZZ_TRACE=1 (building the lines is not free).
#define TRACE(line)          \
  do {                       \
    if (g_trace) {           \
      g_log.push_back(line); \
    }                        \
  } while (0)

void dump_trace() {
  for (const auto& line : g_log) {
    std::fprintf(stderr, "  %s\n", line.c_str());
  }
}

#define TXN_CHECK(check, cond, ...)                     \
  do {                                                  \
    if (!(cond) && !skipped_checks().contains(check)) { \
      dump_trace();                                     \
      std::fprintf(stderr, "txn_fuzz [%s]: ", check);   \
      std::fprintf(stderr, __VA_ARGS__);                \
      std::fprintf(stderr, "\n");                       \
      FUZZ_CHECK(cond);                                 \
    }                                                   \
  } while (0)

// ---- Input ----

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// ---- Wire helpers ----

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string message(char type, std::string_view body = {}) {
  return std::string(1, type) + be32(static_cast<uint32_t>(body.size() + 4)) + std::string(body);
}

std::string cstr(std::string_view s) {
  return std::string(s) + '\0';
}

std::vector<std::string_view> split_messages(std::string_view bytes) {
  std::vector<std::string_view> out;
  while (!bytes.empty()) {
    auto d = p::decode_frame(bytes);
    FUZZ_CHECK(d.status == p::DecodeStatus::kMessage);  // everyone here writes whole messages
    out.push_back(bytes.substr(0, d.frame.size));
    bytes.remove_prefix(d.frame.size);
  }
  return out;
}

std::string types_of(std::string_view bytes) {
  std::string t;
  for (std::string_view m : split_messages(bytes)) {
    t += m[0];
  }
  return t;
}

bool is_pgl(std::string_view name) {
  return name.rfind("pgl_", 0) == 0;
}

// The statement a client message names: Parse, Bind, and Describe or Close of a statement.
std::string_view statement_named(std::string_view whole) {
  p::Reader r(whole.substr(p::kHeaderSize));
  switch (whole[0]) {
    case 'P':
      return r.cstring();
    case 'B':
      r.cstring();
      return r.cstring();
    case 'D':
    case 'C':
      return r.u8() == 'S' ? r.cstring() : std::string_view();
    default:
      return {};
  }
}

std::string_view sqlstate_of(std::string_view msg) {
  auto e = p::parse_error(msg.substr(p::kHeaderSize));
  return e ? e->sqlstate : std::string_view();
}

// ---- What clients say ----

// Texts a client may prepare or run. The model server knows what each does.
constexpr const char* kTexts[] = {
    "SELECT 1",
    "SELECT 2",
    "INSERT INTO t VALUES (1)",
    "SELEC 1",  // syntax error
    "SELECT 1/0",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "DISCARD ALL",
    "DEALLOCATE a",
    "DEALLOCATE b",
    "DEALLOCATE ALL",
    "LISTEN x",  // pins
    "SET pglane.route = reader",
    "",
    "SELECT 1; SELECT 2",  // two statements: not preparable
    "CREATE TEMP TABLE t(a int)",
    "SET app.x = 1",
};
constexpr size_t kTextCount = sizeof(kTexts) / sizeof(kTexts[0]);
constexpr const char* kNames[] = {"", "a", "b", "c"};
constexpr const char* kPortals[] = {"", "p"};
// Parse parameter types: none, or one int4.
const std::string kTypes[] = {"\0\0"s, "\0\1\0\0\0\x17"s};
// Bind after the statement name: no formats, no parameters, no result formats.
const std::string kBindTail = "\0\0\0\0\0\0"s;

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') {
    s.remove_prefix(1);
  }
  while (!s.empty() && s.back() == ' ') {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> split_statements(std::string_view sql) {
  std::vector<std::string_view> out;
  while (!sql.empty()) {
    size_t semi = sql.find(';');
    std::string_view one = trim(sql.substr(0, semi));
    if (!one.empty()) {
      out.push_back(one);
    }
    sql = semi == std::string_view::npos ? std::string_view() : sql.substr(semi + 1);
  }
  return out;
}

enum class Sql {
  kRows,
  kWrite,
  kSyntax,
  kDivZero,
  kBegin,
  kCommit,
  kRollback,
  kDiscardAll,
  kDeallocate,
  kDeallocateAll,
  kOther,
};

struct Statement {
  Sql kind = Sql::kSyntax;
  std::string tag;   // CommandComplete tag
  std::string name;  // kDeallocate
};

// One statement (no ';').
Statement classify(std::string_view s) {
  auto starts = [&](std::string_view prefix) { return s.rfind(prefix, 0) == 0; };
  if (starts("SELECT 1/0")) {
    return {Sql::kDivZero, "", ""};
  }
  if (starts("SELECT ")) {
    return {Sql::kRows, "SELECT", ""};
  }
  if (starts("INSERT ")) {
    return {Sql::kWrite, "INSERT 0 1", ""};
  }
  if (s == "BEGIN") {
    return {Sql::kBegin, "BEGIN", ""};
  }
  if (s == "COMMIT") {
    return {Sql::kCommit, "COMMIT", ""};
  }
  if (s == "ROLLBACK") {
    return {Sql::kRollback, "ROLLBACK", ""};
  }
  if (s == "DISCARD ALL") {
    return {Sql::kDiscardAll, "DISCARD ALL", ""};
  }
  if (s == "DEALLOCATE ALL") {
    return {Sql::kDeallocateAll, "DEALLOCATE ALL", ""};
  }
  if (starts("DEALLOCATE ")) {
    return {Sql::kDeallocate, "DEALLOCATE", std::string(trim(s.substr(11)))};
  }
  if (starts("LISTEN ")) {
    return {Sql::kOther, "LISTEN", ""};
  }
  if (starts("CREATE TEMP ")) {
    return {Sql::kOther, "CREATE TABLE", ""};
  }
  if (starts("SET ")) {
    return {Sql::kOther, "SET", ""};
  }
  return {};
}

// Whether Parse accepts the text: at most one statement, and no syntax error.
bool preparable(std::string_view sql) {
  auto parts = split_statements(sql);
  return parts.empty() || (parts.size() == 1 && classify(parts[0]).kind != Sql::kSyntax);
}

bool transaction_control(std::string_view sql) {
  auto parts = split_statements(sql);
  if (parts.size() != 1) {
    return false;
  }
  Sql k = classify(parts[0]).kind;
  return k == Sql::kCommit || k == Sql::kRollback;
}

bool returns_rows(std::string_view sql) {
  auto parts = split_statements(sql);
  return parts.size() == 1 && classify(parts[0]).kind == Sql::kRows;
}

// ---- The model server: PostgreSQL's extended and simple query protocol, small ----

class Model {
 public:
  std::map<std::string, std::pair<std::string, int>> stmts;  // name -> text, parameter count
  std::map<std::string, std::string> portals;                // name -> text
  char status = 'I';                                         // transaction status
  bool skipping = false;        // after an extended-protocol error, until Sync
  std::string in;               // what pglane wrote, not processed yet
  std::deque<std::string> out;  // replies not delivered yet

  // Processes the first message of `in`; false when there is none.
  bool step(Input& fz) {
    if (in.empty()) {
      return false;
    }
    auto d = p::decode_frame(in);
    FUZZ_CHECK(d.status == p::DecodeStatus::kMessage);
    const char type = d.frame.type;
    const std::string body(d.frame.body);
    in.erase(0, d.frame.size);
    if (type == 'S') {
      skipping = false;
      if (status == 'I') {
        portals.clear();  // the implicit transaction ends
      }
      send('Z', std::string(1, status));
      return true;
    }
    if (skipping || type == 'H') {
      return true;  // docs 55.2.3: discarded until Sync
    }
    p::Reader r(body);
    switch (type) {
      case 'Q':
        query(r.cstring(), fz);
        break;
      case 'P': {
        std::string name(r.cstring());
        std::string text(r.cstring());
        std::string_view types = r.rest();
        parse(name, text, types);
        break;
      }
      case 'B': {
        std::string portal(r.cstring());
        std::string name(r.cstring());
        bind(portal, name, fz);
        break;
      }
      case 'D': {
        char kind = static_cast<char>(r.u8());
        describe(kind, std::string(r.cstring()));
        break;
      }
      case 'E':
        execute(std::string(r.cstring()), fz);
        break;
      case 'C': {
        char kind = static_cast<char>(r.u8());
        std::string name(r.cstring());
        if (kind == 'S') {
          stmts.erase(name);
        } else {
          portals.erase(name);
        }
        send('3');
        break;
      }
      case 'F':
        if (status == 'E') {
          error("25P02");
        } else {
          send('V', be32(0xFFFFFFFF));
        }
        send('Z', std::string(1, status));
        break;
      default:
        FUZZ_CHECK(!"pglane wrote a message the model does not know");
    }
    return true;
  }

  // Whether the server will still send a reply (not a notice) for what it has been sent.
  bool owes() const {
    for (const auto& m : out) {
      if (m[0] != 'N') {
        return true;
      }
    }
    bool skip = skipping;
    std::string_view rest = in;
    while (!rest.empty()) {
      auto d = p::decode_frame(rest);
      FUZZ_CHECK(d.status == p::DecodeStatus::kMessage);
      const char t = d.frame.type;
      if (t == 'S' || (!skip && t != 'H')) {
        return true;
      }
      rest.remove_prefix(d.frame.size);
    }
    return false;
  }

  bool answered_everything() const { return in.empty() && !owes(); }

  void send(char type, std::string_view body = {}) { out.push_back(message(type, body)); }

  void notice() {
    std::string n;
    p::ErrorFields f;
    f.severity = "WARNING";
    f.sqlstate = "01000";
    f.message = "notice";
    p::encode_notice(n, f);
    out.push_back(std::move(n));
  }

 private:
  void error(std::string_view sqlstate) {
    std::string e;
    p::ErrorFields f;
    f.sqlstate = sqlstate;
    f.message = "model error";
    p::encode_error(e, f);
    out.push_back(std::move(e));
    if (status == 'T') {
      status = 'E';
    }
  }

  // An error in an extended-protocol message: the rest is discarded up to Sync.
  void fail(std::string_view sqlstate) {
    error(sqlstate);
    skipping = true;
  }

  void query(std::string_view sql, Input& fz) {
    auto parts = split_statements(sql);
    if (parts.empty()) {
      send('I');
    }
    for (std::string_view one : parts) {
      if (!run(one, true, parts.size() > 1, nullptr, fz)) {
        break;
      }
    }
    portals.erase("");
    if (status == 'I') {
      portals.clear();
    }
    send('Z', std::string(1, status));
  }

  void parse(const std::string& name, const std::string& text, std::string_view types) {
    TXN_CHECK("parse-existing", !(is_pgl(name) && stmts.contains(name)),
              "pglane parsed %s, which the server already has (the client gets 42P05)",
              name.c_str());
    TXN_CHECK("names", name.empty() || is_pgl(name),
              "the client's own statement name \"%s\" was parsed on the server", name.c_str());
    if (!preparable(text)) {
      return fail("42601");
    }
    if (status == 'E' && !transaction_control(text)) {
      return fail("25P02");
    }
    if (!name.empty() && stmts.contains(name)) {
      return fail("42P05");
    }
    int nparams = 0;
    if (types.size() >= 2) {
      nparams = (static_cast<uint8_t>(types[0]) << 8) | static_cast<uint8_t>(types[1]);
    }
    stmts[name] = {text, nparams};
    send('1');
  }

  void bind(const std::string& portal, const std::string& name, Input& fz) {
    auto it = stmts.find(name);
    if (it == stmts.end()) {
      return fail("26000");
    }
    if (status == 'E' && !transaction_control(it->second.first)) {
      return fail("25P02");
    }
    if (it->second.second != 0) {
      return fail("08P01");  // bind message supplies 0 parameters
    }
    if (fz.u8() % 16 == 15) {
      return fail("22P02");
    }
    portals[portal] = it->second.first;
    send('2');
  }

  void describe(char kind, const std::string& name) {
    std::string text;
    if (kind == 'S') {
      auto it = stmts.find(name);
      if (it == stmts.end()) {
        return fail("26000");
      }
      text = it->second.first;
      send('t', it->second.second == 0 ? "\0\0"s : "\0\1\0\0\0\x17"s);
    } else {
      auto it = portals.find(name);
      if (it == portals.end()) {
        return fail("34000");
      }
      text = it->second;
    }
    if (returns_rows(text)) {
      send('T', "\0\0"s);
    } else {
      send('n');
    }
  }

  void execute(const std::string& portal, Input& fz) {
    auto it = portals.find(portal);
    if (it == portals.end()) {
      return fail("34000");
    }
    const std::string text = it->second;
    auto parts = split_statements(text);
    if (parts.empty()) {
      send('I');
      return;
    }
    if (!run(parts[0], false, false, &portal, fz)) {
      skipping = true;
    }
  }

  // Runs one statement; false after an error (sent).
  bool run(std::string_view sql, bool simple, bool multi, const std::string* portal, Input& fz) {
    Statement s = classify(sql);
    if (status == 'E' && s.kind != Sql::kCommit && s.kind != Sql::kRollback) {
      error("25P02");
      return false;
    }
    switch (s.kind) {
      case Sql::kRows:
      case Sql::kWrite: {
        const uint8_t b = fz.u8();
        if (b % 8 == 7) {
          error("40001");
          return false;
        }
        if (simple && s.kind == Sql::kRows) {
          send('T', "\0\0"s);
        }
        const int rows = s.kind == Sql::kRows ? b % 3 : 0;
        for (int i = 0; i < rows; ++i) {
          send('D', "\0\0"s);
        }
        send('C', cstr(s.kind == Sql::kRows ? "SELECT " + std::to_string(rows) : s.tag));
        return true;
      }
      case Sql::kSyntax:
        error("42601");
        return false;
      case Sql::kDivZero:
        error("22012");
        return false;
      case Sql::kBegin:
        if (status != 'I') {
          notice();
        }
        status = 'T';
        break;
      case Sql::kCommit:
        if (status == 'I') {
          notice();
        }
        if (status == 'E') {
          s.tag = "ROLLBACK";
        }
        status = 'I';
        break;
      case Sql::kRollback:
        if (status == 'I') {
          notice();
        }
        status = 'I';
        break;
      case Sql::kDiscardAll:
        if (status != 'I' || multi) {
          error("25001");  // DISCARD ALL cannot run inside a transaction block
          return false;
        }
        drop_named_statements();
        for (auto it = portals.begin(); it != portals.end();) {
          it = portal != nullptr && it->first == *portal ? std::next(it) : portals.erase(it);
        }
        break;
      case Sql::kDeallocate: {
        auto it = s.name.empty() ? stmts.end() : stmts.find(s.name);
        if (it == stmts.end()) {
          error("26000");
          return false;
        }
        stmts.erase(it);
        break;
      }
      case Sql::kDeallocateAll:
        drop_named_statements();
        break;
      case Sql::kOther:
        break;
    }
    send('C', cstr(s.tag));
    return true;
  }

  void drop_named_statements() {
    for (auto it = stmts.begin(); it != stmts.end();) {
      it = it->first.empty() ? std::next(it) : stmts.erase(it);
    }
  }
};

// ---- A client, as the client itself sees the conversation ----

// What a client is owed, judged as a direct connection to PostgreSQL would answer it.
class Tracker {
 public:
  struct Request {
    char kind = 0;       // P B C D(statement) d(portal) E S Q F
    std::string name;    // P, B, C, D: statement (C of a portal: ""); E: portal
    std::string text;    // P, Q: the SQL
    std::string portal;  // B
  };

  void sent(Request r) {
    ++sent(r.kind);
    if (r.kind == 'H') {
      return;  // Flush has no reply of its own
    }
    if (r.kind == 'P' && !r.name.empty()) {
      // PostgreSQL refuses a name in use (42P05); pglane replaces the statement. Only a client
      // that misbehaves sees the difference: its statement is not checked any more.
      prepared_.erase(r.name);
    }
    if (skip_) {
      if (r.kind != 'S') {
        return;  // discarded by the server
      }
      skip_ = false;
    }
    queue_.push_back(std::move(r));
  }

  void received(std::string_view m) {
    const char t = m[0];
    ++got(t);
    TXN_CHECK("replies", got('Z') <= sent('Q') + sent('S') + sent('F'),
              "more ReadyForQuery (%d) than Query + Sync + FunctionCall", got('Z'));
    TXN_CHECK("replies", got('1') <= sent('P'), "more ParseComplete than Parse");
    if (t == 'N' || t == 'S' || t == 'A') {
      return;  // asynchronous (docs 55.2.7)
    }
    TXN_CHECK("replies", !queue_.empty(), "'%c' reached a client that is owed nothing", t);
    if (queue_.empty()) {
      return;  // (TXN_FUZZ_SKIP=replies)
    }
    Request& head = queue_.front();
    const char k = head.kind;
    auto expect = [&](bool ok) {
      TXN_CHECK("replies", ok, "'%c' reached the client while it waits for the reply to '%c' (%s)",
                t, k, describe().c_str());
    };
    switch (t) {
      case 'E': {
        check_missing(head, sqlstate_of(m));
        if (k == 'Q' || k == 'S' || k == 'F') {
          return;  // ReadyForQuery follows
        }
        while (!queue_.empty() && queue_.front().kind != 'S') {
          queue_.pop_front();
        }
        skip_ = queue_.empty();
        return;
      }
      case 'Z':
        expect(k == 'Q' || k == 'S' || k == 'F');
        break;
      case '1':
        expect(k == 'P');
        if (!head.name.empty()) {
          prepared_.insert(head.name);
        }
        texts_[head.name] = head.text;
        break;
      case '2':
        expect(k == 'B');
        if (auto it = texts_.find(head.name); it != texts_.end()) {
          portal_texts_[head.portal] = {it->second, !head.name.empty()};
        }
        break;
      case '3':
        expect(k == 'C');
        prepared_.erase(head.name);
        break;
      case 't':
        expect(k == 'D');
        return;
      case 'T':
        expect(k == 'D' || k == 'd' || k == 'Q');
        if (k == 'Q') {
          return;
        }
        break;
      case 'n':
        expect(k == 'D' || k == 'd');
        break;
      case 'D':
        expect(k == 'Q' || k == 'E');
        return;
      case 'C':
        expect(k == 'Q' || k == 'E');
        completed(k == 'Q' ? head.text : portal_texts_[head.name].first);
        if (k == 'Q') {
          return;
        }
        break;
      case 'I':
        expect(k == 'Q' || k == 'E');
        if (k == 'Q') {
          return;
        }
        break;
      case 's':
        expect(k == 'E');
        break;
      case 'V':
        expect(k == 'F');
        return;
      default:
        TXN_CHECK("replies", false, "unexpected message '%c' reached the client", t);
    }
    queue_.pop_front();
  }

  // The relay answered the client's pending requests, up to the Query/Sync/FunctionCall it just
  // sent, with one error and ReadyForQuery (a server lost inside a transaction).
  void relay_answered_all() {
    ++got('E');
    ++got('Z');
    queue_.clear();
    skip_ = false;
  }

  // The server was lost; the relay answered with `owed` errors, each with ReadyForQuery. They
  // end the requests up to the last Query, Sync or FunctionCall outstanding.
  void lost(int owed) {
    int ends = 0;
    size_t last = 0;
    for (size_t i = 0; i < queue_.size(); ++i) {
      const char k = queue_[i].kind;
      if (k == 'Q' || k == 'S' || k == 'F') {
        ++ends;
        last = i + 1;
      }
    }
    TXN_CHECK("loss", owed == ends,
              "lose_server() says %d ReadyForQuery are owed; the client is owed %d (%s)", owed,
              ends, describe().c_str());
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(last));
    got('E') += owed;
    got('Z') += owed;
  }

  bool idle() const { return queue_.empty(); }
  bool skipping() const { return skip_; }

  std::string describe() const {
    std::string s = "owed replies to [";
    for (const auto& r : queue_) {
      s += r.kind;
    }
    return s + "]";
  }

 private:
  // 26000 for a statement the client prepared and still has: pglane lost it.
  void check_missing(const Request& head, std::string_view sqlstate) {
    if (sqlstate != "26000") {
      return;
    }
    std::string name;
    if (head.kind == 'B' || head.kind == 'D') {
      name = head.name;
    } else {
      // (DEALLOCATE as a named prepared statement is passed on as written: pglane only knows
      // the client's names in a simple Query or an unnamed Parse.)
      std::string_view text;
      if (head.kind == 'Q') {
        text = head.text;
      } else if (head.kind == 'E' && !portal_texts_[head.name].second) {
        text = portal_texts_[head.name].first;
      }
      auto parts = split_statements(text);
      if (parts.size() == 1 && classify(parts[0]).kind == Sql::kDeallocate) {
        name = classify(parts[0]).name;
      }
    }
    TXN_CHECK("missing", name.empty() || !prepared_.contains(name),
              "the client's prepared statement \"%s\" was reported missing (26000) at '%c'",
              name.c_str(), head.kind);
  }

  // A statement the client ran completed: what it did to the client's statements.
  void completed(std::string_view text) {
    auto parts = split_statements(text);
    for (std::string_view one : parts) {
      Statement s = classify(one);
      if (s.kind == Sql::kDeallocate) {
        prepared_.erase(s.name);
      } else if (s.kind == Sql::kDeallocateAll || s.kind == Sql::kDiscardAll) {
        prepared_.clear();
      }
    }
  }

  int& sent(char t) { return sent_[static_cast<uint8_t>(t)]; }
  int& got(char t) { return received_[static_cast<uint8_t>(t)]; }

  std::deque<Request> queue_;
  bool skip_ = false;  // the server discards this client's messages until its Sync
  int sent_[256] = {};
  int received_[256] = {};
  std::set<std::string> prepared_;            // client names it got ParseComplete for
  std::map<std::string, std::string> texts_;  // client statement name -> text
  std::map<std::string, std::pair<std::string, bool>> portal_texts_;  // portal -> text, named
};

// ---- The world: clients, servers and the relay between them ----

struct Config {
  bool routing = false;
  size_t max_prepared = 1;
  bool retryable = false;
  int clients = 1;
  int servers = 1;
};

class World;

class Sink : public txn::ClientSink {
 public:
  Sink(World& w, int client) : world_(w), client_(client) {}
  void pass(std::string_view server_bytes) override;
  void own(std::string bytes) override;

 private:
  World& world_;
  int client_;
};

struct Client {
  std::unique_ptr<pglane::routing::StatementMemo> memo;
  std::unique_ptr<txn::Conversation> conv;
  Tracker tracker;
  int server = -1;                // attached server connection, or -1
  bool drop_until_sync = false;   // the relay after losing a server inside a transaction
  std::set<std::string> derived;  // pgl_ names of texts this client parsed
  bool answered_since_attach = false;
  char last_sent = 0;
};

struct Server {
  Model model;
  std::unique_ptr<txn::ServerStatements> stmts = std::make_unique<txn::ServerStatements>();
  char relay_status = 'I';  // the last ReadyForQuery the relay saw
  int client = -1;
};

class World {
 public:
  World(Config cfg, Input& fz, std::string pool_key)
      : cfg_(cfg), fz_(fz), pool_key_(std::move(pool_key)) {
    for (int i = 0; i < cfg_.clients; ++i) {
      connect(i);
    }
  }

  void receive(int ci, std::string_view bytes) {
    Client& c = clients_[ci];
    for (std::string_view m : split_messages(bytes)) {
      c.tracker.received(m);
      if (m[0] != 'N') {
        c.answered_since_attach = true;
      }
    }
  }

  void run() {
    int ops = 0;
    while (!fz_.done() && ops++ < 1000) {
      const uint8_t b = fz_.u8();
      const int ci = cfg_.clients > 1 ? b >> 7 : 0;
      op(ci, b & 0x7F);
      check();
    }
    // Let everything be answered, then check once more.
    for (int ci = 0; ci < cfg_.clients; ++ci) {
      if (clients_[ci].server >= 0) {
        drain(ci);
        check();
      }
    }
  }

 private:
  static constexpr int kOps = 17;

  void op(int ci, int code) {
    Client& c = clients_[ci];
    switch (code % kOps) {
      case 0: {
        const std::string text = kTexts[fz_.u8() % kTextCount];
        std::string m;
        p::encode_query(m, text);
        send(ci, {'Q', "", text, ""}, m);
        break;
      }
      case 1: {
        const uint8_t a = fz_.u8();
        const std::string name = kNames[a & 3];
        const std::string& types = kTypes[(a >> 2) & 1];
        const std::string text = kTexts[fz_.u8() % kTextCount];
        std::string m;
        p::encode_parse(m, name, text, types);
        send(ci, {'P', name, text, ""}, m, types);
        break;
      }
      case 2: {
        const uint8_t a = fz_.u8();
        const std::string name = kNames[a & 3];
        const std::string portal = kPortals[(a >> 2) & 1];
        std::string m;
        p::encode_bind(m, portal, name, kBindTail);
        send(ci, {'B', name, "", portal}, m);
        break;
      }
      case 3:
      case 4: {
        const uint8_t a = fz_.u8();
        const bool statement = (a & 4) == 0;
        const std::string name = statement ? kNames[a & 3] : kPortals[a & 1];
        std::string m;
        if (code % kOps == 3) {
          p::encode_describe(m, statement ? 'S' : 'P', name);
          send(ci, {statement ? 'D' : 'd', name, "", ""}, m);
        } else {
          p::encode_close(m, statement ? 'S' : 'P', name);
          send(ci, {'C', statement ? name : "", "", ""}, m);
        }
        break;
      }
      case 5: {
        const std::string portal = kPortals[fz_.u8() & 1];
        send(ci, {'E', portal, "", ""}, message('E', cstr(portal) + be32(0)));
        break;
      }
      case 6:
        send(ci, {'S', "", "", ""}, message('S'));
        break;
      case 7:
        send(ci, {'H', "", "", ""}, message('H'));
        break;
      case 8:
        send(ci, {'F', "", "", ""}, message('F', be32(1234) + "\0\0\0\0\0\0"s));
        break;
      case 9:  // the server works through some of what it was sent
        if (c.server >= 0) {
          const int n = 1 + fz_.u8() % 4;
          for (int i = 0; i < n && servers_[c.server].model.step(fz_); ++i) {
          }
          TRACE("server works");
        }
        break;
      case 10:  // a batch of replies reaches the relay
        if (c.server >= 0) {
          deliver(ci, 1 + fz_.u8() % 4);
        }
        break;
      case 11:
        if (c.server >= 0) {
          drain(ci);
        }
        break;
      case 12:
        if (c.server >= 0) {
          servers_[c.server].model.notice();
        }
        break;
      case 13:
        if (c.server >= 0) {
          lose(ci, fz_.u8() & 1);
        }
        break;
      case 14:  // between transactions the client leaves its server (relay: detachable)
        if (c.server >= 0 && c.conv->pinned() == nullptr && c.conv->settled() &&
            servers_[c.server].relay_status == 'I') {
          detach(ci);
        }
        break;
      case 15:
        if (c.server < 0 && !c.drop_until_sync) {
          known_prepare(ci);
        }
        break;
      case 16:  // the client disconnects and a new one takes its place
        if (c.server < 0 && !c.drop_until_sync && c.tracker.idle()) {
          TRACE("client " + std::to_string(ci) + " reconnects");
          connect(ci);
        }
        break;
    }
  }

  void connect(int ci) {
    Client& c = clients_[ci];
    c.conv.reset();
    c.memo = std::make_unique<pglane::routing::StatementMemo>(cfg_.routing ? &analyzer_ : nullptr,
                                                              nullptr);
    txn::ConversationOptions opts;
    opts.routing = cfg_.routing;
    opts.max_prepared_statements = cfg_.max_prepared;
    c.conv = std::make_unique<txn::Conversation>(opts, *c.memo);
    c.tracker = Tracker();
    sinks_[ci] = std::make_unique<Sink>(*this, ci);
  }

  // A client message. `track`: the client sends it (false: the relay replays it).
  void send(int ci, Tracker::Request req, std::string_view whole, std::string_view types = {},
            bool track = true) {
    Client& c = clients_[ci];
    const char type = req.kind == 'd' ? 'D' : req.kind;
    if (track) {
      if (!c.drop_until_sync && c.server < 0 && !attach(ci)) {
        return;  // every server is busy: the client waits
      }
      TRACE("client " + std::to_string(ci) + " sends " + std::string(1, type) + " \"" + req.name +
            "\" \"" + req.text + "\"");
      c.last_sent = type;
      c.tracker.sent(req);
    }
    if (c.drop_until_sync) {
      // proxy/txn_pooling.cc survive_server_loss: messages up to the next Query, Sync or
      // FunctionCall belong to the lost transaction; that one is answered with an error.
      if (type == 'Q' || type == 'S' || type == 'F') {
        c.drop_until_sync = false;
        c.tracker.relay_answered_all();
      }
      return;
    }
    if (type == 'P' && !req.name.empty()) {
      c.derived.insert(txn::server_statement_name(req.text, types));
    }
    Server& s = servers_[c.server];
    std::string out;
    if (type == 'Q' || type == 'P' || type == 'B' || type == 'D' || type == 'C') {
      auto r = c.conv->on_client_message(type, whole, out, s.relay_status);
      FUZZ_CHECK(r == txn::Conversation::ClientResult::kOk);
    } else {
      c.conv->on_client_forwarded(type);
      out.append(whole);
    }
    if (std::string local = c.conv->take_local_now(); !local.empty()) {
      receive(ci, local);
    }
    check_names(c, type, statement_named(whole), out);
    TRACE("  to server: " + types_of(out));
    s.model.in += out;
    c.conv->note_sent(whole);
    c.conv->take_new_pin();
  }

  // No statement name crosses clients: what pglane writes names "", the client's own name of
  // this message, or a pgl_ name of a text this client parsed.
  void check_names(const Client& c, char type, std::string_view own, std::string_view out) {
    for (std::string_view m : split_messages(out)) {
      p::Reader r(m.substr(p::kHeaderSize));
      std::string_view name;
      std::string_view text;
      switch (m[0]) {
        case 'P':
          name = r.cstring();
          text = r.cstring();
          break;
        case 'B':
          r.cstring();
          name = r.cstring();
          break;
        case 'D':
          if (r.u8() != 'S') {
            continue;
          }
          name = r.cstring();
          break;
        case 'C':
          // A Close of a pgl_ name only takes it off this server connection (eviction: the LRU
          // is per server, and other clients parse it again when they need it).
          if (r.u8() != 'S') {
            continue;
          }
          name = r.cstring();
          if (is_pgl(name)) {
            continue;
          }
          break;
        case 'Q':
          text = r.cstring();
          break;
        default:
          continue;
      }
      if (text.rfind("DEALLOCATE pgl_", 0) == 0) {
        std::string dealloc(text.substr(11));
        TXN_CHECK("names", c.derived.contains(dealloc),
                  "pglane deallocated %s, not a statement of this client", dealloc.c_str());
      }
      TXN_CHECK(
          "names",
          name.empty() || name == own || (is_pgl(name) && c.derived.contains(std::string(name))),
          "pglane sent statement name \"%.*s\" for the client's '%c' naming \"%.*s\"",
          static_cast<int>(name.size()), name.data(), type, static_cast<int>(own.size()),
          own.data());
    }
  }

  // What the lease does before a server is attached (proxy/lease.cc prepare): close statements
  // no client uses, parse the ones pglane answered alone.
  bool attach(int ci) {
    Client& c = clients_[ci];
    int si = cfg_.servers > 1 ? fz_.u8() & 1 : 0;
    if (servers_[si].client >= 0) {
      si = cfg_.servers > 1 ? 1 - si : si;
      if (servers_[si].client >= 0) {
        return false;
      }
    }
    Server& s = servers_[si];
    if (std::string close = c.conv->close_unused(*s.stmts); !close.empty()) {
      run_now(s, close);
    }
    if (c.conv->has_owed()) {
      std::vector<std::string> sent;
      std::string parses = c.conv->owed_parses(*s.stmts, pool_key_, sent);
      check_names(c, 'P', "", parses);
      if (!sent.empty()) {
        std::string replies = run_now(s, parses);
        c.conv->owed_parsed(*s.stmts, sent, replies);
      }
    }
    c.conv->attach(*s.stmts, pool_key_, cfg_.retryable, s.relay_status);
    c.server = si;
    s.client = ci;
    c.answered_since_attach = false;
    TRACE("client " + std::to_string(ci) + " attaches server " + std::to_string(si));
    return true;
  }

  // Runs `msgs` on an idle server; the replies' types (run_extended: no Z, N or S).
  std::string run_now(Server& s, std::string_view msgs) {
    s.model.in += msgs;
    while (s.model.step(fz_)) {
    }
    std::string replies;
    for (const auto& m : s.model.out) {
      if (m[0] == 'Z') {
        s.relay_status = m[p::kHeaderSize];
      } else if (m[0] != 'N' && m[0] != 'S') {
        replies += m[0];
      }
    }
    s.model.out.clear();
    return replies;
  }

  void detach(int ci) {
    Client& c = clients_[ci];
    Server& s = servers_[c.server];
    TRACE("client " + std::to_string(ci) + " detaches");
    c.conv->detach();
    // Whatever the server still had to say was nobody's (settled-owed checks that it was only
    // notices); what it still had to do runs now.
    while (s.model.step(fz_)) {
    }
    s.model.out.clear();
    s.client = -1;
    c.server = -1;
  }

  // The relay reads a batch of `n` server messages and hands them over.
  void deliver(int ci, int n) {
    Client& c = clients_[ci];
    Server& s = servers_[c.server];
    bool idle_after = false;
    std::string got;
    for (int i = 0; i < n && !s.model.out.empty(); ++i) {
      std::string m = std::move(s.model.out.front());
      s.model.out.pop_front();
      const char type = m[0];
      got += type;
      Sink& sink = *sinks_[ci];
      if (type == 'Z') {
        s.relay_status = m[p::kHeaderSize];
        idle_after = s.relay_status == 'I';
      } else if (type != 'N') {
        idle_after = false;
      }
      if (type == 'D' || type == 'N') {
        c.conv->on_server_stream(type, sink);
        sink.pass(m);
      } else if (c.conv->holds(type)) {
        c.conv->hold(m);
      } else {
        c.conv->on_server_message(type, m, sink);
      }
    }
    TRACE("  client " + std::to_string(ci) + " is handed " + got);
    // proxy/relay.cc: a batch ending with the server idle lets a detachable client go.
    if (idle_after && c.conv->pinned() == nullptr && c.conv->settled()) {
      check();
      detach(ci);
    }
  }

  void drain(int ci) {
    Client& c = clients_[ci];
    for (int guard = 0; guard < 64 && c.server >= 0; ++guard) {
      Server& s = servers_[c.server];
      while (s.model.step(fz_)) {
      }
      if (s.model.out.empty()) {
        break;
      }
      deliver(ci, static_cast<int>(s.model.out.size()));
    }
  }

  void lose(int ci, bool fatal) {
    Client& c = clients_[ci];
    Server& s = servers_[c.server];
    TRACE("client " + std::to_string(ci) + " loses its server" + (fatal ? " (FATAL first)" : ""));
    if (fatal) {
      s.model.out.push_back(p::fatal_error("57P01", "terminating connection"));
      Sink& sink = *sinks_[ci];
      while (!s.model.out.empty()) {
        std::string m = std::move(s.model.out.front());
        s.model.out.pop_front();
        if (m[0] == 'Z') {
          s.relay_status = m[p::kHeaderSize];
        }
        if (m[0] == 'D' || m[0] == 'N') {
          c.conv->on_server_stream(m[0], sink);
          sink.pass(m);
        } else if (c.conv->holds(m[0])) {
          c.conv->hold(m);
        } else {
          c.conv->on_server_message(m[0], m, sink);
        }
      }
    }
    const bool in_transaction = s.relay_status != 'I';
    std::string replay;
    const int owed = c.conv->lose_server(replay);
    s = Server();  // a fresh connection takes its place
    c.server = -1;
    if (owed < 0) {
      TXN_CHECK("retry", !c.answered_since_attach,
                "a read is replayed though the client has seen part of its answer");
      TRACE("  replay: " + types_of(replay));
      replay_unit(ci, replay);
      return;
    }
    // txn::Conversation::lose_server: each ReadyForQuery owed follows an error (the relay
    // answers the lost requests with errors); inside a transaction with none owed, the relay
    // answers the client's next Query, Sync or FunctionCall with an error instead.
    c.tracker.lost(owed);
    if (owed == 0 && in_transaction) {
      c.drop_until_sync = true;
    }
    TXN_CHECK("loss", c.drop_until_sync || c.tracker.idle(),
              "after the server was lost the client still waits for replies to extended-protocol "
              "messages sent without a Sync (%s): nobody will answer them",
              c.tracker.describe().c_str());
    TXN_CHECK("loss", c.drop_until_sync || !c.tracker.skipping(),
              "the server was lost while the client's batch was skipped to its Sync: the rest of "
              "the batch will run on the next server");
    if (!c.drop_until_sync && (!c.tracker.idle() || c.tracker.skipping())) {
      // Only reached with TXN_FUZZ_SKIP=loss (a known bug, tests/fuzz/pending/txn): the client
      // forgets what it waited for, so that fuzzing goes on past it.
      c.tracker = Tracker();
    }
  }

  // The relay puts what the lost replica was sent back in front of the client's input: with no
  // server, known statements may be answered at once; the rest runs on the next server.
  void replay_unit(int ci, std::string_view replay) {
    Client& c = clients_[ci];
    std::string reply;
    size_t consumed = 0;
    if (c.conv->answer_known_prepare(replay, pool_key_, reply, consumed) ==
        txn::Conversation::Prepared::kAnswered) {
      p::encode_ready_for_query(reply, 'I');
      receive(ci, reply);
      replay.remove_prefix(consumed);
    }
    if (replay.empty()) {
      return;
    }
    if (!attach(ci)) {
      FUZZ_CHECK(!"no server for the replay");  // the lost one is free
    }
    for (std::string_view m : split_messages(replay)) {
      p::Reader r(m.substr(p::kHeaderSize));
      Tracker::Request req{m[0], "", "", ""};
      std::string_view types;
      if (m[0] == 'P') {
        req.name = r.cstring();
        req.text = r.cstring();
        types = r.rest();
      }
      send(ci, req, m, types, false);
    }
  }

  // A batch of named Parses and a Sync from a client with no server (proxy/txn_pooling.cc
  // answer_known_prepare).
  void known_prepare(int ci) {
    Client& c = clients_[ci];
    const int n = 1 + fz_.u8() % 3;
    std::string batch;
    std::vector<Tracker::Request> reqs;
    std::vector<std::string> types;
    for (int i = 0; i < n; ++i) {
      const uint8_t a = fz_.u8();
      const std::string name = kNames[1 + a % 3];
      types.push_back(kTypes[(a >> 2) & 1]);
      const std::string text = kTexts[fz_.u8() % kTextCount];
      p::encode_parse(batch, name, text, types.back());
      reqs.push_back({'P', name, text, ""});
    }
    p::encode_sync(batch);
    reqs.push_back({'S', "", "", ""});
    types.emplace_back();

    std::string reply;
    size_t consumed = 0;
    const size_t cut = fz_.u8() % batch.size();
    if (cut > 0) {
      auto r = c.conv->answer_known_prepare(std::string_view(batch).substr(0, cut), pool_key_,
                                            reply, consumed);
      FUZZ_CHECK(r != txn::Conversation::Prepared::kAnswered);
      FUZZ_CHECK(reply.empty());
    }
    auto r = c.conv->answer_known_prepare(batch, pool_key_, reply, consumed);
    FUZZ_CHECK(r != txn::Conversation::Prepared::kNeedMore);
    if (r == txn::Conversation::Prepared::kAnswered) {
      TRACE("client " + std::to_string(ci) + " prepares " + std::to_string(n) +
            " known statements with no server");
      FUZZ_CHECK(consumed == batch.size());
      std::string expected;
      for (int i = 0; i < n; ++i) {
        p::encode_parse_complete(expected);
        c.derived.insert(txn::server_statement_name(reqs[i].text, types[i]));
      }
      FUZZ_CHECK(reply == expected);
      for (auto& req : reqs) {
        c.tracker.sent(req);
      }
      c.last_sent = 'S';
      p::encode_ready_for_query(reply, 'I');
      receive(ci, reply);
      return;
    }
    // Not answerable here: the batch goes to a server like any other.
    auto msgs = split_messages(batch);
    for (size_t i = 0; i < msgs.size(); ++i) {
      if (c.server < 0 && !attach(ci)) {
        return;
      }
      send(ci, reqs[i], msgs[i], types[i]);
    }
  }

  void check() {
    for (int ci = 0; ci < cfg_.clients; ++ci) {
      Client& c = clients_[ci];
      if (c.server < 0) {
        continue;
      }
      Server& s = servers_[c.server];
      txn::Conversation& conv = *c.conv;
      TXN_CHECK("settled-owed", !(conv.settled() && s.model.owes()),
                "client %d is settled (its server may leave) while the server still owes it "
                "replies (%s)",
                ci, c.tracker.describe().c_str());
      if (c.answered_since_attach) {
        TXN_CHECK("retry", !conv.retry_ok(), "retry_ok() after the client saw an answer");
      }
      if (s.model.answered_everything()) {
        TXN_CHECK("owed-forever", !conv.owes_replies(),
                  "the server answered everything, yet client %d's conversation still owes "
                  "replies",
                  ci);
        TXN_CHECK("replies", c.tracker.idle(),
                  "the server answered everything, yet client %d waits: %s", ci,
                  c.tracker.describe().c_str());
        if (c.last_sent == 'S') {
          TXN_CHECK("owed-forever", conv.settled(),
                    "everything answered after a Sync, yet client %d is not settled", ci);
        }
      }
    }
    for (int si = 0; si < cfg_.servers; ++si) {
      Server& s = servers_[si];
      if (!s.model.answered_everything() ||
          (s.client >= 0 && clients_[s.client].conv->owes_replies())) {
        continue;
      }
      std::set<std::string> believed(s.stmts->lru().begin(), s.stmts->lru().end());
      std::set<std::string> actual;
      for (const auto& [name, st] : s.model.stmts) {
        if (is_pgl(name)) {
          actual.insert(name);
        }
      }
      std::string missing;
      std::string extra;
      for (const auto& n : actual) {
        if (!believed.contains(n)) {
          missing += " " + n;
        }
      }
      for (const auto& n : believed) {
        if (!actual.contains(n)) {
          extra += " " + n;
        }
      }
      TXN_CHECK("belief", believed == actual,
                "server %d: ServerStatements lacks [%s ] and wrongly lists [%s ]", si,
                missing.c_str(), extra.c_str());
    }
  }

  Config cfg_;
  Input& fz_;
  std::string pool_key_;
  pglane::routing::Analyzer analyzer_;  // per input: its cache must not outlive it
  Client clients_[2];
  Server servers_[2];
  std::unique_ptr<Sink> sinks_[2];
};

void Sink::pass(std::string_view server_bytes) {
  world_.receive(client_, server_bytes);
}
void Sink::own(std::string bytes) {
  world_.receive(client_, bytes);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* skip = std::getenv("TXN_FUZZ_SKIP")) {
    std::string_view rest = skip;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      skipped_checks().emplace(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  const char* t = std::getenv("TXN_FUZZ_TRACE");
  g_trace = t != nullptr && t[0] == '1';
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  Input fz(data, size);
  const uint8_t c = fz.u8();
  Config cfg;
  cfg.routing = (c & 1) != 0;
  cfg.max_prepared = 1 + ((c >> 1) & 3);
  cfg.retryable = (c & 8) != 0;
  cfg.clients = (c & 16) != 0 ? 2 : 1;
  cfg.servers = (c & 32) != 0 ? 2 : 1;
  g_log.clear();
  {
    World world(cfg, fz, "pool/");
    world.run();
  }
  // KnownStatements is process-wide and would outlive the input: each input starts without it
  // (and libFuzzer sees no memory kept from one input to the next).
  txn::known_statements().clear();
  return 0;
}
