#include "proxy/observe.h"

#include <cstdlib>
#include <cstring>

namespace pglane::proxy {

namespace {

// Role, WAL position as a number, replay-timestamp lag (a fallback when the writer cannot be
// sampled), and a primary's timeline (the hex digits that start its WAL file names).
constexpr const char* kStaticSql =
    "SELECT pg_catalog.pg_is_in_recovery(), "
    "(CASE WHEN pg_catalog.pg_is_in_recovery() "
    "THEN COALESCE(pg_catalog.pg_last_wal_replay_lsn(), '0/0'::pg_catalog.pg_lsn) "
    "ELSE pg_catalog.pg_current_wal_insert_lsn() END "
    "OPERATOR(pg_catalog.-) '0/0'::pg_catalog.pg_lsn)::pg_catalog.int8, "
    "COALESCE(CASE WHEN pg_catalog.pg_is_in_recovery() AND "
    "pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), "
    "pg_catalog.pg_last_wal_replay_lsn()) OPERATOR(pg_catalog.<>) 0 "
    "THEN (pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) "
    "pg_catalog.pg_last_xact_replay_timestamp()) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8 "
    "END, 0), "
    "CASE WHEN pg_catalog.pg_is_in_recovery() THEN '' ELSE "
    "pg_catalog.substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8) END";

// One row per member: (me, recovery, server_id, is_writer, durable_lsn, current_read_lsn,
// lag_ms, aws_region). Rows not updated for 5 minutes are instances gone (the AWS JDBC wrapper's
// rule), except the writer's and the row of the instance answering (NULL from Aurora 13.9 on).
#define PGLANE_AURORA_ROWS                                                                    \
  "SELECT s.server_id, s.session_id, s.durable_lsn, s.current_read_lsn, "                     \
  "s.replica_lag_in_msec, s.last_update_timestamp FROM pg_catalog.aurora_replica_status() s " \
  "WHERE s.session_id OPERATOR(pg_catalog.=) 'MASTER_SESSION_ID' "                            \
  "OR s.server_id OPERATOR(pg_catalog.=) pg_catalog.aurora_db_instance_identifier() "         \
  "OR s.last_update_timestamp IS NULL OR s.last_update_timestamp OPERATOR(pg_catalog.>) "     \
  "(pg_catalog.now() OPERATOR(pg_catalog.-) '5 minutes'::pg_catalog.interval)"

#define PGLANE_AURORA_SELECT                                                            \
  "SELECT pg_catalog.aurora_db_instance_identifier(), pg_catalog.pg_is_in_recovery(), " \
  "r.server_id, r.session_id OPERATOR(pg_catalog.=) 'MASTER_SESSION_ID', "              \
  "COALESCE(r.durable_lsn, 0), COALESCE(r.current_read_lsn, 0), "                       \
  "COALESCE(r.replica_lag_in_msec, 0)::pg_catalog.int8, "

constexpr const char* kAuroraSql =
    "WITH r AS (" PGLANE_AURORA_ROWS ") " PGLANE_AURORA_SELECT "'' FROM r";

// A Global Database: every region's members from aurora_global_db_instance_status() (with
// their aws_region), this cluster's lag and positions from aurora_replica_status().
constexpr const char* kAuroraGlobalSql =
    "WITH r AS (" PGLANE_AURORA_ROWS
    "), "
    "g AS (SELECT g.server_id, g.session_id, g.aws_region, g.durable_lsn "
    "FROM pg_catalog.aurora_global_db_instance_status() g) " PGLANE_AURORA_SELECT
    "COALESCE(g.aws_region, '') FROM r LEFT JOIN g ON g.server_id OPERATOR(pg_catalog.=) "
    "r.server_id "
    "UNION ALL SELECT pg_catalog.aurora_db_instance_identifier(), "
    "pg_catalog.pg_is_in_recovery(), g.server_id, "
    "g.session_id OPERATOR(pg_catalog.=) 'MASTER_SESSION_ID', COALESCE(g.durable_lsn, 0), 0, 0, "
    "g.aws_region FROM g WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.server_id "
    "OPERATOR(pg_catalog.=) g.server_id)";

#undef PGLANE_AURORA_ROWS
#undef PGLANE_AURORA_SELECT

// The insert position, not the write position: with synchronous_commit = off a commit is
// acknowledged before its WAL is written, and the insert position is already past it.
constexpr const char* kStaticPositionSql =
    "SELECT (pg_catalog.pg_current_wal_insert_lsn() OPERATOR(pg_catalog.-) "
    "'0/0'::pg_catalog.pg_lsn)::pg_catalog.int8";

// Aurora acknowledges a commit once it is durable: durable_lsn is past every acknowledged one.
constexpr const char* kAuroraPositionSql =
    "SELECT s.durable_lsn FROM pg_catalog.aurora_replica_status() s "
    "WHERE s.server_id OPERATOR(pg_catalog.=) pg_catalog.aurora_db_instance_identifier()";

uint64_t as_u64(const PGresult* r, int row, int col, int base = 10) {
  return std::strtoull(PQgetvalue(r, row, col), nullptr, base);
}
bool as_bool(const PGresult* r, int row, int col) {
  return PQgetvalue(r, row, col)[0] == 't';
}

std::optional<Observation> read_static(const PGresult* r) {
  if (PQntuples(r) != 1 || PQnfields(r) != 4) {
    return std::nullopt;
  }
  Observation o;
  o.recovery = as_bool(r, 0, 0);
  o.claims_writer = !o.recovery;
  o.lsn = as_u64(r, 0, 1);
  o.server_lag_ms = std::strtoll(PQgetvalue(r, 0, 2), nullptr, 10);
  o.timeline = o.recovery ? 0 : as_u64(r, 0, 3, 16);
  return o;
}

std::optional<Observation> read_aurora(const PGresult* r, std::string& error) {
  if (PQnfields(r) != 8) {
    return std::nullopt;
  }
  Observation o;
  bool self_listed = false;
  for (int i = 0; i < PQntuples(r); ++i) {
    Member m;
    m.server_id = PQgetvalue(r, i, 2);
    m.writer = as_bool(r, i, 3);
    m.aws_region = PQgetvalue(r, i, 7);
    if (i == 0) {
      o.server_id = PQgetvalue(r, i, 0);
      o.recovery = as_bool(r, i, 1);
    }
    if (m.server_id == o.server_id) {
      self_listed = true;
      o.claims_writer = m.writer && !o.recovery;
      o.lsn = o.claims_writer ? as_u64(r, i, 4) : as_u64(r, i, 5);
      o.server_lag_ms = std::strtoll(PQgetvalue(r, i, 6), nullptr, 10);
    }
    o.members.push_back(std::move(m));
  }
  if (!self_listed) {
    error = "aurora_replica_status() does not list the instance answering";
    if (!o.server_id.empty()) {
      error += " (" + o.server_id + ")";
    }
    return std::nullopt;
  }
  return o;
}

}  // namespace

std::optional<Observation> observe(Probe& probe, ProbeKind kind, SteadyTime deadline,
                                   std::string& error, std::string& sqlstate) {
  const char* sql = kind == ProbeKind::kStatic   ? kStaticSql
                    : kind == ProbeKind::kAurora ? kAuroraSql
                                                 : kAuroraGlobalSql;
  PGresult* r = probe.query(sql, deadline, error, &sqlstate);
  if (r == nullptr) {
    return std::nullopt;
  }
  std::optional<Observation> o =
      kind == ProbeKind::kStatic ? read_static(r) : read_aurora(r, error);
  PQclear(r);
  if (!o && error.empty()) {
    error = "the probe query returned an unexpected result";
  }
  return o;
}

std::optional<uint64_t> writer_position(Probe& probe, ProbeKind kind, SteadyTime deadline,
                                        std::string& error) {
  PGresult* r = probe.query(kind == ProbeKind::kStatic ? kStaticPositionSql : kAuroraPositionSql,
                            deadline, error);
  std::optional<uint64_t> out;
  if (r != nullptr && PQntuples(r) == 1 && PQnfields(r) == 1 && !PQgetisnull(r, 0, 0)) {
    out = as_u64(r, 0, 0);
  }
  PQclear(r);
  return out;
}

}  // namespace pglane::proxy
