#!/usr/bin/env bash
# What exactly-once costs, measured on this machine in one run:
#
#   1. keyed writes against the same writes without keys: `bulwark bench put`
#      and `keyed-put` (a fresh idempotency key per request) on a three-member
#      bulwark cluster, alternating, RUNS times;
#   2. Begin+Complete pairs per second of bulwark's Idempotency service
#      (`bulwark bench idem`, three members and one) against the usual Redis
#      idempotency store: `SET key token NX PX ttl` then `SET key response EX
#      86400` (`bulwark bench redis-idem`), Debian's redis-server with
#      `appendfsync always`.
#
#   bench/exactly-once.sh        (BULWARK=build/bin/bulwark RUNS=3 CLIENTS=100 TOTAL=20000)
#
# Prints each run and the medians, with the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
BULWARK=${BULWARK:-build/bin/bulwark}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-100}
CONNS=${CONNS:-3}
TOTAL=${TOTAL:-20000}
VAL=${VAL:-256}
. bench/lib.sh
bench_init

start_bulwark bw 3 24000
start_bulwark one 1 24100
start_redis redis 24200

run() {
  local load=$1 eps=$2
  "$BULWARK" bench "$load" --endpoints "$eps" --redis 127.0.0.1:24200 --clients "$CLIENTS" \
    --conns "$CONNS" --total "$TOTAL" --val-size "$VAL" --key-space-size 100000 \
    --json --no-progress
}

loads=(put keyed-put idem idem-1 redis-idem)
for l in "${loads[@]}"; do : >"$BENCH_DIR/$l"; done
for r in $(seq 1 "$RUNS"); do
  line="run $r:"
  for l in "${loads[@]}"; do
    case $l in
      idem-1) out=$(run idem 127.0.0.1:24102) ;;
      *) out=$(run "$l" "$bw_ENDPOINTS") ;;
    esac
    tp=$(json_field throughput <<<"$out")
    p99=$(json_field latency_ms.p99 <<<"$out")
    errs=$(json_field errors <<<"$out")
    echo "$tp $p99 $errs" >>"$BENCH_DIR/$l"
    line+=" $l $tp/s (p99 $p99 ms, $errs errors);"
  done
  echo "$line"
done

med() { awk -v c="$2" '{ print $c }' "$BENCH_DIR/$1" | median; }
echo
echo "medians of $RUNS runs, $CLIENTS clients, $TOTAL requests, $VAL-byte values:"
printf '%-34s %12s %10s\n' "load" "per second" "p99 ms"
printf '%-34s %12s %10s\n' "put (3 members)" "$(med put 1)" "$(med put 2)"
printf '%-34s %12s %10s\n' "keyed put (3 members)" "$(med keyed-put 1)" "$(med keyed-put 2)"
printf '%-34s %12s %10s\n' "Begin+Complete (3 members)" "$(med idem 1)" "$(med idem 2)"
printf '%-34s %12s %10s\n' "Begin+Complete (1 member)" "$(med idem-1 1)" "$(med idem-1 2)"
printf '%-34s %12s %10s\n' "Redis SET NX PX + SET (fsync)" "$(med redis-idem 1)" "$(med redis-idem 2)"
awk -v k="$(med keyed-put 1)" -v p="$(med put 1)" -v i="$(med idem 1)" -v i1="$(med idem-1 1)" \
  -v r="$(med redis-idem 1)" 'BEGIN {
    printf "keyed / unkeyed put throughput: %.2f (cost %.0f%%)\n", k / p, (1 - k / p) * 100
    printf "Begin+Complete vs Redis: %.2fx (3 members), %.2fx (1 member)\n", i / r, i1 / r }'
