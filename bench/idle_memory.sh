#!/usr/bin/env bash
# Memory that idle client connections cost pglane: resident set size (VmRSS in /proc/PID/status)
# of a fresh pglane before and after N clients log in and sit idle.
#
#   bench/idle_memory.sh
#
# Starts its own sandbox (primary only, no Redis) and, for each of two client modes, a fresh
# pglane (transaction pooling, pool size 20, no TLS to the server): "plaintext" (tls.mode =
# "disable") and "TLS" (tls.mode = "prefer" with the sandbox certificate; every client asks for
# TLS). A Python client (standard library only) logs in N clients as idle_user (trust in the
# users file; pglane logs in to the server as pglane_app for it), opening at most CONCURRENCY
# at a time; each runs one query, then they all stay open and idle. In transaction pooling an
# idle client holds no server connection, so N can be far above PostgreSQL's max_connections.
# Before the "before" reading, WARM clients log in and out once, so one-time set-up (first
# server connection, per-thread state, TLS library) is not charged to the idle clients. The
# "after" reading is taken HOLD seconds after the last login; KiB per connection =
# (after - before) / N. Once they closed, one client reads a BIG_MB MiB result through psql
# (rows of 1,000 bytes, TLS in the TLS row): pglane's peak RSS during it (sampled every 50 ms)
# and its RSS 2 s after, which should stay near the idle size (the relay's buffers are
# bounded; nothing is kept).
# Results (markdown) go to stdout, progress to stderr.
#
# Environment (defaults):
#   N=5000 WORKERS=2 (pglane threads) CONCURRENCY=200 WARM=16 HOLD=2
#   CLOSED_WAIT=8 (seconds after the clients close before the last RSS reading)
#   BIG_MB=100 (size of the one large result; 0 skips it)
#   PGLANE_BIN=build/proxy/pglane   KEEP_TMP=1 keeps the scratch dir (logs) after the run
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
root=$(repo_root)
cd "$root"

[ $# -eq 0 ] || { echo "usage: bench/idle_memory.sh (settings come from the environment)" >&2; exit 2; }

N=${N:-5000}
WORKERS=${WORKERS:-2}
CONCURRENCY=${CONCURRENCY:-200}
WARM=${WARM:-16}
HOLD=${HOLD:-2}
CLOSED_WAIT=${CLOSED_WAIT:-8}
BIG_MB=${BIG_MB:-100}
PGLANE_BIN=${PGLANE_BIN:-$root/build/proxy/pglane}
PYTHON=${PYTHON:-/usr/bin/python3}
for v in N WORKERS CONCURRENCY WARM HOLD CLOSED_WAIT BIG_MB; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$N" -ge 1 ] || die "N must be at least 1"
[ "$CONCURRENCY" -ge 1 ] || die "CONCURRENCY must be at least 1"
[ -x "$PGLANE_BIN" ] || die "$PGLANE_BIN not built (or set PGLANE_BIN)"
[ -x "$PYTHON" ] || die "$PYTHON not found (or set PYTHON)"

# One descriptor per client in the Python client and in pglane (which inherits this limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((N + 100)) ]; then
  die "open-files limit is $nofile (hard limit $(ulimit -Hn)): too low for N=$N"
fi

tmp=$(mktemp -d /tmp/pglane-idle.XXXXXX)
chmod 755 "$tmp"  # the postgres user must reach the sandbox below it
pglane_pid=""
client_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$client_pid" ]; then
    kill -KILL "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
  fi
  [ -n "$pglane_pid" ] && stop_pid "$pglane_pid" 10
  "$root/scripts/sandbox.sh" down "$tmp/sandbox" >/dev/null 2>&1 || true
  if [ "${KEEP_TMP:-0}" = 1 ]; then note "logs kept in $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the client --------------------------------------------------------------------------------
# idle_clients.py HOST PORT N USER DB TLS PID CONCURRENCY WARM HOLD: logs in WARM clients and
# closes them, reads PID's VmRSS, logs in N clients (non-blocking sockets, at most CONCURRENCY
# logins in flight), each running one query (SELECT 1) after its login, so that the idle
# sessions are ones that ran a transaction, waits HOLD seconds, checks that they are all still
# open, reads VmRSS again, prints "connected FAILED BEFORE_KIB AFTER_KIB SECONDS" and closes
# them.
cat >"$tmp/idle_clients.py" <<'PY'
import errno, selectors, socket, ssl, struct, sys, time

host, port, n, user, db, use_tls, pid, concurrency, warm, hold = sys.argv[1:]
port, n, use_tls, concurrency, warm, hold = int(port), int(n), use_tls == "1", int(concurrency), int(warm), float(hold)

PARAMS = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in (("user", user), ("database", db))) + b"\0"
STARTUP = struct.pack("!ii", 8 + len(PARAMS), 196608) + PARAMS  # StartupMessage, protocol 3.0
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
QUERY = b"Q" + struct.pack("!i", 4 + 9) + b"SELECT 1\0"  # one transaction before idling
CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS for pid " + pid)


class Conn:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.phase = "connect"
        self.out = b""
        self.buf = b""
        err = self.sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect: " + errno.errorcode.get(err, str(err)))


def login(count, deadline):
    """Logs in `count` clients; returns (open connections, failure messages)."""
    sel = selectors.DefaultSelector()
    done, failures = [], []
    started = 0
    in_flight = 0

    def start():
        nonlocal started, in_flight
        started += 1
        try:
            c = Conn()
        except OSError as e:
            failures.append(str(e))
            return
        in_flight += 1
        sel.register(c.sock, selectors.EVENT_WRITE, c)

    def fail(c, why):
        nonlocal in_flight
        failures.append(why)
        in_flight -= 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def want(c, events):
        sel.modify(c.sock, events, c)

    def send_next(c, data, phase):
        c.out, c.phase = data, phase
        want(c, selectors.EVENT_WRITE)

    def handshake(c):
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            want(c, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            want(c, selectors.EVENT_WRITE)
            return
        send_next(c, STARTUP, "startup")

    def step(c):
        nonlocal in_flight
        if c.phase == "connect":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return fail(c, "connect: " + errno.errorcode.get(err, str(err)))
            return send_next(c, SSL_REQUEST if use_tls else STARTUP, "sslrequest" if use_tls else "startup")
        if c.phase in ("sslrequest", "startup", "query"):
            try:
                sent = c.sock.send(c.out)
            except (ssl.SSLWantWriteError, BlockingIOError):
                return
            except ssl.SSLWantReadError:
                return want(c, selectors.EVENT_READ)
            c.out = c.out[sent:]
            if not c.out:
                c.phase = {"sslrequest": "sslanswer", "startup": "auth", "query": "result"}[c.phase]
                want(c, selectors.EVENT_READ)
            return
        if c.phase == "sslanswer":
            answer = c.sock.recv(1)
            if answer != b"S":
                return fail(c, f"SSLRequest answered {answer!r}")
            sel.unregister(c.sock)
            c.sock = CTX.wrap_socket(c.sock, do_handshake_on_connect=False)
            sel.register(c.sock, selectors.EVENT_READ, c)
            c.phase = "handshake"
            return handshake(c)
        if c.phase == "handshake":
            return handshake(c)
        # auth: read until ReadyForQuery.
        try:
            data = c.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return
        except ssl.SSLWantWriteError:
            return want(c, selectors.EVENT_WRITE)
        if not data:
            return fail(c, "closed during login")
        c.buf += data
        while use_tls and c.sock.pending():  # decrypted bytes the selector cannot see
            c.buf += c.sock.recv(c.sock.pending())
        while len(c.buf) >= 5:
            kind, length = c.buf[:1], struct.unpack("!i", c.buf[1:5])[0]
            if len(c.buf) < 1 + length:
                break
            body, c.buf = c.buf[5:1 + length], c.buf[1 + length:]
            if kind == b"E":
                fields = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
                return fail(c, "ErrorResponse: " + fields.get(b"M", b"?").decode(errors="replace"))
            if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                return fail(c, f"asked for authentication type {struct.unpack('!i', body[:4])[0]}")
            if kind == b"Z" and c.phase == "auth":
                return send_next(c, QUERY, "query")  # logged in: one query, then idle
            if kind == b"Z":
                sel.unregister(c.sock)
                in_flight -= 1
                done.append(c)
                if use_tls and count == n and len(done) == 1:
                    print("  TLS:", c.sock.version(), c.sock.cipher()[0], file=sys.stderr)
                return

    while started < count or in_flight:
        while started < count and in_flight < concurrency:
            start()
        if time.monotonic() > deadline:
            failures.append(f"timed out with {in_flight} logins in flight")
            for key in list(sel.get_map().values()):
                key.fileobj.close()
            break
        for key, _ in sel.select(timeout=1):
            c = key.data
            try:
                step(c)
            except (OSError, ssl.SSLError) as e:  # ssl.SSLError is an OSError
                fail(c, f"{c.phase}: {e}")
    sel.close()
    return done, failures


deadline = time.monotonic() + 300
if warm:
    conns, failures = login(warm, deadline)
    for c in conns:
        c.sock.close()
    if failures:
        raise SystemExit("warm-up logins failed: " + "; ".join(sorted(set(failures))[:5]))
    time.sleep(0.5)
before = rss_kib()
t0 = time.monotonic()
conns, failures = login(n, deadline)
elapsed = time.monotonic() - t0
time.sleep(hold)
# Still open and idle? A readable socket here was closed (or sent something) by pglane.
sel = selectors.DefaultSelector()
for c in conns:
    sel.register(c.sock, selectors.EVENT_READ)
dropped = len(sel.select(timeout=0))
sel.close()
after = rss_kib()
for why in sorted(set(failures))[:5]:
    print("login failure:", why, file=sys.stderr)
if dropped:
    print(f"{dropped} connections were closed or got data while idle", file=sys.stderr)
print(len(conns) - dropped, len(failures) + dropped, before, after, f"{elapsed:.1f}")
sys.stdout.flush()
for c in conns:
    c.sock.close()
PY

# --- servers -----------------------------------------------------------------------------------
note "starting the sandbox"
"$root/scripts/sandbox.sh" up "$tmp/sandbox" --replicas 0 --no-redis >&2
# shellcheck source=/dev/null
. "$tmp/sandbox/sandbox.env"

# The sandbox users plus idle_user, who needs no password.
cp "$SANDBOX_DIR/users.txt" "$tmp/users.txt"
echo "idle_user trust" >>"$tmp/users.txt"
chmod 600 "$tmp/users.txt"

# start_pglane CLIENT_TLS_MODE: a fresh pglane; sets pglane_pid and lport.
start_pglane() {
  local mode=$1
  lport=$(free_port 16632 "$PG_PRIMARY_PORT")
  cat >"$tmp/pglane.$mode.toml" <<EOF
[proxy]
listen_addr = "127.0.0.1"
listen_port = $lport
workers = $WORKERS
max_client_conn = $((N + WARM + 100 > 10000 ? N + WARM + 100 : 10000))
users_file = "$tmp/users.txt"
log_level = "warning"

[tls]
mode = "$mode"
cert_file = "$TLS_CERT"
key_file = "$TLS_KEY"

[backend]
user = "$APP_USER"
password_file = "$SANDBOX_DIR/backend_password"

[backend.users.idle_user]
user = "$APP_USER"
password_file = "$SANDBOX_DIR/backend_password"

[backend.tls]
mode = "disable"

[pool]
mode = "transaction"
size = 20

[[regions]]
name = "local"
writer = "127.0.0.1:$PG_PRIMARY_PORT"
EOF
  "$PGLANE_BIN" --config "$tmp/pglane.$mode.toml" >"$tmp/pglane.$mode.log" 2>&1 &
  pglane_pid=$!
  if ! wait_tcp 127.0.0.1 "$lport" 15 "$pglane_pid"; then
    tail "$tmp/pglane.$mode.log" >&2
    die "pglane did not start"
  fi
}

# measure LABEL CLIENT_TLS_MODE USE_TLS: one table row.
measure() {
  local label=$1 mode=$2 use_tls=$3
  start_pglane "$mode"
  note "$label: $N idle clients through pglane (pid $pglane_pid, open-files limit" \
    "$(awk '/^Max open files/ { print $4 }' "/proc/$pglane_pid/limits"))"
  "$PYTHON" "$tmp/idle_clients.py" 127.0.0.1 "$lport" "$N" idle_user "$APP_DB" "$use_tls" \
    "$pglane_pid" "$CONCURRENCY" "$WARM" "$HOLD" >"$tmp/client.$mode.out" 2>"$tmp/client.$mode.err" &
  client_pid=$!
  local rc=0
  wait "$client_pid" || rc=$?
  client_pid=""
  cat "$tmp/client.$mode.err" >&2
  [ "$rc" -eq 0 ] || die "the client failed (exit $rc)"
  local ok failed before after secs closed
  read -r ok failed before after secs <"$tmp/client.$mode.out"
  # The clients are gone: what pglane gives back (it trims malloc's free memory within a
  # second of a large drop in sessions).
  sleep "$CLOSED_WAIT"
  closed=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pglane_pid/status")
  local big_peak=0 big_after=0
  if [ "$BIG_MB" -gt 0 ]; then
    read -r big_peak big_after < <(big_result "$use_tls")
  fi
  stop_pid "$pglane_pid" 10
  pglane_pid=""
  note "  $ok open after ${secs} s of logins, $failed failed; VmRSS $before KiB -> $after KiB," \
    "$closed KiB ${CLOSED_WAIT} s after they closed"
  [ "$ok" -eq "$N" ] || die "$label: only $ok of $N clients stayed connected, see $tmp/pglane.$mode.log"
  rows+=("$(awk -v l="$label" -v n="$N" -v b="$before" -v a="$after" -v c="$closed" \
    -v p="$big_peak" -v q="$big_after" 'BEGIN {
    printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |", l, n, b / 1024, a / 1024,
      (a - b) / n, c / 1024, p / 1024, q / 1024 }')")
}

# big_result USE_TLS: "PEAK AFTER" (KiB): pglane's VmRSS peak while one psql reads a BIG_MB MiB
# result through it, and 2 s after.
big_result() {
  local sslmode=disable
  [ "$1" = 1 ] && sslmode=require
  PGSSLMODE=$sslmode psql -X -q -h 127.0.0.1 -p "$lport" -U idle_user -d "$APP_DB" \
    -c "select repeat('x', 1000) from generate_series(1, $((BIG_MB * 1024)))" \
    >/dev/null 2>"$tmp/big.err" &
  local qpid=$! peak=0 r
  while kill -0 "$qpid" 2>/dev/null; do
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pglane_pid/status")
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.05
  done
  wait "$qpid" || die "the ${BIG_MB} MiB result failed: $(cat "$tmp/big.err")"
  sleep 2
  echo "$peak $(awk '/^VmRSS:/ { print $2 }' "/proc/$pglane_pid/status")"
}

rows=()
measure "plaintext" disable 0
measure "TLS" prefer 1

label="pglane $(git -C "$root" describe --always --dirty 2>/dev/null || echo)"
echo "## Idle client connections"
echo ""
echo "${label% }, $WORKERS worker$([ "$WORKERS" = 1 ] || echo s), transaction pooling (pool size 20)," \
  "$(nproc) × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)." \
  "VmRSS of a fresh pglane after $WARM warm-up logins, then with N clients logged in and idle" \
  "for $HOLD s (they hold no server connection). TLS: to clients only (Python ssl defaults," \
  "no certificate check); plain TCP to the server."
echo ""
echo "| mode | N | RSS before (MiB) | RSS after (MiB) | KiB per connection | RSS ${CLOSED_WAIT} s after they closed (MiB) | peak during one ${BIG_MB} MiB result (MiB) | 2 s after it (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
