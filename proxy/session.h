// One client session, start to finish, as one coroutine (see docs/internals.md, "Session
// lifecycle"): negotiate (TLS, startup or cancel) -> authenticate -> attach a server -> relay ->
// finish. The Session object is the coroutine's frame: it owns both connections and all state.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/runtime.h"

namespace pglane::proxy {

// Runs a session on the calling worker until it ends; never throws.
boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, Runtime& runtime,
                                         int worker);

}  // namespace pglane::proxy
