#!/usr/bin/env bash
# Restart time of a member holding ENTRIES writes: how long from `bulwark
# start` on its data directory to its first linearizable read.
#
#   bench/restart_time.sh [BULWARK]     (RUNS=5, ENTRIES=1000000, VAL=100)
#
# Starts a one-member cluster, writes ENTRIES puts (distinct keys, VAL-byte
# values) with `bulwark bench put`, then per run: kills the member with
# SIGKILL, times `bulwark check-data` over its directory, starts it again and
# times, as a whole process, the restart until `etcdctl get` (a linearizable
# read) answers: the member loads its snapshot, recovers the WAL after it and
# replays it. Medians over RUNS; target <= 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
BULWARK=${1:-build-release/bin/bulwark}
RUNS=${RUNS:-5}
ENTRIES=${ENTRIES:-1000000}
VAL=${VAL:-100}
. bench/lib.sh
bench_init

start_bulwark rs 1 26500
ep=$rs_ENDPOINTS
pid=${rs_PIDS[0]}
"$BULWARK" bench put --endpoints "$ep" --clients 100 --conns 10 --total "$ENTRIES" \
  --key-space-size "$ENTRIES" --sequential-keys --val-size "$VAL" --no-progress | tail -2
echo "data directory: $(du -sh "$BENCH_DIR/rs-1" | cut -f1)"

# The member again, with the flags start_members gave it.
restart() {
  cluster_spec rs 1 26500
  "$BULWARK" start --name rs-1 --data-dir "$BENCH_DIR/rs-1" \
    --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls http://127.0.0.1:26503 --initial-advertise-peer-urls http://127.0.0.1:26503 \
    --initial-cluster "$CLUSTER" --initial-cluster-token rs >>"$BENCH_DIR/rs-1.log" 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
}
now() { date +%s.%N; }

: >"$BENCH_DIR/restart"; : >"$BENCH_DIR/check"
for run in $(seq 1 "$RUNS"); do
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
  t0=$(now); "$BULWARK" check-data "$BENCH_DIR/rs-1" >/dev/null; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$BENCH_DIR/check"
  t0=$(now); restart
  until ETCDCTL_API=3 etcdctl --endpoints "$ep" --command-timeout=1s get bench-ready >/dev/null 2>&1; do
    kill -0 "$pid" || { echo "member exited; its log:" >&2; tail "$BENCH_DIR/rs-1.log" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$BENCH_DIR/restart"
  echo "run $run: restart to first linearizable read $(tail -1 "$BENCH_DIR/restart") s," \
    "check-data $(tail -1 "$BENCH_DIR/check") s"
done
echo
echo "medians over $RUNS runs, $ENTRIES writes of $VAL bytes:"
echo "  restart to first linearizable read: $(median <"$BENCH_DIR/restart") s   (target <= 5 s)"
echo "  check-data:                         $(median <"$BENCH_DIR/check") s"
