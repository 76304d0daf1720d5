// Online upgrade (docs/internals.md, "Online upgrade"): on SIGUSR2 a running pglane starts a new
// pglane (the binary now at its path, same arguments) that inherits its listening sockets, so
// the sockets and their queues of connections not yet accepted are never closed. Once the new
// process serves, it says so through a pipe; the old one then drains (as on SIGTERM) and exits.
// If the new one fails (a bad config: exit 2), the old one keeps serving.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pglane::proxy {

// Remembers how this process was started (main calls it first): the executable's path and the
// arguments, for the successor.
void remember_command_line(int argc, char** argv);

// New process: the listening sockets an old pglane handed over (PGLANE_LISTEN_FDS), once; empty
// when this process was not started by an upgrade.
std::vector<int> take_inherited_listeners();
// New process: the old one may drain now (written to PGLANE_UPGRADE_PIPE). No-op otherwise.
void tell_predecessor_ready();
bool started_by_upgrade();

// Old process: starts the successor with `listeners` inherited. `ready_fd` becomes readable
// when it serves (one byte) or when it died (EOF).
struct Successor {
  pid_t pid = -1;
  int ready_fd = -1;
};
absl::StatusOr<Successor> start_successor(const std::vector<int>& listeners);

}  // namespace pglane::proxy
