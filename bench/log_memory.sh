#!/usr/bin/env bash
# The Raft log's memory: one member takes PUTS puts of VAL-byte values with
# no snapshot in between (--snapshot-count above PUTS), once with
# --raft-log-cache-bytes 0 (applied entries leave memory at once) and once
# with it unbounded (every entry since the snapshot in memory, as every
# member kept it before 2026-12); prints each member's peak resident memory.
#
#   bench/log_memory.sh [build-release/bin/bulwark]     (PUTS=60000 VAL=1024)
set -euo pipefail
cd "$(dirname "$0")/.."
BULWARK=${1:-build-release/bin/bulwark}
PUTS=${PUTS:-60000}
VAL=${VAL:-1024}
. bench/lib.sh
bench_init
port=28400
for cache in 0 unbounded; do
  bytes=$cache
  [ "$cache" = unbounded ] && bytes=$((1 << 40))
  start_members "log$cache" 1 "$port" "$BULWARK" start --raft-log-cache-bytes "$bytes" \
    --snapshot-count $((PUTS * 10))
  eval "eps=\$log${cache}_ENDPOINTS"
  eval "pid=\${log${cache}_PIDS[0]}"
  "$BULWARK" bench put --endpoints "$eps" --clients 50 --conns 5 --total "$PUTS" \
    --val-size "$VAL" --key-space-size 1000 --json --no-progress >/dev/null
  printf 'raft log cache %-9s: %d puts of %d bytes, peak RSS %d MB\n' "$cache" "$PUTS" "$VAL" \
    $(($(awk '/VmHWM/ { print $2 }' "/proc/$pid/status") / 1024))
  port=$((port + 100))
done
