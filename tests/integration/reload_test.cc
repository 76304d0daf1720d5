// Live reload (SIGHUP / RELOAD): a bad file changes nothing; replicas added and removed under
// pgbench traffic with no failed transaction; changed keys are logged with how they apply.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Rewrites the `readers = [...]` line of the proxy's config.
void set_readers(const Proxy& proxy, const std::vector<std::string>& ports) {
  std::string cfg = read_file(proxy.config_path());
  auto at = cfg.find("readers = [");
  ASSERT_NE(at, std::string::npos) << cfg;
  auto end = cfg.find('\n', at);
  std::string line = "readers = [";
  for (size_t i = 0; i < ports.size(); ++i) {
    line += (i ? ", " : "") + std::string("\"127.0.0.1:") + ports[i] + "\"";
  }
  line += "]";
  cfg.replace(at, end - at, line);
  std::ofstream(proxy.config_path()) << cfg;
}

// Reads served by an endpoint, from the console's SHOW HEALTH.
long reads_of(PGconn* admin, const std::string& port) {
  Result r = exec(admin, "SHOW HEALTH");
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    if (std::string(PQgetvalue(r.get(), i, 0)) == "127.0.0.1:" + port) {
      return std::stol(PQgetvalue(r.get(), i, PQfnumber(r.get(), "reads")));
    }
  }
  return -1;
}

TEST(Reload, ReplicasAddedAndRemovedUnderPgbenchWithNoFailedTransaction) {
  const std::string pgbench = find_on_path("pgbench");
  if (pgbench.empty()) {
    GTEST_SKIP() << "pgbench is not installed";
  }
  const auto r = replica_ports();
  ASSERT_GE(r.size(), 2u);
  ProxySettings s;
  s.pool_mode = "transaction";
  s.readers = {"127.0.0.1:" + r[0]};
  // The reads and the writes share reload_kv, written every 20 ms: its floor (read_your_writes =
  // "table") would keep its reads on the writer, since replicas' replay positions are known
  // only every health interval. This test is about where reloads send reads, so only the
  // writing client's own reads are held back.
  s.extra_toml =
      "[admin]\nusers = [\"" + env("APP_USER") + "\"]\n[routing]\nread_your_writes = \"session\"\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn admin = connect_ok(proxy.conninfo("dbname=pglane"));
  {
    Conn setup = connect_ok(proxy.conninfo());
    exec_ok(setup.get(),
            "DROP TABLE IF EXISTS reload_kv; CREATE TABLE reload_kv (k int PRIMARY "
            "KEY, v int); INSERT INTO reload_kv SELECT g, g FROM generate_series(1, "
            "100) g");
  }
  const std::string dir = sandbox_dir();
  std::ofstream(dir + "/reload_read.sql")
      << "\\set k random(1, 100)\nSELECT v FROM reload_kv WHERE k = :k;\n";
  // Every replica has the table before reads start (a new connection has no read-your-writes
  // floor from the setup's: that is the freshness-floor issue's subject, not this test's).
  for (const std::string& port : r) {
    Conn d = connect_direct_port(port);
    ASSERT_TRUE(wait_for(
        [&] { return query_value(d.get(), "SELECT to_regclass('reload_kv') IS NOT NULL") == "t"; },
        10s));
  }
  // Reads through pgbench (read-only, so that read-your-writes keeps no client on the writer),
  // writes through a client of their own.
  RunResult bench;
  std::thread load([&] {
    bench = run_program({pgbench, "-n", "-c", "4", "-j", "2", "-T", "8", "-f",
                         dir + "/reload_read.sql", proxy.conninfo()},
                        60s);
  });
  std::atomic<bool> stop_writes{false};
  std::atomic<int> writes_ok{0};
  std::atomic<int> writes_failed{0};
  std::thread writer([&] {
    Conn c = connect_ok(proxy.conninfo());
    for (int n = 0; !stop_writes; ++n) {
      Result w =
          exec(c.get(), "UPDATE reload_kv SET v = v + 1 WHERE k = " + std::to_string(n % 100 + 1));
      (PQresultStatus(w.get()) == PGRES_COMMAND_OK ? writes_ok : writes_failed)++;
      std::this_thread::sleep_for(20ms);
    }
  });
  std::this_thread::sleep_for(1500ms);
  // Add the second replica.
  set_readers(proxy, {r[0], r[1]});
  ASSERT_EQ(kill(proxy.pid(), SIGHUP), 0);
  // Up once it passes its checks (reads prefer the replica with the fewest transactions in flight,
  // then the shortest round trip, so it may serve none while the first one is there).
  auto up = [&](const std::string& port) {
    Result h = exec(admin.get(), "SHOW HEALTH");
    for (int i = 0; i < PQntuples(h.get()); ++i) {
      if (std::string(PQgetvalue(h.get(), i, 0)) == "127.0.0.1:" + port) {
        return std::string(PQgetvalue(h.get(), i, PQfnumber(h.get(), "up"))) == "yes";
      }
    }
    return false;
  };
  EXPECT_TRUE(wait_for([&] { return up(r[1]); }, 4s)) << "the added replica is not up\n"
                                                      << proxy.log_tail();
  const long second_before = reads_of(admin.get(), r[1]);
  // Remove the first one.
  set_readers(proxy, {r[1]});
  ASSERT_EQ(kill(proxy.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for(
      [&] {
        return read_file(proxy.log_path()).find("127.0.0.1:" + r[0] + " (local) removed") !=
               std::string::npos;
      },
      3s))
      << proxy.log_tail();
  std::this_thread::sleep_for(200ms);
  const long after_removal = reads_of(admin.get(), r[0]);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(reads_of(admin.get(), r[0]), after_removal) << "a removed replica still got reads";
  EXPECT_GT(reads_of(admin.get(), r[1]), second_before + 10) << "the added replica serves reads";
  load.join();
  stop_writes = true;
  writer.join();
  EXPECT_EQ(writes_failed.load(), 0);
  EXPECT_GT(writes_ok.load(), 50);
  EXPECT_EQ(bench.status, 0) << bench.output;
  EXPECT_NE(bench.output.find("number of failed transactions: 0 "), std::string::npos)
      << bench.output;
  const std::string log = read_file(proxy.log_path());
  EXPECT_NE(log.find("instance 127.0.0.1:" + r[1] + " (local) added"), std::string::npos) << log;
  EXPECT_NE(log.find("regions[0].readers"), std::string::npos) << log;
  Conn direct = connect_direct();
  exec_ok(direct.get(), "DROP TABLE reload_kv");
}

TEST(Reload, ABadFileChangesNothingAndSaysWhy) {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.extra_toml = "[admin]\nusers = [\"" + env("APP_USER") + "\"]\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn admin = connect_ok(proxy.conninfo("dbname=pglane"));
  const std::string good = read_file(proxy.config_path());
  std::string bad = good;
  bad.replace(bad.find("size = 20"), 9, "size = 0\nsise = 3");
  std::ofstream(proxy.config_path()) << bad;
  Result r = exec(admin.get(), "RELOAD");
  EXPECT_EQ(sqlstate(r.get()), "F0000");
  const std::string message = PQerrorMessage(admin.get());
  EXPECT_NE(message.find("pool.sise: unknown key (did you mean \"size\"?)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("pool.size"), std::string::npos) << message;
  EXPECT_NE(read_file(proxy.log_path()).find("reload failed, nothing changed"), std::string::npos);
  Result pool = exec(admin.get(), "SHOW CONFIG");
  bool still_20 = false;
  for (int i = 0; i < PQntuples(pool.get()); ++i) {
    still_20 |= std::string(PQgetvalue(pool.get(), i, 0)) == "pool.size" &&
                std::string(PQgetvalue(pool.get(), i, 1)) == "20";
  }
  EXPECT_TRUE(still_20);
  // A good file again: the changed key is logged with how it applies.
  std::string larger = good;
  larger.replace(larger.find("size = 20"), 9, "size = 30");
  std::ofstream(proxy.config_path()) << larger;
  exec_ok(admin.get(), "RELOAD");
  const std::string log = read_file(proxy.log_path());
  EXPECT_NE(log.find("pool.size: \"20\" -> \"30\": applied now"), std::string::npos) << log;
  Conn app = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(app.get(), "SELECT 1"), "1");
}

}  // namespace
}  // namespace pglane::itest
