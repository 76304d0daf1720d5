#!/usr/bin/env bash
# Checks that every C++ source follows .clang-format; exits non-zero and names the offenders
# otherwise.
#
#   scripts/lint.sh          check (clang-format --dry-run -Werror)
#   scripts/lint.sh --fix    reformat the files in place
#
# Files: *.cc and *.h under the source folders below; in a git checkout those git knows about
# (tracked, or new and not ignored), so build trees are never scanned.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
cd "$(repo_root)"

fix=0
case ${1:-} in
  "") ;;
  --fix) fix=1 ;;
  *) echo "usage: scripts/lint.sh [--fix]" >&2; exit 2 ;;
esac

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null || die "$CLANG_FORMAT not found (run scripts/bootstrap.sh)"

dirs=(protocol conf routing txn cache proxy tests bench)
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    # Listed by git but deleted in the working tree: nothing to check.
    [ -f "$f" ] && files+=("$f")
  done < <(git ls-files -z --cached --others --exclude-standard -- \
    "${dirs[@]/%//*.cc}" "${dirs[@]/%//*.h}" | sort -zu)
else
  existing=()
  for d in "${dirs[@]}"; do [ -d "$d" ] && existing+=("$d"); done
  if [ ${#existing[@]} -gt 0 ]; then
    while IFS= read -r -d '' f; do files+=("$f"); done < <(
      find "${existing[@]}" -type f \( -name '*.cc' -o -name '*.h' \) -print0 | sort -z)
  fi
fi

if [ ${#files[@]} -eq 0 ]; then
  note "no C++ files to check"
  exit 0
fi

if [ "$fix" = 1 ]; then
  "$CLANG_FORMAT" -i --style=file "${files[@]}"
  note "formatted ${#files[@]} files"
  exit 0
fi

if ! "$CLANG_FORMAT" --dry-run -Werror --style=file "${files[@]}"; then
  echo "lint: formatting differs from .clang-format; run scripts/lint.sh --fix" >&2
  exit 1
fi
note "${#files[@]} files formatted correctly"
