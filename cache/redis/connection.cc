#include "cache/redis/connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <vector>

#include "absl/strings/str_cat.h"

namespace pglane::cache::redis {

namespace {

using boost::system::error_code;
using namespace boost::asio::experimental::awaitable_operators;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

std::string openssl_error() {
  unsigned long err = ERR_get_error();
  if (err == 0) {
    return "unknown OpenSSL error";
  }
  char buf[256];
  ERR_error_string_n(err, buf, sizeof buf);
  return buf;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

absl::Status io_error(const std::string& what, const error_code& ec) {
  return absl::UnavailableError(absl::StrCat("redis: ", what, ": ", ec.message()));
}

}  // namespace

absl::StatusOr<std::shared_ptr<asio::ssl::context>> make_tls_context(const std::string& ca_file,
                                                                     const std::string& cert_file,
                                                                     const std::string& key_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* raw = ctx->native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(raw) != 1) {
      return absl::InvalidArgumentError("system CA store: " + openssl_error());
    }
  } else if (SSL_CTX_load_verify_locations(raw, ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(ca_file + ": " + openssl_error());
  }
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  if (!cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, cert_file.c_str()) != 1) {
      return absl::InvalidArgumentError(cert_file + ": " + openssl_error());
    }
    if (SSL_CTX_use_PrivateKey_file(raw, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(raw) != 1) {
      return absl::InvalidArgumentError(key_file + ": " + openssl_error());
    }
  }
  return ctx;
}

Connection::Connection(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls,
                       const Options& opts)
    : ex_(ex), tls_ctx_(std::move(tls)), opts_(opts) {}

Connection::~Connection() {
  *alive_ = false;
  close();
}

void Connection::close() {
  open_ = false;
  if (link_) {
    link_->closed = true;
    error_code ignored;
    link_->socket.shutdown(tcp::socket::shutdown_both, ignored);
    link_->socket.close(ignored);
    link_.reset();  // operations still pending keep it alive until they complete
  }
}

asio::awaitable<absl::Status> Connection::open() {
  auto alive = alive_;
  asio::steady_timer timer(ex_, opts_.connect_timeout);
  auto r = co_await (open_unbounded() || timer.async_wait(kUse));
  if (!*alive) {
    co_return absl::CancelledError("redis: closed");
  }
  if (r.index() == 1) {
    close();
    co_return absl::DeadlineExceededError(absl::StrCat("redis: no connection to ", opts_.host, ":",
                                                       opts_.port, " within ",
                                                       opts_.connect_timeout.count(), " ms"));
  }
  co_return std::get<0>(r);
}

asio::awaitable<absl::Status> Connection::open_unbounded() {
  close();
  auto link = std::make_shared<Link>(ex_);
  link_ = link;
  tcp::resolver resolver(ex_);
  const std::string port = std::to_string(opts_.port);
  auto [rec, endpoints] = co_await resolver.async_resolve(opts_.host, port, kUse);
  if (link->closed) {
    co_return absl::CancelledError("redis: closed");
  }
  if (rec) {
    co_return io_error("resolving " + opts_.host, rec);
  }
  auto [cec, ep] = co_await asio::async_connect(link->socket, endpoints, kUse);
  if (link->closed) {
    co_return absl::CancelledError("redis: closed");
  }
  if (cec) {
    co_return io_error(absl::StrCat("connecting to ", opts_.host, ":", opts_.port), cec);
  }
  error_code ignored;
  link->socket.set_option(tcp::no_delay(true), ignored);
  if (opts_.tls) {
    const std::string& name = opts_.server_name.empty() ? opts_.host : opts_.server_name;
    link->tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(link->socket, *tls_ctx_);
    SSL_set_mode(link->tls->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    if (!is_ip_literal(name)) {
      SSL_set_tlsext_host_name(link->tls->native_handle(), name.c_str());
    }
    link->tls->set_verify_callback(asio::ssl::host_name_verification(name));
    auto [hec] = co_await link->tls->async_handshake(asio::ssl::stream_base::client, kUse);
    if (link->closed) {
      co_return absl::CancelledError("redis: closed");
    }
    if (hec) {
      co_return io_error("TLS handshake with " + name, hec);
    }
  }
  open_ = true;
  if (!opts_.password.empty()) {
    std::vector<std::string_view> args{"AUTH"};
    if (!opts_.user.empty()) {
      args.push_back(opts_.user);
    }
    args.push_back(opts_.password);
    out_.clear();
    format_command(args, out_);
    absl::Status sent = co_await send(out_);
    if (!sent.ok()) {
      co_return sent;
    }
    absl::StatusOr<Reply> r = co_await receive();
    if (!r.ok()) {
      co_return r.status();
    }
    if (link->closed) {
      co_return absl::CancelledError("redis: closed");
    }
    if (r->is_error()) {
      close();
      co_return absl::PermissionDeniedError("redis: AUTH refused: " + r->str);
    }
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> Connection::send(std::string_view bytes) {
  std::shared_ptr<Link> link = link_;
  if (!open_ || !link) {
    co_return absl::UnavailableError("redis: not connected");
  }
  error_code ec;
  if (link->tls) {
    auto [e, n] = co_await asio::async_write(*link->tls, asio::buffer(bytes), kUse);
    ec = e;
  } else {
    auto [e, n] = co_await asio::async_write(link->socket, asio::buffer(bytes), kUse);
    ec = e;
  }
  if (link->closed) {
    co_return absl::UnavailableError("redis: connection closed");
  }
  if (ec) {
    close();
    co_return io_error("write", ec);
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::StatusOr<Reply>> Connection::receive() {
  std::shared_ptr<Link> link = link_;
  for (;;) {
    if (!link || link->closed) {
      co_return absl::UnavailableError("redis: not connected");
    }
    if (std::optional<Reply> r = link->reader.next()) {
      co_return std::move(*r);
    }
    if (link->reader.failed()) {
      close();
      co_return absl::DataLossError("redis: protocol error: " + link->reader.error());
    }
    error_code ec;
    size_t n = 0;
    std::atomic<bool>* unhandled = unhandled_;
    if (unhandled != nullptr) {
      // Bytes already taken from the kernel (TLS records decrypted or waiting in the engine's
      // BIO) are read at once. Otherwise wait until the socket is readable and raise the flag
      // *before* the read takes the bytes out of the kernel, so that FIONREAD and the flag
      // together never miss them.
      SSL* ssl = link->tls ? link->tls->native_handle() : nullptr;
      const bool held =
          ssl != nullptr && (SSL_pending(ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0);
      if (!held) {
        unhandled->store(false, std::memory_order_release);  // everything read was returned
        auto [we] = co_await link->socket.async_wait(tcp::socket::wait_read, kUse);
        if (link->closed) {
          co_return absl::UnavailableError("redis: connection closed");
        }
        if (we) {
          close();
          co_return io_error("wait", we);
        }
        unhandled->store(true, std::memory_order_release);
      }
    }
    if (link->tls) {
      auto [e, got] = co_await link->tls->async_read_some(asio::buffer(link->buf), kUse);
      ec = e;
      n = got;
    } else {
      auto [e, got] = co_await link->socket.async_read_some(asio::buffer(link->buf), kUse);
      ec = e;
      n = got;
    }
    if (link->closed) {
      co_return absl::UnavailableError("redis: connection closed");
    }
    if (ec) {
      close();
      co_return io_error("read", ec);
    }
    link->reader.feed(std::string_view(link->buf.data(), n));
  }
}

asio::awaitable<absl::StatusOr<Reply>> Connection::call(std::span<const std::string_view> args) {
  out_.clear();
  format_command(args, out_);
  absl::Status sent = co_await send(out_);
  if (!sent.ok()) {
    co_return sent;
  }
  auto alive = alive_;
  asio::steady_timer timer(ex_, opts_.command_timeout);
  auto r = co_await (receive() || timer.async_wait(kUse));
  if (!*alive) {
    co_return absl::CancelledError("redis: closed");
  }
  if (r.index() == 1) {
    close();
    co_return absl::DeadlineExceededError(
        absl::StrCat("redis: no reply within ", opts_.command_timeout.count(), " ms"));
  }
  co_return std::move(std::get<0>(r));
}

}  // namespace pglane::cache::redis
