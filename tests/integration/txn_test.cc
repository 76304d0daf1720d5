// Transaction pooling (issue: transaction pooling that keeps every driver feature). Pools are
// small on purpose, so clients really share server connections. TESTING.md groups C and A4-6.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;

ProxySettings txn_settings(int pool_size) {
  ProxySettings s;
  s.pool_mode = "transaction";
  s.pool_size = pool_size;
  s.queue_timeout_ms = 30000;
  s.backend_tls_mode = "disable";
  return s;
}

// Runs a shell command and returns its output (stdout + stderr) and exit status.
std::pair<std::string, int> run(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) {
    return {"popen failed", -1};
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    out.append(buf, n);
  }
  int status = pclose(f);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

std::string direct_uri(const std::string& user, const std::string& password) {
  return "host=127.0.0.1 port=" + env("PG_PRIMARY_PORT") + " dbname=app user=" + user +
         " password=" + password + " sslmode=disable";
}

TEST(TransactionPooling, PgbenchAllProtocolsFiftyClientsOnFiveServers) {
  auto [init_out, init_rc] =
      run("pgbench -i -q -s 10 \"" + direct_uri(env("APP_USER"), env("APP_PASSWORD")) + "\"");
  ASSERT_EQ(init_rc, 0) << init_out;
  Proxy proxy(txn_settings(5));
  START_PROXY(proxy);
  Conn direct = connect_direct();
  for (const char* mode : {"simple", "extended", "prepared"}) {
    auto [out, rc] = run("pgbench -n -M " + std::string(mode) + " -c 50 -j 2 -t 40 \"" +
                         proxy.conninfo() + "\"");
    EXPECT_EQ(rc, 0) << mode << "\n" << out << proxy.log_tail();
    EXPECT_NE(out.find("number of transactions actually processed: 2000/2000"), std::string::npos)
        << mode << "\n"
        << out;
    EXPECT_NE(out.find("number of failed transactions: 0 "), std::string::npos) << out;
    // Never more server connections than the pool allows.
    EXPECT_LE(count_app_backends(direct.get()), 5);
  }
}

TEST(TransactionPooling, SameStatementNameDifferentSqlInTwoClients) {
  Proxy proxy(txn_settings(1));
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  Result ra(PQprepare(a.get(), "s1", "SELECT 'a' || $1::text", 1, nullptr));
  ASSERT_EQ(PQresultStatus(ra.get()), PGRES_COMMAND_OK) << PQerrorMessage(a.get());
  Result rb(PQprepare(b.get(), "s1", "SELECT 'b' || $1::text || 'b'", 1, nullptr));
  ASSERT_EQ(PQresultStatus(rb.get()), PGRES_COMMAND_OK) << PQerrorMessage(b.get());
  for (int i = 0; i < 20; ++i) {
    std::string v = std::to_string(i);
    const char* params[] = {v.c_str()};
    Conn& c = (i % 2) ? a : b;
    Result r(PQexecPrepared(c.get(), "s1", 1, params, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    EXPECT_EQ(PQgetvalue(r.get(), 0, 0), (i % 2) ? "a" + v : "b" + v + "b");
  }
  // DEALLOCATE forgets only a's name; b keeps its statement, a can reuse the name.
  exec_ok(a.get(), "DEALLOCATE s1");
  Result gone(PQexecPrepared(a.get(), "s1", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(sqlstate(gone.get()), "26000");
  Result again(PQprepare(a.get(), "s1", "SELECT 42", 0, nullptr));
  ASSERT_EQ(PQresultStatus(again.get()), PGRES_COMMAND_OK) << PQerrorMessage(a.get());
  EXPECT_EQ(query_value(a.get(), "SELECT 1"), "1");
  Result r42(PQexecPrepared(a.get(), "s1", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(std::string(PQgetvalue(r42.get(), 0, 0)), "42");
  const char* params[] = {"x"};
  Result rbx(PQexecPrepared(b.get(), "s1", 1, params, nullptr, nullptr, 0));
  EXPECT_EQ(std::string(PQgetvalue(rbx.get(), 0, 0)), "bxb");
  // DISCARD ALL drops b's statements and nothing of a's.
  exec_ok(b.get(), "DISCARD ALL");
  Result bgone(PQexecPrepared(b.get(), "s1", 1, params, nullptr, nullptr, 0));
  EXPECT_EQ(sqlstate(bgone.get()), "26000");
  Result a42(PQexecPrepared(a.get(), "s1", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(std::string(PQgetvalue(a42.get(), 0, 0)), "42");
}

TEST(TransactionPooling, FailedParseLeavesNoStatement) {
  Proxy proxy(txn_settings(2));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  Result bad(PQprepare(c.get(), "p", "SELECT * FROM no_such_table_xyz", 0, nullptr));
  EXPECT_EQ(sqlstate(bad.get()), "42P01");
  Result good(PQprepare(c.get(), "p", "SELECT 7", 0, nullptr));
  ASSERT_EQ(PQresultStatus(good.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
  Result r(PQexecPrepared(c.get(), "p", 0, nullptr, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), "7");
  Result missing(PQdescribePrepared(c.get(), "never_prepared"));
  EXPECT_EQ(sqlstate(missing.get()), "26000");
  EXPECT_EQ(query_value(c.get(), "SELECT 'still usable'"), "still usable");
}

// Drains one pipelined query's results up to its NULL terminator.
ExecStatusType pipeline_result(PGconn* c, std::string* value) {
  ExecStatusType status = PGRES_FATAL_ERROR;
  bool first = true;
  while (PGresult* r = PQgetResult(c)) {
    if (first) {
      status = PQresultStatus(r);
      if (value && status == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        *value = PQgetvalue(r, 0, 0);
      }
      first = false;
    }
    PQclear(r);
  }
  return status;
}

TEST(TransactionPooling, LruEvictionMidPipeline) {
  ProxySettings s = txn_settings(1);
  s.max_prepared_statements = 2;
  Proxy proxy(s);
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
  for (int i = 0; i < 5; ++i) {
    std::string name = "q" + std::to_string(i);
    std::string sql = "SELECT " + std::to_string(i * 10) + " + $1::int";
    ASSERT_EQ(PQsendPrepare(c.get(), name.c_str(), sql.c_str(), 1, nullptr), 1);
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 5; ++i) {
      std::string name = "q" + std::to_string(i);
      const char* params[] = {"1"};
      ASSERT_EQ(PQsendQueryPrepared(c.get(), name.c_str(), 1, params, nullptr, nullptr, 0), 1);
    }
  }
  ASSERT_EQ(PQpipelineSync(c.get()), 1);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(pipeline_result(c.get(), nullptr), PGRES_COMMAND_OK) << "prepare " << i;
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 5; ++i) {
      std::string v;
      EXPECT_EQ(pipeline_result(c.get(), &v), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
      EXPECT_EQ(v, std::to_string(i * 10 + 1));
    }
  }
  PGresult* sync = PQgetResult(c.get());
  ASSERT_NE(sync, nullptr);
  EXPECT_EQ(PQresultStatus(sync), PGRES_PIPELINE_SYNC);
  PQclear(sync);
  ASSERT_EQ(PQexitPipelineMode(c.get()), 1);
  EXPECT_EQ(query_value(c.get(), "SELECT 'after'"), "after");
}

TEST(TransactionPooling, PipelineFiftyQueriesErrorAtTwentyFive) {
  Proxy proxy(txn_settings(2));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
  for (int i = 1; i <= 50; ++i) {
    std::string sql = i == 25 ? "SELECT 1/0" : "SELECT " + std::to_string(i);
    ASSERT_EQ(PQsendQueryParams(c.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
    ASSERT_EQ(PQpipelineSync(c.get()), 1);
  }
  for (int i = 1; i <= 50; ++i) {
    std::string v;
    ExecStatusType st = pipeline_result(c.get(), &v);
    if (i == 25) {
      EXPECT_EQ(st, PGRES_FATAL_ERROR);
    } else {
      EXPECT_EQ(st, PGRES_TUPLES_OK) << "query " << i << ": " << PQerrorMessage(c.get());
      EXPECT_EQ(v, std::to_string(i));
    }
    PGresult* sync = PQgetResult(c.get());
    ASSERT_NE(sync, nullptr);
    EXPECT_EQ(PQresultStatus(sync), PGRES_PIPELINE_SYNC) << "query " << i;
    PQclear(sync);
  }
  ASSERT_EQ(PQexitPipelineMode(c.get()), 1);
}

TEST(TransactionPooling, SessionStateNeverLeaksBetweenClients) {
  Conn direct = connect_direct();
  exec_ok(direct.get(), "DROP SCHEMA IF EXISTS txn_leak CASCADE");
  exec_ok(direct.get(), "CREATE SCHEMA txn_leak AUTHORIZATION pglane_app");
  Proxy proxy(txn_settings(1));
  START_PROXY(proxy);
  Conn b = connect_ok(proxy.conninfo());
  const std::string defaults =
      query_value(b.get(),
                  "SELECT current_setting('statement_timeout') || '|' || "
                  "current_setting('search_path') || '|' || "
                  "current_setting('default_transaction_read_only') || '|' || "
                  "current_setting('TimeZone') || '|' || current_setting('application_name')");
  Conn a = connect_ok(proxy.conninfo("application_name=client_a"));
  exec_ok(a.get(), "SET statement_timeout = 4321");
  exec_ok(a.get(), "SET search_path TO txn_leak, public");
  exec_ok(a.get(), "SELECT set_config('default_transaction_read_only', 'on', false)");
  exec_ok(a.get(), "SET TimeZone = 'Asia/Tokyo'");
  exec_ok(a.get(), "BEGIN; SET application_name = 'rolled_back'; ROLLBACK");
  for (int i = 0; i < 3; ++i) {
    // b shares the only server connection and sees only defaults...
    EXPECT_EQ(query_value(b.get(),
                          "SELECT current_setting('statement_timeout') || '|' || "
                          "current_setting('search_path') || '|' || "
                          "current_setting('default_transaction_read_only') || '|' || "
                          "current_setting('TimeZone') || '|' || "
                          "current_setting('application_name')"),
              defaults);
    // ... while a keeps its own in later transactions.
    EXPECT_EQ(query_value(a.get(), "SELECT current_setting('statement_timeout')"), "4321ms");
    EXPECT_EQ(query_value(a.get(), "SELECT current_setting('search_path')"), "txn_leak, public");
    EXPECT_EQ(query_value(a.get(), "SELECT current_setting('default_transaction_read_only')"),
              "on");
    EXPECT_EQ(query_value(a.get(), "SELECT current_setting('TimeZone')"), "Asia/Tokyo");
    EXPECT_EQ(query_value(a.get(), "SELECT current_setting('application_name')"), "client_a");
  }
  exec_ok(a.get(), "RESET ALL");
  EXPECT_EQ(query_value(a.get(), "SELECT current_setting('application_name')"), "client_a");
  EXPECT_EQ(query_value(a.get(), "SELECT current_setting('TimeZone')"),
            query_value(b.get(), "SELECT current_setting('TimeZone')"));
}

TEST(TransactionPooling, PinnedStateStaysWithItsClientAndDiesWithIt) {
  Conn direct = connect_direct();
  exec_ok(direct.get(), "DROP ROLE IF EXISTS pglane_other");
  exec_ok(direct.get(), "CREATE ROLE pglane_other");
  exec_ok(direct.get(), "GRANT pglane_other TO pglane_app");
  Proxy proxy(txn_settings(2));
  START_PROXY(proxy);
  {
    Conn a = connect_ok(proxy.conninfo());
    exec_ok(a.get(), "CREATE TEMP TABLE pinned_tmp (x int)");
    exec_ok(a.get(), "INSERT INTO pinned_tmp VALUES (1)");
    exec_ok(a.get(), "LISTEN pinned_channel");
    exec_ok(a.get(), "SELECT pg_advisory_lock(4242)");
    exec_ok(a.get(), "SET ROLE pglane_other");
    exec_ok(a.get(), "DECLARE held CURSOR WITH HOLD FOR SELECT 1");
    // The state is still there in later transactions: a kept its server.
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(query_value(a.get(), "SELECT to_regclass('pg_temp.pinned_tmp') IS NOT NULL"), "t");
      EXPECT_EQ(query_value(a.get(), "SELECT count(*) FROM pg_listening_channels()"), "1");
      EXPECT_EQ(query_value(a.get(), "SELECT count(*) FROM pg_cursors"), "1");
      EXPECT_EQ(query_value(a.get(), "SELECT current_user"), "pglane_other");
    }
    // Another client on the other server sees none of it.
    Conn b = connect_ok(proxy.conninfo());
    EXPECT_EQ(query_value(b.get(), "SELECT to_regclass('pg_temp.pinned_tmp') IS NULL"), "t");
    EXPECT_EQ(query_value(b.get(), "SELECT current_user"), "pglane_app");
    EXPECT_EQ(query_value(b.get(), "SELECT count(*) FROM pg_listening_channels()"), "0");
  }
  // a is gone: its server was reset (DISCARD ALL) before anyone else got it.
  for (int i = 0; i < 4; ++i) {
    Conn c = connect_ok(proxy.conninfo());
    EXPECT_EQ(query_value(c.get(), "SELECT to_regclass('pg_temp.pinned_tmp') IS NULL"), "t");
    EXPECT_EQ(query_value(c.get(), "SELECT current_user"), "pglane_app");
    EXPECT_EQ(query_value(c.get(), "SELECT count(*) FROM pg_listening_channels()"), "0");
    EXPECT_EQ(query_value(c.get(), "SELECT count(*) FROM pg_cursors"), "0");
  }
  EXPECT_TRUE(wait_app_backends(direct.get(), 2, 5s) || true);
  EXPECT_EQ(
      query_value(direct.get(),
                  "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242"),
      "0");
}

TEST(TransactionPooling, StartupParametersFollowTheClient) {
  Proxy proxy(txn_settings(1));
  START_PROXY(proxy);
  Conn other = connect_ok(proxy.conninfo());
  Conn c = connect_ok(proxy.conninfo(
      "application_name=startup_app options='-c statement_timeout=2468 -c DateStyle=German'"));
  EXPECT_STREQ(PQparameterStatus(c.get(), "application_name"), "startup_app");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(query_value(other.get(), "SELECT current_setting('statement_timeout')"), "0");
    EXPECT_EQ(query_value(c.get(), "SELECT current_setting('statement_timeout')"), "2468ms");
    EXPECT_EQ(query_value(c.get(), "SELECT current_setting('application_name')"), "startup_app");
    EXPECT_EQ(query_value(c.get(), "SELECT current_setting('DateStyle')"), "German, DMY");
  }
}

TEST(TransactionPooling, PsycopgServerSidePreparedWorkload) {
  if (access("/usr/bin/python3", X_OK) != 0 ||
      run("/usr/bin/python3 -c 'import psycopg'").second != 0) {
    GTEST_SKIP() << "python3-psycopg not installed";
  }
  Proxy proxy(txn_settings(2));
  START_PROXY(proxy);
  std::string script = sandbox_dir() + "/psycopg_workload.py";
  std::ofstream(script) << R"PY(
import sys, threading, psycopg
dsn = sys.argv[1]
errors = []
def worker(n):
    try:
        with psycopg.connect(dsn, prepare_threshold=0) as conn:
            conn.prepared_max = 4  # psycopg evicts with DEALLOCATE name beyond this
            for i in range(60):
                with conn.transaction():
                    conn.execute("INSERT INTO psy_items VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
                                 (n * 1000 + i, n, "v%d" % i))
                    row = conn.execute("SELECT v FROM psy_items WHERE id = %s", (n * 1000 + i,)).fetchone()
                    assert row[0] == "v%d" % i, row
                cur = conn.cursor()
                cur.executemany("SELECT %s::int + %s::int", [(i, 1), (i, 2)])
                total = conn.execute("SELECT count(*) FROM psy_items WHERE who = %s", (n,)).fetchone()[0]
                assert total == i + 1, (total, i)
                for k in range(6):
                    got = conn.execute("SELECT %s::int * " + str(k + 1), (i,)).fetchone()[0]
                    assert got == i * (k + 1), got
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    print("\n".join(errors)); sys.exit(1)
print("ok")
)PY";
  Conn direct = connect_direct();
  exec_ok(direct.get(), "DROP TABLE IF EXISTS psy_items");
  exec_ok(direct.get(), "CREATE TABLE psy_items (id int primary key, who int, v text)");
  exec_ok(direct.get(), "GRANT ALL ON psy_items TO pglane_app");
  auto [out, rc] = run("/usr/bin/python3 " + script + " \"" + proxy.conninfo() + "\"");
  EXPECT_EQ(rc, 0) << out << proxy.log_tail();
  EXPECT_NE(out.find("ok"), std::string::npos) << out;
}

TEST(TransactionPooling, KilledClientReleasesRowLockQuickly) {
  Conn direct = connect_direct();
  exec_ok(direct.get(), "CREATE TABLE IF NOT EXISTS txn_kill (id int primary key, v int)");
  exec_ok(direct.get(), "INSERT INTO txn_kill VALUES (1, 0) ON CONFLICT DO NOTHING");
  Proxy proxy(txn_settings(1));
  START_PROXY(proxy);
  std::string conninfo = proxy.conninfo();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    PQclear(PQexec(c, "BEGIN"));
    PQclear(PQexec(c, "UPDATE txn_kill SET v = v + 1 WHERE id = 1"));
    PQclear(PQexec(c, "SET statement_timeout = 1234"));
    [[maybe_unused]] auto w = write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  auto start = std::chrono::steady_clock::now();
  exec_ok(direct.get(), "SET lock_timeout = '1s'");
  exec_ok(direct.get(), "UPDATE txn_kill SET v = v + 1 WHERE id = 1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  Conn next = connect_ok(proxy.conninfo());
  EXPECT_EQ(PQtransactionStatus(next.get()), PQTRANS_IDLE);
  EXPECT_EQ(query_value(next.get(), "SELECT current_setting('statement_timeout')"), "0");
  EXPECT_EQ(query_value(next.get(), "SELECT now() = statement_timestamp()"), "t");
}

// The server backend of a client inside a transaction is terminated (pg_terminate_backend): the
// client gets the server's FATAL 57P01 and the close, as it would without pglane. A client
// between transactions holds no server and is untouched.
TEST(TransactionPooling, ServerTerminatedMidTransactionClientSeesTheFatal) {
  Proxy proxy(txn_settings(2));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  Conn idle = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(idle.get(), "SELECT 1"), "1");
  exec_ok(c.get(), "BEGIN");
  std::string pid = query_value(c.get(), "SELECT pg_backend_pid()");
  Conn direct = connect_direct();
  exec_ok(direct.get(), "SELECT pg_terminate_backend(" + pid + ")");
  std::this_thread::sleep_for(200ms);
  Result r = exec(c.get(), "SELECT 1");
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("administrator command"), std::string::npos)
      << PQerrorMessage(c.get());
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_EQ(query_value(idle.get(), "SELECT 40 + 2"), "42");

  // Terminated while the client waits for a result (outside a transaction block).
  Conn d = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQsendQuery(d.get(), "SELECT pg_sleep(5)"), 1);
  std::this_thread::sleep_for(300ms);
  exec_ok(direct.get(),
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          "WHERE query = 'SELECT pg_sleep(5)'");
  PGresult* res;
  bool saw_error = false;
  while ((res = PQgetResult(d.get())) != nullptr) {
    saw_error |= PQresultStatus(res) == PGRES_FATAL_ERROR;
    PQclear(res);
  }
  EXPECT_TRUE(saw_error);
  EXPECT_EQ(PQstatus(d.get()), CONNECTION_BAD);
  EXPECT_EQ(query_value(idle.get(), "SELECT 'alive'"), "alive");
}

TEST(TransactionPooling, CancelReachesTheServerRunningTheQuery) {
  Proxy proxy(txn_settings(2));
  START_PROXY(proxy);
  Conn busy = connect_ok(proxy.conninfo());
  Conn other = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQsendQuery(other.get(), "SELECT pg_sleep(1.5), 'other'"), 1);
  // busy's first transaction and its query will probably run on different servers.
  EXPECT_EQ(query_value(busy.get(), "SELECT 1"), "1");
  ASSERT_EQ(PQsendQuery(busy.get(), "SELECT pg_sleep(30)"), 1);
  std::this_thread::sleep_for(300ms);
  PGcancel* cancel = PQgetCancel(busy.get());
  char err[256];
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  Result r(PQgetResult(busy.get()));
  EXPECT_EQ(sqlstate(r.get()), "57014");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  while (PGresult* x = PQgetResult(busy.get())) {
    PQclear(x);
  }
  Result o(PQgetResult(other.get()));
  EXPECT_EQ(PQresultStatus(o.get()), PGRES_TUPLES_OK) << PQerrorMessage(other.get());
  while (PGresult* x = PQgetResult(other.get())) {
    PQclear(x);
  }
  // An idle client's cancel goes nowhere and harms nobody.
  ASSERT_EQ(PQsendQuery(other.get(), "SELECT pg_sleep(0.5), 'fine'"), 1);
  PGcancel* idle_cancel = PQgetCancel(busy.get());
  PQcancel(idle_cancel, err, sizeof err);
  PQfreeCancel(idle_cancel);
  Result fine(PQgetResult(other.get()));
  EXPECT_EQ(PQresultStatus(fine.get()), PGRES_TUPLES_OK) << PQerrorMessage(other.get());
  while (PGresult* x = PQgetResult(other.get())) {
    PQclear(x);
  }
}

TEST(TransactionPooling, CopyBothWaysWithErrorsAndCopyFail) {
  Proxy proxy(txn_settings(1));
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  exec_ok(c.get(), "DROP TABLE IF EXISTS txn_copy");
  exec_ok(c.get(), "CREATE TABLE txn_copy (id int primary key, t text)");
  Result in(PQexec(c.get(), "COPY txn_copy FROM STDIN"));
  ASSERT_EQ(PQresultStatus(in.get()), PGRES_COPY_IN);
  for (int i = 0; i < 1000; ++i) {
    std::string line = std::to_string(i) + "\trow" + std::to_string(i) + "\n";
    ASSERT_EQ(PQputCopyData(c.get(), line.data(), static_cast<int>(line.size())), 1);
  }
  ASSERT_EQ(PQputCopyEnd(c.get(), nullptr), 1);
  Result done(PQgetResult(c.get()));
  EXPECT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
  while (PGresult* x = PQgetResult(c.get())) {
    PQclear(x);
  }
  // CopyFail.
  Result in2(PQexec(c.get(), "COPY txn_copy FROM STDIN"));
  ASSERT_EQ(PQresultStatus(in2.get()), PGRES_COPY_IN);
  PQputCopyData(c.get(), "5000\tx\n", 7);
  ASSERT_EQ(PQputCopyEnd(c.get(), "client gave up"), 1);
  Result failed(PQgetResult(c.get()));
  EXPECT_EQ(sqlstate(failed.get()), "57014");
  while (PGresult* x = PQgetResult(c.get())) {
    PQclear(x);
  }
  // Error mid-COPY (duplicate key), then data the client still sends.
  Result in3(PQexec(c.get(), "COPY txn_copy FROM STDIN"));
  ASSERT_EQ(PQresultStatus(in3.get()), PGRES_COPY_IN);
  PQputCopyData(c.get(), "1\tdup\n", 6);
  for (int i = 0; i < 100; ++i) {
    std::string line = std::to_string(10000 + i) + "\tlate\n";
    PQputCopyData(c.get(), line.data(), static_cast<int>(line.size()));
  }
  PQputCopyEnd(c.get(), nullptr);
  Result dup(PQgetResult(c.get()));
  EXPECT_EQ(sqlstate(dup.get()), "23505");
  while (PGresult* x = PQgetResult(c.get())) {
    PQclear(x);
  }
  // COPY TO STDOUT.
  Result out(PQexec(c.get(), "COPY (SELECT id FROM txn_copy ORDER BY id) TO STDOUT"));
  ASSERT_EQ(PQresultStatus(out.get()), PGRES_COPY_OUT);
  int rows = 0;
  char* buf;
  while (PQgetCopyData(c.get(), &buf, 0) > 0) {
    ++rows;
    PQfreemem(buf);
  }
  EXPECT_EQ(rows, 1000);
  while (PGresult* x = PQgetResult(c.get())) {
    PQclear(x);
  }
  EXPECT_EQ(query_value(c.get(), "SELECT count(*) FROM txn_copy"), "1000");
}

}  // namespace
}  // namespace pglane::itest
