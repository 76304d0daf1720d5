#!/usr/bin/env bash
# Benchmark charts (PNG, gnuplot), written beside bench/RESULTS.md.
#
#   bench/plot.sh [INPUT...]
#
# INPUT, any mix of:
#   FILE.md   markdown from bench/compare.sh: bench/RESULTS.md or a saved stdout. Every
#             "Throughput, `-M MODE`" table is read; its section (session/transaction pooling,
#             -c N) comes from the heading above it or the "Each run:" line.
#   DIR       a compare.sh scratch dir kept with KEEP_TMP=1 (/tmp/pglane-bench.*, its raw
#             results/load.TARGET.MODE files: "tps latency cpu p99" per round, medians taken), or
#             a failover series dir (TARGET-ROUND.csv from bench/failover.sh)
#   FILE.csv  one failover.py --series file
# With no INPUT: bench/RESULTS.md (compare.sh --write saves reports to paste into it; their raw
# files live in a scratch dir that is deleted) and the newest /tmp/pglane-failover-series/*/ (failover.sh's default
# SERIES_DIR), when there is one.
#
# Writes compare-tps.png and compare-cpu.png (median tps and proxy CPU s per 1,000 transactions,
# one group of bars per pooling mode, -c and -M, one bar per target) and failover-writes.png
# (acknowledged writes per second through a failover, one panel per target, every round), and
# prints the paths written. OUT_DIR=bench by default.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
root=$(cd "$here/.." && pwd)
OUT_DIR=${OUT_DIR:-$here}
mkdir -p "$OUT_DIR"
command -v gnuplot >/dev/null || die "gnuplot not found (apt-get install gnuplot-nox)"
if gnuplot -e 'set terminal pngcairo' 2>/dev/null; then
  term="set terminal pngcairo noenhanced font 'sans,10'"
else
  term="set terminal png noenhanced"
fi

tmp=$(mktemp -d /tmp/pglane-plot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
long="$tmp/compare.tsv"  # one line per table row: section, mode, target, tps, cpu ("?": none)
: >"$long"
series=()                # failover CSVs

# md_tables FILE: the Throughput tables of a compare.sh report, as $long lines. Target labels
# are shortened ("PgBouncer 1.18.0" -> "PgBouncer 1.18", "pglane d3498f9 (2 workers)" -> "pglane").
md_tables() {
  awk -v file="${1##*/}" 'BEGIN { OFS = "\t"; sec = file }
    function section(s, p) {
      p = s ~ /[Ss]ession pooling/ ? "session" : s ~ /[Tt]ransaction pooling/ ? "transaction" : ""
      if (match(s, /-c [0-9]+/)) p = p (p == "" ? "" : ", ") substr(s, RSTART, RLENGTH)
      return p == "" ? sec : p
    }
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    function num(v) { v = trim(v); return v ~ /^[0-9.]+$/ ? v : "?" }
    function short(t) {
      if (t ~ /^direct/) return "direct"
      if (match(t, /^PgBouncer [0-9]+\.[0-9]+/) || match(t, /^pglane(-[a-z]+)?/)) return substr(t, 1, RLENGTH)
      return t
    }
    /^#+ / {
      mode = ""
      if (match($0, /^#+ Throughput, `-M [a-z]+`/)) { mode = substr($0, 1, RLENGTH - 1); sub(/.*-M /, "", mode) }
      else if ($0 ~ /pooling/) sec = section($0)
      next
    }
    /^Each run: / { sec = section($0) }
    mode != "" && /^\| / && !/^\| *(target|---)/ {
      split($0, c, "|")
      print sec, mode, short(trim(c[2])), num(c[3]), num(c[6])
    }' "$1" >>"$long"
}

# median COLUMN FILE: the median of a column of a compare.sh results file ("-" skipped).
median() {
  awk -v n="$1" '$n != "-" { print $n }' "$2" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "?"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# raw_dir DIR: medians of a kept compare.sh scratch dir's results, as $long lines. The section
# comes from the proxies' configs and pgbench's logs, PgBouncer's version from its log.
raw_dir() {
  local d=$1 f t m pool clients ver
  # (The awk scripts read to the end: exiting early could kill cat with SIGPIPE.)
  pool=$(cat "$d"/pglane.toml "$d"/pgbouncer/pgbouncer.ini 2>/dev/null | awk -F'"' '
    /^pool_mode = / && v == "" { v = $1; sub(/.* /, "", v) }
    /^\[/ { p = /^\[pool\]/ } p && /^mode = / && v == "" { v = $2 } END { print v }' || true)
  clients=$(cat "$d"/runs/load.*.log 2>/dev/null | awk '/^number of clients:/ && n == "" { n = $4 } END { print n }' || true)
  ver=$(grep -ho 'PgBouncer [0-9]*\.[0-9]*' "$d"/pgbouncer/pgbouncer.log 2>/dev/null | head -n1 || true)
  for f in "$d"/results/load.*.*; do
    t=${f##*/load.} m=${f##*.}
    t=${t%."$m"}
    [ "$t" != pgbouncer ] || t=${ver:-PgBouncer}
    printf '%s\t%s\t%s\t%s\t%s\n' "${pool:-${d##*/}}${clients:+, -c $clients}" "$m" "$t" \
      "$(median 1 "$f")" "$(median 3 "$f")" >>"$long"
  done
}

if [ $# -eq 0 ]; then
  set -- "$here/RESULTS.md"
  latest=$(for d in /tmp/pglane-failover-series/*/; do
    if compgen -G "$d*.csv" >/dev/null; then echo "$d"; fi
  done | sort | tail -n1)
  [ -z "$latest" ] || set -- "$@" "$latest"
fi
for input in "$@"; do
  input=${input%/}
  if [ -d "$input" ] && compgen -G "$input/results/load.*" >/dev/null; then
    raw_dir "$input"
  elif [ -d "$input" ] && [ "${input##*/}" = results ] && compgen -G "$input/load.*" >/dev/null; then
    raw_dir "${input%/*}"
  elif [ -d "$input" ] && compgen -G "$input/*.csv" >/dev/null; then
    series+=("$input"/*.csv)
  elif [ -f "$input" ] && [[ $input == *.csv ]]; then
    series+=("$input")
  elif [ -f "$input" ]; then
    md_tables "$input"
  else
    die "$input: not a compare.sh report, a kept compare.sh dir or failover series"
  fi
done

written=()
# bars COLUMN PNG TITLE YLABEL LABELFORMAT: grouped bars of $long's COLUMN (4 tps, 5 cpu).
bars() {
  local col=$1 png=$2 data="$tmp/bars$1.tsv" order colors="" t b=0 o=0
  # Targets in a fixed order: direct, PgBouncer (by version), pglane, other pglane runs.
  order=$(awk -F'\t' -v c="$col" '$c != "?" { print $3 }' "$long" | sort -u |
    awk '{ print ($0 == "direct" ? 0 : /^PgBouncer/ ? 1 : $0 == "pglane" ? 2 : 3) "\t" $0 }' |
    sort | cut -f2 | paste -sd'|')
  [ -n "$order" ] || { warn "no values for $2: skipped"; return 0; }
  # Wide table: one row per section and mode that has a value, one column per target.
  awk -F'\t' -v c="$col" -v order="$order" 'BEGIN { OFS = "\t"; nt = split(order, T, "|") }
    $c != "?" { k = $1 "\t" $2; if (!(k in v)) rows[++nr] = k; v[k] = 1; val[k, $3] = $c }
    END {
      h = "section" OFS "mode"; for (j = 1; j <= nt; j++) h = h OFS T[j]; print h
      for (r = 1; r <= nr; r++) {
        line = rows[r]
        for (j = 1; j <= nt; j++) line = line OFS ((rows[r], T[j]) in val ? val[rows[r], T[j]] : "NaN")
        print line
      }
    }' "$long" >"$data"
  # Colours: grey direct, blues for PgBouncer versions, oranges for pglane.
  local blues=("#9ecae1" "#4292c6" "#08519c") others=("#fdae6b" "#a63603" "#31a354" "#756bb1")
  IFS='|' read -r -a targets <<<"$order"
  for t in "${targets[@]}"; do
    case $t in
      direct) colors+=" #9e9e9e" ;;
      PgBouncer*) colors+=" ${blues[b++ % 3]}" ;;
      pglane) colors+=" #e6550d" ;;
      *) colors+=" ${others[o++ % 4]}" ;;
    esac
  done
  gnuplot <<EOF
$term size 1200,600
set output '$png'; set title "$3"; set ylabel "$4"
set datafile separator "\t"; set key autotitle columnhead top right
set style data histograms; set style histogram clustered gap 1; set boxwidth 1
set style fill solid 0.9 border rgb "#505050"
set grid ytics; set xtics nomirror scale 0; set bmargin 4.5
set yrange [0:*]; set offsets 0, 0, graph 0.1, 0   # room above the bars for their values
colors = "$colors"; nt = ${#targets[@]}
# Bars, then each bar's value above it (bar j of nt in group x is centred at
# x + (j - (nt - 1) / 2) / (nt + 1)), then "n/a" where a target has no value.
plot for [i = 3:nt + 2] '$data' using i:xtic(strcol(1) . "\n-M " . strcol(2)) lc rgb word(colors, i - 2), \
  for [i = 3:nt + 2] '$data' using (\$0 + (i - 3 - (nt - 1) / 2.0) / (nt + 1)):(strcol(i) eq "NaN" ? 1/0 : column(i)):(sprintf("$5", column(i))) \
    with labels offset 0, 0.7 font ",8" notitle, \
  for [i = 3:nt + 2] '$data' using (\$0 + (i - 3 - (nt - 1) / 2.0) / (nt + 1)):(0):(strcol(i) eq "NaN" ? "n/a" : "") \
    with labels offset 0, 0.7 font ",8" tc rgb "#808080" notitle
EOF
  written+=("$png")
}

if [ -s "$long" ]; then
  bars 4 "$OUT_DIR/compare-tps.png" "Throughput: median pgbench tps over interleaved rounds (higher is better)" \
    "transactions per second" "%.0f"
  bars 5 "$OUT_DIR/compare-cpu.png" "Proxy CPU (utime + stime) per 1,000 transactions, median (lower is better)" \
    "CPU seconds / 1,000 tx" "%.4f"
else
  warn "no compare.sh results among the inputs: compare charts skipped"
fi

# The failover chart: one panel per target (from each CSV's first line), every round in it;
# the event lines (primary stopped, promote, promotion visible, old primary up) are round 1's.
if [ ${#series[@]} -gt 0 ]; then
  png="$OUT_DIR/failover-writes.png"
  mapfile -t tlist < <(for f in "${series[@]}"; do sed -n '1s/.*target=\([^ ]*\).*/\1/p' "$f"; done | awk '!s[$0]++')
  {
    echo "$term size 1200,$((250 + 300 * ${#tlist[@]}))"
    echo "set output '$png'"
    echo 'set datafile separator ","'
    echo "set multiplot layout ${#tlist[@]},1 title 'Acknowledged writes per second through a failover (100 ms buckets; t = 0: pg_ctl promote started)'"
    echo 'set grid; set key top right; set xlabel "seconds"; set ylabel "writes / s"; set yrange [0:*]; set autoscale xfix'
    for t in "${tlist[@]}"; do
      echo "unset arrow; unset label; set title '$t'"
      plots=() first=1
      for f in "${series[@]}"; do
        sed -n '1p' "$f" | grep -q "target=$t\( \|$\)" || continue
        if [ "$first" = 1 ]; then
          sed -n '2s/^# events: //p' "$f" | tr ' ' '\n' | awk -F= 'NF == 2 {
            y = $1 == "visible" ? 0.75 : 0.98
            printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb \"#606060\"\n", $2, $2
            printf "set label \"%s\" at %s, graph %s rotate by 90 right offset -0.7, 0 font \",8\"\n", $1, $2, y }'
        fi
        r=${f##*/}
        plots+=("'$f' using \"t_s\":\"writes_per_s\" with steps lw 1.5 title '${r%.csv}'")
        plots+=("'$f' using \"t_s\":\"lost_per_s\" with fillsteps fs transparent solid 0.5 lc rgb '#d62728' $([ "$first" = 1 ] && echo "title 'acknowledged, then lost'" || echo notitle)")
        first=0
      done
      (IFS=,; echo "plot ${plots[*]}")
    done
    echo 'unset multiplot'
  } >"$tmp/failover.gp"
  gnuplot "$tmp/failover.gp"
  written+=("$png")
fi

[ ${#written[@]} -gt 0 ] || die "nothing plotted"
for png in "${written[@]}"; do echo "wrote ${png#"$root"/}"; done
