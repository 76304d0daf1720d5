// The driver catalogue: each mainstream PostgreSQL client runs its normal workload through pglane
// in transaction pooling, over client TLS with sslmode=verify-full (the sandbox CA) and SCRAM.
// Every test runs twice: against pglane (/Pglane) and against PostgreSQL directly (/Postgres),
// the twin that shows the workload itself is right, so a /Pglane-only failure is pglane's.
//
//   PsqlScript                psql -f drivers/workload.psql: \set, \gset, transactions, COPY
//                             FROM STDIN inline, \copy to and from a file, multi-statement queries
//   PgbenchAllProtocols       pgbench -i, then -M simple, extended and prepared, 8 clients, 2 s
//   LibpqPipeline             100 pipelined queries, 5 syncs, an error in the middle
//   Psycopg3                  drivers/psycopg_workload.py (python3-psycopg)
//   Asyncpg                   drivers/asyncpg_workload.py (python3-asyncpg), 50 clients at once
//   NodePostgres              drivers/node_workload.js (pg, pg-cursor, pg-copy-streams; npm ci)
//
// pgjdbc has its own file (jdbc_test.cc). A missing interpreter or module skips its test, except
// under CI=true, where it fails: CI installs everything (scripts/bootstrap.sh).
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;

const std::string kDriversDir = std::string(PGLANE_SOURCE_DIR) + "/tests/integration/drivers";
const std::string kPython = "/usr/bin/python3";  // Debian's, where apt puts the modules
// Generous: the sanitizer build's pglane is slower.
constexpr auto kProgramTimeout = 120s;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Skips the test when a driver is not installed; in CI that is a missing install step instead.
#define REQUIRE_DRIVER(available, what)                                                   \
  do {                                                                                    \
    if (!(available)) {                                                                   \
      if (::pglane::itest::in_ci()) {                                                     \
        FAIL() << what << " missing under CI=true: scripts/bootstrap.sh must install it"; \
      }                                                                                   \
      GTEST_SKIP() << what << " not installed (scripts/bootstrap.sh installs it)";        \
    }                                                                                     \
  } while (0)

bool python_has(const std::string& module) {
  return access(kPython.c_str(), X_OK) == 0 &&
         run_program({kPython, "-c", "import " + module}, 30s).status == 0;
}

// Fails the test unless `output` has every line of `lines` as a whole line.
void expect_lines(const std::string& output, const std::vector<std::string>& lines) {
  for (const auto& line : lines) {
    EXPECT_NE(("\n" + output + "\n").find("\n" + line + "\n"), std::string::npos)
        << "missing line \"" << line << "\" in:\n"
        << output;
  }
}

enum class Target { kPostgres, kPglane };

class Drivers : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override {
    if (!sandbox_ready()) {
      GTEST_SKIP() << "no sandbox";
    }
    if (GetParam() == Target::kPostgres) {
      port_ = std::stoi(env("PG_PRIMARY_PORT"));
      return;
    }
    ProxySettings s;
    s.pool_mode = "transaction";
    s.pool_size = 4;  // fewer servers than clients: transactions really share them
    s.tls_mode = "require";
    s.queue_timeout_ms = 30000;
    proxy_ = std::make_unique<Proxy>(s);
    START_PROXY(*proxy_);
    port_ = proxy_->port();
  }

  void TearDown() override {
    if (proxy_ && HasFailure()) {
      ADD_FAILURE() << "pglane log:\n" << proxy_->log_tail();
    }
  }

  // libpq connection string for the target: verify-full TLS, SCRAM (the users file and
  // pg_hba.conf both ask for it).
  std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + env("APP_DB") +
           " user=" + env("APP_USER") + " password=" + env("APP_PASSWORD") +
           " sslmode=verify-full sslrootcert=" + env("TLS_CA") + " gssencmode=disable";
  }

  // HOST PORT DATABASE USER PASSWORD CA_FILE, for the programs that take them one by one.
  std::vector<std::string> connection_args() const {
    return {"127.0.0.1",     std::to_string(port_), env("APP_DB"),
            env("APP_USER"), env("APP_PASSWORD"),   env("TLS_CA")};
  }

  // A fresh directory for files a program writes, per test and target.
  std::string scratch_dir(const std::string& name) const {
    std::string dir =
        sandbox_dir() + "/" + name + (GetParam() == Target::kPglane ? "-pglane" : "-postgres");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
  }

  int port_ = 0;
  std::unique_ptr<Proxy> proxy_;
};

TEST_P(Drivers, PsqlScript) {
  const std::string psql = find_on_path("psql");
  REQUIRE_DRIVER(!psql.empty(), "psql (postgresql-client-15)");
  const std::string out_dir = scratch_dir("psql");
  RunResult r = run_program({psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v",
                             "outdir=" + out_dir, "-f", kDriversDir + "/workload.psql", conninfo()},
                            kProgramTimeout);
  EXPECT_EQ(r.status, 0) << r.output;
  expect_lines(r.output, {"step gset answer=42 pg15=t", "step in-transaction true",
                          "step transaction 1:43", "step copy-in 4 133", "step multi 5 233",
                          "step multi-txn 6", "step copy-file 6 true", "step done"});
  std::ifstream tsv(out_dir + "/drv_psql.tsv");
  std::stringstream text;
  text << tsv.rdbuf();
  EXPECT_EQ(text.str(),
            "1\tone\t43\n2\ttwo\t20\n3\tthree\t30\n4\tfour with space\t40\n5\tfive\t100\n"
            "6\tsix\t60\n");
}

TEST_P(Drivers, PgbenchAllProtocols) {
  const std::string pgbench = find_on_path("pgbench");
  REQUIRE_DRIVER(!pgbench.empty(), "pgbench (postgresql-client-15)");
  // -i through the target too: DROP/CREATE, COPY FROM STDIN of the accounts, VACUUM, keys.
  RunResult init = run_program({pgbench, "-i", "-q", "-s", "1", conninfo()}, kProgramTimeout);
  ASSERT_EQ(init.status, 0) << init.output;
  EXPECT_NE(init.output.find("done in "), std::string::npos) << init.output;
  // A fixed duration (-T) rather than a count keeps the runtime bounded on a busy machine.
  for (const char* mode : {"simple", "extended", "prepared"}) {
    RunResult r = run_program(
        {pgbench, "-n", "-M", mode, "-c", "8", "-j", "2", "-T", "2", conninfo()}, kProgramTimeout);
    EXPECT_EQ(r.status, 0) << mode << "\n" << r.output;
    std::smatch m;
    static const std::regex processed("number of transactions actually processed: ([0-9]+)");
    ASSERT_TRUE(std::regex_search(r.output, m, processed)) << mode << "\n" << r.output;
    EXPECT_GE(std::stoi(m[1].str()), 8) << mode << "\n" << r.output;
    EXPECT_NE(r.output.find("number of failed transactions: 0 "), std::string::npos) << mode << "\n"
                                                                                     << r.output;
    EXPECT_EQ(r.output.find("error"), std::string::npos) << mode << "\n" << r.output;
  }
}

// Reads one pipelined query's results up to its NULL terminator: the first result's status,
// its first value and its SQLSTATE.
struct PipelineResult {
  ExecStatusType status = PGRES_FATAL_ERROR;
  std::string value;
  std::string sqlstate;
};
PipelineResult next_pipeline_result(PGconn* c) {
  PipelineResult out;
  bool first = true;
  while (PGresult* r = PQgetResult(c)) {
    if (first) {
      out.status = PQresultStatus(r);
      out.sqlstate = sqlstate(r);
      if (out.status == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        out.value = PQgetvalue(r, 0, 0);
      }
      first = false;
    }
    PQclear(r);
  }
  return out;
}

// libpq pipeline mode (docs 34.5): 100 INSERTs, a sync after every 20, and query 50 failing.
// Each sync closes an implicit transaction, so the error rolls back 41-49, the server skips
// 51-60 (PGRES_PIPELINE_ABORTED) until the sync after 60, and everything else is committed.
TEST_P(Drivers, LibpqPipeline) {
  constexpr int kQueries = 100;
  constexpr int kSyncEvery = 20;
  constexpr int kFailing = 50;
  Conn c = connect_ok(conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  exec_ok(c.get(), "DROP TABLE IF EXISTS drv_pipeline");
  exec_ok(c.get(), "CREATE TABLE drv_pipeline (id int PRIMARY KEY)");
  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
  for (int i = 1; i <= kQueries; ++i) {
    const std::string v = std::to_string(i);
    const char* params[] = {v.c_str()};
    const char* sql = i == kFailing ? "SELECT 1 / ($1::int - $1::int)"
                                    : "INSERT INTO drv_pipeline VALUES ($1::int) RETURNING id";
    ASSERT_EQ(PQsendQueryParams(c.get(), sql, 1, nullptr, params, nullptr, nullptr, 0), 1)
        << PQerrorMessage(c.get());
    if (i % kSyncEvery == 0) {
      ASSERT_EQ(PQpipelineSync(c.get()), 1) << PQerrorMessage(c.get());
    }
  }
  for (int i = 1; i <= kQueries; ++i) {
    PipelineResult r = next_pipeline_result(c.get());
    if (i < kFailing) {
      EXPECT_EQ(r.status, PGRES_TUPLES_OK) << "query " << i << ": " << PQerrorMessage(c.get());
      EXPECT_EQ(r.value, std::to_string(i)) << "query " << i;
    } else if (i == kFailing) {
      EXPECT_EQ(r.status, PGRES_FATAL_ERROR) << "query " << i;
      EXPECT_EQ(r.sqlstate, "22012") << "query " << i;
    } else if (i <= 60) {
      EXPECT_EQ(r.status, PGRES_PIPELINE_ABORTED) << "query " << i;
    } else {
      EXPECT_EQ(r.status, PGRES_TUPLES_OK) << "query " << i << ": " << PQerrorMessage(c.get());
      EXPECT_EQ(r.value, std::to_string(i)) << "query " << i;
    }
    if (i % kSyncEvery == 0) {
      Result sync(PQgetResult(c.get()));
      ASSERT_NE(sync, nullptr) << "after query " << i;
      EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC) << "after query " << i;
    }
  }
  ASSERT_EQ(PQexitPipelineMode(c.get()), 1) << PQerrorMessage(c.get());
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(query_value(c.get(),
                        "SELECT count(*) || ' ' || count(*) FILTER (WHERE id BETWEEN 41 AND 60) "
                        "|| ' ' || min(id) || ' ' || max(id) FROM drv_pipeline"),
            "80 0 1 100");
}

TEST_P(Drivers, Psycopg3) {
  REQUIRE_DRIVER(python_has("psycopg"), "python3-psycopg");
  RunResult r =
      run_program({kPython, kDriversDir + "/psycopg_workload.py", conninfo()}, kProgramTimeout);
  EXPECT_EQ(r.status, 0) << r.output;
  expect_lines(r.output,
               {"OK prepared 201 executions, named on the server", "OK executemany 300 rows",
                "OK transaction blocks with savepoint", "OK copy 1000 rows in and out",
                "OK named cursor 1300 rows in batches", "OK done"});
}

TEST_P(Drivers, Asyncpg) {
  REQUIRE_DRIVER(python_has("asyncpg"), "python3-asyncpg");
  std::vector<std::string> argv = {kPython, kDriversDir + "/asyncpg_workload.py"};
  for (auto& a : connection_args()) {
    argv.push_back(a);
  }
  RunResult r = run_program(argv, kProgramTimeout);
  EXPECT_EQ(r.status, 0) << r.output;
  expect_lines(r.output, {"OK prepared 201 executions", "OK executemany 500 rows",
                          "OK transactions", "OK 50 concurrent clients x 20 queries", "OK done"});
}

TEST_P(Drivers, NodePostgres) {
  const std::string node = find_on_path("node");
  REQUIRE_DRIVER(!node.empty(), "node (nodejs)");
  for (const char* module : {"pg", "pg-cursor", "pg-copy-streams"}) {
    REQUIRE_DRIVER(std::filesystem::exists(kDriversDir + "/node_modules/" + module),
                   "npm package " << module << " (npm ci --prefix tests/integration/drivers)");
  }
  std::vector<std::string> argv = {node, kDriversDir + "/node_workload.js"};
  for (auto& a : connection_args()) {
    argv.push_back(a);
  }
  RunResult r = run_program(argv, kProgramTimeout);
  EXPECT_EQ(r.status, 0) << r.output;
  expect_lines(r.output,
               {"OK named statements 201 selects and 100 inserts",
                "OK cursor 1000 rows in 7 batches", "OK copy 2000 rows in and out", "OK done"});
}

INSTANTIATE_TEST_SUITE_P(, Drivers, ::testing::Values(Target::kPostgres, Target::kPglane),
                         [](const ::testing::TestParamInfo<Target>& info) {
                           return info.param == Target::kPglane ? "Pglane" : "Postgres";
                         });

}  // namespace
}  // namespace pglane::itest
