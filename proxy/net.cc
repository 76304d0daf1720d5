#include "proxy/net.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace pglane::proxy {

namespace {
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string Stream::tls_server_end_point(bool we_are_server) {
  if (ssl_ == nullptr) {
    return {};
  }
  SSL* ssl = ssl_;
  X509* cert = nullptr;
  if (we_are_server) {
    cert = SSL_get_certificate(ssl);  // borrowed
    if (cert != nullptr) {
      X509_up_ref(cert);
    }
  } else {
    cert = SSL_get1_peer_certificate(ssl);
  }
  if (cert == nullptr) {
    return {};
  }
  std::string out;
  int md_nid = NID_undef;
  if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, nullptr) == 1) {
    if (md_nid == NID_md5 || md_nid == NID_sha1) {
      md_nid = NID_sha256;  // RFC 5929 section 4.1
    }
    const EVP_MD* md = EVP_get_digestbynid(md_nid);
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (md != nullptr && X509_digest(cert, md, hash, &len) == 1) {
      out.assign(reinterpret_cast<const char*>(hash), len);
    }
  }
  X509_free(cert);
  return out;
}

asio::awaitable<Stream::ReadResult> Stream::read_some(asio::mutable_buffer buf) {
  if (ssl_ != nullptr) {
    return tls_read_some(buf);
  }
  return socket_.async_read_some(buf, kUse);
}

std::size_t send_now(tcp::socket& socket, const asio::const_buffer* bufs, std::size_t count,
                     error_code& ec) {
  iovec iov[16];
  const std::size_t n = std::min<std::size_t>(count, std::size(iov));
  for (std::size_t i = 0; i < n; ++i) {
    iov[i].iov_base = const_cast<void*>(bufs[i].data());
    iov[i].iov_len = bufs[i].size();
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  for (;;) {
    const ssize_t r = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) {
      ec = {};
      return static_cast<std::size_t>(r);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      ec = {};
    } else {
      ec = error_code(errno, asio::error::get_system_category());
    }
    return 0;
  }
}

asio::awaitable<error_code> write_rest(tcp::socket& socket, const asio::const_buffer* bufs,
                                       std::size_t count, std::size_t skip, std::size_t& written) {
  std::vector<asio::const_buffer> rest;
  for (std::size_t i = 0; i < count; ++i) {
    if (skip >= bufs[i].size()) {
      skip -= bufs[i].size();
      continue;
    }
    rest.push_back(bufs[i] + skip);
    skip = 0;
  }
  auto [ec, n] = co_await asio::async_write(socket, rest, kUse);
  written += n;
  co_return ec;
}

asio::awaitable<error_code> Stream::write_all(asio::const_buffer buf) {
  return write_plain_or_tls(buf, nullptr, 1);  // not a coroutine: the copy lives in the frame
}

asio::awaitable<error_code> Stream::write_all(const std::vector<asio::const_buffer>& bufs) {
  return write_plain_or_tls({}, bufs.data(), bufs.size());
}

asio::awaitable<error_code> Stream::write_plain_or_tls(asio::const_buffer one,
                                                       const asio::const_buffer* bufs,
                                                       std::size_t count) {
  if (bufs == nullptr) {
    bufs = &one;
  }
  if (ssl_ != nullptr) {
    co_return co_await tls_write(bufs, count);
  }
  // A reply usually fits the socket's send buffer: written now, with no asynchronous operation
  // (and no trip through the scheduler) at all.
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    total += bufs[i].size();
  }
  error_code ec;
  const std::size_t n = send_now(socket_, bufs, count, ec);
  bytes_written += n;
  if (ec || n == total) {
    co_return ec;
  }
  co_return co_await write_rest(socket_, bufs, count, n, bytes_written);
}

bool Stream::rehome(const asio::any_io_executor& ex) {
  // Ciphertext read and not yet taken, records not yet written, or decrypted bytes waiting in
  // OpenSSL would be lost or reordered by a move; an idle connection has none.
  if (ssl_ != nullptr && (tls_failed_ || !tls_in_.empty() || !tls_out_.empty() || tls_flushing_ ||
                          SSL_has_pending(ssl_) != 0)) {
    return false;
  }
  error_code ec;
  auto protocol = socket_.local_endpoint(ec).protocol();
  if (ec) {
    return false;
  }
  const int fd = socket_.release(ec);
  tcp::socket moved(ex);
  if (!ec) {
    moved.assign(protocol, fd, ec);  // registers with the new reactor (may fail: no throw)
    if (ec) {
      ::close(fd);
    }
  }
  if (ec) {
    close();
    return false;
  }
  socket_ = std::move(moved);
  return true;
}

void Stream::close() {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

namespace {

// Blocks of a buffer's usual size, kept per thread for reuse (a few per size: the buffers a
// worker's sessions release and take again between transactions).
class BlockCache {
 public:
  ~BlockCache() {
    for (std::size_t i = 0; i < used_; ++i) {
      delete[] slots_[i].block;
    }
    used_ = 0;
    gone_ = true;  // a Buffer freed later on this thread (at its exit) deletes its block itself
  }
  char* take(std::size_t size) {
    for (std::size_t i = 0; i < used_; ++i) {
      if (slots_[i].size == size) {
        char* b = slots_[i].block;
        slots_[i] = slots_[--used_];
        slots_[used_] = Slot{};
        return b;
      }
    }
    return new char[size];  // uninitialised: only bytes read into it are ever looked at
  }
  void give(char* block, std::size_t size) {
    if (used_ == kSlots || gone_) {
      delete[] block;
      return;
    }
    slots_[used_++] = Slot{block, size};
  }

 private:
  static constexpr std::size_t kSlots = 8;
  struct Slot {
    char* block = nullptr;
    std::size_t size = 0;
  };
  Slot slots_[kSlots];  // [0, used_) hold blocks; the rest are empty
  std::size_t used_ = 0;
  bool gone_ = false;
};

BlockCache& block_cache() {
  thread_local BlockCache cache;
  return cache;
}

}  // namespace

void Buffer::free_storage() {
  if (storage_ == nullptr) {
    return;
  }
  if (storage_ == small_) {
    // nothing to free
  } else if (allocated_ == capacity_) {
    block_cache().give(storage_, allocated_);
  } else {
    delete[] storage_;  // grown for one large frame: not kept
  }
  storage_ = nullptr;
  allocated_ = 0;
  start_ = end_ = 0;
}

asio::mutable_buffer Buffer::prepare(std::size_t min_free) {
  if (start_ > 0) {
    std::memmove(storage_, storage_ + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  const std::size_t want = std::max(capacity_, end_ + min_free);
  if (allocated_ < want || storage_ == small_) {
    char* grown = want == capacity_ ? block_cache().take(want) : new char[want];
    if (end_ > 0) {
      std::memcpy(grown, storage_, end_);
    }
    const std::size_t kept = end_;
    free_storage();
    storage_ = grown;
    allocated_ = want;
    end_ = kept;
  }
  return asio::mutable_buffer(storage_ + end_, allocated_ - end_);
}

asio::mutable_buffer Buffer::prepare_small() {
  if (empty()) {
    free_storage();  // an empty block (left by a cancelled read, say) is not held while idle
  }
  if (storage_ != nullptr) {
    return prepare();
  }
  storage_ = small_;
  allocated_ = kSmall;
  start_ = end_ = 0;
  return asio::mutable_buffer(small_, kSmall);
}

asio::awaitable<protocol::Decoded<protocol::Frame>> read_frame(Stream& s, Buffer& buf,
                                                               std::size_t max_message,
                                                               error_code& ec) {
  for (;;) {
    auto d = protocol::decode_frame(buf.data(), max_message);
    if (d.status != protocol::DecodeStatus::kNeedMore) {
      co_return d;
    }
    std::size_t need = protocol::kHeaderSize;
    if (auto h = protocol::decode_header(buf.data(), max_message);
        h.status == protocol::DecodeStatus::kMessage) {
      need = h.frame.size;
    }
    auto space = buf.prepare(need - buf.size());
    auto [rec, n] = co_await s.read_some(space);
    if (rec) {
      ec = rec;
      co_return d;
    }
    s.count_read(n);
    buf.commit(n);
  }
}

asio::awaitable<protocol::Decoded<protocol::StartupFrame>> read_startup(Stream& s, Buffer& buf,
                                                                        error_code& ec) {
  for (;;) {
    auto d = protocol::decode_startup(buf.data());
    if (d.status != protocol::DecodeStatus::kNeedMore) {
      co_return d;
    }
    // Bytes past the packet stay in `buf`: the caller must check for them (plaintext smuggled
    // after an SSLRequest is a protocol violation, CVE-2021-23214).
    std::size_t need = 4;
    if (buf.size() >= 4) {
      const auto* p = reinterpret_cast<const unsigned char*>(buf.data().data());
      need =
          (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
    }
    auto space = buf.prepare(need - buf.size());
    auto [rec, n] = co_await s.read_some(space);
    if (rec) {
      ec = rec;
      co_return d;
    }
    s.count_read(n);
    buf.commit(n);
  }
}

}  // namespace pglane::proxy
