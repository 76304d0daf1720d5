// One connection to Redis (or ElastiCache): TCP, TLS with verify-full against a CA (SNI, an
// optional client certificate), AUTH with an ACL user, and RESP through resp.h. Runs on one
// executor; not thread-safe. The only Redis I/O in pglane is here and in what builds on it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache/redis/resp.h"

namespace pglane::cache::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  bool tls = true;
  std::string server_name;  // the name the certificate must carry, and SNI; empty: host
  std::string user;         // ACL user; empty: AUTH with the password alone (if any)
  std::string password;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{250};
};

// A client TLS context that verifies the server against `ca_file`, with a client certificate
// when `cert_file` is set. Errors name the file.
absl::StatusOr<std::shared_ptr<asio::ssl::context>> make_tls_context(const std::string& ca_file,
                                                                     const std::string& cert_file,
                                                                     const std::string& key_file);

class Connection {
 public:
  // `tls` must be set when opts.tls is.
  Connection(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls,
             const Options& opts);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connect, handshake (the certificate must name server_name or host), AUTH: all within
  // connect_timeout.
  asio::awaitable<absl::Status> open();
  // Writes bytes (formatted commands, possibly several: pipelining).
  asio::awaitable<absl::Status> send(std::string_view bytes);
  // The next reply, waiting as long as it takes (subscribers) or until close().
  asio::awaitable<absl::StatusOr<Reply>> receive();
  // One command and its reply, within command_timeout (then the connection is closed).
  asio::awaitable<absl::StatusOr<Reply>> call(std::span<const std::string_view> args);
  void close();
  bool is_open() const { return open_; }
  // The socket's descriptor (-1 when closed), for FIONREAD from another thread.
  int native_handle() const { return link_ ? link_->socket.native_handle() : -1; }
  // Set while receive() holds bytes read from the socket that it has not returned as replies
  // yet: cleared just before it waits for more. With FIONREAD, another thread can tell whether
  // anything has arrived that its owner has not handled.
  void set_unhandled_flag(std::atomic<bool>* flag) { unhandled_ = flag; }
  // Where the next open() goes (a cluster node a redirection named); closed first.
  void retarget(const std::string& host, uint16_t port) {
    close();
    opts_.host = host;
    opts_.port = port;
  }
  const Options& options() const { return opts_; }

 private:
  asio::awaitable<absl::Status> open_unbounded();

  // One TCP (and TLS) connection and what its pending operations use. Shared with every
  // operation in flight, so that closing or destroying the Connection never frees a stream or
  // buffer an operation still holds: the operation completes (aborted) on its own Link and sees
  // `closed` before touching the Connection again.
  struct Link {
    explicit Link(const asio::any_io_executor& ex) : socket(ex) {}
    tcp::socket socket;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
    ReplyReader reader;
    std::array<char, 16384> buf;
    bool closed = false;
  };

  asio::any_io_executor ex_;
  std::shared_ptr<asio::ssl::context> tls_ctx_;
  Options opts_;
  std::shared_ptr<Link> link_;
  std::string out_;  // scratch for call()
  bool open_ = false;
  std::atomic<bool>* unhandled_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
};

}  // namespace pglane::cache::redis
