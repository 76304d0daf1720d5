// What one health probe learns from one instance, per topology source (conf::TopologySource):
// its role, its replication position and lag, and, on Aurora, the cluster's members. The SQL of
// each source lives here; proxy/topology turns observations into the writer and the replicas.
//
// static: pg_is_in_recovery(), the WAL functions and, on a primary, the timeline.
// aurora: aurora_db_instance_identifier() and aurora_replica_status() (with a Global Database,
//   aurora_global_db_instance_status() for every region's members). Never a function Aurora
//   refuses (pg_last_wal_replay_lsn() and the other WAL-position functions).
//
// Every name is schema-qualified, operators too, so the probe role's search_path changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/probe.h"

namespace pglane::proxy {

enum class ProbeKind { kStatic, kAurora, kAuroraGlobal };

// One instance of an Aurora cluster, as another (or itself) lists it.
struct Member {
  std::string server_id;
  std::string aws_region;  // kAuroraGlobal only
  bool writer = false;     // session_id 'MASTER_SESSION_ID'
};

struct Observation {
  bool recovery = false;       // pg_is_in_recovery()
  bool claims_writer = false;  // not in recovery (and, on Aurora, listed as the writer)
  // A position comparable across instances: static, the replay position of a replica and the
  // insert position of a primary; aurora, current_read_lsn of a reader and durable_lsn of the
  // writer.
  uint64_t lsn = 0;
  int64_t server_lag_ms = 0;    // the server's own lag estimate (a fallback for pglane's)
  uint64_t timeline = 0;        // static primary only (0 = unknown)
  std::string server_id;        // aurora: aurora_db_instance_identifier()
  std::vector<Member> members;  // aurora: the cluster as this instance sees it
};

// Runs the probe of `kind` on a connected probe. Null on failure, with `error` (and, for a server
// error, `sqlstate`) set.
std::optional<Observation> observe(Probe& probe, ProbeKind kind, SteadyTime deadline,
                                   std::string& error, std::string& sqlstate);

// The writer's position now, for read-your-writes: every commit acknowledged before this call
// is at or below it (static: the WAL insert position; aurora: durable_lsn).
std::optional<uint64_t> writer_position(Probe& probe, ProbeKind kind, SteadyTime deadline,
                                        std::string& error);

}  // namespace pglane::proxy
