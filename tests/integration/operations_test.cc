// Operations: the admin console (every command, stats-only users refused the ones that act) and
// the /metrics endpoint checked by promtool.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* kMonitorPassword = "monitor-secret-1";

ProxySettings console_settings() {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.users_file = users_file_with({scram_user_line("monitor", kMonitorPassword),
                                  scram_user_line("stranger", kMonitorPassword)});
  s.extra_toml = "[admin]\nusers = [\"" + env("APP_USER") + "\"]\nstats_users = [\"monitor\"]\n";
  return s;
}

std::string console_conninfo(const Proxy& p, const std::string& user = "",
                             const std::string& password = "") {
  std::string ci = p.conninfo("dbname=pglane");
  if (!user.empty()) {
    ci += " user=" + user + " password=" + password;
  }
  return ci;
}

// A console result as rows of column name -> value.
std::vector<std::map<std::string, std::string>> show(PGconn* c, const std::string& cmd) {
  Result r = exec(c, cmd);
  std::vector<std::map<std::string, std::string>> rows;
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << cmd << ": " << PQerrorMessage(c);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return rows;
  }
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::map<std::string, std::string> row;
    for (int j = 0; j < PQnfields(r.get()); ++j) {
      row[PQfname(r.get(), j)] = PQgetvalue(r.get(), i, j);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

const std::map<std::string, std::string>* find_row(
    const std::vector<std::map<std::string, std::string>>& rows, const std::string& key,
    const std::string& value) {
  for (const auto& r : rows) {
    auto it = r.find(key);
    if (it != r.end() && it->second == value) {
      return &r;
    }
  }
  return nullptr;
}

TEST(Operations, ConsoleShowsEverything) {
  Proxy proxy(console_settings());
  START_PROXY(proxy);
  Conn app = connect_ok(proxy.conninfo("application_name=console_test"));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(query_value(app.get(), "SELECT 1"), "1");
  }
  Conn admin = connect_ok(console_conninfo(proxy));

  EXPECT_GE(show(admin.get(), "SHOW HELP").size(), 10u);
  auto version = show(admin.get(), "show version;");
  ASSERT_EQ(version.size(), 1u);
  EXPECT_NE(version[0]["version"].find("pglane"), std::string::npos);

  auto config = show(admin.get(), "SHOW CONFIG");
  const auto* pw = find_row(config, "key", "backend.password");
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(pw->at("value"), "********");  // never a secret
  ASSERT_NE(find_row(config, "key", "pool.mode"), nullptr);
  EXPECT_EQ(find_row(config, "key", "pool.mode")->at("value"), "transaction");

  auto pools = show(admin.get(), "SHOW POOLS");
  const auto* pool = find_row(pools, "database", env("APP_DB"));
  ASSERT_NE(pool, nullptr);
  EXPECT_GE(std::stoi(pool->at("server_open")), 1);
  EXPECT_EQ(pool->at("paused"), "no");

  auto clients = show(admin.get(), "SHOW CLIENTS");
  const auto* me = find_row(clients, "application_name", "console_test");
  ASSERT_NE(me, nullptr);
  EXPECT_EQ(me->at("user"), env("APP_USER"));
  EXPECT_EQ(me->at("state"), "idle");  // transaction pooling: no server between transactions
  EXPECT_EQ(me->at("server"), "");
  EXPECT_EQ(me->at("transactions"), "5");
  EXPECT_NE(find_row(clients, "database", "pglane"), nullptr);  // the console itself

  auto servers = show(admin.get(), "SHOW SERVERS");
  const auto* idle = find_row(servers, "state", "idle");
  ASSERT_NE(idle, nullptr);
  EXPECT_EQ(idle->at("database"), env("APP_DB"));
  EXPECT_GT(std::stoi(idle->at("server_pid")), 0);

  auto stats = show(admin.get(), "SHOW STATS");
  const auto* st = find_row(stats, "database", env("APP_DB"));
  ASSERT_NE(st, nullptr);
  EXPECT_GE(std::stoi(st->at("transactions")), 5);
  EXPECT_GE(std::stoi(st->at("queries")), 5);
  EXPECT_GT(std::stoll(st->at("bytes_received")), 0);
  EXPECT_GT(std::stoll(st->at("bytes_sent")), 0);
  EXPECT_GT(std::stod(st->at("xact_p99_ms")), 0.0);

  auto routes = show(admin.get(), "SHOW ROUTES");
  EXPECT_NE(find_row(routes, "route", "writes"), nullptr);
  EXPECT_NE(find_row(routes, "route", "reads_local_replica"), nullptr);

  auto health = show(admin.get(), "SHOW HEALTH");
  const auto* writer = find_row(health, "role", "writer");
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->at("endpoint"), "127.0.0.1:" + env("PG_PRIMARY_PORT"));
  EXPECT_EQ(writer->at("up"), "yes");

  // Unknown commands and the extended protocol get errors, and the console goes on.
  Result bad = exec(admin.get(), "SHOW NONSENSE");
  EXPECT_EQ(sqlstate(bad.get()), "42601");
  Result ext =
      Result(PQexecParams(admin.get(), "SHOW POOLS", 0, nullptr, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(sqlstate(ext.get()), "0A000");
  EXPECT_EQ(show(admin.get(), "SHOW VERSION").size(), 1u);
}

TEST(Operations, ConsoleActsPauseResumeKillReloadLogLevel) {
  Proxy proxy(console_settings());
  START_PROXY(proxy);
  Conn app = connect_ok(proxy.conninfo("application_name=victim"));
  EXPECT_EQ(query_value(app.get(), "SELECT 1"), "1");
  Conn admin = connect_ok(console_conninfo(proxy));

  // PAUSE holds the next transaction until RESUME.
  exec_ok(admin.get(), "PAUSE " + env("APP_DB"));
  EXPECT_EQ(find_row(show(admin.get(), "SHOW POOLS"), "database", env("APP_DB"))->at("paused"),
            "yes");
  std::atomic<bool> done{false};
  std::thread held([&] {
    EXPECT_EQ(query_value(app.get(), "SELECT 2"), "2");
    done = true;
  });
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(done.load()) << "a paused database ran a transaction";
  auto clients = show(admin.get(), "SHOW CLIENTS");
  auto waiting = find_row(clients, "application_name", "victim");
  ASSERT_NE(waiting, nullptr);
  EXPECT_EQ(waiting->at("state"), "waiting");
  exec_ok(admin.get(), "RESUME " + env("APP_DB"));
  held.join();
  EXPECT_TRUE(done.load());
  Result again = exec(admin.get(), "RESUME");
  EXPECT_EQ(sqlstate(again.get()), "55000");  // nothing is paused

  // KILL closes the client with 57P01.
  clients = show(admin.get(), "SHOW CLIENTS");
  auto victim = find_row(clients, "application_name", "victim");
  ASSERT_NE(victim, nullptr);
  exec_ok(admin.get(), "KILL " + victim->at("id"));
  std::this_thread::sleep_for(100ms);
  Result dead = exec(app.get(), "SELECT 3");
  EXPECT_NE(PQresultStatus(dead.get()), PGRES_TUPLES_OK);
  EXPECT_NE(std::string(PQerrorMessage(app.get())).find("administrator command"), std::string::npos)
      << PQerrorMessage(app.get());
  EXPECT_EQ(find_row(show(admin.get(), "SHOW CLIENTS"), "application_name", "victim"), nullptr);
  Result nobody = exec(admin.get(), "KILL 999999");
  EXPECT_EQ(sqlstate(nobody.get()), "42704");

  exec_ok(admin.get(), "RELOAD");
  EXPECT_NE(proxy.log_tail().find(": 0 keys changed"), std::string::npos) << proxy.log_tail();
  exec_ok(admin.get(), "SET log_level = debug");
  EXPECT_NE(proxy.log_tail().find("log_level set to debug"), std::string::npos);
  Result badlevel = exec(admin.get(), "SET log_level = loud");
  EXPECT_EQ(sqlstate(badlevel.get()), "22023");
}

// ../shared/TESTING.md B17: a stats-only user can change nothing.
TEST(Operations, StatsOnlyUsersMayOnlyShow) {
  Proxy proxy(console_settings());
  START_PROXY(proxy);
  Conn monitor = connect_ok(console_conninfo(proxy, "monitor", kMonitorPassword));
  EXPECT_EQ(show(monitor.get(), "SHOW VERSION").size(), 1u);
  for (const char* cmd : {"RELOAD", "PAUSE", "PAUSE app", "RESUME", "KILL 1", "SHUTDOWN",
                          "SHUTDOWN WAIT", "SET log_level = debug"}) {
    Result r = exec(monitor.get(), cmd);
    EXPECT_EQ(sqlstate(r.get()), "42501") << cmd;
  }
  // Nothing happened: still running, nothing paused.
  EXPECT_TRUE(show(monitor.get(), "SHOW POOLS").empty() ||
              find_row(show(monitor.get(), "SHOW POOLS"), "paused", "yes") == nullptr);
  Conn app = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(app.get(), "SELECT 1"), "1");

  // A user in neither list is refused the console at login.
  Conn stranger = connect(console_conninfo(proxy, "stranger", kMonitorPassword));
  EXPECT_NE(PQstatus(stranger.get()), CONNECTION_OK);
  EXPECT_EQ(sqlstate_from_message(PQerrorMessage(stranger.get())), "28000")
      << PQerrorMessage(stranger.get());
}

// A GET over plain HTTP/1.1; the body, or "" on failure. `status` gets the status code.
std::string http_get(int port, const std::string& path, int* status) {
  RawClient c;
  if (!c.connect(port)) {
    return "";
  }
  c.send("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  std::string all;
  const auto deadline = Clock::now() + 5s;
  while (!c.closed() && Clock::now() < deadline) {
    all += c.read_some(200ms);
  }
  auto head_end = all.find("\r\n\r\n");
  if (head_end == std::string::npos || all.size() < 12) {
    return "";
  }
  *status = std::stoi(all.substr(9, 3));
  return all.substr(head_end + 4);
}

TEST(Operations, MetricsEndpointPassesPromtool) {
  const std::string promtool = find_on_path("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  }
  ProxySettings s = console_settings();
  const int mport = any_free_port();
  s.extra_toml += "metrics_listen = \"127.0.0.1:" + std::to_string(mport) + "\"\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn app = connect_ok(proxy.conninfo());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(query_value(app.get(), "SELECT 1"), "1");
  }
  int status = 0;
  std::string body = http_get(mport, "/metrics", &status);
  ASSERT_EQ(status, 200) << body;
  for (const char* want :
       {"pglane_clients_active ", "pglane_transaction_duration_seconds_bucket{route=\"writer\"",
        "pglane_pool_wait_seconds_count ", "pglane_endpoint_up{", "pglane_transactions_total{",
        "pglane_pool_server_connections{", "pglane_server_connects_total "}) {
    EXPECT_NE(body.find(want), std::string::npos) << want << "\n" << body.substr(0, 3000);
  }
  const std::string file = sandbox_dir() + "/metrics.txt";
  std::ofstream(file) << body;
  RunResult check = run_program({"/bin/sh", "-c", promtool + " check metrics < " + file}, 30s);
  EXPECT_EQ(check.status, 0) << check.output;

  std::string ok = http_get(mport, "/healthz", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(ok, "ok\n");
  http_get(mport, "/nothing", &status);
  EXPECT_EQ(status, 404);
}

}  // namespace
}  // namespace pglane::itest
