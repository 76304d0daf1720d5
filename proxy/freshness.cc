#include "proxy/freshness.h"

namespace pglane::proxy {

routing::FloorBoard& floor_board() {
  static routing::FloorBoard board;
  return board;
}

}  // namespace pglane::proxy
