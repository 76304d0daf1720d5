#include "proxy/probe.h"

#include <poll.h>

#include <cerrno>
#include <vector>

namespace pglane::proxy {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Waits until the socket is ready for `events` or the deadline passes.
bool wait_socket(int fd, short events, SteadyTime deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) {
      return true;
    }
    if (r < 0 && errno != EINTR) {
      return false;
    }
  }
}

}  // namespace

const char* libpq_sslmode(conf::ServerTlsMode m) {
  switch (m) {
    case conf::ServerTlsMode::kDisable:
      return "disable";
    case conf::ServerTlsMode::kPrefer:
      return "prefer";
    case conf::ServerTlsMode::kRequire:
      return "require";
    case conf::ServerTlsMode::kVerifyCa:
      return "verify-ca";
    case conf::ServerTlsMode::kVerifyFull:
      return "verify-full";
  }
  return "prefer";
}

void Probe::close() {
  if (conn_) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

bool Probe::connect(const ConnParams& params, SteadyTime deadline, std::string& error) {
  close();
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
  if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) {
    error = conn_ ? PQerrorMessage(conn_) : "out of memory";
    close();
    return false;
  }
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  for (;;) {
    if (st == PGRES_POLLING_OK) {
      break;
    }
    if (st == PGRES_POLLING_FAILED) {
      error = PQerrorMessage(conn_);
      close();
      return false;
    }
    short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!wait_socket(PQsocket(conn_), events, deadline)) {
      error = "timed out connecting";
      close();
      return false;
    }
    st = PQconnectPoll(conn_);
  }
  PQsetnonblocking(conn_, 1);
  return true;
}

PGresult* Probe::query(const char* sql, SteadyTime deadline, std::string& error,
                       std::string* sqlstate) {
  if (!PQsendQuery(conn_, sql)) {
    error = PQerrorMessage(conn_);
    return nullptr;
  }
  while (PQflush(conn_) == 1) {
    if (!wait_socket(PQsocket(conn_), POLLOUT, deadline)) {
      error = "timed out sending";
      return nullptr;
    }
  }
  PGresult* last = nullptr;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (!wait_socket(PQsocket(conn_), POLLIN, deadline)) {
        error = "timed out waiting for the answer";
        PQclear(last);
        return nullptr;
      }
      if (!PQconsumeInput(conn_)) {
        error = PQerrorMessage(conn_);
        PQclear(last);
        return nullptr;
      }
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) {
      break;
    }
    PQclear(last);
    last = r;
  }
  if (last == nullptr ||
      (PQresultStatus(last) != PGRES_TUPLES_OK && PQresultStatus(last) != PGRES_COMMAND_OK)) {
    error = last ? PQresultErrorMessage(last) : "no result";
    if (last != nullptr && sqlstate != nullptr) {
      const char* code = PQresultErrorField(last, PG_DIAG_SQLSTATE);
      *sqlstate = code ? code : "";
    }
    PQclear(last);
    return nullptr;
  }
  return last;
}

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

}  // namespace pglane::proxy
