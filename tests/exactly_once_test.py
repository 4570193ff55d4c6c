#!/usr/bin/env python3
"""Exactly-once etcd writes on real processes, with the leader killed again and again.

Usage: exactly_once_test.py --bulwark PATH [--ops 10000] [--kills 4] [--server bulwark|etcd]

Every operation i is a Put of "op/<i>" carrying the gRPC metadata
idempotency-key: "op-<i>". The client sends each operation twice on purpose (a
retry whose reply was "lost") and retries on every error, through whichever
member answers, while the leader is SIGKILLed and restarted every few seconds.

Counted from the data itself at the end: a key's version is the number of
times a put on it was applied, so
  duplicates = keys with version > 1   (must be 0)
  lost       = acknowledged keys absent (must be 0)
The control run sends the same double writes WITHOUT keys and must see
duplicates (so the count can tell); against etcd (--server etcd, which ignores
the key) it shows what a plain etcd does.

Also checked: a retry answers with the first response (same revision) and the
response metadata idempotent-replayed: true; the same key with a different
request is refused with FAILED_PRECONDITION; a key longer than 255 bytes is
INVALID_ARGUMENT.
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402

import etcd3  # noqa: E402
import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class Client:
    """One gRPC channel per member; calls go round the live ones."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.stubs = {}
        for m in cluster.members:
            ch = grpc.insecure_channel(f"127.0.0.1:{m.client_port}")
            self.stubs[m.name] = etcdrpc.KVStub(ch)
        self.next = 0

    def put(self, key, value, idem=None, timeout=2.0):
        names = list(self.stubs)
        name = names[self.next % len(names)]
        self.next += 1
        md = [("idempotency-key", idem)] if idem else []
        resp, call = self.stubs[name].Put.with_call(
            etcdrpc.PutRequest(key=key.encode(), value=value.encode()), timeout=timeout,
            metadata=md)
        replayed = dict(call.initial_metadata()).get("idempotent-replayed") == "true"
        return resp, replayed


def semantics(c):
    r1, rep1 = c.put("sem/a", "1", idem="sem-1")
    r2, rep2 = c.put("sem/a", "1", idem="sem-1")
    check(not rep1 and rep2, f"the retry is marked idempotent-replayed ({rep1}, {rep2})")
    check(r1.header.revision == r2.header.revision,
          f"the retry gets the first answer: revision {r1.header.revision} == "
          f"{r2.header.revision}")
    try:
        c.put("sem/a", "2", idem="sem-1")
        check(False, "the same key with a different request is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "reused" in e.details(),
              f"the same key with a different request: {e.code()} {e.details()}")
    try:
        c.put("sem/b", "1", idem="x" * 256)
        check(False, "a 256-byte key is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"a 256-byte key: {e.code()}")


def run_load(cluster, c, prefix, ops, keyed, kills, seconds_between_kills=3.0):
    acked = set()
    stop = threading.Event()
    killed = []
    dead = []  # (member, when): restarted by the main thread (members are started
    # with a parent-death signal, which follows the thread that started them)

    def nemesis():
        for _ in range(kills):
            if stop.wait(seconds_between_kills):
                return
            try:
                leader = cluster.leader(timeout=5)
            except Exception:
                continue
            leader.kill()
            killed.append(leader.name)
            dead.append((leader, time.monotonic()))

    def restart_dead():
        while dead and time.monotonic() - dead[0][1] > 0.5:
            dead.pop(0)[0].start()

    t = threading.Thread(target=nemesis)
    t.start()
    start = time.monotonic()
    attempts = errors = 0
    try:
        for i in range(ops):
            restart_dead()
            key, val = f"{prefix}/{i:06d}", f"v{i}"
            idem = f"{prefix}-{i}" if keyed else None
            sent_ok = 0
            deadline = time.monotonic() + 30
            # Twice on purpose (a reply "lost"), and again after every error.
            while sent_ok < 2 and time.monotonic() < deadline:
                attempts += 1
                try:
                    c.put(key, val, idem=idem)
                    sent_ok += 1
                    acked.add(key)
                except grpc.RpcError:
                    errors += 1
                    time.sleep(0.02)
    finally:
        stop.set()
        t.join()
        time.sleep(0.6)
        restart_dead()
    return acked, attempts, errors, killed, time.monotonic() - start


def count(cluster, prefix, acked):
    cluster.wait_ready(20)
    c = etcd3.client(host="127.0.0.1", port=cluster.leader().client_port, timeout=30)
    versions = {m.key.decode(): m.version for _, m in c.get_prefix(prefix + "/")}
    dup = sum(1 for v in versions.values() if v > 1)
    lost = sum(1 for k in acked if k not in versions)
    return dup, lost, len(versions)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--server", default="bulwark", choices=["bulwark", "etcd"])
    ap.add_argument("--ops", type=int, default=10000)
    ap.add_argument("--control-ops", type=int, default=300)
    ap.add_argument("--kills", type=int, default=4)
    ap.add_argument("--plant-bug", action="store_true",
                    help="run servers with --plant-bug-skip-dedup: the test must catch it "
                         "(exit 0 only if duplicates are found)")
    args = ap.parse_args()
    binary = os.path.abspath(args.bulwark) if args.server == "bulwark" else None
    extra = ["--plant-bug-skip-dedup"] if args.plant_bug else []
    with cl.Cluster(args.server, 3, binary=binary, extra_bulwark_args=extra) as cluster:
        cluster.start()
        c = Client(cluster)
        if args.plant_bug:
            acked, _, _, killed, _ = run_load(cluster, c, "op", args.ops, True, 0)
            dup, lost, keys = count(cluster, "op", acked)
            print(f"      planted bug skip-dedup: {args.ops} keyed ops sent twice: "
                  f"duplicates {dup}")
            check(dup > 0, f"the test catches a server that ignores keys ({dup} duplicates)")
            print(f"\n{'FAIL' if FAILURES else 'OK'}: {len(FAILURES)} failures")
            return 1 if FAILURES else 0
        if args.server == "bulwark":
            semantics(c)
        acked, attempts, errors, killed, secs = run_load(cluster, c, "op", args.ops, True,
                                                         args.kills)
        dup, lost, keys = count(cluster, "op", acked)
        print(f"      keyed: {args.ops} ops, {attempts} attempts ({errors} errors) in "
              f"{secs:.1f}s, leaders killed: {killed}; keys {keys}, duplicates {dup}, "
              f"lost {lost}")
        if args.server == "bulwark":
            check(dup == 0, f"keyed writes: no operation applied twice ({dup} duplicates)")
            check(lost == 0 and len(acked) == args.ops,
                  f"keyed writes: every acknowledged one is there ({lost} lost, "
                  f"{len(acked)}/{args.ops} acknowledged)")
            check(len(killed) >= 1, f"the leader was killed during the run ({killed})")
        acked, attempts, errors, killed, secs = run_load(cluster, c, "plain",
                                                         args.control_ops, False, 0)
        dup, lost, keys = count(cluster, "plain", acked)
        print(f"      control (no keys): {args.control_ops} ops sent twice: duplicates {dup}")
        check(dup > 0, f"the control without keys shows duplicates ({dup}): the count can tell")
    print(f"\n{'FAIL' if FAILURES else 'OK'}: {len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
