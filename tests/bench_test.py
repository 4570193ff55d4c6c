#!/usr/bin/env python3
"""`bulwark bench` against real servers: bulwark, etcd 3.4 and Redis.

Usage: bench_test.py --bulwark PATH

Every load runs a small bounded total and must report exactly that many
successes, no errors and ordered percentiles; the writes must really be in
the store afterwards (counted with etcdctl); the etcd API loads work against
etcd unchanged; loads a server does not offer fail with its error; bad flags
exit 2 with a message naming the flag.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster as cl  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def bench(binary, load, *args, expect_rc=0):
    p = subprocess.run([binary, "bench", load, "--json", "--no-progress", *args],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != expect_rc:
        print(p.stdout, p.stderr)
    check(p.returncode == expect_rc, f"bench {load} {' '.join(args)}: exit {p.returncode}")
    try:
        return json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}, p
    except json.JSONDecodeError:
        return {}, p


def sane(out, total, what):
    lat = out.get("latency_ms", {})
    check(out.get("ok") == total and out.get("errors") == 0,
          f"{what}: {out.get('ok')} ok, {out.get('errors')} errors of {total}")
    check(0 < lat.get("p50", 0) <= lat.get("p90", 0) <= lat.get("p99", 0) <= lat.get("max", 0),
          f"{what}: percentiles ordered ({lat})")
    check(out.get("throughput", 0) > 0, f"{what}: throughput {out.get('throughput')}")


def count_keys(c):
    out = c.etcdctl(["get", "", "--prefix", "--keys-only", "-w", "json"])
    return json.loads(out.stdout).get("count", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    a = ap.parse_args()
    total = 300
    common = ["--clients", "4", "--conns", "2", "--total", str(total)]

    with cl.Cluster("bulwark", 3, binary=a.bulwark).start() as bw:
        eps = ",".join(bw.endpoints())
        out, _ = bench(a.bulwark, "put", "--endpoints", eps, "--sequential-keys",
                       "--key-space-size", "100000", "--val-size", "256", *common)
        sane(out, total, "bulwark put")
        check(count_keys(bw) == total, f"bulwark put: {total} distinct keys in the store")
        for load in ("keyed-put", "txn-put", "range", "idem", "lease-keepalive"):
            extra = ["--consistency", "s"] if load == "range" else []
            out, _ = bench(a.bulwark, load, "--endpoints", eps, *extra, *common)
            sane(out, total, f"bulwark {load}")
        recs = bw.etcdctl(["get", "", "--prefix", "--keys-only", "-w", "json"])
        check(recs.returncode == 0, "etcdctl still answers after the loads")
        # Bounded by time as well as count.
        out, _ = bench(a.bulwark, "put", "--endpoints", eps, "--clients", "2", "--total",
                       "100000000", "--duration", "1")
        # The run stops at 1 s and waits for what is in flight: a loaded
        # machine may stretch that, so the bound proves the stop, not speed.
        check(0 < out.get("ok", 0) < 100000000 and 0.9 <= out.get("seconds", 9) < 5,
              f"--duration 1 stops the run: {out.get('ok')} ok in {out.get('seconds')} s")
        # Enough clients that latency cannot be what holds the rate down
        # (each has one request in flight); the lower bound proves the pacing.
        out, _ = bench(a.bulwark, "put", "--endpoints", eps, "--rate", "200", "--total", "200",
                       "--clients", "32")
        check(0.8 <= out.get("seconds", 0) <= 4.0,
              f"--rate 200 spreads 200 requests over about 1 s ({out.get('seconds')} s)")

        out, _ = bench(a.bulwark, "watch", "--endpoints", eps, "--streams", "3",
                       "--watchers-per-stream", "5", "--total", "40", "--rate", "200",
                       "--conns", "2")
        check(out.get("ok") == 3 * 5 * 40 and out.get("errors") == 0,
              f"bulwark watch: every one of 15 watchers saw all 40 puts ({out.get('ok')})")
        # The bench cancelled its watch streams: the server must let them go.
        # A stream that never finished kept its watchers (every later put
        # paid for them) and made SIGTERM hang in gRPC's shutdown.
        for m in bw.members:
            m.proc.send_signal(cl.signal.SIGTERM)
            try:
                rc = m.proc.wait(timeout=8)
            except cl.subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"{m.name} stops on SIGTERM after cancelled watch streams (exit {rc})")

    with cl.Cluster("etcd", 1).start() as etcd:
        eps = ",".join(etcd.endpoints())
        for load in ("put", "txn-put", "range", "lease-keepalive"):
            out, _ = bench(a.bulwark, load, "--endpoints", eps, *common)
            sane(out, total, f"etcd {load}")
        out, _ = bench(a.bulwark, "watch", "--endpoints", eps, "--streams", "3",
                       "--watchers-per-stream", "5", "--total", "40", "--rate", "200")
        check(out.get("ok") == 3 * 5 * 40, f"etcd watch: 600 events ({out.get('ok')})")
        out, p = bench(a.bulwark, "idem", "--endpoints", eps, "--total", "5", expect_rc=1)
        unimplemented = out.get("ok") == 0 and any(
            "UNIMPLEMENTED" in k for k in out.get("error_kinds", {}))
        if not unimplemented:
            print("stdout:", p.stdout[-2000:], "\nstderr:", p.stderr[-4000:])
        check(unimplemented, f"etcd has no Idempotency service: {out.get('error_kinds')}")

    work = tempfile.mkdtemp(prefix="bench-redis-")
    port = cl.free_port()
    redis = cl.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", work,
                      "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                     os.path.join(work, "redis.log"))
    try:
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"],
                              capture_output=True).returncode == 0:
                break
            cl.time.sleep(0.1)
        out, _ = bench(a.bulwark, "redis-idem", "--redis", f"127.0.0.1:{port}", *common)
        sane(out, total, "redis-idem")
        keys = subprocess.run(["redis-cli", "-p", str(port), "dbsize"], capture_output=True,
                              text=True).stdout.strip()
        check(keys == str(total), f"redis-idem: {total} keys stored in Redis ({keys})")
    finally:
        redis.terminate()
        redis.wait(10)

    _, p = bench(a.bulwark, "nonsense", expect_rc=2)
    check("unknown load 'nonsense'" in p.stderr, f"unknown load named: {p.stderr.strip()}")
    _, p = bench(a.bulwark, "range", "--consistency", "x", expect_rc=2)
    check("--consistency" in p.stderr, f"bad --consistency named: {p.stderr.strip()}")
    _, p = bench(a.bulwark, "put", "--endpoints", f"127.0.0.1:{cl.free_port()}", expect_rc=1)
    check("cannot connect" in p.stderr, f"no server: {p.stderr.strip()}")

    if FAILURES:
        print(f"\nFAIL: {len(FAILURES)} failures")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
