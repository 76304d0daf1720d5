// What a client sees in pg_prepared_statements through transaction pooling: its own statements,
// not those left on a shared server by clients that have gone (psycopg's test_prepared* read
// the view after each step and count).
#include <string>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;

ProxySettings pool_of_one() {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = 1;
  s.backend_tls_mode = "disable";
  return s;
}

constexpr const char* kCount = "select count(*) from pg_prepared_statements where name != ''";

void prepare(PGconn* c, const char* name, const char* sql) {
  Result r(PQprepare(c, name, sql, 0, nullptr));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQerrorMessage(c);
}

TEST(PreparedView, StatementsOfClientsThatLeftAreGone) {
  Proxy proxy(pool_of_one());
  START_PROXY(proxy);
  {
    Conn a = connect_ok(proxy.conninfo());
    prepare(a.get(), "a1", "select 1");
    prepare(a.get(), "a2", "select 2");
    EXPECT_EQ(query_value(a.get(), kCount), "2");
  }
  Conn b = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(b.get(), kCount), "0");
  prepare(b.get(), "b1", "select 1");  // the same text as a1: shared name, now b's
  EXPECT_EQ(query_value(b.get(), kCount), "1");
  Result r(PQexecPrepared(b.get(), "b1", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), "1");
}

TEST(PreparedView, DeallocatedStatementLeavesTheView) {
  Proxy proxy(pool_of_one());
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  prepare(a.get(), "s", "select 'x'");
  EXPECT_EQ(query_value(a.get(), kCount), "1");
  exec_ok(a.get(), "DEALLOCATE s");
  EXPECT_EQ(query_value(a.get(), kCount), "0");
}

TEST(PreparedView, StatementsOfConnectedClientsStay) {
  Proxy proxy(pool_of_one());
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  prepare(a.get(), "s", "select 'kept'");
  {
    Conn c = connect_ok(proxy.conninfo());
    prepare(c.get(), "t", "select 'gone'");
  }
  EXPECT_EQ(query_value(b.get(), "select 1"), "1");
  // a's statement is still prepared on the shared server and runs without a re-Parse.
  Result r(PQexecPrepared(a.get(), "s", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), "kept");
  // c's goes once pglane has seen c leave (its Terminate is handled on its own worker, which
  // may come after b's query took the server).
  EXPECT_TRUE(wait_for(
      [&] {
        query_value(b.get(), "select 1");
        return query_value(a.get(), kCount) == "1";
      },
      2s));
}

TEST(PreparedView, DeallocateInAnAbortedTransactionKeepsTheServerStatement) {
  Proxy proxy(pool_of_one());
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  prepare(a.get(), "s", "select 'abort'");
  exec_ok(a.get(), "BEGIN");
  Result div(PQexec(a.get(), "SELECT 1/0"));
  Result dealloc(PQexec(a.get(), "DEALLOCATE s"));
  EXPECT_EQ(sqlstate(dealloc.get()), "25P02");
  exec_ok(a.get(), "ROLLBACK");
  // The server still has the statement; pglane must know, or this Parse would fail with 42P05.
  Conn b = connect_ok(proxy.conninfo());
  prepare(b.get(), "t", "select 'abort'");
  Result r(PQexecPrepared(b.get(), "t", 0, nullptr, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(b.get());
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), "abort");
}

}  // namespace
}  // namespace pglane::itest
