// Topology's read-only views: one copy of every endpoint's state, for the console, /metrics and
// the SIGUSR1 log lines.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proxy/topology.h"

namespace pglane::proxy {

namespace {

EndpointView view_of(const EndpointState& e, const char* role) {
  EndpointView v;
  v.name = e.name;
  v.region = e.region;
  v.role = role;
  v.up = e.up.load();
  v.in_recovery = e.in_recovery.load();
  v.timeline = e.timeline.load();
  v.lsn = e.lsn.load();
  v.lag_ms = e.lag_ms.load();
  v.rtt_us = e.rtt_us.load();
  v.outstanding = e.outstanding.load();
  v.reads = e.reads.load();
  v.probes_failed = e.probes_failed.load();
  v.last_error = e.last_error;
  return v;
}

}  // namespace

std::vector<EndpointView> Topology::view() const {
  std::vector<EndpointView> out;
  const EndpointState* w = writer();
  std::lock_guard lock(mu_);  // last_error
  for (size_t i = 0, n = instance_count(); i < n; ++i) {
    const EndpointState* e = instances_[i].get();
    const char* role = e == w                  ? "writer"
                       : e->removed.load()     ? "removed"
                       : e->fenced.load()      ? "fenced"
                       : e->in_recovery.load() ? "replica"
                       : e->last_error.empty() ? "unknown"
                                               : "down";
    out.push_back(view_of(*e, role));
  }
  if (analytics_) {
    out.push_back(view_of(*analytics_, "analytics"));
  }
  return out;
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
  for (const EndpointView& e : view()) {
    if (e.role == "analytics") {
      continue;  // as before: instances only
    }
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "%s %s region=%s up=%d recovery=%d timeline=%u lsn=%u "
            "lag_ms=%d rtt_us=%d outstanding=%d reads=%d%s\n",
            e.role, e.name, e.region, e.up ? 1 : 0, e.in_recovery ? 1 : 0, e.timeline, e.lsn,
            e.lag_ms, e.rtt_us, e.outstanding, e.reads,
            e.last_error.empty() ? std::string() : absl::StrCat(" error=\"", e.last_error, "\"")));
  }
  return out;
}

}  // namespace pglane::proxy
