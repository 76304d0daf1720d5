// A relay tap that keeps one unit's answer for the result cache (cache::cacheable_unit): the
// head (ParseComplete, BindComplete, ParameterDescription, RowDescription, NoData, as the
// extended protocol answers them; a simple Query has just its RowDescription), any DataRows,
// one CommandComplete, then ReadyForQuery reporting idle. Anything else on the way (an error, a
// notice, a ParameterStatus, a second result, a message that streamed because it was too large,
// more than the size cap) spoils it, and nothing is stored. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pglane::cache {

class Tap {
 public:
  // Starts keeping the answer of the unit just sent.
  void start(size_t cap) {
    state_ = State::kHead;
    cap_ = cap;
    bytes_.clear();
  }
  bool active() const { return state_ != State::kOff; }
  // Whether a server message of this type and size should be read whole for the tap.
  bool wants_whole(char type, size_t size) const {
    return active() && type == 'D' && bytes_.size() + size <= cap_;
  }
  // A whole server message.
  void on_message(char type, std::string_view msg);
  // A message that streams past (never seen whole): the answer cannot be kept.
  void on_stream() { stop(); }
  // After ReadyForQuery: whether the whole answer was kept (take it with take()).
  bool complete() const { return state_ == State::kComplete; }
  std::string take() {
    state_ = State::kOff;
    return std::move(bytes_);
  }
  void stop() {
    state_ = State::kOff;
    bytes_.clear();
  }

 private:
  enum class State { kOff, kHead, kRows, kWantReady, kComplete };
  State state_ = State::kOff;
  size_t cap_ = 0;
  std::string bytes_;
};

}  // namespace pglane::cache
