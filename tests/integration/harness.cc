#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "protocol/scram.h"

namespace pglane::itest {

// In a forked child: runs argv[0] (a path) with argv; exits 127 if it cannot.
[[noreturn]] void exec_argv(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string g_dir;
std::map<std::string, std::string> g_env;
bool g_ready = false;
std::atomic<int> g_proxy_counter{0};

// Running pglane pids, readable from a signal handler.
constexpr int kMaxProxies = 64;
std::array<std::atomic<pid_t>, kMaxProxies> g_proxy_pids{};
// argv for `sandbox.sh down DIR`, prepared before any signal can arrive.
std::string g_script;
std::atomic<bool> g_sandbox_up{false};
bool g_keep_dir = false;  // PGLANE_KEEP_SANDBOX set: leave DIR (logs) for inspection

void register_pid(pid_t pid) {
  for (auto& slot : g_proxy_pids) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) {
      return;
    }
  }
}

void unregister_pid(pid_t pid) {
  for (auto& slot : g_proxy_pids) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) {
      return;
    }
  }
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Runs argv with stdout+stderr appended to `log`; returns the exit status (-1 on failure).
int run_command(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    exec_argv(argv);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void sandbox_down() {
  if (!g_sandbox_up.exchange(false)) {
    return;
  }
  run_command({"/bin/bash", g_script, "down", g_dir}, g_dir + "/sandbox-down.log");
}

// Runs argv and waits, from a signal handler (fork/execv/waitpid are async-signal-safe).
void run_in_handler(char* const* argv) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  if (pid > 0) {
    int status;
    waitpid(pid, &status, 0);
  }
}

void on_fatal_signal(int sig) {
  for (auto& slot : g_proxy_pids) {
    pid_t pid = slot.load();
    if (pid > 0) {
      kill(pid, SIGKILL);
    }
  }
  if (g_sandbox_up.exchange(false)) {
    // The strings were built before any signal could arrive.
    char* down[] = {const_cast<char*>("/bin/bash"), const_cast<char*>(g_script.c_str()),
                    const_cast<char*>("down"), const_cast<char*>(g_dir.c_str()), nullptr};
    run_in_handler(down);
    if (!g_keep_dir) {
      char* rm[] = {const_cast<char*>("/bin/rm"), const_cast<char*>("-rf"),
                    const_cast<char*>(g_dir.c_str()), nullptr};
      run_in_handler(rm);
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

std::map<std::string, std::string> parse_env_file(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    out[line.substr(0, eq)] = value;
  }
  return out;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool tcp_accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::vector<std::string> replica_ports() {
  std::vector<std::string> out;
  std::istringstream in(env("PG_REPLICA_PORTS"));
  std::string p;
  while (in >> p) {
    out.push_back(p);
  }
  return out;
}

int any_free_port() {
  return free_port();
}

void save_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string shell_output(const std::string& command) {
  std::string out;
  if (FILE* f = popen(command.c_str(), "r")) {
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
      out.append(buf, n);
    }
    pclose(f);
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- sandbox ----

void SandboxEnvironment::SetUp() {
  char tmpl[] = "/tmp/pglane-itest-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    FAIL() << "mkdtemp: " << std::strerror(errno);
  }
  g_dir = tmpl;
  chmod(g_dir.c_str(), 0755);  // the postgres user must be able to enter it when we are root
  g_script = std::string(PGLANE_SOURCE_DIR) + "/scripts/sandbox.sh";
  g_keep_dir = std::getenv("PGLANE_KEEP_SANDBOX") != nullptr;
  g_sandbox_up = true;
  const std::string log = g_dir + "/sandbox-up.log";
  int rc = run_command({"/bin/bash", g_script, "up", g_dir, "--replicas", "2"}, log);
  if (rc != 0) {
    FAIL() << "sandbox.sh up failed (exit " << rc << "):\n" << read_file(log);
  }
  g_env = parse_env_file(read_file(g_dir + "/sandbox.env"));
  g_ready = g_env.count("PG_PRIMARY_PORT") > 0;
  if (!g_ready) {
    FAIL() << "sandbox.env has no PG_PRIMARY_PORT";
  }
}

void SandboxEnvironment::TearDown() {
  for (auto& slot : g_proxy_pids) {
    pid_t pid = slot.exchange(0);
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  sandbox_down();
  if (!g_dir.empty() && !g_keep_dir) {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
  }
}

void install_cleanup_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGABRT, SIGSEGV, SIGBUS, SIGHUP}) {
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(sig, &sa, nullptr);
  }
  signal(SIGPIPE, SIG_IGN);
}

const std::string& env(const std::string& key) {
  static const std::string empty;
  auto it = g_env.find(key);
  if (it == g_env.end()) {
    ADD_FAILURE() << "sandbox.env has no " << key;
    return empty;
  }
  return it->second;
}

const std::string& sandbox_dir() {
  return g_dir;
}
bool sandbox_ready() {
  return g_ready;
}

bool skip_heavy() {
  const char* v = std::getenv("PGLANE_SKIP_HEAVY");
  return v != nullptr && std::string(v) == "1";
}

// ---- users files and configs ----

std::string users_file_with(const std::vector<std::string>& extra_lines) {
  std::string text = read_file(env("USERS_FILE"));
  if (!text.empty() && text.back() != '\n') {
    text += '\n';
  }
  for (const auto& l : extra_lines) {
    text += l + "\n";
  }
  std::string path = g_dir + "/users-" + std::to_string(g_proxy_counter.fetch_add(1)) + ".txt";
  write_file(path, text);
  chmod(path.c_str(), 0600);
  return path;
}

std::string md5_user_line(const std::string& user, const std::string& password) {
  return user + " md5 " + protocol::md5_stored(password, user);
}

std::string scram_user_line(const std::string& user, const std::string& password) {
  const std::string pw_path = g_dir + "/passwd-input.txt";
  const std::string out_path = g_dir + "/passwd-output.txt";
  write_file(pw_path, password + "\n");
  std::string cmd =
      std::string(PGLANE_BINARY) + " passwd " + user + " <" + pw_path + " >" + out_path + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::string line = read_file(out_path);
  EXPECT_EQ(rc, 0) << line;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.pop_back();
  }
  return line;
}

// ---- scratch clusters ----

std::atomic<int> g_scratch_counter{0};

ScratchCluster::ScratchCluster(int replicas, const std::string& flags) {
  if (!sandbox_ready()) {
    error_ = "the shared sandbox is not up";
    return;
  }
  const int n = g_scratch_counter.fetch_add(1);
  dir_ = g_dir + "/scratch" + std::to_string(n);
  fs::create_directories(dir_);
  chmod(dir_.c_str(), 0755);
  // Ports away from the shared sandbox's; sandbox.sh skips any that are taken.
  const std::string base = std::to_string(26432 + 20 * (n % 50));
  const std::string log = dir_ + "-up.log";
  std::vector<std::string> argv = {
      "/usr/bin/env", "SANDBOX_PORT_BASE=" + base, "/bin/bash", g_script, "up", dir_,
      "--replicas",   std::to_string(replicas),    "--no-redis"};
  if (!flags.empty()) {
    argv.push_back(flags);
  }
  int rc = run_command(argv, log);
  if (rc != 0) {
    error_ = "sandbox.sh up failed (exit " + std::to_string(rc) + "):\n" + read_file(log);
    return;
  }
  env_ = parse_env_file(read_file(dir_ + "/sandbox.env"));
  ports_.push_back(env_["PG_PRIMARY_PORT"]);
  std::istringstream rp(env_["PG_REPLICA_PORTS"]);
  for (std::string p; rp >> p;) {
    ports_.push_back(p);
  }
  ok_ = ports_.size() == static_cast<size_t>(replicas) + 1;
  if (!ok_) {
    error_ = "sandbox.env lists the wrong ports";
  }
}

ScratchCluster::~ScratchCluster() {
  if (dir_.empty()) {
    return;
  }
  run_command({"/bin/bash", g_script, "down", dir_}, dir_ + "-down.log");
  if (!g_keep_dir) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

int ScratchCluster::add_replica() {
  const std::string log = dir_ + "-add.log";
  if (run_command({"/bin/bash", g_script, "add-replica", dir_}, log) != 0) {
    ADD_FAILURE() << "sandbox.sh add-replica failed:\n" << read_file(log);
    return -1;
  }
  env_ = parse_env_file(read_file(dir_ + "/sandbox.env"));
  std::istringstream rp(env_["PG_REPLICA_PORTS"]);
  std::vector<std::string> ports = {env_["PG_PRIMARY_PORT"]};
  for (std::string p; rp >> p;) {
    ports.push_back(p);
  }
  ports_ = ports;
  return instances() - 1;
}

const std::string& ScratchCluster::env(const std::string& key) const {
  static const std::string empty;
  auto it = env_.find(key);
  return it == env_.end() ? empty : it->second;
}

std::string ScratchCluster::port(int instance) const {
  return ports_.at(static_cast<size_t>(instance));
}

std::string ScratchCluster::data_dir(int instance) const {
  return env("PG_DATA_ROOT") + (instance == 0 ? "/primary" : "/replica" + std::to_string(instance));
}

std::string ScratchCluster::log_file(int instance) const {
  return env("PG_LOG_DIR") +
         (instance == 0 ? "/primary.log" : "/replica" + std::to_string(instance) + ".log");
}

int ScratchCluster::pg_ctl(int instance, const std::string& args) const {
  std::string cmd = env("PG_BIN") + "/pg_ctl -D " + data_dir(instance) + " -l " +
                    log_file(instance) + " " + args + " >/dev/null 2>&1";
  if (geteuid() == 0) {
    cmd = "runuser -u postgres -- " + cmd;
  }
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

pid_t ScratchCluster::postmaster_pid(int instance) const {
  std::ifstream in(data_dir(instance) + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid)) {
    return 0;
  }
  return static_cast<pid_t>(pid);
}

std::string ScratchCluster::superuser_conninfo(int instance, const std::string& dbname) const {
  return "host=127.0.0.1 port=" + port(instance) + " dbname=" + dbname +
         " user=" + env("PG_SUPERUSER") + " password=" + env("PG_SUPERUSER_PASSWORD") +
         " sslmode=require gssencmode=disable connect_timeout=3";
}

// ---- configuration files ----

std::string write_config(const ProxySettings& s, int port, const std::string& name) {
  // The cluster's files and ports: a scratch cluster's, or the shared sandbox's.
  auto var = [&](const std::string& key) -> const std::string& {
    return s.cluster != nullptr ? s.cluster->env(key) : env(key);
  };
  const std::string sandbox = s.cluster != nullptr ? s.cluster->dir() : g_dir;
  std::ostringstream c;
  c << "[proxy]\n"
    << "listen_addr = \"127.0.0.1\"\n"
    << "listen_port = " << port << "\n"
    << "workers = " << s.workers << "\n"
    << "users_file = " << toml_string(s.users_file.empty() ? var("USERS_FILE") : s.users_file)
    << "\n"
    << "log_level = " << toml_string(s.log_level) << "\n"
    << "shutdown_timeout_ms = " << s.shutdown_timeout_ms << "\n";
  if (s.max_client_conn) {
    c << "max_client_conn = " << *s.max_client_conn << "\n";
  }
  if (s.auth_timeout_ms) {
    c << "auth_timeout_ms = " << *s.auth_timeout_ms << "\n";
  }
  if (s.client_idle_timeout_ms) {
    c << "client_idle_timeout_ms = " << *s.client_idle_timeout_ms << "\n";
  }
  if (s.max_message_size) {
    c << "max_message_size = " << *s.max_message_size << "\n";
  }
  c << "[tls]\n"
    << "mode = " << toml_string(s.tls_mode) << "\n"
    << "cert_file = " << toml_string(var("TLS_CERT")) << "\n"
    << "key_file = " << toml_string(var("TLS_KEY")) << "\n"
    << "[backend]\n";
  if (!s.backend_pass_through) {
    c << "user = \"pglane_app\"\n"
      << "password_file = " << toml_string(sandbox + "/backend_password") << "\n";
  }
  if (s.backend_connect_timeout_ms) {
    c << "connect_timeout_ms = " << *s.backend_connect_timeout_ms << "\n";
  }
  c << "[backend.tls]\n"
    << "mode = " << toml_string(s.backend_tls_mode) << "\n"
    << "ca_file = " << toml_string(s.backend_ca.empty() ? var("TLS_CA") : s.backend_ca) << "\n"
    << "[pool]\n"
    << "mode = \"" << s.pool_mode << "\"\n"
    << "size = " << s.pool_size << "\n"
    << "queue_timeout_ms = " << s.queue_timeout_ms << "\n"
    << "max_prepared_statements = " << s.max_prepared_statements << "\n";
  if (!s.regions_toml.empty()) {
    c << s.regions_toml;
  } else {
    c << "[[regions]]\n"
      << "name = \"local\"\n"
      << "writer = \"127.0.0.1:" << var("PG_PRIMARY_PORT") << "\"\n";
  }
  if (!s.readers.empty() && s.regions_toml.empty()) {
    c << "readers = [";
    for (size_t i = 0; i < s.readers.size(); ++i) {
      c << (i ? ", " : "") << toml_string(s.readers[i]);
    }
    c << "]\n";
  }
  c << s.extra_toml;
  std::string path = g_dir + "/" + name + ".toml";
  write_file(path, c.str());
  return path;
}

// ---- Proxy ----

Proxy::Proxy(ProxySettings settings) : settings_(std::move(settings)) {}

Proxy::~Proxy() {
  stop();
}

bool Proxy::start() {
  if (!sandbox_ready()) {
    return false;
  }
  index_ = g_proxy_counter.fetch_add(1);
  port_ = free_port();
  config_path_ = write_config(settings_, port_, "pglane-" + std::to_string(index_));
  log_path_ = g_dir + "/pglane-" + std::to_string(index_) + ".log";
  pid_ = fork();
  if (pid_ < 0) {
    return false;
  }
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    signal(SIGPIPE, SIG_DFL);
    for (const auto& [k, v] : settings_.env) {
      setenv(k.c_str(), v.c_str(), 1);
    }
    const char* args[] = {PGLANE_BINARY, "--config", config_path_.c_str(), nullptr};
    execv(args[0], const_cast<char* const*>(args));
    _exit(127);
  }
  register_pid(pid_);
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      unregister_pid(pid_);
      pid_ = -1;
      return false;
    }
    if (tcp_accepts(port_)) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

void Proxy::stop() {
  if (pid_ <= 0) {
    return;
  }
  kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + 5s;
  bool exited = false;
  while (Clock::now() < deadline) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  unregister_pid(pid_);
  pid_ = -1;
  // In a sanitizer build a report lands in pglane's log; it fails the test that ran pglane.
  const std::string log = read_file(log_path_);
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
    if (auto at = log.find(marker); at != std::string::npos) {
      ADD_FAILURE() << "pglane's log has a sanitizer report:\n" << log.substr(at, 4000);
      break;
    }
  }
}

int Proxy::wait_exit(std::chrono::milliseconds limit) {
  if (pid_ <= 0) {
    return -1;
  }
  const auto deadline = Clock::now() + limit;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      unregister_pid(pid_);
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (Clock::now() >= deadline) {
      return -1;
    }
    std::this_thread::sleep_for(10ms);
  }
}

std::string Proxy::log_tail(std::size_t max_bytes) const {
  std::string text = read_file(log_path_);
  if (text.size() > max_bytes) {
    text = "..." + text.substr(text.size() - max_bytes);
  }
  return text;
}

std::string Proxy::conninfo(const std::string& extra) const {
  const auto& cl = settings_.cluster;
  std::string s = "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + env("APP_DB") +
                  " user=" + env("APP_USER") +
                  " password=" + (cl != nullptr ? cl->env("APP_PASSWORD") : env("APP_PASSWORD")) +
                  " gssencmode=disable";
  if (extra.find("sslmode=") == std::string::npos) {
    s += " sslmode=disable";
  }
  if (!extra.empty()) {
    s += " " + extra;
  }
  return s;
}

// ---- libpq helpers ----

Conn connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
  Conn c(PQconnectStart(conninfo.c_str()));
  if (!c || PQstatus(c.get()) == CONNECTION_BAD) {
    return c;
  }
  PQsetErrorVerbosity(c.get(), PQERRORS_VERBOSE);
  const auto deadline = Clock::now() + timeout;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    pollfd pfd{PQsocket(c.get()),
               static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) == 0) {
      break;  // timed out: PQstatus stays != CONNECTION_OK
    }
    st = PQconnectPoll(c.get());
  }
  return c;
}

Conn connect_ok(const std::string& conninfo) {
  Conn c = connect(conninfo);
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  return c;
}

Conn connect_direct(const std::string& dbname) {
  return connect_direct_port(env("PG_PRIMARY_PORT"), dbname);
}

Conn connect_direct_port(const std::string& port, const std::string& dbname) {
  std::string info = "host=127.0.0.1 port=" + port + " dbname=" + dbname +
                     " user=" + env("PG_SUPERUSER") + " password=" + env("PG_SUPERUSER_PASSWORD") +
                     " sslmode=require gssencmode=disable";
  return connect_ok(info);
}

std::string sqlstate_from_message(std::string_view message) {
  static const std::regex re("(ERROR|FATAL|PANIC):  ([0-9A-Z]{5}):");
  std::cmatch m;
  if (std::regex_search(message.begin(), message.end(), m, re)) {
    return m[2].str();
  }
  return "";
}

std::string sqlstate(const PGresult* r) {
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s ? s : "";
}

Result exec(PGconn* c, const std::string& sql) {
  return Result(PQexec(c, sql.c_str()));
}

void exec_ok(PGconn* c, const std::string& sql) {
  Result r = exec(c, sql);
  auto st = PQresultStatus(r.get());
  EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
      << sql << ": " << PQresultErrorMessage(r.get()) << PQerrorMessage(c);
}

std::string query_value(PGconn* c, const std::string& sql) {
  Result r = exec(c, sql);
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK)
      << sql << ": " << PQresultErrorMessage(r.get()) << PQerrorMessage(c);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) == 0) {
    return "";
  }
  return PQgetisnull(r.get(), 0, 0) ? "" : PQgetvalue(r.get(), 0, 0);
}

int count_app_backends(PGconn* direct) {
  return std::atoi(query_value(direct,
                               "select count(*) from pg_stat_activity where usename = "
                               "'pglane_app' and backend_type = 'client backend' and "
                               "application_name not like 'pglane-%'")
                       .c_str());
}

bool wait_app_backends(PGconn* direct, int n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (count_app_backends(direct) == n) {
      return true;
    }
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(50ms);
  }
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

// ---- external programs ----

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

RunResult run_program(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  RunResult r;
  int out[2];
  if (pipe(out) != 0) {
    r.output = "pipe failed";
    return r;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    r.output = "fork failed";
    return r;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      dup2(devnull, 0);
      close(devnull);
    }
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    close(out[1]);
    signal(SIGPIPE, SIG_DFL);
    exec_argv(argv);
  }
  close(out[1]);
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{out[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char buf[4096];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;  // EOF: the program closed its output (it is exiting)
    }
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  if (timed_out) {
    kill(pid, SIGKILL);
    r.output += "\n[killed after " + std::to_string(timeout.count()) + " s]";
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// ---- RawClient ----

RawClient::~RawClient() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

bool RawClient::connect(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return false;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return true;
}

bool RawClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void RawClient::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

std::string RawClient::read_some(std::chrono::milliseconds timeout, std::size_t max) {
  std::string out = std::move(pending_);
  pending_.clear();
  const auto deadline = Clock::now() + timeout;
  while (out.size() < max && !closed_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      break;
    }
    // Once something arrived, only wait briefly for the rest of the burst.
    int wait = out.empty() ? static_cast<int>(left.count()) : std::min<int>(100, left.count());
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, wait) <= 0) {
      break;
    }
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, max - out.size()), 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) {
        continue;
      }
      closed_ = true;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

bool RawClient::read_exact(std::string& out, std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  out = std::move(pending_);
  pending_.clear();
  while (out.size() < n) {
    if (closed_) {
      pending_ = std::move(out);
      out.clear();
      return false;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      pending_ = std::move(out);
      out.clear();
      return false;
    }
    char buf[65536];
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) {
        continue;
      }
      closed_ = true;
      continue;
    }
    out.append(buf, static_cast<std::size_t>(got));
  }
  pending_ = out.substr(n);
  out.resize(n);
  return true;
}

std::optional<RawClient::Message> RawClient::read_message(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string header;
  if (!read_exact(header, 5, timeout)) {
    return std::nullopt;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(header.data());
  uint32_t len = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | p[4];
  if (len < 4 || len > (64u << 20)) {
    return std::nullopt;
  }
  Message m;
  m.type = header[0];
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (!read_exact(m.body, len - 4, std::max(left, std::chrono::milliseconds(1)))) {
    pending_ = header + pending_;
    return std::nullopt;
  }
  return m;
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout) {
  pending_.clear();
  const auto deadline = Clock::now() + timeout;
  while (!closed_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return false;
    }
    read_some(left);
  }
  return true;
}

// ---- wire builders ----

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

std::string startup_message(const std::map<std::string, std::string>& params, uint32_t version) {
  return startup_message_in_order(
      std::vector<std::pair<std::string, std::string>>(params.begin(), params.end()), version);
}

std::string startup_message_in_order(const std::vector<std::pair<std::string, std::string>>& params,
                                     uint32_t version) {
  std::string body = be32(version);
  for (const auto& [k, v] : params) {
    body += k;
    body += '\0';
    body += v;
    body += '\0';
  }
  body += '\0';
  return be32(static_cast<uint32_t>(body.size() + 4)) + body;
}

std::string ssl_request() {
  return be32(8) + be32(80877103);
}
std::string gssenc_request() {
  return be32(8) + be32(80877104);
}

std::string typed_message(char type, std::string_view body) {
  std::string s(1, type);
  s += be32(static_cast<uint32_t>(body.size() + 4));
  s += body;
  return s;
}

std::string error_field(std::string_view body, char field) {
  std::size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    char f = body[pos++];
    auto end = body.find('\0', pos);
    if (end == std::string_view::npos) {
      break;
    }
    if (f == field) {
      return std::string(body.substr(pos, end - pos));
    }
    pos = end + 1;
  }
  return "";
}

void on_every_replica(const std::string& sql) {
  for (const auto& port : replica_ports()) {
    on_replica(port, sql);
  }
}

void on_replica(const std::string& port, const std::string& sql) {
  Conn c = connect_direct_port(port);
  exec_ok(c.get(), sql);
}

bool wait_for(const std::function<bool()>& ok, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ok()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ok();
}

void wait_function_replicated(const std::string& name) {
  for (const auto& port : replica_ports()) {
    Conn c = connect_direct_port(port);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline &&
           query_value(c.get(), "SELECT count(*) FROM pg_proc WHERE proname = '" + name + "'") !=
               "1") {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

std::string redis_toml(const std::string& channel) {
  return "[redis]\nendpoint = \"127.0.0.1:" + env("REDIS_TLS_PORT") + "\"\nca_file = \"" +
         env("TLS_CA") + "\"\nfloor_channel = \"" + channel + "\"\n";
}

}  // namespace pglane::itest
