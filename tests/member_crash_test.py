#!/usr/bin/python3
"""Crash test of real members: `bulwark start` processes killed with SIGKILL under load.

A cluster of real members (three by default) takes puts from writer threads through
python3-etcd3 while, each cycle, members are killed with SIGKILL at a random moment: one
member (the leader or a follower) most cycles, every member at once every fourth cycle
(with one member, always it). After each kill:
  - `bulwark check-data DIR` must find each killed member's data directory clean (a torn
    tail holds only what was never acknowledged and is allowed), and
  - once the killed members are restarted, every put the writers saw acknowledged must be
    there with its value (a linearizable read of the cycle's keys; all of them at the end).
Puts that ended with an error or a timeout are of unknown outcome and prove nothing.

Exit 0 when every cycle passed. With --plant-bug the members run with
--plant-bug-ack-before-fsync (the log "syncs" by keeping appends in memory and writes them
out now and then): the test then passes only if it catches an acknowledged put lost.

Usage:
  member_crash_test.py --bulwark PATH [--members N] [--cycles N] [--seed S] [--plant-bug]
"""
import argparse
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402

import etcd3  # noqa: E402  (python3-etcd3, from `make deps`)


class Writers:
    """Writer threads putting unique keys of one cycle; acknowledged puts are recorded."""

    def __init__(self, members, cycle, threads=2):
        self.members = members
        self.cycle = cycle
        self.stop = threading.Event()
        self.acked = {}  # key -> value
        self.unknown = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(threads)]

    def run(self, t):
        rng = random.Random(self.cycle * 1000 + t)
        client = None
        i = 0
        while not self.stop.is_set():
            if client is None:
                live = [m for m in self.members if m.alive()]
                if not live:
                    time.sleep(0.02)
                    continue
                m = rng.choice(live)
                client = etcd3.client(host="127.0.0.1", port=m.client_port, timeout=2)
            key = f"crash/{self.cycle:04d}/{t}/{i:06d}"
            value = f"{self.cycle}.{t}.{i}.{rng.getrandbits(32):08x}"
            i += 1
            try:
                client.put(key, value)
            except Exception:  # the member died, or the request timed out: unknown
                with self.lock:
                    self.unknown += 1
                client = None
                continue
            with self.lock:
                self.acked[key] = value

    def start(self):
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=30)


def check_data(bulwark, member):
    r = subprocess.run([bulwark, "check-data", member.data_dir], capture_output=True, text=True,
                       timeout=120)
    return r.returncode == 0, "torn tail" in r.stdout, r.stdout + r.stderr


def read_prefix(c, prefix):
    """Every key under prefix, linearizably, from any member that answers."""
    last = None
    for _ in range(20):
        for m in [m for m in c.members if m.alive()]:
            try:
                client = etcd3.client(host="127.0.0.1", port=m.client_port, timeout=10)
                return {meta.key.decode(): v.decode() for v, meta in client.get_prefix(prefix)}
            except Exception as e:  # not ready yet: try another, then again
                last = e
        time.sleep(0.5)
    raise RuntimeError(f"no member answered a read of {prefix}: {last}")


def lost(acked, present):
    return [k for k, v in acked.items() if present.get(k) != v]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--plant-bug", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    extra = ["--plant-bug-ack-before-fsync"] if args.plant_bug else []
    print(f"member crash test: {args.members} members, {args.cycles} cycles, seed {args.seed}"
          f"{', planted ack-before-fsync' if args.plant_bug else ''}", flush=True)
    t0 = time.time()
    acked_by_cycle = {}
    kills = torn = unknown = 0
    with cl.Cluster("bulwark", args.members, binary=args.bulwark,
                    extra_bulwark_args=extra) as c:
        c.start(ready_timeout=60)
        for cycle in range(1, args.cycles + 1):
            w = Writers(c.members, cycle)
            w.start()
            time.sleep(0.3 + rng.random() * 0.9)
            if args.members == 1 or cycle % 4 == 0:
                victims = list(c.members)
            else:
                victims = [rng.choice(c.members)]
            for m in victims:
                m.kill()
            kills += len(victims)
            w.finish()
            unknown += w.unknown
            for m in victims:
                ok, was_torn, out = check_data(args.bulwark, m)
                torn += was_torn
                if not ok:
                    print(f"cycle {cycle}: check-data found damage on {m.name}:\n{out}")
                    return 1
            for m in victims:
                m.start()
            c.wait_ready(timeout=60)
            present = read_prefix(c, f"crash/{cycle:04d}/")
            missing = lost(w.acked, present)
            if missing:
                print(f"cycle {cycle}: {len(missing)} of {len(w.acked)} acknowledged puts lost "
                      f"after killing {', '.join(m.name for m in victims)} (first: {missing[0]})")
                if args.plant_bug:
                    print("PASS: the planted bug (acknowledged before it was on disk) was caught")
                    return 0
                return 1
            acked_by_cycle[cycle] = w.acked
            if cycle % 10 == 0 or cycle == args.cycles:
                total = sum(len(a) for a in acked_by_cycle.values())
                print(f"cycle {cycle}: {total} acknowledged puts so far, all present; "
                      f"{kills} kills, {torn} torn tails, {unknown} puts of unknown outcome",
                      flush=True)
        if args.plant_bug:
            print(f"FAIL: the planted bug was not caught in {args.cycles} cycles")
            return 1
        # Everything again, a cycle at a time (one read of all of it can
        # pass gRPC's message limit).
        for cycle, acked in acked_by_cycle.items():
            missing = lost(acked, read_prefix(c, f"crash/{cycle:04d}/"))
            if missing:
                print(f"at the end: {len(missing)} acknowledged puts of cycle {cycle} lost "
                      f"(first: {missing[0]})")
                return 1
        total = sum(len(a) for a in acked_by_cycle.values())
    print(f"PASS: {args.cycles} cycles, {kills} members killed with SIGKILL, {total} "
          f"acknowledged puts checked, 0 lost, check-data clean after every kill ({torn} torn "
          f"tails cut), {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
