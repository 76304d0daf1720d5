#!/usr/bin/env python3
"""One kill-and-promote round against a running scratch sandbox (bench/failover.sh drives it).

    failover.py [--series FILE] TARGET ENV_FILE [PGLANE_PORT]

TARGET "pglane": the clients connect to pglane on 127.0.0.1:PGLANE_PORT.
TARGET "libpq": the reference: libpq multi-host, the writer with target_session_attrs=read-write
and the reader with prefer-standby, each reconnecting after an error.

A writer inserts ids 1, 2, 3... in autocommit, opening a fresh connection every 100 inserts (as a
pool recycling its connections does); a reader runs a read every 5 ms. After 2 s the
primary is stopped (pg_ctl -m immediate), 300 ms later the replica is promoted; the promotion is
visible when the replica answers pg_is_in_recovery() = false. 1.5 s after that the old primary is
restarted as a standalone writer on its old timeline, and the clients run 2 s more. Prints one
line of key=value results:
  outage_ms      the promotion becoming visible -> the first acknowledged write
  promote_ms     `pg_ctl promote` started -> the first acknowledged write
  failed_reads   reads that returned an error (out of reads)
  write_errors   inserts that returned an error
  lost           acknowledged inserts missing on the new primary afterwards (must be 0)
  old_writer     inserts issued after the promotion that reached the old primary (must be 0)

--series FILE also writes a CSV time series (bench/plot.sh charts it): one row per 100 ms, t_s
the bucket's start in seconds from `pg_ctl promote` started, then per second in that bucket
acknowledged writes, those of them missing on the new primary (lost), write errors, reads and
failed reads. Two comment lines come first: the target, and the events on the same clock (stop:
the primary stopped, promote, visible, old_primary_up: the old primary accepting again).
"""
import os
import subprocess
import sys
import threading
import time

import psycopg


def env_of(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith('#') or '=' not in line:
            continue
        k, v = line.split('=', 1)
        out[k] = v.strip('"')
    return out


def pg_ctl(env, data, *args):
    cmd = [os.path.join(env['PG_BIN'], 'pg_ctl'), '-D', data, *args]
    if os.getuid() == 0:
        cmd = ['runuser', '-u', 'postgres', '--'] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd='/')


def write_series(path, target, events, acked, lost_ids, times, step=0.1):
    """The --series CSV; times maps a column name to its event times (time.monotonic())."""
    zero = events['promote']
    everything = list(acked.values()) + [t for ts in times.values() for t in ts]
    lo = int((min(everything) - zero) // step) if everything else 0
    hi = int((max(everything) - zero) // step) if everything else 0
    cols = {'writes': list(acked.values()), 'lost': [acked[i] for i in lost_ids], **times}
    counts = {c: [0] * (hi - lo + 1) for c in cols}
    for c, ts in cols.items():
        for t in ts:
            counts[c][int((t - zero) // step) - lo] += 1
    with open(path, 'w') as f:
        f.write(f"# failover.py series: target={target}\n")
        f.write("# events: " + " ".join(f"{k}={v - zero:.3f}" for k, v in events.items()
                                         if v is not None) + "\n")
        f.write("t_s," + ",".join(f"{c}_per_s" for c in cols) + "\n")
        for k in range(hi - lo + 1):
            f.write(f"{(lo + k) * step:.1f}," + ",".join(f"{counts[c][k] / step:g}" for c in cols)
                    + "\n")


def main():
    args = sys.argv[1:]
    series = None
    if args[:1] == ['--series']:
        series, args = args[1], args[2:]
    elif args and args[0].startswith('--series='):
        series, args = args[0].split('=', 1)[1], args[1:]
    sys.argv[1:] = args
    target, env_file = sys.argv[1], sys.argv[2]
    env = env_of(env_file)
    ports = [env['PG_PRIMARY_PORT']] + env['PG_REPLICA_PORTS'].split()
    app = f"user={env['APP_USER']} password={env['APP_PASSWORD']} dbname={env['APP_DB']} " \
          "connect_timeout=2 sslmode=disable options=-cstatement_timeout=5000"
    su = [f"host=127.0.0.1 port={p} user=postgres password={env['PG_SUPERUSER_PASSWORD']} "
          "dbname=app connect_timeout=2 sslmode=require" for p in ports]
    if target == 'pglane':
        write_dsn = read_dsn = f"host=127.0.0.1 port={sys.argv[3]} {app}"
    else:
        hosts = f"host=127.0.0.1,127.0.0.1 port={ports[0]},{ports[1]} {app}"
        write_dsn = hosts + " target_session_attrs=read-write"
        read_dsn = hosts + " target_session_attrs=prefer-standby"

    stop = threading.Event()
    acked = {}  # id -> ack time
    state = {'next': 1, 'write_errors': 0, 'reads': 0, 'failed_reads': 0}
    # Event times for --series (list.append is atomic under the GIL).
    times = {'write_errors': [], 'reads': [], 'failed_reads': []}

    def writer():
        conn = None
        while not stop.is_set():
            try:
                if conn is not None and state['next'] % 100 == 0:
                    conn.close()
                if conn is None or conn.closed:
                    conn = psycopg.connect(write_dsn, autocommit=True)
                i = state['next']
                state['next'] += 1
                conn.execute("INSERT INTO fo_writes VALUES (%s)", (i,))
                acked[i] = time.monotonic()
            except psycopg.Error:
                state['write_errors'] += 1
                times['write_errors'].append(time.monotonic())
                if conn is not None and not conn.closed and conn.info.transaction_status != 0:
                    conn.close()
                if conn is not None and conn.broken:
                    conn = None
                time.sleep(0.01)

    def reader():
        conn = None
        while not stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(read_dsn, autocommit=True)
                conn.execute("SELECT count(*) FROM pg_class").fetchone()
                state['reads'] += 1
                times['reads'].append(time.monotonic())
            except psycopg.Error:
                state['failed_reads'] += 1
                times['failed_reads'].append(time.monotonic())
                conn = None
            time.sleep(0.005)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    time.sleep(2)
    root = env['PG_DATA_ROOT']
    stopped = time.monotonic()
    pg_ctl(env, f"{root}/primary", '-m', 'immediate', 'stop')
    time.sleep(0.3)
    promote_started = time.monotonic()
    pg_ctl(env, f"{root}/replica1", '-w', 'promote')
    visible = None
    for _ in range(500):
        try:
            with psycopg.connect(su[1], autocommit=True) as c:
                if not c.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    visible = time.monotonic()
                    break
        except psycopg.Error:
            pass
        time.sleep(0.005)
    first_after = state['next']
    time.sleep(1.5)
    # The old primary comes back alone: without a synchronous standby to wait for, so a write that
    # reaches it commits there (and is counted).
    auto = f"{root}/primary/postgresql.auto.conf"
    with open(auto) as f:
        kept = [l for l in f if not l.startswith('synchronous_standby_names')]
    with open(auto, 'w') as f:
        f.writelines(kept)
    pg_ctl(env, f"{root}/primary", '-w', '-t', '60', 'start')
    old_up = time.monotonic()
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join()

    after = sorted(t for t in acked.values() if visible is not None and t >= visible)
    outage = round((after[0] - visible) * 1000) if after else -1
    since_promote = sorted(t for t in acked.values() if t >= promote_started)
    promote_ms = round((since_promote[0] - promote_started) * 1000) if since_promote else -1
    with psycopg.connect(su[1]) as c:
        present = {r[0] for r in c.execute("SELECT id FROM fo_writes")}
    lost_ids = [i for i in acked if i not in present]
    lost = len(lost_ids)
    with psycopg.connect(su[0]) as c:
        old = c.execute("SELECT count(*) FROM fo_writes WHERE id >= %s", (first_after,)).fetchone()[0]
    print(f"outage_ms={outage} promote_ms={promote_ms} failed_reads={state['failed_reads']} reads={state['reads']} "
          f"write_errors={state['write_errors']} acked={len(acked)} lost={lost} old_writer={old}")
    if series:
        events = {'stop': stopped, 'promote': promote_started, 'visible': visible,
                  'old_primary_up': old_up}
        write_series(series, target, events, acked, lost_ids, times)


if __name__ == '__main__':
    main()
