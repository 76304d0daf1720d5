-- The sandbox's Aurora stand-in (scripts/sandbox.sh up DIR --aurora): makes a PostgreSQL 15
-- primary and its streaming replicas answer the way Aurora PostgreSQL does where it matters to a
-- proxy. Run by the superuser in every database, on the primary, before the replicas are cloned.
--
-- * The WAL-position functions Aurora refuses raise Aurora's errors, with its SQLSTATEs:
--   pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp():
--     0A000 "Function ...() is currently not supported for Aurora";
--   pg_current_wal_lsn(), pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn():
--     55000 "wal_level must be set to 'logical'".
--   The real functions move to the schema aurora_standin (only the superuser can use it) and
--   raising look-alikes take their names in pg_catalog; schema-qualified calls fail too.
-- * aurora_db_instance_identifier(): this instance's id (postgresql.conf pglane_aurora.server_id).
-- * aurora_replica_status(): one row per instance with Aurora's columns. On the writer it is
--   live: its own row (session_id 'MASTER_SESSION_ID', durable_lsn = its flushed WAL position)
--   and one row per streaming replica from pg_stat_replication (current_read_lsn = the replay
--   position, replica_lag_in_msec). The writer also stores that view in a table, at most twice
--   a second, and the table replicates: a reader answers with the writer's rows as last
--   replicated, plus its own row measured live. So readers answer too, and a reader whose writer
--   is gone still answers at once (with the writer's last rows).
-- * aurora_global_db_instance_status() and aurora_global_db_status(): the same instances with
--   their aws_region (postgresql.conf pglane_aurora.region of the writer, and the table
--   aurora_standin.instance_region for the others), and each region's lag.
--
-- What it does not reproduce: Aurora's shared storage (a promotion here is PostgreSQL's, with its
-- timeline), cpu and I/O columns (zero), and reader session ids (derived from the instance id).

\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE SCHEMA aurora_standin;
REVOKE ALL ON SCHEMA aurora_standin FROM PUBLIC;

-- The real functions, for the stand-in's own use.
ALTER FUNCTION pg_catalog.pg_last_wal_receive_lsn() SET SCHEMA aurora_standin;
ALTER FUNCTION pg_catalog.pg_last_wal_replay_lsn() SET SCHEMA aurora_standin;
ALTER FUNCTION pg_catalog.pg_last_xact_replay_timestamp() SET SCHEMA aurora_standin;
ALTER FUNCTION pg_catalog.pg_current_wal_lsn() SET SCHEMA aurora_standin;
ALTER FUNCTION pg_catalog.pg_current_wal_insert_lsn() SET SCHEMA aurora_standin;
ALTER FUNCTION pg_catalog.pg_current_wal_flush_lsn() SET SCHEMA aurora_standin;

DO $do$
DECLARE
  f record;
BEGIN
  FOR f IN SELECT * FROM (VALUES
      ('pg_last_wal_receive_lsn', 'pg_lsn', '0A000'),
      ('pg_last_wal_replay_lsn', 'pg_lsn', '0A000'),
      ('pg_last_xact_replay_timestamp', 'timestamptz', '0A000'),
      ('pg_current_wal_lsn', 'pg_lsn', '55000'),
      ('pg_current_wal_insert_lsn', 'pg_lsn', '55000'),
      ('pg_current_wal_flush_lsn', 'pg_lsn', '55000')) AS v(name, type, code)
  LOOP
    IF f.code = '0A000' THEN
      EXECUTE format($f$
        CREATE FUNCTION pg_catalog.%I() RETURNS %s LANGUAGE plpgsql VOLATILE AS $b$
        BEGIN
          RAISE EXCEPTION 'Function %s() is currently not supported for Aurora'
            USING ERRCODE = '0A000';
        END $b$ $f$, f.name, f.type, f.name);
    ELSE
      EXECUTE format($f$
        CREATE FUNCTION pg_catalog.%I() RETURNS %s LANGUAGE plpgsql VOLATILE AS $b$
        BEGIN
          RAISE EXCEPTION 'wal_level must be set to ''logical'''
            USING ERRCODE = '55000',
                  HINT = 'WAL control functions cannot be executed when wal_level < logical.';
        END $b$ $f$, f.name, f.type);
    END IF;
  END LOOP;
END
$do$;

CREATE FUNCTION pg_catalog.aurora_db_instance_identifier() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.current_setting('pglane_aurora.server_id') $$;

-- Regions of the instances (the sandbox fills it; an instance not listed is in its writer's).
CREATE TABLE aurora_standin.instance_region (server_id text PRIMARY KEY, aws_region text NOT NULL);

-- The writer's view as of its last refresh; replicated to the readers.
CREATE TABLE aurora_standin.writer_status (
  server_id text NOT NULL,
  session_id text NOT NULL,
  durable_lsn bigint,
  highest_lsn_rcvd bigint,
  current_read_lsn bigint,
  replica_lag_in_msec real,
  last_update_timestamp timestamptz,
  taken_at timestamptz NOT NULL
);

CREATE FUNCTION aurora_standin.lsn(l pg_lsn) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT (l OPERATOR(pg_catalog.-) '0/0'::pg_lsn)::bigint $$;

-- The writer's view, live: itself, then every streaming replica.
CREATE FUNCTION aurora_standin.live_writer_rows()
RETURNS SETOF aurora_standin.writer_status
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
  SELECT current_setting('pglane_aurora.server_id'), 'MASTER_SESSION_ID',
         aurora_standin.lsn(aurora_standin.pg_current_wal_flush_lsn()),
         aurora_standin.lsn(aurora_standin.pg_current_wal_insert_lsn()),
         aurora_standin.lsn(aurora_standin.pg_current_wal_flush_lsn()),
         NULL::real, NULL::timestamptz, now()
  UNION ALL
  SELECT r.application_name, md5(r.application_name)::uuid::text,
         aurora_standin.lsn(r.flush_lsn), aurora_standin.lsn(r.write_lsn),
         aurora_standin.lsn(r.replay_lsn),
         (CASE WHEN r.replay_lsn >= aurora_standin.pg_current_wal_flush_lsn() THEN 0
               ELSE extract(epoch FROM coalesce(r.replay_lag, now() - r.reply_time)) * 1000
          END)::real,
         r.reply_time, now()
  FROM pg_stat_replication r
  WHERE r.state IN ('streaming', 'catchup') AND r.application_name <> ''
$$;

-- Every instance, Aurora's way. Named in pg_catalog like Aurora's.
CREATE FUNCTION pg_catalog.aurora_replica_status(
  OUT server_id text, OUT session_id text, OUT durable_lsn bigint, OUT highest_lsn_rcvd bigint,
  OUT current_read_lsn bigint, OUT cur_replay_latency_in_usec bigint, OUT active_txns integer,
  OUT is_current boolean, OUT last_transport_error integer,
  OUT last_error_timestamp timestamptz, OUT last_update_timestamp timestamptz,
  OUT feedback_xmin bigint, OUT feedback_epoch integer, OUT replica_lag_in_msec real,
  OUT log_stream_speed_in_kib_per_second real, OUT log_buffer_sequence_number bigint,
  OUT oldest_read_view_trx_id bigint, OUT oldest_read_view_lsn bigint,
  OUT pending_read_ios integer, OUT read_ios bigint, OUT iops integer, OUT cpu real)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  me text := current_setting('pglane_aurora.server_id');
  replay pg_lsn;
BEGIN
  IF NOT pg_is_in_recovery() THEN
    -- Refresh the replicated copy, at most twice a second, by one caller at a time. Never when
    -- the transaction cannot write (a read-only caller still gets the live view).
    IF current_setting('transaction_read_only') = 'off'
       AND pg_try_advisory_xact_lock(hashtext('aurora_standin.writer_status'))
       AND NOT EXISTS (SELECT 1 FROM aurora_standin.writer_status s
                       WHERE s.taken_at > now() - interval '500 milliseconds') THEN
      DELETE FROM aurora_standin.writer_status;
      INSERT INTO aurora_standin.writer_status SELECT * FROM aurora_standin.live_writer_rows();
    END IF;
    RETURN QUERY
      SELECT w.server_id, w.session_id, w.durable_lsn, w.highest_lsn_rcvd, w.current_read_lsn,
             0::bigint, 0, false, 0, NULL::timestamptz, w.last_update_timestamp, NULL::bigint,
             NULL::integer, w.replica_lag_in_msec, 0::real, 0::bigint, NULL::bigint,
             NULL::bigint, 0, 0::bigint, 0, 0::real
      FROM aurora_standin.live_writer_rows() w;
    RETURN;
  END IF;
  -- A reader: the writer's rows as last replicated (a last update older than the copy, so
  -- staleness shows), and its own row measured now.
  replay := coalesce(aurora_standin.pg_last_wal_replay_lsn(), '0/0');
  RETURN QUERY
    SELECT w.server_id, w.session_id, w.durable_lsn, w.highest_lsn_rcvd, w.current_read_lsn,
           0::bigint, 0, false, 0, NULL::timestamptz, coalesce(w.last_update_timestamp, w.taken_at),
           NULL::bigint, NULL::integer, w.replica_lag_in_msec, 0::real, 0::bigint,
           NULL::bigint, NULL::bigint, 0, 0::bigint, 0, 0::real
    FROM aurora_standin.writer_status w
    WHERE w.server_id <> me
    UNION ALL
    SELECT me, md5(me)::uuid::text, aurora_standin.lsn(replay),
           aurora_standin.lsn(coalesce(aurora_standin.pg_last_wal_receive_lsn(), replay)),
           aurora_standin.lsn(replay), 0::bigint, 0, false, 0, NULL::timestamptz,
           NULL::timestamptz, NULL::bigint, NULL::integer,
           (CASE WHEN aurora_standin.pg_last_wal_receive_lsn() IS NULL
                   OR aurora_standin.pg_last_wal_receive_lsn() <= replay THEN 0
                 ELSE extract(epoch FROM now() - aurora_standin.pg_last_xact_replay_timestamp())
                      * 1000 END)::real,
           0::real, 0::bigint, NULL::bigint, NULL::bigint, 0, 0::bigint, 0, 0::real;
END
$$;

CREATE FUNCTION aurora_standin.region_of(id text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce((SELECT r.aws_region FROM aurora_standin.instance_region r
                   WHERE r.server_id = id),
                  current_setting('pglane_aurora.region'))
$$;

CREATE FUNCTION pg_catalog.aurora_global_db_instance_status(
  OUT server_id text, OUT session_id text, OUT aws_region text, OUT durable_lsn bigint,
  OUT highest_lsn_rcvd bigint, OUT feedback_epoch integer, OUT feedback_xmin bigint,
  OUT oldest_read_view_lsn bigint, OUT visibility_lag_in_msec real)
RETURNS SETOF record
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.server_id, s.session_id, aurora_standin.region_of(s.server_id), s.durable_lsn,
         s.highest_lsn_rcvd, NULL::integer, NULL::bigint, s.current_read_lsn,
         s.replica_lag_in_msec
  FROM pg_catalog.aurora_replica_status() s
$$;

CREATE FUNCTION pg_catalog.aurora_global_db_status(
  OUT aws_region text, OUT highest_lsn_written bigint, OUT durability_lag_in_msec real,
  OUT rpo_lag_in_msec real, OUT last_lag_calculation_time timestamptz,
  OUT feedback_epoch integer, OUT feedback_xmin bigint)
RETURNS SETOF record
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  -- The writer's region reports -1 for its lags, as Aurora's primary region does.
  SELECT g.aws_region, max(g.durable_lsn),
         CASE WHEN bool_or(g.session_id = 'MASTER_SESSION_ID') THEN -1
              ELSE max(coalesce(g.visibility_lag_in_msec, 0)) END::real,
         CASE WHEN bool_or(g.session_id = 'MASTER_SESSION_ID') THEN -1
              ELSE max(coalesce(g.visibility_lag_in_msec, 0)) END::real,
         now(), NULL::integer, NULL::bigint
  FROM pg_catalog.aurora_global_db_instance_status() g
  GROUP BY g.aws_region
$$;
