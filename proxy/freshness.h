// The process's freshness floors (routing/floors.h): one FloorBoard shared by every worker.
// Sessions raise it when a writing attachment commits and read it when they place a read.
#pragma once

#include <chrono>

#include "routing/floors.h"

namespace pglane::proxy {

routing::FloorBoard& floor_board();

// FloorBoard's times are steady_clock nanoseconds.
inline routing::FloorBoard::Nanos floor_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline std::chrono::steady_clock::time_point floor_time(routing::FloorBoard::Nanos n) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(n)));
}

}  // namespace pglane::proxy
