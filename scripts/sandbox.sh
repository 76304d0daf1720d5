#!/usr/bin/env bash
# A local stand-in for an Aurora cluster, all on 127.0.0.1: a PostgreSQL 15 primary, N streaming
# replicas (pg_basebackup -R) and a TLS-only Redis 7, with a private CA and generated passwords.
#
#   scripts/sandbox.sh up DIR [--replicas N] [--no-redis] [--aurora[=REGIONS]]   (N defaults to 2)
#   scripts/sandbox.sh down DIR [--purge]                    (--purge also deletes what up generated)
#   scripts/sandbox.sh add-replica DIR        one more streaming replica of the first primary
#
# --aurora makes it an Aurora stand-in (scripts/aurora-standin.sql): instances named instance-1
# (the primary), instance-2 (replica1) and so on, Aurora's topology functions, and the WAL-position
# functions Aurora refuses raising its errors. REGIONS is a comma-separated region per instance,
# primary first (default: all "eu-west"). Commits wait for the local flush, as Aurora's wait for
# durable storage (synchronous_commit = on).
#
# `up` always starts from scratch: it stops whatever sandbox DIR holds and regenerates it.
# Everything a client needs is written to DIR/sandbox.env (sourceable KEY=VALUE lines; a value
# is double-quoted only when it contains a space). Files in DIR:
#   tls/ca.crt ca.key server.crt server.key   CA and a cert for localhost + 127.0.0.1 + ::1
#   tls/client.crt client.key                 a client cert (CN pglane_app) signed by the CA
#   tls/health.crt health.key                 the health checker's cert (CN pglane_health): that
#                                             role logs in with it (pg_hba "cert"), no password
#   tls/other-ca.crt                          a CA that signed nothing here (wrong-CA tests)
#   users.txt                                 pglane users file: "pglane_app scram-sha-256 <verifier>"
#   app_password backend_password             pglane_app's password (same value in both)
#   superuser_password replication_password   for the postgres and replicator roles
#   cache.key                                 the result cache's HMAC key (64 hex digits)
#   log/                                      primary.log replicaN.log redis.log
# Ports start at SANDBOX_PORT_BASE (default 15432: primary, then one per replica; Redis at
# base+947 = 16379); a port that is in use is replaced by the next free one, 5432 never used.
# As root, PostgreSQL runs as the `postgres` user (initdb and pg_ctl refuse root).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_SUPERUSER=postgres
REPL_USER=replicator
APP_USER=pglane_app
APP_DB=app

usage() {
  sed -n '5,6p' "${BASH_SOURCE[0]}" | sed 's/^#  *//' >&2
  exit 2
}

# PostgreSQL's programs refuse to run as root, so as root they run as `postgres`; otherwise as
# the invoking user, who then owns everything.
if [ "$(id -u)" -eq 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

# pg_root_of DIR: where DIR's PostgreSQL instances live. Normally DIR/pg; when DIR is not
# reachable by the postgres user (a clone under /root), `up` puts them in /tmp and records the
# location in DIR/.pg_root.
pg_root_of() {
  if [ -f "$1/.pg_root" ]; then cat "$1/.pg_root"; else echo "$1/pg"; fi
}

# stop_pg DATADIR: fast shutdown (disconnects sessions, no crash recovery on the next start).
# Quiet and successful when the instance is not running.
stop_pg() {
  local data=$1
  [ -f "$data/postmaster.pid" ] || return 0
  local pid
  pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
  if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 -s stop >/dev/null 2>&1; then
    # pg_ctl failed (data dir half-deleted, timeout): immediate shutdown of the postmaster.
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
      kill -QUIT "$pid" 2>/dev/null || true
      stop_pid "$pid" 5
    fi
  fi
}

cmd_down() {
  local dir=$1 purge=$2
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  cd /  # the postgres user may not be able to enter the caller's directory
  local pg_root data
  pg_root=$(pg_root_of "$dir")
  # Replicas first: stopping the primary first would make them log reconnect attempts.
  for data in "$pg_root"/replica*; do
    [ -d "$data" ] && stop_pg "$data"
  done
  [ -d "$pg_root/primary" ] && stop_pg "$pg_root/primary"
  # SIGTERM makes Redis shut down cleanly; `save ""` means it writes nothing on the way out.
  if [ -f "$dir/redis/redis.pid" ]; then
    local pid
    pid=$(cat "$dir/redis/redis.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]]; then
      stop_pid "$pid" 10
    fi
    rm -f "$dir/redis/redis.pid"
  fi
  if [ "$purge" = 1 ]; then
    clean_dir "$dir"
  fi
  return 0
}

# clean_dir DIR: remove everything `up` generates (and nothing else: DIR may be the user's).
clean_dir() {
  local dir=$1 pg_root
  pg_root=$(pg_root_of "$dir")
  if [ "$pg_root" != "$dir/pg" ]; then rm -rf "$pg_root"; fi
  rm -rf "$dir/pg" "$dir/tls" "$dir/log" "$dir/redis" "$dir/.pg_root" \
    "$dir/sandbox.env" "$dir/users.txt" "$dir/app_password" "$dir/backend_password" \
    "$dir/superuser_password" "$dir/replication_password" "$dir/cache.key"
}

# write_secret FILE VALUE: a one-line file only its owner can read.
write_secret() {
  (umask 077 && printf '%s\n' "$2" >"$1")
}

# make_tls DIR: a CA, a server cert valid for localhost/127.0.0.1/::1 (libpq's verify-full
# checks the IP SAN when host=127.0.0.1), a client cert, and an unrelated CA. EC P-256 keys:
# generated in milliseconds, supported by every TLS stack involved.
make_tls() {
  local tls=$1
  mkdir -p "$tls"
  (
    umask 077
    cd "$tls"
    cat >ext.cnf <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    local name
    for name in ca other-ca server client health; do
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key" 2>/dev/null
    done
    # Self-signed CAs (req -x509 would add the default config's extensions; x509 -req does not).
    for name in ca other-ca; do
      openssl req -new -key "$name.key" -subj "/CN=pglane sandbox $name" -out "$name.csr"
      openssl x509 -req -in "$name.csr" -key "$name.key" -days 3650 -sha256 \
        -set_serial "0x$(openssl rand -hex 8)" -extfile ext.cnf -extensions ca \
        -out "$name.crt" 2>/dev/null
    done
    openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -days 825 -sha256 \
      -set_serial "0x$(openssl rand -hex 8)" -extfile ext.cnf -extensions server \
      -out server.crt 2>/dev/null
    openssl req -new -key client.key -subj "/CN=$APP_USER" -out client.csr
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -days 825 -sha256 \
      -set_serial "0x$(openssl rand -hex 8)" -extfile ext.cnf -extensions client \
      -out client.crt 2>/dev/null
    openssl req -new -key health.key -subj "/CN=pglane_health" -out health.csr
    openssl x509 -req -in health.csr -CA ca.crt -CAkey ca.key -days 825 -sha256 \
      -set_serial "0x$(openssl rand -hex 8)" -extfile ext.cnf -extensions client \
      -out health.crt 2>/dev/null
    chmod 600 health.key  # libpq refuses a private key others can read
    rm -f ./*.csr ext.cnf other-ca.key
    chmod 644 ./*.crt
  )
}

# env_line KEY VALUE: one sourceable line; quoted only when the value needs it.
env_line() {
  if [[ $2 =~ ^[A-Za-z0-9_./:@%+=,-]*$ ]]; then
    printf '%s=%s\n' "$1" "$2"
  else
    local v=${2//\\/\\\\}
    v=${v//\"/\\\"}
    v=${v//\$/\\\$}
    v=${v//\`/\\\`}
    printf '%s="%s"\n' "$1" "$v"
  fi
}

# psql_su DB: psql as the superuser over the Unix socket (trust; the socket directory is 0700).
psql_su() {
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg_root/run" -p "$primary_port" \
    -U "$PG_SUPERUSER" -d "$1" "${@:2}"
}

# aurora_region I: the region of instance I (0 = the primary) from --aurora=REGIONS.
aurora_region() {
  local list=() r
  IFS=, read -r -a list <<<"$aurora_regions"
  r=${list[$1]:-}
  echo "${r:-${list[0]:-eu-west}}"
}

cmd_up() {
  local dir=$1 replicas=$2 with_redis=$3 aurora=$4
  local t0
  t0=$(date +%s%N)

  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL 15 in $PG_BIN (run scripts/bootstrap.sh, or set PG_BIN)"
  if [ "$with_redis" = 1 ]; then
    command -v redis-server >/dev/null || die "redis-server not found (run scripts/bootstrap.sh)"
  fi
  command -v openssl >/dev/null || die "openssl not found (run scripts/bootstrap.sh)"
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    die "the postgres user does not exist (run scripts/bootstrap.sh)"
  fi

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir"
  cd /  # the postgres user may not be able to enter the caller's directory

  # One `up` at a time per user: ports are chosen and bound under this lock, so concurrent
  # sandboxes (parallel test runs) never pick the same ports. Daemons get `9>&-` so that they
  # do not inherit (and hold) the lock.
  local lock
  lock="${TMPDIR:-/tmp}/pglane-sandbox-$(id -u).lock"
  exec 9>>"$lock"
  flock -w 300 9 || die "timed out waiting for $lock (another sandbox.sh up is running)"

  cmd_down "$dir" 0
  clean_dir "$dir"

  # Where PostgreSQL lives (see pg_root_of).
  pg_root="$dir/pg"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$dir"; then
    pg_root=$(mktemp -d /tmp/pglane-sandbox-pg.XXXXXX)
    echo "$pg_root" >"$dir/.pg_root"
    warn "$dir is not reachable by the postgres user (a parent directory is not" \
      "traversable); PostgreSQL's files go to $pg_root instead"
  fi
  mkdir -p "$pg_root/run" "$pg_root/tls" "$pg_root/log" "$dir/redis"
  chmod 755 "$pg_root" "$pg_root/log"
  chmod 700 "$pg_root/run" "$pg_root/tls"
  if [ "$pg_root" = "$dir/pg" ]; then
    ln -s pg/log "$dir/log"
  else
    ln -s "$pg_root/log" "$dir/log"
  fi

  # Ports, under the lock.
  local base=${SANDBOX_PORT_BASE:-15432} replica_ports=() redis_port="" i p
  if ! [[ $base =~ ^[0-9]+$ ]] || [ "$base" -ge 64000 ]; then
    die "SANDBOX_PORT_BASE must be a port number below 64000, not '$base'"
  fi
  primary_port=$(free_port "$base") || die "no free port from $base"
  for ((i = 1; i <= replicas; i++)); do
    p=$(free_port $((base + i)) "$primary_port" "${replica_ports[@]}") || die "no free port"
    replica_ports+=("$p")
  done
  if [ "$with_redis" = 1 ]; then
    redis_port=$(free_port $((base + 947)) "$primary_port" "${replica_ports[@]}") ||
      die "no free port"
  fi

  # Anything that fails from here on leaves nothing running behind.
  bg_pids=()
  up_dir=$dir
  trap 'up_failed' EXIT

  local su_pw repl_pw app_pw
  su_pw=$(random_secret)
  repl_pw=$(random_secret)
  app_pw=$(random_secret)

  make_tls "$dir/tls"
  # PostgreSQL wants its key owned by itself (or root) with mode 0600: it gets its own copy.
  cp "$dir/tls/server.crt" "$dir/tls/server.key" "$dir/tls/ca.crt" "$pg_root/tls/"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$pg_root"
  fi

  # Primary. -N skips fsync of the new cluster; -A trust is replaced by our pg_hba.conf below.
  local primary="$pg_root/primary"
  as_pg "$PG_BIN/initdb" -D "$primary" -U "$PG_SUPERUSER" -A trust -E UTF8 --no-locale -N \
    --no-instructions >"$pg_root/log/initdb.log" 2>&1 ||
    die "initdb failed, see $pg_root/log/initdb.log"
  as_pg tee -a "$primary/postgresql.conf" >/dev/null <<EOF

# --- pglane sandbox (scripts/sandbox.sh); never use these durability settings for real data ---
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$pg_root/run'
unix_socket_permissions = 0700
max_connections = 600
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '$pg_root/tls/server.crt'
ssl_key_file = '$pg_root/tls/server.key'
# Verifies client certificates: pglane_health logs in with one (pg_hba "cert").
ssl_ca_file = '$pg_root/tls/ca.crt'
ssl_min_protocol_version = 'TLSv1.2'
wal_level = replica
max_wal_senders = 16
max_replication_slots = 16
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  if [ "$aurora" = 1 ]; then
    # Aurora acknowledges a commit once it is durable; the custom settings name the instance.
    as_pg tee -a "$primary/postgresql.conf" >/dev/null <<EOF
# --- Aurora stand-in (scripts/aurora-standin.sql) ---
synchronous_commit = on
pglane_aurora.server_id = 'instance-1'
pglane_aurora.region = '$(aurora_region 0)'
EOF
  fi
  # Socket: only the data directory's owner can reach it (0700), so trust is safe there.
  # TCP: SCRAM for everyone, with or without TLS; replication only for the replication role.
  as_pg tee "$primary/pg_hba.conf" >/dev/null <<EOF
# TYPE  DATABASE     USER           ADDRESS        METHOD
local   all          all                           trust
local   replication  all                           trust
hostssl replication  $REPL_USER     127.0.0.1/32   scram-sha-256
host    replication  $REPL_USER     127.0.0.1/32   scram-sha-256
hostssl all          pglane_health  127.0.0.1/32   cert
hostssl all          all            127.0.0.1/32   scram-sha-256
host    all          all            127.0.0.1/32   scram-sha-256
EOF
  as_pg "$PG_BIN/pg_ctl" -D "$primary" -l "$pg_root/log/primary.log" -w -t 60 -s start 9>&- ||
    die "the primary did not start, see $pg_root/log/primary.log"

  # Roles and the application database. Secrets go through stdin, not the command line.
  psql_su postgres <<EOF
\\set su_pw '$su_pw'
\\set repl_pw '$repl_pw'
\\set app_pw '$app_pw'
ALTER ROLE $PG_SUPERUSER PASSWORD :'su_pw';
CREATE ROLE $REPL_USER REPLICATION LOGIN PASSWORD :'repl_pw';
CREATE ROLE $APP_USER LOGIN PASSWORD :'app_pw';
CREATE ROLE pglane_health LOGIN IN ROLE pg_monitor;
CREATE DATABASE $APP_DB OWNER $APP_USER;
EOF
  if [ "$aurora" = 1 ]; then
    # Every database (template1 for those created later) gets the stand-in, then the regions.
    local db regions_sql="" k
    for ((k = 0; k <= replicas; k++)); do
      regions_sql+="INSERT INTO aurora_standin.instance_region VALUES ('instance-$((k + 1))', '$(aurora_region "$k")');"
    done
    for db in template1 postgres "$APP_DB"; do
      psql_su "$db" <"$here/aurora-standin.sql" >/dev/null
      psql_su "$db" -c "$regions_sql"
    done
  fi
  # PostgreSQL 15 gives the public schema to the database owner, so app is writable by its user.
  local verifier
  verifier=$(psql_su postgres -At -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$APP_USER'")
  [[ $verifier == SCRAM-SHA-256\$* ]] || die "unexpected verifier for $APP_USER: $verifier"
  write_secret "$dir/users.txt" "$APP_USER scram-sha-256 $verifier"
  write_secret "$dir/app_password" "$app_pw"
  write_secret "$dir/backend_password" "$app_pw"
  write_secret "$dir/superuser_password" "$su_pw"
  write_secret "$dir/replication_password" "$repl_pw"
  write_secret "$dir/cache.key" "$(openssl rand -hex 32)"

  # Replicas, cloned in parallel. -R writes standby.signal and primary_conninfo (with the
  # password) into postgresql.auto.conf; the copied postgresql.conf only needs its own port.
  local conninfo="host=127.0.0.1 port=$primary_port user=$REPL_USER password=$repl_pw"
  conninfo+=" sslmode=verify-full sslrootcert=$pg_root/tls/ca.crt"
  for ((i = 1; i <= replicas; i++)); do
    local app_name=replica$i
    [ "$aurora" = 1 ] && app_name=instance-$((i + 1))
    as_pg "$PG_BIN/pg_basebackup" -D "$pg_root/replica$i" -R -X stream --checkpoint=fast -N \
      -d "$conninfo application_name=$app_name" >"$pg_root/log/basebackup$i.log" 2>&1 &
    bg_pids+=($!)
  done
  for ((i = 1; i <= replicas; i++)); do
    wait "${bg_pids[i - 1]}" || die "pg_basebackup for replica$i failed, see $pg_root/log/basebackup$i.log"
  done
  bg_pids=()
  for ((i = 1; i <= replicas; i++)); do
    printf 'port = %s\n' "${replica_ports[i - 1]}" | as_pg tee -a "$pg_root/replica$i/postgresql.conf" >/dev/null
    if [ "$aurora" = 1 ]; then
      printf "pglane_aurora.server_id = 'instance-%d'\npglane_aurora.region = '%s'\n" \
        $((i + 1)) "$(aurora_region "$i")" | as_pg tee -a "$pg_root/replica$i/postgresql.conf" >/dev/null
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$pg_root/replica$i" -l "$pg_root/log/replica$i.log" -W -s start 9>&- ||
      die "replica$i did not start, see $pg_root/log/replica$i.log"
  done

  # Redis: TLS only (port 0 disables plain TCP); clients need the CA but no certificate.
  if [ "$with_redis" = 1 ]; then
    cat >"$dir/redis/redis.conf" <<EOF
bind 127.0.0.1
port 0
tls-port $redis_port
tls-cert-file "$dir/tls/server.crt"
tls-key-file "$dir/tls/server.key"
tls-ca-cert-file "$dir/tls/ca.crt"
tls-auth-clients no
tls-protocols "TLSv1.2 TLSv1.3"
daemonize yes
pidfile "$dir/redis/redis.pid"
logfile "$dir/log/redis.log"
dir "$dir/redis"
save ""
appendonly no
EOF
    redis-server "$dir/redis/redis.conf" 9>&- || die "redis-server failed, see $dir/log/redis.log"
  fi

  # Wait for every server to answer (pg_ctl -W returned before the replicas were ready).
  local deadline=$((SECONDS + 60))
  for ((i = 1; i <= replicas; i++)); do
    until as_pg "$PG_BIN/pg_isready" -q -h "$pg_root/run" -p "${replica_ports[i - 1]}"; do
      [ "$SECONDS" -lt "$deadline" ] || die "replica$i is not ready, see $pg_root/log/replica$i.log"
      sleep 0.05
    done
  done
  if [ "$with_redis" = 1 ]; then
    until [ "$(redis-cli --tls --cacert "$dir/tls/ca.crt" -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; do
      [ "$SECONDS" -lt "$deadline" ] || die "redis is not ready, see $dir/log/redis.log"
      sleep 0.05
    done
  fi
  flock -u 9
  exec 9>&-

  # Streaming means the replicas serve reads that are at most moments behind the primary.
  local streaming=0
  while :; do
    streaming=$(psql_su postgres -At -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    [ "$streaming" -ge "$replicas" ] && break
    [ "$SECONDS" -lt "$deadline" ] || die "only $streaming of $replicas replicas are streaming"
    sleep 0.05
  done

  {
    echo "# Written by scripts/sandbox.sh up; source it: . $dir/sandbox.env"
    env_line SANDBOX_DIR "$dir"
    env_line PG_BIN "$PG_BIN"
    env_line PG_HOST 127.0.0.1
    env_line PG_PRIMARY_PORT "$primary_port"
    env_line PG_REPLICA_PORTS "${replica_ports[*]}"
    env_line PG_SOCKET_DIR "$pg_root/run"
    env_line PG_DATA_ROOT "$pg_root"
    env_line PG_LOG_DIR "$pg_root/log"
    env_line PG_SUPERUSER "$PG_SUPERUSER"
    env_line PG_SUPERUSER_PASSWORD "$su_pw"
    env_line PG_REPLICATION_USER "$REPL_USER"
    env_line PG_REPLICATION_PASSWORD "$repl_pw"
    env_line REDIS_TLS_PORT "$redis_port"
    env_line APP_USER "$APP_USER"
    env_line APP_DB "$APP_DB"
    env_line APP_PASSWORD "$app_pw"
    env_line USERS_FILE "$dir/users.txt"
    env_line TLS_CA "$dir/tls/ca.crt"
    env_line TLS_CERT "$dir/tls/server.crt"
    env_line TLS_KEY "$dir/tls/server.key"
    env_line TLS_CLIENT_CERT "$dir/tls/client.crt"
    env_line TLS_CLIENT_KEY "$dir/tls/client.key"
    env_line TLS_OTHER_CA "$dir/tls/other-ca.crt"
    env_line TLS_HEALTH_CERT "$dir/tls/health.crt"
    env_line TLS_HEALTH_KEY "$dir/tls/health.key"
    env_line AURORA "$aurora"
  } | (umask 077 && cat >"$dir/sandbox.env")

  trap - EXIT
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf 'sandbox up in %d.%03d s: %s\n' $((ms / 1000)) $((ms % 1000)) "$dir"
  printf '  postgres  primary 127.0.0.1:%s' "$primary_port"
  if [ "$replicas" -gt 0 ]; then printf ', replicas %s (streaming)' "${replica_ports[*]}"; fi
  printf ', TLS + SCRAM'
  if [ "$aurora" = 1 ]; then printf ', Aurora stand-in (instance-1..%d)' $((replicas + 1)); fi
  printf '\n'
  if [ "$with_redis" = 1 ]; then printf '  redis     127.0.0.1:%s (TLS only)\n' "$redis_port"; fi
  printf '  login     user %s, db %s, password in %s/app_password\n' "$APP_USER" "$APP_DB" "$dir"
  printf '  env       . %s/sandbox.env    stop: %s down %s\n' "$dir" "$0" "$dir"
}

# cmd_add_replica DIR: clones one more replica from the first primary of a running sandbox and
# starts it (an instance added to the cluster while it runs); prints its port and updates
# sandbox.env.
cmd_add_replica() {
  local dir
  dir=$(cd "$1" && pwd)
  cd /
  [ -f "$dir/sandbox.env" ] || die "no sandbox in $dir"
  local env_file=$dir/sandbox.env
  local PG_PRIMARY_PORT PG_REPLICA_PORTS PG_DATA_ROOT AURORA="0"
  PG_PRIMARY_PORT=$(sed -n 's/^PG_PRIMARY_PORT=//p' "$env_file")
  PG_REPLICA_PORTS=$(sed -n 's/^PG_REPLICA_PORTS=//p' "$env_file" | tr -d '"')
  PG_DATA_ROOT=$(sed -n 's/^PG_DATA_ROOT=//p' "$env_file")
  AURORA=$(sed -n 's/^AURORA=//p' "$env_file")
  pg_root=$PG_DATA_ROOT
  primary_port=$PG_PRIMARY_PORT
  local n=1
  while [ -e "$pg_root/replica$n" ]; do n=$((n + 1)); done
  local lock port
  lock="${TMPDIR:-/tmp}/pglane-sandbox-$(id -u).lock"
  exec 9>>"$lock"
  flock -w 300 9 || die "timed out waiting for $lock"
  # shellcheck disable=SC2086 # the ports are a space-separated list
  port=$(free_port $((PG_PRIMARY_PORT + n)) "$PG_PRIMARY_PORT" $PG_REPLICA_PORTS) ||
    die "no free port"
  local app_name=replica$n
  [ "$AURORA" = 1 ] && app_name=instance-$((n + 1))
  local conninfo="host=127.0.0.1 port=$primary_port user=$REPL_USER"
  conninfo+=" password=$(cat "$dir/replication_password")"
  conninfo+=" sslmode=verify-full sslrootcert=$pg_root/tls/ca.crt application_name=$app_name"
  as_pg "$PG_BIN/pg_basebackup" -D "$pg_root/replica$n" -R -X stream --checkpoint=fast -N \
    -d "$conninfo" >"$pg_root/log/basebackup$n.log" 2>&1 ||
    die "pg_basebackup failed, see $pg_root/log/basebackup$n.log"
  printf 'port = %s\n' "$port" | as_pg tee -a "$pg_root/replica$n/postgresql.conf" >/dev/null
  if [ "$AURORA" = 1 ]; then
    local region
    region=$(psql_su postgres -At -c \
      "SELECT aws_region FROM aurora_standin.instance_region WHERE server_id = 'instance-1'")
    printf "pglane_aurora.server_id = '%s'\npglane_aurora.region = '%s'\n" "$app_name" "$region" |
      as_pg tee -a "$pg_root/replica$n/postgresql.conf" >/dev/null
    local db
    for db in template1 postgres "$APP_DB"; do
      psql_su "$db" -c "INSERT INTO aurora_standin.instance_region VALUES ('$app_name', '$region')"
    done
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$pg_root/replica$n" -l "$pg_root/log/replica$n.log" -w -t 60 -s \
    start 9>&- || die "replica$n did not start, see $pg_root/log/replica$n.log"
  flock -u 9
  exec 9>&-
  local ports="$PG_REPLICA_PORTS $port"
  ports=${ports# }
  sed -i "s/^PG_REPLICA_PORTS=.*/$(env_line PG_REPLICA_PORTS "$ports")/" "$env_file"
  echo "$port"
}

# EXIT trap of a failed `up`: show why, then stop whatever was started.
up_failed() {
  local rc=$?
  local pid log
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for log in "$pg_root"/log/*.log "$up_dir/log/redis.log"; do
    if [ -s "$log" ]; then
      printf -- '--- last lines of %s\n' "$log" >&2
      tail -n 15 "$log" >&2
    fi
  done
  cmd_down "$up_dir" 0 || true
  exit "$rc"
}

main() {
  [ $# -ge 2 ] || usage
  local cmd=$1 dir=$2 replicas=2 with_redis=1 purge=0 aurora=0
  aurora_regions=""
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      --replicas) [ $# -ge 2 ] || usage; replicas=$2; shift 2 ;;
      --replicas=*) replicas=${1#*=}; shift ;;
      --no-redis) with_redis=0; shift ;;
      --aurora) aurora=1; shift ;;
      --aurora=*) aurora=1; aurora_regions=${1#*=}; shift ;;
      --purge) purge=1; shift ;;
      *) usage ;;
    esac
  done
  [[ $replicas =~ ^[0-9]$ ]] || die "--replicas wants a number from 0 to 9, not '$replicas'"
  case $cmd in
    up) cmd_up "$dir" "$replicas" "$with_redis" "$aurora" ;;
    down) cmd_down "$dir" "$purge" ;;
    add-replica) cmd_add_replica "$dir" ;;
    *) usage ;;
  esac
}

main "$@"
