#!/usr/bin/env bash
# bulwark against etcd 3.4 (Debian's etcd-server), side by side, in one run.
#
#   bench/compare-etcd.sh        (BULWARK=build-release/bin/bulwark RUNS=3 TOTAL=20000)
#   ONLY=keepalive bench/compare-etcd.sh    (only the loads whose name matches ONLY)
#
# Starts a three-member etcd and a three-member bulwark (both fsync every
# write before acknowledging it) and one-member clusters of each, then runs
# the same loads with `bulwark bench` against each in turn, RUNS times,
# alternating. For every load it samples the servers' CPU time (user+system,
# all members) and, at the end, each member's peak resident memory (VmHWM).
# Prints each run and a table of medians with the ratios bulwark/etcd.
set -euo pipefail
cd "$(dirname "$0")/.."
BULWARK=${BULWARK:-build-release/bin/bulwark}
RUNS=${RUNS:-3}
TOTAL=${TOTAL:-20000}
VAL=${VAL:-256}
. bench/lib.sh
bench_init

start_etcd etcd 3 26000
start_bulwark bw 3 26100
start_etcd etcd1 1 26200
start_bulwark bw1 1 26300

# name|clients|conns|load and flags|cluster suffix (""=3 members, 1=one member)
LOADS=(
  "put-100|100|10|put --key-space-size 100000|"
  "put-1|1|1|put --key-space-size 100000|"
  "txn-put-100|100|10|txn-put --key-space-size 100000|"
  "range-l-100|100|10|range --consistency l --key foo|"
  "range-s-100|100|10|range --consistency s --key foo|"
  "keepalive-100|100|10|lease-keepalive|"
  "put-100-single|100|10|put --key-space-size 100000|1"
  "watch-10000-single|1|100|watch --key w --streams 100 --watchers-per-stream 100 --total 50 --rate 100|1"
)
if [ -n "${ONLY:-}" ]; then
  picked=()
  for spec in "${LOADS[@]}"; do
    [[ ${spec%%|*} =~ $ONLY ]] && picked+=("$spec")
  done
  LOADS=("${picked[@]}")
fi

run_load() {
  local sys=$1 spec=$2 name clients conns load suffix eps pids before after out total
  IFS='|' read -r name clients conns load suffix <<<"$spec"
  eval "eps=\$${sys}${suffix}_ENDPOINTS"
  eval "pids=(\"\${${sys}${suffix}_PIDS[@]}\")"
  total=$TOTAL
  [ "$clients" = 1 ] && total=$((TOTAL / 10))
  # The watch load brings its own count (puts; every watcher sees each).
  local sizes=(--total "$total" --val-size "$VAL")
  [ "${load%% *}" = watch ] && sizes=()
  before=$(cpu_seconds "${pids[@]}")
  # shellcheck disable=SC2086
  out=$("$BULWARK" bench $load --endpoints "$eps" --clients "$clients" --conns "$conns" \
    "${sizes[@]}" --json --no-progress)
  after=$(cpu_seconds "${pids[@]}")
  local tp p99 mean ok cpu_us
  tp=$(json_field throughput <<<"$out")
  p99=$(json_field latency_ms.p99 <<<"$out")
  mean=$(json_field latency_ms.mean <<<"$out")
  ok=$(json_field ok <<<"$out")
  cpu_us=$(awk -v a="$before" -v b="$after" -v n="$ok" 'BEGIN { printf "%.1f", (b - a) * 1e6 / (n > 0 ? n : 1) }')
  echo "$tp $p99 $mean $cpu_us" >>"$BENCH_DIR/$sys.$name"
  printf '  %-6s %-15s %9.0f/s  p99 %7.2f ms  mean %6.2f ms  cpu %7.1f us/req\n' \
    "$sys" "$name" "$tp" "$p99" "$mean" "$cpu_us"
}

# Seed the key the range loads read.
ETCDCTL_API=3 etcdctl --endpoints "$etcd_ENDPOINTS" put foo bar >/dev/null
ETCDCTL_API=3 etcdctl --endpoints "$bw_ENDPOINTS" put foo bar >/dev/null

for r in $(seq 1 "$RUNS"); do
  echo "run $r:"
  for spec in "${LOADS[@]}"; do
    run_load etcd "$spec"
    run_load bw "$spec"
  done
done

peak_mb() {
  local pid max=0 kb
  for pid in "$@"; do
    kb=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$max" ] && max=$kb
  done
  awk -v k="$max" 'BEGIN { printf "%.0f", k / 1024 }'
}

med() { awk -v c="$2" '{ print $c }' "$BENCH_DIR/$1" | median; }
echo
echo "medians of $RUNS runs ($TOTAL requests, 1 client: $((TOTAL / 10)); $VAL-byte values):"
printf '%-16s %12s %12s %7s %10s %10s %9s %9s %7s\n' load "etcd /s" "bulwark /s" ratio \
  "etcd p99" "bw p99" "etcd cpu" "bw cpu" "cpu"
for spec in "${LOADS[@]}"; do
  name=${spec%%|*}
  et=$(med "etcd.$name" 1); bt=$(med "bw.$name" 1)
  ep=$(med "etcd.$name" 2); bp=$(med "bw.$name" 2)
  ec=$(med "etcd.$name" 4); bc=$(med "bw.$name" 4)
  awk -v n="$name" -v et="$et" -v bt="$bt" -v ep="$ep" -v bp="$bp" -v ec="$ec" -v bc="$bc" 'BEGIN {
    printf "%-16s %12.0f %12.0f %6.2fx %8.2fms %8.2fms %7.0fus %7.0fus %6.2fx\n",
      n, et, bt, bt / et, ep, bp, ec, bc, bc / ec }'
done
if [ -s "$BENCH_DIR/bw.put-1" ]; then
  awk -v e="$(med etcd.put-1 3)" -v b="$(med bw.put-1 3)" \
    'BEGIN { printf "put, 1 client: mean latency etcd %.3f ms, bulwark %.3f ms (%.2fx)\n", e, b, b / e }'
fi
echo "peak memory per member (MB, VmHWM): etcd $(peak_mb "${etcd_PIDS[@]}"), bulwark $(peak_mb "${bw_PIDS[@]}")"
echo "peak memory of the one-member clusters (put-100-single, then the watch load): etcd $(peak_mb "${etcd1_PIDS[@]}"), bulwark $(peak_mb "${bw1_PIDS[@]}")"
