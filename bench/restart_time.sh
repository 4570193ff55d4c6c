#!/usr/bin/env bash
# Restart time of a member with 1,000,000 entries in its log and its state.
#
#   bench/restart_time.sh [BULWARK] [DIR]     (RUNS=5, ENTRIES=1000000)
#
# Writes ENTRIES puts (100-byte values) through the WAL with group commit and
# applies them to the RocksDB state store, then times, as whole processes:
#   restart: recover the WAL (read and check every record of every segment),
#            open the state store, find nothing to replay
#   replay:  the same with the state store removed first, so every entry is
#            replayed into it (the worst case: a member whose state was lost)
# and `bulwark check-data` over the directory. Medians over RUNS; target for
# the restart: <= 5 s.
set -euo pipefail
BULWARK=${1:-build-release/bin/bulwark}
DIR=${2:-$(mktemp -d -p "${TMPDIR:-/var/tmp}" bw-restart-XXXXXX)}
RUNS=${RUNS:-5}
ENTRIES=${ENTRIES:-1000000}
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'; }

"$BULWARK" storage-load --dir "$DIR/data" --count "$ENTRIES" --writers 1 --batch 64 \
  --value-bytes 100 --report 2>/dev/null
echo "log: $(du -sh "$DIR/data/wal" | cut -f1), state: $(du -sh "$DIR/data/state" | cut -f1)"
"$BULWARK" storage-load --dir "$DIR/data" 2>&1 | sed 's/^/  /'

: >"$DIR/restart"; : >"$DIR/replay"; : >"$DIR/check"
for run in $(seq 1 "$RUNS"); do
  secs "$BULWARK" storage-load --dir "$DIR/data" >>"$DIR/restart"
  secs "$BULWARK" check-data "$DIR/data" >>"$DIR/check"
  rm -rf "$DIR/replay-data"; cp -r "$DIR/data" "$DIR/replay-data"; rm -rf "$DIR/replay-data/state"
  secs "$BULWARK" storage-load --dir "$DIR/replay-data" >>"$DIR/replay"
  echo "run $run: restart $(tail -1 "$DIR/restart") s, replay-all $(tail -1 "$DIR/replay") s," \
    "check-data $(tail -1 "$DIR/check") s"
done
echo
echo "medians over $RUNS runs, $ENTRIES entries:"
echo "  restart (log recovered, nothing to replay): $(median <"$DIR/restart") s   (target <= 5 s)"
echo "  restart replaying every entry:               $(median <"$DIR/replay") s"
echo "  check-data:                                  $(median <"$DIR/check") s"
