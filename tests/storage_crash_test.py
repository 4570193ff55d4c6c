#!/usr/bin/env python3
"""Real-process crash test of bulwark's storage.

Each cycle starts `bulwark storage-load` writing to one data directory
(writer threads, group commit, RocksDB state store, and in some cycles
checkpoint snapshots that release the log segments they cover), kills it
with SIGKILL at a random moment, and then checks that
  - `bulwark check-data DIR` finds no damage (a torn tail is allowed: it holds
    only writes that were never acknowledged), and
  - after recovery every write the process acknowledged ("ack KEY VALUE" on
    its stdout, printed only once the write was durable) is present with its
    value (`bulwark storage-load --verify`).
Exit status 0 when every cycle passed. Usage:
  storage_crash_test.py BULWARK [--cycles N] [--seed S] [--keep] [--plant-bug]
With --plant-bug the writer acknowledges writes before they reach the log;
the test then passes only if it catches a lost acknowledged write.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bulwark", help="path to the bulwark binary")
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--plant-bug", action="store_true",
                    help="run a writer that acks before writing; expect the loss to be caught")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="bw-crash-")
    data = os.path.join(work, "data")
    acks_path = os.path.join(work, "acks")
    acked = 0
    torn = 0
    t0 = time.time()
    failed = False
    print(f"crash test: {args.cycles} cycles, seed {args.seed}, dir {work}", flush=True)
    try:
        for cycle in range(1, args.cycles + 1):
            out_path = os.path.join(work, "out")
            with open(out_path, "wb") as out:
                proc = subprocess.Popen(
                    [args.bulwark, "storage-load", "--dir", data, "--seconds", "20",
                     "--writers", str(rng.choice([1, 4, 16])),
                     "--value-bytes", str(rng.choice([16, 100, 1000])),
                     "--segment-mib", "1",
                     "--snapshot-every", str(rng.choice([0, 2000, 20000]))] +
                    (["--plant-bug-ack-on-submit"] if args.plant_bug else []),
                    stdout=out, stderr=subprocess.DEVNULL)
                # Kill while it writes: after recovery (which grows with the
                # log) plus a random moment of writing. On a loaded machine
                # the first start can take longer than the shortest pause, so
                # wait for the data directory before the clock starts.
                deadline = time.time() + 30
                while not os.path.isdir(data) and proc.poll() is None and time.time() < deadline:
                    time.sleep(0.01)
                time.sleep(0.05 + rng.random() * 0.6)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            # Only whole lines count: a line cut by the kill was never
            # finished, so its write was not (known to be) acknowledged.
            with open(out_path, "rb") as f:
                lines = f.read().split(b"\n")[:-1]
            with open(acks_path, "ab") as f:
                for line in lines:
                    f.write(line + b"\n")
            acked += len(lines)
            check = subprocess.run([args.bulwark, "check-data", data],
                                   capture_output=True, text=True, timeout=120)
            if "torn tail" in check.stdout:
                torn += 1
            if check.returncode != 0:
                print(f"cycle {cycle}: check-data found damage:\n{check.stdout}{check.stderr}")
                failed = True
                return 1
            verify = subprocess.run([args.bulwark, "storage-load", "--dir", data,
                                     "--verify", acks_path],
                                    capture_output=True, text=True, timeout=300)
            if verify.returncode != 0:
                print(f"cycle {cycle}: verify failed:\n{verify.stdout}{verify.stderr}")
                if args.plant_bug:
                    print("PASS: the planted bug (ack before the write reached the log) was caught")
                    return 0
                failed = True
                return 1
            if cycle % 10 == 0 or cycle == args.cycles:
                print(f"cycle {cycle}: {acked} acknowledged writes so far, all present; "
                      f"{torn} torn tails seen; {verify.stdout.strip()}", flush=True)
        if args.plant_bug:
            print(f"FAIL: the planted bug was not caught in {args.cycles} cycles")
            return 1
        print(f"PASS: {args.cycles} SIGKILL cycles, {acked} acknowledged writes checked, 0 lost, "
              f"{torn} torn tails cut, {time.time() - t0:.0f} s")
        return 0
    finally:
        if args.keep or failed:
            print(f"kept {work} (the data directory, every cycle's acks, the last output)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
