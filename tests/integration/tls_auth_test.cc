// Client TLS modes, backend certificate verification, and password authentication.
#include <chrono>
#include <string>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;

TEST(Tls, VerifyFullWithSandboxCaSucceeds) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo("sslmode=verify-full sslrootcert=" + env("TLS_CA")));
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(PQsslInUse(c.get()), 1);
  EXPECT_EQ(query_value(c.get(), "select 'over tls'"), "over tls");
}

TEST(Tls, VerifyFullWithOtherCaFails) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo("sslmode=verify-full sslrootcert=" + env("TLS_OTHER_CA")));
  EXPECT_NE(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("certificate"), std::string::npos)
      << PQerrorMessage(c.get());
}

TEST(Tls, RequireModeRefusesPlaintextWith28000) {
  ProxySettings s;
  s.tls_mode = "require";
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn plain = connect(proxy.conninfo("sslmode=disable"));
  EXPECT_NE(PQstatus(plain.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(plain.get())), "28000")
      << PQerrorMessage(plain.get());
  Conn tls = connect_ok(proxy.conninfo("sslmode=require"));
  ASSERT_EQ(PQstatus(tls.get()), CONNECTION_OK);
  EXPECT_EQ(PQsslInUse(tls.get()), 1);
}

TEST(Tls, DisableModeRefusesTlsAndServesPlaintext) {
  ProxySettings s;
  s.tls_mode = "disable";
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn tls = connect(proxy.conninfo("sslmode=require"));
  EXPECT_NE(PQstatus(tls.get()), CONNECTION_OK);
  Conn plain = connect_ok(proxy.conninfo("sslmode=disable"));
  ASSERT_EQ(PQstatus(plain.get()), CONNECTION_OK);
  EXPECT_EQ(PQsslInUse(plain.get()), 0);
  EXPECT_EQ(query_value(plain.get(), "select 1"), "1");
}

// The writer's certificate cannot be verified: neither the probes nor the sessions get in, so
// there is no writer. Clients wait up to health.failover_timeout_ms for one and are told why.
TEST(Tls, BackendVerifyFullWithWrongCaFailsClosed) {
  ProxySettings s;
  s.backend_ca = env("TLS_OTHER_CA");
  s.extra_toml = "[health]\nfailover_timeout_ms = 2000\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  const auto start = std::chrono::steady_clock::now();
  Conn c = connect(proxy.conninfo());
  EXPECT_NE(PQstatus(c.get()), CONNECTION_OK)
      << "pglane logged in to a server whose certificate it cannot verify";
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(c.get())), "57P03") << PQerrorMessage(c.get());
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("certificate"), std::string::npos)
      << PQerrorMessage(c.get());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 7s);
}

TEST(Auth, WrongPasswordIs28P01) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo("password=definitely-wrong"));
  ASSERT_NE(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(c.get())), "28P01") << PQerrorMessage(c.get());
  EXPECT_NE(std::string(PQerrorMessage(c.get()))
                .find("password authentication failed for user \"pglane_app\""),
            std::string::npos)
      << PQerrorMessage(c.get());
}

TEST(Auth, UnknownUserLooksLikeWrongPassword) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect(proxy.conninfo("user=nosuchuser password=whatever"));
  ASSERT_NE(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(c.get())), "28P01") << PQerrorMessage(c.get());
  EXPECT_NE(std::string(PQerrorMessage(c.get()))
                .find("password authentication failed for user \"nosuchuser\""),
            std::string::npos)
      << PQerrorMessage(c.get());
}

TEST(Auth, Md5ScramAndTrustUsersLogIn) {
  ProxySettings s;
  s.users_file = users_file_with({md5_user_line("md5user", "md5-secret"), "trustuser trust",
                                  scram_user_line("scramuser", "scram-secret")});
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn md5 = connect_ok(proxy.conninfo("user=md5user password=md5-secret"));
  ASSERT_EQ(PQstatus(md5.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(md5.get(), "select 'md5 ok'"), "md5 ok");
  Conn trust = connect_ok(proxy.conninfo("user=trustuser password="));
  ASSERT_EQ(PQstatus(trust.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(trust.get(), "select 'trust ok'"), "trust ok");
  Conn scram = connect_ok(proxy.conninfo("user=scramuser password=scram-secret"));
  ASSERT_EQ(PQstatus(scram.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(scram.get(), "select 'scram ok'"), "scram ok");

  Conn bad_md5 = connect(proxy.conninfo("user=md5user password=wrong"));
  EXPECT_NE(PQstatus(bad_md5.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(bad_md5.get())), "28P01")
      << PQerrorMessage(bad_md5.get());
}

TEST(Auth, WrongPasswordRejectedWhilePooledServerExists) {
  Proxy proxy;
  START_PROXY(proxy);
  {
    Conn good = connect_ok(proxy.conninfo());
    ASSERT_EQ(PQstatus(good.get()), CONNECTION_OK);
    EXPECT_EQ(query_value(good.get(), "select 1"), "1");
  }
  // The server connection is now idle in the pool; it must not stand in for authentication.
  Conn direct = connect_direct();
  EXPECT_TRUE(wait_app_backends(direct.get(), 1, 2s));
  Conn bad = connect(proxy.conninfo("password=wrong"));
  ASSERT_NE(PQstatus(bad.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(bad.get())), "28P01") << PQerrorMessage(bad.get());
}

}  // namespace
}  // namespace pglane::itest
