// pglane command line:
//   pglane [--config FILE]          run the proxy (default conf/proxy.toml)
//   pglane --check-config FILE      validate FILE and its users file, then exit (0 ok, 2 invalid)
//   pglane passwd USER              read a password from stdin, print a users-file line with its
//                                   SCRAM-SHA-256 verifier
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/str_replace.h"
#include "conf/loader.h"
#include "protocol/scram.h"
#include "proxy/handover.h"
#include "proxy/lifecycle.h"
#include "proxy/server.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: pglane [--config FILE]\n"
               "       pglane --check-config FILE\n"
               "       pglane passwd USER   (password on stdin)\n");
  return 2;
}

int check_config(const std::string& path) {
  auto config = pglane::conf::load_config(path);
  if (!config.ok()) {
    // One problem per line, each "FILE:LINE: KEY: what is wrong".
    std::fprintf(stderr, "pglane: %s\n",
                 absl::StrReplaceAll(config.status().message(), {{"\n", "\npglane: "}}).c_str());
    return 2;
  }
  auto snap = pglane::proxy::make_snapshot(*config);
  if (!snap.ok()) {
    std::fprintf(stderr, "pglane: %s\n", std::string(snap.status().message()).c_str());
    return 2;
  }
  std::printf("%s: configuration is valid\n", path.c_str());
  return 0;
}

int passwd(const std::string& user) {
  std::string password;
  if (!std::getline(std::cin, password) || password.empty()) {
    std::fprintf(stderr, "pglane passwd: no password on standard input\n");
    return 2;
  }
  std::printf("%s scram-sha-256 %s\n", user.c_str(),
              pglane::protocol::make_scram_verifier(password).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "conf/proxy.toml";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--check-config" && i + 1 < argc) {
      return check_config(argv[i + 1]);
    } else if (arg == "passwd" && i + 1 < argc) {
      return passwd(argv[i + 1]);
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else {
      return usage();
    }
  }
  pglane::proxy::remember_command_line(argc, argv);
  // Sockets write with MSG_NOSIGNAL; the upgrade's pipe to an old process that already exited
  // must fail with EPIPE too, not kill this one.
  std::signal(SIGPIPE, SIG_IGN);
  // Until the control thread handles them (Lifecycle::start unblocks them), these signals wait:
  // the listening sockets accept (into the kernel's queue) before then, and a SIGUSR2 or SIGHUP
  // sent meanwhile would otherwise kill the process. Threads started until then inherit the
  // mask, so the signals are the control thread's.
  pglane::proxy::block_lifecycle_signals();
  return pglane::proxy::run_server(config_path);
}
