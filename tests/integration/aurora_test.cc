// The aurora topology source on the sandbox's Aurora stand-in (scripts/aurora-standin.sql,
// ../shared/TESTING.md F37, F39): no function Aurora refuses is ever called, read-your-writes
// and lag come from aurora_replica_status(), instances join and leave while pglane runs, and
// with a Global Database writes follow the writer to another region while reads stay home.
// Kill-and-promote, a commit in flight and a hung writer run with this source in
// failover_test.cc.
#include <sstream>

#include <gtest/gtest.h>

#include "tests/integration/failover_util.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

// The instance a read through pglane ran on.
std::string read_served_by(Conn& c) {
  return query_value(c.get(), "SELECT pg_catalog.aurora_db_instance_identifier()");
}

// Waits until pglane routes plain reads to `instance` (or `timeout` passes).
bool reads_reach(const Proxy& proxy, const std::string& instance,
                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    Conn c = connect(proxy.conninfo());
    for (int i = 0; i < 10 && PQstatus(c.get()) == CONNECTION_OK; ++i) {
      if (read_served_by(c) == instance) {
        return true;
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

ProxySettings aurora_settings(const ScratchCluster& cl) {
  ProxySettings s = failover_settings(cl, true);
  s.extra_toml += "[routing]\nmax_replica_lag_ms = 500\n";
  return s;
}

// The stand-in refuses what Aurora refuses, and pglane's probes never trip over it.
TEST(Aurora, TheStandInRefusesWalFunctionsAndPglaneNeverCallsThem) {
  ScratchCluster cl(1, "--aurora=local");
  ASSERT_TRUE(cl.ok()) << cl.error();
  {
    Conn su = superuser(cl, 1);
    Result r = exec(su.get(), "SELECT pg_catalog.pg_last_wal_replay_lsn()");
    EXPECT_EQ(sqlstate(r.get()), "0A000");
    EXPECT_NE(std::string(PQresultErrorMessage(r.get()))
                  .find("Function pg_last_wal_replay_lsn() is currently not supported for Aurora"),
              std::string::npos);
    Conn w = superuser(cl, 0);
    Result r2 = exec(w.get(), "SELECT pg_current_wal_insert_lsn()");
    EXPECT_EQ(sqlstate(r2.get()), "55000");
    EXPECT_EQ(query_value(w.get(),
                          "SELECT string_agg(server_id || ':' || (session_id = "
                          "'MASTER_SESSION_ID'), ',' ORDER BY server_id) FROM "
                          "aurora_replica_status()"),
              "instance-1:true,instance-2:false");
  }
  Proxy proxy(aurora_settings(cl));
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "writer is 127.0.0.1:" + cl.port(0), 5s)) << proxy.log_tail();
  ASSERT_TRUE(reads_reach(proxy, "instance-2", 5s)) << proxy.log_tail();
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "CREATE TABLE au_t (id int)");
  exec_ok(c.get(), "INSERT INTO au_t VALUES (1)");
  EXPECT_EQ(query_value(c.get(), "SELECT count(*) FROM au_t"), "1");
  std::this_thread::sleep_for(1500ms);  // a few probe rounds
  const std::string log = proxy.log_tail(1000000);
  EXPECT_EQ(log.find("health check of"), std::string::npos) << log;
  EXPECT_EQ(log.find("not supported for Aurora"), std::string::npos) << log;
  EXPECT_EQ(log.find("wal_level"), std::string::npos) << log;
  // Nor did any server log an error for pglane's connections (its probes log in as pglane_app;
  // the superuser's are the test's own).
  for (int i = 0; i < cl.instances(); ++i) {
    std::istringstream lines(read_file(cl.log_file(i)));
    for (std::string line; std::getline(lines, line);) {
      EXPECT_FALSE(line.find("pglane_app@") != std::string::npos &&
                   line.find("ERROR") != std::string::npos)
          << line;
    }
  }
}

// F37 with Aurora's positions: with replay paused on the only replica, a client's read after its
// own write goes to the writer (durable_lsn after the commit > the replica's current_read_lsn);
// once the replica is far enough behind, other clients' reads leave it too (lag from
// aurora_replica_status() and pglane's own samples); when replay resumes, reads come back.
TEST(Aurora, ReadYourWritesAndLagComeFromAuroraReplicaStatus) {
  ScratchCluster cl(1, "--aurora=local");
  ASSERT_TRUE(cl.ok()) << cl.error();
  create_writes_table(cl);
  Proxy proxy(aurora_settings(cl));
  START_PROXY(proxy);
  ASSERT_TRUE(reads_reach(proxy, "instance-2", 5s)) << proxy.log_tail();
  Conn replica = superuser(cl, 1);
  exec_ok(replica.get(), "SELECT pg_wal_replay_pause()");
  struct Resume {
    Conn& c;
    ~Resume() { exec(c.get(), "SELECT pg_wal_replay_resume()"); }
  } resume{replica};

  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "INSERT INTO fo_writes VALUES (1)");
  EXPECT_EQ(query_value(c.get(), "SELECT count(*) FROM fo_writes"), "1");
  EXPECT_EQ(read_served_by(c), "instance-1");

  // Another client, no write of its own: the replica serves it until it lags too far.
  Conn other = connect_ok(proxy.conninfo());
  bool left_replica = false;
  for (int i = 0; i < 60 && !left_replica; ++i) {
    exec_ok(c.get(), "INSERT INTO fo_writes VALUES (" + std::to_string(100 + i) + ")");
    left_replica = read_served_by(other) == "instance-1";
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(left_replica) << "a replica paused for 6 s still served reads\n" << proxy.log_tail();
  exec_ok(replica.get(), "SELECT pg_wal_replay_resume()");
  EXPECT_TRUE(reads_reach(proxy, "instance-2", 5s)) << proxy.log_tail();
}

// Instances added and removed while pglane runs: a new replica is listed by
// aurora_replica_status() and starts serving reads; a replica taken away (no longer listed by the
// writer) stops serving them, and comes back when it is listed again.
TEST(Aurora, InstancesAddedAndRemovedWhileRunningArePickedUp) {
  ScratchCluster cl(1, "--aurora=local");
  ASSERT_TRUE(cl.ok()) << cl.error();
  // The map names an instance that does not exist yet, as an operator would before adding it.
  ProxySettings s = aurora_settings(cl);
  s.regions_toml +=
      "instance-3 = \"127.0.0.1:" + std::to_string(std::stoi(cl.port(0)) + 2) + "\"\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  ASSERT_TRUE(reads_reach(proxy, "instance-2", 5s)) << proxy.log_tail();

  const int added = cl.add_replica();
  ASSERT_EQ(added, 2);
  ASSERT_EQ(cl.port(2), std::to_string(std::stoi(cl.port(0)) + 2))
      << "the new replica got another port than the map expects";
  ASSERT_TRUE(reads_reach(proxy, "instance-3", 10s)) << proxy.log_tail();

  ASSERT_EQ(cl.pg_ctl(1, "-m fast -w stop"), 0);
  ASSERT_TRUE(wait_log(
      proxy, "aurora instance instance-2 (127.0.0.1:" + cl.port(1) + ") is no longer listed", 5s))
      << proxy.log_tail();
  Conn c = connect_ok(proxy.conninfo());
  for (int i = 0; i < 20; ++i) {
    EXPECT_NE(read_served_by(c), "instance-2");
  }
  ASSERT_EQ(cl.pg_ctl(1, "-w -t 60 start"), 0);
  ASSERT_TRUE(wait_log(
      proxy, "aurora instance instance-2 (127.0.0.1:" + cl.port(1) + ") is listed again", 10s))
      << proxy.log_tail();
  EXPECT_TRUE(reads_reach(proxy, "instance-2", 10s)) << proxy.log_tail();
}

// F39, Global Database: the writer moves to the other region (the home region's writer stops,
// the other region's replica is promoted, the home replica follows it). Writes follow the writer
// wherever it is; reads stay on the home region's replica.
TEST(Aurora, GlobalDatabaseWritesFollowTheWriterAcrossRegionsAndReadsStayHome) {
  ScratchCluster cl(2, "--aurora=eu,eu,us");  // instance-1 eu (writer), 2 eu, 3 us
  ASSERT_TRUE(cl.ok()) << cl.error();
  create_writes_table(cl);
  ProxySettings s = failover_settings(cl, true);
  auto region = [&](const std::string& name, std::vector<int> instances) {
    std::string t = "[[regions]]\nname = \"" + name +
                    "\"\nsource = \"aurora\"\nglobal_database = true\n"
                    "cluster_endpoint = \"127.0.0.1:" +
                    cl.port(instances[0]) + "\"\n[regions.instances]\n";
    for (int i : instances) {
      t += "instance-" + std::to_string(i + 1) + " = \"127.0.0.1:" + cl.port(i) + "\"\n";
    }
    return t;
  };
  s.regions_toml = region("eu", {0, 1}) + region("us", {2});
  Proxy proxy(s);
  START_PROXY(proxy);
  ASSERT_TRUE(wait_log(proxy, "writer is 127.0.0.1:" + cl.port(0) + " (eu", 5s))
      << proxy.log_tail();
  ASSERT_TRUE(reads_reach(proxy, "instance-2", 5s)) << proxy.log_tail();
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "INSERT INTO fo_writes VALUES (1)");

  // A planned global failover (switchover): the home writer shuts down cleanly, which sends
  // every replica all of its WAL; the other region's replica is promoted and the home replica
  // follows it.
  ASSERT_EQ(cl.pg_ctl(0, "-m fast -w stop"), 0);
  ASSERT_EQ(cl.pg_ctl(2, "-w promote"), 0);
  {
    Conn home = superuser(cl, 1);
    exec_ok(home.get(), "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=" + cl.port(2) +
                            " user=replicator password=" + cl.env("PG_REPLICATION_PASSWORD") +
                            " application_name=instance-2 sslmode=require'");
    exec_ok(home.get(), "SELECT pg_reload_conf()");
  }
  ASSERT_TRUE(wait_log(proxy, "writer is 127.0.0.1:" + cl.port(2) + " (us", 10s))
      << proxy.log_tail();
  Conn after = connect_ok(proxy.conninfo());
  ASSERT_TRUE(eventually_ok(after, "INSERT INTO fo_writes VALUES (2)")) << proxy.log_tail();
  Conn us = superuser(cl, 2);
  EXPECT_EQ(query_value(us.get(), "SELECT count(*) FROM fo_writes"), "2");
  // Reads stay in the home region, on the replica now following the other region's writer.
  EXPECT_TRUE(reads_reach(proxy, "instance-2", 10s)) << proxy.log_tail();
  Conn reader = connect_ok(proxy.conninfo());
  int home = 0;
  for (int i = 0; i < 20; ++i) {
    home += read_served_by(reader) == "instance-2" ? 1 : 0;
  }
  EXPECT_EQ(home, 20) << proxy.log_tail();
}

}  // namespace
}  // namespace pglane::itest
