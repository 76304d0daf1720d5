#include "cache/tap.h"

namespace pglane::cache {

void Tap::on_message(char type, std::string_view msg) {
  if (state_ == State::kOff || state_ == State::kComplete) {
    return;
  }
  if (bytes_.size() + msg.size() > cap_) {
    stop();
    return;
  }
  switch (state_) {
    case State::kHead:
      if (type == 'D') {
        state_ = State::kRows;
      } else if (type == 'C') {
        state_ = State::kWantReady;
      } else if (type != '1' && type != '2' && type != 't' && type != 'T' && type != 'n') {
        stop();
        return;
      }
      break;
    case State::kRows:
      if (type == 'C') {
        state_ = State::kWantReady;
      } else if (type != 'D') {
        stop();
        return;
      }
      break;
    case State::kWantReady:
      // ReadyForQuery ends it, idle only: its bytes are the cache's to write on a hit.
      if (type == 'Z' && msg.size() == 6 && msg[5] == 'I') {
        state_ = State::kComplete;
      } else {
        stop();
      }
      return;
    default:
      return;
  }
  bytes_.append(msg);
}

}  // namespace pglane::cache
