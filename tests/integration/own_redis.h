// A Redis of a test's own (TLS, no persistence) on a free port, for tests that kill and
// restart it; the shared sandbox Redis stays up for everyone else.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
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

// Three TLS Redis masters with cluster-enabled on free ports (and their bus ports, +10000),
// joined with redis-cli --cluster create.
class OwnCluster {
 public:
  OwnCluster() {
    dir_ = sandbox_dir() + "/redis-cluster-" + std::to_string(getpid());
    std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str());
    for (int i = 0; i < 3; ++i) {
      int p = 0;
      do {
        p = any_free_port();
      } while (p > 55000 || p == ports_[0] || p == ports_[1]);
      ports_[i] = p;
      std::ofstream(conf(i)) << "bind 127.0.0.1\nport 0\ntls-port " << p << "\ntls-cluster yes\n"
                             << "cluster-enabled yes\ncluster-config-file " << dir_ << "/nodes-"
                             << p << ".conf\ntls-cert-file " << env("TLS_CERT") << "\ntls-key-file "
                             << env("TLS_KEY") << "\ntls-ca-cert-file "
                             << env("TLS_CA")
                             // The cluster bus always asks for a client certificate, and the
                             // server's is for server authentication only.
                             << "\ntls-client-cert-file " << env("TLS_CLIENT_CERT")
                             << "\ntls-client-key-file " << env("TLS_CLIENT_KEY")
                             << "\ntls-auth-clients no\ndaemonize yes\npidfile " << dir_ << "/" << p
                             << ".pid\nlogfile " << dir_ << "/" << p << ".log\ndir " << dir_
                             << "\nsave \"\"\nappendonly no\n";
    }
  }
  ~OwnCluster() {
    for (int p : ports_) {
      const std::string pid = read_file(dir_ + "/" + std::to_string(p) + ".pid");
      if (!pid.empty()) {
        kill(static_cast<pid_t>(std::stol(pid)), SIGKILL);
      }
    }
  }
  // Starts the nodes, creates the cluster and waits (10 s at most) for cluster_state:ok.
  bool start() {
    for (int i = 0; i < 3; ++i) {
      if (std::system(("redis-server " + conf(i)).c_str()) != 0) {
        return false;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::string nodes;
    for (int p : ports_) {
      nodes += " 127.0.0.1:" + std::to_string(p);
    }
    shell_output("timeout 20 " + cli(ports_[0]) + " --cluster create" + nodes + " --cluster-yes >" +
                 dir_ + "/create.log 2>&1");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      bool ok = true;
      for (int p : ports_) {
        ok = ok && shell_output("timeout 2 " + cli(p) + " CLUSTER INFO").find("cluster_state:ok") !=
                       std::string::npos;
      }
      if (ok) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  int port(int i) const { return ports_[i]; }
  std::string create_log() const { return read_file(dir_ + "/create.log"); }
  // The port of the master serving `slot`, or 0.
  int owner(int slot) const {
    std::istringstream lines(shell_output("timeout 2 " + cli(ports_[0]) + " CLUSTER NODES"));
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream f(line);
      std::string id, addr, flags, master, ping, pong, epoch, state, range;
      f >> id >> addr >> flags >> master >> ping >> pong >> epoch >> state;
      while (f >> range) {
        const size_t dash = range.find('-');
        const int lo = std::stoi(range.substr(0, dash));
        const int hi = dash == std::string::npos ? lo : std::stoi(range.substr(dash + 1));
        if (slot >= lo && slot <= hi) {
          return std::stoi(addr.substr(addr.find(':') + 1, addr.find('@') - addr.find(':') - 1));
        }
      }
    }
    return 0;
  }
  std::string cli(int port) const {
    return "redis-cli --tls --cacert " + env("TLS_CA") + " -p " + std::to_string(port);
  }

 private:
  std::string conf(int i) const { return dir_ + "/" + std::to_string(ports_[i]) + ".conf"; }
  int ports_[3] = {0, 0, 0};
  std::string dir_;
};

}  // namespace pglane::itest
