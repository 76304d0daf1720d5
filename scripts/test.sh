#!/usr/bin/env bash
# Installs dependencies, builds, and runs every check; exits non-zero if any stage fails.
#
# Stages (each reported as it ends; a failed stage does not stop the independent ones):
#   build      build/ (RelWithDebInfo): unit tests, then integration tests (they start their
#              own PostgreSQL and Redis sandbox on loopback)
#   systemd    systemd-analyze verify systemd/pglane.service, against the built binary
#   lint       scripts/lint.sh (clang-format)
#   fuzz       scripts/fuzz.sh: build-fuzz/ (clang-14, libFuzzer + ASan + UBSan), every fuzz
#              target replays its committed corpus once (tests/fuzz/corpus/); no new fuzzing
#   asan       build-asan/ (Debug, ASan + UBSan): unit tests and the integration tests with
#              PGLANE_SKIP_HEAVY=1
#
# Environment:
#   PGLANE_SKIP_ASAN=1   skip the sanitizer stage (quick local runs)
#   PGLANE_SKIP_FUZZ=1   skip the fuzz corpus replay
#   JOBS=N               parallel compile and unit-test jobs (default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
root=$(repo_root)
cd "$root"

JOBS=${JOBS:-2}
failed=()

# stage NAME COMMAND...: run COMMAND, record NAME as failed if it fails, never exit.
stage() {
  local name=$1
  shift
  printf '\n=== %s: %s\n' "$name" "$*"
  local start=$SECONDS
  if "$@"; then
    printf '=== %s: ok (%d s)\n' "$name" $((SECONDS - start))
  else
    printf '=== %s: FAILED (%d s)\n' "$name" $((SECONDS - start))
    failed+=("$name")
    return 1
  fi
}

# build_tree DIR CMAKE_ARGS...: configure (Ninja) and build.
build_tree() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" && cmake --build "$dir" -j "$JOBS"
}

# run_ctest DIR [ENV...]: unit tests (and anything unlabeled) in parallel, then the
# integration tests alone so that their timing checks (cancel within 1 s) run on a quiet machine.
run_ctest() {
  local dir=$1
  ctest --test-dir "$dir" --output-on-failure -LE integration -j "$JOBS" --no-tests=error &&
    ctest --test-dir "$dir" --output-on-failure -L integration --no-tests=ignore
}

# verify_unit: systemd-analyze rejects an ExecStart binary that does not exist, so verify a copy
# of the unit that points at the binary just built; any message it prints is a real finding.
verify_unit() {
  local binary="$root/build/proxy/pglane"
  [ -x "$binary" ] || { echo "no $binary to verify the unit against" >&2; return 1; }
  local tmp out rc=0
  tmp=$(mktemp -d)
  sed "s|/usr/local/bin/pglane|$binary|g" systemd/pglane.service >"$tmp/pglane.service"
  out=$(systemd-analyze verify "$tmp/pglane.service" 2>&1) || rc=$?
  rm -rf "$tmp"
  if [ -n "$out" ]; then printf '%s\n' "$out" >&2; fi
  [ "$rc" -eq 0 ] && [ -z "$out" ]
}

stage bootstrap "$here/bootstrap.sh" || die "could not install dependencies"

if stage build build_tree build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  stage test run_ctest build || true
  if command -v systemd-analyze >/dev/null 2>&1; then
    stage systemd verify_unit || true
  else
    warn "systemd-analyze not installed: unit file not verified"
  fi
fi

stage lint "$here/lint.sh" || true

if [ "${PGLANE_SKIP_FUZZ:-0}" = 1 ]; then
  note "PGLANE_SKIP_FUZZ=1: fuzz stage skipped"
else
  # Replay only: deterministic and quick. Fuzzing for new inputs is `scripts/fuzz.sh SECONDS`.
  stage fuzz "$here/fuzz.sh" || true
fi

if [ "${PGLANE_SKIP_ASAN:-0}" = 1 ]; then
  note "PGLANE_SKIP_ASAN=1: sanitizer stage skipped"
else
  # Any sanitizer report fails the test that triggered it.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  if stage asan-build build_tree build-asan -DCMAKE_BUILD_TYPE=Debug -DPGLANE_SANITIZE=ON \
    -DPGLANE_BUILD_BENCH=OFF; then
    stage asan-unit ctest --test-dir build-asan --output-on-failure -L unit -j "$JOBS" \
      --no-tests=error || true
    stage asan-integration env PGLANE_SKIP_HEAVY=1 \
      ctest --test-dir build-asan --output-on-failure -L integration --no-tests=ignore || true
  fi
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED stages: ${failed[*]}"
  exit 1
fi
echo "test.sh: all stages passed"
