#include "proxy/sessions.h"

#include "proxy/server_conn.h"

#include <algorithm>
#include <atomic>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pglane::proxy {

namespace asio = boost::asio;

const char* client_state_name(ClientState s) {
  switch (s) {
    case ClientState::kLogin:
      return "login";
    case ClientState::kIdle:
      return "idle";
    case ClientState::kWaiting:
      return "waiting";
    case ClientState::kActive:
      return "active";
  }
  return "?";
}

void SessionEntry::request_end(bool now) {
  (now ? kill : drain) = true;
  // A session between transactions (or waiting for RESUME) has nothing to finish: it ends at
  // once. An active one ends at its next transaction boundary, or now.
  const bool waiting = state == ClientState::kIdle || state == ClientState::kWaiting;
  // A session that holds its server for the whole session is between transactions when its
  // server is idle with nothing owed: woken there (a drain asks again every 500 ms).
  const bool holding_idle = state == ClientState::kActive && at_boundary && at_boundary();
  if ((now || (waiting && should_end_now()) || (!now && holding_idle)) && wake) {
    wake();
  }
}

void SessionEntry::set_server(const ServerConn* conn) {
  if (conn == nullptr) {
    server.clear();
    server_pid = 0;
    return;
  }
  if (server_text.empty() || !(server_endpoint == conn->endpoint)) {
    server_text = conn->endpoint.to_string();  // built once per endpoint, not per transaction
    server_endpoint = conn->endpoint;
  }
  server = server_text;
  server_pid = conn->key.pid;
  server_created = conn->created;
}

void SessionEntry::count_bytes(uint64_t read_total, uint64_t written_total) {
  if (stats != nullptr) {
    stats->bytes_in.add(read_total - bytes_read_counted);
    stats->bytes_out.add(written_total - bytes_written_counted);
  }
  bytes_read_counted = read_total;
  bytes_written_counted = written_total;
}

void WorkerSessions::add(SessionEntry* e) {
  entries_.push_back(e);
}

void WorkerSessions::remove(SessionEntry* e) {
  auto it = std::find(entries_.begin(), entries_.end(), e);
  if (it != entries_.end()) {
    *it = entries_.back();
    entries_.pop_back();
  }
}

namespace {
WorkerSessions g_sessions[kMaxWorkers];
std::atomic<uint64_t> g_next_id{1};
std::vector<asio::any_io_executor> g_executors;
}  // namespace

WorkerSessions& worker_sessions(int worker) {
  return g_sessions[static_cast<size_t>(worker) % kMaxWorkers];
}
uint64_t next_session_id() {
  return g_next_id.fetch_add(1, std::memory_order_relaxed);
}

void set_worker_executors(std::vector<asio::any_io_executor> executors) {
  g_executors = std::move(executors);
}
const std::vector<asio::any_io_executor>& worker_executors() {
  return g_executors;
}

namespace {

// Completion of work posted elsewhere: the last one wakes the waiter on its own executor.
struct Join {
  Join(asio::any_io_executor ex, int n) : home(ex), timer(ex), left(n) {}
  asio::any_io_executor home;
  asio::steady_timer timer;
  std::atomic<int> left;
  void done(const std::shared_ptr<Join>& self) {
    if (left.fetch_sub(1) == 1) {
      asio::post(home, [self] { self->timer.cancel(); });
    }
  }
};

asio::awaitable<void> wait_join(const std::shared_ptr<Join>& j, std::chrono::milliseconds limit) {
  j->timer.expires_after(limit);
  if (j->left.load() > 0) {
    // The cancel is posted to this executor, so it cannot run before this wait starts.
    co_await j->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

asio::awaitable<void> on_every_worker(const std::function<void(int)>& fn,
                                      std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  const auto& workers = worker_executors();
  auto j = std::make_shared<Join>(ex, static_cast<int>(workers.size()));
  auto f = std::make_shared<std::function<void(int)>>(fn);
  for (size_t i = 0; i < workers.size(); ++i) {
    asio::post(workers[i], [j, f, i] {
      (*f)(static_cast<int>(i));
      j->done(j);
    });
  }
  co_await wait_join(j, limit);
}

asio::awaitable<void> run_on(const asio::any_io_executor& target, const std::function<void()>& fn,
                             std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  auto j = std::make_shared<Join>(ex, 1);
  auto f = std::make_shared<std::function<void()>>(fn);
  asio::post(target, [j, f] {
    (*f)();
    j->done(j);
  });
  co_await wait_join(j, limit);
}

bool PauseGate::paused(const std::string& database) const {
  if (!any()) {
    return false;
  }
  std::lock_guard lock(mu_);
  return all_ || databases_.count(database) > 0;
}

void PauseGate::pause(const std::string& database) {
  std::lock_guard lock(mu_);
  if (database.empty()) {
    all_ = true;
  } else {
    databases_.insert(database);
  }
  any_.store(true, std::memory_order_relaxed);
}

bool PauseGate::resume(const std::string& database) {
  std::lock_guard lock(mu_);
  bool was = false;
  if (database.empty()) {
    was = all_ || !databases_.empty();
    all_ = false;
    databases_.clear();
  } else {
    was = databases_.erase(database) > 0;
  }
  any_.store(all_ || !databases_.empty(), std::memory_order_relaxed);
  return was;
}

std::vector<std::string> PauseGate::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  if (all_) {
    out.push_back("*");
  }
  out.insert(out.end(), databases_.begin(), databases_.end());
  return out;
}

PauseGate& pause_gate() {
  static PauseGate g;
  return g;
}

asio::awaitable<bool> wait_while_paused(SessionEntry& entry) {
  auto ex = co_await asio::this_coro::executor;
  while (pause_gate().paused(entry.database)) {
    if (entry.should_end_now()) {
      co_return false;
    }
    // RESUME is rare and a paused client waits anyway: polling keeps the gate lock-free for
    // everyone else.
    asio::steady_timer t(ex, std::chrono::milliseconds(10));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return !entry.should_end_now();
}

ProcessControl& process_control() {
  static ProcessControl c;
  return c;
}

}  // namespace pglane::proxy
