#include "proxy/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"

namespace pglane::proxy {

namespace ssl = boost::asio::ssl;

namespace {

std::string openssl_error() {
  unsigned long err = ERR_get_error();
  if (err == 0) {
    return "unknown OpenSSL error";
  }
  char buf[256];
  ERR_error_string_n(err, buf, sizeof buf);
  return buf;
}

absl::Status tls_error(const std::string& config_path, const std::string& key,
                       const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(config_path, ": ", key, ": ", what));
}

}  // namespace

absl::StatusOr<std::shared_ptr<ssl::context>> make_client_facing_context(
    const conf::ClientTls& tls, const std::string& config_path) {
  if (tls.mode == conf::ClientTlsMode::kDisable) {
    return nullptr;
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* raw = ctx->native_handle();
  // TLS 1.0/1.1 are refused; 1.3 is preferred by OpenSSL when both sides have it.
  SSL_CTX_set_min_proto_version(raw, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(
      raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // No server-side session cache: it kept every client's session (about 1.5 KiB each, up to
  // 20,480 of them) for five minutes. Resumption still works through TLS 1.3's stateless
  // tickets, which the client holds.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  // A resumed session (a ticket) is checked against this context; with client certificates
  // verified, OpenSSL refuses to resume without one ("session id context uninitialized").
  static constexpr unsigned char kSessionContext[] = "pglane";
  SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof(kSessionContext) - 1);
  if (SSL_CTX_use_certificate_chain_file(raw, tls.cert_file.c_str()) != 1) {
    return tls_error(config_path, "tls.cert_file", openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(raw, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return tls_error(config_path, "tls.key_file", openssl_error());
  }
  if (SSL_CTX_check_private_key(raw) != 1) {
    return tls_error(config_path, "tls.key_file", "key does not match tls.cert_file");
  }
  if (tls.verify_client) {
    if (SSL_CTX_load_verify_locations(raw, tls.ca_file.c_str(), nullptr) != 1) {
      return tls_error(config_path, "tls.ca_file", openssl_error());
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

absl::StatusOr<std::shared_ptr<ssl::context>> make_server_facing_context(
    const conf::ServerTls& tls, const std::string& config_path) {
  if (tls.mode == conf::ServerTlsMode::kDisable) {
    return nullptr;
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* raw = ctx->native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  bool verify =
      tls.mode == conf::ServerTlsMode::kVerifyCa || tls.mode == conf::ServerTlsMode::kVerifyFull;
  if (verify) {
    if (SSL_CTX_load_verify_locations(raw, tls.ca_file.c_str(), nullptr) != 1) {
      return tls_error(config_path, "backend.tls.ca_file", openssl_error());
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

}  // namespace pglane::proxy
