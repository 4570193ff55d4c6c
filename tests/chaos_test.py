#!/usr/bin/env python3
"""`bulwark chaos` in make test: a short run that must pass, and (with
--plant-bug) a run of members with a planted bug that its checker must catch.

Usage: chaos_test.py --bulwark PATH [--time-limit 90]
                     [--plant-bug stale-reads|skip-dedup|watch-gaps|ack-before-fsync|unfenced-lock]

Checks, beyond the exit code: the report and history exist; faults happened;
operations completed; after the run no namespace, bridge or member process of
the run is left behind. The planted run must exit 1 with the checker's
INVALID verdict (not 2: a run that could not be made proves nothing), and the
time it took to catch is printed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FAILURES = []


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def leftovers(pid):
    """Namespaces of the chaos run with this pid (named bwc<tag>-<pid>-n<i>)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if f"-{pid}-n" in ln.split()[0]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--time-limit", type=int, default=90)
    ap.add_argument("--plant-bug")
    ap.add_argument("--workload", help="override the workloads the planted bug runs with")
    ap.add_argument("--checker", help="override the checker that must catch it")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("FAIL  chaos_test needs root (network namespaces); CI runs as root")
        return 1

    out = tempfile.mkdtemp(prefix="bulwark-chaos-")
    # Each planted bug with the faults and workload that expose it, and the
    # checkers that must say INVALID: stale reads need a partition (a cut-off
    # member answering from its own state); a server that ignores idempotency
    # keys needs only the clients' lost replies (their retries then apply
    # writes twice, single puts and multi-key txns alike); acknowledging
    # before the disk has the write needs every member to crash at once.
    nemesis, workload, checkers = {
        None: ("partition,kill,pause,loss,clock,member,power,disk",
               "register,exactly-once,watch,txn,lock", []),
        "stale-reads": ("partition", "register", ["linearizability"]),
        "skip-dedup": ("none", "exactly-once", ["exactly-once"]),
        "watch-gaps": ("none", "watch", ["watch"]),
        "ack-before-fsync": ("power", "register,exactly-once", ["linearizability", "exactly-once"]),
        # A client-side bug: lock holders that trust their lease and write
        # without the fence (holders stall past their lease in every run).
        "unfenced-lock": ("none", "lock", ["lock"]),
    }[args.plant_bug]
    if args.workload:
        workload = args.workload
    if args.checker:
        checkers = [args.checker]
    argv = [args.bulwark, "chaos", "--nodes", "3", "--time-limit", str(args.time_limit),
            "--nemesis", nemesis, "--workload", workload, "--out", out, "--seed", "7"]
    if args.plant_bug:
        argv += ["--plant-bug", args.plant_bug, "--quiet", "1"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = p.communicate(timeout=args.time_limit + 240)
    except subprocess.TimeoutExpired:
        p.terminate()
        stdout, stderr = p.communicate()
    took = time.monotonic() - t0
    print(stdout[-3000:])
    if stderr:
        print(stderr[-2000:])
    verdict = [ln for ln in stdout.splitlines() if ln.startswith("verdict:")]
    if args.plant_bug:
        check(p.returncode == 1, f"planted {args.plant_bug}: exit code 1 (got {p.returncode})")
        caught = [c for c in checkers
                  if any(ln.startswith(c) and "INVALID" in ln for ln in stdout.splitlines())]
        check(bool(caught), f"planted {args.plant_bug}: a checker of {checkers} says INVALID "
              f"(caught by {caught} in a {took:.0f} s run)")
    else:
        check(p.returncode == 0, f"chaos run: exit code 0 (got {p.returncode})")
        check(bool(verdict) and "PASS" in verdict[0], f"chaos run: verdict PASS: {verdict}")
        check("faults" in (verdict[0] if verdict else "") and " 0 faults" not in verdict[0],
              "chaos run: faults happened")
        for c in ("linearizability", "watch", "exactly-once", "txn", "lock"):
            check(any(ln.startswith(c) and ": valid" in ln for ln in stdout.splitlines()),
                  f"chaos run: the {c} checker ran and says valid")
    for f in ("report.html", "latency.svg", "throughput.svg", "history.jsonl", "nemesis.jsonl"):
        check(os.path.exists(os.path.join(out, f)), f"{f} written")
    # Every other workload's operations, one JSON object per line.
    for w in ("exactly-once", "txn", "lock"):
        if w not in workload:
            continue
        path = os.path.join(out, w + ".jsonl")
        try:
            with open(path) as f:
                ops = [json.loads(line) for line in f]
            fields = {"client", "op", "invoke_us", "complete_us", "outcome"}
            check(len(ops) > 0 and all(fields <= set(o) for o in ops),
                  f"{w}.jsonl: {len(ops)} operations, each with {sorted(fields)}")
        except (OSError, ValueError) as e:
            check(False, f"{w}.jsonl readable: {e}")
    with open(os.path.join(out, "history.jsonl")) if os.path.exists(
            os.path.join(out, "history.jsonl")) else open(os.devnull) as h:
        ops = sum(1 for _ in h)
    if "register" in workload:
        check(ops > 200, f"history holds {ops} operations")
    left = leftovers(p.pid)
    check(not left, f"no namespace of the run left behind ({left})")
    ps = subprocess.run(["pgrep", "-f", out], capture_output=True, text=True).stdout.split()
    check(not ps, f"no member process left behind ({ps})")
    if FAILURES:
        print(f"kept {out} (report, history, member logs)")
    else:
        shutil.rmtree(out, ignore_errors=True)
    if FAILURES:
        print(f"\n{len(FAILURES)} check(s) failed")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
