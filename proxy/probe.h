// The health checker's libpq connections (proxy/topology): each used from one checker thread
// in non-blocking mode under a deadline, so a hung server never blocks past it.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"

namespace pglane::proxy {

using SteadyTime = std::chrono::steady_clock::time_point;
using ConnParams = std::vector<std::pair<std::string, std::string>>;

// libpq's sslmode for a [backend.tls] mode.
const char* libpq_sslmode(conf::ServerTlsMode m);

// One libpq connection used under deadlines, never blocking past them.
class Probe {
 public:
  Probe() = default;
  ~Probe() { close(); }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  void close();
  bool connected() const { return conn_ != nullptr; }
  // Connects (closing any earlier connection); on failure `error` says why.
  bool connect(const ConnParams& params, SteadyTime deadline, std::string& error);
  // Runs `sql` and returns its last result (the caller PQclears it), or null on failure with
  // `error` set (for a server error, its message; `sqlstate` then holds its SQLSTATE).
  PGresult* query(const char* sql, SteadyTime deadline, std::string& error,
                  std::string* sqlstate = nullptr);

 private:
  PGconn* conn_ = nullptr;
};

// `s` without trailing newlines (libpq's messages end with one).
std::string trim_newline(std::string s);

}  // namespace pglane::proxy
