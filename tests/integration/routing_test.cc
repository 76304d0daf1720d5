// Read/write splitting against a real primary and two streaming replicas (TESTING.md group D
// and F 39). Where a statement ran is read from the server itself: inet_server_port() inside
// the statement, or success of something a standby refuses (SQLSTATE 25006).
#include <libpq-fe.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string primary_port() {
  return env("PG_PRIMARY_PORT");
}

std::string addr(const std::string& port) {
  return "127.0.0.1:" + port;
}

// Transaction pooling with both replicas in our region, fast health checks.
ProxySettings split_settings(std::vector<std::string> readers, std::string extra = "") {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = 10;
  s.backend_tls_mode = "disable";
  s.readers = std::move(readers);
  s.extra_toml = "[health]\ninterval_ms = 100\ntimeout_ms = 1000\n" + extra;
  return s;
}

// The first replica in our region, the second in region "far".
ProxySettings two_regions() {
  const auto r = replica_ports();
  return split_settings({addr(r[0])},
                        "[[regions]]\nname = \"far\"\nwriter = \"127.0.0.1:" + primary_port() +
                            "\"\nreaders = [\"" + addr(r[1]) + "\"]\n");
}

ProxySettings both_replicas(std::string extra = "") {
  auto r = replica_ports();
  return split_settings({addr(r[0]), addr(r[1])}, std::move(extra));
}

std::string port_of(PGconn* c, const std::string& sql = "SELECT inet_server_port()") {
  return query_value(c, sql);
}

// Waits until a plain read is served by the server on `port`, or by any replica when `port` is
// empty (checks passed, catalog loaded).
bool wait_reads_on(PGconn* c, const std::string& port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    Result r = exec(c, "SELECT inet_server_port()");
    if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1) {
      const std::string served = PQgetvalue(r.get(), 0, 0);
      if (port.empty() ? served != primary_port() : served == port) {
        return true;
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

bool wait_reads_on_replicas(PGconn* c, std::chrono::milliseconds timeout = 15s) {
  return wait_reads_on(c, "", timeout);
}

// pg_ctl on a replica's data directory, as the postgres user when we are root.
int pg_ctl_replica(int index, const std::string& args) {
  std::string dir = env("PG_DATA_ROOT") + "/replica" + std::to_string(index);
  std::string log = env("PG_LOG_DIR") + "/replica" + std::to_string(index) + ".log";
  std::string cmd =
      env("PG_BIN") + "/pg_ctl -D " + dir + " -l " + log + " " + args + " >/dev/null 2>&1";
  if (geteuid() == 0) {
    cmd = "runuser -u postgres -- " + cmd;
  }
  return std::system(cmd.c_str());
}

class Routing : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!sandbox_ready()) {
      return;
    }
    Conn d = connect_direct();
    exec_ok(d.get(),
            "DROP TABLE IF EXISTS rt_items; CREATE TABLE rt_items (id int PRIMARY KEY, v int);"
            "INSERT INTO rt_items SELECT g, 0 FROM generate_series(1, 10) g;"
            "DROP SEQUENCE IF EXISTS rt_seq; CREATE SEQUENCE rt_seq;"
            "DROP TABLE IF EXISTS rt_log; CREATE TABLE rt_log (id bigint, note text);"
            "CREATE OR REPLACE FUNCTION rt_touch() RETURNS int LANGUAGE sql VOLATILE AS "
            "$$ UPDATE rt_items SET v = v + 1 WHERE id = 1 RETURNING inet_server_port() $$;"
            "CREATE OR REPLACE PROCEDURE rt_proc() LANGUAGE sql AS "
            "$$ INSERT INTO rt_log VALUES (0, 'proc') $$;"
            "GRANT ALL ON rt_items, rt_seq, rt_log TO pglane_app;");
    // The replicas must have the objects before the tests read them.
    wait_function_replicated("rt_proc");
  }
};

// TESTING.md 23: writes in disguise never reach a replica. Each statement either returns the
// port it ran on (last column of its first row) or would fail on a standby.
struct WriteCase {
  const char* sql;
  bool returns_port;
};

const WriteCase kWrites[] = {
    {"SELECT nextval('rt_seq'), inet_server_port()", true},
    {"SELECT setval('rt_seq', 100), inet_server_port()", true},
    {"SELECT pg_advisory_xact_lock(42), inet_server_port()", true},
    {"SELECT set_config('application_name', 'x', true), inet_server_port()", true},
    {"SELECT rt_touch()", true},
    {"SELECT id, inet_server_port() FROM rt_items WHERE id = 2 FOR UPDATE", true},
    {"SELECT id, inet_server_port() FROM rt_items WHERE id = 3 FOR SHARE SKIP LOCKED", true},
    {"SELECT id, inet_server_port() FROM rt_items WHERE id = 3 FOR NO KEY UPDATE NOWAIT", true},
    {"WITH w AS (UPDATE rt_items SET v = v + 1 WHERE id = 4 RETURNING id) "
     "SELECT id, inet_server_port() FROM w",
     true},
    {"/* leading comment */ ( SELECT id, inet_server_port() FROM rt_items WHERE id = 5 FOR "
     "UPDATE)",
     true},
    {"-- line comment\n  UPDATE rt_items SET v = v + 1 WHERE id = 6 RETURNING inet_server_port()",
     true},
    {"INSERT INTO rt_log VALUES (1, 'x') RETURNING inet_server_port()", true},
    {"DELETE FROM rt_log WHERE id = 1 RETURNING inet_server_port()", true},
    {"MERGE INTO rt_items t USING (SELECT 7 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE "
     "SET v = t.v + 1",
     false},
    {"EXPLAIN ANALYZE INSERT INTO rt_log VALUES (2, 'explain')", false},
    {"CALL rt_proc()", false},
    {"DO $$ BEGIN INSERT INTO rt_log VALUES (3, 'do'); END $$", false},
    {"/* pglane: route=reader */ UPDATE rt_items SET v = v + 1 WHERE id = 8 RETURNING "
     "inet_server_port()",
     true},
    {"/* pglane: route=analytics */ INSERT INTO rt_log VALUES (4, 'hinted') RETURNING "
     "inet_server_port()",
     true},
    {"NOTIFY rt_channel", false},
    {"SELECT pg_notify('rt_channel', 'x'), inet_server_port()", true},
    {"SELECT txid_current(), inet_server_port()", true},
    {"SELECT lo_unlink(lo_create(0)), inet_server_port()", true},
    // Last: these pin the session to its (writer) connection.
    {"SELECT pg_advisory_lock(7), inet_server_port()", true},
    {"LISTEN rt_channel", false},
    {"SELECT * INTO TEMP rt_tmp_into FROM rt_items", false},
    {"CREATE TEMP TABLE rt_tmp_as AS SELECT * FROM rt_items", false},
};

void expect_on_writer(PGconn* c, const WriteCase& w, bool extended) {
  Result r{extended ? PQexecParams(c, w.sql, 0, nullptr, nullptr, nullptr, nullptr, 0)
                    : PQexec(c, w.sql)};
  ExecStatusType st = PQresultStatus(r.get());
  ASSERT_TRUE(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
      << w.sql << (extended ? " (extended)" : " (simple)") << ": " << PQerrorMessage(c);
  if (w.returns_port) {
    ASSERT_GE(PQntuples(r.get()), 1) << w.sql;
    EXPECT_EQ(PQgetvalue(r.get(), 0, PQnfields(r.get()) - 1), primary_port())
        << w.sql << (extended ? " (extended)" : " (simple)");
  }
}

TEST_F(Routing, WritesInDisguiseReachOnlyTheWriterInSimpleAndExtendedProtocol) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  for (bool extended : {false, true}) {
    // A fresh client per pass: the last cases pin their session to the writer.
    Conn fresh = connect_ok(proxy.conninfo());
    ASSERT_TRUE(wait_reads_on_replicas(fresh.get())) << proxy.log_tail();
    for (const auto& w : kWrites) {
      expect_on_writer(fresh.get(), w, extended);
    }
  }
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  // Multi-statement strings go where their most demanding statement must go.
  Result r{PQexec(c.get(),
                  "SELECT 1; UPDATE rt_items SET v = v WHERE id = 9; "
                  "SELECT inet_server_port()")};
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(PQgetvalue(r.get(), 0, 0), primary_port());
  // A statement the parser rejects goes to the writer (and fails there, as it would anywhere).
  Result bad{PQexec(c.get(), "SELEC inet_server_port()")};
  EXPECT_EQ(sqlstate(bad.get()), "42601");
}

TEST_F(Routing, PlainReadsLandOnReplicas) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  const auto replicas = replica_ports();
  std::set<std::string> allowed(replicas.begin(), replicas.end());
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(allowed.count(port_of(c.get(), "SELECT inet_server_port() FROM rt_items LIMIT 1")));
    Result r{PQexecParams(c.get(), "SELECT inet_server_port(), $1::int", 1, nullptr,
                          std::vector<const char*>{"7"}.data(), nullptr, nullptr, 0)};
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK);
    EXPECT_TRUE(allowed.count(PQgetvalue(r.get(), 0, 0))) << "extended read on the writer";
  }
  // A prepared write, executed later, still goes to the writer; a prepared read to a replica.
  Result p1{PQprepare(c.get(), "w",
                      "UPDATE rt_items SET v = v + 1 WHERE id = $1 RETURNING "
                      "inet_server_port()",
                      0, nullptr)};
  Result p2{
      PQprepare(c.get(), "r", "SELECT inet_server_port() FROM rt_items WHERE id = $1", 0, nullptr)};
  const char* one[] = {"1"};
  for (int i = 0; i < 5; ++i) {
    Result w{PQexecPrepared(c.get(), "w", 1, one, nullptr, nullptr, 0)};
    ASSERT_EQ(PQresultStatus(w.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    EXPECT_EQ(PQgetvalue(w.get(), 0, 0), primary_port());
  }
  // The reads after those writes wait for a replica to replay them (read-your-writes), then
  // go back to replicas.
  const auto deadline = Clock::now() + 10s;
  bool on_replica = false;
  while (!on_replica && Clock::now() < deadline) {
    Result r{PQexecPrepared(c.get(), "r", 1, one, nullptr, nullptr, 0)};
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    on_replica = allowed.count(PQgetvalue(r.get(), 0, 0)) > 0;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(on_replica);
}

TEST_F(Routing, TransactionsNeverSplitAndSerializableStaysOffStandbys) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  exec_ok(c.get(), "BEGIN");
  EXPECT_EQ(port_of(c.get()), primary_port());
  exec_ok(c.get(), "UPDATE rt_items SET v = v + 1 WHERE id = 10");
  EXPECT_EQ(port_of(c.get()), primary_port());
  exec_ok(c.get(), "COMMIT");

  // (Reads right after this client's write wait for a replica to replay it.)
  ASSERT_TRUE(wait_reads_on_replicas(c.get()));
  exec_ok(c.get(), "BEGIN READ ONLY");
  std::string p = port_of(c.get());
  EXPECT_NE(p, primary_port());
  EXPECT_EQ(port_of(c.get(), "SELECT inet_server_port() FROM rt_items LIMIT 1"), p);
  // A write inside a read-only transaction fails where the transaction is; it is not moved.
  Result w{PQexec(c.get(), "UPDATE rt_items SET v = 0 WHERE id = 10")};
  EXPECT_EQ(sqlstate(w.get()), "25006");
  exec_ok(c.get(), "ROLLBACK");

  exec_ok(c.get(), "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY");
  EXPECT_EQ(port_of(c.get()), primary_port());
  exec_ok(c.get(), "COMMIT");

  // default_transaction_read_only lets plain BEGIN run on a replica.
  exec_ok(c.get(), "SET default_transaction_read_only = on");
  exec_ok(c.get(), "BEGIN");
  EXPECT_NE(port_of(c.get()), primary_port());
  exec_ok(c.get(), "COMMIT");
}

TEST_F(Routing, PipelinedUnitsMoveBetweenServersOnlyBetweenTransactions) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
  const char* sqls[] = {"SELECT inet_server_port()",
                        "UPDATE rt_items SET v = v + 1 WHERE id = 1 RETURNING inet_server_port()",
                        "SELECT inet_server_port()"};
  for (const char* sql : sqls) {
    ASSERT_EQ(PQsendQueryParams(c.get(), sql, 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
    ASSERT_EQ(PQpipelineSync(c.get()), 1);
  }
  std::vector<std::string> ports;
  for (int i = 0; i < 3; ++i) {
    for (;;) {
      Result r{PQgetResult(c.get())};
      if (!r) {
        break;
      }
      if (PQresultStatus(r.get()) == PGRES_TUPLES_OK) {
        ports.push_back(PQgetvalue(r.get(), 0, 0));
      } else {
        ASSERT_NE(PQresultStatus(r.get()), PGRES_FATAL_ERROR) << PQerrorMessage(c.get());
      }
    }
    Result sync{PQgetResult(c.get())};
    ASSERT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC);
  }
  ASSERT_EQ(PQexitPipelineMode(c.get()), 1);
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_NE(ports[0], primary_port());
  EXPECT_EQ(ports[1], primary_port());
  EXPECT_EQ(ports[2], primary_port()) << "read right after the write: read-your-writes";
}

// Found in the second review: a batch flushed without Sync keeps its implicit transaction open,
// so whatever the client sends next belongs to it. Such batches run on the writer.
TEST_F(Routing, BatchFlushedWithoutSyncRunsOnTheWriterWithWhatFollows) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
  ASSERT_EQ(PQsendQueryParams(c.get(), "SELECT inet_server_port()", 0, nullptr, nullptr, nullptr,
                              nullptr, 0),
            1);
  ASSERT_EQ(PQsendFlushRequest(c.get()), 1);
  ASSERT_EQ(PQflush(c.get()), 0);
  std::string first;
  {
    Result r{PQgetResult(c.get())};
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    first = PQgetvalue(r.get(), 0, 0);
    Result end{PQgetResult(c.get())};  // null: end of this query's results
  }
  EXPECT_EQ(first, primary_port());
  ASSERT_EQ(PQsendQueryParams(c.get(),
                              "UPDATE rt_items SET v = v + 1 WHERE id = 4 RETURNING "
                              "inet_server_port()",
                              0, nullptr, nullptr, nullptr, nullptr, 0),
            1);
  ASSERT_EQ(PQpipelineSync(c.get()), 1);
  Result w{PQgetResult(c.get())};
  ASSERT_EQ(PQresultStatus(w.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(PQgetvalue(w.get(), 0, 0), primary_port());
  Result end{PQgetResult(c.get())};
  Result sync{PQgetResult(c.get())};
  EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC);
  ASSERT_EQ(PQexitPipelineMode(c.get()), 1);
}

// TESTING.md 25: with replay paused everywhere, a client reads its own writes every time.
TEST_F(Routing, ReadYourWritesUnderPausedReplay) {
  // Lag alone would also protect after a second; a huge lag allowance leaves only
  // read-your-writes in the way of stale reads.
  Proxy proxy(both_replicas("[routing]\nmax_replica_lag_ms = 3600000\n"));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  Conn other = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  exec_ok(c.get(), "DELETE FROM rt_log WHERE id >= 1000");
  on_every_replica("SELECT pg_wal_replay_pause()");
  int stale = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = std::to_string(1000 + i);
    exec_ok(c.get(), "INSERT INTO rt_log VALUES (" + id + ", 'ryw')");
    if (query_value(c.get(), "SELECT count(*) FROM rt_log WHERE id = " + id) != "1") {
      ++stale;
    }
  }
  EXPECT_EQ(stale, 0);
  // A client that wrote nothing is still served by the (stale) replicas, except for the tables
  // written since (read_your_writes = "table"): those it reads where the writes are.
  EXPECT_NE(port_of(other.get()), primary_port());
  EXPECT_NE(port_of(other.get(), "SELECT inet_server_port() FROM rt_items LIMIT 1"),
            primary_port());
  EXPECT_EQ(query_value(other.get(), "SELECT count(*) FROM rt_log WHERE id >= 1000"), "1000");
  on_every_replica("SELECT pg_wal_replay_resume()");
  // Once a replica has replayed past the writes, the writer's reads return to replicas.
  EXPECT_TRUE(wait_reads_on_replicas(c.get(), 10s)) << proxy.log_tail();
  EXPECT_EQ(query_value(c.get(), "SELECT count(*) FROM rt_log WHERE id >= 1000"), "1000");
}

TEST_F(Routing, LaggingReplicaStopsServingReadsAndReturns) {
  // One reader, so where reads go says only whether it qualifies (no tie-breaks between two).
  const std::string lagging = replica_ports()[0];
  Proxy proxy(split_settings({addr(lagging)}, "[routing]\nmax_replica_lag_ms = 300\n"));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  Conn writer = connect_direct();
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  on_replica(lagging, "SELECT pg_wal_replay_pause()");
  // Keep the writer advancing; reads must leave the paused replica for the writer.
  const auto paused_at = Clock::now();
  bool left = false;
  while (!left && Clock::now() < paused_at + 5s) {
    exec_ok(writer.get(), "UPDATE rt_items SET v = v + 1 WHERE id = 2");
    std::this_thread::sleep_for(20ms);
    left = port_of(c.get()) == primary_port();
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - paused_at).count();
  EXPECT_TRUE(left) << proxy.log_tail();
  std::printf(
      "reads left the paused replica after %lld ms (lag limit 300 ms, checks every "
      "100 ms)\n",
      static_cast<long long>(took));
  // And they stay off it while it lags.
  for (int i = 0; i < 20; ++i) {
    exec_ok(writer.get(), "UPDATE rt_items SET v = v + 1 WHERE id = 2");
    EXPECT_EQ(port_of(c.get()), primary_port());
  }
  on_replica(lagging, "SELECT pg_wal_replay_resume()");
  EXPECT_TRUE(wait_reads_on(c.get(), lagging, 5s)) << proxy.log_tail();
}

// Region preference and F 39: the local region's replica serves reads while healthy; stopped,
// the other region's takes over with at most one failed read per client; restarted, it rejoins.
TEST_F(Routing, StoppedReplicaFailsOverToTheOtherRegionAndRejoins) {
  if (skip_heavy()) {
    GTEST_SKIP() << "PGLANE_SKIP_HEAVY";
  }
  const auto r = replica_ports();
  Proxy proxy(two_regions());
  START_PROXY(proxy);
  constexpr int kClients = 4;
  std::vector<Conn> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_ok(proxy.conninfo()));
  }
  ASSERT_TRUE(wait_reads_on_replicas(clients[0].get())) << proxy.log_tail();
  // Both replicas up: the local one serves.
  wait_reads_on(clients[0].get(), r[0], 10s);
  for (auto& c : clients) {
    EXPECT_EQ(port_of(c.get()), r[0]);
  }
  ASSERT_EQ(pg_ctl_replica(1, "-m immediate stop"), 0);
  std::vector<int> failures(kClients, 0);
  for (int round = 0; round < 30; ++round) {
    for (int i = 0; i < kClients; ++i) {
      Result res{PQexec(clients[i].get(), "SELECT inet_server_port()")};
      if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
        ++failures[i];
        continue;
      }
      EXPECT_NE(PQgetvalue(res.get(), 0, 0), r[0]);
    }
  }
  int total_failures = 0;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_LE(failures[i], 1) << "client " << i;
    total_failures += failures[i];
  }
  std::printf("replica stopped: %d failed reads over %d clients x 30 reads\n", total_failures,
              kClients);
  EXPECT_EQ(port_of(clients[0].get()), r[1]) << "the far region's replica serves";
  ASSERT_EQ(pg_ctl_replica(1, "-W start"), 0);
  EXPECT_TRUE(wait_reads_on(clients[0].get(), r[0], 20s)) << "the local replica did not rejoin\n"
                                                          << proxy.log_tail();
}

// A read whose replica dies before any answer reached the client is run again elsewhere.
TEST_F(Routing, ReadInterruptedByReplicaDeathIsRetriedOnAnotherNode) {
  if (skip_heavy()) {
    GTEST_SKIP() << "PGLANE_SKIP_HEAVY";
  }
  const auto r = replica_ports();
  Proxy proxy(two_regions());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  wait_reads_on(c.get(), r[0], 10s);
  ASSERT_EQ(port_of(c.get()), r[0]);
  std::thread killer([] {
    std::this_thread::sleep_for(400ms);
    pg_ctl_replica(1, "-m immediate stop");
  });
  Result res{PQexec(c.get(), "SELECT pg_sleep(1.5), inet_server_port()")};
  killer.join();
  EXPECT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  if (PQresultStatus(res.get()) == PGRES_TUPLES_OK) {
    EXPECT_EQ(PQgetvalue(res.get(), 0, 1), r[1]) << "retried on the far region's replica";
  }
  EXPECT_EQ(pg_ctl_replica(1, "-w -t 60 start"), 0);
  EXPECT_NE(proxy.log_tail(20000).find("lost mid-transaction"), std::string::npos)
      << proxy.log_tail();
}

TEST_F(Routing, AnalyticsHintsGoToTheAnalyticsEndpoint) {
  const auto r = replica_ports();
  // The second replica stands in for the analytics endpoint (a separate PostgreSQL instance).
  ProxySettings s =
      split_settings({addr(r[0])}, "[analytics]\nendpoint = \"" + addr(r[1]) +
                                       "\"\nuser = \"pglane_app\"\npassword_file = \"" +
                                       sandbox_dir() + "/backend_password\"\n");
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  EXPECT_EQ(port_of(c.get()), r[0]);
  EXPECT_EQ(port_of(c.get(), "/* pglane: route=analytics */ SELECT inet_server_port()"), r[1]);
  exec_ok(c.get(), "SET pglane.route = analytics");
  EXPECT_EQ(port_of(c.get()), r[1]);
  EXPECT_EQ(port_of(c.get(),
                    "UPDATE rt_items SET v = v + 1 WHERE id = 3 RETURNING "
                    "inet_server_port()"),
            primary_port());
  exec_ok(c.get(), "SET pglane.route = writer");
  EXPECT_EQ(port_of(c.get()), primary_port());
  exec_ok(c.get(), "SET pglane.route = default");
  // (a read right after the UPDATE above may still wait for replay: read-your-writes)
  EXPECT_TRUE(wait_reads_on_replicas(c.get(), 10s));
}

TEST_F(Routing, CountersAndEndpointHealthAreLoggedOnSigusr1) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  for (int i = 0; i < 5; ++i) {
    port_of(c.get());
  }
  exec_ok(c.get(), "UPDATE rt_items SET v = v + 1 WHERE id = 1");
  ASSERT_EQ(kill(proxy.pid(), SIGUSR1), 0);
  std::string log;
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    log = proxy.log_tail(20000);
    if (log.find("replica 127.0.0.1:" + replica_ports()[1]) != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  auto counter = [&](const std::string& name) {
    size_t at = log.rfind(" " + name + "=");
    return at == std::string::npos ? -1 : std::atol(log.c_str() + at + name.size() + 2);
  };
  EXPECT_GE(counter("reads_local"), 5) << log;
  EXPECT_GE(counter("writes"), 1) << log;
  EXPECT_GE(counter("fast"), 2) << log;  // repeats of the same text are remembered
  EXPECT_NE(log.find("writer 127.0.0.1:" + primary_port()), std::string::npos) << log;
  EXPECT_NE(log.find("up=1 recovery=1"), std::string::npos) << log;
}

// The role a server reports wins over the config: a "reader" that is really the primary
// serves no reads; it is the writer.
TEST_F(Routing, RoleReportedByTheServerWinsOverTheConfig) {
  Proxy proxy(split_settings({addr(primary_port()), addr(replica_ports()[0])}));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(port_of(c.get()), replica_ports()[0]);
  }
  EXPECT_NE(proxy.log_tail(20000).find("writer is 127.0.0.1:" + primary_port()), std::string::npos)
      << proxy.log_tail();
}

// routing.no_replica = "error": with no replica able to serve, a read fails with 57P03 and the
// session goes on; writes are unaffected.
TEST_F(Routing, NoReplicaCanBeAnErrorInsteadOfTheWriter) {
  // Nothing listens on the reader's port, so it never passes a check.
  Proxy proxy(split_settings({"127.0.0.1:1"}, "[routing]\nno_replica = \"error\"\n"));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  Result r{PQexec(c.get(), "SELECT 1")};
  EXPECT_EQ(sqlstate(r.get()), "57P03") << PQerrorMessage(c.get());
  EXPECT_EQ(port_of(c.get(),
                    "UPDATE rt_items SET v = v WHERE id = 1 RETURNING "
                    "inet_server_port()"),
            primary_port());
  // Right after its own write the client's read is served by the writer (read-your-writes
  // needs no replica), error mode or not.
  EXPECT_EQ(port_of(c.get()), primary_port());
}

// Function volatility comes from the server's pg_proc and is re-read on SIGHUP.
TEST_F(Routing, FunctionVolatilityIsReadFromTheServerAndReloadedOnSighup) {
  Conn d = connect_direct();
  exec_ok(d.get(), "DROP FUNCTION IF EXISTS rt_later()");
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();  // catalog loaded
  exec_ok(d.get(), "CREATE FUNCTION rt_later() RETURNS int LANGUAGE sql STABLE AS $$ SELECT 1 $$");
  // Wait for the replicas to have it, then: unknown to pglane, so the writer.
  wait_function_replicated("rt_later");
  EXPECT_EQ(port_of(c.get(), "SELECT rt_later(), inet_server_port()"), "1");
  Result before{PQexec(c.get(), "SELECT inet_server_port(), rt_later()")};
  ASSERT_EQ(PQresultStatus(before.get()), PGRES_TUPLES_OK);
  EXPECT_EQ(PQgetvalue(before.get(), 0, 0), primary_port());
  ASSERT_EQ(kill(proxy.pid(), SIGHUP), 0);
  bool on_replica = false;
  const auto deadline = Clock::now() + 10s;
  while (!on_replica && Clock::now() < deadline) {
    Result r{PQexec(c.get(), "SELECT inet_server_port(), rt_later()")};
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    on_replica = std::string(PQgetvalue(r.get(), 0, 0)) != primary_port();
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(on_replica) << "a stable function should be readable on replicas after reload";
}

// Found in review: units that end without a Sync must not wait for one.
TEST_F(Routing, CopyFromStdinAndFunctionCallsRunOnTheWriter) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  Result copy{PQexec(c.get(), "COPY rt_log FROM STDIN")};
  ASSERT_EQ(PQresultStatus(copy.get()), PGRES_COPY_IN) << PQerrorMessage(c.get());
  const std::string rows = "5001\tcopied\n5002\tcopied\n";
  ASSERT_EQ(PQputCopyData(c.get(), rows.data(), static_cast<int>(rows.size())), 1);
  ASSERT_EQ(PQputCopyEnd(c.get(), nullptr), 1);
  Result done{PQgetResult(c.get())};
  EXPECT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
  while (Result more{PQgetResult(c.get())}) {
  }
  // libpq's large-object calls use the FunctionCall message, after a catalog lookup (a read).
  Oid oid = lo_creat(c.get(), 0x20000 | 0x40000);  // INV_WRITE | INV_READ
  EXPECT_NE(oid, 0u) << PQerrorMessage(c.get());
  EXPECT_EQ(query_value(c.get(), "SELECT count(*) FROM rt_log WHERE note = 'copied'"), "2");
}

// TESTING.md 26: a temporary table shadowing a real one is read on the session that owns it.
TEST_F(Routing, TemporaryTableShadowingARealTableIsReadWhereItLives) {
  Proxy proxy(both_replicas());
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_TRUE(wait_reads_on_replicas(c.get())) << proxy.log_tail();
  exec_ok(c.get(), "CREATE TEMP TABLE rt_items (id int, v int)");
  exec_ok(c.get(), "INSERT INTO rt_items VALUES (1, -1)");
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(query_value(c.get(), "SELECT v FROM rt_items WHERE id = 1"), "-1");
  }
}

}  // namespace
}  // namespace pglane::itest
