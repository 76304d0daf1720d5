// SCRAM as PostgreSQL does it: channel binding over TLS (SCRAM-SHA-256-PLUS, TESTING.md B16),
// SASLprep of non-ASCII passwords on both sides, and pass-through logins to the servers with the
// keys of the client's own proof, so the gateway needs no plaintext password.
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

// A users file with just these lines (users_file_with() keeps the sandbox's pglane_app line).
std::string users_file_of(const std::string& name, const std::vector<std::string>& lines) {
  const std::string path = sandbox_dir() + "/" + name;
  std::ofstream f(path);
  for (const auto& l : lines) {
    f << l << "\n";
  }
  return path;
}

TEST(ScramPlus, ChannelBindingRequireConnectsOverTls) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect(
      proxy.conninfo("sslmode=verify-full channel_binding=require sslrootcert=" + env("TLS_CA")));
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(query_value(c.get(), "select 'bound'"), "bound");
}

TEST(ScramPlus, ChannelBindingRequireRefusedWithoutTls) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo("channel_binding=require"));  // sslmode=disable
  ASSERT_NE(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("channel binding"), std::string::npos)
      << PQerrorMessage(c.get());
}

TEST(ScramPlus, WrongPasswordStillFailsWithBinding) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo("password=wrong sslmode=require channel_binding=require"));
  ASSERT_NE(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(c.get())), "28P01") << PQerrorMessage(c.get());
}

TEST(ScramPassThrough, ClientsLogInToServersWithoutAPasswordInTheConfig) {
  for (const char* mode : {"transaction", "session"}) {
    SCOPED_TRACE(mode);
    ProxySettings s;
    s.backend_pass_through = true;
    s.pool_mode = mode;
    Proxy proxy(s);
    START_PROXY(proxy);
    const std::string config = proxy.config_path();
    Conn c = connect_ok(proxy.conninfo("sslmode=require"));
    ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
    EXPECT_EQ(query_value(c.get(), "select current_user"), "pglane_app");
    EXPECT_EQ(query_value(c.get(),
                          "select count(*) from pg_stat_ssl where pid = pg_backend_pid() "
                          "and ssl"),
              "1");
    // A second client reuses the pooled server; a wrong password is still refused by pglane.
    Conn again = connect_ok(proxy.conninfo());
    EXPECT_EQ(query_value(again.get(), "select 2"), "2");
    Conn bad = connect(proxy.conninfo("password=wrong"));
    EXPECT_NE(PQstatus(bad.get()), CONNECTION_OK);
  }
}

TEST(ScramPassThrough, ForeignVerifierIsExplained) {
  // pglane passwd makes a verifier with a fresh salt: the client's keys then fit pglane's
  // verifier but not the server's.
  ProxySettings s;
  s.backend_pass_through = true;
  s.users_file =
      users_file_of("users-foreign.txt", {scram_user_line("pglane_app", env("APP_PASSWORD"))});
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo());
  ASSERT_NE(PQstatus(c.get()), CONNECTION_OK);
  const std::string msg = PQerrorMessage(c.get());
  EXPECT_EQ(sqlstate_from_message(msg), "28P01") << msg;
  // The client learns nothing about the servers; the operator's log says what to fix.
  EXPECT_EQ(msg.find("verifier"), std::string::npos) << msg;
  EXPECT_NE(proxy.log_tail().find("another verifier"), std::string::npos) << proxy.log_tail();
}

TEST(ScramPassThrough, NoKeysWithoutScram) {
  ProxySettings s;
  s.backend_pass_through = true;
  s.users_file = users_file_of("users-trust.txt", {"pglane_app trust"});
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo());
  ASSERT_NE(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(c.get())), "28P01") << PQerrorMessage(c.get());
  EXPECT_NE(proxy.log_tail().find("no SCRAM keys to pass through"), std::string::npos)
      << proxy.log_tail();
}

TEST(SaslPrep, NonAsciiPasswordsOnBothSides) {
  // PostgreSQL stores the SASLprep'd form: "pa<NO-BREAK SPACE>ss<SOFT HYPHEN>wörd" becomes
  // "pa ssword" with ö composed. pglane must apply the same when it logs in to the server and
  // when it checks a client against a verifier it made itself.
  const std::string stored = "pa\xC2\xA0ss\xC2\xADw\xC3\xB6rd";  // NBSP, soft hyphen, NFC ö
  const std::string typed = "pa ssw\x6F\xCC\x88rd";              // plain space, NFD ö
  Conn direct = connect_direct();
  exec_ok(direct.get(), "DROP ROLE IF EXISTS pglane_intl");
  exec_ok(direct.get(), "CREATE ROLE pglane_intl LOGIN PASSWORD '" + stored + "'");
  exec_ok(direct.get(), "GRANT CONNECT ON DATABASE app TO pglane_intl");
  ProxySettings s;
  s.users_file = users_file_with({scram_user_line("pglane_intl", stored)});
  s.extra_toml =
      "[backend.users.pglane_intl]\nuser = \"pglane_intl\"\npassword = \"" + typed + "\"\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo("user=pglane_intl password='" + typed + "'"));
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(query_value(c.get(), "select current_user"), "pglane_intl");
}

}  // namespace
}  // namespace pglane::itest
