// The relay's read buffer: framing state across compaction, growth for one large frame, and
// storage released while idle and reused from the thread's cache.
#include <cstring>
#include <memory>
#include <string>
#include <thread>

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

// An idle session's read goes to the inline area, and an empty block is given up for it: a read
// cancelled between transactions must not leave the session holding a block while it waits.
TEST(Buffer, SmallReadsUseTheInlineAreaAndGiveUpAnEmptyBlock) {
  Buffer b(4096);
  auto space = b.prepare();  // a block, as the relay's reads take one
  EXPECT_GE(space.size(), 4096u);
  EXPECT_EQ(b.allocated(), 4096u);
  auto small = b.prepare_small();  // nothing buffered: the block goes back
  EXPECT_EQ(small.size(), Buffer::kSmall);
  EXPECT_EQ(b.allocated(), 0u);
  std::memcpy(small.data(), "Q", 1);
  b.commit(1);
  put(b, std::string(300, 'x'));  // past the inline area: moved into a block, bytes kept
  EXPECT_EQ(b.allocated(), 4096u);
  EXPECT_EQ(b.size(), 301u);
  EXPECT_EQ(b.data().substr(0, 2), "Qx");
  auto again = b.prepare_small();  // bytes buffered: the block stays
  EXPECT_EQ(b.allocated(), 4096u);
  EXPECT_GE(again.size(), 1u);
}

// A block taken from a thread's cache and freed on another thread (a server connection moved
// between workers) leaves the first thread's cache consistent: its exit frees each cached block
// once (this was a double free, found by ASan).
TEST(Buffer, BlocksCachedPerThreadAreFreedOnceWhenTheThreadEnds) {
  std::unique_ptr<Buffer> moved;
  std::thread worker([&moved] {
    Buffer a(4096);
    Buffer b(4096);
    put(a, "a");
    put(b, "b");
    a.consume(1);
    b.consume(1);
    a.release_if_empty();  // two blocks cached on this thread
    b.release_if_empty();
    moved = std::make_unique<Buffer>(4096);
    put(*moved, "m");  // takes one of them; it will be freed on the main thread
  });
  worker.join();  // the worker's cache is destroyed here
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(moved->data(), "m");
  moved.reset();
}

}  // namespace
}  // namespace pglane::proxy
