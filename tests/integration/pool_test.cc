// Pool and connection limits: queue timeout, max_client_conn, server connections never above
// the pool size.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Pool, QueueTimeoutGives53300AndFreedServerIsReused) {
  Conn direct = connect_direct();
  ASSERT_TRUE(wait_app_backends(direct.get(), 0, 5s)) << "servers of earlier tests still open";
  ProxySettings s;
  s.pool_size = 2;
  s.queue_timeout_ms = 500;
  Proxy proxy(s);
  START_PROXY(proxy);

  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(a.get()), CONNECTION_OK);
  ASSERT_EQ(PQstatus(b.get()), CONNECTION_OK);
  EXPECT_EQ(count_app_backends(direct.get()), 2);

  const auto start = Clock::now();
  Conn c = connect(proxy.conninfo());
  const auto waited = Clock::now() - start;
  ASSERT_NE(PQstatus(c.get()), CONNECTION_OK) << "a third session got a server with pool size 2";
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(c.get())), "53300") << PQerrorMessage(c.get());
  EXPECT_GE(waited, 450ms);
  EXPECT_LT(waited, 2s);
  EXPECT_LE(count_app_backends(direct.get()), 2);

  a.reset();
  Conn d = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(d.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(d.get(), "select 'got in'"), "got in");
  EXPECT_LE(count_app_backends(direct.get()), 2);
}

TEST(Pool, ServerConnectionsNeverExceedPoolSize) {
  Conn direct = connect_direct();
  ASSERT_TRUE(wait_app_backends(direct.get(), 0, 5s));
  ProxySettings s;
  s.pool_size = 3;
  s.queue_timeout_ms = 10000;
  Proxy proxy(s);
  START_PROXY(proxy);
  // Ten clients in turn, each taking a session while up to three others hold theirs.
  std::vector<Conn> held;
  int max_seen = 0;
  for (int i = 0; i < 10; ++i) {
    if (held.size() == 3) {
      held.erase(held.begin());
    }
    held.push_back(connect_ok(proxy.conninfo()));
    ASSERT_EQ(PQstatus(held.back().get()), CONNECTION_OK);
    max_seen = std::max(max_seen, count_app_backends(direct.get()));
  }
  EXPECT_LE(max_seen, 3);
}

// Clients on both workers sharing a small TLS pool: a connection given back while a client of
// the other worker waits moves to that worker (the TLS session with it) instead of being closed
// and replaced. Before, 10 clients on a pool of 5 opened hundreds of server sessions.
TEST(Pool, TlsServerConnectionsMoveBetweenWorkersInsteadOfReconnecting) {
  Conn direct = connect_direct();
  ASSERT_TRUE(wait_app_backends(direct.get(), 0, 5s));
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = 5;
  s.queue_timeout_ms = 10000;
  ASSERT_EQ(s.backend_tls_mode, "verify-full");
  Proxy proxy(s);
  START_PROXY(proxy);
  const std::string sessions_sql = "SELECT sessions FROM pg_stat_database WHERE datname = 'app'";
  const long before = std::stol(query_value(direct.get(), sessions_sql));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      Conn c = connect_ok(proxy.conninfo());
      for (int i = 0; i < 60; ++i) {
        if (query_value(c.get(), "SELECT " + std::to_string(t * 100 + i)) !=
            std::to_string(t * 100 + i)) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  // (pg_stat_database counts a session when it ends: close them first.)
  proxy.stop();
  ASSERT_TRUE(wait_app_backends(direct.get(), 0, 5s));
  const long opened = std::stol(query_value(direct.get(), sessions_sql)) - before;
  EXPECT_LE(opened, 8) << "server sessions opened for 600 transactions on a pool of 5";
}

TEST(Pool, MaxClientConnRefusesFourthWith53300) {
  ProxySettings s;
  s.max_client_conn = 3;
  Proxy proxy(s);
  START_PROXY(proxy);
  std::vector<Conn> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(connect_ok(proxy.conninfo()));
    ASSERT_EQ(PQstatus(conns.back().get()), CONNECTION_OK) << i;
  }
  const auto start = Clock::now();
  Conn fourth = connect(proxy.conninfo());
  EXPECT_NE(PQstatus(fourth.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(fourth.get())), "53300")
      << PQerrorMessage(fourth.get());
  EXPECT_LT(Clock::now() - start, 1s) << "refusal should be immediate";
  conns.pop_back();
  // The slot is free again once a client has left (its session ends asynchronously).
  bool ok = false;
  for (int i = 0; i < 20 && !ok; ++i) {
    Conn again = connect(proxy.conninfo());
    ok = PQstatus(again.get()) == CONNECTION_OK;
    if (!ok) {
      std::this_thread::sleep_for(50ms);
    }
  }
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace pglane::itest
