#!/bin/sh
# Runs the fuzz targets of a fuzz build (make build-fuzz).
#
#   fuzz/run.sh smoke BUILD SECONDS          each target SECONDS on its corpus in
#                                            fuzz/corpus/<target>, new inputs kept
#                                            in BUILD/fuzz-work (never in the tree)
#   fuzz/run.sh long BUILD SECONDS [TARGET]  the same, for longer, one at a time,
#                                            with a CPU-time report per target
#   fuzz/run.sh seeds BUILD                  rewrites fuzz/corpus/<target>/seed-*
#                                            from each target's Seeds()
#
# Any crash, sanitizer report, failed assertion, leak, timeout (a single
# input over 25 s) or out-of-memory fails the run; the input that did it is
# left in BUILD/fuzz-artifacts/ and its name is printed.
set -eu
mode=$1
build=$2
secs=${3:-10}
only=${4:-}
root=$(cd "$(dirname "$0")/.." && pwd)
targets=$(cd "$build/bin" && ls *_fuzz 2>/dev/null | sed 's/_fuzz$//')
[ -n "$targets" ] || { echo "no fuzz targets in $build/bin (make build-fuzz)"; exit 1; }
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-work"
status=0
# User + system CPU seconds of the children so far. `times` must run in this
# shell (a command substitution would report its own subshell), so it writes
# to a file.
child_cpu() {
  times >"$build/fuzz-work/.times"
  tail -1 "$build/fuzz-work/.times" | awk '{
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
    print t }'
}
for t in $targets; do
  [ -z "$only" ] || [ "$only" = "$t" ] || continue
  corpus="$root/fuzz/corpus/$t"
  if [ "$mode" = seeds ]; then
    rm -f "$corpus"/seed-*
    mkdir -p "$corpus"
    BW_FUZZ_WRITE_SEEDS="$corpus" "$build/bin/${t}_fuzz"
    continue
  fi
  work="$build/fuzz-work/$t"
  mkdir -p "$work"
  dict=""
  [ -f "$root/fuzz/$t.dict" ] && dict="-dict=$root/fuzz/$t.dict"
  log="$build/fuzz-work/$t.log"
  start=$(date +%s)
  child_cpu >"$build/fuzz-work/.cpu0"
  cpu0=$(cat "$build/fuzz-work/.cpu0")
  # shellcheck disable=SC2086
  if ! "$build/bin/${t}_fuzz" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" $dict \
      "$work" "$corpus" >"$log" 2>&1; then
    echo "FAIL $t (log: $log)"
    grep -E '^==[0-9]+==|^bulwark: assertion|runtime error|^SUMMARY|Test unit written' "$log" | head -20
    status=1
    continue
  fi
  end=$(date +%s)
  child_cpu >"$build/fuzz-work/.cpu1"
  cpu=$(echo "$(cat "$build/fuzz-work/.cpu1") $cpu0" | awk '{ printf "%.1f", $1 - $2 }')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  echo "ok   $t: $((end - start)) s, ${cpu} CPU-s, ${execs:-?} inputs, coverage ${cov:-?} edges, corpus $(ls "$work" | wc -l) new"
done
exit $status
