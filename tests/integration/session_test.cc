// Session state never leaks from one client to the next on a shared server, and a client that
// vanishes mid-transaction leaves nothing behind.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void make_locked_table(PGconn* direct) {
  exec_ok(direct,
          "create table if not exists itest_rows (id int primary key, v int);"
          "insert into itest_rows values (1, 0) on conflict do nothing;"
          "grant all on itest_rows to pglane_app");
}

TEST(Session, ClientKilledMidTransactionReleasesLocksAndState) {
  Conn direct = connect_direct();
  make_locked_table(direct.get());
  ProxySettings s;
  s.pool_size = 1;  // the next client gets the very server the killed client used
  s.workers = 1;    // (TLS server connections do not move between workers)
  s.queue_timeout_ms = 5000;
  Proxy proxy(s);
  START_PROXY(proxy);
  const std::string info = proxy.conninfo();

  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    PGconn* c = PQconnectdb(info.c_str());
    char ok = 'n';
    if (PQstatus(c) == CONNECTION_OK) {
      PGresult* r = PQexec(c,
                           "begin; set statement_timeout = 1234; set search_path to pg_catalog;"
                           "update public.itest_rows set v = v + 1 where id = 1");
      ok = PQresultStatus(r) == PGRES_COMMAND_OK ? 'y' : 'n';
    }
    (void)!write(ready[1], &ok, 1);
    for (;;) {
      pause();
    }
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  EXPECT_EQ(ok, 'y') << "child could not start its transaction";
  // The row lock is held by a pglane_app backend.
  EXPECT_EQ(query_value(direct.get(),
                        "select count(*) from pg_locks l join pg_stat_activity a using (pid) "
                        "where a.usename = 'pglane_app' and l.locktype = 'transactionid' "
                        "and l.mode = 'ExclusiveLock'"),
            "1");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  const auto killed_at = Clock::now();

  // Another connection updates the same row; the lock must be gone within a second.
  exec_ok(direct.get(), "set lock_timeout = '1s'");
  Result upd = exec(direct.get(), "update itest_rows set v = v + 10 where id = 1");
  EXPECT_EQ(PQresultStatus(upd.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(upd.get());
  EXPECT_LT(Clock::now() - killed_at, 1500ms);
  // The killed transaction was rolled back, not committed.
  EXPECT_EQ(query_value(direct.get(), "select v % 10 from itest_rows where id = 1"), "0");

  Conn next = connect_ok(info);
  ASSERT_EQ(PQstatus(next.get()), CONNECTION_OK);
  EXPECT_EQ(PQtransactionStatus(next.get()), PQTRANS_IDLE);
  EXPECT_EQ(query_value(next.get(), "show statement_timeout"), "0");
  EXPECT_EQ(query_value(next.get(), "show search_path"), "\"$user\", public");
  EXPECT_EQ(PQtransactionStatus(next.get()), PQTRANS_IDLE);
}

TEST(Session, NextClientSeesDefaultsNotPreviousSettingsOrTempTables) {
  ProxySettings s;
  s.pool_size = 1;
  s.workers = 1;  // TLS server connections cannot move between workers; keep one
  Proxy proxy(s);
  START_PROXY(proxy);
  std::string first_pid;
  {
    Conn a = connect_ok(proxy.conninfo());
    ASSERT_EQ(PQstatus(a.get()), CONNECTION_OK);
    first_pid = query_value(a.get(), "select pg_backend_pid()");
    exec_ok(a.get(), "set search_path to foo");
    exec_ok(a.get(), "set statement_timeout = 1234");
    exec_ok(a.get(), "create temp table leaked_tmp (x int)");
    exec_ok(a.get(), "prepare leaked_stmt as select 1");
    exec_ok(a.get(), "select pg_advisory_lock(4242)");
    EXPECT_EQ(query_value(a.get(), "show statement_timeout"), "1234ms");
  }
  Conn b = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(b.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(b.get(), "select pg_backend_pid()"), first_pid)
      << "pool size 1 should hand the same server to the next client";
  EXPECT_EQ(query_value(b.get(), "show search_path"), "\"$user\", public");
  EXPECT_EQ(query_value(b.get(), "show statement_timeout"), "0");
  EXPECT_EQ(query_value(b.get(),
                        "select count(*) from pg_class where relname = 'leaked_tmp' and "
                        "relpersistence = 't'"),
            "0");
  EXPECT_EQ(query_value(b.get(), "select count(*) from pg_prepared_statements"), "0");
  EXPECT_EQ(query_value(b.get(), "select count(*) from pg_locks where locktype = 'advisory'"), "0");
}

TEST(Session, StartupParametersApplyToTheSession) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo("application_name=foo options='-c statement_timeout=4321'"));
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(c.get(), "select current_setting('application_name')"), "foo");
  EXPECT_EQ(query_value(c.get(), "select current_setting('statement_timeout')"), "4321ms");
  EXPECT_STREQ(PQparameterStatus(c.get(), "application_name"), "foo");
  // Another client on the same pglane keeps its own defaults.
  Conn other = connect_ok(proxy.conninfo());
  EXPECT_EQ(query_value(other.get(), "select current_setting('statement_timeout')"), "0");
}

}  // namespace
}  // namespace pglane::itest
