#include "proxy/handover.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace pglane::proxy {

namespace {

constexpr const char* kListenFds = "PGLANE_LISTEN_FDS";
constexpr const char* kReadyPipe = "PGLANE_UPGRADE_PIPE";

std::string g_exe;
std::vector<std::string> g_args;

void set_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) {
    fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

}  // namespace

void remember_command_line(int argc, char** argv) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    g_exe.assign(buf, static_cast<size_t>(n));
    // The binary was replaced (a package upgrade): its path names the new one.
    const std::string deleted = " (deleted)";
    if (g_exe.size() > deleted.size() &&
        g_exe.compare(g_exe.size() - deleted.size(), deleted.size(), deleted) == 0) {
      g_exe.resize(g_exe.size() - deleted.size());
    }
  } else if (argc > 0) {
    g_exe = argv[0];
  }
  g_args.assign(argv, argv + argc);
}

bool started_by_upgrade() {
  return std::getenv(kReadyPipe) != nullptr;
}

std::vector<int> take_inherited_listeners() {
  std::vector<int> fds;
  const char* list = std::getenv(kListenFds);
  if (list == nullptr) {
    return fds;
  }
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    int fd = -1;
    if (absl::SimpleAtoi(part, &fd) && fd > 2 && fcntl(fd, F_GETFD) >= 0) {
      set_cloexec(fd);  // not passed on to anything this process starts
      fds.push_back(fd);
    }
  }
  unsetenv(kListenFds);
  return fds;
}

void tell_predecessor_ready() {
  const char* v = std::getenv(kReadyPipe);
  int fd = -1;
  if (v == nullptr || !absl::SimpleAtoi(v, &fd) || fd <= 2) {
    return;
  }
  [[maybe_unused]] ssize_t n = write(fd, "R", 1);
  close(fd);
  unsetenv(kReadyPipe);
}

absl::StatusOr<Successor> start_successor(const std::vector<int>& listeners) {
  if (g_exe.empty()) {
    return absl::FailedPreconditionError("the executable's path is unknown");
  }
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  // Descriptors the child inherits: dup() clears close-on-exec.
  std::vector<int> passed;
  for (int fd : listeners) {
    int d = dup(fd);
    if (d >= 0) {
      passed.push_back(d);
    }
  }
  int write_end = dup(pipefd[1]);
  close(pipefd[1]);
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "PGLANE_LISTEN_FDS=", 18) != 0 &&
        std::strncmp(*e, "PGLANE_UPGRADE_PIPE=", 20) != 0 &&
        std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0 && std::strncmp(*e, "WATCHDOG_", 9) != 0) {
      env.emplace_back(*e);
    }
  }
  env.push_back(absl::StrCat(kListenFds, "=", absl::StrJoin(passed, ",")));
  env.push_back(absl::StrCat(kReadyPipe, "=", write_end));
  // systemd's notification socket and watchdog go to the successor, which becomes the main
  // process (MAINPID=); WATCHDOG_PID is dropped, since it names this process.
  for (const char* keep : {"NOTIFY_SOCKET", "WATCHDOG_USEC"}) {
    if (const char* v = std::getenv(keep)) {
      env.push_back(absl::StrCat(keep, "=", v));
    }
  }
  std::vector<char*> envp;
  for (auto& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : g_args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    // Nothing but the listeners and the pipe goes on: Asio opens sockets without close-on-exec.
    // (Only async-signal-safe calls here: this process has other threads.)
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int d : passed) {
      fcntl(d, F_SETFD, 0);
    }
    fcntl(write_end, F_SETFD, 0);
    execve(g_exe.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  const int fork_errno = errno;
  for (int d : passed) {
    close(d);
  }
  close(write_end);
  if (pid < 0) {
    close(pipefd[0]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  return Successor{pid, pipefd[0]};
}

}  // namespace pglane::proxy
