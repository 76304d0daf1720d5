#!/usr/bin/env bash
# System calls per transaction of pglane and of PgBouncer (1.25 and 1.18) on the same workload.
#
#   bench/syscalls.sh
#
# Starts its own sandbox (primary only, no Redis) and loads pgbench scale SCALE, as
# bench/compare.sh does, and starts the proxies with compare.sh's configs (bench/lib.sh). For
# each proxy in turn: a short warm-up (the pool's server connections opened), then
# `strace -c -f -p PID` (every thread of the proxy) attached for one fixed-size run,
# `pgbench -n -S -M MODE -c CLIENTS -j THREADS -t TX`, and detached after it with SIGINT. Each
# system call's count is divided by the transactions pgbench completed (CLIENTS × TX); the
# clients' logins are in the counts, spread over all those transactions. strace slows the traced
# proxy a lot, so the run's tps means nothing; the counts per transaction are the point.
# pglane's counts include its health checker's (compare.sh's config: a check every 100 ms),
# which follow the clock, not the transactions: a few calls per second of the traced run.
# PgBouncer before 1.21 is skipped for MODE=prepared in transaction pooling (not supported).
# Markdown to stdout: one row per system call (sorted by pglane's count), a total row and the
# machine facts; progress to stderr. Installs strace with apt-get when it is missing.
#
# Environment (defaults):
#   TX=2000 (transactions per client)   CLIENTS=8   THREADS=2   MODE=simple (pgbench -M)
#   POOL_MODE=transaction (or session)  POOL_SIZE=20   WORKERS=2 (pglane threads)   SCALE=10
#   BUILTIN=select-only (or tpcb-like)  WARMUP_TX=100 (per client, untraced)
#   TARGETS="pglane pgbouncer125 pgbouncer" (any subset)   PGLANE_BIN=build/proxy/pglane
#   PGBOUNCER125_BIN=/opt/pgbouncer-1.25/bin/pgbouncer (built as in compare.sh when missing)
#   KEEP_TMP=1 keeps the scratch dir (strace summaries, logs)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
root=$(repo_root)
cd "$root"

[ $# -eq 0 ] || { echo "usage: bench/syscalls.sh (settings in the environment)" >&2; exit 2; }

TX=${TX:-2000}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
MODE=${MODE:-simple}
POOL_MODE=${POOL_MODE:-transaction}
POOL_SIZE=${POOL_SIZE:-20}
WORKERS=${WORKERS:-2}
SCALE=${SCALE:-10}
WARMUP_TX=${WARMUP_TX:-100}
TARGETS=${TARGETS:-pglane pgbouncer125 pgbouncer}
PGLANE_BIN=${PGLANE_BIN:-$root/build/proxy/pglane}
BUILTIN=${BUILTIN:-select-only}
case $BUILTIN in
  select-only) script_flags=(-S) ;;
  tpcb-like) script_flags=(-b tpcb-like) ;;
  *) die "BUILTIN must be select-only or tpcb-like" ;;
esac
case $MODE in simple | extended | prepared) ;; *) die "MODE must be simple, extended or prepared" ;; esac
case $POOL_MODE in session | transaction) ;; *) die "POOL_MODE must be session or transaction" ;; esac
for v in TX CLIENTS THREADS POOL_SIZE WORKERS SCALE WARMUP_TX; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
if [ "$TX" -lt 1 ] || [ "$CLIENTS" -lt 1 ] || [ "$THREADS" -lt 1 ]; then
  die "TX, CLIENTS and THREADS must be at least 1"
fi
declare -A wanted=()
for t in $TARGETS; do
  case $t in
    pglane | pgbouncer125 | pgbouncer) wanted[$t]=1 ;;
    *) die "TARGETS: unknown target '$t' (pglane, pgbouncer125, pgbouncer)" ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || die "TARGETS is empty"
JOBS=$((THREADS < CLIENTS ? THREADS : CLIENTS))
command -v pgbench >/dev/null || die "pgbench not found (run scripts/bootstrap.sh)"
if ! command -v strace >/dev/null; then
  note "installing strace"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >&2 || die "could not install strace"
fi
if [ -n "${wanted[pgbouncer]:-}" ] && ! command -v pgbouncer >/dev/null; then
  warn "pgbouncer not found (run scripts/bootstrap.sh): target pgbouncer skipped"
  unset 'wanted[pgbouncer]'
fi
pgbouncer125=""
if [ -n "${wanted[pgbouncer125]:-}" ] && ! pgbouncer125=$(pgbouncer125_bin); then
  warn "PgBouncer 1.25 not available: target pgbouncer125 skipped"
  unset 'wanted[pgbouncer125]'
fi
if [ "$POOL_MODE" = session ] && [ "$CLIENTS" -gt "$POOL_SIZE" ]; then
  warn "session pooling with CLIENTS=$CLIENTS > POOL_SIZE=$POOL_SIZE: using POOL_SIZE=$CLIENTS"
  POOL_SIZE=$CLIENTS
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)

strace_pid=""
# bench_exit's hook: a tracer still attached is detached before the proxies stop.
bench_on_exit() {
  if [ -n "$strace_pid" ]; then
    kill -INT "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
  fi
}
bench_scratch pglane-syscalls

# --- servers -------------------------------------------------------------------------------
bench_sandbox "$SCALE"

declare -A port=() pid=() label=() prepared_ok=()
targets=()
note "starting the proxies ($POOL_MODE pooling, pool size $POOL_SIZE)"
[ -n "${wanted[pglane]:-}" ] && start_pglane pglane
[ -n "${wanted[pgbouncer125]:-}" ] && start_pgbouncer pgbouncer125 "$pgbouncer125"
[ -n "${wanted[pgbouncer]:-}" ] && start_pgbouncer pgbouncer "$(command -v pgbouncer)"
[ ${#targets[@]} -gt 0 ] || die "no proxy to measure (TARGETS=\"$TARGETS\")"

# --- measurement ---------------------------------------------------------------------------
# traced PID TRACER: true when every thread of PID is traced by process TRACER.
traced() {
  local status
  for status in /proc/"$1"/task/*/status; do
    [ "$(awk '/^TracerPid:/ { print $2 }' "$status" 2>/dev/null)" = "$2" ] || return 1
  done
}

declare -A txs=()
failures=()
skipped=()
# measure TARGET: warm-up, then the traced run; the summary goes to $tmp/TARGET.strace
# ("name calls errors" lines) and the transactions completed to txs[TARGET].
measure() {
  local t=$1 p=${pid[$1]} log="$tmp/$1.pgbench.log"
  local conn=(-h 127.0.0.1 -p "${port[$t]}" -U "$APP_USER" "$APP_DB")
  if [ "$POOL_MODE" = transaction ] && [ "$MODE" = prepared ] && [ "${prepared_ok[$t]:-1}" = 0 ]; then
    skipped+=("${label[$t]}: -M prepared is not supported in transaction pooling")
    warn "${label[$t]} does not support -M prepared in transaction pooling: skipped"
    return 0
  fi
  if [ "$WARMUP_TX" -gt 0 ]; then
    pgbench -n "${script_flags[@]}" -M "$MODE" -c "$CLIENTS" -j "$JOBS" -t "$WARMUP_TX" "${conn[@]}" \
      >"$tmp/$t.warmup.log" 2>&1 || warn "warm-up against $t failed"
  fi
  note "tracing ${label[$t]} (pid $p): $((CLIENTS * TX)) transactions"
  strace -c -f -q -U name,calls,errors -o "$tmp/$t.strace" -p "$p" 2>"$tmp/$t.strace.err" &
  strace_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    traced "$p" "$strace_pid" && break
    kill -0 "$strace_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! traced "$p" "$strace_pid"; then
    cat "$tmp/$t.strace.err" >&2
    die "strace could not attach to $t (pid $p)"
  fi
  local ok=1
  pgbench -n "${script_flags[@]}" -M "$MODE" -c "$CLIENTS" -j "$JOBS" -t "$TX" "${conn[@]}" \
    >"$log" 2>&1 || ok=0
  kill -INT "$strace_pid"
  wait "$strace_pid" || true
  strace_pid=""
  local tx
  tx=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$log")
  if [ "$ok" = 0 ] || [ "${tx:-0}" -eq 0 ]; then
    failures+=("$t: pgbench failed: $(grep -m1 -iE 'error|fatal' "$log" || tail -n1 "$log")")
    warn "pgbench against $t failed"
    tail -n 5 "$log" >&2
    return 0
  fi
  [ -s "$tmp/$t.strace" ] || die "strace wrote no summary for $t: $(cat "$tmp/$t.strace.err")"
  txs[$t]=$tx
  note "  $t: $tx transactions, $(awk '/^tps = / { printf "%.0f", $3; exit }' "$log") tps under strace"
}

for t in "${targets[@]}"; do measure "$t"; done

# --- report --------------------------------------------------------------------------------
# counts: "target syscall calls calls_per_tx" for every measured target, from strace's summary
# table (the lines between the header's dashes and the total's; the total is summed here).
counts="$tmp/counts"
: >"$counts"
measured=()
for t in "${targets[@]}"; do
  [ -n "${txs[$t]:-}" ] || continue
  measured+=("$t")
  awk -v t="$t" -v n="${txs[$t]}" '/^-+ / { d++; next }
    d == 1 && NF >= 2 && $2 ~ /^[0-9]+$/ { printf "%s %s %s %.9f\n", t, $1, $2, $2 / n }' \
    "$tmp/$t.strace" >>"$counts"
done
[ ${#measured[@]} -gt 0 ] || die "no proxy was measured"
ref=""
for t in pgbouncer125 pgbouncer; do
  if [ -n "${txs[$t]:-}" ]; then ref=$t; break; fi
done

# per_tx CALLS TX: calls per transaction, 3 decimals ("<0.001" for fewer, "0" for none).
per_tx() {
  awk -v c="$1" -v n="$2" 'BEGIN {
    v = c / n
    if (c == 0) print "0"; else if (v < 0.0005) print "<0.001"; else printf "%.3f", v }'
}
# count TARGET SYSCALL: its calls (0 when it made none).
count() {
  awk -v t="$1" -v s="$2" '$1 == t && $2 == s { c = $3 } END { print c + 0 }' "$counts"
}

# Row order: pglane's calls per transaction (the first measured target's when pglane was not),
# then the highest of the others', then the name.
mapfile -t syscalls < <(awk -v k="${measured[0]}" '
  { seen[$2] = 1; if ($1 == k) c[$2] = $4; else if ($4 > o[$2]) o[$2] = $4 }
  END { for (s in seen) printf "%s %.9f %.9f\n", s, c[s], o[s] }' "$counts" |
  LC_ALL=C sort -k2,2gr -k3,3gr -k1,1 | awk '{ print $1 }')

header="| system call |"
rule="|---|"
for t in "${measured[@]}"; do
  header+=" ${label[$t]} |"
  rule+="---:|"
done
if [ -n "$ref" ] && [ -n "${txs[pglane]:-}" ]; then
  header+=" pglane vs ${label[$ref]} |"
  rule+="---:|"
fi

echo "## System calls per transaction"
echo ""
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- CPU: $(nproc) × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
versions="$("$PG_BIN/postgres" --version)"
for t in "${measured[@]}"; do versions+=", ${label[$t]}"; done
versions+=", $(strace -V | head -n1)"
echo "- $versions"
echo ""
echo "Each proxy: \`strace -c -f -p PID\` attached for one \`pgbench -n ${script_flags[*]} -M $MODE" \
  "-c $CLIENTS -j $JOBS -t $TX\` run ($((CLIENTS * TX)) transactions, the clients' logins" \
  "included), after a $WARMUP_TX-transaction-per-client warm-up; scale $SCALE, sslmode=disable." \
  "Proxies: $POOL_MODE pooling, pool size $POOL_SIZE; pglane workers = $WORKERS;" \
  "PgBouncer from 1.21 on: max_prepared_statements = 200. Cells: calls / transactions completed."
echo ""
echo "$header"
echo "$rule"
declare -A total=()
for t in "${measured[@]}"; do total[$t]=0; done
for s in "${syscalls[@]}"; do
  row="| $s |"
  for t in "${measured[@]}"; do
    c=$(count "$t" "$s")
    total[$t]=$((total[$t] + c))
    row+=" $(per_tx "$c" "${txs[$t]}") |"
  done
  if [ -n "$ref" ] && [ -n "${txs[pglane]:-}" ]; then
    a=$(awk -v c="$(count pglane "$s")" -v n="${txs[pglane]}" 'BEGIN { printf "%.9f", c / n }')
    b=$(awk -v c="$(count "$ref" "$s")" -v n="${txs[$ref]}" 'BEGIN { printf "%.9f", c / n }')
    row+=" $(ratio "$a" "$b") |"
  fi
  echo "$row"
done
row="| **total** |"
for t in "${measured[@]}"; do row+=" **$(per_tx "${total[$t]}" "${txs[$t]}")** |"; done
if [ -n "$ref" ] && [ -n "${txs[pglane]:-}" ]; then
  a=$(awk -v c="${total[pglane]}" -v n="${txs[pglane]}" 'BEGIN { printf "%.9f", c / n }')
  b=$(awk -v c="${total[$ref]}" -v n="${txs[$ref]}" 'BEGIN { printf "%.9f", c / n }')
  row+=" **$(ratio "$a" "$b")** |"
fi
echo "$row"

if [ $((${#skipped[@]} + ${#failures[@]})) -gt 0 ]; then
  echo ""
  echo "Not measured:"
  for f in "${skipped[@]}" "${failures[@]}"; do echo "- $f"; done
fi
[ ${#failures[@]} -eq 0 ]
