#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) in build-fuzz/ with clang-14, ASan and UBSan, and
# runs each over its committed corpus (tests/fuzz/corpus/<target>/).
#
#   scripts/fuzz.sh              replay the corpus only: every input once (fast; test.sh runs this)
#   scripts/fuzz.sh SECONDS      then fuzz each target for SECONDS, one target at a time; new
#                                inputs go to build-fuzz/corpus/<target>/, never to the
#                                committed corpus
#
# Prints per target the executions, exec/s and coverage (libFuzzer's cov: edges and ft:
# features) and whether it crashed. A crash, leak, timeout or out-of-memory input is saved as
# tests/fuzz/crashes/<target>/<kind>-<sha1> (not committed), its report is printed, and the
# script exits non-zero; replay one with build-fuzz/tests/fuzz/<target>_fuzz FILE. An input that reproduces a product bug belongs in
# tests/fuzz/corpus/<target>/ once it is understood, so that every later run replays it.
#
# Environment:
#   FUZZ_TARGETS="frame sql"   only these targets (default: all)
#   FUZZ_KEEP_GOING=1          with SECONDS: keep fuzzing after a crash (libFuzzer -fork=1 with
#                              -ignore_crashes), to find more than one; every crash is saved and
#                              the script still fails. Its cov/ft are the fork mode's own totals.
#   JOBS=N                     parallel compile jobs (default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
root=$(repo_root)
cd "$root"

seconds=${1:-0}
case $seconds in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
JOBS=${JOBS:-2}
targets=(${FUZZ_TARGETS:-frame sql session_effects scram config users txn floor})
build=build-fuzz

command -v clang++-14 >/dev/null || die "clang++-14 not found (run scripts/bootstrap.sh)"
compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null ||
  die "libFuzzer runtime not found (apt-get install libfuzzer-14-dev; scripts/bootstrap.sh)"

# Debug type so that asserts stay on; PGLANE_FUZZ adds -O1 and the sanitizers.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DPGLANE_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j "$JOBS" --target fuzzers

# Sanitizer reports end the run as a crash; inherited options (test.sh's) do not apply here.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

mkdir -p "$build/fuzz-logs"
failed=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/${t}_fuzz"
  corpus="tests/fuzz/corpus/$t"
  crashes="tests/fuzz/crashes/$t"
  log="$build/fuzz-logs/$t.log"
  [ -x "$bin" ] || die "no fuzz target $bin"
  [ -d "$corpus" ] || die "no corpus $corpus"
  mkdir -p "$crashes"
  stamp="$build/fuzz-logs/$t.start"
  touch "$stamp"
  # -timeout: seconds one input may take; generous, the machine is shared.
  common=(-timeout=25 -rss_limit_mb=2048 -artifact_prefix="$crashes/" -print_final_stats=1)
  if [ "$seconds" -eq 0 ]; then
    args=(-runs=0 "$corpus")
  else
    scratch="$build/corpus/$t"
    mkdir -p "$scratch"
    args=(-max_total_time="$seconds")
    if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
      args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    # The first directory receives new inputs; the committed corpus is only read.
    args+=("$scratch" "$corpus")
  fi
  rc=0
  "$bin" "${common[@]}" "${args[@]}" >"$log" 2>&1 </dev/null || rc=$?
  # Every input saved during this run (slow-unit-* files are only slow, not failures).
  mapfile -t found < <(find "$crashes" -type f -newer "$stamp" ! -name 'slow-unit-*' | sort)

  # The last status line: "#N ... cov: C ft: F corp: K/SIZE ..." (fork mode: "#N: cov: ...").
  status=$(grep -E '^#[0-9]+:?[[:space:]].*cov: ' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  execs=${execs:-$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status")}
  if [ -z "$rate" ] && [ -n "$execs" ] && [ "$seconds" -gt 0 ]; then
    rate=$((execs / seconds))  # fork mode prints no average of its own
  fi
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9/]*[a-zA-Z]*\).*/\1/p' <<<"$status")
  if [ "$rc" -eq 0 ] && [ ${#found[@]} -eq 0 ]; then
    result="ok"
  else
    result="CRASH (${#found[@]} saved)"
    failed+=("$t")
  fi
  printf '%-16s execs %-10s exec/s %-7s cov %-6s ft %-7s corpus %-12s %s\n' "$t" \
    "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
  if [ "$rc" -ne 0 ] && [ ${#found[@]} -eq 0 ]; then
    tail -n 40 "$log" | sed 's/^/    /' >&2
  fi
  # The report of each saved input, replayed: what failed (sanitizer or invariant) and where.
  for f in "${found[@]:0:5}"; do
    echo "  $f" >&2
    "$bin" -timeout=25 -rss_limit_mb=2048 "$f" 2>&1 </dev/null |
      grep -E -A 30 'ERROR: |runtime error|invariant failed|missed:|accepts|routed to' |
      grep -v -E '^INFO|^MS:|^artifact_prefix|^Base64|^0x|libFuzzer has rudimentary|Combine libFuzzer' |
      head -n 30 | sed 's/^/    /' >&2 || true
  done
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under tests/fuzz/crashes/, logs under $build/fuzz-logs/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
