#!/usr/bin/env bash
# Side-by-side pgbench comparison: direct PostgreSQL, PgBouncer 1.25 (built from source),
# PgBouncer 1.18 (the Debian package) and pglane.
#
#   bench/compare.sh [--write]     --write also saves the report (only when no run failed) as
#                                  bench/results/compare-<UTC date-time>.md and prints its path,
#                                  to be pasted into bench/RESULTS.md by hand
#
# Starts its own sandbox (primary only, no Redis), loads pgbench scale SCALE, then runs
# ROUNDS interleaved rounds; each round runs pgbench (-S by default) in every MODES mode against
# every target (in a rotating order, so no target always runs first), plus a single-client run
# for the added latency. For the proxies, CPU seconds per 1,000 transactions come from the
# process's utime+stime in /proc/PID/stat (all threads) before and after each run. Every run
# also writes pgbench's per-transaction log (-l); its 99th percentile latency is computed per
# run and the median over rounds reported, and the log is deleted right after.
# Results (markdown) go to stdout, progress to stderr. The "vs PgBouncer" columns compare with
# PgBouncer 1.25 when it is measured, else with 1.18; their headers name the one used.
#
# Targets: direct (PostgreSQL itself), pgbouncer125 (PGBOUNCER125_BIN; when missing it is built
# with ../shared/anchors/build-pgbouncer.sh if that exists, as root, else skipped with a
# warning; max_prepared_statements = 200, so -M prepared works in transaction pooling),
# pgbouncer (`pgbouncer` from PATH, Debian's 1.18: -M prepared is not supported in transaction
# pooling and not run) and pglane (PGLANE_BIN). The proxy starters and measurement helpers are in
# bench/lib.sh, shared with bench/syscalls.sh.
#
# SPLIT=1 measures read/write splitting: the sandbox gets two streaming replicas, pooling is
# transaction mode, and pglane runs twice, as "pglane" (one writer, no splitting) and
# "pglane-split" (the replicas as readers). BUILTIN picks pgbench's script: select-only (-S,
# the default) or tpcb-like. The report adds the share of reads the replicas served (pglane's
# routing counters, logged on SIGUSR1) and pglane-split's CPU per transaction against pglane's.
#
# Environment (defaults):
#   ROUNDS=3 DURATION=15 CLIENTS=32 THREADS=2 SCALE=10 LAT_DURATION=10 WARMUP=5
#   POOL_MODE=session (or transaction; all proxies)   POOL_SIZE=20   WORKERS=2 (pglane threads)
#   TARGETS="direct pgbouncer125 pgbouncer pglane" (any subset, e.g. TARGETS=pglane WORKERS=1)
#   MODES="simple extended prepared" (pgbench -M modes of the load runs, any subset; the
#                          single-client runs use simple)
#   PGLANE_BIN=build/proxy/pglane   PGBOUNCER125_BIN=/opt/pgbouncer-1.25/bin/pgbouncer
#   KEEP_TMP=1 keeps the scratch dir (logs) after the run
#   SPLIT=0 (1: read/write splitting run, see above)   BUILTIN=select-only (or tpcb-like)
#   SPLIT_SCOPES="table off"   with SPLIT=1: one splitting pglane per routing.read_your_writes
#                          value, named pglane-split-<value>, instead of one pglane-split
#   PGLANE_BASE_BIN=path   also runs that pglane binary as "pglane-base" (same config), to
#                          compare a change against the build before it
# pgbench -j is min(THREADS, CLIENTS). The open-files limit is raised (65536, or the hard limit)
# for pgbench and the proxies, so CLIENTS=500 works. pgbench's -T clock includes connecting, and
# 500 direct SCRAM logins took ~20 s on the busy 2-core machine (the proxies ~3 s): give such
# runs DURATION=60 or more (a run that completes no transaction is reported as failed). In
# session pooling each proxy keeps CLIENTS server connections, so CLIENTS=500 only fits
# PostgreSQL's max_connections (600) one target at a time (TARGETS=...); the script checks.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
root=$(repo_root)
cd "$root"

write=0
case ${1:-} in
  "") ;;
  --write) write=1 ;;
  *) echo "usage: bench/compare.sh [--write]" >&2; exit 2 ;;
esac

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-32}
THREADS=${THREADS:-2}
SCALE=${SCALE:-10}
LAT_DURATION=${LAT_DURATION:-10}
WARMUP=${WARMUP:-5}
POOL_MODE=${POOL_MODE:-session}
SPLIT_SCOPES=${SPLIT_SCOPES:-}
POOL_SIZE=${POOL_SIZE:-20}
WORKERS=${WORKERS:-2}
TARGETS=${TARGETS:-direct pgbouncer125 pgbouncer pglane}
MODES=${MODES:-simple extended prepared}
PGLANE_BIN=${PGLANE_BIN:-$root/build/proxy/pglane}
SPLIT=${SPLIT:-0}
BUILTIN=${BUILTIN:-select-only}
case $BUILTIN in
  select-only) script_flags=(-S) ;;
  tpcb-like) script_flags=(-b tpcb-like) ;;
  *) die "BUILTIN must be select-only or tpcb-like" ;;
esac
case $SPLIT in 0 | 1) ;; *) die "SPLIT must be 0 or 1" ;; esac
if [ "$SPLIT" = 1 ] && [ "$POOL_MODE" != transaction ]; then
  note "SPLIT=1: read/write splitting needs transaction pooling; using POOL_MODE=transaction"
  POOL_MODE=transaction
fi
case $POOL_MODE in session | transaction) ;; *) die "POOL_MODE must be session or transaction" ;; esac
for v in ROUNDS DURATION CLIENTS THREADS SCALE LAT_DURATION WARMUP POOL_SIZE WORKERS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
if [ "$CLIENTS" -lt 1 ] || [ "$THREADS" -lt 1 ]; then die "CLIENTS and THREADS must be at least 1"; fi
declare -A wanted=()
for t in $TARGETS; do
  case $t in
    direct | pgbouncer125 | pgbouncer | pglane) wanted[$t]=1 ;;
    *) die "TARGETS: unknown target '$t' (direct, pgbouncer125, pgbouncer, pglane)" ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || die "TARGETS is empty"
modes=()
for mode in $MODES; do
  case $mode in simple | extended | prepared) modes+=("$mode") ;; *) die "MODES: unknown pgbench -M mode '$mode'" ;; esac
done
[ ${#modes[@]} -gt 0 ] || die "MODES is empty"
# pgbench refuses more threads than clients.
JOBS=$((THREADS < CLIENTS ? THREADS : CLIENTS))
command -v pgbench >/dev/null || die "pgbench not found (run scripts/bootstrap.sh)"
if [ -n "${wanted[pgbouncer]:-}" ]; then
  command -v pgbouncer >/dev/null || die "pgbouncer not found (run scripts/bootstrap.sh)"
fi
pgbouncer125=""
if [ -n "${wanted[pgbouncer125]:-}" ] && ! pgbouncer125=$(pgbouncer125_bin); then
  warn "PgBouncer 1.25 not available: target pgbouncer125 skipped"
  unset 'wanted[pgbouncer125]'
fi

# Hundreds of clients need more descriptors than the usual 1024 (pgbench: one socket per client;
# each proxy: one per client plus its pool). Children (PgBouncer, pglane) inherit the limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((CLIENTS + 100)) ]; then
  warn "open-files limit is $nofile (hard limit $(ulimit -Hn)): too low for CLIENTS=$CLIENTS"
fi

# Session pooling pins a server connection to each client for its whole session: with more
# clients than pool slots the extra clients would wait for the whole run (and time out).
if [ "$POOL_MODE" = session ] && [ "$CLIENTS" -gt "$POOL_SIZE" ]; then
  warn "session pooling with CLIENTS=$CLIENTS > POOL_SIZE=$POOL_SIZE would starve" \
    "$((CLIENTS - POOL_SIZE)) clients; using POOL_SIZE=$CLIENTS for both proxies"
  POOL_SIZE=$CLIENTS
fi

bench_scratch pglane-bench
report="$tmp/report.md"
pglane_pid=""

# out TEXT...: one line of the report (stdout and the copy --write uses).
out() {
  printf '%s\n' "$*" | tee -a "$report"
}

# --- servers -------------------------------------------------------------------------------
note "starting the sandbox"
"$root/scripts/sandbox.sh" up "$tmp/sandbox" --replicas $((SPLIT * 2)) --no-redis >&2
# shellcheck source=/dev/null
. "$tmp/sandbox/sandbox.env"
export PGPASSWORD=$APP_PASSWORD PGSSLMODE=disable

# Server connections: direct runs use CLIENTS; each proxy keeps up to POOL_SIZE open between runs
# (pglane closes idle ones only when it next needs one, PgBouncer after server_idle_timeout).
max_conn=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$APP_USER" -d "$APP_DB" \
  -c "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int")
need=0
[ -n "${wanted[direct]:-}" ] && need=$((need + CLIENTS))
[ -n "${wanted[pgbouncer125]:-}" ] && need=$((need + POOL_SIZE))
[ -n "${wanted[pgbouncer]:-}" ] && need=$((need + POOL_SIZE))
[ -n "${wanted[pglane]:-}" ] && need=$((need + POOL_SIZE * (SPLIT + 1)))
if [ "$need" -gt $((max_conn - 5)) ]; then
  die "TARGETS=\"$TARGETS\" with CLIENTS=$CLIENTS and pool size $POOL_SIZE ($POOL_MODE pooling) can" \
    "need $need server connections at once, PostgreSQL allows $max_conn: run the targets" \
    "separately (TARGETS=direct, TARGETS=pgbouncer125, TARGETS=pglane, ...) or use POOL_MODE=transaction"
fi

note "pgbench -i -s $SCALE"
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$APP_USER" "$APP_DB" \
  >"$tmp/pgbench-init.log" 2>&1 || { cat "$tmp/pgbench-init.log" >&2; die "pgbench -i failed"; }
if [ "$SPLIT" = 1 ]; then
  # The replicas must have the tables before reads are sent to them.
  lsn=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$APP_USER" -d "$APP_DB" \
    -c "SELECT pg_current_wal_lsn()")
  for rport in $PG_REPLICA_PORTS; do
    caught=f
    for ((i = 0; i < 300; i++)); do
      caught=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$rport" -U "$APP_USER" -d "$APP_DB" \
        -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || true)
      [ "$caught" = t ] && break
      sleep 0.1
    done
    [ "$caught" = t ] || die "replica $rport did not replay the pgbench tables"
  done
fi

declare -A port=() pid=() label=()
targets=()
port[direct]=$PG_PRIMARY_PORT
label[direct]="direct PostgreSQL"

declare -A prepared_ok=()

[ -n "${wanted[direct]:-}" ] && targets+=(direct)
proxies=""
[ -n "${wanted[pgbouncer125]:-}" ] && proxies+=" PgBouncer 1.25"
[ -n "${wanted[pgbouncer]:-}" ] && proxies+="${proxies:+,} PgBouncer 1.18"
[ -n "${wanted[pglane]:-}" ] && proxies+="${proxies:+,} pglane"
[ -n "$proxies" ] && note "starting${proxies} ($POOL_MODE pooling, pool size $POOL_SIZE)"
[ -n "${wanted[pgbouncer125]:-}" ] && start_pgbouncer pgbouncer125 "$pgbouncer125"
[ -n "${wanted[pgbouncer]:-}" ] && start_pgbouncer pgbouncer "$(command -v pgbouncer)"
if [ -n "${wanted[pglane]:-}" ]; then
  start_pglane pglane
  [ -z "${PGLANE_BASE_BIN:-}" ] || start_pglane pglane-base "" "$PGLANE_BASE_BIN"
  if [ "$SPLIT" = 1 ]; then
    readers=""
    for rport in $PG_REPLICA_PORTS; do readers+="${readers:+, }\"127.0.0.1:$rport\""; done
    if [ -n "$SPLIT_SCOPES" ]; then
      for scope in $SPLIT_SCOPES; do
        start_pglane "pglane-split-$scope" "$readers" "$PGLANE_BIN" \
          "$(printf '[routing]\nread_your_writes = "%s"' "$scope")"
      done
    else
      start_pglane pglane-split "$readers"
    fi
  fi
fi
[ ${#targets[@]} -gt 0 ] || die "nothing to measure (TARGETS=\"$TARGETS\")"
# open_files PID: the soft open-files limit of a running process.
open_files() {
  awk '/^Max open files/ { print $4 }' "/proc/$1/limits" 2>/dev/null || echo "?"
}
limits="open-files limit: pgbench $nofile"
for t in pgbouncer125 pgbouncer; do
  if [ -n "${pid[$t]:-}" ]; then limits+=", ${label[$t]} $(open_files "${pid[$t]}")"; fi
done
[ -n "$pglane_pid" ] && limits+=", pglane $(open_files "$pglane_pid")"
note "$limits"

# --- measurement ---------------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)

mkdir -p "$tmp/runs" "$tmp/results" "$tmp/txlog"
failures=()

# bench KIND TARGET MODE CLIENTS THREADS SECONDS ROUND: one pgbench run; appends
# "tps latency_ms cpu_per_1k_tx p99_ms" to $tmp/results/KIND.TARGET.MODE (cpu "-" for direct).
# The per-transaction log goes to $tmp/txlog/[KIND_]TARGET_MODE_ROUND.* (pgbench adds the pid,
# and .N for threads after the first) and is deleted once read.
bench() {
  local kind=$1 target=$2 mode=$3 clients=$4 threads=$5 seconds=$6 round=$7
  local log prefix
  log="$tmp/runs/$kind.$target.$mode.$(date +%s%N).log"
  prefix="$tmp/txlog/${target}_${mode}_${round}"
  [ "$kind" = load ] || prefix="$tmp/txlog/${kind}_${target}_${mode}_${round}"
  rm -f "$prefix".*
  local p=${pid[$target]:-} before=0 after=0
  if [ -n "$p" ]; then before=$(cpu_ticks "$p") || before=""; fi
  if ! pgbench -n "${script_flags[@]}" -M "$mode" -c "$clients" -j "$threads" -T "$seconds" \
    -l --log-prefix="$prefix" \
    -h 127.0.0.1 -p "${port[$target]}" -U "$APP_USER" "$APP_DB" >"$log" 2>&1; then
    rm -f "$prefix".*
    failures+=("$kind $target -M $mode: $(grep -m1 -iE 'error|fatal' "$log" || tail -n1 "$log")")
    warn "pgbench against $target (-M $mode) failed, see the last lines below"
    tail -n 5 "$log" >&2
    return 0
  fi
  if [ -n "$p" ]; then after=$(cpu_ticks "$p") || after=""; fi
  local p99="" logs=("$prefix".*)
  if [ -e "${logs[0]}" ]; then p99=$(pct_ms 99 "${logs[@]}") || p99=""; fi
  rm -f "${logs[@]}"
  local tps lat tx conn cpu="-"
  tps=$(awk '/^tps = / { print $3; exit }' "$log")
  lat=$(awk '/^latency average = / { print $4; exit }' "$log")
  tx=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$log")
  conn=$(awk '/^initial connection time = / { printf "%.1f s", $5 / 1000; exit }' "$log")
  if [ "${tx:-0}" -eq 0 ] || [ -z "$tps" ] || [ -z "$lat" ]; then
    # pgbench's -T clock includes connecting: many clients over SCRAM can use it all up.
    failures+=("$kind $target -M $mode: no transaction completed in $seconds s (connecting $clients clients may take longer: raise DURATION)")
    warn "pgbench against $target (-M $mode): no transaction completed in $seconds s"
    return 0
  fi
  if [ -n "$p" ] && [ -n "$before" ] && [ -n "$after" ] && [ "${tx:-0}" -gt 0 ]; then
    cpu=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v tx="$tx" 'BEGIN { printf "%.5f", t / hz / tx * 1000 }')
  fi
  echo "$tps $lat $cpu ${p99:--}" >>"$tmp/results/$kind.$target.$mode"
  note "  $kind $target -M $mode: $tps tps, $lat ms, p99 ${p99:-?} ms, cpu/1k tx $cpu," \
    "connecting ${conn:-?}"
}

# supported TARGET MODE: PgBouncer before 1.21 (Debian's 1.18) cannot keep protocol-level
# prepared statements in transaction pooling (a statement prepared on one server connection is
# missing on the next); start_pgbouncer sets prepared_ok per PgBouncer target.
supported() {
  [ "$POOL_MODE" = transaction ] && [ "$2" = prepared ] && [ "${prepared_ok[$1]:-1}" = 0 ] && return 1
  return 0
}

if [ "$WARMUP" -gt 0 ]; then
  note "warm-up: ${WARMUP} s against every target"
  for t in "${targets[@]}"; do
    pgbench -n "${script_flags[@]}" -c "$CLIENTS" -j "$JOBS" -T "$WARMUP" -h 127.0.0.1 -p "${port[$t]}" \
      -U "$APP_USER" "$APP_DB" >/dev/null 2>&1 || warn "warm-up against $t failed"
  done
fi

n=${#targets[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  note "round $round of $ROUNDS"
  for ((k = 0; k < n; k++)); do
    t=${targets[(k + round - 1) % n]}
    for mode in "${modes[@]}"; do
      if supported "$t" "$mode"; then
        bench load "$t" "$mode" "$CLIENTS" "$JOBS" "$DURATION" "$round"
      fi
    done
    bench latency "$t" simple 1 1 "$LAT_DURATION" "$round"
  done
done

# --- report --------------------------------------------------------------------------------
# column FILE N: the Nth column of FILE, one value per line ("-" dropped).
column_of() {
  [ -f "$1" ] || return 0
  awk -v n="$2" '$n != "-" { print $n }' "$1"
}
# ref: the PgBouncer the "vs PgBouncer" columns compare with: 1.25 when measured, else 1.18.
ref="" ref_label="PgBouncer"
for t in pgbouncer125 pgbouncer; do
  if [ -n "${pid[$t]:-}" ]; then
    ref=$t ref_label=${label[$t]}
    break
  fi
done

: >"$report"
out "## Machine"
out ""
out "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
out "- CPU: $(nproc) × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
versions="$("$PG_BIN/postgres" --version)"
for t in pgbouncer125 pgbouncer; do
  if [ -n "${pid[$t]:-}" ]; then versions+=", ${label[$t]}"; fi
done
[ -n "$pglane_pid" ] && versions+=", ${label[pglane]}"
out "- $versions"
out ""
out "Each run: \`pgbench -n ${script_flags[*]} -c $CLIENTS -j $JOBS -T $DURATION -l\`, scale $SCALE, sslmode=disable," \
  "$ROUNDS interleaved rounds, medians shown. Proxies: $POOL_MODE pooling, pool size $POOL_SIZE;" \
  "pglane workers = $WORKERS; PgBouncer from 1.21 on: max_prepared_statements = 200." \
  "CPU = proxy process utime+stime per 1,000 transactions." \
  "p99 = 99th percentile of the per-transaction latencies in pgbench's log (-l), per run."

for mode in "${modes[@]}"; do
  out ""
  out "## Throughput, \`-M $mode\`"
  out ""
  out "| target | median tps | median avg latency (ms) | median p99 (ms) | median CPU s / 1k tx |" \
    "tps vs $ref_label | CPU vs $ref_label | tps per round |"
  out "|---|---:|---:|---:|---:|---:|---:|---|"
  ref_tps="" ref_cpu=""
  if [ -n "$ref" ]; then
    ref_tps=$(column_of "$tmp/results/load.$ref.$mode" 1 | median)
    ref_cpu=$(column_of "$tmp/results/load.$ref.$mode" 3 | median)
  fi
  for t in "${targets[@]}"; do
    f="$tmp/results/load.$t.$mode"
    if ! supported "$t" "$mode"; then
      out "| ${label[$t]} | not supported in transaction pooling | | | | | | |"
      continue
    fi
    tps=$(column_of "$f" 1 | median)
    lat=$(column_of "$f" 2 | median)
    cpu=$(column_of "$f" 3 | median)
    p99=$(column_of "$f" 4 | median)
    rounds=$(column_of "$f" 1 | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }')
    cpu_cell="—" cpu_ratio="—"
    if [ "$t" != direct ]; then
      cpu_cell=$(fmt '%.4f' "$cpu")
      cpu_ratio=$(ratio "$cpu" "$ref_cpu")
    fi
    out "| ${label[$t]} | $(fmt '%.0f' "$tps") | $(fmt '%.3f' "$lat") | $(fmt '%.3f' "$p99") | $cpu_cell |" \
      "$(ratio "$tps" "$ref_tps") | $cpu_ratio | $rounds |"
  done
done

out ""
out "## Single client, \`-c 1 -j 1 -M simple\`, ${LAT_DURATION} s"
out ""
out "| target | median latency (ms) | median p99 (ms) | added vs direct (µs) |"
out "|---|---:|---:|---:|"
direct_lat=$(column_of "$tmp/results/latency.direct.simple" 2 | median)
for t in "${targets[@]}"; do
  lat=$(column_of "$tmp/results/latency.$t.simple" 2 | median)
  p99=$(column_of "$tmp/results/latency.$t.simple" 4 | median)
  added="—"
  if [ "$t" != direct ] && { [ -z "$lat" ] || [ -z "$direct_lat" ]; }; then
    added="n/a"
  elif [ "$t" != direct ]; then
    added=$(awk -v a="$lat" -v d="$direct_lat" 'BEGIN { printf "%+.0f", (a - d) * 1000 }')
  fi
  out "| ${label[$t]} | $(fmt '%.3f' "$lat") | $(fmt '%.3f' "$p99") | $added |"
done

if [ "$SPLIT" = 1 ] && [ -n "${pid[pglane-split]:-}" ]; then
  # pglane-split's routing counters (cumulative over warm-up and all runs).
  kill -USR1 "${pid[pglane-split]}"
  sleep 0.5
  counters=$(grep -o 'routing reads_local=.*' "$tmp/pglane-split.log" | tail -n1 || true)
  get() { printf '%s\n' "$counters" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 } END { }' | grep . || echo 0; }
  on_replicas=$(($(get reads_local) + $(get reads_remote)))
  on_writer=$(get reads_writer)
  out ""
  out "## Read/write splitting (\`$BUILTIN\`)"
  out ""
  if [ $((on_replicas + on_writer)) -gt 0 ]; then
    out "- reads served by replicas: $on_replicas of $((on_replicas + on_writer))" \
      "($(awk -v a="$on_replicas" -v b="$((on_replicas + on_writer))" 'BEGIN { printf "%.1f%%", 100 * a / b }'));" \
      "units routed to the writer as writes: $(get writes)"
  else
    out "- no reads routed; units routed to the writer as writes: $(get writes)"
  fi
  out "- statements analysed: $(get analysed) ($(get fast) by the fast path, $(get cache_hits) from the cache, $(get parsed) parsed)"
  for mode in "${modes[@]}"; do
    a=$(column_of "$tmp/results/load.pglane-split.$mode" 3 | median)
    b=$(column_of "$tmp/results/load.pglane.$mode" 3 | median)
    out "- \`-M $mode\`: CPU s / 1k tx with splitting $(fmt '%.4f' "$a"), without $(fmt '%.4f' "$b"): $(ratio "$a" "$b")"
  done
fi

if [ -n "${wanted[pglane]:-}" ] && [ -z "$pglane_pid" ]; then
  out ""
  out "pglane was not measured (binary missing or failed to start)."
fi
if [ ${#failures[@]} -gt 0 ]; then
  out ""
  out "Failed runs (not in the medians):"
  for f in "${failures[@]}"; do out "- $f"; done
fi

if [ "$write" = 1 ]; then
  if [ ${#failures[@]} -gt 0 ]; then
    die "some runs failed: no report written to bench/results/"
  fi
  # The settings that reproduce this run (POOL_SIZE as used, after any session-pooling raise).
  settings=""
  for v in ROUNDS DURATION CLIENTS THREADS SCALE LAT_DURATION WARMUP POOL_MODE POOL_SIZE WORKERS \
    TARGETS MODES BUILTIN SPLIT SPLIT_SCOPES PGLANE_BASE_BIN; do
    val=${!v:-}
    [ -n "$val" ] || continue
    [[ $val != *" "* ]] || val="\"$val\""
    settings+="$v=$val "
  done
  written="bench/results/compare-$(date -u '+%Y-%m-%dT%H%M%SZ').md"
  mkdir -p "$root/bench/results"
  {
    echo "# bench/compare.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo ""
    echo "Command: \`${settings}bench/compare.sh --write\`"
    echo ""
    cat "$report"
  } >"$root/$written"
  note "report written to $written: paste it into bench/RESULTS.md"
fi
[ ${#failures[@]} -eq 0 ]
