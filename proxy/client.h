// The client end of a session, shared by its parts: the socket, the bytes read from it and not
// yet relayed, one writer for both relay directions, and the error finish() sends.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "proxy/net.h"

namespace pglane::proxy {

class Client {
 public:
  explicit Client(tcp::socket socket);

  Stream stream;
  Buffer in;                // bytes from the client not yet relayed
  std::string error_bytes;  // ErrorResponse to send before closing

  // The fatal ErrorResponse finish() sends.
  void fail(std::string_view sqlstate, std::string_view message);

  // Writes to the client one at a time: both relay directions answer it (local replies come
  // from the client side), and their writes must not interleave.
  asio::awaitable<error_code> write(const std::vector<asio::const_buffer>& bufs);
  asio::awaitable<error_code> write(std::string_view bytes);
  // A write was abandoned half done (its coroutine was cancelled): the stream may hold half a
  // message, so nothing more may be written.
  bool broken() const { return broken_; }

 private:
  bool busy_ = false;
  bool broken_ = false;
  int waiting_ = 0;          // writers waiting for busy_
  asio::steady_timer free_;  // wakes them
};

}  // namespace pglane::proxy
