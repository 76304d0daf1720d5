// Byte-level protocol edges over a raw socket: malformed startup packets, bytes smuggled after
// SSLRequest, GSSENCRequest, protocol 3.2, the login deadline and oversized messages.
#include <chrono>
#include <string>

#include "tests/integration/harness.h"

namespace pglane::itest {
namespace {

using namespace std::chrono_literals;

// Sends `bytes` and expects pglane to answer with a 08P01 ErrorResponse and/or close within 2 s.
void expect_rejected(const Proxy& proxy, const std::string& bytes, bool close_write,
                     const std::string& what, const std::string& code = "08P01") {
  SCOPED_TRACE(what);
  RawClient raw;
  ASSERT_TRUE(raw.connect(proxy.port()));
  ASSERT_TRUE(raw.send(bytes));
  if (close_write) {
    raw.shutdown_write();
  }
  auto msg = raw.read_message(2s);
  if (msg) {
    EXPECT_EQ(msg->type, 'E');
    EXPECT_EQ(error_field(msg->body, 'C'), code) << error_field(msg->body, 'M');
  }
  EXPECT_TRUE(raw.wait_closed(2s)) << "pglane did not close the connection";
}

void expect_normal_client_works(const Proxy& proxy) {
  Conn c = connect_ok(proxy.conninfo());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(query_value(c.get(), "select 1"), "1");
}

std::string proto30() {
  return be32(196608);
}

TEST(BadInput, StartupLengthBelowEight) {
  Proxy proxy;
  START_PROXY(proxy);
  expect_rejected(proxy, be32(4) + proto30(), false, "length 4");
  expect_rejected(proxy, be32(0) + proto30(), false, "length 0");
  expect_normal_client_works(proxy);
}

TEST(BadInput, StartupLengthHuge) {
  Proxy proxy;
  START_PROXY(proxy);
  expect_rejected(proxy, be32(0x7fffffff) + proto30(), false, "length 2^31-1");
  expect_rejected(proxy, be32(0xffffffff) + proto30(), false, "length 2^32-1");
  expect_rejected(proxy, be32(10001) + proto30() + std::string(100, 'a'), false, "length 10001");
  expect_normal_client_works(proxy);
}

TEST(BadInput, TruncatedStartupThenClose) {
  Proxy proxy;
  START_PROXY(proxy);
  RawClient raw;
  ASSERT_TRUE(raw.connect(proxy.port()));
  ASSERT_TRUE(raw.send(be32(100) + proto30() + "user\0pgl"));
  raw.shutdown_write();
  EXPECT_TRUE(raw.wait_closed(2s));
  expect_normal_client_works(proxy);
}

TEST(BadInput, GarbageBytes) {
  Proxy proxy;
  START_PROXY(proxy);
  expect_rejected(proxy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, "HTTP request");
  expect_rejected(proxy, std::string("\x00\x00\x00\x10\x12\x34\x56\x78garbage!", 16), false,
                  "unknown protocol code", "0A000");
  expect_normal_client_works(proxy);
}

TEST(BadInput, PlaintextAfterSslRequestInSameWriteIsRejected) {
  Proxy proxy;
  START_PROXY(proxy);
  RawClient raw;
  ASSERT_TRUE(raw.connect(proxy.port()));
  ASSERT_TRUE(
      raw.send(ssl_request() + startup_message({{"user", "pglane_app"}, {"database", "app"}})));
  std::string got = raw.read_some(2s);
  EXPECT_TRUE(got.empty() || got[0] == 'E')
      << "pglane acted on the SSLRequest: first byte '" << got.substr(0, 1) << "'";
  EXPECT_TRUE(raw.wait_closed(2s));
  expect_normal_client_works(proxy);
}

TEST(BadInput, GssEncRequestAnsweredNThenStartupContinues) {
  Proxy proxy;
  START_PROXY(proxy);
  RawClient raw;
  ASSERT_TRUE(raw.connect(proxy.port()));
  ASSERT_TRUE(raw.send(gssenc_request()));
  std::string answer;
  ASSERT_TRUE(raw.read_exact(answer, 1, 2s));
  EXPECT_EQ(answer, "N");
  ASSERT_TRUE(raw.send(startup_message({{"user", "pglane_app"}, {"database", "app"}})));
  auto msg = raw.read_message(2s);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->type, 'R');
  ASSERT_GE(msg->body.size(), 4u);
  EXPECT_EQ(msg->body.substr(0, 4), be32(10)) << "expected AuthenticationSASL";
}

TEST(BadInput, Protocol32StartupGetsNegotiateProtocolVersion) {
  Proxy proxy;
  START_PROXY(proxy);
  RawClient raw;
  ASSERT_TRUE(raw.connect(proxy.port()));
  ASSERT_TRUE(raw.send(startup_message({{"user", "pglane_app"}, {"database", "app"}}, 196610)));
  auto v = raw.read_message(2s);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, 'v');
  ASSERT_GE(v->body.size(), 8u);
  EXPECT_EQ(v->body.substr(0, 4), be32(0)) << "newest minor version supported: 3.0";
  auto r = raw.read_message(2s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, 'R');
}

TEST(BadInput, SilentClientClosedAfterAuthTimeout) {
  ProxySettings s;
  s.auth_timeout_ms = 500;
  Proxy proxy(s);
  START_PROXY(proxy);
  RawClient raw;
  ASSERT_TRUE(raw.connect(proxy.port()));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(raw.wait_closed(3s));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, 2s);
  EXPECT_GE(elapsed, 400ms);
  // A client that stops in the middle of SCRAM is cut off too.
  RawClient half;
  ASSERT_TRUE(half.connect(proxy.port()));
  ASSERT_TRUE(half.send(startup_message({{"user", "pglane_app"}, {"database", "app"}})));
  EXPECT_TRUE(half.wait_closed(2s));
  expect_normal_client_works(proxy);
}

TEST(BadInput, MessageOverMaxMessageSizeAfterLogin) {
  ProxySettings s;
  s.max_message_size = 1048576;
  s.users_file = users_file_with({"rawtrust trust"});
  Proxy proxy(s);
  START_PROXY(proxy);
  RawClient raw;
  ASSERT_TRUE(raw.connect(proxy.port()));
  ASSERT_TRUE(raw.send(startup_message({{"user", "rawtrust"}, {"database", "app"}})));
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    auto m = raw.read_message(5s);
    ASSERT_TRUE(m) << "login did not complete";
    ASSERT_NE(m->type, 'E') << error_field(m->body, 'M');
    ready = m->type == 'Z';
  }
  ASSERT_TRUE(ready);
  // A Query claiming 2 MiB: the header alone is enough to refuse it.
  ASSERT_TRUE(raw.send(std::string("Q") + be32(2 * 1048576) + std::string(1000, 'x')));
  auto e = raw.read_message(2s);
  ASSERT_TRUE(e) << "no ErrorResponse for an oversized message";
  EXPECT_EQ(e->type, 'E');
  EXPECT_EQ(error_field(e->body, 'C'), "08P01") << error_field(e->body, 'M');
  EXPECT_TRUE(raw.wait_closed(2s));
  expect_normal_client_works(proxy);
}

}  // namespace
}  // namespace pglane::itest
