# shellcheck shell=bash
# Helpers shared by scripts/*.sh and bench/compare.sh. Source it; it defines functions only.

# die MESSAGE...: print to stderr with the calling script's name and exit 1.
die() {
  printf '%s: error: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# warn MESSAGE...: print a warning to stderr.
warn() {
  printf '%s: warning: %s\n' "${0##*/}" "$*" >&2
}

# note MESSAGE...: progress line on stderr, so that stdout stays clean for results.
note() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT (or on any address).
# `ss` sees listeners of every user and address; /dev/tcp is the fallback without iproute2.
port_in_use() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# free_port PREFERRED [TAKEN...]: print PREFERRED if it is free, else the next free port above
# it. Never 5432 (a system PostgreSQL) and never one of the TAKEN ports.
free_port() {
  local port=$1
  shift
  local taken=" $* "
  while [ "$port" -le 65535 ]; do
    if [ "$port" -ne 5432 ] && [[ $taken != *" $port "* ]] && ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
    port=$((port + 1))
  done
  return 1
}

# wait_tcp HOST PORT SECONDS [PID]: wait until HOST:PORT accepts a TCP connection. Fails after
# SECONDS, or as soon as process PID (when given) has exited.
wait_tcp() {
  local host=$1 port=$2 seconds=$3 pid=${4:-}
  local deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10), then SIGKILL. Quiet if the
# process is already gone.
stop_pid() {
  local pid=$1 seconds=${2:-10}
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# random_secret: 32 hex characters from the OpenSSL CSPRNG; safe in SQL, URLs and conninfo.
random_secret() {
  openssl rand -hex 16
}

# repo_root: the directory holding this repository's top-level CMakeLists.txt.
repo_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}
