// CancelRequest through pglane: the right query dies with 57014 promptly; a wrong key does
// nothing.
#include <chrono>
#include <random>
#include <thread>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Cancel, CancelsRunningQueryWith57014WithinOneSecond) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  ASSERT_EQ(PQsendQuery(c.get(), "select pg_sleep(30) /* itest cancel */"), 1);

  PGcancel* cancel = PQgetCancel(c.get());
  ASSERT_NE(cancel, nullptr);
  Clock::time_point cancelled_at;
  bool sent = false;
  std::string cancel_error;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    char err[256] = {0};
    cancelled_at = Clock::now();
    sent = PQcancel(cancel, err, sizeof err) == 1;
    cancel_error = err;
  });

  Result r(PQgetResult(c.get()));
  const auto got_at = Clock::now();
  canceller.join();
  PQfreeCancel(cancel);
  ASSERT_TRUE(sent) << cancel_error;
  ASSERT_TRUE(r);
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(sqlstate(r.get()), "57014") << PQresultErrorMessage(r.get());
  EXPECT_LT(got_at - cancelled_at, 1s) << "the cancelled query returned too late";
  while (Result more{PQgetResult(c.get())}) {
  }
  EXPECT_EQ(query_value(c.get(), "select 'after cancel'"), "after cancel");
}

TEST(Cancel, WrongCancelKeyDoesNothing) {
  Proxy proxy;
  START_PROXY(proxy);
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  const auto start = Clock::now();
  ASSERT_EQ(PQsendQuery(c.get(), "select pg_sleep(2), 'survived'"), 1);
  std::this_thread::sleep_for(300ms);

  std::mt19937 rng(std::random_device{}());
  // A random key, and the client's own pid with a wrong secret.
  const uint32_t pids[] = {static_cast<uint32_t>(rng() & 0x3fffffff),
                           static_cast<uint32_t>(PQbackendPID(c.get()))};
  for (uint32_t pid : pids) {
    RawClient raw;
    ASSERT_TRUE(raw.connect(proxy.port()));
    ASSERT_TRUE(
        raw.send(be32(16) + be32(80877102) + be32(pid) + be32(static_cast<uint32_t>(rng()))));
    EXPECT_TRUE(raw.wait_closed(2s)) << "pglane kept a CancelRequest connection open";
  }

  Result r(PQgetResult(c.get()));
  ASSERT_TRUE(r);
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "survived");
  EXPECT_GE(Clock::now() - start, 1900ms);
  while (Result more{PQgetResult(c.get())}) {
  }
}

}  // namespace
}  // namespace pglane::itest
