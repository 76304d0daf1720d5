// Startup is what a server sends: for the startup packets real drivers send, the messages a
// client sees from the StartupMessage up to the first ReadyForQuery through pglane (transaction
// pooling) are the ones PostgreSQL itself sends. Drivers check this strictly: pgjdbc refused a
// login because a ParameterStatus came before AuthenticationOk (fixed in 233a570).
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "protocol/scram.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Params = std::vector<std::pair<std::string, std::string>>;

uint32_t body_int32(const std::string& body, std::size_t at = 0) {
  if (body.size() < at + 4) {
    return 0xffffffff;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(body.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// What one login showed the client, up to and including ReadyForQuery.
struct Login {
  std::vector<std::string> sequence;  // message types, 'R' with its code: "R10", "S", "K", "Z"
  std::vector<std::pair<std::string, std::string>> params;  // ParameterStatus, in order
  std::string mechanisms;  // the AuthenticationSASL body after its code
  char ready_status = 0;
  std::string failure;  // why the exchange stopped early ("" when it reached ReadyForQuery)
};

std::string describe(const Login& l) {
  std::string s;
  for (const auto& t : l.sequence) {
    s += t + " ";
  }
  for (const auto& [k, v] : l.params) {
    s += "\n  " + k + "=" + v;
  }
  return s + (l.failure.empty() ? "" : "\n  stopped: " + l.failure);
}

// Logs in over plaintext with `params`, answering SCRAM-SHA-256 (docs 55.3.1) with pglane's
// own client, and records every message until ReadyForQuery, an ErrorResponse or a timeout.
Login login(int port, const Params& params, const std::string& password) {
  Login out;
  RawClient raw;
  if (!raw.connect(port) || !raw.send(startup_message_in_order(params))) {
    out.failure = "connect/send failed";
    return out;
  }
  protocol::ScramClient scram(password);
  for (int i = 0; i < 64; ++i) {
    auto m = raw.read_message(5s);
    if (!m) {
      out.failure = raw.closed() ? "connection closed" : "timeout";
      return out;
    }
    std::string type(1, m->type);
    if (m->type == 'R') {
      const uint32_t code = body_int32(m->body);
      out.sequence.push_back("R" + std::to_string(code));
      if (code == 10) {  // AuthenticationSASL: mechanisms; answer SASLInitialResponse
        out.mechanisms = m->body.substr(4);
        if (m->body.find(std::string("SCRAM-SHA-256\0", 14)) == std::string::npos) {
          out.failure = "no SCRAM-SHA-256 offered";
          return out;
        }
        const std::string first = scram.client_first();
        std::string body("SCRAM-SHA-256\0", 14);
        body += be32(static_cast<uint32_t>(first.size())) + first;
        raw.send(typed_message('p', body));
      } else if (code == 11) {  // AuthenticationSASLContinue: server-first
        auto final_msg = scram.handle_server_first(m->body.substr(4));
        if (!final_msg) {
          out.failure = "bad server-first-message";
          return out;
        }
        raw.send(typed_message('p', *final_msg));
      } else if (code == 12) {  // AuthenticationSASLFinal: the server's signature
        if (!scram.verify_server_final(m->body.substr(4))) {
          out.failure = "server signature did not verify";
          return out;
        }
      }
      continue;
    }
    out.sequence.push_back(type);
    if (m->type == 'S') {
      const auto nul = m->body.find('\0');
      const auto end = m->body.find('\0', nul + 1);
      out.params.emplace_back(m->body.substr(0, nul), m->body.substr(nul + 1, end - nul - 1));
    } else if (m->type == 'E') {
      out.failure = error_field(m->body, 'C') + " " + error_field(m->body, 'M');
      return out;
    } else if (m->type == 'Z') {
      out.ready_status = m->body.empty() ? 0 : m->body[0];
      raw.send(typed_message('X', ""));
      return out;
    }
  }
  out.failure = "no ReadyForQuery within 64 messages";
  return out;
}

struct Driver {
  std::string name;
  Params params;  // without user and database, which every driver sends first
};

// The startup packets four drivers really send (captured on the wire), beyond user and
// database: interactive psql 15 (libpq's client_encoding=auto resolved in a UTF-8 locale),
// pgjdbc 42.5 (ConnectionFactoryImpl.getParametersForStartup without assumeMinServerVersion;
// TimeZone is the JVM's zone, here one the server does not default to), psycopg 3 (libpq, nothing
// by default) and node-postgres 8 (serializer.startup appends client_encoding).
std::vector<Driver> drivers() {
  return {
      {"psql", {{"application_name", "psql"}, {"client_encoding", "UTF8"}}},
      {"pgjdbc",
       {{"client_encoding", "UTF8"},
        {"DateStyle", "ISO"},
        {"TimeZone", "Europe/Berlin"},
        {"extra_float_digits", "2"}}},
      {"psycopg", {}},
      {"node-postgres", {{"client_encoding", "UTF8"}}},
  };
}

ProxySettings transaction_pooling() {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = 2;
  s.workers = 1;  // so later logins reuse servers an earlier driver's settings were applied to
  return s;
}

TEST(Startup, DriverLoginsSeeWhatPostgresSends) {
  Proxy proxy(transaction_pooling());
  START_PROXY(proxy);
  const int direct_port = std::stoi(env("PG_PRIMARY_PORT"));
  // Twice round: the second time each driver lands on a server another driver configured.
  for (int round = 0; round < 2; ++round) {
    for (const auto& d : drivers()) {
      SCOPED_TRACE(d.name + " round " + std::to_string(round));
      Params params = {{"user", env("APP_USER")}, {"database", env("APP_DB")}};
      params.insert(params.end(), d.params.begin(), d.params.end());
      const Login want = login(direct_port, params, env("APP_PASSWORD"));
      const Login got = login(proxy.port(), params, env("APP_PASSWORD"));
      ASSERT_EQ(want.failure, "") << "PostgreSQL itself: " << describe(want);
      ASSERT_EQ(got.failure, "") << describe(got) << "\n" << proxy.log_tail();

      EXPECT_EQ(got.mechanisms, want.mechanisms) << "SASL mechanisms offered differ";
      EXPECT_EQ(got.sequence, want.sequence)
          << "pglane: " << describe(got) << "\nPostgreSQL: " << describe(want);
      std::map<std::string, std::string> want_params(want.params.begin(), want.params.end());
      std::map<std::string, std::string> got_params(got.params.begin(), got.params.end());
      EXPECT_EQ(got_params.size(), got.params.size()) << "a ParameterStatus name repeated";
      EXPECT_EQ(got_params, want_params)
          << "pglane: " << describe(got) << "\nPostgreSQL: " << describe(want);

      // AuthenticationOk, then only ParameterStatus, then one BackendKeyData, then 'Z' idle.
      const auto ok = std::find(got.sequence.begin(), got.sequence.end(), "R0");
      ASSERT_NE(ok, got.sequence.end());
      ASSERT_GE(got.sequence.end() - ok, 3);
      EXPECT_TRUE(
          std::all_of(got.sequence.begin(), ok, [](const std::string& t) { return t[0] == 'R'; }))
          << "something other than an authentication request before AuthenticationOk: "
          << describe(got);
      EXPECT_TRUE(std::all_of(ok + 1, got.sequence.end() - 2, [](const std::string& t) {
        return t == "S";
      })) << describe(got);
      EXPECT_EQ(std::count(got.sequence.begin(), got.sequence.end(), "K"), 1);
      EXPECT_EQ(got.sequence.end()[-2], "K");
      EXPECT_EQ(got.sequence.back(), "Z");
      EXPECT_EQ(got.ready_status, 'I');
    }
  }
}

// What a client that sends Terminate ('X', length 4) as its very first bytes gets back before
// the server closes (node-postgres does this when it gives up on a connection at once).
std::string bytes_before_close_after_early_terminate(int port, bool& closed) {
  RawClient raw;
  EXPECT_TRUE(raw.connect(port));
  EXPECT_TRUE(raw.send(typed_message('X', "")));
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!raw.closed() && std::chrono::steady_clock::now() < deadline) {
    got += raw.read_some(200ms);
  }
  closed = raw.closed();
  return got;
}

TEST(Startup, TerminateBeforeStartupClosesSilently) {
  bool closed = false;
  // PostgreSQL reads 'X' 0 0 0 as a startup length, logs it and closes without a word.
  std::string direct =
      bytes_before_close_after_early_terminate(std::stoi(env("PG_PRIMARY_PORT")), closed);
  EXPECT_TRUE(closed) << "PostgreSQL kept the connection open";
  EXPECT_EQ(direct.size(), 0u) << "PostgreSQL answered";

  Proxy proxy(transaction_pooling());
  START_PROXY(proxy);
  closed = false;
  std::string got = bytes_before_close_after_early_terminate(proxy.port(), closed);
  EXPECT_TRUE(closed) << "pglane kept the connection open";
  EXPECT_EQ(got.size(), 0u) << "pglane answered an early Terminate with " << got.size()
                            << " bytes, first type '" << (got.empty() ? ' ' : got[0])
                            << "': " << error_field(got.size() > 5 ? got.substr(5) : "", 'M');
  Conn c = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(c.get(), "select 1"), "1");
}

}  // namespace
}  // namespace pglane::itest
