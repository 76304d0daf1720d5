#!/usr/bin/env bash
# Failover benchmark: the primary is killed and its replica promoted while a client writes and
# another reads, through pglane and through the reference (libpq multi-host with
# target_session_attrs=read-write / prefer-standby, reconnecting in the client). Each round runs
# on a fresh sandbox (a primary and one synchronous replica: Aurora acknowledges only durable
# commits, so acknowledged writes can survive the promotion); the old primary is then restarted
# as a standalone writer on its old timeline. bench/failover.py is one round.
#
#   bench/failover.sh            results (markdown) to stdout, progress to stderr
#
# Environment (defaults): ROUNDS=3  TARGETS="pglane libpq"  AURORA=0 (1: the sandbox's Aurora
# stand-in and pglane's aurora topology source)  PGLANE_BIN=build/proxy/pglane
# FAILOVER_INTERVAL_MS=100 (pglane's health.failover_interval_ms)  KEEP_TMP=1 keeps logs.
# SERIES_DIR=/tmp/pglane-failover-series/<UTC time>[-aurora]: each round's per-100 ms time series
# (failover.py --series) goes there as TARGET-ROUND.csv, for bench/plot.sh; SERIES_DIR= skips it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
root=$(repo_root)
cd "$root"

ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-pglane libpq}
AURORA=${AURORA:-0}
PGLANE_BIN=${PGLANE_BIN:-build/proxy/pglane}
FAILOVER_INTERVAL_MS=${FAILOVER_INTERVAL_MS:-100}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
[ "$AURORA" != 1 ] || stamp+=-aurora
SERIES_DIR=${SERIES_DIR-/tmp/pglane-failover-series/$stamp}
[ -x "$PGLANE_BIN" ] || die "$PGLANE_BIN is not built (cmake --build build)"
/usr/bin/python3 -c 'import psycopg' 2>/dev/null || die "python3-psycopg is missing (scripts/bootstrap.sh)"
[ -z "$SERIES_DIR" ] || mkdir -p "$SERIES_DIR"

tmp=$(mktemp -d /tmp/pglane-failover.XXXXXX)
chmod 755 "$tmp"
pglane_pid=""
cleanup() {
  [ -z "$pglane_pid" ] || stop_pid "$pglane_pid" 5
  "$root/scripts/sandbox.sh" down "$tmp/sb" >/dev/null 2>&1 || true
  if [ "${KEEP_TMP:-0}" = 1 ]; then note "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

flags=()
[ "$AURORA" = 1 ] && flags=(--aurora=local)

# round TARGET N: one fresh sandbox, one scenario; prints failover.py's result line.
round() {
  local target=$1 series=()
  [ -z "$SERIES_DIR" ] || series=(--series "$SERIES_DIR/$target-$2.csv")
  SANDBOX_PORT_BASE=28432 "$root/scripts/sandbox.sh" up "$tmp/sb" --replicas 1 --no-redis \
    "${flags[@]}" >"$tmp/sandbox.log" 2>&1 || die "sandbox.sh up failed: $(tail -5 "$tmp/sandbox.log")"
  # shellcheck source=/dev/null
  . "$tmp/sb/sandbox.env"
  PGPASSWORD=$PG_SUPERUSER_PASSWORD "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$PG_PRIMARY_PORT user=postgres dbname=app sslmode=require" \
    >>"$tmp/sandbox.log" <<'EOF'
CREATE TABLE fo_writes (id bigint PRIMARY KEY);
GRANT ALL ON fo_writes TO pglane_app;
ALTER SYSTEM SET synchronous_standby_names = '*';
ALTER SYSTEM SET synchronous_commit = on;
SELECT pg_reload_conf();
EOF
  local port=""
  if [ "$target" = pglane ]; then
    # shellcheck disable=SC2086 # a space-separated list of ports
    port=$(free_port 16632 "$PG_PRIMARY_PORT" $PG_REPLICA_PORTS)
    local regions
    if [ "$AURORA" = 1 ]; then
      regions="[[regions]]
name = \"local\"
source = \"aurora\"
cluster_endpoint = \"127.0.0.1:$PG_PRIMARY_PORT\"
[regions.instances]
instance-1 = \"127.0.0.1:$PG_PRIMARY_PORT\"
instance-2 = \"127.0.0.1:${PG_REPLICA_PORTS%% *}\""
    else
      regions="[[regions]]
name = \"local\"
writer = \"127.0.0.1:$PG_PRIMARY_PORT\"
readers = [\"127.0.0.1:${PG_REPLICA_PORTS%% *}\"]"
    fi
    cat >"$tmp/pglane.toml" <<EOF
[proxy]
listen_port = $port
workers = 2
users_file = "$SANDBOX_DIR/users.txt"
[tls]
mode = "disable"
[backend]
user = "$APP_USER"
password_file = "$SANDBOX_DIR/backend_password"
[backend.tls]
mode = "require"
[pool]
mode = "transaction"
size = 5
[health]
interval_ms = 1000
timeout_ms = 1000
failover_interval_ms = $FAILOVER_INTERVAL_MS
$regions
EOF
    "$PGLANE_BIN" --config "$tmp/pglane.toml" >"$tmp/pglane-$target.log" 2>&1 &
    pglane_pid=$!
    wait_tcp 127.0.0.1 "$port" 15 "$pglane_pid" || die "pglane did not start: $(tail -5 "$tmp/pglane-$target.log")"
  fi
  /usr/bin/python3 "$here/failover.py" "${series[@]}" "$target" "$tmp/sb/sandbox.env" "$port"
  if [ -n "$pglane_pid" ]; then
    stop_pid "$pglane_pid" 5
    pglane_pid=""
  fi
  "$root/scripts/sandbox.sh" down "$tmp/sb" >/dev/null 2>&1
}

[ -z "$SERIES_DIR" ] || note "per-100 ms time series go to $SERIES_DIR (bench/plot.sh charts them)"
declare -A results
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order so that no target always runs first.
  read -r -a order <<<"$TARGETS"
  for ((k = 0; k < ${#order[@]}; k++)); do
    target=${order[$(((k + r) % ${#order[@]}))]}
    line=$(round "$target" "$r")
    note "round $r $target: $line"
    results[$target]+="$line"$'\n'
  done
done

# median KEY TARGET: the median of KEY over the target's rounds.
median() {
  printf '%s' "${results[$2]}" | grep -o "$1=-\?[0-9]*" | cut -d= -f2 | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'
}
# total KEY TARGET: the sum over rounds.
total() {
  printf '%s' "${results[$2]}" | grep -o "$1=[0-9]*" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }'
}

echo "Failover, $ROUNDS rounds per target on $(nproc) cores ($(uname -r)), $(date -u +%F):" \
  "primary stopped with pg_ctl -m immediate, replica promoted 300 ms later, synchronous" \
  "replication$([ "$AURORA" = 1 ] && echo ", Aurora stand-in and pglane's aurora source")."
echo
echo "| target | first write after \`pg_ctl promote\` started (median ms) | ... after the promotion was visible (median ms) | failed reads (median) | write errors (median) | acknowledged writes lost (all rounds) | writes that reached the old primary (all rounds) |"
echo "|---|---|---|---|---|---|---|"
for target in $TARGETS; do
  echo "| $target | $(median promote_ms "$target") | $(median outage_ms "$target") | $(median failed_reads "$target") | $(median write_errors "$target") | $(total lost "$target") | $(total old_writer "$target") |"
done
