#include "proxy/admin.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "conf/describe.h"
#include "protocol/messages.h"
#include "proxy/floor_sync.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/pool.h"
#include "proxy/result_cache.h"
#include "proxy/stats.h"
#include "proxy/topology.h"

#ifndef PGLANE_VERSION
#define PGLANE_VERSION "0.1.0"
#endif

namespace pglane::proxy {

namespace p = protocol;

AdminRight admin_right(const conf::Config& cfg, const std::string& user) {
  auto listed = [&](const std::vector<std::string>& users) {
    return std::find(users.begin(), users.end(), user) != users.end();
  };
  if (listed(cfg.admin.users)) {
    return AdminRight::kAdmin;
  }
  return listed(cfg.admin.stats_users) ? AdminRight::kStats : AdminRight::kNone;
}

std::vector<std::string> admin_words(std::string_view sql) {
  std::vector<std::string> words;
  for (absl::string_view w : absl::StrSplit(absl::string_view(sql.data(), sql.size()),
                                            absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    std::string word(w);
    while (!word.empty() && word.back() == ';') {
      word.pop_back();
    }
    if (word.size() >= 2 && (word.front() == '"' || word.front() == '\'') &&
        word.back() == word.front()) {
      word = word.substr(1, word.size() - 2);  // a quoted name keeps its case
    } else {
      absl::AsciiStrToLower(&word);
    }
    if (!word.empty()) {
      words.push_back(std::move(word));
    }
  }
  return words;
}

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

bool test_hooks() {
  static const bool on = [] {
    const char* v = std::getenv("PGLANE_TEST_HOOKS");
    return v != nullptr && std::string_view(v) == "1";
  }();
  return on;
}

std::string ms(int64_t us) {
  return absl::StrFormat("%.3f", static_cast<double>(us) / 1000.0);
}

std::string age_of(std::chrono::steady_clock::time_point since) {
  auto d = std::chrono::steady_clock::now() - since;
  return absl::StrCat(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

std::string utc(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

AdminReply error(std::string_view sqlstate, std::string message) {
  AdminReply r;
  r.sqlstate = sqlstate;
  r.message = std::move(message);
  return r;
}

AdminReply tag(std::string t) {
  AdminReply r;
  r.tag = std::move(t);
  return r;
}

AdminReply table(std::vector<std::string_view> columns) {
  AdminReply r;
  r.columns = std::move(columns);
  return r;
}

constexpr std::string_view kHelp[][2] = {
    {"SHOW HELP", "this list"},
    {"SHOW VERSION", "pglane's version"},
    {"SHOW CONFIG", "the configuration in effect (secrets masked)"},
    {"SHOW POOLS", "server connection pools: open, idle, waiting clients, paused"},
    {"SHOW CLIENTS", "client sessions: address, user, database, state, server"},
    {"SHOW SERVERS", "server connections: endpoint, state, client, backend pid"},
    {"SHOW STATS", "per database and user: transactions, queries, bytes, latency p50/p99"},
    {"SHOW ROUTES", "how units of work were routed: replicas, writer, retries, fallbacks"},
    {"SHOW CACHE", "the result cache: hits, misses, stale and rejected entries, stores"},
    {"SHOW HEALTH", "per endpoint: role, up, lag, LSN, probe RTT, last error"},
    {"RELOAD", "re-read the configuration file (admin.users only)"},
    {"PAUSE [db]", "hold new transactions (of db, or all) once those under way end"},
    {"RESUME [db]", "let held transactions go"},
    {"KILL id", "close client session id (from SHOW CLIENTS) with 57P01"},
    {"SHUTDOWN [WAIT]", "stop pglane now, or after transactions under way end"},
    {"SET log_level = level", "debug, info, warning or error, until the next reload"},
};

// Console state for one connected admin.
class Console {
 public:
  Console(Client& client, SessionEntry& me, const Snapshot& snap, bool may_act)
      : client_(client), me_(me), snap_(snap), cfg_(*snap.config), may_act_(may_act) {}

  asio::awaitable<AdminReply> run(const std::vector<std::string>& w) {
    if (w.empty()) {
      co_return tag("EMPTY");
    }
    if (w[0] == "show" && w.size() == 2) {
      co_return co_await show(w[1]);
    }
    if (w[0] == "debug" && w.size() == 3 && w[1] == "stall" && test_hooks()) {
      // Test-only (PGLANE_TEST_HOOKS=1): blocks this worker's event loop, as a stuck worker
      // would, so that tests see the systemd watchdog pings stop.
      int ms = 0;
      if (!absl::SimpleAtoi(w[2], &ms) || ms < 0 || ms > 60000) {
        co_return error("22023", "DEBUG STALL takes milliseconds, 0..60000");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      co_return tag("DEBUG");
    }
    static constexpr std::string_view kActs[] = {"reload", "pause",    "resume",
                                                 "kill",   "shutdown", "set"};
    if (std::find(std::begin(kActs), std::end(kActs), w[0]) == std::end(kActs)) {
      co_return error("42601", "unknown console command; SHOW HELP lists them");
    }
    if (!may_act_) {
      co_return error("42501", absl::StrCat("permission denied: ", absl::AsciiStrToUpper(w[0]),
                                            " needs an admin user (admin.users); ", me_.user,
                                            " may only SHOW"));
    }
    if (w[0] == "reload" && w.size() == 1) {
      co_return co_await reload();
    }
    if ((w[0] == "pause" || w[0] == "resume") && w.size() <= 2) {
      std::string db = w.size() == 2 ? w[1] : "";
      if (w[0] == "resume") {
        co_return resume(db);
      }
      co_return co_await pause(db);
    }
    if (w[0] == "kill" && w.size() == 2) {
      co_return co_await kill(w[1]);
    }
    if (w[0] == "shutdown" && (w.size() == 1 || (w.size() == 2 && w[1] == "wait"))) {
      ProcessControl& pc = process_control();
      if (!pc.shutdown) {
        co_return error("55000", "shutdown is not available");
      }
      PGLANE_LOG_INFO("SHUTDOWN%s from the console (user %s)", w.size() == 2 ? " WAIT" : "",
                      me_.user);
      const bool wait = w.size() == 2;
      asio::post(pc.executor, [wait] { process_control().shutdown(wait); });
      co_return tag("SHUTDOWN");
    }
    if (w[0] == "set" && (w.size() == 4 || w.size() == 3)) {
      // SET log_level = x | SET log_level TO x | SET log_level x
      const std::string& key = w[1];
      const std::string& value = w.back();
      if (key == "log_level") {
        static const std::pair<const char*, conf::LogLevel> kLevels[] = {
            {"debug", conf::LogLevel::kDebug},
            {"info", conf::LogLevel::kInfo},
            {"warning", conf::LogLevel::kWarning},
            {"error", conf::LogLevel::kError}};
        for (const auto& [n, level] : kLevels) {
          if (value == n) {
            g_log_level.store(level, std::memory_order_relaxed);
            log_line(conf::LogLevel::kInfo, absl::StrCat("log_level set to ", n, " by ", me_.user));
            co_return tag("SET");
          }
        }
        co_return error("22023", "log_level must be debug, info, warning or error");
      }
      co_return error("42704", absl::StrCat("unknown console setting \"", key, "\""));
    }
    co_return error("42601", "malformed console command; SHOW HELP lists them");
  }

 private:
  asio::awaitable<AdminReply> show(const std::string& what) {
    if (what == "help" || what == "commands") {
      AdminReply r = table({"command", "what it does"});
      for (const auto& [c, d] : kHelp) {
        r.rows.push_back({std::string(c), std::string(d)});
      }
      co_return r;
    }
    if (what == "version") {
      AdminReply r = table({"version"});
      r.rows.push_back({absl::StrCat("pglane ", PGLANE_VERSION)});
      co_return r;
    }
    if (what == "config") {
      AdminReply r = table({"key", "value"});
      for (auto& [k, v] : conf::describe(cfg_)) {
        r.rows.push_back({std::move(k), std::move(v)});
      }
      co_return r;
    }
    if (what == "pools") {
      AdminReply r = table({"database", "user", "endpoint", "server_open", "server_idle",
                            "server_active", "clients_waiting", "paused"});
      for (const PoolView& v : pools().view()) {
        r.rows.push_back({v.database, v.user, v.endpoint, absl::StrCat(v.open),
                          absl::StrCat(v.idle), absl::StrCat(v.open - v.idle),
                          absl::StrCat(v.waiting), pause_gate().paused(v.database) ? "yes" : "no"});
      }
      co_return r;
    }
    if (what == "clients") {
      co_return co_await clients();
    }
    if (what == "servers") {
      co_return co_await servers();
    }
    if (what == "stats") {
      co_return show_stats();
    }
    if (what == "routes") {
      co_return show_routes();
    }
    if (what == "cache") {
      co_return show_cache();
    }
    if (what == "health") {
      AdminReply r = table({"endpoint", "region", "role", "up", "lag_ms", "lsn", "rtt_ms", "in_use",
                            "reads", "probes_failed", "last_error"});
      if (Topology* t = topology()) {
        for (const EndpointView& e : t->view()) {
          r.rows.push_back({e.name, e.region, e.role, e.up ? "yes" : "no", absl::StrCat(e.lag_ms),
                            absl::StrFormat("%X/%X", e.lsn >> 32, e.lsn & 0xffffffffu),
                            ms(e.rtt_us), absl::StrCat(e.outstanding), absl::StrCat(e.reads),
                            absl::StrCat(e.probes_failed), e.last_error});
        }
      }
      co_return r;
    }
    co_return error("42601",
                    absl::StrCat("unknown SHOW target \"", what, "\"; SHOW HELP lists them"));
  }

  asio::awaitable<AdminReply> clients() {
    auto rows = std::make_shared<std::vector<std::vector<std::string>>>();
    auto mu = std::make_shared<std::mutex>();
    // Named: GCC 12 may end a temporary in a co_await expression too early.
    const std::function<void(int)> task = [rows, mu](int worker) {
      for (const SessionEntry* e : worker_sessions(worker).all()) {
        std::vector<std::string> row{absl::StrCat(e->id),
                                     absl::StrCat(e->worker),
                                     e->addr,
                                     e->tls ? "yes" : "no",
                                     e->user,
                                     e->database,
                                     e->application_name,
                                     client_state_name(e->state),
                                     age_of(e->state_since),
                                     utc(e->connected_at),
                                     e->server,
                                     e->server.empty() ? "" : absl::StrCat(e->server_pid),
                                     absl::StrCat(e->transactions)};
        std::lock_guard lock(*mu);
        rows->push_back(std::move(row));
      }
    };
    co_await on_every_worker(task);
    AdminReply r =
        table({"id", "worker", "address", "tls", "user", "database", "application_name", "state",
               "state_ms", "connected_at", "server", "server_pid", "transactions"});
    std::lock_guard lock(*mu);
    r.rows = *rows;
    std::sort(r.rows.begin(), r.rows.end(),
              [](const auto& a, const auto& b) { return std::stoull(a[0]) < std::stoull(b[0]); });
    co_return r;
  }

  asio::awaitable<AdminReply> servers() {
    auto rows = std::make_shared<std::vector<std::vector<std::string>>>();
    auto mu = std::make_shared<std::mutex>();
    // Named: GCC 12 may end a temporary in a co_await expression too early.
    const std::function<void(int)> task = [rows, mu](int worker) {
      for (const SessionEntry* e : worker_sessions(worker).all()) {
        if (e->server.empty()) {
          continue;
        }
        std::vector<std::string> row{e->server,
                                     e->database,
                                     e->user,
                                     "active",
                                     absl::StrCat(e->id),
                                     absl::StrCat(e->server_pid),
                                     age_of(e->server_created)};
        std::lock_guard lock(*mu);
        rows->push_back(std::move(row));
      }
    };
    co_await on_every_worker(task);
    AdminReply r =
        table({"endpoint", "database", "user", "state", "client_id", "server_pid", "age_ms"});
    {
      std::lock_guard lock(*mu);
      r.rows = *rows;
    }
    for (const PoolView& v : pools().view()) {
      for (const auto& [pid, idle_s] : v.idle_conns) {
        r.rows.push_back({v.endpoint, v.database, v.user, "idle", "", absl::StrCat(pid),
                          absl::StrCat(idle_s * 1000)});
      }
    }
    co_return r;
  }

  AdminReply show_stats() {
    AdminReply r = table({"database", "user", "transactions", "queries", "bytes_received",
                          "bytes_sent", "xact_avg_ms", "xact_p50_ms", "xact_p99_ms"});
    for (const auto& [k, s] : sum_user_stats()) {
      const Histogram::Totals& x = s.xact_time;
      r.rows.push_back({k.first, k.second, absl::StrCat(s.transactions), absl::StrCat(s.queries),
                        absl::StrCat(s.bytes_in), absl::StrCat(s.bytes_out),
                        ms(x.count ? static_cast<int64_t>(x.sum_us / x.count) : 0),
                        ms(static_cast<int64_t>(x.quantile_us(0.5))),
                        ms(static_cast<int64_t>(x.quantile_us(0.99)))});
    }
    return r;
  }

  AdminReply show_routes() {
    AdminReply r = table({"route", "count"});
    auto row = [&](const char* name, int64_t v) { r.rows.push_back({name, absl::StrCat(v)}); };
    if (Topology* t = topology()) {
      const RouteStats& s = t->stats();
      row("reads_local_replica", s.reads_local.load());
      row("reads_remote_replica", s.reads_remote.load());
      row("reads_writer", s.reads_writer.load());
      row("reads_writer_read_your_writes", s.reads_ryw.load());
      row("writes", s.writes.load());
      row("analytics", s.analytics.load());
      row("retries", s.retries.load());
      row("reroutes", s.reroutes.load());
      row("fallbacks_to_writer", s.reads_writer.load() - s.reads_ryw.load());
      row("writer_changes", static_cast<int64_t>(t->writer_changes()));
    }
    row("writer_timeouts", stats().writer_timeouts.load());
    row("server_lost", stats().server_lost.load());
    row("outcome_unknown", stats().outcome_unknown.load());
    if (const FloorSync* fs = floor_sync()) {
      const FloorSyncStats& f = fs->stats();
      const auto received = static_cast<int64_t>(f.received.load());
      row("floor_channel_up", fs->subscribed() ? 1 : 0);
      row("floor_published", static_cast<int64_t>(f.published.load()));
      row("floor_publish_failures", static_cast<int64_t>(f.publish_failures.load()));
      row("floor_received", received);
      row("floor_resyncs", static_cast<int64_t>(f.resyncs.load()));
      row("floor_propagation_avg_us",
          received ? static_cast<int64_t>(f.delay_sum_us.load()) / received : 0);
      row("floor_propagation_max_us", static_cast<int64_t>(f.delay_max_us.load()));
      row("floor_propagation_p50_us", static_cast<int64_t>(f.delay_quantile_us(0.5)));
      row("floor_propagation_p99_us", static_cast<int64_t>(f.delay_quantile_us(0.99)));
    }
    return r;
  }

  AdminReply show_cache() {
    AdminReply r = table({"stat", "value"});
    ResultCache* rc = result_cache();
    r.rows.push_back({"enabled", rc != nullptr ? "1" : "0"});
    if (rc == nullptr) {
      return r;
    }
    const ResultCacheStats& c = rc->stats();
    auto row = [&](const char* name, const std::atomic<uint64_t>& v) {
      r.rows.push_back({name, absl::StrCat(v.load())});
    };
    row("lookups", c.lookups);
    row("hits", c.hits);
    row("local_hits", c.local_hits);
    row("misses", c.misses);
    row("stale", c.stale);
    row("rejected", c.rejected);
    row("unavailable", c.unavailable);
    row("stores", c.stores);
    row("store_failures", c.store_failures);
    row("not_stored", c.not_stored);
    row("uncacheable", c.uncacheable);
    row("flight_waits", c.flight_waits);
    r.rows.push_back({"redis_redirects", absl::StrCat(rc->redirects())});
    const uint64_t hits = c.hits.load();
    r.rows.push_back({"hit_avg_us", absl::StrCat(hits ? c.hit_us_sum.load() / hits : 0)});
    row("hits_within_1ms", c.hit_le_1ms);
    row("hits_within_5ms", c.hit_le_5ms);
    return r;
  }

  asio::awaitable<AdminReply> reload() {
    ProcessControl& pc = process_control();
    if (!pc.reload) {
      co_return error("55000", "reload is not available");
    }
    auto why = std::make_shared<std::string>("the reload did not finish");
    // Named: GCC 12 may end a temporary in a co_await expression too early.
    const std::function<void()> task = [why] { *why = process_control().reload(); };
    co_await run_on(pc.executor, task);
    if (!why->empty()) {
      co_return error("F0000", *why);
    }
    co_return tag("RELOAD");
  }

  asio::awaitable<AdminReply> pause(const std::string& db) {
    pause_gate().pause(db);
    PGLANE_LOG_INFO("PAUSE %s from the console (user %s)", db.empty() ? "(all)" : db, me_.user);
    // Returns once no transaction of those databases is under way, as PgBouncer's PAUSE does
    // (at most proxy.shutdown_timeout_ms; the pause stays either way).
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(process_control().shutdown_timeout_ms.load());
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
      auto active = std::make_shared<std::atomic<int>>(0);
      // Named: GCC 12 may end a temporary in a co_await expression too early.
      const std::function<void(int)> task = [active, db](int worker) {
        for (const SessionEntry* e : worker_sessions(worker).all()) {
          if ((e->state == ClientState::kActive || e->past_gate) && !e->admin &&
              (db.empty() || e->database == db)) {
            active->fetch_add(1);
          }
        }
      };
      co_await on_every_worker(task);
      if (active->load() == 0) {
        co_return tag("PAUSE");
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        co_return error("57014", absl::StrCat("paused, but ", active->load(),
                                              " transactions are still under way"));
      }
      asio::steady_timer t(ex, std::chrono::milliseconds(20));
      co_await t.async_wait(kUse);
    }
  }

  AdminReply resume(const std::string& db) {
    if (!pause_gate().resume(db)) {
      return error("55000", db.empty() ? "nothing is paused"
                                       : absl::StrCat("database \"", db, "\" is not paused"));
    }
    PGLANE_LOG_INFO("RESUME %s from the console (user %s)", db.empty() ? "(all)" : db, me_.user);
    return tag("RESUME");
  }

  asio::awaitable<AdminReply> kill(const std::string& which) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(which, &id)) {
      co_return error("22023", "KILL takes a client id from SHOW CLIENTS");
    }
    auto found = std::make_shared<std::atomic<bool>>(false);
    // Named: GCC 12 may end a temporary in a co_await expression too early.
    const std::function<void(int)> task = [found, id](int worker) {
      for (SessionEntry* e : worker_sessions(worker).all()) {
        if (e->id == id) {
          found->store(true);
          e->request_end(true);
        }
      }
    };
    co_await on_every_worker(task);
    if (!found->load()) {
      co_return error("42704", absl::StrCat("no client with id ", id));
    }
    PGLANE_LOG_INFO("KILL %d from the console (user %s)", id, me_.user);
    co_return tag("KILL");
  }

  Client& client_;
  SessionEntry& me_;
  const Snapshot& snap_;
  const conf::Config& cfg_;
  const bool may_act_;
};

void encode_reply(std::string& out, const AdminReply& r) {
  if (!r.sqlstate.empty()) {
    p::ErrorFields f;
    f.sqlstate = r.sqlstate;
    f.message = r.message;
    p::encode_error(out, f);
    return;
  }
  if (!r.columns.empty()) {
    p::encode_row_description(out, r.columns);
    for (const auto& row : r.rows) {
      p::encode_data_row(out, row);
    }
    p::encode_command_complete(out, absl::StrCat("SHOW ", r.rows.size()));
    return;
  }
  p::encode_command_complete(out, r.tag);
}

}  // namespace

asio::awaitable<End> serve_admin(Client& client, SessionEntry& me, const Snapshot& snap,
                                 bool may_act) {
  std::string out;
  p::encode_auth_ok(out);
  for (const auto& [k, v] : std::initializer_list<std::pair<const char*, const char*>>{
           {"server_version", "15.0 (pglane " PGLANE_VERSION ")"},
           {"server_encoding", "UTF8"},
           {"client_encoding", "UTF8"},
           {"DateStyle", "ISO, MDY"},
           {"integer_datetimes", "on"},
           {"standard_conforming_strings", "on"},
           {"application_name", "pglane"}}) {
    p::encode_parameter_status(out, k, v);
  }
  p::encode_backend_key_data(out, p::CancelKey{0, 0});
  p::encode_ready_for_query(out, 'I');
  if (co_await client.write(out)) {
    co_return End::kClientGone;
  }
  Console console(client, me, snap, may_act);
  bool error_sent = false;  // extended protocol: one error until the next Sync
  const uint64_t max = std::min<uint64_t>(snap.config->proxy.max_message_size, 1 << 20);
  for (;;) {
    me.set_state(ClientState::kIdle);
    if (me.should_end_now()) {
      co_return End::kShutdown;
    }
    error_code ec;
    auto d = co_await read_frame(client.stream, client.in, max, ec);
    if (me.should_end_now()) {
      co_return End::kShutdown;
    }
    if (ec) {
      co_return End::kClientGone;
    }
    if (d.status != p::DecodeStatus::kMessage) {
      client.fail(p::sqlstate::kProtocolViolation, "invalid message from the console client");
      co_return End::kClientViolation;
    }
    const char type = d.frame.type;
    std::string body(d.frame.body);
    client.in.consume(d.frame.size);
    out.clear();
    if (type == 'X') {
      co_return End::kClientTerminated;
    }
    me.set_state(ClientState::kActive);
    if (type == 'Q') {
      std::string_view sql(body);
      if (!sql.empty() && sql.back() == '\0') {
        sql.remove_suffix(1);
      }
      bool any = false;
      for (absl::string_view stmt :
           absl::StrSplit(absl::string_view(sql.data(), sql.size()), ';', absl::SkipWhitespace())) {
        any = true;
        const std::vector<std::string> words =
            admin_words(std::string_view(stmt.data(), stmt.size()));
        AdminReply r = co_await console.run(words);
        encode_reply(out, r);
        if (!r.sqlstate.empty()) {
          break;
        }
      }
      if (!any) {
        out.push_back('I');  // EmptyQueryResponse
        out.append("\0\0\0\4", 4);
      }
      p::encode_ready_for_query(out, 'I');
    } else if (type == 'S') {
      p::encode_ready_for_query(out, 'I');
      error_sent = false;
    } else if (type == 'P' || type == 'B' || type == 'E' || type == 'D' || type == 'C' ||
               type == 'H') {
      // Extended protocol: one error per Sync, as a server does after an error.
      if (!error_sent) {
        p::ErrorFields f;
        f.sqlstate = p::sqlstate::kFeatureNotSupported;
        f.message = "the admin console speaks the simple query protocol only";
        p::encode_error(out, f);
        error_sent = true;
      }
      if (!out.empty()) {
        const error_code ec = co_await client.write(out);  // (no co_await inside &&: GCC 12)
        if (ec) {
          co_return End::kClientGone;
        }
      }
      continue;
    } else {
      client.fail(p::sqlstate::kProtocolViolation,
                  absl::StrCat("unexpected message type '", std::string(1, type),
                               "' on the admin console"));
      co_return End::kClientViolation;
    }
    if (co_await client.write(out)) {
      co_return End::kClientGone;
    }
  }
}

}  // namespace pglane::proxy
