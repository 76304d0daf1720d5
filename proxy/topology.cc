#include "proxy/topology.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proxy/log.h"

namespace pglane::proxy {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Topology* g_topology = nullptr;

const char* sslmode(conf::ServerTlsMode m) {
  switch (m) {
    case conf::ServerTlsMode::kDisable:
      return "disable";
    case conf::ServerTlsMode::kPrefer:
      return "prefer";
    case conf::ServerTlsMode::kRequire:
      return "require";
    case conf::ServerTlsMode::kVerifyCa:
      return "verify-ca";
    case conf::ServerTlsMode::kVerifyFull:
      return "verify-full";
  }
  return "prefer";
}

// Waits until the socket is ready for `events` or the deadline passes.
bool wait_socket(int fd, short events, SteadyTime deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) {
      return true;
    }
    if (r < 0 && errno != EINTR) {
      return false;
    }
  }
}

// One libpq connection used under deadlines, never blocking past them.
class Probe {
 public:
  ~Probe() { close(); }
  void close() {
    if (conn_) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
  }
  bool connected() const { return conn_ != nullptr; }

  bool connect(const std::vector<std::pair<std::string, std::string>>& params, SteadyTime deadline,
               std::string& error) {
    close();
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : params) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
    if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) {
      error = conn_ ? PQerrorMessage(conn_) : "out of memory";
      close();
      return false;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
      if (st == PGRES_POLLING_OK) {
        break;
      }
      if (st == PGRES_POLLING_FAILED) {
        error = PQerrorMessage(conn_);
        close();
        return false;
      }
      short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      if (!wait_socket(PQsocket(conn_), events, deadline)) {
        error = "timed out connecting";
        close();
        return false;
      }
      st = PQconnectPoll(conn_);
    }
    PQsetnonblocking(conn_, 1);
    return true;
  }

  // Runs `sql` and returns its last result (caller PQclears it), or null on failure.
  PGresult* query(const char* sql, SteadyTime deadline, std::string& error) {
    if (!PQsendQuery(conn_, sql)) {
      error = PQerrorMessage(conn_);
      return nullptr;
    }
    while (PQflush(conn_) == 1) {
      if (!wait_socket(PQsocket(conn_), POLLOUT, deadline)) {
        error = "timed out sending";
        return nullptr;
      }
    }
    PGresult* last = nullptr;
    for (;;) {
      while (PQisBusy(conn_)) {
        if (!wait_socket(PQsocket(conn_), POLLIN, deadline)) {
          error = "timed out waiting for the answer";
          PQclear(last);
          return nullptr;
        }
        if (!PQconsumeInput(conn_)) {
          error = PQerrorMessage(conn_);
          PQclear(last);
          return nullptr;
        }
      }
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) {
        break;
      }
      PQclear(last);
      last = r;
    }
    if (last == nullptr ||
        (PQresultStatus(last) != PGRES_TUPLES_OK && PQresultStatus(last) != PGRES_COMMAND_OK)) {
      error = last ? PQresultErrorMessage(last) : "no result";
      PQclear(last);
      return nullptr;
    }
    return last;
  }

 private:
  PGconn* conn_ = nullptr;
};

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

// The probe: role, WAL position as a number, replay-timestamp lag (a fallback when the writer
// cannot be sampled).
constexpr const char* kProbeSql =
    "SELECT pg_is_in_recovery(), "
    "(CASE WHEN pg_is_in_recovery() THEN COALESCE(pg_last_wal_replay_lsn(), '0/0') "
    "ELSE pg_current_wal_insert_lsn() END - '0/0'::pg_lsn)::bigint, "
    "COALESCE(CASE WHEN pg_is_in_recovery() AND pg_last_wal_receive_lsn() IS DISTINCT FROM "
    "pg_last_wal_replay_lsn() THEN (extract(epoch FROM now() - "
    "pg_last_xact_replay_timestamp()) * 1000)::bigint END, 0)";

// The insert position, not the write position: with synchronous_commit = off a commit is
// acknowledged before its WAL is written, and the insert position is already past it.
constexpr const char* kWriterLsnSql =
    "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint";

constexpr const char* kCatalogSql =
    "SELECT n.nspname, p.proname, bool_and(p.provolatile <> 'v') "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "GROUP BY 1, 2";

constexpr size_t kMaxWriterSamples = 256;
constexpr auto kMinSampleGap = milliseconds(5);

}  // namespace

Topology* topology() {
  return g_topology;
}
void set_topology(Topology* t) {
  g_topology = t;
}

Topology::Topology(const conf::Config& cfg) : cfg_(cfg) {
  const conf::Region& home = cfg_.home_region();
  writer_ = std::make_unique<EndpointState>();
  writer_->endpoint = home.writer;
  writer_->name = home.writer.to_string();
  writer_->region = home.name;
  writer_->configured_writer = true;
  writer_->up = true;  // writes go to the writer regardless; it is probed for LSNs and lag
  // Readers: the home region's first, then the others' in config order (ranked by region).
  int rank = 1;
  for (const conf::Region& region : cfg_.regions) {
    const bool own = &region == &home;
    for (const conf::Endpoint& ep : region.readers) {
      auto st = std::make_unique<EndpointState>();
      st->endpoint = ep;
      st->name = ep.to_string();
      st->region = region.name;
      st->region_rank = own ? 0 : rank;
      replicas_.push_back(std::move(st));
    }
    if (!own) {
      ++rank;
    }
  }
  if (cfg_.analytics.enabled) {
    analytics_ = std::make_unique<EndpointState>();
    analytics_->endpoint = cfg_.analytics.endpoint;
    analytics_->name = cfg_.analytics.endpoint.to_string();
    analytics_->analytics = true;
    analytics_->up = true;
  }
  for (const auto& f : cfg_.routing.read_only_functions) {
    allow_.insert(f);
  }
}

Topology::~Topology() {
  stop();
}

void Topology::start() {
  threads_.emplace_back([this] { probe_loop(*writer_); });
  for (auto& r : replicas_) {
    threads_.emplace_back([this, ep = r.get()] { probe_loop(*ep); });
  }
  threads_.emplace_back([this] { catalog_loop(); });
}

void Topology::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
}

void Topology::mark(EndpointState& ep, bool ok) {
  const auto& h = cfg_.health;
  if (ep.reported_down.exchange(false)) {
    ep.oks_in_row = 0;
  }
  if (ok) {
    ep.fails_in_row = 0;
    if (++ep.oks_in_row >= h.rise && !ep.up.load()) {
      ep.up = true;
      PGLANE_LOG_INFO("endpoint %s (%s) is up", ep.name, ep.region);
    }
  } else {
    ep.oks_in_row = 0;
    ep.probes_failed.fetch_add(1, std::memory_order_relaxed);
    if (++ep.fails_in_row >= h.fall && ep.up.load() && !ep.configured_writer) {
      ep.up = false;
      PGLANE_LOG_WARN("endpoint %s (%s) is down after %d failed checks", ep.name, ep.region,
                      ep.fails_in_row);
    }
  }
}

void Topology::report_failure(EndpointState& ep) {
  if (ep.configured_writer || ep.analytics) {
    return;  // failover of the writer is not decided by one session
  }
  ep.reported_down = true;  // the checker restarts its count of good checks
  ep.reports.fetch_add(1);
  if (ep.up.exchange(false)) {
    PGLANE_LOG_WARN("endpoint %s (%s) is down: a session lost its connection to it", ep.name,
                    ep.region);
  }
}

void Topology::record_writer_sample(SteadyTime at, uint64_t lsn) {
  std::lock_guard lock(mu_);
  last_sample_at_ = at;
  if (writer_samples_.empty() || writer_samples_.back().lsn != lsn) {
    writer_samples_.push_back(Sample{at, lsn});  // a new position, first seen now
    while (writer_samples_.size() > kMaxWriterSamples) {
      writer_samples_.pop_front();
      samples_dropped_ = true;
    }
  }
}

int64_t Topology::lag_behind_writer(uint64_t replay_lsn, SteadyTime now, int64_t ts_lag) {
  std::lock_guard lock(mu_);
  for (const auto& s : writer_samples_) {
    if (s.lsn > replay_lsn) {
      int64_t lag = std::chrono::duration_cast<milliseconds>(now - s.at).count();
      if (&s == &writer_samples_.front() && samples_dropped_) {
        // Behind everything we remember: the history only gives a lower bound.
        lag = std::max(lag, ts_lag);
      }
      return lag;
    }
  }
  return 0;
}

void Topology::replicas(std::vector<routing::Candidate>& out) const {
  for (const auto& r : replicas_) {
    routing::Candidate c;
    c.healthy =
        r->up.load(std::memory_order_relaxed) && r->in_recovery.load(std::memory_order_relaxed);
    c.region = r->region_rank;
    c.lag_ms = r->lag_ms.load(std::memory_order_relaxed);
    c.replay_lsn = r->lsn.load(std::memory_order_relaxed);
    c.rtt_us = r->rtt_us.load(std::memory_order_relaxed);
    c.outstanding = r->outstanding.load(std::memory_order_relaxed);
    out.push_back(c);
  }
}

std::optional<uint64_t> Topology::writer_lsn_since(SteadyTime t) {
  {
    std::lock_guard lock(mu_);
    if (!writer_samples_.empty() && last_sample_at_ >= t) {
      // Some sample was taken at or after t; the first such bounds every commit acknowledged
      // before t. Positions are stored when first seen, so it is either the first position
      // first seen at or after t, or the one the writer was still at when sampled after t.
      for (const auto& s : writer_samples_) {
        if (s.at >= t) {
          return s.lsn;
        }
      }
      return writer_samples_.back().lsn;
    }
    sample_wanted_ = true;
  }
  wake_.notify_all();
  return std::nullopt;
}

std::shared_ptr<const routing::FunctionCatalog> Topology::catalog(const std::string& database) {
  {
    std::lock_guard lock(mu_);
    auto it = catalogs_.find(database);
    if (it != catalogs_.end()) {
      return it->second;
    }
    if (!catalog_wanted_.insert(database).second) {
      return nullptr;
    }
  }
  wake_.notify_all();
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> Topology::conn_params(
    const conf::Endpoint& endpoint, const std::string& database, const char* app) const {
  // The health credential, defaulting to [backend]'s; TLS as for client traffic.
  const auto& h = cfg_.health;
  const auto& cred = h.credential.user.empty() ? cfg_.backend.service : h.credential;
  std::vector<std::pair<std::string, std::string>> params = {
      {"host", endpoint.host},   {"port", std::to_string(endpoint.port)},
      {"user", cred.user},       {"password", cred.password},
      {"dbname", database},      {"sslmode", sslmode(cfg_.backend.tls.mode)},
      {"application_name", app},
  };
  if (!cfg_.backend.tls.ca_file.empty()) {
    params.emplace_back("sslrootcert", cfg_.backend.tls.ca_file);
  }
  if (!h.cert_file.empty()) {
    params.emplace_back("sslcert", h.cert_file);
    params.emplace_back("sslkey", h.key_file);
  }
  return params;
}

void Topology::reload_catalogs() {
  {
    std::lock_guard lock(mu_);
    catalogs_stale_ = true;
  }
  wake_.notify_all();
}

void Topology::probe_loop(EndpointState& ep) {
  const auto& h = cfg_.health;
  const auto params = conn_params(ep.endpoint, h.database, "pglane-health");
  Probe probe;
  std::string last_error;
  auto next = Clock::now();
  for (;;) {
    bool sample_only = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, next,
                       [&] { return stopping_ || (ep.configured_writer && sample_wanted_); });
      if (stopping_) {
        return;
      }
      if (Clock::now() < next) {
        sample_only = true;  // woken for a read-your-writes sample
        sample_wanted_ = false;
      }
    }
    const auto deadline = Clock::now() + milliseconds(h.timeout_ms);
    std::string error;
    if (ep.reported_down.load()) {
      probe.close();  // a session could not connect: prove it with a fresh connection
    }
    const uint64_t reports_before = ep.reports.load();
    bool ok = probe.connected() || probe.connect(params, deadline, error);
    if (ok && sample_only) {
      const auto sent = Clock::now();
      PGresult* r = probe.query(kWriterLsnSql, deadline, error);
      if (r != nullptr && PQntuples(r) == 1) {
        record_writer_sample(sent, std::strtoull(PQgetvalue(r, 0, 0), nullptr, 10));
      } else {
        probe.close();
      }
      PQclear(r);
      // Requests arriving during the query are served by the next one, kMinSampleGap later.
      std::this_thread::sleep_for(kMinSampleGap);
      continue;
    }
    if (ok) {
      const auto sent = Clock::now();
      PGresult* r = probe.query(kProbeSql, deadline, error);
      const auto now = Clock::now();
      if (r != nullptr && PQntuples(r) == 1) {
        const bool recovery = PQgetvalue(r, 0, 0)[0] == 't';
        const uint64_t lsn = std::strtoull(PQgetvalue(r, 0, 1), nullptr, 10);
        const int64_t ts_lag = std::strtoll(PQgetvalue(r, 0, 2), nullptr, 10);
        ep.rtt_us = std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count();
        ep.lsn = lsn;
        const bool disagrees = recovery == ep.configured_writer;
        if (disagrees && !ep.role_warned) {
          PGLANE_LOG_WARN("endpoint %s is configured as %s but reports %s; the server wins",
                          ep.name, ep.configured_writer ? "the writer" : "a reader",
                          recovery ? "being in recovery" : "being a primary");
        }
        ep.role_warned = disagrees;
        ep.in_recovery = recovery;
        if (ep.configured_writer) {
          record_writer_sample(sent, lsn);
          ep.lag_ms = 0;
        } else {
          bool have_writer;
          {
            std::lock_guard lock(mu_);
            have_writer =
                !writer_samples_.empty() && now - last_sample_at_ < 3 * milliseconds(h.interval_ms);
          }
          ep.lag_ms = have_writer ? lag_behind_writer(lsn, now, ts_lag) : ts_lag;
        }
        last_error.clear();
      } else {
        ok = false;
        probe.close();
      }
      PQclear(r);
    }
    if (!ok && trim_newline(error) != last_error) {
      last_error = trim_newline(error);
      PGLANE_LOG_WARN("health check of %s failed: %s", ep.name, last_error);
    }
    // A replica is usable only while it reports recovery; a reader that reports being a primary
    // (promoted, or misconfigured) serves no reads.
    if (ep.reports.load() != reports_before) {
      // A session reported a failure while this probe ran: its success proves nothing.
      probe.close();
      next = Clock::now() + milliseconds(h.interval_ms);
      continue;
    }
    mark(ep, ok && (ep.configured_writer || ep.in_recovery.load()));
    next = Clock::now() + milliseconds(h.interval_ms);
  }
}

void Topology::catalog_loop() {
  const auto& h = cfg_.health;
  std::unordered_map<std::string, SteadyTime> loaded_at;
  for (;;) {
    std::vector<std::string> todo;
    {
      std::unique_lock lock(mu_);
      auto due = [&] {
        const auto now = Clock::now();
        for (const auto& db : catalog_wanted_) {
          auto it = loaded_at.find(db);
          if (it == loaded_at.end() ||
              now - it->second >= milliseconds(cfg_.routing.catalog_refresh_ms)) {
            return true;
          }
        }
        return false;
      };
      wake_.wait_for(lock, milliseconds(std::min(cfg_.routing.catalog_refresh_ms, 1000)),
                     [&] { return stopping_ || catalogs_stale_ || due(); });
      if (stopping_) {
        return;
      }
      if (catalogs_stale_) {
        catalogs_stale_ = false;
        loaded_at.clear();  // everything is due now
      }
      const auto now = Clock::now();
      for (const auto& db : catalog_wanted_) {
        auto it = loaded_at.find(db);
        if (it == loaded_at.end() ||
            now - it->second >= milliseconds(cfg_.routing.catalog_refresh_ms)) {
          todo.push_back(db);
        }
      }
    }
    for (const auto& db : todo) {
      const auto params = conn_params(writer_->endpoint, db, "pglane-catalog");
      const auto deadline = Clock::now() + milliseconds(std::max(h.timeout_ms, 5000));
      Probe probe;
      std::string error;
      PGresult* r = nullptr;
      if (probe.connect(params, deadline, error)) {
        r = probe.query(kCatalogSql, deadline, error);
      }
      loaded_at[db] = Clock::now();
      if (r == nullptr) {
        PGLANE_LOG_WARN(
            "cannot read function volatility of database %s: %s (calls of "
            "functions go to the writer until it can be read)",
            db, trim_newline(error));
        continue;
      }
      auto catalog = std::make_shared<routing::FunctionCatalog>();
      for (int i = 0; i < PQntuples(r); ++i) {
        catalog->add(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0] == 't');
      }
      PQclear(r);
      PGLANE_LOG_DEBUG("loaded volatility of %zu functions of database %s", catalog->size(), db);
      std::lock_guard lock(mu_);
      catalogs_[db] = std::move(catalog);
    }
  }
}

std::string Topology::describe() const {
  const RouteStats& r = stats_;
  const int64_t analysed = r.analysis_fast + r.analysis_cache_hits + r.analysis_parsed;
  std::string out = absl::StrFormat(
      "routing reads_local=%d reads_remote=%d reads_writer=%d reads_ryw=%d writes=%d "
      "analytics=%d retries=%d reroutes=%d analysed=%d fast=%d cache_hits=%d parsed=%d "
      "rejected=%d\n",
      r.reads_local.load(), r.reads_remote.load(), r.reads_writer.load(), r.reads_ryw.load(),
      r.writes.load(), r.analytics.load(), r.retries.load(), r.reroutes.load(), analysed,
      r.analysis_fast.load(), r.analysis_cache_hits.load(), r.analysis_parsed.load(),
      r.analysis_rejected.load());
  auto line = [&](const EndpointState& e, const char* role) {
    absl::StrAppend(&out,
                    absl::StrFormat("%s %s region=%s up=%d recovery=%d lsn=%u lag_ms=%d rtt_us=%d "
                                    "outstanding=%d reads=%d\n",
                                    role, e.name, e.region, e.up.load() ? 1 : 0,
                                    e.in_recovery.load() ? 1 : 0, e.lsn.load(), e.lag_ms.load(),
                                    e.rtt_us.load(), e.outstanding.load(), e.reads.load()));
  };
  line(*writer_, "writer");
  for (const auto& r : replicas_) {
    line(*r, "replica");
  }
  return out;
}

}  // namespace pglane::proxy
