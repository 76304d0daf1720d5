#!/usr/bin/env bash
# The result cache measured (issue 12's benchmarks): a report query answered from Redis against
# the same query on PostgreSQL, a cache hit's latency against a direct primary-key lookup, and
# what turning the cache on costs reads it does not answer.
#
#   bench/cache.sh
#
# Starts its own sandbox (primary, two streaming replicas, Redis with TLS), loads pgbench scale
# SCALE and runs two pglane instances, both splitting reads onto the replicas with transaction
# pooling: "cache-on" (with [redis] and [cache], hints on) and "cache-off" (neither). ROUNDS
# interleaved rounds, each:
#   - report query (a join of pgbench_accounts and pgbench_branches with an aggregate, with a
#     /* pglane: cache ttl=600s */ hint): CLIENTS clients for DURATION s direct to the primary,
#     then through cache-on (all hits once the first has filled it);
#   - latency, one client for LAT_DURATION s: the cached report through cache-on (in-process
#     hits) and cache-redis (the same with local_bytes = 0: every hit from Redis), and a
#     primary-key lookup (pgbench -S's statement) direct; p50 and p99 from pgbench's logs;
#   - pgbench -S (CLIENTS_S clients): cache-off, redis-only ([redis] for floors, no cache), then
#     cache-on with pgbench_accounts not listed (the cost of looking at every read), CPU seconds
#     per 1,000 transactions from /proc. SELECT_ONLY=1 runs only these.
# Medians over rounds go to stdout (markdown), progress to stderr.
#
# Environment (defaults): ROUNDS=3 DURATION=10 LAT_DURATION=5 CLIENTS=8 CLIENTS_S=32 SCALE=10
#   WORKERS=2 PGLANE_BIN=build/proxy/pglane KEEP_TMP=1 (keep the scratch dir)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"  # cpu_ticks, pct_ms (median and ratio are redefined below)
root=$(repo_root)
cd "$root"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
LAT_DURATION=${LAT_DURATION:-5}
CLIENTS=${CLIENTS:-8}
CLIENTS_S=${CLIENTS_S:-32}
SCALE=${SCALE:-10}
WORKERS=${WORKERS:-2}
PGLANE_BIN=${PGLANE_BIN:-build/proxy/pglane}
[ -x "$PGLANE_BIN" ] || die "$PGLANE_BIN is not built"
command -v pgbench >/dev/null || die "pgbench is not installed"

tmp=$(mktemp -d /tmp/pglane-cache-bench.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$root/scripts/sandbox.sh" down "$tmp/sandbox" >/dev/null 2>&1 || true
  if [ "${KEEP_TMP:-0}" = 1 ]; then note "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

note "starting the sandbox (two replicas, Redis)"
"$root/scripts/sandbox.sh" up "$tmp/sandbox" --replicas 2 >&2
# shellcheck source=/dev/null
. "$tmp/sandbox/sandbox.env"
export PGPASSWORD=$APP_PASSWORD PGSSLMODE=disable

note "pgbench -i -s $SCALE"
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$APP_USER" "$APP_DB" \
  >"$tmp/init.log" 2>&1 || { cat "$tmp/init.log" >&2; die "pgbench -i failed"; }
lsn=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$APP_USER" -d "$APP_DB" \
  -c "SELECT pg_current_wal_lsn()")
for rport in $PG_REPLICA_PORTS; do
  for ((i = 0; i < 300; i++)); do
    caught=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$rport" -U "$APP_USER" -d "$APP_DB" \
      -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || true)
    [ "$caught" = t ] && break
    sleep 0.1
  done
done

readers=""
for rport in $PG_REPLICA_PORTS; do readers+="${readers:+, }\"127.0.0.1:$rport\""; done
declare -A port pid

# start_pglane NAME EXTRA_TOML
start_pglane() {
  local name=$1 extra=$2 lport
  lport=$(free_port 16532 "$PG_PRIMARY_PORT" "${port[cache-on]:-}" "${port[cache-off]:-}" \
    "${port[redis-only]:-}" "${port[cache-redis]:-}")
  pglane_toml "$lport" transaction 20 "$readers" "$extra" >"$tmp/$name.toml"
  "$PGLANE_BIN" --config "$tmp/$name.toml" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  wait_tcp 127.0.0.1 "$lport" 15 "$!" || { tail "$tmp/$name.log" >&2; die "$name did not start"; }
  port[$name]=$lport
  pid[$name]=$!
}

start_pglane cache-off ""
start_pglane redis-only "$(
  cat <<EOF
[redis]
endpoint = "127.0.0.1:$REDIS_TLS_PORT"
ca_file = "$TLS_CA"
EOF
)"
# cache_toml LOCAL_BYTES
cache_toml() {
  cat <<EOF
[redis]
endpoint = "127.0.0.1:$REDIS_TLS_PORT"
ca_file = "$TLS_CA"
[cache]
enabled = true
tables = ["pgbench_branches"]
hmac_key_file = "$SANDBOX_DIR/cache.key"
local_bytes = $1
EOF
}
start_pglane cache-on "$(cache_toml 16777216)"
start_pglane cache-redis "$(cache_toml 0)"
port[direct]=$PG_PRIMARY_PORT
sleep 1  # the health checker has seen the replicas

cat >"$tmp/report.sql" <<'EOF'
/* pglane: cache ttl=600s */ SELECT b.bid, count(*), sum(a.abalance), avg(a.aid) FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid GROUP BY b.bid ORDER BY b.bid;
EOF
cat >"$tmp/pk.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
EOF

clk_tck=$(getconf CLK_TCK)
mkdir -p "$tmp/results" "$tmp/txlog"
# run NAME TARGET CLIENTS SECONDS PGBENCH_ARGS...: appends "tps cpu_per_1k p50 p99" to results/NAME
run() {
  local name=$1 target=$2 clients=$3 seconds=$4
  shift 4
  local p=${pid[$target]:-} before=0 after=0 log="$tmp/run.log" prefix="$tmp/txlog/$name"
  rm -f "$prefix".*
  [ -z "$p" ] || before=$(cpu_ticks "$p")
  pgbench -n "$@" -c "$clients" -j "$((clients < 2 ? 1 : 2))" -T "$seconds" -l --log-prefix="$prefix" \
    -h 127.0.0.1 -p "${port[$target]}" -U "$APP_USER" "$APP_DB" >"$log" 2>&1 ||
    { tail -5 "$log" >&2; die "pgbench $name failed"; }
  [ -z "$p" ] || after=$(cpu_ticks "$p")
  local tps tx cpu="-" p50 p99
  tps=$(awk '/^tps = / { print $3; exit }' "$log")
  tx=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$log")
  [ -z "$p" ] || cpu=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$tx" 'BEGIN { printf "%.4f", t / hz / n * 1000 }')
  p50=$(pct_ms 50 "$prefix".*)
  p99=$(pct_ms 99 "$prefix".*)
  rm -f "$prefix".*
  echo "$tps $cpu $p50 $p99" >>"$tmp/results/$name"
  note "$name: tps $tps, cpu/1k $cpu, p50 $p50 ms, p99 $p99 ms"
}

# Fill the report's entry once (Redis, and each instance's in-process layer).
for t in cache-on cache-redis; do
  pgbench -n -f "$tmp/report.sql" -t 3 -h 127.0.0.1 -p "${port[$t]}" -U "$APP_USER" "$APP_DB" >/dev/null
done
for ((round = 1; round <= ROUNDS; round++)); do
  note "round $round of $ROUNDS"
  if [ "${SELECT_ONLY:-0}" != 1 ]; then
    run report-direct direct "$CLIENTS" "$DURATION" -f "$tmp/report.sql"
    run report-cached cache-on "$CLIENTS" "$DURATION" -f "$tmp/report.sql"
    run lat-report-cached cache-on 1 "$LAT_DURATION" -f "$tmp/report.sql"
    run lat-report-redis cache-redis 1 "$LAT_DURATION" -f "$tmp/report.sql"
    run lat-pk-direct direct 1 "$LAT_DURATION" -f "$tmp/pk.sql"
    run lat-pk-cache-off cache-off 1 "$LAT_DURATION" -f "$tmp/pk.sql"
  fi
  # Interleaved in a rotating order, so that no target always runs first.
  selects=(cache-off redis-only cache-on)
  for ((k = 0; k < 3; k++)); do
    t=${selects[$(((k + round) % 3))]}
    run "select-$t" "$t" "$CLIENTS_S" "$DURATION" -S
  done
done

# median NAME COLUMN
median() {
  awk -v c="$2" '{ print $c }' "$tmp/results/$1" | LC_ALL=C sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

direct_ms=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$APP_USER" -d "$APP_DB" \
  -c "EXPLAIN (ANALYZE, FORMAT JSON) $(tail -c +30 "$tmp/report.sql" | tr -d ';')" |
  python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)[0]["Execution Time"])')
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo), $(uname -r); pglane $(git -C "$root" describe --always --dirty); pgbench scale $SCALE; $ROUNDS interleaved rounds, medians."
echo
echo "The report query alone takes $direct_ms ms on the primary (EXPLAIN ANALYZE)."
echo
echo "| measure | direct PostgreSQL | pglane, cache hits | ratio |"
echo "|---|---|---|---|"
echo "| report query tps, $CLIENTS clients | $(median report-direct 1) | $(median report-cached 1) | $(ratio "$(median report-cached 1)" "$(median report-direct 1)")x |"
echo "| 1 client p50 ms: cached report vs direct primary-key lookup | $(median lat-pk-direct 3) | $(median lat-report-cached 3) | $(ratio "$(median lat-report-cached 3)" "$(median lat-pk-direct 3)")x |"
echo "| 1 client p99 ms: the same | $(median lat-pk-direct 4) | $(median lat-report-cached 4) | $(ratio "$(median lat-report-cached 4)" "$(median lat-pk-direct 4)")x |"
echo "| 1 client p50 ms, in-process layer off (every hit from Redis) | $(median lat-pk-direct 3) | $(median lat-report-redis 3) | $(ratio "$(median lat-report-redis 3)" "$(median lat-pk-direct 3)")x |"
echo
echo "A primary-key lookup through pglane without the cache: p50 $(median lat-pk-cache-off 3) ms."
echo
echo "| pgbench -S, $CLIENTS_S clients (pgbench_accounts not cached) | tps | CPU s / 1k tx |"
echo "|---|---|---|"
echo "| cache off | $(median select-cache-off 1) | $(median select-cache-off 2) |"
echo "| [redis] only (floors shared, no cache) | $(median select-redis-only 1) | $(median select-redis-only 2) |"
echo "| cache on | $(median select-cache-on 1) | $(median select-cache-on 2) |"
echo "| ratio on / off | $(ratio "$(median select-cache-on 1)" "$(median select-cache-off 1)") | $(ratio "$(median select-cache-on 2)" "$(median select-cache-off 2)") |"
