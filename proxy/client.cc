#include "proxy/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "protocol/messages.h"

namespace pglane::proxy {

namespace {
constexpr std::size_t kClientBuffer = 32 * 1024;
}

Client::Client(tcp::socket socket)
    : stream(std::move(socket)), in(kClientBuffer), free_(stream.executor()) {}

void Client::fail(std::string_view sqlstate, std::string_view message) {
  error_bytes = protocol::fatal_error(sqlstate, message);
}

asio::awaitable<error_code> Client::write(std::string_view bytes) {
  std::vector<asio::const_buffer> bufs{asio::buffer(bytes)};
  co_return co_await write(bufs);
}

asio::awaitable<error_code> Client::write(const std::vector<asio::const_buffer>& bufs) {
  while (busy_) {
    free_.expires_at(asio::steady_timer::time_point::max());
    struct Waiting {  // (a cancelled coroutine throws at its next co_await: undone by RAII)
      int& count;
      explicit Waiting(int& c) : count(c) { ++count; }
      ~Waiting() { --count; }
    } waiting{waiting_};
    co_await free_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (broken_) {
    co_return asio::error::broken_pipe;
  }
  busy_ = true;
  // If this coroutine is cancelled mid-write (the other relay direction ended), the stream may
  // hold half a message: later writes must fail rather than wait or corrupt it.
  struct Done {
    Client& c;
    bool finished = false;
    ~Done() {
      c.busy_ = false;
      if (c.waiting_ > 0) {
        c.free_.cancel();  // (a timer's cancel takes the reactor's lock: only when needed)
      }
      if (!finished) {
        c.broken_ = true;
      }
    }
  } done{*this};
  auto ec = co_await stream.write_all(bufs);
  done.finished = !ec;  // a failed or cancelled write (operation_aborted) may be half done
  co_return ec;
}

}  // namespace pglane::proxy
