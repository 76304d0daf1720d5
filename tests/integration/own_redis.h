// A Redis of a test's own (TLS, no persistence) on a free port, for tests that kill and
// restart it; the shared sandbox Redis stays up for everyone else.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/harness.h"

namespace pglane::itest {

class OwnRedis {
 public:
  OwnRedis() : port_(any_free_port()) {
    dir_ = sandbox_dir() + "/redis-own-" + std::to_string(getpid()) + "-" + std::to_string(port_);
    std::system(("mkdir -p " + dir_).c_str());
    std::ofstream(dir_ + "/redis.conf")
        << "bind 127.0.0.1\nport 0\ntls-port " << port_ << "\ntls-cert-file " << env("TLS_CERT")
        << "\ntls-key-file " << env("TLS_KEY") << "\ntls-ca-cert-file " << env("TLS_CA")
        << "\ntls-auth-clients no\ndaemonize yes\npidfile " << dir_ << "/redis.pid\nlogfile "
        << dir_ << "/redis.log\ndir " << dir_ << "\nsave \"\"\nappendonly no\n";
  }
  ~OwnRedis() { stop(); }
  bool start() {
    if (std::system(("redis-server " + dir_ + "/redis.conf").c_str()) != 0) {
      return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pid() > 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void stop() {
    const pid_t p = pid();
    if (p > 0) {
      kill(p, SIGKILL);
      std::remove((dir_ + "/redis.pid").c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid() const {
    const std::string text = read_file(dir_ + "/redis.pid");
    return text.empty() ? 0 : static_cast<pid_t>(std::stol(text));
  }
  int port_;
  std::string dir_;
};

}  // namespace pglane::itest
