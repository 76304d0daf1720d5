// The Redis transport (cache/redis/) against the sandbox's real Redis 7, TLS only: verify-full
// against the sandbox CA, a wrong CA refused, ACL users, pipelined calls from many coroutines
// on one connection, timeouts and the circuit breaker, and Pub/Sub.
#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cache/redis/client.h"
#include "cache/redis/connection.h"
#include "cache/redis/subscriber.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

namespace redis = cache::redis;
namespace asio = boost::asio;
using namespace std::chrono_literals;

redis::Options sandbox_redis() {
  redis::Options o;
  o.host = "127.0.0.1";
  o.port = static_cast<uint16_t>(std::stoi(env("REDIS_TLS_PORT")));
  o.tls = true;
  return o;
}

std::shared_ptr<asio::ssl::context> tls_with(const std::string& ca) {
  auto ctx = redis::make_tls_context(ca, "", "");
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}

// Runs `body` as a coroutine on a fresh io_context until it finishes (10 s at most).
template <class F>
void run(F body) {
  asio::io_context io;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await body(io);
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            ADD_FAILURE() << "exception: " << ex.what();
          }
        }
      });
  io.run_for(10s);
  EXPECT_TRUE(done) << "the coroutine did not finish";
}

TEST(RedisTransport, VerifiedTlsRoundTripAndPipelining) {
  auto tls = tls_with(env("TLS_CA"));
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::Client client(io.get_executor(), tls, sandbox_redis());
    std::string_view set[] = {"SET", "pglane:test:k", "v1"};
    auto r = co_await client.call(set);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_TRUE(r->is_status("OK"));
    }
    // 200 coroutines share the connection; every reply goes to its own caller.
    int right = 0;
    int finished = 0;
    for (int i = 0; i < 200; ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            const std::string v = std::to_string(i);
            std::string_view echo[] = {"ECHO", v};
            auto e = co_await client.call(echo);
            if (e.ok() && e->str == v) {
              ++right;
            }
            ++finished;
          },
          asio::detached);
    }
    while (finished < 200) {
      asio::steady_timer t(io, 1ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    EXPECT_EQ(right, 200);
    EXPECT_EQ(client.stats().connects, 1u);
    client.close();
  });
}

TEST(RedisTransport, WrongCaIsRefused) {
  auto tls = tls_with(env("TLS_OTHER_CA"));
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::Connection conn(io.get_executor(), tls, sandbox_redis());
    absl::Status s = co_await conn.open();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(std::string(s.message()).find("TLS handshake"), std::string::npos) << s;
  });
}

TEST(RedisTransport, AclUserAndBadPassword) {
  auto tls = tls_with(env("TLS_CA"));
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::Client admin(io.get_executor(), tls, sandbox_redis());
    std::string_view acl[] = {"ACL",     "SETUSER",   "pglane_t", "on",
                              ">s3cret", "~pglane:*", "&*",       "+@all"};
    auto made = co_await admin.call(acl);
    EXPECT_TRUE(made.ok() && made->is_status("OK"));
    redis::Options o = sandbox_redis();
    o.user = "pglane_t";
    o.password = "s3cret";
    redis::Client user(io.get_executor(), tls, o);
    std::string_view ping[] = {"PING"};
    auto pong = co_await user.call(ping);
    EXPECT_TRUE(pong.ok() && pong->is_status("PONG")) << pong.status();
    o.password = "wrong";
    redis::Connection bad(io.get_executor(), tls, o);
    absl::Status s = co_await bad.open();
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
    std::string_view del[] = {"ACL", "DELUSER", "pglane_t"};
    co_await admin.call(del);
    admin.close();
    user.close();
  });
}

TEST(RedisTransport, UnreachableRedisOpensTheBreakerAndFailsFast) {
  auto tls = tls_with(env("TLS_CA"));
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::Options o = sandbox_redis();
    o.port = static_cast<uint16_t>(any_free_port());
    redis::Client client(io.get_executor(), tls, o);
    std::string_view ping[] = {"PING"};
    auto first = co_await client.call(ping);
    EXPECT_FALSE(first.ok());
    const auto t0 = std::chrono::steady_clock::now();
    auto second = co_await client.call(ping);
    EXPECT_FALSE(second.ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5ms) << "the open breaker answers at once";
    EXPECT_EQ(client.stats().breaker_opens, 1u);
  });
}

TEST(RedisTransport, SubscriberGetsPublishedMessages) {
  auto tls = tls_with(env("TLS_CA"));
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    std::vector<std::string> got;
    int subscribed = 0;
    redis::Subscriber::Hooks hooks;
    hooks.message = [&](std::string_view m) { got.emplace_back(m); };
    hooks.subscribed = [&] { ++subscribed; };
    redis::Subscriber sub(io.get_executor(), tls, sandbox_redis(), "pglane:test:chan", hooks);
    sub.start();
    for (int i = 0; i < 500 && subscribed == 0; ++i) {
      asio::steady_timer t(io, 2ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    EXPECT_EQ(subscribed, 1);
    redis::Client pub(io.get_executor(), tls, sandbox_redis());
    for (const char* m : {"a", "b", "c"}) {
      std::string_view args[] = {"PUBLISH", "pglane:test:chan", m};
      auto r = co_await pub.call(args);
      EXPECT_TRUE(r.ok() && r->integer == 1);
    }
    for (int i = 0; i < 500 && got.size() < 3; ++i) {
      asio::steady_timer t(io, 2ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c"}));
    sub.stop();
    pub.close();
  });
}

}  // namespace
}  // namespace pglane::itest
