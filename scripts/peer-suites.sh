#!/usr/bin/env bash
# Runs two real drivers' own test suites, psycopg 3.1.7 and node-postgres 8.23, against pglane in
# transaction-pooling mode (pool size 5) or directly against PostgreSQL, on a private sandbox,
# and reports pass/fail counts. Other people's tests of what a PostgreSQL server must do are the
# judge of compatibility; running them direct as well separates pglane's failures from the
# suites' own. How each suite is meant to be run: shared/peer/README.md.
#
#   scripts/peer-suites.sh [--target pglane|direct] [--suite psycopg|node|all] [--keep]
#
#   --target   pglane (default): through pglane; direct: straight to the sandbox's PostgreSQL
#   --suite    which suite(s) to run (default all)
#   --keep     keep the work directory (unpacked suites, sandbox files, pglane config)
#
# Environment:
#   PGLANE_BIN         pglane binary (default build/proxy/pglane); must exist, nothing is built.
#                      It is copied first, so a rebuild during the run does not swap it.
#   PEER_OUT           output directory (default a new /tmp/pglane-peer-out.XXXXXX); it gets
#                      summary.txt, psycopg.log + psycopg-junit.xml, node/<file>.log, pglane.log
#   PEER_DIR           where the suite tarballs are (default ../shared/peer next to the repo)
#   PEER_PYTEST_TIMEOUT per-test limit in seconds (default 60)
#   PEER_SUITE_TIMEOUT  limit for the whole psycopg run in seconds (default 2400)
#   SANDBOX_PORT_BASE  first port the sandbox tries (default 25432, away from demo.sh's 15432)
#
# Exit status: 0 when the suites ran, whatever their results (this is a report); non-zero only
# when setup failed (missing binary, install, sandbox, pglane not starting, a suite that could
# not run at all).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
root=$(repo_root)

PSYCOPG_TARBALL=psycopg-3.1.7-tests.tar.gz
NODE_TARBALL=node-postgres-c9e5761.tar.gz
POOL_SIZE=5
# The peer README's "useful core": about 1,370 cases, about 5 minutes direct.
PSYCOPG_FILES=()
for f in connection cursor client_cursor server_cursor prepared pipeline copy transaction \
  concurrency tpc; do
  PSYCOPG_FILES+=("tests/test_$f.py" "tests/test_${f}_async.py")
done
PSYCOPG_FILES+=(tests/test_errors.py tests/test_typeinfo.py)
APT_PACKAGES=(python3-psycopg python3-psycopg-pool python3-pytest python3-pytest-asyncio
  python3-pytest-timeout)

usage() {
  sed -n '8p' "${BASH_SOURCE[0]}" | sed 's/^#  *//' >&2
  exit 2
}

target=pglane
suite=all
keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --target) [ $# -ge 2 ] || usage; target=$2; shift 2 ;;
    --target=*) target=${1#*=}; shift ;;
    --suite) [ $# -ge 2 ] || usage; suite=$2; shift 2 ;;
    --suite=*) suite=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    *) usage ;;
  esac
done
case $target in pglane | direct) ;; *) die "--target wants pglane or direct, not '$target'" ;; esac
case $suite in psycopg | node | all) ;; *) die "--suite wants psycopg, node or all, not '$suite'" ;; esac
run_psycopg=0
run_node=0
if [ "$suite" != node ]; then run_psycopg=1; fi
if [ "$suite" != psycopg ]; then run_node=1; fi

# The tarballs live in shared/, which sits next to the repository (also in CI's clone).
peer_dir=${PEER_DIR:-}
if [ -z "$peer_dir" ]; then
  for d in "$root/../shared/peer" /work/shared/peer; do
    if [ -f "$d/$PSYCOPG_TARBALL" ]; then peer_dir=$d; break; fi
  done
fi
if [ -z "$peer_dir" ] || [ ! -d "$peer_dir" ]; then die "no suite tarballs found; set PEER_DIR"; fi
peer_dir=$(cd "$peer_dir" && pwd)
if [ "$run_psycopg" = 1 ]; then
  [ -f "$peer_dir/$PSYCOPG_TARBALL" ] || die "missing $peer_dir/$PSYCOPG_TARBALL"
fi
if [ "$run_node" = 1 ]; then
  [ -f "$peer_dir/$NODE_TARBALL" ] || die "missing $peer_dir/$NODE_TARBALL"
fi

pglane_src=${PGLANE_BIN:-$root/build/proxy/pglane}
if [ "$target" = pglane ]; then
  [ -x "$pglane_src" ] || die "no pglane binary at $pglane_src (build it, or set PGLANE_BIN)"
fi

# ---- installs (idempotent) ----

# as_root COMMAND...: run as root, through sudo when we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PACKAGE...: install the ones not installed yet; `apt-get update` only when needed.
apt_install() {
  local missing=() p
  for p in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  note "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The suites are Debian's psycopg's tests, so they must run with Debian's python (a pyenv or
# venv python3 earlier in PATH would not see python3-psycopg).
PYTHON=/usr/bin/python3
if [ "$run_psycopg" = 1 ]; then apt_install "${APT_PACKAGES[@]}"; fi
if [ "$run_node" = 1 ] && ! command -v npm >/dev/null; then apt_install nodejs npm; fi
# psql: the setup below and node-postgres's gh-issues/130 test.
command -v psql >/dev/null || apt_install postgresql-client

# ---- work and output directories, cleanup ----

work=$(mktemp -d /tmp/pglane-peer.XXXXXX)
# The sandbox's PostgreSQL runs as the postgres user, which must reach files under here.
chmod 755 "$work"
out=${PEER_OUT:-$(mktemp -d /tmp/pglane-peer-out.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
note "output directory: $out"

sandbox=$work/sandbox
sandbox_up=0
pglane_pid=""
# Stops pglane, then the sandbox; removes the work directory unless --keep. Runs once (EXIT).
# shellcheck disable=SC2317  # called from the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$pglane_pid" ]; then stop_pid "$pglane_pid" 10; fi
  if [ "$sandbox_up" = 1 ]; then
    # The server log tells what a failing test did on the server side; keep it with the results.
    cp "$sandbox/log/primary.log" "$out/postgres.log" 2>/dev/null || true
    if [ "$keep" = 1 ]; then
      "$here/sandbox.sh" down "$sandbox" >/dev/null || true
    else
      "$here/sandbox.sh" down "$sandbox" --purge >/dev/null || true
    fi
  fi
  if [ "$keep" = 1 ]; then
    note "kept the work directory $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- suites: unpack and prepare ----

if [ "$run_psycopg" = 1 ]; then
  tar xzf "$peer_dir/$PSYCOPG_TARBALL" -C "$work"
  psycopg_dir=$work/psycopg-3.1.7
  [ -f "$psycopg_dir/tests/conftest.py" ] || die "$PSYCOPG_TARBALL holds no tests/conftest.py"
fi

# node-postgres: `npm install` resolves the monorepo's ranges against the registry (it ships a
# yarn.lock, no package-lock), which is slow; its node_modules trees are cached per tarball
# and node major version, and the lock file npm wrote is kept with them.
if [ "$run_node" = 1 ]; then
  tar xzf "$peer_dir/$NODE_TARBALL" -C "$work"
  node_dir=$work/node-postgres
  [ -d "$node_dir/packages/pg/test" ] || die "$NODE_TARBALL holds no packages/pg/test"
  tar_sum=$(sha256sum "$peer_dir/$NODE_TARBALL" | cut -c1-16)
  node_major=$(node --version | sed 's/^v//; s/\..*//')
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/pglane-peer/node-postgres-$tar_sum-node$node_major
  if [ -f "$cache/complete" ]; then
    note "node-postgres: node_modules from $cache"
    # cp -a keeps npm's relative workspace links (node_modules/pg -> ../packages/pg) working.
    while IFS= read -r rel; do
      mkdir -p "$node_dir/$(dirname "$rel")"
      cp -a "$cache/$rel" "$node_dir/$rel"
    done <"$cache/dirs.txt"
    cp "$cache/package-lock.json" "$node_dir/" 2>/dev/null || true
  else
    note "node-postgres: npm install (first run; cached afterwards in $cache)"
    # --ignore-scripts: no postinstall downloads (wrangler's workerd), nothing the tests need.
    (cd "$node_dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error) \
      >"$out/npm-install.log" 2>&1 || die "npm install failed, see $out/npm-install.log"
    rm -rf "$cache"
    mkdir -p "$cache"
    (cd "$node_dir" && find . -name node_modules -type d -prune | sed 's|^\./||' | sort) \
      >"$cache/dirs.txt"
    while IFS= read -r rel; do
      mkdir -p "$cache/$(dirname "$rel")"
      cp -a "$node_dir/$rel" "$cache/$rel"
    done <"$cache/dirs.txt"
    cp "$node_dir/package-lock.json" "$cache/" 2>/dev/null || true
    touch "$cache/complete"
  fi
  note "node-postgres: tsc --build"
  (cd "$node_dir" && npx tsc --build) >"$out/tsc.log" 2>&1 ||
    die "tsc --build failed, see $out/tsc.log"
  # Its Makefile does this before the unit tests: libpq-style pgpass files must be private.
  chmod 600 "$node_dir/packages/pg/test/unit/client/pgpass.file"
fi

# ---- sandbox ----

note "starting the sandbox"
sandbox_up=1
SANDBOX_PORT_BASE=${SANDBOX_PORT_BASE:-25432} \
  "$here/sandbox.sh" up "$sandbox" --replicas 0 --no-redis >"$out/sandbox.log" 2>&1 ||
  die "the sandbox did not start, see $out/sandbox.log"
# shellcheck source=/dev/null
. "$sandbox/sandbox.env"

# psql_su SQL...: run SQL as the sandbox's superuser over TCP (TLS, password from the sandbox).
psql_su() {
  PGPASSWORD=$PG_SUPERUSER_PASSWORD psql -X -q -At -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$PG_PRIMARY_PORT dbname=postgres user=$PG_SUPERUSER sslmode=verify-full sslrootcert=$TLS_CA" \
    "$@"
}

# psycopg's suite wants a role that is not a superuser and owns its database (it creates and
# drops tables, types and functions there). The sandbox's app role should be exactly that.
owner=$(psql_su -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$APP_DB'")
if [ "$owner" != "$APP_USER" ]; then
  note "database $APP_DB is owned by '$owner', not $APP_USER: giving it to $APP_USER"
  psql_su -c "ALTER DATABASE $APP_DB OWNER TO $APP_USER"
fi
[ "$(psql_su -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$APP_USER'")" = f ] ||
  die "$APP_USER is a superuser; psycopg's suite wants an ordinary role"

# Two-phase commit: with max_prepared_transactions = 0 (the default) psycopg skips its whole
# TPC suite, and PREPARE TRANSACTION is exactly what a transaction pooler must get right.
# A restart is needed for this setting.
psql_su -c "ALTER SYSTEM SET max_prepared_transactions = 10" >/dev/null
if [ "$(id -u)" -eq 0 ]; then pg_as=(runuser -u postgres --); else pg_as=(); fi
"${pg_as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA_ROOT/primary" -l "$PG_LOG_DIR/primary.log" \
  -m fast -w -t 60 -s restart >/dev/null || die "restarting PostgreSQL failed"

# ---- pglane ----

if [ "$target" = pglane ]; then
  cp "$pglane_src" "$work/pglane"
  port=$(free_port 26432 "$PG_PRIMARY_PORT") || die "no free port for pglane"
  # Like tests/integration/harness.cc's write_config: one writer, no readers (no routing).
  cat >"$work/pglane.toml" <<EOF
[proxy]
listen_addr = "127.0.0.1"
listen_port = $port
users_file = "$USERS_FILE"
log_level = "info"

[tls]
mode = "prefer"
cert_file = "$TLS_CERT"
key_file = "$TLS_KEY"

[backend]
user = "$APP_USER"
password_file = "$sandbox/backend_password"

[backend.tls]
mode = "verify-full"
ca_file = "$TLS_CA"

[pool]
mode = "transaction"
size = $POOL_SIZE
queue_timeout_ms = 5000

[[regions]]
name = "local"
writer = "127.0.0.1:$PG_PRIMARY_PORT"
EOF
  cp "$work/pglane.toml" "$out/pglane.toml"
  "$work/pglane" --check-config "$work/pglane.toml" >"$out/pglane.log" 2>&1 ||
    die "pglane rejected its config, see $out/pglane.log"
  "$work/pglane" --config "$work/pglane.toml" >>"$out/pglane.log" 2>&1 &
  pglane_pid=$!
  wait_tcp 127.0.0.1 "$port" 30 "$pglane_pid" ||
    die "pglane did not start accepting connections, see $out/pglane.log"
  note "pglane on 127.0.0.1:$port (transaction pool, size $POOL_SIZE)"
else
  port=$PG_PRIMARY_PORT
  note "PostgreSQL directly on 127.0.0.1:$port"
fi

summary=()
failures=()
suite_broken=0

# ---- psycopg ----

if [ "$run_psycopg" = 1 ]; then
  note "psycopg: running ${#PSYCOPG_FILES[@]} files (a few minutes)"
  export PSYCOPG_TEST_DSN="host=127.0.0.1 port=$port dbname=$APP_DB user=$APP_USER password=$APP_PASSWORD sslmode=verify-full sslrootcert=$TLS_CA"
  # Not `-p no:cacheprovider` as the peer README says: 3.1.7's conftest reads config.cache in
  # pytest_sessionstart and dies without it. The cache goes to the throwaway work dir instead.
  # SIGINT at the suite limit makes pytest stop, still writing its summary and junit file.
  rc=0
  (cd "$psycopg_dir" && timeout -s INT -k 60 "${PEER_SUITE_TIMEOUT:-2400}" \
    "$PYTHON" -m pytest -m "not proxy and not mypy and not dns" -o cache_dir="$work/pytest-cache" \
    --timeout="${PEER_PYTEST_TIMEOUT:-60}" -v -rfE --junitxml="$out/psycopg-junit.xml" \
    "${PSYCOPG_FILES[@]}" </dev/null >"$out/psycopg.log" 2>&1) || rc=$?
  # 0 all passed, 1 some failed, 2 interrupted (the suite limit); anything else: it did not run.
  if [ "$rc" -gt 2 ] || [ ! -s "$out/psycopg-junit.xml" ]; then
    summary+=("psycopg: did not run (pytest exit $rc), see $out/psycopg.log")
    suite_broken=1
  else
    counts=$("$PYTHON" - "$out/psycopg-junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
t = f = s = 0
for suite in ET.parse(sys.argv[1]).getroot().iter("testsuite"):
    t += int(suite.get("tests", 0))
    f += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    s += int(suite.get("skipped", 0))
print(f"{t - f - s} passed, {f} failed, {s} skipped")
EOF
    )
    if [ "$rc" = 2 ]; then counts+=" (stopped at the ${PEER_SUITE_TIMEOUT:-2400} s suite limit)"; fi
    summary+=("psycopg: $counts")
    # -rfE lines: "FAILED tests/x.py::test - message" and "ERROR tests/x.py::test - message".
    grep -E '^(FAILED|ERROR) ' "$out/psycopg.log" |
      sed -E 's/ - .*//; s/^FAILED //; s/^ERROR (.*)/\1 (error in setup or teardown)/' |
      sort -u >"$out/psycopg-failed.txt" || true
    while IFS= read -r line; do failures+=("psycopg $line"); done <"$out/psycopg-failed.txt"
  fi
fi

# ---- node-postgres ----

if [ "$run_node" = 1 ]; then
  mkdir -p "$out/node"
  pg_dir=$node_dir/packages/pg
  mapfile -t node_files < <(cd "$pg_dir" && find test/unit test/integration -name '*-tests.js' | sort)
  [ ${#node_files[@]} -gt 0 ] || die "node-postgres: no test files found"
  note "node-postgres: running ${#node_files[@]} files, one process each"
  node_pass=0
  node_fail=0
  : >"$out/node-results.txt"
  for file in "${node_files[@]}"; do
    log=$out/node/${file//\//__}.log
    rc=0
    # One process per file, as its Makefile does. 120 s bounds sasl-scram-tests.js, which
    # waits for the server's authentication timeout.
    (cd "$pg_dir" && PGHOST=127.0.0.1 PGPORT=$port PGUSER=$APP_USER PGPASSWORD=$APP_PASSWORD \
      PGDATABASE=$APP_DB SCRAM_TEST_PGUSER=$APP_USER SCRAM_TEST_PGPASSWORD=$APP_PASSWORD \
      timeout -k 10 120 node "$file" </dev/null >"$log" 2>&1) || rc=$?
    if [ "$rc" = 0 ]; then
      node_pass=$((node_pass + 1))
      echo "PASS $file" >>"$out/node-results.txt"
    else
      node_fail=$((node_fail + 1))
      reason="exit $rc"
      if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then reason="timed out"; fi
      echo "FAIL $file ($reason)" >>"$out/node-results.txt"
      failures+=("node-postgres $file ($reason)")
    fi
  done
  summary+=("node-postgres: $node_pass passed, $node_fail failed (files)")
fi

# ---- report ----

{
  echo "target: $target$([ "$target" = pglane ] && echo " (transaction pool, size $POOL_SIZE)")"
  printf '%s\n' "${summary[@]}"
  if [ ${#failures[@]} -gt 0 ]; then
    echo "failed:"
    printf '  %s\n' "${failures[@]}"
  fi
  echo "details: $out"
} | tee "$out/summary.txt"

[ "$suite_broken" = 0 ] || die "a suite could not run"
exit 0
