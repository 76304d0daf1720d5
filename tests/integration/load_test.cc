// Load and resources (heavy): 500 concurrent clients; a slow reader of a ~2 GB result must not
// grow pglane's memory.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Load, FiveHundredConcurrentClients) {
  SKIP_IF_HEAVY_DISABLED();
  constexpr int kClients = 500;
  ProxySettings s;
  s.pool_size = kClients;  // session pooling: every concurrent session holds its own server
  s.queue_timeout_ms = 60000;
  s.backend_connect_timeout_ms = 60000;
  Proxy proxy(s);
  START_PROXY(proxy);
  const std::string info = proxy.conninfo("connect_timeout=90");

  std::atomic<int> connected{0};
  std::atomic<int> succeeded{0};
  std::mutex mu;
  std::condition_variable all_in;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  threads.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      PGconn* c = PQconnectdb(info.c_str());
      bool ok = PQstatus(c) == CONNECTION_OK;
      std::string error = ok ? "" : PQerrorMessage(c);
      for (int q = 0; ok && q < 5; ++q) {
        PGresult* r = PQexec(c, "select 1");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && std::string(PQgetvalue(r, 0, 0)) == "1";
        if (!ok) {
          error = PQresultErrorMessage(r);
        }
        PQclear(r);
      }
      {
        // Stay connected until everyone has had a session, so all 500 are concurrent.
        std::unique_lock lock(mu);
        connected.fetch_add(1);
        if (ok) {
          succeeded.fetch_add(1);
        } else if (errors.size() < 5) {
          errors.push_back(error);
        }
        all_in.notify_all();
        all_in.wait_for(lock, 120s, [&] { return connected.load() == kClients; });
      }
      PQfinish(c);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::string sample;
  for (const auto& e : errors) {
    sample += e + "\n";
  }
  EXPECT_EQ(succeeded.load(), kClients) << sample << proxy.log_tail();
}

TEST(Load, SlowReaderOfHugeResultKeepsProxyMemoryBounded) {
  SKIP_IF_HEAVY_DISABLED();
  Proxy proxy;
  START_PROXY(proxy);
  Conn direct = connect_direct();
  Conn reader = connect_ok(proxy.conninfo());
  Conn other = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(reader.get()), CONNECTION_OK);
  ASSERT_EQ(PQstatus(other.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(other.get(), "select 1"), "1");
  const long baseline = rss_kib(proxy.pid());
  ASSERT_GT(baseline, 0);

  ASSERT_EQ(PQsendQuery(reader.get(),
                        "select repeat('x', 1000) from generate_series(1, 2000000) "
                        "/* itest slow reader */"),
            1);
  ASSERT_EQ(PQsetSingleRowMode(reader.get()), 1);
  long peak = baseline;
  auto sample = [&] { peak = std::max(peak, rss_kib(proxy.pid())); };

  // The first row, then a 2 s stall without reading: the server must be made to wait.
  Result first(PQgetResult(reader.get()));
  ASSERT_EQ(PQresultStatus(first.get()), PGRES_SINGLE_TUPLE) << PQresultErrorMessage(first.get());
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(100ms);
    sample();
  }
  EXPECT_EQ(query_value(direct.get(),
                        "select wait_event from pg_stat_activity where query like "
                        "'%itest slow reader%' and pid <> pg_backend_pid()"),
            "ClientWrite")
      << "backpressure did not reach the server";
  // Meanwhile another client is served promptly.
  const auto q_start = Clock::now();
  EXPECT_EQ(query_value(other.get(), "select 'not starved'"), "not starved");
  EXPECT_LT(Clock::now() - q_start, 1s);

  // Then ~50 MB read slowly (at most ~20 MB/s), sampling RSS as we go; 20 s at most.
  const auto deadline = Clock::now() + 20s;
  std::size_t bytes = 0;
  int rows = 0;
  while (bytes < 50u * 1024 * 1024 && Clock::now() < deadline) {
    Result r(PQgetResult(reader.get()));
    ASSERT_TRUE(r);
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_SINGLE_TUPLE) << PQresultErrorMessage(r.get());
    bytes += static_cast<std::size_t>(PQgetlength(r.get(), 0, 0));
    if (++rows % 20 == 0) {
      std::this_thread::sleep_for(1ms);
    }
    if (rows % 1000 == 0) {
      sample();
    }
  }
  sample();
  RecordProperty("rss_baseline_kib", std::to_string(baseline));
  RecordProperty("rss_peak_kib", std::to_string(peak));
  RecordProperty("bytes_read", std::to_string(bytes));
  EXPECT_GE(bytes, 10u * 1024 * 1024) << "read too little to judge";
  EXPECT_LT(peak - baseline, 32 * 1024)
      << "pglane RSS grew from " << baseline << " KiB to " << peak << " KiB";

  // Stop the query instead of reading 2 GB.
  PGcancel* cancel = PQgetCancel(reader.get());
  char err[256];
  PQcancel(cancel, err, sizeof err);
  PQfreeCancel(cancel);
  reader.reset();
  EXPECT_EQ(query_value(other.get(), "select 'still fine'"), "still fine");
}

}  // namespace
}  // namespace pglane::itest
