// Where a statement may run. Route decisions are pure functions of statement analysis, session
// state and a health view; this header is the vocabulary shared with proxy/.
#pragma once

namespace pglane::routing {

enum class Route {
  kWriter,     // the region's writer (always safe)
  kReader,     // a healthy, caught-up replica
  kAnalytics,  // the analytics endpoint
};

}  // namespace pglane::routing
