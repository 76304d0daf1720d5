#include "protocol/frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

namespace pglane::protocol {
namespace {

using namespace std::string_view_literals;

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string typed(char type, std::string_view body) {
  return std::string(1, type) + be32(static_cast<std::uint32_t>(body.size() + 4)) +
         std::string(body);
}

std::string header(char type, std::uint32_t len) {
  return std::string(1, type) + be32(len);
}

TEST(DecodeFrame, NeedsFiveBytesForHeader) {
  for (std::string_view s : {""sv, "Q"sv, "Q\0"sv, "Q\0\0\0"sv}) {
    ASSERT_LT(s.size(), kHeaderSize);
    EXPECT_EQ(decode_frame(s).status, DecodeStatus::kNeedMore);
  }
}

TEST(DecodeFrame, WholeMessage) {
  const std::string msg = typed('Q', std::string("select 1\0", 9));
  const auto d = decode_frame(msg);
  ASSERT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.type, 'Q');
  EXPECT_EQ(d.frame.body, std::string_view("select 1\0", 9));
  EXPECT_EQ(d.frame.size, msg.size());
}

TEST(DecodeFrame, EmptyBody) {
  const auto d = decode_frame(header('X', 4));
  ASSERT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.type, 'X');
  EXPECT_TRUE(d.frame.body.empty());
  EXPECT_EQ(d.frame.size, 5u);
}

TEST(DecodeFrame, SplitAtEveryByteBoundary) {
  const std::string msg = typed('D', std::string("\0\x02\0\0\0\x01x\xff\xff\xff\xff", 11));
  for (std::size_t n = 0; n < msg.size(); ++n) {
    EXPECT_EQ(decode_frame(std::string_view(msg).substr(0, n)).status, DecodeStatus::kNeedMore)
        << "prefix " << n;
  }
  const auto d = decode_frame(msg);
  ASSERT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.size, msg.size());
}

TEST(DecodeFrame, SeveralMessagesInOneBuffer) {
  const std::string buf = typed('T', "abc") + typed('D', "") + typed('C', "SELECT 1") +
                          typed('Z', "I") + std::string("Q\0", 2);  // trailing partial header
  std::string_view rest = buf;
  std::string types;
  while (true) {
    const auto d = decode_frame(rest);
    if (d.status != DecodeStatus::kMessage) {
      EXPECT_EQ(d.status, DecodeStatus::kNeedMore);
      break;
    }
    types.push_back(d.frame.type);
    rest.remove_prefix(d.frame.size);
  }
  EXPECT_EQ(types, "TDCZ");
  EXPECT_EQ(rest.size(), 2u);
}

TEST(DecodeFrame, LengthBelowFourIsViolation) {
  for (std::uint32_t len : {0u, 1u, 2u, 3u}) {
    const auto d = decode_frame(header('Q', len));
    EXPECT_EQ(d.status, DecodeStatus::kViolation) << len;
    EXPECT_FALSE(d.error.empty());
  }
}

TEST(DecodeFrame, OversizedDetectedFromHeaderAlone) {
  EXPECT_EQ(decode_frame(header('D', 1001), 1000).status, DecodeStatus::kViolation);
  EXPECT_EQ(decode_frame(header('D', 1000), 1000).status, DecodeStatus::kNeedMore);
  EXPECT_EQ(decode_frame(header('D', (1u << 30) + 1)).status, DecodeStatus::kViolation);
  EXPECT_EQ(decode_frame(header('D', 0x7fffffffu)).status, DecodeStatus::kViolation);
  // 2^31 and above are negative int32 lengths.
  EXPECT_EQ(decode_frame(header('D', 0x80000000u)).status, DecodeStatus::kViolation);
  EXPECT_EQ(decode_frame(header('D', 0x80000001u)).status, DecodeStatus::kViolation);
  EXPECT_EQ(decode_frame(header('D', 0xffffffffu)).status, DecodeStatus::kViolation);
  // Even with an unlimited cap, a negative length is refused.
  EXPECT_EQ(decode_frame(header('D', 0x80000000u), SIZE_MAX).status, DecodeStatus::kViolation);
  EXPECT_EQ(decode_frame(header('D', 0x7fffffffu), SIZE_MAX).status, DecodeStatus::kNeedMore);
}

TEST(DecodeHeader, ReturnsSizeWithoutBody) {
  const std::string msg = typed('D', std::string(100, 'x'));
  EXPECT_EQ(decode_header(std::string_view(msg).substr(0, 4)).status, DecodeStatus::kNeedMore);
  for (std::size_t n = kHeaderSize; n <= msg.size(); ++n) {
    const auto d = decode_header(std::string_view(msg).substr(0, n));
    ASSERT_EQ(d.status, DecodeStatus::kMessage) << n;
    EXPECT_EQ(d.frame.type, 'D');
    EXPECT_EQ(d.frame.size, msg.size());
    EXPECT_TRUE(d.frame.body.empty());
  }
}

TEST(DecodeHeader, SameValidationAsDecodeFrame) {
  EXPECT_EQ(decode_header(header('D', 3)).status, DecodeStatus::kViolation);
  EXPECT_EQ(decode_header(header('D', 101), 100).status, DecodeStatus::kViolation);
  EXPECT_EQ(decode_header(header('D', 0x80000000u)).status, DecodeStatus::kViolation);
  const auto d = decode_header(header('D', 0x7fffffffu), SIZE_MAX);
  ASSERT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.size, 0x80000000u);
}

std::string startup_packet(std::uint32_t code, std::string_view body) {
  return be32(static_cast<std::uint32_t>(body.size() + 8)) + be32(code) + std::string(body);
}

TEST(DecodeStartup, SslRequest) {
  const std::string pkt = startup_packet(kSslRequestCode, "");
  for (std::size_t n = 0; n < pkt.size(); ++n) {
    EXPECT_EQ(decode_startup(std::string_view(pkt).substr(0, n)).status, DecodeStatus::kNeedMore);
  }
  const auto d = decode_startup(pkt);
  ASSERT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.code, kSslRequestCode);
  EXPECT_TRUE(d.frame.body.empty());
  EXPECT_EQ(d.frame.size, 8u);
}

TEST(DecodeStartup, BodyAndTrailingBytes) {
  const std::string pkt = startup_packet(kProtocolV3, std::string("user\0bob\0\0", 10));
  const std::string buf = pkt + "Qgarbage";
  const auto d = decode_startup(buf);
  ASSERT_EQ(d.status, DecodeStatus::kMessage);
  EXPECT_EQ(d.frame.code, kProtocolV3);
  EXPECT_EQ(d.frame.body, std::string_view("user\0bob\0\0", 10));
  EXPECT_EQ(d.frame.size, pkt.size());
}

TEST(DecodeStartup, BadLengths) {
  for (std::uint32_t len : {0u, 4u, 7u, 10001u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    const auto d = decode_startup(be32(len));
    EXPECT_EQ(d.status, DecodeStatus::kViolation) << len;
    EXPECT_FALSE(d.error.empty());
  }
  EXPECT_EQ(decode_startup(be32(10000)).status, DecodeStatus::kNeedMore);
  const std::string max = startup_packet(kProtocolV3, std::string(10000 - 8, 'a'));
  EXPECT_EQ(decode_startup(max).status, DecodeStatus::kMessage);
}

TEST(DecodeFuzz, RandomGarbageNeverCrashes) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> len(0, 64);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string buf(static_cast<std::size_t>(len(rng)), '\0');
    for (char& c : buf) {
      c = static_cast<char>(byte(rng));
    }
    std::string_view rest = buf;
    // Consume frames until the decoder stops; every frame must lie within the buffer.
    while (true) {
      const auto d = decode_frame(rest, 1 << 20);
      if (d.status != DecodeStatus::kMessage) {
        break;
      }
      ASSERT_LE(d.frame.size, rest.size());
      ASSERT_EQ(d.frame.body.size() + kHeaderSize, d.frame.size);
      rest.remove_prefix(d.frame.size);
    }
    const auto s = decode_startup(buf);
    if (s.status == DecodeStatus::kMessage) {
      ASSERT_LE(s.frame.size, buf.size());
    }
    decode_header(buf);
  }
}

TEST(Reader, ReadsBigEndianFields) {
  const std::string body =
      std::string("\x7f\xff\xfe\x80\0\0\x01", 7) + "abc" + std::string(1, '\0') + "xyz";
  Reader r(body);
  EXPECT_EQ(r.u8(), 0x7f);
  EXPECT_EQ(r.i16(), static_cast<std::int16_t>(0xfffe));
  EXPECT_EQ(r.i32(), static_cast<std::int32_t>(0x80000001u));
  EXPECT_EQ(r.cstring(), "abc");
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(r.bytes(2), "xy");
  EXPECT_EQ(r.rest(), "z");
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(r.ok());
}

TEST(Reader, FailureIsSticky) {
  Reader r(std::string_view("\x01\x02\x03", 3));
  EXPECT_EQ(r.i32(), 0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.u8(), 0);  // would have fit, but the reader stays failed
  EXPECT_EQ(r.i16(), 0);
  EXPECT_EQ(r.bytes(1), "");
  EXPECT_EQ(r.rest(), "");
  EXPECT_FALSE(r.ok());
}

TEST(Reader, BoundsOfEveryRead) {
  {
    Reader r("");
    EXPECT_EQ(r.u8(), 0);
    EXPECT_FALSE(r.ok());
  }
  {
    Reader r("a");
    EXPECT_EQ(r.i16(), 0);
    EXPECT_FALSE(r.ok());
  }
  {
    Reader r("abc");  // no NUL
    EXPECT_EQ(r.cstring(), "");
    EXPECT_FALSE(r.ok());
  }
  {
    Reader r("abc");
    EXPECT_EQ(r.bytes(4), "");
    EXPECT_FALSE(r.ok());
  }
  {
    Reader r("abc");
    EXPECT_EQ(r.bytes(SIZE_MAX), "");
    EXPECT_FALSE(r.ok());
  }
  {
    Reader r("abc");
    EXPECT_EQ(r.bytes(3), "abc");
    EXPECT_EQ(r.bytes(0), "");
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.rest(), "");
    EXPECT_TRUE(r.at_end());
  }
  {
    Reader r(std::string_view("\0", 1));
    EXPECT_EQ(r.cstring(), "");
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(r.at_end());
  }
}

}  // namespace
}  // namespace pglane::protocol
