#!/usr/bin/env bash
# The WAL against the disk it runs on, measured in the same run.
#
#   bench/wal_vs_disk.sh [BULWARK] [DIR]      (RUNS=5 by default)
#
# Per run, on the same file system:
#   disk  synced sequential bandwidth: dd, 1 MiB writes with O_DSYNC
#   disk  bare sync latency: dd, 256-byte writes with O_DSYNC (write + sync each)
#   wal   lone entry: one writer waiting for each 256-byte entry (append + fdatasync)
#   wal   group commit: one writer submitting 256-byte entries without waiting, 64 at a
#         time (as a Raft leader hands over a Ready's worth of proposals);
#         one fdatasync covers every entry queued behind it
# and prints the medians over the runs, and the medians of each run's ratios (the
# disk of a shared machine varies from run to run; within a run both sides see it alike):
#   group-commit log bandwidth / dd bandwidth   (target >= 0.90)
#   lone-entry latency / bare sync latency       (target <= 1.20)
set -euo pipefail
BULWARK=${1:-build-release/bin/bulwark}
DIR=${2:-$(mktemp -d -p "${TMPDIR:-/var/tmp}" bw-walbench-XXXXXX)}
RUNS=${RUNS:-5}
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

# "N bytes (...) copied, S s, ..." -> "N S"
dd_bytes_secs() { awk '/copied/ { print $1, $(NF-3) }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$DIR/dd_bw"; : >"$DIR/dd_lat"; : >"$DIR/wal_lat"; : >"$DIR/wal_lat_p50"; : >"$DIR/wal_bw"
: >"$DIR/ratio_bw"; : >"$DIR/ratio_lat"
for run in $(seq 1 "$RUNS"); do
  read -r bytes secs < <(dd if=/dev/zero of="$DIR/dd.bin" bs=1M count=256 oflag=dsync 2>&1 | dd_bytes_secs)
  echo "$bytes $secs" | awk '{ printf "%.2f\n", $1 / $2 / 1e6 }' >>"$DIR/dd_bw"
  read -r bytes secs < <(dd if=/dev/zero of="$DIR/dd2.bin" bs=256 count=2000 oflag=dsync 2>&1 | dd_bytes_secs)
  echo "$secs" | awk '{ printf "%.1f\n", $1 / 2000 * 1e6 }' >>"$DIR/dd_lat"
  rm -f "$DIR/dd.bin" "$DIR/dd2.bin"

  out=$("$BULWARK" storage-load --dir "$DIR/lone" --no-state --report --writers 1 --count 2000 \
    --value-bytes 256 2>/dev/null)
  echo "$out" | sed -E 's/.*latency mean ([0-9.]+) us, p50 ([0-9.]+) us.*/\1/' >>"$DIR/wal_lat"
  echo "$out" | sed -E 's/.*latency mean ([0-9.]+) us, p50 ([0-9.]+) us.*/\2/' >>"$DIR/wal_lat_p50"
  out=$("$BULWARK" storage-load --dir "$DIR/bw" --no-state --report --async --writers 1 --batch 64 \
    --seconds 5 --value-bytes 256 2>/dev/null)
  echo "$out" | sed -E 's/.* ([0-9.]+) MB\/s written to the log.*/\1/' >>"$DIR/wal_bw"
  # The ratios of each run: its two sides saw the same disk at the same time.
  awk -v a="$(tail -1 "$DIR/wal_bw")" -v b="$(tail -1 "$DIR/dd_bw")" 'BEGIN { printf "%.3f\n", a / b }' >>"$DIR/ratio_bw"
  awk -v a="$(tail -1 "$DIR/wal_lat")" -v b="$(tail -1 "$DIR/dd_lat")" 'BEGIN { printf "%.3f\n", a / b }' >>"$DIR/ratio_lat"
  echo "run $run: dd $(tail -1 "$DIR/dd_bw") MB/s, dd sync $(tail -1 "$DIR/dd_lat") us;" \
    "wal lone $(tail -1 "$DIR/wal_lat") us mean, group commit $(tail -1 "$DIR/wal_bw") MB/s ($out)"
  rm -rf "$DIR/lone" "$DIR/bw"
done

dd_bw=$(median <"$DIR/dd_bw"); dd_lat=$(median <"$DIR/dd_lat")
wal_bw=$(median <"$DIR/wal_bw"); wal_lat=$(median <"$DIR/wal_lat"); wal_p50=$(median <"$DIR/wal_lat_p50")
echo
echo "medians over $RUNS runs:"
echo "  disk (dd, 1 MiB O_DSYNC writes):  $dd_bw MB/s"
echo "  wal group commit, 256 B entries:  $wal_bw MB/s"
echo "  disk bare sync (dd, 256 B O_DSYNC): $dd_lat us (mean)"
echo "  wal lone entry (mean / p50):      $wal_lat / $wal_p50 us"
echo "median of the per-run ratios:"
echo "  group-commit bandwidth / dd:      $(median <"$DIR/ratio_bw")   (target >= 0.90)"
echo "  lone-entry latency / bare sync:   $(median <"$DIR/ratio_lat")   (target <= 1.20, means)"
