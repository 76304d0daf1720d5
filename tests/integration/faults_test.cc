// Real faults: the server backend terminated mid-query, the client vanishing mid-query.
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Waits until a backend runs a query containing `marker`; returns its pid or "".
std::string wait_for_query(PGconn* direct, const std::string& marker) {
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    std::string pid =
        query_value(direct, "select pid from pg_stat_activity where query like '%" + marker +
                                "%' and state = 'active' and pid <> "
                                "pg_backend_pid()");
    if (!pid.empty()) {
      return pid;
    }
    std::this_thread::sleep_for(20ms);
  }
  return "";
}

TEST(Faults, ServerTerminatedMidQueryErrorsPromptly) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn direct = connect_direct();
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  ASSERT_EQ(PQsendQuery(c.get(), "select pg_sleep(10) /* itest terminate */"), 1);
  ASSERT_FALSE(wait_for_query(direct.get(), "itest terminate").empty());
  const auto start = Clock::now();
  exec_ok(direct.get(),
          "select pg_terminate_backend(pid) from pg_stat_activity where query like "
          "'%pg_sleep(10)%' and pid <> pg_backend_pid()");
  Result r(PQgetResult(c.get()));
  EXPECT_LT(Clock::now() - start, 2s);
  ASSERT_TRUE(r);
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  const std::string code = sqlstate(r.get());
  EXPECT_TRUE(code == "57P01" || code == "08006") << code << " " << PQresultErrorMessage(r.get());
  while (Result more{PQgetResult(c.get())}) {
  }
  Conn fresh = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(fresh.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(fresh.get(), "select 'fresh'"), "fresh");
}

TEST(Faults, ClientGoneMidQueryCancelsServerQuery) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn direct = connect_direct();
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  ASSERT_EQ(PQsendQuery(c.get(), "select pg_sleep(30) /* itest client gone */"), 1);
  const std::string pid = wait_for_query(direct.get(), "itest client gone");
  ASSERT_FALSE(pid.empty());
  c.reset();  // PQfinish: the client socket closes while the query runs
  const auto deadline = Clock::now() + 2s;
  std::string left = "1";
  while (Clock::now() < deadline) {
    left = query_value(direct.get(), "select count(*) from pg_stat_activity where pid = " + pid);
    if (left == "0") {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(left, "0") << "backend " << pid << " still exists 2 s after its client left: "
                       << query_value(direct.get(),
                                      "select state || ' ' || query from pg_stat_activity "
                                      "where pid = " +
                                          pid);
}

}  // namespace
}  // namespace pglane::itest
