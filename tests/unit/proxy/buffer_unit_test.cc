// The relay's read buffer: framing state across compaction, growth for one large frame, and
// storage released while idle and reused from the thread's cache.
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "proxy/net.h"

namespace pglane::proxy {
namespace {

void put(Buffer& b, const std::string& bytes) {
  auto space = b.prepare(bytes.size());
  ASSERT_GE(space.size(), bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  b.commit(bytes.size());
}

TEST(Buffer, KeepsUnconsumedBytesAcrossCompactionAndGrowth) {
  Buffer b(16);
  put(b, "abcdefgh");
  b.consume(3);
  EXPECT_EQ(b.data(), "defgh");
  put(b, "ijklmnopqrst");  // compacts, then fits in 16
  EXPECT_EQ(b.data(), "defghijklmnopqrst");
  EXPECT_EQ(b.allocated(), 17u);  // grown by one byte past capacity for the whole frame
  const std::string big(100, 'x');
  put(b, big);  // grows past capacity with the earlier bytes kept
  EXPECT_EQ(b.data(), "defghijklmnopqrst" + big);
  EXPECT_GE(b.allocated(), 117u);
  b.consume(b.size());
  EXPECT_TRUE(b.empty());
  b.release_if_empty();
  EXPECT_EQ(b.allocated(), 0u);
}

TEST(Buffer, ReleasesOnlyWhenEmptyAndReusesTheBlock) {
  Buffer a(64);
  put(a, "hello");
  a.release_if_empty();
  EXPECT_EQ(a.allocated(), 64u) << "bytes are still buffered";
  const char* block = a.data().data();
  a.consume(5);
  a.release_if_empty();
  EXPECT_EQ(a.allocated(), 0u);
  Buffer b(64);
  put(b, "again");
  EXPECT_EQ(b.data().data(), block) << "the released block is taken from the thread's cache";
  EXPECT_EQ(b.data(), "again");
}

}  // namespace
}  // namespace pglane::proxy
