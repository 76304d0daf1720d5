// Asio vocabulary shared by proxy/: a Stream that is plain TCP or TLS over TCP, and a growable
// byte Buffer for framed reads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "protocol/frame.h"

namespace pglane::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// One side of a proxied connection. Starts as plain TCP and may be upgraded to TLS once.
class Stream {
 public:
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  tcp::socket& socket() { return socket_; }
  bool is_tls() const { return tls_ != nullptr; }
  asio::any_io_executor executor() { return socket_.get_executor(); }

  // TLS handshake on the already-connected socket. For clients of servers, `host` sets SNI (when
  // it is a name) and, with `verify_name`, the name the certificate must carry.
  asio::awaitable<error_code> handshake_server(asio::ssl::context& ctx);
  asio::awaitable<error_code> handshake_client(asio::ssl::context& ctx, const std::string& host,
                                               bool verify_name);

  // RFC 5929 tls-server-end-point channel-binding data of this TLS connection: the hash of the
  // server's certificate (ours when we accepted, the peer's when we connected), with the hash of
  // its signature algorithm, SHA-256 in place of MD5 and SHA-1. Empty when not TLS or when the
  // algorithm has no single hash (Ed25519): then SCRAM-SHA-256-PLUS is not offered, as
  // PostgreSQL does.
  std::string tls_server_end_point(bool we_are_server);

  asio::awaitable<std::pair<error_code, std::size_t>> read_some(asio::mutable_buffer buf);
  asio::awaitable<error_code> write_all(asio::const_buffer buf);
  asio::awaitable<error_code> write_all(std::string_view bytes) {
    return write_all(asio::const_buffer(bytes.data(), bytes.size()));
  }
  void close();
  // Moves a connection to another worker's io_context: the descriptor is released from this one
  // and adopted there, and a TLS session (OpenSSL's SSL object, keys and sequence numbers) is
  // handed to a new Asio stream there, since Asio's holds timers of the old io_context. No
  // operation may be pending, and a TLS session must hold no bytes it has not handed over.
  // Returns false when it cannot move; the caller then closes it.
  bool rehome(const asio::any_io_executor& ex);
  // Waits until bytes can be read without holding a read buffer (idle sessions hold none).
  asio::awaitable<error_code> wait_readable();
  // Writes several buffers with one gathered write.
  asio::awaitable<error_code> write_all(const std::vector<asio::const_buffer>& bufs);

  // Bytes moved so far (plaintext, after TLS), for the per-user statistics.
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;

 private:
  tcp::socket socket_;
  // References socket_, so a Stream never moves once TLS is on (it lives behind unique_ptr).
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
};

// A contiguous read buffer: [start_, end_) holds unconsumed bytes. Storage is allocated on first
// use and can be released while idle so idle sessions cost little memory. It is never zeroed,
// and blocks of the usual size are kept per thread for the next buffer that needs one: a
// transaction-pooled client releases its buffer between transactions, and taking a fresh 32 KiB
// block from malloc and clearing it cost more than the transaction's own parsing.
class Buffer {
 public:
  explicit Buffer(std::size_t capacity) : capacity_(capacity) {}
  ~Buffer() { free_storage(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  std::string_view data() const { return {storage_ + start_, end_ - start_}; }
  std::size_t size() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }
  void consume(std::size_t n) {
    start_ += n;
    if (start_ == end_) {
      start_ = end_ = 0;
    }
  }
  // Space to read into, after compacting; at least `min_free` bytes (grows past capacity only
  // when a single frame that must be inspected whole needs it).
  asio::mutable_buffer prepare(std::size_t min_free = 1);
  // Space for the first read of an idle session, which must hold no block while it waits: a
  // small area inside the Buffer when it holds no storage (else as prepare()). A short request
  // arrives whole in it; the next prepare() moves what is there into a block.
  asio::mutable_buffer prepare_small();
  void commit(std::size_t n) { end_ += n; }
  // Frees the storage when nothing is buffered.
  void release_if_empty() {
    if (empty()) {
      free_storage();
    }
  }
  std::size_t capacity() const { return capacity_; }
  // Bytes of storage held now outside the Buffer itself (0 once released).
  std::size_t allocated() const { return storage_ == small_ ? 0 : allocated_; }

  static constexpr std::size_t kSmall = 256;

 private:
  void free_storage();

  char small_[kSmall];
  char* storage_ = nullptr;  // null, small_ or a block of allocated_ bytes
  std::size_t allocated_ = 0;
  std::size_t start_ = 0;
  std::size_t end_ = 0;
  std::size_t capacity_;
};

// Reads from `s` into `buf` until a whole typed frame is buffered and returns it (a view into
// `buf`, valid until the next consume/prepare). ec is set on I/O errors.
// True when `host` is an IPv4 or IPv6 address, not a name (SNI and DNS apply to names only).
bool is_ip_literal(const std::string& host);

asio::awaitable<protocol::Decoded<protocol::Frame>> read_frame(Stream& s, Buffer& buf,
                                                               std::size_t max_message,
                                                               error_code& ec);
// Same for an untyped startup-phase packet.
asio::awaitable<protocol::Decoded<protocol::StartupFrame>> read_startup(Stream& s, Buffer& buf,
                                                                        error_code& ec);

}  // namespace pglane::proxy
