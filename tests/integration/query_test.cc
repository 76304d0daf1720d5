// What psql and libpq applications do every day, through pglane: simple and extended queries,
// pipelines, COPY in both directions, LISTEN/NOTIFY.
#include <poll.h>

#include <chrono>
#include <string>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;

TEST(Query, SimpleQueryExecParamsAndPreparedStatements) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);

  EXPECT_EQ(query_value(c.get(), "select 40 + 2"), "42");
  EXPECT_EQ(query_value(c.get(), "select current_user"), "pglane_app");

  const char* params[] = {"20", "hello"};
  Result r(PQexecParams(c.get(), "select $1::int * 2, upper($2::text)", 2, nullptr, params, nullptr,
                        nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "40");
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "HELLO");

  Result prep(PQprepare(c.get(), "add", "select $1::int + $2::int", 2, nullptr));
  ASSERT_EQ(PQresultStatus(prep.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(prep.get());
  for (int i = 0; i < 3; ++i) {
    std::string a = std::to_string(i);
    const char* args[] = {a.c_str(), "100"};
    Result e(PQexecPrepared(c.get(), "add", 2, args, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(e.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(e.get());
    EXPECT_EQ(std::string(PQgetvalue(e.get(), 0, 0)), std::to_string(100 + i));
  }

  // An error in an extended-protocol query leaves the connection usable.
  Result bad(PQexecParams(c.get(), "select 1/0", 0, nullptr, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(sqlstate(bad.get()), "22012");
  EXPECT_EQ(query_value(c.get(), "select 'still alive'"), "still alive");
}

TEST(Query, PipelineErrorAbortsOnlyUntilSync) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);

  // Batch 1: ten queries, the fifth fails; batch 2: three queries after the first Sync.
  constexpr int kBatch1 = 10;
  constexpr int kFailing = 4;
  constexpr int kBatch2 = 3;
  for (int i = 0; i < kBatch1; ++i) {
    std::string sql = i == kFailing ? "select 1/0" : "select " + std::to_string(i);
    ASSERT_EQ(PQsendQueryParams(c.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0), 1)
        << PQerrorMessage(c.get());
  }
  ASSERT_EQ(PQpipelineSync(c.get()), 1);
  for (int i = 0; i < kBatch2; ++i) {
    std::string sql = "select " + std::to_string(100 + i);
    ASSERT_EQ(PQsendQueryParams(c.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  }
  ASSERT_EQ(PQpipelineSync(c.get()), 1);

  for (int i = 0; i < kBatch1; ++i) {
    Result r(PQgetResult(c.get()));
    ASSERT_TRUE(r) << "query " << i << ": " << PQerrorMessage(c.get());
    if (i < kFailing) {
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << i;
      EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), std::to_string(i));
    } else if (i == kFailing) {
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR) << i;
      EXPECT_EQ(sqlstate(r.get()), "22012");
    } else {
      EXPECT_EQ(PQresultStatus(r.get()), PGRES_PIPELINE_ABORTED) << i;
    }
    EXPECT_EQ(PQgetResult(c.get()), nullptr) << "end of results of query " << i;
  }
  {
    Result sync(PQgetResult(c.get()));
    ASSERT_TRUE(sync);
    EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC);
  }
  for (int i = 0; i < kBatch2; ++i) {
    Result r(PQgetResult(c.get()));
    ASSERT_TRUE(r);
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
    EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), std::to_string(100 + i));
    EXPECT_EQ(PQgetResult(c.get()), nullptr);
  }
  {
    Result sync(PQgetResult(c.get()));
    ASSERT_TRUE(sync);
    EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC);
  }
  ASSERT_EQ(PQexitPipelineMode(c.get()), 1) << PQerrorMessage(c.get());
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(query_value(c.get(), "select 'usable'"), "usable");
}

TEST(Query, CopyInAndOutRoundTripsMegabytes) {
  // ~4 MB normally; a quarter of a megabyte in the sanitizer run (PGLANE_SKIP_HEAVY=1).
  const int rows = skip_heavy() ? 2500 : 40000;
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  exec_ok(c.get(), "create temp table copy_t (id int primary key, payload text)");

  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < rows; ++i) {
    data += std::to_string(i);
    data += '\t';
    for (int j = 0; j < 96; ++j) {
      x = x * 1103515245u + 12345u;
      data += static_cast<char>('a' + (x >> 16) % 26);
    }
    data += '\n';
  }

  Result start(PQexec(c.get(), "copy copy_t from stdin"));
  ASSERT_EQ(PQresultStatus(start.get()), PGRES_COPY_IN) << PQresultErrorMessage(start.get());
  constexpr std::size_t kChunk = 64 * 1024;
  for (std::size_t pos = 0; pos < data.size(); pos += kChunk) {
    std::size_t n = std::min(kChunk, data.size() - pos);
    ASSERT_EQ(PQputCopyData(c.get(), data.data() + pos, static_cast<int>(n)), 1)
        << PQerrorMessage(c.get());
  }
  ASSERT_EQ(PQputCopyEnd(c.get(), nullptr), 1);
  Result done(PQgetResult(c.get()));
  ASSERT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(done.get());
  EXPECT_EQ(std::string(PQcmdTuples(done.get())), std::to_string(rows));
  while (Result more{PQgetResult(c.get())}) {
  }

  Result out(PQexec(c.get(), "copy (select * from copy_t order by id) to stdout"));
  ASSERT_EQ(PQresultStatus(out.get()), PGRES_COPY_OUT) << PQresultErrorMessage(out.get());
  std::string back;
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(c.get(), &buf, 0);
    if (n < 0) {
      ASSERT_EQ(n, -1) << PQerrorMessage(c.get());
      break;
    }
    back.append(buf, static_cast<std::size_t>(n));
    PQfreemem(buf);
  }
  Result end(PQgetResult(c.get()));
  EXPECT_EQ(PQresultStatus(end.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(end.get());
  while (Result more{PQgetResult(c.get())}) {
  }
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "COPY TO STDOUT returned different bytes";
  EXPECT_EQ(query_value(c.get(), "select count(*) from copy_t"), std::to_string(rows));
}

TEST(Query, ListenNotifyReachesListener) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn a = connect_ok(proxy.conninfo());
  Conn b = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(a.get()), CONNECTION_OK);
  ASSERT_EQ(PQstatus(b.get()), CONNECTION_OK);
  exec_ok(a.get(), "listen itest_channel");
  exec_ok(b.get(), "notify itest_channel, 'hello from b'");

  PGnotify* n = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (n == nullptr && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{PQsocket(a.get()), POLLIN, 0};
    poll(&pfd, 1, 100);
    ASSERT_EQ(PQconsumeInput(a.get()), 1) << PQerrorMessage(a.get());
    n = PQnotifies(a.get());
  }
  ASSERT_NE(n, nullptr) << "no notification within 5 s";
  EXPECT_STREQ(n->relname, "itest_channel");
  EXPECT_STREQ(n->extra, "hello from b");
  PQfreemem(n);
  // The notifier does not receive its own channel's notification (it does not listen).
  ASSERT_EQ(PQconsumeInput(b.get()), 1);
  EXPECT_EQ(PQnotifies(b.get()), nullptr);
}

}  // namespace
}  // namespace pglane::itest
