#include "proxy/topology.h"

#include <libpq-fe.h>
#include <algorithm>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proxy/lease.h"
#include "proxy/live.h"
#include "proxy/log.h"
#include "proxy/net.h"
#include "proxy/pool.h"
#include "proxy/probe.h"

namespace pglane::proxy {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Topology* g_topology = nullptr;

// Enough history that floors (routing/floors.h) from a few seconds ago still resolve to the
// position they were written at, not to the oldest one remembered (16 bytes each; looked up by
// binary search: times and positions both only grow until the writer changes, which clears it).
constexpr size_t kMaxWriterSamples = 4096;
// A probe connection to a name (not an address) is reopened this often, so a moved DNS record
// is followed (Aurora's instance endpoints have a 5 s TTL).
constexpr auto kRenameAfter = std::chrono::seconds(5);

constexpr auto kMinSampleGap = milliseconds(5);

}  // namespace

Topology* topology() {
  return g_topology;
}
void set_topology(Topology* t) {
  g_topology = t;
}

Topology::Topology(const conf::Config& cfg) : cfg_(cfg), election_(0, cfg.health.fall) {
  const conf::Region& home = cfg_.home_region();
  // Every instance once, the home region's first, then the others' in config order (ranked by
  // region). A static region's configured writer is only where the first probe looks: the
  // election decides from what the servers say. An aurora region starts with the instances its
  // map lists; the rest come from aurora_replica_status().
  region_rank_.assign(cfg_.regions.size(), 0);
  std::vector<size_t> order;
  for (size_t i = 0; i < cfg_.regions.size(); ++i) {
    if (&cfg_.regions[i] == &home) {
      order.insert(order.begin(), i);
    } else {
      order.push_back(i);
    }
  }
  for (size_t rank = 0; rank < order.size(); ++rank) {
    region_rank_[order[rank]] = static_cast<int>(rank);
  }
  for (size_t i : order) {
    const conf::Region& region = cfg_.regions[i];
    if (region.source == conf::TopologySource::kAurora) {
      aurora_ = true;
      for (const auto& [id, ep] : region.instances) {
        add_instance_locked(ep, i, id);
      }
      continue;
    }
    add_instance_locked(region.writer, i, "");
    for (const conf::Endpoint& ep : region.readers) {
      add_instance_locked(ep, i, "");
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
  // A lone static instance with no role to probe it as (SCRAM pass-through and no [health]
  // user: the configuration loader requires one only when there is more than one instance) is
  // taken as the writer on trust: there is nothing to fail over to.
  const auto& h = cfg_.health;
  probing_ = aurora_ || instance_count() > 1 || !h.credential.user.empty() ||
             !cfg_.backend.service.user.empty();
  if (!probing_) {
    instances_[0]->up = true;
    writer_ = instances_[0].get();
    searching_ = false;
  }
}

EndpointState* Topology::add_instance_locked(const conf::Endpoint& ep, size_t region,
                                             const std::string& server_id) {
  const std::string name = ep.to_string();
  if (EndpointState* known = by_name_locked(name)) {
    return known;  // listed twice (two regions sharing a writer), or known already
  }
  const size_t n = instance_count();
  if (n == kMaxInstances) {
    return nullptr;
  }
  const conf::Region& r = cfg_.regions[region];
  auto st = std::make_unique<EndpointState>();
  st->endpoint = ep;
  st->name = name;
  st->region = r.name;
  st->region_rank = region_rank_[region];
  st->index = n;
  st->config_region = region;
  st->server_id = server_id;
  st->kind = r.source == conf::TopologySource::kStatic ? ProbeKind::kStatic
             : r.global_database                       ? ProbeKind::kAuroraGlobal
                                                       : ProbeKind::kAurora;
  EndpointState* out = st.get();
  instances_[n] = std::move(st);
  election_.add_instance();
  count_.store(n + 1, std::memory_order_release);
  if (started_) {
    threads_.emplace_back([this, out] { probe_loop(*out); });
  }
  return out;
}

Topology::~Topology() {
  stop();
}

void Topology::start() {
  std::lock_guard lock(mu_);
  started_ = true;
  for (size_t i = 0, n = instance_count(); i < n && probing_; ++i) {
    threads_.emplace_back([this, ep = instances_[i].get()] { probe_loop(*ep); });
  }
  for (size_t i = 0; i < cfg_.regions.size(); ++i) {
    if (cfg_.regions[i].source == conf::TopologySource::kAurora &&
        !cfg_.regions[i].writer.host.empty()) {
      threads_.emplace_back([this, i] { discover_loop(i); });
    }
  }
  threads_.emplace_back([this] { catalog_loop(); });
}

void Topology::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;  // no instance is added from here on
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (auto& t : threads) {
    if (t.joinable()) {
      t.join();
    }
  }
}

void Topology::mark(EndpointState& ep, bool ok) {
  if (ep.reported_down.exchange(false)) {
    ep.oks_in_row = 0;
  }
  if (ok) {
    ep.fails_in_row = 0;
    if (++ep.oks_in_row >= live().rise.load() && !ep.up.load()) {
      ep.up = true;
      PGLANE_LOG_INFO("endpoint %s (%s) is up", ep.name, ep.region);
    }
  } else {
    ep.oks_in_row = 0;
    ep.probes_failed.fetch_add(1, std::memory_order_relaxed);
    if (++ep.fails_in_row >= live().fall.load() && ep.up.load()) {
      ep.up = false;
      PGLANE_LOG_WARN("endpoint %s (%s) is down after %d failed checks", ep.name, ep.region,
                      ep.fails_in_row);
    }
  }
}

void Topology::report_failure(EndpointState& ep) {
  if (ep.analytics) {
    return;
  }
  ep.reported_down = true;  // the checker restarts its count of good checks
  ep.reports.fetch_add(1);  // and voids a probe that spans this report
  if (&ep == writer()) {
    suspect_writer(ep, "a session lost its connection to it");
    return;
  }
  if (ep.up.exchange(false)) {
    PGLANE_LOG_WARN("endpoint %s (%s) is down: a session lost its connection to it", ep.name,
                    ep.region);
  }
}

void Topology::report_read_only(EndpointState& ep) {
  if (&ep == writer()) {
    suspect_writer(ep, "it answered 25006 (read-only transaction)");
  }
}

void Topology::suspect_writer(EndpointState& ep, const char* why) {
  {
    std::lock_guard lock(mu_);
    if (election_.searching() || &ep != writer()) {
      return;  // already searching
    }
    election_.suspect();
    searching_ = true;
    ++search_epoch_;
  }
  PGLANE_LOG_WARN("writer %s (%s) is suspect: %s; probing every instance every %d ms", ep.name,
                  ep.region, why, live().failover_interval_ms.load());
  wake_.notify_all();
}

EndpointState* Topology::elect_locked(EndpointState& ep, const routing::InstanceReport& r) {
  using Event = routing::WriterElection::Event;
  EndpointState* before = writer();
  const bool was_searching = election_.searching();
  const Event ev = election_.report(ep.index, r);
  const int w = election_.writer();
  EndpointState* now = w >= 0 ? instances_[static_cast<size_t>(w)].get() : nullptr;
  for (size_t i = 0, n = instance_count(); i < n; ++i) {
    instances_[i]->fenced.store(election_.fenced(i), std::memory_order_relaxed);
  }
  switch (ev) {
    case Event::kFenced:
      PGLANE_LOG_ERROR(
          "endpoint %s (%s) claims to be a writer (timeline %u) but %s; it gets no writes until "
          "it rejoins as a replica or an operator acts",
          ep.name, ep.region, r.timeline,
          now != nullptr ? absl::StrFormat("the writer is %s (timeline %u)", now->name,
                                           election_.writer_timeline())
                         : absl::StrFormat("a newer writer was confirmed (timeline %u)",
                                           election_.writer_timeline()));
      break;
    case Event::kAmbiguous:
      PGLANE_LOG_ERROR(
          "several instances claim to be the writer on timeline %u (%s among them): no writes "
          "until exactly one does",
          r.timeline, ep.name);
      break;
    default:
      break;
  }
  EndpointState* retire = nullptr;
  if (now != before) {
    writer_.store(now, std::memory_order_release);
    writer_changes_.fetch_add(1, std::memory_order_acq_rel);
    // Read-your-writes positions of the old writer say nothing about the new one's.
    writer_samples_.clear();
    samples_dropped_ = false;
    if (before != nullptr) {
      retire = before;
      PGLANE_LOG_WARN(
          "writer %s (%s) lost: %s", before->name, before->region,
          before->last_error.empty() ? "it reports being in recovery" : before->last_error);
    }
    if (now != nullptr) {
      now->up = true;
      if (now->server_id.empty()) {
        PGLANE_LOG_INFO("writer is %s (%s, timeline %u)", now->name, now->region,
                        election_.writer_timeline());
      } else {
        PGLANE_LOG_INFO("writer is %s (%s, aurora instance %s)", now->name, now->region,
                        now->server_id);
      }
    } else {
      PGLANE_LOG_WARN("no writer: writes wait up to %d ms (health.failover_timeout_ms) for one",
                      live().failover_timeout_ms.load());
    }
  }
  const bool searching = election_.searching();
  searching_ = searching;
  if (searching && !was_searching) {
    ++search_epoch_;
    wake_.notify_all();
  }
  return retire;
}

void Topology::retire(EndpointState& old_writer) {
  pools().retire(old_writer.endpoint);
  ServerLease::cut(old_writer.endpoint);
}

void Topology::record_writer_sample(SteadyTime at, uint64_t lsn) {
  std::lock_guard lock(mu_);
  // The history stays ordered by time and by position (writer_lsn_since and lag_behind_writer
  // search it): older news from a second prober around a writer change is dropped, and a
  // position going back (not the writer the history describes) starts it again.
  if (!writer_samples_.empty() && at < writer_samples_.back().last_at) {
    return;
  }
  if (!writer_samples_.empty() && lsn < writer_samples_.back().lsn) {
    writer_samples_.clear();
    samples_dropped_ = true;
  }
  last_sample_at_ = at;
  if (writer_samples_.empty() || writer_samples_.back().lsn != lsn) {
    writer_samples_.push_back(Sample{at, lsn, at});  // a new position, first seen now
    while (writer_samples_.size() > kMaxWriterSamples) {
      writer_samples_.pop_front();
      samples_dropped_ = true;
    }
  } else {
    writer_samples_.back().last_at = at;  // still there
  }
}

int64_t Topology::lag_behind_writer(uint64_t replay_lsn, SteadyTime now, int64_t ts_lag) {
  std::lock_guard lock(mu_);
  auto it = std::upper_bound(writer_samples_.begin(), writer_samples_.end(), replay_lsn,
                             [](uint64_t lsn, const Sample& s) { return lsn < s.lsn; });
  if (it == writer_samples_.end()) {
    return 0;
  }
  int64_t lag = std::chrono::duration_cast<milliseconds>(now - it->at).count();
  if (it == writer_samples_.begin() && samples_dropped_) {
    // Behind everything we remember: the history only gives a lower bound.
    lag = std::max(lag, ts_lag);
  }
  return lag;
}

void Topology::replicas(std::vector<routing::Candidate>& out) const {
  for (size_t i = 0, n = instance_count(); i < n; ++i) {
    const EndpointState* r = instances_[i].get();
    routing::Candidate c;
    // The writer, a fenced old writer and anything else out of recovery serve no reads.
    c.healthy =
        r->up.load(std::memory_order_relaxed) && r->in_recovery.load(std::memory_order_relaxed) &&
        !r->fenced.load(std::memory_order_relaxed) && !r->removed.load(std::memory_order_relaxed);
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
      // Some sample was taken at or after t. The first position some sample taken at or after t
      // still saw (the writer was there then, so every commit acknowledged before t is at or before
      // it).
      auto it = std::lower_bound(writer_samples_.begin(), writer_samples_.end(), t,
                                 [](const Sample& s, SteadyTime at) { return s.last_at < at; });
      return it == writer_samples_.end() ? writer_samples_.back().lsn : it->lsn;
    }
    sample_wanted_ = true;
  }
  wake_.notify_all();
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> Topology::conn_params(
    const conf::Endpoint& endpoint, const std::string& database, const char* app) const {
  // The health credential, defaulting to [backend]'s; TLS as for client traffic.
  const auto& h = cfg_.health;
  const auto& cred = h.credential.user.empty() ? cfg_.backend.service : h.credential;
  std::vector<std::pair<std::string, std::string>> params = {
      {"host", endpoint.host},   {"port", std::to_string(endpoint.port)},
      {"user", cred.user},       {"password", cred.password},
      {"dbname", database},      {"sslmode", libpq_sslmode(cfg_.backend.tls.mode)},
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

void Topology::probe_loop(EndpointState& ep) {
  const auto& h = cfg_.health;
  const auto params = conn_params(ep.endpoint, h.database, "pglane-health");
  Probe probe;
  auto next = Clock::now();
  uint64_t epoch_seen = 0;
  const bool named = !is_ip_literal(ep.endpoint.host);
  SteadyTime connected_at{};
  for (;;) {
    bool sample_only = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, next, [&] {
        return stopping_ || (writer() == &ep && sample_wanted_) || search_epoch_ != epoch_seen;
      });
      if (stopping_) {
        return;
      }
      if (search_epoch_ != epoch_seen) {
        epoch_seen = search_epoch_;  // a search started: probe now
      } else if (Clock::now() < next) {
        sample_only = true;  // woken for a read-your-writes sample
        sample_wanted_ = false;
      }
    }
    const auto deadline = Clock::now() + milliseconds(live().timeout_ms.load());
    std::string error;
    std::string sqlstate;
    if (ep.reported_down.load()) {
      probe.close();  // a session could not connect: prove it with a fresh connection
    }
    if (named && !sample_only && probe.connected() && Clock::now() - connected_at > kRenameAfter) {
      probe.close();  // a name: resolve it again, in case it moved
    }
    const uint64_t reports_before = ep.reports.load();
    const bool was_connected = probe.connected();
    bool ok = was_connected || probe.connect(params, deadline, error);
    if (ok && !was_connected) {
      connected_at = Clock::now();
    }
    if (ok && sample_only) {
      const auto sent = Clock::now();
      if (auto position = writer_position(probe, ep.kind, deadline, error)) {
        record_writer_sample(sent, *position);
      } else {
        probe.close();
      }
      // Requests arriving during the query are served by the next one, kMinSampleGap later.
      std::this_thread::sleep_for(kMinSampleGap);
      continue;
    }
    routing::InstanceReport report;
    std::optional<Observation> seen;
    SteadyTime sent{};
    SteadyTime now{};
    if (ok) {
      sent = Clock::now();
      seen = observe(probe, ep.kind, deadline, error, sqlstate);
      now = Clock::now();
      if (seen) {
        report.reachable = true;
        report.claims_writer = seen->claims_writer;
        report.timeline = seen->timeline;
        ep.rtt_us = std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count();
        ep.lsn = seen->lsn;
        ep.in_recovery = seen->recovery;
        ep.timeline = seen->timeline;
      } else {
        ok = false;
        probe.close();
      }
    }
    if (ok && ep.reports.load() != reports_before) {
      // A session reported a failure while this probe ran: its success proves nothing. (A
      // failure still counts: sessions reporting a dead writer must not keep it alive.)
      probe.close();
      next = Clock::now() + milliseconds(live().interval_ms.load());
      continue;
    }
    EndpointState* retired = nullptr;
    bool searching = false;
    bool is_writer = false;  // as the election stands after this report
    {
      std::lock_guard lock(mu_);
      const std::string reason = trim_newline(error);
      if (!ok && reason != ep.last_error) {
        // Credentials that cannot log in are a configuration error, not a flaky server.
        const bool auth = sqlstate.rfind("28", 0) == 0 ||
                          reason.find("password") != std::string::npos ||
                          reason.find("authentication") != std::string::npos;
        if (auth) {
          PGLANE_LOG_ERROR("health check of %s cannot log in as %s: %s", ep.name, params[2].second,
                           reason);
        } else {
          PGLANE_LOG_WARN("health check of %s failed: %s", ep.name, reason);
        }
      }
      ep.last_error = ok ? std::string() : reason;
      if (seen && seen->claims_writer && ep.removed.load() && writer() == nullptr &&
          ep.kind != ProbeKind::kStatic) {
        // No writer, and one the cluster had dropped says it is the writer: on Aurora only the
        // writer says so (storage fences the rest), so it is taken back.
        ep.removed = false;
        ep.unlisted = 0;
        PGLANE_LOG_WARN(
            "aurora instance %s (%s) claims the writer role while there is no writer: "
            "taken back into the cluster",
            ep.server_id, ep.name);
      }
      // An instance the writer no longer lists is never elected, whatever it claims.
      report.claims_writer = report.claims_writer && !ep.removed.load();
      const bool outsider = seen && seen->claims_writer && ep.removed.load();
      if (outsider && !ep.outsider_logged) {
        PGLANE_LOG_ERROR(
            "endpoint %s (%s) claims to be a writer but %s; it gets no writes and no reads until "
            "it is listed again",
            ep.name, ep.region,
            ep.kind == ProbeKind::kStatic ? "the configuration no longer lists it"
                                          : "the writer no longer lists it as part of the cluster");
      }
      ep.outsider_logged = outsider;
      retired = elect_locked(ep, report);
      is_writer = ok && writer() == &ep;
      if (is_writer) {
        ep.lag_ms = 0;
      }
      searching = election_.searching();
    }
    if (retired != nullptr) {
      retire(*retired);
    }
    if (seen && ep.kind != ProbeKind::kStatic) {
      merge_members(ep, *seen, is_writer);
    }
    if (is_writer) {
      record_writer_sample(sent, seen->lsn);
    } else if (ok && report.reachable && !report.claims_writer) {
      bool have_writer;
      {
        std::lock_guard lock(mu_);
        have_writer = !writer_samples_.empty() &&
                      now - last_sample_at_ < 3 * milliseconds(live().interval_ms.load());
      }
      ep.lag_ms = have_writer ? lag_behind_writer(seen->lsn, now, seen->server_lag_ms)
                              : seen->server_lag_ms;
    }
    mark(ep, ok);
    next = Clock::now() +
           milliseconds(searching ? live().failover_interval_ms.load() : live().interval_ms.load());
  }
}

void Topology::wait_ready(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (writer() != nullptr && (catalogs_ready_.load() || !splits())) {
      return;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  if (writer() == nullptr) {
    PGLANE_LOG_WARN("no writer confirmed yet: %s", why_no_writer());
  }
}

EndpointState* Topology::healthy_replica() const {
  EndpointState* best = nullptr;
  for (size_t i = 0, n = instance_count(); i < n; ++i) {
    EndpointState* e = instances_[i].get();
    if (e->up.load() && e->in_recovery.load() && !e->fenced.load() && !e->removed.load() &&
        (best == nullptr || e->region_rank < best->region_rank)) {
      best = e;
    }
  }
  return best;
}

std::string Topology::why_no_writer() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (size_t i = 0, n = instance_count(); i < n; ++i) {
    const EndpointState* e = instances_[i].get();
    absl::StrAppend(&out, out.empty() ? "" : "; ", e->name, " ",
                    e->removed.load()        ? "was removed from the cluster"
                    : !e->last_error.empty() ? e->last_error
                    : e->fenced.load()       ? "claims the writer role on an old timeline (fenced)"
                    : e->in_recovery.load()  ? "is a replica"
                                             : "has not answered yet");
  }
  return out.empty()
             ? std::string("no instance is known yet (the cluster endpoint has not answered)")
             : out;
}

}  // namespace pglane::proxy
