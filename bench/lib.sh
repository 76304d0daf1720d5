# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034,SC2004  # the caller declares and reads the globals below
# Helpers shared by the benchmark scripts: bench/compare.sh, bench/syscalls.sh and
# bench/profile.sh use most of them, bench/cache.sh the measurement ones (cpu_ticks, pct_ms; it has its own median and ratio,
# with other arguments). Source it after scripts/lib.sh; it defines functions only.
#
# pgbouncer125_bin, start_pgbouncer and start_pglane work on the caller's globals:
#   tmp                  scratch dir, mode 755 (PgBouncer runs as postgres and keeps its files
#                        in tmp/NAME)
#   root                 the repository; nofile: the open-files limit PgBouncer gets
#   APP_USER APP_PASSWORD APP_DB PG_PRIMARY_PORT SANDBOX_DIR   from the sandbox's sandbox.env
#   POOL_MODE POOL_SIZE CLIENTS WORKERS PGLANE_BIN
#   declare -A port pid label   per started target: port, process id, name in the report
#   declare -A prepared_ok      per PgBouncer target: 1 when it keeps protocol-level prepared
#                               statements in transaction pooling (max_prepared_statements), else 0
#   targets=() pgbouncer_pids=() pglane_pids=()   targets started in order; processes to stop
#   pglane_pid                  the last pglane started

# --- set-up and clean-up ------------------------------------------------------------------------

# bench_sandbox SCALE: the sandbox in $tmp/sandbox (primary only, no Redis), its sandbox.env
# sourced (APP_* and PG_* globals), PGPASSWORD and PGSSLMODE=disable exported, and pgbench's
# tables loaded at scale SCALE. Dies when pgbench -i fails.
bench_sandbox() {
  note "starting the sandbox"
  "$root/scripts/sandbox.sh" up "$tmp/sandbox" --replicas 0 --no-redis >&2
  # shellcheck source=/dev/null
  . "$tmp/sandbox/sandbox.env"
  export PGPASSWORD=$APP_PASSWORD PGSSLMODE=disable
  note "pgbench -i -s $1"
  pgbench -i -q -s "$1" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$APP_USER" "$APP_DB" \
    >"$tmp/pgbench-init.log" 2>&1 || { cat "$tmp/pgbench-init.log" >&2; die "pgbench -i failed"; }
}

# bench_scratch NAME: $tmp, a new scratch dir /tmp/NAME.XXXXXX (mode 755: the postgres user,
# running PgBouncer and PostgreSQL, must reach its subdirectories), no proxies listed yet, and
# traps that clean up on every exit (bench_exit). A caller with more to stop first (a tracer)
# defines bench_on_exit.
bench_scratch() {
  tmp=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$tmp"
  pglane_pids=()
  pgbouncer_pids=()
  trap bench_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bench_exit: the EXIT trap: bench_on_exit when defined, then every proxy started (pglane_pids,
# pgbouncer_pids) and the sandbox stopped, and $tmp removed unless KEEP_TMP=1. Keeps the exit
# status.
bench_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if declare -F bench_on_exit >/dev/null; then bench_on_exit; fi
  local p
  for p in "${pglane_pids[@]}" "${pgbouncer_pids[@]}"; do stop_pid "$p" 10; done
  "$root/scripts/sandbox.sh" down "$tmp/sandbox" >/dev/null 2>&1 || true
  if [ "${KEEP_TMP:-0}" = 1 ]; then note "logs kept in $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}

# --- measurement -----------------------------------------------------------------------------

# cpu_ticks PID: user + system time of the whole process (all threads), in clock ticks.
# Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the command name.
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086  # split the fields on purpose
  set -- $stat
  echo $((${12} + ${13}))
}

# pct_ms P FILE...: the P-th percentile (nearest rank) of the latencies in pgbench
# per-transaction logs, in ms with 3 decimals; nothing when the logs hold no transactions. Log
# lines are "client_id transaction_no time script_no time_epoch time_us", time = latency in µs.
# The last awk reads to the end: exiting early would kill sort with SIGPIPE, which pipefail
# reports. sort spills to $tmp (or $TMPDIR) for long logs.
pct_ms() {
  local p=$1 n rank
  shift
  n=$(cat -- "$@" | wc -l)
  [ "$n" -gt 0 ] || return 0
  rank=$(((n * p + 99) / 100))  # ceil(p n / 100)
  awk '{ print $3 }' "$@" | LC_ALL=C sort -n -S 64M -T "${tmp:-${TMPDIR:-/tmp}}" |
    awk -v r="$rank" 'NR == r { v = $1 } END { if (v != "") printf "%.3f", v / 1000 }'
}

# median: of the numbers on stdin; empty when there are none.
median() {
  sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) exit
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# fmt FORMAT VALUE: printf, or "n/a" for an empty value.
fmt() {
  if [ -z "$2" ]; then echo "n/a"; else awk -v v="$2" -v f="$1" 'BEGIN { printf f, v }'; fi
}

# ratio A B: A/B as "1.23×", "n/a" when either is missing or B is zero.
ratio() {
  if [ -z "$1" ] || [ -z "$2" ]; then
    echo "n/a"
  else
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'
  fi
}

# --- proxies -------------------------------------------------------------------------------

# version_ge A B: true when version A >= version B (sort -V order).
version_ge() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# pgbouncer_version BIN: "1.25.2" from `BIN --version`.
pgbouncer_version() {
  "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }'
}

# pgbouncer125_bin: the path of PgBouncer 1.25 (PGBOUNCER125_BIN, default
# /opt/pgbouncer-1.25/bin/pgbouncer). When it is missing and $root/../shared/anchors/
# build-pgbouncer.sh exists, that script builds it (as root, a few minutes; it prints the path).
# Otherwise, or when the build fails, fails with a warning.
pgbouncer125_bin() {
  local bin=${PGBOUNCER125_BIN:-/opt/pgbouncer-1.25/bin/pgbouncer}
  local builder="$root/../shared/anchors/build-pgbouncer.sh" built
  if [ -x "$bin" ]; then
    echo "$bin"
    return 0
  fi
  if [ ! -f "$builder" ]; then
    warn "$bin not found and no $builder to build it"
    return 1
  fi
  if [[ $bin != */bin/pgbouncer ]]; then
    warn "$bin not found; build-pgbouncer.sh only installs PREFIX/bin/pgbouncer"
    return 1
  fi
  note "$bin not found: building it with ${builder#"$root/"} (a few minutes)"
  if ! built=$(bash "$builder" "${bin%/bin/pgbouncer}" | tail -n1) || [ ! -x "$built" ]; then
    warn "building PgBouncer 1.25 failed"
    return 1
  fi
  echo "$built"
}

# start_pgbouncer NAME BIN: PgBouncer BIN as target NAME, config and logs in $tmp/NAME, on a
# free port from 16432, in front of the primary with POOL_MODE and POOL_SIZE. Versions from 1.21
# on get max_prepared_statements = 200 (protocol-level prepared statements in transaction
# pooling). Dies when it does not start.
# PgBouncer refuses to run as root: as root it runs as postgres, from a directory it owns.
# It logs in to PostgreSQL with SCRAM, which needs the plaintext password in auth_file.
start_pgbouncer() {
  local name=$1 bin=$2 dir="$tmp/$1" bport version prepared=""
  version=$(pgbouncer_version "$bin")
  [ -n "$version" ] || die "$bin --version failed"
  prepared_ok[$name]=0
  if version_ge "$version" 1.21; then
    prepared="max_prepared_statements = 200"
    prepared_ok[$name]=1
  fi
  bport=$(free_port 16432 "$PG_PRIMARY_PORT" "${port[@]}")
  mkdir -p "$dir"
  printf '"%s" "%s"\n' "$APP_USER" "$APP_PASSWORD" >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
$APP_DB = host=127.0.0.1 port=$PG_PRIMARY_PORT dbname=$APP_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = $POOL_MODE
default_pool_size = $POOL_SIZE
max_client_conn = $((CLIENTS + 100))
client_tls_sslmode = disable
server_tls_sslmode = disable
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
$prepared
EOF
  chmod 700 "$dir"
  chmod 600 "$dir/userlist.txt" "$dir/pgbouncer.ini"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$dir"
    # runuser's PAM session (pam_limits) resets the soft open-files limit: raise it again.
    # shellcheck disable=SC2016  # expanded by the inner bash
    (cd / && runuser -u postgres -- bash -c \
      'ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
       exec "$2" -d -q "$3"' _ "$nofile" "$bin" "$dir/pgbouncer.ini")
  else
    "$bin" -d -q "$dir/pgbouncer.ini"
  fi
  local i bpid
  for ((i = 0; i < 50; i++)); do
    [ -s "$dir/pgbouncer.pid" ] && break
    sleep 0.1
  done
  bpid=$(cat "$dir/pgbouncer.pid" 2>/dev/null || true)
  [ -z "$bpid" ] || pgbouncer_pids+=("$bpid")
  if [ -z "$bpid" ] || ! wait_tcp 127.0.0.1 "$bport" 10 "$bpid"; then
    tail "$dir/pgbouncer.log" >&2
    die "PgBouncer $version ($name) did not start"
  fi
  targets+=("$name")
  port[$name]=$bport
  pid[$name]=$bpid
  label[$name]="PgBouncer $version"
}

# pglane_toml PORT POOL_MODE POOL_SIZE READERS EXTRA_TOML: the benchmarks' pglane config on
# stdout: no TLS on either side, the sandbox's users and backend password, WORKERS workers, the
# sandbox primary as writer (READERS: a TOML list body of "host:port"), health checks every
# 100 ms, then EXTRA_TOML.
pglane_toml() {
  cat <<EOF
[proxy]
listen_addr = "127.0.0.1"
listen_port = $1
workers = $WORKERS
users_file = "$SANDBOX_DIR/users.txt"
log_level = "warning"

[tls]
mode = "disable"

[backend]
user = "$APP_USER"
password_file = "$SANDBOX_DIR/backend_password"

[backend.tls]
mode = "disable"

[pool]
mode = "$2"
size = $3

[[regions]]
name = "local"
writer = "127.0.0.1:$PG_PRIMARY_PORT"
readers = [$4]

[health]
interval_ms = 100
$5
EOF
}

# start_pglane NAME [READERS [BINARY [EXTRA_TOML]]]: pglane with a generated config: no TLS on
# either side, same pool as PgBouncer; READERS (a TOML list body of "host:port") turns read/write
# splitting on. A missing binary or one that does not start is skipped with a warning.
start_pglane() {
  local name=$1 readers=${2:-} bin=${3:-$PGLANE_BIN} extra=${4:-}
  if [ ! -x "$bin" ]; then
    warn "$bin not built: $name skipped"
    return 0
  fi
  local lport
  lport=$(free_port 16532 "$PG_PRIMARY_PORT" "${port[@]}")
  pglane_toml "$lport" "$POOL_MODE" "$POOL_SIZE" "$readers" "$extra" >"$tmp/$name.toml"
  "$bin" --config "$tmp/$name.toml" >"$tmp/$name.log" 2>&1 &
  local lpid=$!
  pglane_pids+=("$lpid")
  if ! wait_tcp 127.0.0.1 "$lport" 15 "$lpid"; then
    tail "$tmp/$name.log" >&2
    warn "$name did not start: skipped"
    return 0
  fi
  targets+=("$name")
  port[$name]=$lport
  pid[$name]=$lpid
  pglane_pid=$lpid
  if [ "$bin" = "$PGLANE_BIN" ]; then
    label[$name]="$name $(git -C "$root" describe --always --dirty 2>/dev/null || echo)"
  else
    label[$name]="$name ($bin)"
  fi
  case $WORKERS in
    0) label[$name]="${label[$name]% } (workers: one per core)" ;;
    1) label[$name]="${label[$name]% } (1 worker)" ;;
    *) label[$name]="${label[$name]% } ($WORKERS workers)" ;;
  esac
  # With readers, reads go to replicas once the health checker has seen them.
  [ -z "$readers" ] || sleep 1
}
