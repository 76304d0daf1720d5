// Operations: the process's lifecycle under load: graceful shutdown (SIGTERM), online upgrade
// (SIGUSR2: a new process takes over the listening sockets), and systemd notifications with the
// watchdog, which a stuck worker silences.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// SIGTERM under load: transactions under way finish, idle clients get 57P01 between
// transactions, none is cut in the middle of one, and every acknowledged commit is there.
TEST(Lifecycle, SigtermUnderLoadBreaksNoTransaction) {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.shutdown_timeout_ms = 10000;
  Proxy proxy(s);
  START_PROXY(proxy);
  {
    Conn setup = connect_ok(proxy.conninfo());
    exec_ok(setup.get(),
            "DROP TABLE IF EXISTS shutdown_load; CREATE TABLE shutdown_load (client int, n int)");
  }
  constexpr int kClients = 8;
  std::atomic<int> committed{0};
  std::atomic<int> broken{0};
  std::atomic<int> refused_at_start{0};
  std::atomic<bool> stop{false};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int k = 0; k < kClients; ++k) {
    threads.emplace_back([&, k] {
      Conn c = connect(proxy.conninfo());
      if (PQstatus(c.get()) != CONNECTION_OK) {
        ++refused_at_start;
        return;
      }
      for (int n = 0; !stop; ++n) {
        Result b = exec(c.get(), "BEGIN");
        if (PQresultStatus(b.get()) != PGRES_COMMAND_OK) {
          // Between transactions: the shutdown closed this client (57P01) before it began.
          errors[k] = PQerrorMessage(c.get());
          return;
        }
        const char* steps[] = {"INSERT INTO shutdown_load VALUES ($k, $n)", "SELECT pg_sleep(0.02)",
                               "COMMIT"};
        for (const char* step : steps) {
          std::string sql = step;
          if (auto at = sql.find("$k"); at != std::string::npos) {
            sql.replace(at, 2, std::to_string(k));
          }
          if (auto at = sql.find("$n"); at != std::string::npos) {
            sql.replace(at, 2, std::to_string(n));
          }
          Result r = exec(c.get(), sql);
          ExecStatusType st = PQresultStatus(r.get());
          if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            ++broken;
            errors[k] = std::string(step) + ": " + PQerrorMessage(c.get());
            return;
          }
        }
        ++committed;
      }
    });
  }
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(kill(proxy.pid(), SIGTERM), 0);
  const auto t0 = Clock::now();
  int status = proxy.wait_exit(15s);
  const auto took = Clock::now() - t0;
  stop = true;
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(status, 0) << proxy.log_tail();
  EXPECT_LT(took, 5s) << "idle clients should not hold the shutdown";
  EXPECT_EQ(broken.load(), 0);
  EXPECT_EQ(refused_at_start.load(), 0);
  for (int k = 0; k < kClients; ++k) {
    EXPECT_TRUE(errors[k].find("administrator command") != std::string::npos ||
                errors[k].find("closed the connection") != std::string::npos)
        << "client " << k << ": " << errors[k];
  }
  Conn direct = connect_direct();
  EXPECT_EQ(query_value(direct.get(), "SELECT count(*) FROM shutdown_load"),
            std::to_string(committed.load()));
  EXPECT_GT(committed.load(), 20);
  exec_ok(direct.get(), "DROP TABLE shutdown_load");
}

// Session pooling holds a server per client for the whole session: SIGTERM still ends each
// client between transactions, not at the deadline, and lets an open transaction commit.
TEST(Lifecycle, SigtermUnderSessionPoolingWaitsForTheTransactionOnly) {
  ProxySettings s;
  s.pool_mode = "session";
  s.shutdown_timeout_ms = 10000;
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn idle = connect_ok(proxy.conninfo());
  Conn busy = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(idle.get(), "SELECT 1"), "1");
  exec_ok(busy.get(), "DROP TABLE IF EXISTS session_drain; CREATE TABLE session_drain (n int)");
  exec_ok(busy.get(), "BEGIN");
  exec_ok(busy.get(), "INSERT INTO session_drain VALUES (1)");
  ASSERT_EQ(kill(proxy.pid(), SIGTERM), 0);
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(800ms);
  exec_ok(busy.get(), "COMMIT");  // the transaction under way finishes
  const int status = proxy.wait_exit(8s);
  EXPECT_EQ(status, 0) << proxy.log_tail();
  EXPECT_LT(Clock::now() - t0, 3s) << "waited for the deadline instead of the transaction";
  for (PGconn* c : {idle.get(), busy.get()}) {
    Result r = exec(c, "SELECT 1");
    EXPECT_NE(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  }
  Conn direct = connect_direct();
  EXPECT_EQ(query_value(direct.get(), "SELECT count(*) FROM session_drain"), "1");
  exec_ok(direct.get(), "DROP TABLE session_drain");
}

// The new process's pid from the old one's log ("online upgrade: started the new pglane, pid N").
pid_t successor_pid(const Proxy& p) {
  const std::string log = read_file(p.log_path());
  const std::string marker = "started the new pglane, pid ";
  auto at = log.rfind(marker);
  return at == std::string::npos ? -1 : std::stoi(log.substr(at + marker.size()));
}

bool alive(pid_t pid) {
  return pid > 0 && kill(pid, 0) == 0;
}

// SIGUSR2 under a stream of new connections: the new process takes over the listening sockets
// and the old one drains; no connection is refused and every query is answered.
TEST(Lifecycle, OnlineUpgradeUnderLoadRefusesNoConnection) {
  ProxySettings s;
  s.pool_mode = "transaction";
  // With the metrics endpoint on: the successor binds it too (SO_REUSEPORT) while the old one
  // drains.
  s.extra_toml =
      "[admin]\nmetrics_listen = \"127.0.0.1:" + std::to_string(any_free_port()) + "\"\n";
  Proxy proxy(s);
  START_PROXY(proxy);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      while (!stop) {
        Conn c = connect(proxy.conninfo(), 5s);
        bool good = PQstatus(c.get()) == CONNECTION_OK;
        if (good) {
          Result r = exec(c.get(), "SELECT 1");
          good = PQresultStatus(r.get()) == PGRES_TUPLES_OK;
        }
        if (good) {
          ++ok;
        } else {
          ++failed;
          std::lock_guard lock(mu);
          if (first_error.empty()) {
            first_error = PQerrorMessage(c.get());
          }
        }
      }
    });
  }
  // Some traffic first (slow under sanitizers: wait for it rather than a fixed time).
  for (auto until = Clock::now() + 15s; ok.load() < 20 && Clock::now() < until;) {
    std::this_thread::sleep_for(20ms);
  }
  const int before = ok.load();
  ASSERT_EQ(kill(proxy.pid(), SIGUSR2), 0);
  // The old process exits once the new one serves and its own clients have left.
  const int status = proxy.wait_exit(20s);
  pid_t successor = successor_pid(proxy);
  // The successor alone serves from here.
  const int at_handover = ok.load();
  for (auto until = Clock::now() + 15s; ok.load() < at_handover + 20 && Clock::now() < until;) {
    std::this_thread::sleep_for(20ms);
  }
  stop = true;
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(status, 0) << read_file(proxy.log_path());
  ASSERT_TRUE(alive(successor)) << read_file(proxy.log_path());
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_GE(before, 20);
  EXPECT_GE(ok.load(), at_handover + 20) << "the new process served nothing";
  const std::string log = read_file(proxy.log_path());
  EXPECT_NE(log.find("took over 2 listening sockets"), std::string::npos) << log;
  // The successor serves alone now, then stops on SIGTERM like any pglane.
  Conn c = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(c.get(), "SELECT 1"), "1");
  c.reset();
  kill(successor, SIGTERM);
  for (int i = 0; i < 100 && alive(successor); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(alive(successor));
}

// A successor that cannot start (its config became invalid) leaves the old process serving.
TEST(Lifecycle, FailedUpgradeKeepsTheOldProcessServing) {
  Proxy proxy;
  START_PROXY(proxy);
  {
    std::string cfg = read_file(proxy.config_path());
    std::ofstream(proxy.config_path()) << cfg << "[proxy_typo]\n";
  }
  ASSERT_EQ(kill(proxy.pid(), SIGUSR2), 0);
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline &&
         read_file(proxy.log_path()).find("online upgrade failed") == std::string::npos) {
    std::this_thread::sleep_for(50ms);
  }
  const std::string log = read_file(proxy.log_path());
  EXPECT_NE(log.find("online upgrade failed: the new pglane"), std::string::npos) << log;
  EXPECT_NE(log.find("with status 2"), std::string::npos) << log;
  Conn c = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(c.get(), "SELECT 1"), "1");
}

// sd_notify: READY=1 and STATUS= at start, RELOADING=1 then READY=1 on SIGHUP, WATCHDOG=1
// while every worker turns, none while one is stuck (a test-only console hook blocks it).
TEST(Lifecycle, NotificationsAndAWatchdogAStuckWorkerSilences) {
  const std::string path = sandbox_dir() + "/notify-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct Msg {
    Clock::time_point at;
    std::string text;
  };
  std::mutex mu;
  std::vector<Msg> msgs;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    char buf[4096];
    while (!stop) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        std::lock_guard lock(mu);
        msgs.push_back({Clock::now(), std::string(buf, static_cast<size_t>(n))});
      }
    }
  });
  auto count = [&](const std::string& what, Clock::time_point from, Clock::time_point to) {
    std::lock_guard lock(mu);
    int n = 0;
    for (const auto& m : msgs) {
      n += m.text.find(what) != std::string::npos && m.at >= from && m.at < to;
    }
    return n;
  };
  ProxySettings s;
  s.pool_mode = "transaction";
  s.extra_toml = "[admin]\nusers = [\"" + env("APP_USER") + "\"]\n";
  s.env = {{"NOTIFY_SOCKET", path}, {"WATCHDOG_USEC", "600000"}, {"PGLANE_TEST_HOOKS", "1"}};
  Proxy proxy(s);
  START_PROXY(proxy);
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(1500ms);
  const auto t1 = Clock::now();
  EXPECT_GE(count("READY=1", t0 - 20s, t1), 1);
  EXPECT_GE(count("STATUS=", t0 - 20s, t1), 1);
  EXPECT_GE(count("WATCHDOG=1", t0, t1), 4) << "pings every 200 ms while the workers turn";

  ASSERT_EQ(kill(proxy.pid(), SIGHUP), 0);
  std::this_thread::sleep_for(500ms);
  EXPECT_GE(count("RELOADING=1", t1, Clock::now()), 1);

  // Stall each worker in turn: the console's session runs on one of them.
  Conn admin = connect_ok(proxy.conninfo("dbname=pglane"));
  const auto stall_start = Clock::now();
  exec_ok(admin.get(), "DEBUG STALL 2000");
  const auto stall_end = Clock::now();
  EXPECT_GE(stall_end - stall_start, 1900ms);
  // One ping may still go out at the start (the workers had checked in); then none until the
  // worker turns again.
  EXPECT_LE(count("WATCHDOG=1", stall_start + 500ms, stall_end), 0);
  std::this_thread::sleep_for(1s);
  EXPECT_GE(count("WATCHDOG=1", stall_end, Clock::now()), 2) << "pings resume";
  EXPECT_NE(read_file(proxy.log_path()).find("event loop is stuck"), std::string::npos);
  admin.reset();
  proxy.stop();
  EXPECT_GE(count("STOPPING=1", stall_end, Clock::now()), 1);
  stop = true;
  reader.join();
  close(fd);
  unlink(path.c_str());
}

}  // namespace
}  // namespace pglane::itest
