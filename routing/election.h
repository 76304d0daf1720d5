// Which instance is the writer (docs/internals.md, "Failover"): decided from what the instances
// say of themselves, never from names, DNS or the configuration. Sans-I/O: the health checker
// feeds each probe's report in; the election answers who the writer is, whether the checker
// should probe every instance fast (a writer is missing or suspected), and which instances claim
// the role without holding it (fenced: they get no writes).
//
// The rules:
//  - A writer is confirmed when exactly one reachable instance claims it with the highest
//    timeline seen, and that timeline is newer than the last confirmed writer's (the same
//    instance may come back on the same timeline: nothing was promoted meanwhile). On the first
//    election every instance must have answered or failed once, so a stale primary that
//    answers first is not chosen over a promoted one.
//  - The writer is lost after `fall` failed probes in a row, or at once when it reports being in
//    recovery (demoted). A session losing its writer or getting 25006 from it only makes it
//    suspect: every instance is probed fast until the writer answers again or is replaced.
//  - A confirmed writer is replaced while it still answers only by a claimant on a strictly
//    newer timeline (a promotion the writer's failure did not announce).
//  - Two claimants on the same newest timeline are ambiguous: no writer until one of them stops
//    claiming. Writes wait; they are never sent to two writers.
// Timeline 0 means unknown (Aurora reports no timeline): then only the "exactly one claimant"
// rule and fencing of the non-elected apply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pglane::routing {

struct InstanceReport {
  bool reachable = false;      // the probe connected and answered
  bool claims_writer = false;  // it says it is the writer (not in recovery; Aurora: its session)
  uint64_t timeline = 0;       // with claims_writer: its timeline, 0 = unknown
};

class WriterElection {
 public:
  enum class Event {
    kNone,
    kChosen,     // writer() is new (or the first)
    kLost,       // the writer failed or was demoted; writer() is -1
    kFenced,     // the reporting instance claims the role but is not the writer (first report)
    kAmbiguous,  // several claimants on the newest timeline (first report of the situation)
  };

  // `fall`: failed probes in a row before the writer is lost.
  WriterElection(size_t instances, int fall);

  // Instances are numbered from 0; more may be added later (never removed: a removed instance
  // simply stops reporting, and report(i, unreachable) forgets its claim).
  void add_instance();
  size_t size() const { return state_.size(); }

  Event report(size_t i, const InstanceReport& r);
  // A session lost its writer connection or got 25006 from it: search until it is confirmed.
  void suspect();

  int writer() const { return writer_; }  // -1: none now
  uint64_t writer_timeline() const { return writer_tl_; }
  // Probe every instance fast: no writer, or the writer suspected.
  bool searching() const { return writer_ < 0 || suspected_; }
  // Claims the writer role but is not the writer: gets no writes (and, being out of recovery,
  // no reads either).
  bool fenced(size_t i) const;
  // Increments each time writer() changes to a new instance or to none.
  uint64_t changes() const { return changes_; }

 private:
  struct Instance {
    bool seen = false;  // reported at least once
    InstanceReport last;
    int fails = 0;  // failed probes in a row
    bool fence_logged = false;
  };
  Event elect();
  void set_writer(int w);

  std::vector<Instance> state_;
  int fall_;
  int writer_ = -1;
  int last_writer_ = -1;    // the latest confirmed writer, even once lost
  uint64_t writer_tl_ = 0;  // its timeline
  bool suspected_ = false;
  bool ambiguous_logged_ = false;
  uint64_t changes_ = 0;
};

}  // namespace pglane::routing
