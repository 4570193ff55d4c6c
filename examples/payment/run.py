#!/usr/bin/env python3
"""The payment example end to end: a three-member bulwark cluster, the fake
card gateway and the load driver, with faults, run twice - with idempotency
keys and without - and the two summaries side by side.

Usage: run.py [--bin build/bin] [--charges 2000] [--concurrency 32]
              [--drop 0.01] [--kill-every 4] [--only keys|no-keys] [--seed 1]

Faults during each run:
  - the bulwark leader is SIGKILLed every --kill-every seconds and restarted
    1.5 s later;
  - the gateway fails 5% of charges, stalls 3% past the caller's timeout,
    charges but loses the reply of 5%, and has a 1 s outage every 8 s;
  - --drop of the requests and replies between the payment service and
    bulwark are lost (injected in the client).

Exit code 0 when the run with keys moved money exactly once per payment
(gateway charges == distinct keys, no order charged twice, every payment
finished). Everything started is stopped at the end, also on Ctrl-C.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import cluster as cl  # noqa: E402  (the project's process helper: start, kill, clean up)


def say(msg):
    print(msg, flush=True)


def start_gateway(bin_dir, seed):
    p = cl.spawn_piped([os.path.join(bin_dir, "payment_gateway"), "--listen", "127.0.0.1:0",
                        "--seed", str(seed), "--fail", "0.05", "--stall", "0.03",
                        "--lose-reply", "0.05", "--stall-ms", "1200",
                        "--outage-every-s", "8", "--outage-s", "1"])
    line = p.stdout.readline().strip()
    if "listening on" not in line:
        raise RuntimeError(f"payment_gateway did not start: {line!r}")
    return p, line.rsplit(" ", 1)[1]


def run_once(args, cluster, use_keys):
    gateway, address = start_gateway(args.bin, args.seed)
    mode = "keys" if use_keys else "no-keys"
    say(f"\n=== payments {'WITH' if use_keys else 'WITHOUT'} idempotency keys: "
        f"{args.charges} charges, gateway on {address}")
    argv = [os.path.join(args.bin, "payment_driver"),
            "--endpoints", ",".join(cluster.endpoints(live_only=False)),
            "--gateway", address, "--charges", str(args.charges),
            "--concurrency", str(args.concurrency), "--drop", str(args.drop),
            "--seed", str(args.seed), "--run", mode]
    if not use_keys:
        argv.append("--no-keys")
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    kills = 0
    t0 = time.monotonic()
    next_kill = t0 + args.kill_every
    try:
        # The faults run here, on the main thread (members die with the
        # thread that started them).
        while driver.poll() is None:
            time.sleep(0.05)
            if args.kill_every > 0 and time.monotonic() >= next_kill:
                try:
                    leader = cluster.leader(timeout=5)
                except TimeoutError:
                    next_kill = time.monotonic() + 1
                    continue
                leader.kill()
                kills += 1
                say(f"  [{time.monotonic() - t0:5.1f}s] killed the leader, {leader.name} "
                    f"(kill {kills})")
                deadline = time.monotonic() + 1.5
                while driver.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                leader.start()
                next_kill = time.monotonic() + args.kill_every
        out = driver.stdout.read()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        cl.stop_process(gateway)
    for m in cluster.members:
        m.start()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"payment_driver printed no summary (rc {driver.returncode})")
    summary = json.loads(lines[-1])
    summary["leader_kills"] = kills
    summary["driver_rc"] = driver.returncode
    say(lines[-1])
    return summary


ROWS = [
    ("charges requested", "charges_requested"),
    ("gateway charges (money moved)", "gateway_charges"),
    ("distinct idempotency keys", "distinct_keys"),
    ("double charges", "double_charges"),
    ("orders charged twice or more", "double_charged_orders"),
    ("payments charged", "charged"),
    ("answers replayed from the record", "replays_served"),
    ("resubmitted by customers", "resubmitted"),
    ("service calls (with retries)", "service_calls"),
    ("outcome unknown, retried", "outcome_unknown"),
    ("waited for a concurrent holder", "in_progress"),
    ("gateway attempts", "gateway_attempts"),
    ("gateway retries", "gateway_retries"),
    ("gateway breaker trips", "breaker_trips"),
    ("gateway replies lost / stalls", None),
    ("bulwark attempts / retries", None),
    ("bulwark answers replayed", "bulwark_replayed"),
    ("requests+replies dropped", None),
    ("leader kills", "leader_kills"),
    ("seconds", "seconds"),
]


def cell(s, key):
    if s is None:
        return "-"
    if key == "gateway replies lost / stalls":
        return f"{s['gateway_replies_lost']} / {s['gateway_stalled']}"
    if key == "bulwark attempts / retries":
        return f"{s['bulwark_attempts']} / {s['bulwark_retries']}"
    if key == "requests+replies dropped":
        return str(s["dropped_requests"] + s["dropped_replies"])
    return str(s[key])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--charges", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--drop", type=float, default=0.01)
    ap.add_argument("--kill-every", type=float, default=4.0)
    ap.add_argument("--only", choices=["keys", "no-keys"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect-double-charges-without-keys", action="store_true",
                    help="also fail unless the run without keys shows double charges "
                         "(proves the books can tell)")
    args = ap.parse_args()

    runs = {}
    with cl.Cluster("bulwark", 3, binary=os.path.join(args.bin, "bulwark")) as cluster:
        say(f"starting a three-member bulwark cluster in {cluster.workdir}")
        cluster.start()
        for use_keys in (True, False):
            mode = "keys" if use_keys else "no-keys"
            if args.only and args.only != mode:
                continue
            runs[mode] = run_once(args, cluster, use_keys)
            cluster.wait_ready(30)

    keys, nokeys = runs.get("keys"), runs.get("no-keys")
    say("\n%-34s %14s %14s" % ("", "with keys", "without keys"))
    for label, key in ROWS:
        say("%-34s %14s %14s" % (label, cell(keys, key or label), cell(nokeys, key or label)))
    ok = True
    if keys is not None:
        exact = (keys["gateway_charges"] == keys["distinct_keys"] and keys["double_charges"] == 0
                 and keys["gave_up"] == 0 and keys["driver_rc"] == 0)
        say(f"\nwith keys: {keys['gateway_charges']} gateway charges for {keys['distinct_keys']} "
            f"distinct keys and {keys['charges_requested']} payments, {keys['double_charges']} "
            f"double charges: {'EXACTLY ONCE' if exact else 'VIOLATED'}")
        ok = ok and exact
    if nokeys is not None:
        say(f"without keys: {nokeys['double_charges']} double charges on "
            f"{nokeys['double_charged_orders']} orders - what retries do without idempotency")
        if args.expect_double_charges_without_keys and nokeys["double_charges"] == 0:
            say("FAIL: the run without keys showed no double charge; the books cannot tell")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
