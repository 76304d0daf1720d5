// Sans-I/O framing of the PostgreSQL v3 wire protocol (PostgreSQL docs, 55.2 "Message Flow" and
// 55.7 "Message Formats"). Bytes in, {need more | message | violation} out. Views point into the
// caller's buffer; nothing here allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pglane::protocol {

// PostgreSQL refuses startup packets over 10,000 bytes (MAX_STARTUP_PACKET_LENGTH).
inline constexpr std::size_t kMaxStartupPacket = 10000;
// Default cap on one typed message, as PostgreSQL's PQ_LARGE_MESSAGE_LIMIT (1 GiB).
inline constexpr std::size_t kDefaultMaxMessage = std::size_t{1} << 30;
// A typed message header: one type byte plus an int32 length that counts itself.
inline constexpr std::size_t kHeaderSize = 5;

// Startup-phase request codes (the int32 after the length in an untyped packet).
inline constexpr std::uint32_t kProtocolV3 = 196608;  // 3.0
inline constexpr std::uint32_t kCancelRequestCode = 80877102;
inline constexpr std::uint32_t kSslRequestCode = 80877103;
inline constexpr std::uint32_t kGssEncRequestCode = 80877104;

enum class DecodeStatus {
  kNeedMore,   // not a whole frame yet; read more bytes and call again
  kMessage,    // a whole frame is available
  kViolation,  // the peer broke the protocol; answer 08P01 and close
};

// A typed message: `type` is the message byte, `body` the payload after the length field.
struct Frame {
  char type = 0;
  std::string_view body;
  std::size_t size = 0;  // bytes the whole frame occupies in the buffer (header + body)
};

// An untyped startup-phase packet: `code` is the first int32 of the payload (protocol version or
// request code) and `body` the bytes after it.
struct StartupFrame {
  std::uint32_t code = 0;
  std::string_view body;
  std::size_t size = 0;
};

template <typename T>
struct Decoded {
  DecodeStatus status = DecodeStatus::kNeedMore;
  T frame{};
  std::string_view error;  // human-readable reason when status == kViolation
};

// Decodes the typed message at the front of `buf`. A length below 4 or above `max_message` is a
// violation; it is detected from the 5-byte header alone, before any body is buffered.
Decoded<Frame> decode_frame(std::string_view buf, std::size_t max_message = kDefaultMaxMessage);

// Reads only the header of the typed message at the front of `buf` (for streaming relays that
// pass large bodies through without buffering them). On kMessage, frame.body is empty and
// frame.size is the full length of the message (header + body), which may exceed buf.size().
Decoded<Frame> decode_header(std::string_view buf, std::size_t max_message = kDefaultMaxMessage);

// Decodes the untyped startup-phase packet at the front of `buf` (StartupMessage, SSLRequest,
// GSSENCRequest, CancelRequest). Lengths below 8 or above kMaxStartupPacket are violations.
Decoded<StartupFrame> decode_startup(std::string_view buf);

// Big-endian field readers over a message body. Every read is bounds-checked; once a read fails
// the reader stays failed (ok() == false) and returns zero values.
class Reader {
 public:
  explicit Reader(std::string_view body) : data_(body) {}
  std::uint8_t u8();
  std::int16_t i16();
  std::int32_t i32();
  std::string_view cstring();  // NUL-terminated string (NUL not included)
  std::string_view bytes(std::size_t n);
  std::string_view rest();  // everything left
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }
  std::size_t remaining() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace pglane::protocol
