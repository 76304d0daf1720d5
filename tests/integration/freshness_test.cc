// Freshness floors (routing/floors.h) against a real primary and two streaming replicas with
// replay paused: a committed write through pglane is seen by every later read through it, on
// any connection, while reads of tables nobody wrote stay on the replicas.
#include <libpq-fe.h>

#include <unistd.h>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "tests/integration/own_redis.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Both replicas in our region, fast checks, and a lag allowance so large that only the floors
// stand between a read and a replica that has not replayed a write.
ProxySettings paused_replay_settings(const std::string& read_your_writes) {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = 10;
  s.backend_tls_mode = "disable";
  for (const auto& port : replica_ports()) {
    s.readers.push_back("127.0.0.1:" + port);
  }
  s.extra_toml =
      "[health]\ninterval_ms = 100\ntimeout_ms = 1000\n"
      "[routing]\nmax_replica_lag_ms = 3600000\nread_your_writes = \"" +
      read_your_writes + "\"\n";
  return s;
}

bool on_primary(PGconn* c, const std::string& from) {
  return query_value(c, "SELECT inet_server_port()" + from) == env("PG_PRIMARY_PORT");
}

bool wait_reads_on_replicas(PGconn* c, const std::string& from) {
  const auto deadline = Clock::now() + 15s;
  while (Clock::now() < deadline) {
    if (!on_primary(c, from)) {
      return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

class Freshness : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!sandbox_ready()) {
      return;
    }
    Conn d = connect_direct();
    exec_ok(d.get(),
            "DROP TABLE IF EXISTS fr_items, fr_other CASCADE;"
            "CREATE TABLE fr_items (id int PRIMARY KEY, v int);"
            "CREATE TABLE fr_other (id int PRIMARY KEY, v int);"
            "INSERT INTO fr_items VALUES (1, 0); INSERT INTO fr_other VALUES (1, 0);"
            "CREATE OR REPLACE FUNCTION fr_bump() RETURNS int LANGUAGE sql VOLATILE AS "
            "$$ UPDATE fr_other SET v = v + 1 WHERE id = 1 RETURNING v $$;"
            "GRANT ALL ON fr_items, fr_other TO pglane_app;");
    // The replicas must have the tables before replay is paused.
    wait_function_replicated("fr_bump");
  }
  void TearDown() override { on_every_replica("SELECT pg_wal_replay_resume()"); }
};

// The scenario, 1,000 times: a write commits on one connection, a fresh connection
// reads the row. With replay paused on every replica, any read served by one is stale.
TEST_F(Freshness, WriteThenReadOnAFreshConnectionIsNeverStale) {
  Proxy proxy(paused_replay_settings("table"));
  START_PROXY(proxy);
  Conn writer = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(writer.get(), " FROM fr_items")) << proxy.log_tail();
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  int on_writer_other = 0;
  const int kPairs = skip_heavy() ? 200 : 1000;
  for (int i = 1; i <= kPairs; ++i) {
    exec_ok(writer.get(), "UPDATE fr_items SET v = " + std::to_string(i) + " WHERE id = 1");
    Conn reader = connect_ok(proxy.conninfo());
    if (query_value(reader.get(), "SELECT v FROM fr_items WHERE id = 1") != std::to_string(i)) {
      ++stale;
    }
    if (i % 100 == 0 && on_primary(reader.get(), " FROM fr_other")) {
      ++on_writer_other;
    }
  }
  EXPECT_EQ(stale, 0);
  // A table nobody wrote is still read from the (paused) replicas.
  EXPECT_EQ(on_writer_other, 0);
  on_every_replica("SELECT pg_wal_replay_resume()");
  // Once replayed, reads of the written table return to the replicas.
  Conn later = connect_ok(proxy.conninfo());
  EXPECT_TRUE(wait_reads_on_replicas(later.get(), " FROM fr_items")) << proxy.log_tail();
  // The writer's later writes to another table do not hold fr_items back again.
  on_every_replica("SELECT pg_wal_replay_pause()");
  exec_ok(writer.get(), "UPDATE fr_other SET v = v WHERE id = 1");
  EXPECT_FALSE(on_primary(later.get(), " FROM fr_items"));
  EXPECT_TRUE(on_primary(later.get(), " FROM fr_other"));
}

// Extended protocol, a write through a volatile function (which could write anything: the
// whole database's floor), and a writing CTE: each is seen by another connection at once.
TEST_F(Freshness, UnattributedAndExtendedWritesAreSeen) {
  Proxy proxy(paused_replay_settings("table"));
  START_PROXY(proxy);
  Conn writer = connect_ok(proxy.conninfo());
  Conn reader = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(reader.get(), " FROM fr_other")) << proxy.log_tail();
  on_every_replica("SELECT pg_wal_replay_pause()");
  const std::string before = query_value(reader.get(), "SELECT v FROM fr_other WHERE id = 1");
  const std::string bumped = query_value(writer.get(), "SELECT fr_bump()");
  EXPECT_EQ(std::stoi(bumped), std::stoi(before) + 1);
  EXPECT_EQ(query_value(reader.get(), "SELECT v FROM fr_other WHERE id = 1"), bumped);

  const char* values[] = {"4242"};
  Result r(PQexecParams(writer.get(), "UPDATE fr_items SET v = $1::int WHERE id = 1", 1, nullptr,
                        values, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQerrorMessage(writer.get());
  const char* id[] = {"1"};
  Result q(PQexecParams(reader.get(), "SELECT v FROM fr_items WHERE id = $1::int", 1, nullptr, id,
                        nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(q.get()), PGRES_TUPLES_OK) << PQerrorMessage(reader.get());
  EXPECT_STREQ(PQgetvalue(q.get(), 0, 0), "4242");

  exec_ok(writer.get(),
          "WITH w AS (UPDATE fr_items SET v = 77 WHERE id = 1 RETURNING id) "
          "SELECT count(*) FROM w");
  EXPECT_EQ(query_value(reader.get(), "SELECT v FROM fr_items WHERE id = 1"), "77");
}

// read_your_writes = "session" is the old promise: only the writer's own reads are protected.
TEST_F(Freshness, SessionScopeProtectsOnlyTheWritersOwnReads) {
  Proxy proxy(paused_replay_settings("session"));
  START_PROXY(proxy);
  Conn writer = connect_ok(proxy.conninfo());
  Conn reader = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(reader.get(), " FROM fr_items")) << proxy.log_tail();
  on_every_replica("SELECT pg_wal_replay_pause()");
  exec_ok(writer.get(), "UPDATE fr_items SET v = -5 WHERE id = 1");
  EXPECT_EQ(query_value(writer.get(), "SELECT v FROM fr_items WHERE id = 1"), "-5");
  EXPECT_NE(query_value(reader.get(), "SELECT v FROM fr_items WHERE id = 1"), "-5");
  EXPECT_FALSE(on_primary(reader.get(), " FROM fr_items"));
}

bool wait_log(const Proxy& p, const std::string& text, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (read_file(p.log_path()).find(text) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string route_count(PGconn* admin, const std::string& name) {
  Result r = exec(admin, "SHOW ROUTES");
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    if (name == PQgetvalue(r.get(), i, 0)) {
      return PQgetvalue(r.get(), i, 1);
    }
  }
  return "";
}

// Two gateways share one Redis: a write committed through one is seen by a read through the
// other right after the commit, with replay paused on every replica.
TEST_F(Freshness, FloorsCrossGatewaysThroughRedis) {
  ProxySettings s = paused_replay_settings("table");
  s.extra_toml += redis_toml("pglane:test:floors:" + std::to_string(getpid()));
  s.extra_toml += "[admin]\nusers = [\"" + env("APP_USER") + "\"]\n";
  Proxy a(s);
  Proxy b(s);
  START_PROXY(a);
  START_PROXY(b);
  ASSERT_TRUE(wait_log(a, "floor channel: subscribed", 5s)) << a.log_tail();
  ASSERT_TRUE(wait_log(b, "floor channel: subscribed", 5s)) << b.log_tail();
  Conn writer = connect_ok(a.conninfo());
  Conn reader = connect_ok(b.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(reader.get(), " FROM fr_items")) << b.log_tail();
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  const int kPairs = 300;
  for (int i = 1; i <= kPairs; ++i) {
    exec_ok(writer.get(), "UPDATE fr_items SET v = " + std::to_string(10000 + i) + " WHERE id = 1");
    if (query_value(reader.get(), "SELECT v FROM fr_items WHERE id = 1") !=
        std::to_string(10000 + i)) {
      ++stale;
    }
  }
  EXPECT_EQ(stale, 0);
  Conn admin_b = connect_ok(b.conninfo("dbname=pglane"));
  Conn admin_a = connect_ok(a.conninfo("dbname=pglane"));
  EXPECT_EQ(route_count(admin_b.get(), "floor_channel_up"), "1");
  EXPECT_GE(std::stoi(route_count(admin_a.get(), "floor_published")), kPairs);
  const auto deadline = Clock::now() + 3s;
  while (std::stoi(route_count(admin_b.get(), "floor_received")) < kPairs &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(std::stoi(route_count(admin_b.get(), "floor_received")), kPairs);
  // Once every message is in, tables nobody wrote are read from the replicas through the other
  // gateway (while a message is on its way, every read goes to the writer).
  EXPECT_FALSE(on_primary(reader.get(), " FROM fr_other")) << b.log_tail(1500);
  std::printf(
      "floor propagation A -> B over TLS Redis, %s messages: avg %s us, p50 <= %s us, p99 <= %s "
      "us, max %s us\n",
      route_count(admin_b.get(), "floor_received").c_str(),
      route_count(admin_b.get(), "floor_propagation_avg_us").c_str(),
      route_count(admin_b.get(), "floor_propagation_p50_us").c_str(),
      route_count(admin_b.get(), "floor_propagation_p99_us").c_str(),
      route_count(admin_b.get(), "floor_propagation_max_us").c_str());
}

// A TLS Redis of the test's own (the sandbox's is shared), to kill and restart.
int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// Redis killed and restarted under writes: no read through the other gateway is stale while it
// is down (every table counts as just written) or after it is back (resubscribed).
TEST_F(Freshness, RedisKilledAndRestartedLeavesNoReadStale) {
  if (find_on_path("redis-server").empty()) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  OwnRedis redis;
  ASSERT_TRUE(redis.start());
  ProxySettings s = paused_replay_settings("table");
  s.extra_toml += "[redis]\nendpoint = \"127.0.0.1:" + std::to_string(redis.port()) +
                  "\"\nca_file = \"" + env("TLS_CA") + "\"\n";
  Proxy a(s);
  Proxy b(s);
  START_PROXY(a);
  START_PROXY(b);
  ASSERT_TRUE(wait_log(b, "floor channel: subscribed", 5s)) << b.log_tail();
  Conn writer = connect_ok(a.conninfo());
  Conn reader = connect_ok(b.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(reader.get(), " FROM fr_items")) << b.log_tail();
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  int value = 20000;
  auto pairs = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ++value;
      exec_ok(writer.get(), "UPDATE fr_items SET v = " + std::to_string(value) + " WHERE id = 1");
      if (query_value(reader.get(), "SELECT v FROM fr_items WHERE id = 1") !=
          std::to_string(value)) {
        ++stale;
      }
    }
  };
  pairs(50);
  redis.stop();
  const auto down_at = Clock::now();
  pairs(100);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down_at);
  ASSERT_TRUE(redis.start());
  ASSERT_TRUE(wait_for(
      [&] { return count_of(read_file(b.log_path()), "floor channel: subscribed") >= 2; }, 10s))
      << b.log_tail();
  pairs(100);
  EXPECT_EQ(stale, 0);
  std::printf("100 write/read pairs with Redis down took %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_NE(read_file(b.log_path()).find("floor channel: lost"), std::string::npos);
  on_every_replica("SELECT pg_wal_replay_resume()");
  EXPECT_TRUE(wait_reads_on_replicas(reader.get(), " FROM fr_other")) << b.log_tail();
}

}  // namespace
}  // namespace pglane::itest
