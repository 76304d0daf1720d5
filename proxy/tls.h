// OpenSSL contexts built from configuration: one for clients connecting to pglane, one for
// pglane connecting to servers. Contexts are shared by all workers (SSL_CTX is thread-safe for
// creating connections).
#pragma once

#include <memory>

#include <boost/asio/ssl/context.hpp>

#include "absl/status/statusor.h"
#include "conf/config.h"

namespace pglane::proxy {

// nullptr when tls.mode is disable.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> make_client_facing_context(
    const conf::ClientTls& tls, const std::string& config_path);
// nullptr when backend.tls.mode is disable.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> make_server_facing_context(
    const conf::ServerTls& tls, const std::string& config_path);

}  // namespace pglane::proxy
