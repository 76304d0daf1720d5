#include "routing/election.h"

namespace pglane::routing {

WriterElection::WriterElection(size_t instances, int fall)
    : state_(instances), fall_(fall < 1 ? 1 : fall) {}

void WriterElection::add_instance() {
  state_.emplace_back();
}

void WriterElection::set_writer(int w) {
  if (w == writer_) {
    return;
  }
  writer_ = w;
  ++changes_;
  if (w >= 0) {
    last_writer_ = w;
    writer_tl_ = state_[static_cast<size_t>(w)].last.timeline;
    suspected_ = false;
    state_[static_cast<size_t>(w)].fence_logged = false;
  }
}

void WriterElection::suspect() {
  if (writer_ >= 0) {
    suspected_ = true;
  }
}

bool WriterElection::fenced(size_t i) const {
  const Instance& s = state_[i];
  return static_cast<int>(i) != writer_ && s.last.reachable && s.last.claims_writer;
}

WriterElection::Event WriterElection::elect() {
  if (last_writer_ < 0) {
    // The first election hears from everyone first.
    for (const Instance& s : state_) {
      if (!s.seen) {
        return Event::kNone;
      }
    }
  }
  const bool replacing = writer_ >= 0;
  int who = -1;
  int count = 0;
  uint64_t best = 0;
  for (size_t i = 0; i < state_.size(); ++i) {
    const Instance& s = state_[i];
    if (!s.last.reachable || !s.last.claims_writer || static_cast<int>(i) == writer_) {
      continue;
    }
    const uint64_t tl = s.last.timeline;
    bool eligible;
    if (replacing) {
      // Only a promotion newer than the writer's own timeline displaces a writer that answers.
      eligible = writer_tl_ != 0 && tl > writer_tl_;
    } else if (last_writer_ < 0 || writer_tl_ == 0) {
      eligible = true;
    } else {
      eligible = tl > writer_tl_ || (static_cast<int>(i) == last_writer_ && tl == writer_tl_);
    }
    if (!eligible) {
      continue;
    }
    if (who < 0 || tl > best) {
      who = static_cast<int>(i);
      best = tl;
      count = 1;
    } else if (tl == best) {
      ++count;
    }
  }
  if (who < 0) {
    return Event::kNone;
  }
  if (count > 1) {
    if (replacing) {
      set_writer(-1);  // newer writers exist, so this one is stale; which of them is not known
    }
    if (!ambiguous_logged_) {
      ambiguous_logged_ = true;
      return Event::kAmbiguous;
    }
    return replacing ? Event::kLost : Event::kNone;
  }
  ambiguous_logged_ = false;
  set_writer(who);
  return Event::kChosen;
}

WriterElection::Event WriterElection::report(size_t i, const InstanceReport& r) {
  Instance& s = state_[i];
  const bool is_writer = static_cast<int>(i) == writer_;
  s.seen = true;
  s.last = r;
  if (!r.reachable) {
    s.last.claims_writer = false;
    ++s.fails;
    if (is_writer && s.fails >= fall_) {
      set_writer(-1);
      Event e = elect();
      return e == Event::kChosen ? e : Event::kLost;
    }
    return writer_ < 0 ? elect() : Event::kNone;
  }
  s.fails = 0;
  if (is_writer) {
    if (!r.claims_writer) {
      set_writer(-1);  // demoted: it reports being in recovery
      Event e = elect();
      return e == Event::kChosen ? e : Event::kLost;
    }
    suspected_ = false;
    return Event::kNone;
  }
  if (!r.claims_writer) {
    s.fence_logged = false;
    return writer_ < 0 ? elect() : Event::kNone;
  }
  Event e = elect();
  if (e != Event::kNone || static_cast<int>(i) == writer_) {
    return e;
  }
  // Not elected: fenced when another instance is the writer, or when a newer writer was
  // confirmed before (an old writer back as a primary). Otherwise the election is still waiting.
  const bool stale = last_writer_ >= 0 && static_cast<int>(i) != last_writer_ &&
                     (writer_tl_ == 0 || r.timeline <= writer_tl_);
  if (writer_ < 0 && !stale) {
    return Event::kNone;
  }
  if (!s.fence_logged) {
    s.fence_logged = true;
    return Event::kFenced;
  }
  return Event::kNone;
}

}  // namespace pglane::routing
