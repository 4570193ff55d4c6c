#!/usr/bin/env python3
"""Failover time of a three-member cluster: SIGKILL the leader, then time until
a put through the two survivors succeeds; the killed member is restarted and
the cluster settles before the next kill.

  /usr/bin/python3 bench/failover.py --bulwark build-release/bin/bulwark --kills 5
  /usr/bin/python3 bench/failover.py --server etcd --kills 5

Prints each kill's gap in milliseconds and the median. Every put is bounded
(300 ms) and the run stops after --kills rounds.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import cluster as cl  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", default="build-release/bin/bulwark")
    ap.add_argument("--server", choices=["bulwark", "etcd"], default="bulwark")
    ap.add_argument("--kills", type=int, default=5)
    args = ap.parse_args()
    gaps = []
    binary = args.bulwark if args.server == "bulwark" else None
    with cl.Cluster(args.server, 3, binary=binary) as c:
        c.start()
        for i in range(args.kills):
            c.wait_ready()
            leader = c.leader(timeout=10)
            t0 = time.monotonic()
            leader.kill()
            survivors = [m for m in c.members if m is not leader]
            deadline = t0 + 30
            while True:
                r = c.etcdctl(["put", "failover", str(i), "--command-timeout=300ms"],
                              endpoints=c.endpoints(survivors))
                if r.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"no put succeeded within 30 s of killing {leader.name}")
            gaps.append((time.monotonic() - t0) * 1000)
            leader.start()
            time.sleep(1.5)
    print(f"{args.server} failover ms: {[round(g) for g in gaps]} "
          f"median {round(statistics.median(gaps))}")


if __name__ == "__main__":
    main()
