#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to psql through pglane: installs dependencies,
# builds, starts the sandbox (./sandbox: PostgreSQL primary on 15432, replicas on 15433 and
# 15434, Redis with TLS) and pglane with conf/proxy.toml, then prints a psql command line that
# connects through pglane with TLS (verify-full) and SCRAM. Ctrl-C stops pglane and the sandbox.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
root=$(repo_root)
cd "$root"

config=conf/proxy.toml
sandbox=$root/sandbox
binary=build/proxy/pglane

# toml_proxy_key KEY DEFAULT: a scalar from the [proxy] table of $config (enough for the
# shipped file; pglane itself does the real parsing).
toml_proxy_key() {
  local value
  value=$(awk -v key="$1" '
    /^[[:space:]]*\[/ { in_proxy = ($0 ~ /^[[:space:]]*\[proxy\][[:space:]]*(#.*)?$/) }
    in_proxy && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]*#.*$/, ""); gsub(/"/, ""); print; exit
    }' "$config")
  echo "${value:-$2}"
}

"$here/bootstrap.sh"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
[ -x "$binary" ] || die "the build did not produce $binary"

listen_addr=$(toml_proxy_key listen_addr 127.0.0.1)
listen_port=$(toml_proxy_key listen_port 6432)
if [ "$listen_addr" = 0.0.0.0 ] || [ "$listen_addr" = '::' ]; then listen_addr=127.0.0.1; fi

# A sandbox left running by an earlier demo holds exactly the ports we need.
"$here/sandbox.sh" down "$sandbox"

# $config names these ports literally, so they cannot be swapped for free ones.
required=(15432 15433 15434 "$listen_port")
if grep -q 16379 "$config"; then required+=(16379); fi
busy=()
for port in "${required[@]}"; do
  if port_in_use "$port"; then busy+=("$port"); fi
done
if [ ${#busy[@]} -gt 0 ]; then
  die "port(s) ${busy[*]} on this machine are in use, but $config expects the sandbox and" \
    "pglane there. Stop what listens on them (see: ss -ltnp), then run this again."
fi

pglane_pid=""
# On Ctrl-C, SIGTERM or any exit: stop pglane, then the sandbox. Runs once (EXIT).
# shellcheck disable=SC2317  # called from the trap
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$pglane_pid" ]; then
    note "stopping pglane"
    stop_pid "$pglane_pid" 10
  fi
  note "stopping the sandbox"
  "$here/sandbox.sh" down "$sandbox" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SANDBOX_PORT_BASE=15432 "$here/sandbox.sh" up "$sandbox"
# shellcheck source=/dev/null
. "$sandbox/sandbox.env"
if [ "$PG_PRIMARY_PORT" != 15432 ] || [ "$PG_REPLICA_PORTS" != "15433 15434" ]; then
  die "the sandbox got ports $PG_PRIMARY_PORT $PG_REPLICA_PORTS (something grabbed 15432-15434" \
    "meanwhile); free them and run this again"
fi

# A background job of a script ignores SIGINT, so Ctrl-C reaches our trap, which stops pglane.
"$binary" --config "$config" &
pglane_pid=$!
wait_tcp "$listen_addr" "$listen_port" 30 "$pglane_pid" ||
  die "pglane did not start accepting connections on $listen_addr:$listen_port"

echo
echo "pglane is listening on $listen_addr:$listen_port. Connect through it with:"
echo
echo "PGPASSWORD=$APP_PASSWORD psql \"host=$listen_addr port=$listen_port dbname=$APP_DB user=$APP_USER sslmode=verify-full sslrootcert=$TLS_CA\""
echo
echo "Press Ctrl-C to stop pglane and the sandbox."

rc=0
wait "$pglane_pid" || rc=$?
pglane_pid=""
note "pglane exited with status $rc"
exit "$rc"
