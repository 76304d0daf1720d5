// pgjdbc through pglane: tests/integration/drivers/JdbcSmoke.java (named server-side statements
// with prepareThreshold=1, a 1,000-row batch, commit and rollback, DatabaseMetaData) run against
// transaction pooling over verify-full TLS, and against PostgreSQL directly to show the program
// itself is right. Needs a JDK (11+, single-file source launch) and Debian's
// libpostgresql-jdbc-java; skipped without them.
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;

const std::string kJdbcJar = "/usr/share/java/postgresql.jar";
const std::string kSmokeSource =
    std::string(PGLANE_SOURCE_DIR) + "/tests/integration/drivers/JdbcSmoke.java";

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
