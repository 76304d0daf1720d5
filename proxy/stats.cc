#include "proxy/stats.h"

namespace pglane::proxy {

Stats& stats() {
  static Stats s;
  return s;
}

}  // namespace pglane::proxy
