// Stream's TLS: OpenSSL driven directly through a BIO of ours (see net.h). OpenSSL never touches
// the socket: it takes ciphertext from tls_in_, which the stream fills with Asio reads, and puts
// records in tls_out_, which the stream writes with Asio. So the reads keep Asio's reactor path
// (no readiness wait, no epoll_ctl), and nothing in the session belongs to an io_context.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/net.h"

namespace pglane::proxy {

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

}  // namespace

// The BIO: both ends of OpenSSL's transport, over the stream's two byte queues.
struct TlsBio {
  static Stream* stream(BIO* b) { return static_cast<Stream*>(BIO_get_data(b)); }

  static int read(BIO* b, char* out, int len) {
    BIO_clear_retry_flags(b);
    Buffer& in = stream(b)->tls_in_;
    if (in.empty()) {
      BIO_set_retry_read(b);  // SSL_ERROR_WANT_READ: the stream reads the socket
      return -1;
    }
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(len), in.size());
    std::memcpy(out, in.data().data(), n);
    in.consume(n);
    return static_cast<int>(n);
  }

  static int write(BIO* b, const char* data, int len) {
    BIO_clear_retry_flags(b);
    stream(b)->tls_out_.append(data, static_cast<std::size_t>(len));
    return len;
  }

  static long ctrl(BIO* b, int cmd, long, void*) {  // NOLINT(runtime/int): OpenSSL's signature
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(stream(b)->tls_in_.size());  // NOLINT(runtime/int)
      case BIO_CTRL_WPENDING:
        return static_cast<long>(stream(b)->tls_out_.size());  // NOLINT(runtime/int)
      default:
        return 0;
    }
  }

  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pglane stream");
      BIO_meth_set_read(made, &TlsBio::read);
      BIO_meth_set_write(made, &TlsBio::write);
      BIO_meth_set_ctrl(made, &TlsBio::ctrl);
      BIO_meth_set_create(made, &TlsBio::create);
      return made;
    }();
    return m;
  }
};

namespace {

// The error of a failed OpenSSL call, in Asio's SSL category (its messages name OpenSSL's
// reason, "certificate verify failed" say), or Asio's stream_truncated when OpenSSL has none.
error_code tls_error(int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    return asio::error::eof;  // the peer's close_notify
  }
  const unsigned long e = ERR_get_error();  // NOLINT(runtime/int)
  ERR_clear_error();
  if (e != 0) {
    return error_code(static_cast<int>(e), asio::error::get_ssl_category());
  }
  return asio::ssl::error::stream_truncated;
}

}  // namespace

Stream::~Stream() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);  // and the BIO with it
  }
}

bool Stream::start_tls(asio::ssl::context& ctx, bool server) {
  ERR_clear_error();  // a failure below reports its own error, not an older one
  ssl_ = SSL_new(ctx.native_handle());
  if (ssl_ == nullptr) {
    return false;
  }
  BIO* bio = BIO_new(TlsBio::method());
  if (bio == nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    return false;
  }
  BIO_set_data(bio, this);  // a Stream never moves (it is a member of objects that do not)
  SSL_set_bio(ssl_, bio, bio);
  // OpenSSL frees its record buffers whenever they are empty: an idle connection holds none.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  if (server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
  return true;
}

asio::awaitable<error_code> Stream::handshake_server(asio::ssl::context& ctx) {
  if (!start_tls(ctx, /*server=*/true)) {
    co_return tls_error(SSL_ERROR_SSL);
  }
  co_return co_await handshake();
}

asio::awaitable<error_code> Stream::handshake_client(asio::ssl::context& ctx,
                                                     const std::string& host, bool verify_name) {
  if (!start_tls(ctx, /*server=*/false)) {
    co_return tls_error(SSL_ERROR_SSL);
  }
  const bool ip = is_ip_literal(host);
  if (!ip) {
    SSL_set_tlsext_host_name(ssl_, host.c_str());  // SNI is for names only (RFC 6066 section 3)
  }
  if (verify_name) {
    // Checked by OpenSSL's verification of the chain (the context asks for it): the leaf
    // certificate must carry this name (subjectAltName, else CN) or this address.
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str())
                      : SSL_set1_host(ssl_, host.c_str());
    if (ok != 1) {
      co_return tls_error(SSL_ERROR_SSL);
    }
  }
  co_return co_await handshake();
}

asio::awaitable<error_code> Stream::handshake() {
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ) {
      error_code ec = tls_error(err);
      co_await flush_tls();  // the alert that tells the peer why, when OpenSSL made one
      co_return ec;
    }
    if (error_code ec = co_await flush_tls()) {
      co_return ec;
    }
    if (err == SSL_ERROR_NONE) {
      tls_in_.release_if_empty();
      co_return error_code{};
    }
    if (error_code ec = co_await fill_tls(false)) {
      co_return ec;
    }
  }
}

asio::awaitable<error_code> Stream::fill_tls(bool small) {
  const asio::mutable_buffer space = small ? tls_in_.prepare_small() : tls_in_.prepare();
  auto [ec, n] = co_await socket_.async_read_some(space, kUse);
  tls_in_.commit(n);
  if (ec) {
    tls_in_.release_if_empty();  // a cancelled read leaves no block behind
  }
  co_return ec;
}

asio::awaitable<Stream::ReadResult> Stream::tls_read_some(asio::mutable_buffer buf) {
  // An idle session's read takes its first ciphertext into the inline area (a short request's
  // record fits); a record longer than that is read on into a block, not 256 bytes at a time.
  bool small = buf.size() <= Buffer::kSmall;
  bool want_read = false;  // OpenSSL asked for more ciphertext than tls_in_ had
  for (;;) {
    if (tls_failed_) {
      co_return ReadResult{tls_failed_, std::size_t{0}};
    }
    // Records an earlier read made (a TLS 1.3 KeyUpdate answer) go out before anything else
    // waits, and only while no decrypted bytes are in hand: a cancelled flush loses none.
    if (!tls_out_.empty()) {
      if (error_code ec = co_await flush_tls()) {
        co_return ReadResult{ec, std::size_t{0}};
      }
    }
    if (want_read || (tls_in_.empty() && SSL_has_pending(ssl_) == 0)) {
      // Nothing (more) OpenSSL could decrypt: read the socket first (no SSL_read that can only
      // ask).
      if (error_code ec = co_await fill_tls(small)) {
        co_return ReadResult{ec, std::size_t{0}};
      }
      small = false;
      want_read = false;
      continue;  // (flush first if a write made records meanwhile)
    }
    ERR_clear_error();
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
    const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_NONE) {
      // Returned at once, with no co_await between: the bytes are the caller's now. Records this
      // read made wait for the next read or write.
      tls_in_.release_if_empty();
      co_return ReadResult{error_code{}, n};
    }
    if (err != SSL_ERROR_WANT_READ) {
      co_return ReadResult{tls_error(err), std::size_t{0}};  // (the error queue read at once)
    }
    want_read = true;  // OpenSSL took what tls_in_ had (it keeps a partial record itself)
  }
}

asio::awaitable<error_code> Stream::tls_write(const asio::const_buffer* bufs, std::size_t count) {
  if (tls_failed_) {
    co_return tls_failed_;
  }
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const char* data = static_cast<const char*>(bufs[i].data());
    std::size_t left = bufs[i].size();
    while (left > 0) {
      // Our BIO takes every record, so a write is never partial and never waits.
      ERR_clear_error();
      std::size_t n = 0;
      const int r = SSL_write_ex(ssl_, data, left, &n);
      if (r != 1) {
        co_return tls_error(SSL_get_error(ssl_, r));
      }
      data += n;
      left -= n;
      total += n;
    }
  }
  bytes_written += total;
  co_return co_await flush_tls();
}

asio::awaitable<error_code> Stream::flush_tls() {
  // One flusher at a time. Another coroutine's flush writes our records after its own; we wait
  // for it, so that our return means they went out (or the stream failed). Rare: only a read's
  // own records (a KeyUpdate answer) meet a write.
  if (tls_flushing_) {
    auto ex = co_await asio::this_coro::executor;
    while (tls_flushing_) {
      co_await asio::post(ex, kUse);
    }
  }
  if (tls_failed_) {
    co_return tls_failed_;
  }
  // A flush that ends half done (an error, or its coroutine cancelled mid-write) leaves a partial
  // record on the wire: the stream fails for good, and the flag never stays set.
  struct Flushing {
    Stream& s;
    bool done = false;
    ~Flushing() {
      s.tls_flushing_ = false;
      if (!done && !s.tls_failed_) {
        s.tls_failed_ = asio::error::operation_aborted;
      }
    }
  } flushing{*this};
  tls_flushing_ = true;
  while (!tls_out_.empty()) {
    tls_writing_.swap(tls_out_);  // records made meanwhile go to the emptied tls_out_
    const asio::const_buffer records = asio::buffer(tls_writing_);
    error_code wec;
    const std::size_t now = send_now(socket_, &records, 1, wec);  // usually all of it
    if (!wec && now < records.size()) {
      std::size_t later = 0;
      wec = co_await write_rest(socket_, &records, 1, now, later);
    }
    tls_writing_.clear();
    if (wec) {
      tls_failed_ = wec;
      co_return wec;
    }
  }
  flushing.done = true;
  // Nothing is kept between writes, so an idle connection holds no record bytes (a malloc per
  // write costs little beside the encryption).
  std::string().swap(tls_writing_);
  std::string().swap(tls_out_);
  co_return error_code{};
}

}  // namespace pglane::proxy
