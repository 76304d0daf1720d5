// Topology, aurora regions: instances come and go with aurora_replica_status() (docs/internals.md,
// "Aurora"). Instance ids become addresses through the region's map or host pattern.

#include <libpq-fe.h>

#include "absl/strings/str_cat.h"
#include "proxy/live.h"
#include "proxy/log.h"
#include "proxy/probe.h"
#include "proxy/topology.h"

namespace pglane::proxy {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::optional<conf::Endpoint> Topology::address_of(const conf::Region& region,
                                                   const std::string& id) const {
  if (auto it = region.instances.find(id); it != region.instances.end()) {
    return it->second;
  }
  const std::string& pattern = region.instance_host_pattern;
  const size_t q = pattern.find('?');
  if (q == std::string::npos || id.empty()) {
    return std::nullopt;
  }
  conf::Endpoint ep;
  ep.host = pattern.substr(0, q) + id + pattern.substr(q + 1);
  ep.port = region.writer.port;
  return ep;
}

void Topology::merge_members(const EndpointState& from, const Observation& seen, bool from_writer) {
  std::vector<std::string> joined;
  std::vector<std::string> left;
  std::vector<EndpointState*> retired;
  const auto now = Clock::now();
  // Gone: unlisted by the writer in two probes in a row spanning at least this long.
  const auto gone_after = milliseconds(std::max(2 * live().interval_ms.load(), 1000));
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    const size_t n = instance_count();
    auto known = [&](const std::string& id) -> EndpointState* {
      for (size_t i = 0; i < n; ++i) {
        if (instances_[i]->server_id == id) {
          return instances_[i].get();
        }
      }
      return nullptr;
    };
    for (const Member& m : seen.members) {
      // The member's region: a Global Database names it; otherwise the lister's.
      size_t region = from.config_region;
      if (!m.aws_region.empty()) {
        region = cfg_.regions.size();
        for (size_t r = 0; r < cfg_.regions.size(); ++r) {
          if (cfg_.regions[r].source == conf::TopologySource::kAurora &&
              cfg_.regions[r].aws_region == m.aws_region) {
            region = r;
          }
        }
        if (region == cfg_.regions.size()) {
          continue;  // a region this gateway is not configured for
        }
      }
      if (EndpointState* e = known(m.server_id)) {
        // Only the writer's list brings an instance back: a removed one lists itself.
        if (from_writer) {
          e->unlisted = 0;
          e->unlisted_since = {};
          if (e->removed.exchange(false)) {
            joined.push_back(absl::StrCat(e->server_id, " (", e->name, ") is listed again"));
          }
        }
        continue;
      }
      std::optional<conf::Endpoint> address = address_of(cfg_.regions[region], m.server_id);
      if (!address) {
        if (unaddressable_.insert(m.server_id).second) {
          PGLANE_LOG_WARN(
              "aurora instance %s has no address: add it to [regions.instances] of region %s, or "
              "set instance_host_pattern",
              m.server_id, cfg_.regions[region].name);
        }
        continue;
      }
      EndpointState* e = add_instance_locked(*address, region, m.server_id);
      if (e == nullptr) {
        if (unaddressable_.insert(m.server_id).second) {
          PGLANE_LOG_ERROR("aurora instance %s ignored: pglane follows at most %zu instances",
                           m.server_id, kMaxInstances);
        }
        continue;
      }
      if (e->server_id.empty() && e->kind != ProbeKind::kStatic) {
        e->server_id = m.server_id;
      }
      if (e->server_id != m.server_id) {
        // The address is another instance's already (a static one, or another id).
        if (unaddressable_.insert(m.server_id).second) {
          PGLANE_LOG_WARN("aurora instance %s ignored: its address %s is %s's already", m.server_id,
                          e->name, e->server_id.empty() ? "a static instance" : e->server_id);
        }
        continue;
      }
      joined.push_back(absl::StrCat(m.server_id, " (", e->name, ", ", e->region, ") joined"));
    }
    if (from_writer) {
      // The writer's list is the cluster: an instance it has not named for two probes in a row,
      // over at least `gone_after`, is gone. (With a Global Database the writer lists every
      // global region; otherwise only its own.)
      for (size_t i = 0; i < n; ++i) {
        EndpointState& e = *instances_[i];
        const bool in_scope =
            e.kind != ProbeKind::kStatic && &e != &from && !e.removed.load() &&
            ((from.kind == ProbeKind::kAuroraGlobal && e.kind == ProbeKind::kAuroraGlobal) ||
             e.config_region == from.config_region);
        if (!in_scope) {
          continue;
        }
        bool listed = false;
        for (const Member& m : seen.members) {
          listed |= m.server_id == e.server_id;
        }
        if (listed) {
          continue;
        }
        if (e.unlisted++ == 0) {
          e.unlisted_since = now;
        }
        if (e.unlisted < 2 || now - e.unlisted_since < gone_after) {
          continue;
        }
        e.removed = true;
        e.up = false;
        // Its last claim, if any, no longer counts in the election.
        if (EndpointState* r = elect_locked(e, routing::InstanceReport{true, false, 0})) {
          retired.push_back(r);
        }
        left.push_back(absl::StrCat(e.server_id.empty() ? e.name : e.server_id, " (", e.name,
                                    ") is no longer listed by the writer: not used until it is"));
      }
    }
  }
  for (EndpointState* r : retired) {
    retire(*r);
  }
  for (const auto& line : joined) {
    PGLANE_LOG_INFO("aurora instance %s", line);
  }
  for (const auto& line : left) {
    PGLANE_LOG_WARN("aurora instance %s", line);
  }
}

void Topology::discover_loop(size_t region) {
  const auto& h = cfg_.health;
  const conf::Region& r = cfg_.regions[region];
  EndpointState seed;  // not an instance: the cluster endpoint names whichever is the writer
  seed.config_region = region;
  seed.kind = r.global_database ? ProbeKind::kAuroraGlobal : ProbeKind::kAurora;
  const auto params = conn_params(r.writer, h.database, "pglane-health");
  std::string last_error;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock,
                     milliseconds(searching_.load() ? live().failover_interval_ms.load()
                                                    : live().interval_ms.load()),
                     [&] { return stopping_; });
      if (stopping_) {
        return;
      }
    }
    bool any_up = false;
    for (size_t i = 0, n = instance_count(); i < n; ++i) {
      const EndpointState& e = *instances_[i];
      any_up |= e.config_region == region && e.up.load() && !e.removed.load();
    }
    if (any_up) {
      continue;  // the instances' own probes keep the topology
    }
    Probe probe;
    std::string error;
    std::string sqlstate;
    const auto deadline = Clock::now() + milliseconds(live().timeout_ms.load());
    std::optional<Observation> seen;
    if (probe.connect(params, deadline, error)) {
      seen = observe(probe, seed.kind, deadline, error, sqlstate);
    }
    if (seen) {
      // Joiners only: the cluster endpoint's answer decides no roles and removes nothing.
      merge_members(seed, *seen, false);
      last_error.clear();
    } else if (trim_newline(error) != last_error) {
      last_error = trim_newline(error);
      PGLANE_LOG_WARN("cannot read the topology of region %s from %s: %s", r.name,
                      r.writer.to_string(), last_error);
    }
  }
}

}  // namespace pglane::proxy
