#!/usr/bin/env python3
"""Leases in a cluster whose members' monotonic clocks disagree.

Usage: lease_clock_test.py --bulwark PATH

On separate machines, monotonic clocks count from each machine's boot: two
members' readings differ by days. Here one member of three runs under
libfaketime with FAKETIME=+0d, which makes its CLOCK_MONOTONIC read like the
wall clock - decades ahead of the others' (seconds since this machine
booted). Leases must not care:

  - a lease granted through the skewed member and never kept alive expires
    about its TTL later (not decades later);
  - with the skewed member leading, a lease granted through another member
    lives its TTL (it does not expire at the leader's next tick), then expires,
    and the key attached to it goes with it;
  - LeaseTimeToLive through either kind of member reports a remaining time no
    larger than the TTL.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402

FAILURES = []
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def ctl(c, args, member=None):
    r = c.etcdctl(args, endpoints=[member.endpoint] if member else None)
    return r.returncode, r.stdout, r.stderr


def grant(c, member, ttl):
    rc, out, err = ctl(c, ["lease", "grant", str(ttl)], member)
    # "lease 694d7b6a3c8f4a0b granted with TTL(5s)"
    return out.split()[1] if rc == 0 and out.startswith("lease ") else None, err


def ttl_of(c, member, lease):
    rc, out, _ = ctl(c, ["lease", "timetolive", lease], member)
    # "lease 694d... granted with TTL(5s), remaining(3s)" or "... already expired"
    if rc != 0:
        return None
    if "expired" in out:
        return -1
    try:
        return int(out.split("remaining(")[1].split("s)")[0])
    except (IndexError, ValueError):
        return None


def wait_expired(c, member, lease, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if ttl_of(c, member, lease) == -1:
            return True
        time.sleep(0.2)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    args = ap.parse_args()
    if not os.path.exists(FAKETIME_LIB):
        print(f"FAIL  {FAKETIME_LIB} is missing (Debian: apt-get install libfaketime)")
        return 1
    with cl.Cluster("bulwark", 3, binary=args.bulwark) as c:
        skewed = c.members[2]
        # A sanitizer build refuses a library preloaded ahead of its runtime
        # unless told that this is intended.
        asan = os.environ.get("ASAN_OPTIONS", "")
        skewed.env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+0d",
                      "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
        c.start()
        plain = c.members[0]

        def lead(member):
            mid = format(c.status([member])[member]["header"]["member_id"], "x")
            rc, out, err = ctl(c, ["move-leader", mid])
            return rc == 0 and c.leader() is member, f"{out}{err}".strip()

        def lives_its_ttl(through, asked, ttl, what):
            t0 = time.time()
            lease, err = grant(c, through, ttl)
            check(lease is not None, f"{what}: granted ({err})")
            if not lease:
                return
            rc, _, err = ctl(c, ["put", "attached", "v", "--lease", lease], through)
            check(rc == 0, f"{what}: a key attached to it ({err})")
            for m in (asked, through):
                remaining = ttl_of(c, m, lease)
                check(remaining is not None and 0 < remaining <= ttl,
                      f"{what}: remaining time asked of {m.name} is within its TTL "
                      f"({remaining} s of {ttl})")
            # Halfway through its TTL, counted from the grant (the etcdctl
            # calls above take their own time on a loaded machine).
            time.sleep(max(0.0, t0 + ttl / 2 - time.time()))
            rc, out, _ = ctl(c, ["get", "attached", "--print-value-only"], asked)
            check(rc == 0 and out.strip() == "v",
                  f"{what}: {time.time() - t0:.1f} s after the grant the key is there ({out!r})")
            check(wait_expired(c, asked, lease, ttl + 10),
                  f"{what}: without keep-alives it expired")
            took = time.time() - t0
            check(ttl - 0.3 <= took <= ttl + 6,
                  f"{what}: {took:.1f} s after the grant (TTL {ttl} s), not early, not decades")
            rc, out, _ = ctl(c, ["get", "attached", "--print-value-only"], asked)
            check(rc == 0 and out.strip() == "", f"{what}: the attached key went with it ({out!r})")

        ok, msg = lead(plain)
        check(ok, f"a plain member leads ({msg})")
        lives_its_ttl(skewed, plain, 8, "granted through the skewed member, a plain leader")
        ok, msg = lead(skewed)
        check(ok, f"the skewed member leads ({msg})")
        lives_its_ttl(plain, skewed, 8, "granted through a plain member, the skewed leader")
    if FAILURES:
        print(f"\n{len(FAILURES)} check(s) failed")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
