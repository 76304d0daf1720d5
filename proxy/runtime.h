// What every session needs from the process: the configuration, the users, TLS contexts. Swapped
// atomically on reload (SIGHUP); a session keeps the snapshot it started with.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "conf/config.h"
#include "conf/loader.h"

namespace pglane::proxy {

struct Snapshot {
  conf::ConfigPtr config;
  std::shared_ptr<const conf::UserMap> users;
  std::shared_ptr<boost::asio::ssl::context> client_tls;  // null: TLS to clients disabled
  std::shared_ptr<boost::asio::ssl::context> server_tls;  // null: TLS to servers disabled
};

class Runtime {
 public:
  std::shared_ptr<const Snapshot> snapshot() const { return current_.load(); }
  void install(std::shared_ptr<const Snapshot> s) { current_.store(std::move(s)); }
  // A per-process secret for mock SCRAM salts, so unknown users look like known ones.
  const std::string& mock_secret() const { return mock_secret_; }
  void set_mock_secret(std::string s) { mock_secret_ = std::move(s); }

 private:
  std::atomic<std::shared_ptr<const Snapshot>> current_;
  std::string mock_secret_;
};

}  // namespace pglane::proxy
