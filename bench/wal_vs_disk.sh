#!/usr/bin/env bash
# The WAL against the disk it runs on, measured in the same run.
#
#   bench/wal_vs_disk.sh [WAL_BENCH] [DIR]      (RUNS=5 by default)
#
# WAL_BENCH is the Google Benchmark program bench/wal_bench.cc
# (build-release/bin/wal_bench). Per run, on the same file system:
#   disk  synced sequential bandwidth: dd, 1 MiB writes with O_DSYNC
#   disk  bare sync latency: dd, 256-byte writes with O_DSYNC (write + sync each)
#   wal   lone entry: one 256-byte entry and its hard state appended, then one
#         fdatasync (BM_WalAppendSync/batch:1)
#   wal   group commit: 4096 entries of 256 bytes (1 MiB, as dd writes) appended,
#         then one fdatasync, as a member writes a Ready's worth of entries
#         (BM_WalAppendSync/batch:4096)
# and prints the medians over the runs, and the medians of each run's ratios (the
# disk of a shared machine varies from run to run; within a run both sides see it alike):
#   group-commit log bandwidth / dd bandwidth   (target >= 0.90)
#   lone-entry latency / bare sync latency       (target <= 1.20)
set -euo pipefail
WAL_BENCH=${1:-build-release/bin/wal_bench}
DIR=${2:-$(mktemp -d -p "${TMPDIR:-/var/tmp}" bw-walbench-XXXXXX)}
RUNS=${RUNS:-5}
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

# "N bytes (...) copied, S s, ..." -> "N S"
dd_bytes_secs() { awk '/copied/ { print $1, $(NF-3) }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$DIR/dd_bw"; : >"$DIR/dd_lat"; : >"$DIR/wal_lat"; : >"$DIR/wal_bw"
: >"$DIR/ratio_bw"; : >"$DIR/ratio_lat"
for run in $(seq 1 "$RUNS"); do
  read -r bytes secs < <(dd if=/dev/zero of="$DIR/dd.bin" bs=1M count=256 oflag=dsync 2>&1 | dd_bytes_secs)
  echo "$bytes $secs" | awk '{ printf "%.2f\n", $1 / $2 / 1e6 }' >>"$DIR/dd_bw"
  read -r bytes secs < <(dd if=/dev/zero of="$DIR/dd2.bin" bs=256 count=2000 oflag=dsync 2>&1 | dd_bytes_secs)
  echo "$secs" | awk '{ printf "%.1f\n", $1 / 2000 * 1e6 }' >>"$DIR/dd_lat"
  rm -f "$DIR/dd.bin" "$DIR/dd2.bin"

  # One process, both cases; the log lives in DIR like dd's files.
  out=$(TMPDIR="$DIR" "$WAL_BENCH" --benchmark_filter='BM_WalAppendSync/batch:(1|4096)$' \
    --benchmark_min_time=2 --benchmark_format=json 2>/dev/null)
  read -r lat bw < <(python3 -c '
import json, sys
scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
lat = bw = 0.0
for b in json.load(sys.stdin)["benchmarks"]:
    if b["name"].endswith("batch:1"):
        lat = b["real_time"] * scale[b["time_unit"]]
    elif b["name"].endswith("batch:4096"):
        bw = b["bytes_per_second"] / 1e6
print("%.1f %.2f" % (lat, bw))' <<<"$out")
  echo "$lat" >>"$DIR/wal_lat"
  echo "$bw" >>"$DIR/wal_bw"
  # The ratios of each run: its two sides saw the same disk at the same time.
  awk -v a="$(tail -1 "$DIR/wal_bw")" -v b="$(tail -1 "$DIR/dd_bw")" 'BEGIN { printf "%.3f\n", a / b }' >>"$DIR/ratio_bw"
  awk -v a="$(tail -1 "$DIR/wal_lat")" -v b="$(tail -1 "$DIR/dd_lat")" 'BEGIN { printf "%.3f\n", a / b }' >>"$DIR/ratio_lat"
  echo "run $run: dd $(tail -1 "$DIR/dd_bw") MB/s, dd sync $(tail -1 "$DIR/dd_lat") us;" \
    "wal lone $(tail -1 "$DIR/wal_lat") us mean, group commit $(tail -1 "$DIR/wal_bw") MB/s"
done

dd_bw=$(median <"$DIR/dd_bw"); dd_lat=$(median <"$DIR/dd_lat")
wal_bw=$(median <"$DIR/wal_bw"); wal_lat=$(median <"$DIR/wal_lat")
echo
echo "medians over $RUNS runs:"
echo "  disk (dd, 1 MiB O_DSYNC writes):  $dd_bw MB/s"
echo "  wal group commit, 4096 x 256 B:   $wal_bw MB/s (payload)"
echo "  disk bare sync (dd, 256 B O_DSYNC): $dd_lat us (mean)"
echo "  wal lone entry (mean):            $wal_lat us"
echo "median of the per-run ratios:"
echo "  group-commit bandwidth / dd:      $(median <"$DIR/ratio_bw")   (target >= 0.90)"
echo "  lone-entry latency / bare sync:   $(median <"$DIR/ratio_lat")   (target <= 1.20, means)"
