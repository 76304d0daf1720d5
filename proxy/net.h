// Asio vocabulary shared by proxy/: a Stream that is plain TCP or TLS over TCP, and a growable
// byte Buffer for framed reads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>

#include <openssl/ssl.h>

#include "protocol/frame.h"

namespace pglane::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

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

// One side of a proxied connection. Starts as plain TCP and may be upgraded to TLS once.
//
// TLS is OpenSSL driven directly (net_tls.cc), not Asio's ssl::stream: OpenSSL reads records
// through a BIO of ours from `tls_in_` (ciphertext read from the socket, in the Buffer's inline
// area or a cached block, released as soon as OpenSSL has taken it) and writes them to
// `tls_out_`, which is then written to the socket. With SSL_MODE_RELEASE_BUFFERS an idle TLS
// connection holds no record buffer at all: Asio's stream kept four of 17 KiB each for life.
// The SSL object is bound to no io_context, so a connection moves between workers whole.
class Stream {
 public:
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  tcp::socket& socket() { return socket_; }
  bool is_tls() const { return ssl_ != nullptr; }
  asio::any_io_executor executor() { return socket_.get_executor(); }

  // TLS handshake on the already-connected socket. For clients of servers, `host` sets SNI (when
  // it is a name) and, with `verify_name`, the name (or address) the certificate must carry.
  asio::awaitable<error_code> handshake_server(asio::ssl::context& ctx);
  asio::awaitable<error_code> handshake_client(asio::ssl::context& ctx, const std::string& host,
                                               bool verify_name);

  // RFC 5929 tls-server-end-point channel-binding data of this TLS connection: the hash of the
  // server's certificate (ours when we accepted, the peer's when we connected), with the hash of
  // its signature algorithm, SHA-256 in place of MD5 and SHA-1. Empty when not TLS or when the
  // algorithm has no single hash (Ed25519): then SCRAM-SHA-256-PLUS is not offered, as
  // PostgreSQL does.
  std::string tls_server_end_point(bool we_are_server);

  using ReadResult = std::tuple<error_code, std::size_t>;
  // A read of up to `buf`'s size. A buffer of at most Buffer::kSmall bytes (an idle session's
  // wait) makes a TLS read take its ciphertext into the inline area too. Not a coroutine: a
  // plaintext read is the socket's own operation, with no frame of ours around it. The caller
  // counts what it got (count_read) where the byte statistics need it.
  asio::awaitable<ReadResult> read_some(asio::mutable_buffer buf);
  void count_read(std::size_t n) { bytes_read += n; }
  asio::awaitable<error_code> write_all(asio::const_buffer buf);
  asio::awaitable<error_code> write_all(std::string_view bytes) {
    return write_all(asio::const_buffer(bytes.data(), bytes.size()));
  }
  // Writes several buffers with one gathered write (one socket write for TLS too).
  asio::awaitable<error_code> write_all(const std::vector<asio::const_buffer>& bufs);
  void close();
  // Moves a connection to another worker's io_context: the descriptor is released from this one
  // and adopted there; a TLS session goes along as it is. No operation may be pending, and TLS
  // must hold no bytes not yet handed over. Returns false when it cannot move; the caller then
  // closes it.
  bool rehome(const asio::any_io_executor& ex);
  // TLS: ciphertext read and not yet decrypted, or decrypted bytes not yet read (an idle
  // connection has none; a server's FATAL notice might be there).
  bool tls_holds_bytes() const {
    return ssl_ != nullptr && (!tls_in_.empty() || SSL_has_pending(ssl_) != 0);
  }

  // Bytes moved so far (plaintext, after TLS), for the per-user statistics.
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;

 private:
  friend struct TlsBio;

  // The writes: `count` buffers at `bufs`, or (bufs null) the one buffer `one`.
  asio::awaitable<error_code> write_plain_or_tls(asio::const_buffer one,
                                                 const asio::const_buffer* bufs, std::size_t count);

  // TLS (net_tls.cc).
  bool start_tls(asio::ssl::context& ctx, bool server);
  asio::awaitable<error_code> handshake();
  asio::awaitable<ReadResult> tls_read_some(asio::mutable_buffer buf);
  asio::awaitable<error_code> tls_write(const asio::const_buffer* bufs, std::size_t count);
  // Reads ciphertext from the socket into tls_in_ (into its inline area when `small`).
  asio::awaitable<error_code> fill_tls(bool small);
  // Writes what OpenSSL produced. A flush already under way (the other relay direction's)
  // takes the new records too.
  asio::awaitable<error_code> flush_tls();

  tcp::socket socket_;
  SSL* ssl_ = nullptr;
  Buffer tls_in_{kTlsIn};
  std::string tls_out_;      // records produced, not yet being written
  std::string tls_writing_;  // records being written now
  bool tls_flushing_ = false;
  error_code tls_failed_;  // a write failed or stopped half done: the TLS stream is unusable
  static constexpr std::size_t kTlsIn = 32 * 1024;
};

// Writes as much of `bufs` (the first 16 of them) as the socket takes now, without waiting
// (sendmsg with MSG_DONTWAIT); returns the bytes written. ec is set only for an error other than
// a full send buffer.
std::size_t send_now(tcp::socket& socket, const asio::const_buffer* bufs, std::size_t count,
                     error_code& ec);
// Writes what send_now left: `bufs` from byte `skip` on, with asio::async_write; adds the bytes
// written to `written`.
asio::awaitable<error_code> write_rest(tcp::socket& socket, const asio::const_buffer* bufs,
                                       std::size_t count, std::size_t skip, std::size_t& written);

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
