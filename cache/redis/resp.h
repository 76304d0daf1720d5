// RESP, the Redis wire format, through hiredis's reader and formatter (Debian's hiredis 0.14:
// its I/O and TLS are not used; the transport is ours, on Asio). Sans-I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace pglane::cache::redis {

struct Reply {
  enum class Type : uint8_t { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<Reply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_status(std::string_view s) const { return type == Type::kStatus && str == s; }
};

// Bounds on one reply: elements of an array (at any depth), and bytes buffered while a reply is
// incomplete. Beyond them the reader fails (and the connection is closed).
inline constexpr int kMaxReplyElements = 1 << 16;
inline constexpr size_t kMaxReplyBytes = size_t{64} << 20;

// One command in RESP (an array of bulk strings), appended to `out`.
void format_command(std::span<const std::string_view> args, std::string& out);

// Incremental reply parser. Feed bytes as they arrive; take replies as they complete.
class ReplyReader {
 public:
  // Replies nest at most hiredis's 7 levels; see kMaxReplyElements and kMaxReplyBytes.
  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  void feed(std::string_view bytes);
  // The next complete reply, nullopt when more bytes are needed. Sets failed() on a protocol
  // error (the connection must then be closed).
  std::optional<Reply> next();
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }

 private:
  redisReader* reader_;
  bool failed_ = false;
  std::string error_;
};

}  // namespace pglane::cache::redis
