#include "protocol/frame.h"

namespace pglane::protocol {
namespace {

// The wire is big-endian (network order) throughout (PostgreSQL docs, 55.6 "Message Data Types").
std::uint32_t load_u32(std::string_view buf, std::size_t pos) {
  return (std::uint32_t{static_cast<std::uint8_t>(buf[pos])} << 24) |
         (std::uint32_t{static_cast<std::uint8_t>(buf[pos + 1])} << 16) |
         (std::uint32_t{static_cast<std::uint8_t>(buf[pos + 2])} << 8) |
         std::uint32_t{static_cast<std::uint8_t>(buf[pos + 3])};
}

template <typename T>
Decoded<T> violation(std::string_view why) {
  Decoded<T> d;
  d.status = DecodeStatus::kViolation;
  d.error = why;
  return d;
}

// Validates the 5-byte header of a typed message. On success returns kMessage with `type` and
// `size` (1 + length) set; the caller decides whether the body is there yet.
Decoded<Frame> check_header(std::string_view buf, std::size_t max_message) {
  if (buf.size() < kHeaderSize) {
    return {};
  }
  // The length is an Int32 that counts itself but not the type byte. Read as signed: a value
  // of 2^31 or more is negative on the wire and therefore below the minimum of 4.
  const auto len = static_cast<std::int32_t>(load_u32(buf, 1));
  if (len < 4) {
    return violation<Frame>("message length below 4");
  }
  if (static_cast<std::size_t>(len) > max_message) {
    return violation<Frame>("message length exceeds the limit");
  }
  Decoded<Frame> d;
  d.status = DecodeStatus::kMessage;
  d.frame.type = buf[0];
  d.frame.size = 1 + static_cast<std::size_t>(len);
  return d;
}

}  // namespace

Decoded<Frame> decode_frame(std::string_view buf, std::size_t max_message) {
  Decoded<Frame> d = check_header(buf, max_message);
  if (d.status != DecodeStatus::kMessage) {
    return d;
  }
  if (buf.size() < d.frame.size) {
    return {};
  }
  d.frame.body = buf.substr(kHeaderSize, d.frame.size - kHeaderSize);
  return d;
}

Decoded<Frame> decode_header(std::string_view buf, std::size_t max_message) {
  return check_header(buf, max_message);
}

Decoded<StartupFrame> decode_startup(std::string_view buf) {
  if (buf.size() < 4) {
    return {};
  }
  // Untyped packet: Int32 length (counting itself), Int32 code, payload. The smallest legal
  // packet is the 8-byte SSLRequest/GSSENCRequest; PostgreSQL caps the rest at 10,000 bytes.
  const auto len = static_cast<std::int32_t>(load_u32(buf, 0));
  if (len < 8) {
    return violation<StartupFrame>("startup packet length below 8");
  }
  if (static_cast<std::size_t>(len) > kMaxStartupPacket) {
    return violation<StartupFrame>("startup packet too long");
  }
  const auto size = static_cast<std::size_t>(len);
  if (buf.size() < size) {
    return {};
  }
  Decoded<StartupFrame> d;
  d.status = DecodeStatus::kMessage;
  d.frame.code = load_u32(buf, 4);
  d.frame.body = buf.substr(8, size - 8);
  d.frame.size = size;
  return d;
}

std::uint8_t Reader::u8() {
  const std::string_view b = bytes(1);
  return b.empty() ? 0 : static_cast<std::uint8_t>(b[0]);
}

std::int16_t Reader::i16() {
  const std::string_view b = bytes(2);
  if (b.empty()) {
    return 0;
  }
  return static_cast<std::int16_t>((static_cast<std::uint8_t>(b[0]) << 8) |
                                   static_cast<std::uint8_t>(b[1]));
}

std::int32_t Reader::i32() {
  const std::string_view b = bytes(4);
  return b.empty() ? 0 : static_cast<std::int32_t>(load_u32(b, 0));
}

std::string_view Reader::cstring() {
  if (!ok_) {
    return {};
  }
  const std::size_t nul = data_.find('\0', pos_);
  if (nul == std::string_view::npos) {
    ok_ = false;
    return {};
  }
  const std::string_view s = data_.substr(pos_, nul - pos_);
  pos_ = nul + 1;
  return s;
}

std::string_view Reader::bytes(std::size_t n) {
  if (!ok_ || n > remaining()) {
    ok_ = false;
    return {};
  }
  const std::string_view s = data_.substr(pos_, n);
  pos_ += n;
  return s;
}

std::string_view Reader::rest() {
  if (!ok_) {
    return {};
  }
  const std::string_view s = data_.substr(pos_);
  pos_ = data_.size();
  return s;
}

}  // namespace pglane::protocol
