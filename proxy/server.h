// The process: N worker threads, each with its own io_context and its own SO_REUSEPORT listener,
// so the kernel spreads new connections across workers and a session never changes thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "conf/config.h"
#include "proxy/runtime.h"

namespace pglane::proxy {

// Builds a runtime snapshot (users, TLS contexts) from a loaded config.
absl::StatusOr<std::shared_ptr<const Snapshot>> make_snapshot(conf::ConfigPtr config);

// Runs pglane until SIGINT/SIGTERM. SIGHUP reloads the users file and TLS certificates (the rest
// of the configuration is read at start). Returns the process exit status.
int run_server(const std::string& config_path);

}  // namespace pglane::proxy
