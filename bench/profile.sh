#!/usr/bin/env bash
# Where a proxy's CPU goes under pgbench: `perf record` (software clock sampling, call graphs)
# on the proxy for one run, then the hottest symbols, kernel and user, and the share of samples
# in lock and wake-up paths (what two workers would contend on).
#
#   bench/profile.sh
#
# Starts its own sandbox (primary only, no Redis), loads pgbench scale SCALE and starts the
# target with compare.sh's config (bench/lib.sh). A warm-up run, then `perf record -F FREQ -g`
# attached to every thread of the target for DURATION seconds of
# `pgbench -n -S -M MODE -c CLIENTS -j THREADS -T DURATION`. Markdown on stdout.
#
# Environment (defaults):
#   TARGET=pglane (or pgbouncer125)   MODE=simple   CLIENTS=32   THREADS=2   DURATION=10
#   POOL_MODE=transaction   POOL_SIZE=20   WORKERS=2   SCALE=10   FREQ=1999   TOP=40
#   PGLANE_BIN=build/proxy/pglane   KEEP_TMP=1 keeps perf.data and the logs
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
root=$(repo_root)
cd "$root"

[ $# -eq 0 ] || { echo "usage: bench/profile.sh (settings in the environment)" >&2; exit 2; }

TARGET=${TARGET:-pglane}
MODE=${MODE:-simple}
CLIENTS=${CLIENTS:-32}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10}
POOL_MODE=${POOL_MODE:-transaction}
POOL_SIZE=${POOL_SIZE:-20}
WORKERS=${WORKERS:-2}
SCALE=${SCALE:-10}
FREQ=${FREQ:-1999}
TOP=${TOP:-40}
PGLANE_BIN=${PGLANE_BIN:-$root/build/proxy/pglane}
for v in CLIENTS THREADS DURATION POOL_SIZE WORKERS SCALE FREQ TOP; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
case $TARGET in pglane | pgbouncer125) ;; *) die "TARGET must be pglane or pgbouncer125" ;; esac
command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"
command -v pgbench >/dev/null || die "pgbench not found (run scripts/bootstrap.sh)"
ulimit -n 65536 2>/dev/null || true
nofile=$(ulimit -n)

bench_scratch pglane-profile

bench_sandbox "$SCALE"

# (prepared_ok: filled by start_pgbouncer)
# shellcheck disable=SC2034
declare -A port=() pid=() label=() prepared_ok=()
targets=()
if [ "$TARGET" = pglane ]; then
  start_pglane pglane
else
  bin=$(pgbouncer125_bin) || die "PgBouncer 1.25 not available"
  start_pgbouncer pgbouncer125 "$bin"
fi
[ ${#targets[@]} -eq 1 ] || die "$TARGET did not start"
p=${pid[$TARGET]}
conn=(-h 127.0.0.1 -p "${port[$TARGET]}" -U "$APP_USER" "$APP_DB")
jobs=$((THREADS < CLIENTS ? THREADS : CLIENTS))

note "warm-up"
pgbench -n -S -M "$MODE" -c "$CLIENTS" -j "$jobs" -T 3 "${conn[@]}" >"$tmp/warmup.log" 2>&1 ||
  { tail "$tmp/warmup.log" >&2; die "warm-up failed"; }
note "profiling ${label[$TARGET]} (pid $p) for ${DURATION} s"
perf record -q -F "$FREQ" -g -p "$p" -o "$tmp/perf.data" -- sleep "$((DURATION + 1))" \
  >"$tmp/perf.log" 2>&1 &
perf_pid=$!
sleep 0.5
pgbench -n -S -M "$MODE" -c "$CLIENTS" -j "$jobs" -T "$DURATION" "${conn[@]}" >"$tmp/run.log" 2>&1 ||
  { tail "$tmp/run.log" >&2; die "pgbench failed"; }
wait "$perf_pid" || { cat "$tmp/perf.log" >&2; die "perf record failed"; }
tps=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$tmp/run.log")

report() { perf report -i "$tmp/perf.data" --stdio --no-children -q "$@" 2>/dev/null; }
total=$(perf report -i "$tmp/perf.data" --stdio -q --sort comm 2>/dev/null | awk '{ s += $1 } END { print s }')
echo "## ${label[$TARGET]}: \`pgbench -S -M $MODE -c $CLIENTS\`, $POOL_MODE pooling, pool $POOL_SIZE, ${DURATION} s, $tps tps"
echo
echo "Samples by thread (\`perf report --sort tid\`):"
echo
echo '```'
report --sort tid -g none | grep -v '^$' | head -10
echo '```'
echo
echo "Kernel against user (\`--sort dso\`):"
echo
echo '```'
report --sort dso -g none | grep -v '^$' | head -12
echo '```'
echo
echo "Top $TOP symbols (self):"
echo
echo '```'
report --sort sym -g none | grep -v '^$' | head -"$TOP"
echo '```'
echo
echo "Locks and wake-ups (self %, summed over matching symbols):"
echo
echo '| symbols | % of samples |'
echo '|---|---:|'
for pat in 'futex|mutex|spin_lock|_raw_spin' 'try_to_wake_up|schedule|finish_task_switch|__switch_to' \
  'epoll|ep_poll|ep_send' 'tcp_|ip_|__dev_queue|loopback|net_rx|__napi'; do
  pct=$(report --sort sym -g none | { grep -E "$pat" || true; } |
    awk '{ gsub("%", "", $1); s += $1 } END { printf "%.1f", s }')
  echo "| \`$pat\` | $pct |"
done
echo
echo "Machine: $(nproc) cores, $(uname -r), $(date -u +%F). Total samples: ${total:-?}."
