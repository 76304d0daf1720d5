// The admin console (docs/internals.md, "Admin console"): psql connects to the virtual database
// admin.database as a user listed in admin.users (every command) or admin.stats_users (SHOW
// only), authenticated like any client. It speaks the simple query protocol and answers from
// the process's own views: pools, sessions, per-worker metrics and the topology.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "proxy/client.h"
#include "proxy/runtime.h"
#include "proxy/session_end.h"
#include "proxy/sessions.h"

namespace pglane::proxy {

// What a console user may do.
enum class AdminRight { kNone, kStats, kAdmin };
AdminRight admin_right(const conf::Config& cfg, const std::string& user);

// Serves a logged-in console client (AuthenticationOk not sent yet) until it leaves.
boost::asio::awaitable<End> serve_admin(Client& client, SessionEntry& me, const Snapshot& snap,
                                        bool may_act);

// One console command's answer: a result set (columns and rows) and/or a command tag, or an
// error. Public for unit tests of the parser.
struct AdminReply {
  std::vector<std::string_view> columns;
  std::vector<std::vector<std::string>> rows;
  std::string tag;
  std::string sqlstate;  // set: an error
  std::string message;
};

// Splits a console command into lower-cased words (quotes and a trailing ';' removed).
std::vector<std::string> admin_words(std::string_view sql);

}  // namespace pglane::proxy
