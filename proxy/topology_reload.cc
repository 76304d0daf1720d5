// Topology on reload: static regions' instances added and removed while running (the rest of
// what Topology holds is read at start; the reload reports those keys as needing a restart).
#include "absl/strings/str_cat.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/topology.h"

namespace pglane::proxy {

std::vector<std::string> Topology::reconcile(const conf::Config& next) {
  std::vector<std::string> notes;
  std::vector<conf::Endpoint> to_retire;
  {
    std::lock_guard lock(mu_);
    std::vector<bool> listed(instance_count(), false);
    for (const conf::Region& r : next.regions) {
      size_t idx = cfg_.regions.size();
      for (size_t i = 0; i < cfg_.regions.size(); ++i) {
        if (cfg_.regions[i].name == r.name) {
          idx = i;
        }
      }
      if (idx == cfg_.regions.size()) {
        notes.push_back(absl::StrCat("region \"", r.name, "\" is new: it needs a restart"));
        continue;
      }
      if (r.source != conf::TopologySource::kStatic ||
          cfg_.regions[idx].source != conf::TopologySource::kStatic) {
        continue;  // Aurora regions follow the cluster's own membership
      }
      std::vector<conf::Endpoint> wanted{r.writer};
      wanted.insert(wanted.end(), r.readers.begin(), r.readers.end());
      for (const conf::Endpoint& ep : wanted) {
        const size_t before = instance_count();
        if (!probing_ && by_name_locked(ep.to_string()) == nullptr) {
          // One instance trusted as the writer, unprobed: probing starts only at start-up.
          notes.push_back(absl::StrCat("instance ", ep.to_string(),
                                       " not added: pglane started with a single unprobed "
                                       "instance; adding instances needs a restart"));
          continue;
        }
        EndpointState* e = add_instance_locked(ep, idx, "");
        if (e == nullptr) {
          notes.push_back(absl::StrCat(ep.to_string(), ": no room for more instances"));
          continue;
        }
        if (e->index < listed.size()) {
          listed[e->index] = true;
        }
        if (instance_count() > before) {
          notes.push_back(absl::StrCat("instance ", e->name, " (", e->region,
                                       ") added: probed now, used once it passes its checks"));
          if (!probing_) {
            notes.push_back(
                "the single trusted instance is not probed: the new ones need a "
                "restart to be checked");
          }
        } else if (e->removed.exchange(false)) {
          notes.push_back(absl::StrCat("instance ", e->name, " (", e->region, ") is back"));
        }
      }
    }
    // Static instances no longer in the file: never routed to again; their transactions under
    // way finish, their idle pooled connections close.
    for (size_t i = 0; i < listed.size(); ++i) {
      EndpointState& e = *instances_[i];
      if (e.kind != ProbeKind::kStatic || listed[i] || e.removed.load()) {
        continue;
      }
      if (&e == writer()) {
        // Removing it would fail writes over to nothing and cut its transactions under way.
        notes.push_back(absl::StrCat("instance ", e.name, " (", e.region,
                                     ") is the writer: not removed (promote another first)"));
        continue;
      }
      e.removed = true;
      to_retire.push_back(e.endpoint);
      notes.push_back(absl::StrCat("instance ", e.name, " (", e.region,
                                   ") removed: no new transactions go there"));
    }
  }
  for (const conf::Endpoint& ep : to_retire) {
    pools().retire(ep);
  }
  return notes;
}

EndpointState* Topology::by_name_locked(const std::string& name) const {
  for (size_t i = 0, n = instance_count(); i < n; ++i) {
    if (instances_[i]->name == name) {
      return instances_[i].get();
    }
  }
  return nullptr;
}

}  // namespace pglane::proxy
