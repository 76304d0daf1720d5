// Integration-test harness: one sandbox (PostgreSQL 15 primary on 127.0.0.1, TLS, SCRAM) per
// binary run, pglane processes started per test with the settings that test needs, and small
// clients (libpq helpers and a raw TCP socket for byte-level protocol tests).
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace pglane::itest {

// ---- The sandbox (a gtest global Environment) ----

class SandboxEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
};

// Values from DIR/sandbox.env (PG_PRIMARY_PORT, APP_PASSWORD, TLS_CA, ...). Fails the current
// test when the key is missing.
const std::string& env(const std::string& key);
// The sandbox's replica ports (PG_REPLICA_PORTS), in order.
std::vector<std::string> replica_ports();
// Runs `sql` directly on every sandbox replica, or on the one at `port` (pg_wal_replay_pause()...).
void on_every_replica(const std::string& sql);
void on_replica(const std::string& port, const std::string& sql);
// Waits (10 s at most per replica) until every replica has replayed the creation of function
// `name`, the last object a test's setup creates.
void wait_function_replicated(const std::string& name);
// The sandbox directory (a mkdtemp directory under /tmp).
const std::string& sandbox_dir();
// True when the sandbox came up; tests skip otherwise (SetUp already reported why).
bool sandbox_ready();

// Installs handlers that stop every pglane and the sandbox on SIGINT/SIGTERM/SIGABRT/SIGSEGV.
void install_cleanup_handlers();

// Heavy tests (500 clients, slow reader, large COPY) skip under PGLANE_SKIP_HEAVY=1.
bool skip_heavy();
#define SKIP_IF_HEAVY_DISABLED()                                 \
  do {                                                           \
    if (::pglane::itest::skip_heavy()) {                         \
      GTEST_SKIP() << "PGLANE_SKIP_HEAVY=1: heavy test skipped"; \
    }                                                            \
  } while (0)

// ---- pglane processes ----

class ScratchCluster;

struct ProxySettings {
  // The cluster pglane fronts: null = the shared sandbox.
  const ScratchCluster* cluster = nullptr;
  int workers = 2;
  std::string tls_mode = "prefer";
  std::string backend_tls_mode = "verify-full";
  std::string backend_ca;  // empty = the sandbox CA
  std::string pool_mode = "session";
  int pool_size = 20;
  int max_prepared_statements = 200;
  int queue_timeout_ms = 5000;
  std::optional<int> max_client_conn;
  std::optional<int> auth_timeout_ms;
  std::optional<int> client_idle_timeout_ms;
  std::optional<uint64_t> max_message_size;
  std::optional<int> backend_connect_timeout_ms;
  std::string users_file;  // empty = the sandbox users file
  // [backend] without user or password: each client logs in to the server as itself with the
  // keys of its own SCRAM proof (pass-through).
  bool backend_pass_through = false;
  std::string log_level = "info";
  // Read/write splitting: readers of the "local" region ("127.0.0.1:port"), and TOML appended
  // to the file (more [[regions]], [routing], [health], [analytics]).
  std::vector<std::string> readers;
  std::string extra_toml;
  // Replaces the [[regions]] pglane is given (then `readers` is not used).
  std::string regions_toml;
  // proxy.shutdown_timeout_ms (short, so that stopping a proxy under load stays quick).
  int shutdown_timeout_ms = 2000;
  // More environment variables for the pglane process.
  std::vector<std::pair<std::string, std::string>> env;
};

// A cluster of its own, for tests that kill, promote or restart servers: scripts/sandbox.sh in
// a subdirectory of the shared sandbox, on other ports, without Redis. Stopped and deleted by the
// destructor. Instances are numbered 0 (the first primary) and 1.. (replicas).
class ScratchCluster {
 public:
  // `flags`: more sandbox.sh up options ("--aurora", "--aurora=eu,us").
  explicit ScratchCluster(int replicas, const std::string& flags = "");
  ~ScratchCluster();
  ScratchCluster(const ScratchCluster&) = delete;
  ScratchCluster& operator=(const ScratchCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }
  const std::string& env(const std::string& key) const;
  std::string port(int instance) const;
  std::string data_dir(int instance) const;
  std::string log_file(int instance) const;
  // pg_ctl ARGS on an instance's data directory, as the postgres user when we are root; its
  // exit status.
  int pg_ctl(int instance, const std::string& args) const;
  // The postmaster's pid (0 when not running).
  pid_t postmaster_pid(int instance) const;
  // A superuser connection straight to an instance (may fail: check PQstatus).
  std::string superuser_conninfo(int instance, const std::string& dbname = "app") const;
  // One more replica of the first primary, started (sandbox.sh add-replica); its instance
  // number, or -1.
  int add_replica();
  int instances() const { return static_cast<int>(ports_.size()); }

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
  std::vector<std::string> ports_;
  bool ok_ = false;
  std::string error_;
};

// A TCP port on 127.0.0.1 nobody listens on now.
int any_free_port();

// Polls `ok` every 50 ms until it holds or `limit` passes; its last answer.
bool wait_for(const std::function<bool()>& ok, std::chrono::milliseconds limit);

// The whole file ("" when it cannot be read).
std::string read_file(const std::string& path);
void save_file(const std::string& path, const std::string& text);
// What a shell command prints on stdout.
std::string shell_output(const std::string& command);

// Lines "NAME METHOD [SECRET]" appended to a copy of the sandbox users file; returns its path.
std::string users_file_with(const std::vector<std::string>& extra_lines);
// "NAME md5 md5<hex>" for a user with this password.
std::string md5_user_line(const std::string& user, const std::string& password);
// "NAME scram-sha-256 <verifier>" from `pglane passwd NAME`.
std::string scram_user_line(const std::string& user, const std::string& password);

// Writes the TOML config for `s` into the sandbox directory.
std::string write_config(const ProxySettings& s, int port, const std::string& name);

// A pglane child process. Stopped by the destructor.
class Proxy {
 public:
  explicit Proxy(ProxySettings settings = {});
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Starts pglane and waits (10 s at most) until its port accepts TCP connections.
  bool start();
  void stop();
  // Waits up to `limit` for pglane to exit by itself; its exit status (-1: still running,
  // then it is left running; 128+N: killed by signal N).
  int wait_exit(std::chrono::milliseconds limit);

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  const std::string& config_path() const { return config_path_; }
  std::string log_tail(std::size_t max_bytes = 4000) const;

  // "host=127.0.0.1 port=... dbname=app user=pglane_app password=... sslmode=disable" + extra.
  std::string conninfo(const std::string& extra = "") const;

 private:
  ProxySettings settings_;
  int port_ = 0;
  pid_t pid_ = -1;
  int index_ = 0;
  std::string config_path_;
  std::string log_path_;
};

// Starts a proxy or fails the test (ASSERT) with its log.
#define START_PROXY(proxy) \
  ASSERT_TRUE((proxy).start()) << "pglane did not start; log:\n" << (proxy).log_tail()

// ---- libpq helpers ----

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, PgConnDeleter>;
using Result = std::unique_ptr<PGresult, PgResultDeleter>;

// Connects with verbose error messages (so a failed login's message carries its SQLSTATE).
// Always returns a PGconn; check PQstatus.
Conn connect(const std::string& conninfo,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Connects and fails the test on error.
Conn connect_ok(const std::string& conninfo);
// Superuser connection straight to PostgreSQL (TLS, for checks: pg_stat_activity, pg_locks).
Conn connect_direct(const std::string& dbname = "app");
// The same to any server of the sandbox (a replica) by port.
Conn connect_direct_port(const std::string& port, const std::string& dbname = "app");

// The SQLSTATE in a verbose libpq error message ("FATAL:  28P01: ..."), or "".
std::string sqlstate_from_message(std::string_view message);
std::string sqlstate(const PGresult* r);

// Runs a query that must succeed and returns the first column of the first row ("" if none).
std::string query_value(PGconn* c, const std::string& sql);
// [redis] for the sandbox's TLS Redis, on a floor channel of the caller's own.
std::string redis_toml(const std::string& channel);
// Runs a command that must succeed.
void exec_ok(PGconn* c, const std::string& sql);
Result exec(PGconn* c, const std::string& sql);

// Server connections pglane holds as pglane_app (client backends in pg_stat_activity).
int count_app_backends(PGconn* direct);
// Waits until count_app_backends() == n (false after `timeout`).
bool wait_app_backends(PGconn* direct, int n, std::chrono::milliseconds timeout);

// VmRSS of a process in KiB (-1 if unknown).
long rss_kib(pid_t pid);

// ---- external programs (psql, pgbench, drivers in other languages) ----

// The first executable `name` on PATH, or "".
std::string find_on_path(const std::string& name);

struct RunResult {
  int status = -1;     // exit status; -1 when killed (timeout) or not started
  std::string output;  // stdout and stderr
};

// Runs argv (no shell: connection strings hold spaces and '&') with stdin from /dev/null,
// collecting its output; killed after `timeout`.
RunResult run_program(const std::vector<std::string>& argv, std::chrono::seconds timeout);

// ---- raw protocol client ----

class RawClient {
 public:
  RawClient() = default;
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connect(int port);
  bool send(std::string_view bytes);
  void shutdown_write();
  // Reads whatever arrives within `timeout` (at most `max` bytes, returns early once any byte
  // arrived and nothing more follows quickly). Sets closed() on EOF or reset.
  std::string read_some(std::chrono::milliseconds timeout, std::size_t max = 1 << 20);
  // Reads exactly n bytes (false on timeout or close).
  bool read_exact(std::string& out, std::size_t n, std::chrono::milliseconds timeout);
  // Reads one typed message (type + body); nullopt on timeout or close.
  struct Message {
    char type = 0;
    std::string body;
  };
  std::optional<Message> read_message(std::chrono::milliseconds timeout);
  // Reads and discards until EOF; true if the peer closed within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string pending_;  // bytes read but not yet returned
};

// Wire builders (docs 55.7).
std::string be32(uint32_t v);
// The parameters in the order given (drivers' own order matters to startup_test).
std::string startup_message_in_order(const std::vector<std::pair<std::string, std::string>>& params,
                                     uint32_t version = 196608);
std::string startup_message(const std::map<std::string, std::string>& params,
                            uint32_t version = 196608);
std::string ssl_request();
std::string gssenc_request();
std::string typed_message(char type, std::string_view body);
// The 'C' (code) field of an ErrorResponse body.
std::string error_field(std::string_view body, char field);

}  // namespace pglane::itest
