// pgjdbc through pglane: tests/integration/drivers/JdbcSmoke.java (named server-side statements
// with prepareThreshold=1, a 1,000-row batch, commit and rollback, DatabaseMetaData) run against
// transaction pooling over verify-full TLS, and against PostgreSQL directly to show the program
// itself is right. Needs a JDK (11+, single-file source launch) and Debian's
// libpostgresql-jdbc-java; skipped without them.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kJdbcJar = "/usr/share/java/postgresql.jar";
const std::string kSmokeSource =
    std::string(PGLANE_SOURCE_DIR) + "/tests/integration/drivers/JdbcSmoke.java";

// The first executable `name` on PATH, or "".
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

struct RunResult {
  int status = -1;     // exit status; -1 when killed (timeout) or not started
  std::string output;  // stdout and stderr
};

// Runs argv (no shell: the JDBC URL holds '&'), collecting its output; killed after `timeout`.
RunResult run_program(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  RunResult r;
  int out[2];
  if (pipe(out) != 0) {
    r.output = "pipe failed";
    return r;
  }
  pid_t pid = fork();
  if (pid < 0) {
    r.output = "fork failed";
    return r;
  }
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{out[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char buf[4096];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) {
      break;  // EOF: the program closed its output (it is exiting)
    }
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  if (timed_out) {
    kill(pid, SIGKILL);
    r.output += "\n[killed after " + std::to_string(timeout.count()) + " s]";
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

#define SKIP_WITHOUT_JDBC()                                                        \
  do {                                                                             \
    if (find_on_path("java").empty() || access(kJdbcJar.c_str(), R_OK) != 0) {     \
      GTEST_SKIP() << "needs java and " << kJdbcJar                                \
                   << " (packages default-jdk-headless, libpostgresql-jdbc-java)"; \
    }                                                                              \
  } while (0)

// Runs JdbcSmoke.java against 127.0.0.1:port over verify-full TLS and checks every step passed.
void run_smoke(int port, const std::string& table) {
  const std::string java = find_on_path("java");
  const std::string url = "jdbc:postgresql://127.0.0.1:" + std::to_string(port) + "/" +
                          env("APP_DB") + "?sslmode=verify-full&sslrootcert=" + env("TLS_CA") +
                          "&prepareThreshold=1&connectTimeout=20&socketTimeout=60";
  RunResult r = run_program(
      {java, "-cp", kJdbcJar, kSmokeSource, url, env("APP_USER"), env("APP_PASSWORD"), table},
      120s);
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* step :
       {"OK connect ", "OK prepared 501 executions, named on the server", "OK batch 1000 inserts",
        "OK commit and rollback", "OK metadata ", "OK done"}) {
    EXPECT_NE(r.output.find(step), std::string::npos) << "missing \"" << step << "\":\n"
                                                      << r.output;
  }
}

TEST(Jdbc, SmokeProgramPassesAgainstPostgres) {
  SKIP_WITHOUT_JDBC();
  run_smoke(std::stoi(env("PG_PRIMARY_PORT")), "jdbc_smoke_direct");
}

TEST(Jdbc, TransactionPoolingOverTls) {
  SKIP_WITHOUT_JDBC();
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = 2;
  s.tls_mode = "prefer";
  Proxy proxy(s);
  START_PROXY(proxy);
  run_smoke(proxy.port(), "jdbc_smoke_pglane");
  if (HasFailure()) {
    ADD_FAILURE() << "pglane log:\n" << proxy.log_tail();
  }
}

}  // namespace
}  // namespace pglane::itest
