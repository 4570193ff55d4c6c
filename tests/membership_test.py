#!/usr/bin/env python3
"""Membership changes on a live cluster under load, with etcdctl as the operator.

Usage: membership_test.py --bulwark PATH

A three-member cluster takes writes from a client thread the whole time while
the operator: adds a learner (m4) and starts it with --initial-cluster-state
existing; waits until the learner has caught up and promotes it; removes m1
(which stops by itself); replaces it by adding m5 as a voter and starting it.
Then every acknowledged write must be on every member, the member list must be
{m2, m3, m4, m5} with no learner, and a write through the newest member works.
Last, m2 is removed and added back at the same address with an empty data
directory: it must get a new id, catch up, be promoted and keep its id across
a restart.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import free_port  # noqa: E402

FAILURES = []
ENV = dict(os.environ, ETCDCTL_API="3")


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def etcdctl(endpoints, *args, timeout=10, stdin=None):
    r = subprocess.run(["etcdctl", "--endpoints", ",".join(endpoints), "--command-timeout=5s",
                        *args], env=ENV, capture_output=True, text=True, timeout=timeout,
                       input=stdin)
    return r.returncode, r.stdout, r.stderr


class Member:
    def __init__(self, name, workdir, binary):
        self.name, self.binary, self.workdir = name, binary, workdir
        self.cport, self.pport = free_port(), free_port()
        self.p = None

    @property
    def peer(self):
        return f"http://127.0.0.1:{self.pport}"

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.cport}"

    def start(self, initial_cluster, state):
        # One process per member: one still running (a removed member that
        # failed to stop itself) is stopped, not left behind.
        self.stop()
        log = open(os.path.join(self.workdir, self.name + ".log"), "a")
        self.p = subprocess.Popen(
            [self.binary, "start", "--name", self.name,
             "--data-dir", os.path.join(self.workdir, self.name),
             "--listen-client-urls", f"http://{self.endpoint}",
             "--advertise-client-urls", f"http://{self.endpoint}",
             "--listen-peer-urls", self.peer, "--initial-advertise-peer-urls", self.peer,
             "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
             "--heartbeat-interval", "50", "--election-timeout", "500"],
            stdout=log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def wait_until(fn, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.1)
    return False


def member_ids(endpoints):
    rc, out, _ = etcdctl(endpoints, "member", "list")
    ids = {}
    for line in out.splitlines():
        f = [x.strip() for x in line.split(",")]
        if len(f) >= 6:
            ids[f[2] or f[3]] = (f[0], f[5] == "true")
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    args = ap.parse_args()
    binary = os.path.abspath(args.bulwark)
    with tempfile.TemporaryDirectory(prefix="bw-membership-") as tmp:
        ms = {n: Member(n, tmp, binary) for n in ["m1", "m2", "m3", "m4", "m5"]}
        initial = ",".join(f"{n}={ms[n].peer}" for n in ["m1", "m2", "m3"])
        try:
            for n in ["m1", "m2", "m3"]:
                ms[n].start(initial, "new")
            live = [ms[n].endpoint for n in ["m1", "m2", "m3"]]
            check(wait_until(lambda: etcdctl(live, "put", "ready", "1")[0] == 0, 20),
                  "three-member cluster takes writes")

            # The load: sequential puts through whichever members are live.
            acked, stop = {}, threading.Event()
            endpoints = {"list": list(live)}

            def writer():
                i = 0
                while not stop.is_set() and i < 5000:
                    k, v = f"load/{i:05d}", f"v{i}"
                    rc, _, _ = etcdctl(endpoints["list"], "put", k, v, timeout=15)
                    if rc == 0:
                        acked[k] = v
                    i += 1

            t = threading.Thread(target=writer)
            t.start()
            time.sleep(1)

            # Add a learner and start it against the existing cluster.
            rc, out, err = etcdctl(live, "member", "add", "m4", "--learner",
                                   f"--peer-urls={ms['m4'].peer}")
            check(rc == 0 and "ETCD_INITIAL_CLUSTER=" in out, f"member add --learner m4: {err}")
            cluster4 = [l.split('"')[1] for l in out.splitlines()
                        if l.startswith("ETCD_INITIAL_CLUSTER=")]
            ms["m4"].start(cluster4[0] if cluster4 else initial + f",m4={ms['m4'].peer}",
                           "existing")
            ids = member_ids(live)
            # Listed by name once it has published it, by peer URL before.
            m4 = ids.get("m4") or ids.get(ms["m4"].peer) or ("", False)
            check(m4[1], f"m4 listed as a learner: {ids}")

            def caught_up():
                rc, out, _ = etcdctl([ms["m4"].endpoint], "get", "ready",
                                     "--consistency=s", "--print-value-only")
                return rc == 0 and out.strip() == "1"

            check(wait_until(caught_up, 20), "the learner caught up (serializable read on m4)")

            # Promote it (retrying while it is not yet in sync, as an operator would).
            check(wait_until(lambda: "m4" in member_ids(live), 10), "m4 published its name")
            m4id = member_ids(live)["m4"][0]
            check(wait_until(lambda: etcdctl(live, "member", "promote", m4id)[0] == 0, 20),
                  "member promote m4")
            ids = member_ids(live)
            check(ids.get("m4") == (m4id, False), f"m4 is a voter: {ids}")
            endpoints["list"] = [ms[n].endpoint for n in ["m2", "m3", "m4"]]

            # Remove m1: it stops by itself.
            m1id = member_ids(live)["m1"][0]
            rc, out, err = etcdctl(endpoints["list"], "member", "remove", m1id)
            check(rc == 0 and "removed" in out, f"member remove m1: {out}{err}")
            check(wait_until(lambda: ms["m1"].p.poll() is not None, 10),
                  "the removed member stopped itself")

            # Replace it: add m5 as a voter and start it. Removing the leader
            # leaves the cluster leaderless for an election timeout: an
            # operator retries "leader changed" / "no leader" (nothing was done).
            for _ in range(50):
                rc, out, err = etcdctl(endpoints["list"], "member", "add", "m5",
                                       f"--peer-urls={ms['m5'].peer}")
                if rc == 0 or ("leader changed" not in err and "no leader" not in err):
                    break
                time.sleep(0.2)
            check(rc == 0, f"member add m5 (a voter): {err}")
            cluster5 = [l.split('"')[1] for l in out.splitlines()
                        if l.startswith("ETCD_INITIAL_CLUSTER=")]
            ms["m5"].start(cluster5[0] if cluster5 else "", "existing")
            # The load runs on until it has more than 20 writes acknowledged
            # (one etcdctl process at a time: on a loaded machine the changes
            # above may have taken most of its time), then stops.
            wait_until(lambda: len(acked) > 20, 60)
            stop.set()
            t.join(timeout=60)
            final = [ms[n].endpoint for n in ["m2", "m3", "m4", "m5"]]
            # Listed by its peer URL until it has published its name.
            wait_until(lambda: "m5" in member_ids(final), 20)
            ids = member_ids(final)
            check(sorted(ids) == ["m2", "m3", "m4", "m5"] and not any(l for _, l in ids.values()),
                  f"member list is m2..m5, all voters: {ids}")
            rc, _, err = etcdctl([ms["m5"].endpoint], "put", "via-m5", "yes")
            check(rc == 0, f"a write through the new member m5: {err}")
            # Hand leadership to the newest member (etcdctl finds the leader).
            m5id = member_ids(final).get("m5", ("",))[0]
            rc, out, err = etcdctl(final, "move-leader", m5id)
            check(rc == 0 and "Leadership transferred" in out, f"move-leader to m5: {out}{err}")
            rc, out, _ = etcdctl([ms["m5"].endpoint], "endpoint", "status")
            check(rc == 0 and ", true," in out, f"m5 leads now: {out.strip()}")
            check(len(acked) > 20, f"writes acknowledged during the changes: {len(acked)}")

            # Remove m2 and add it back at the same address, empty, as a
            # learner: it gets a new id (a removed id stays retired), learns
            # it from the leader, catches up, is promoted, and keeps that id
            # across a restart.
            old_m2 = member_ids(final)["m2"][0]
            rc, out, err = etcdctl(final, "member", "remove", old_m2)
            check(rc == 0, f"member remove m2: {out}{err}")
            check(wait_until(lambda: ms["m2"].p.poll() is not None, 10), "m2 stopped itself")
            shutil.rmtree(os.path.join(tmp, "m2"))
            rest = [ms[n].endpoint for n in ["m3", "m4", "m5"]]
            for _ in range(50):
                rc, out, err = etcdctl(rest, "member", "add", "m2", "--learner",
                                       f"--peer-urls={ms['m2'].peer}")
                if rc == 0 or ("leader changed" not in err and "no leader" not in err):
                    break
                time.sleep(0.2)
            check(rc == 0, f"member add m2 --learner at its old address: {out}{err}")
            again = [l.split('"')[1] for l in out.splitlines()
                     if l.startswith("ETCD_INITIAL_CLUSTER=")]
            ms["m2"].start(again[0] if again else "", "existing")
            # Listed under its name once it has caught up and published it.
            check(wait_until(lambda: member_ids(final).get("m2", ("", False))[1] is True, 20),
                  "m2 is listed (by name) as a learner again")
            new_m2 = member_ids(final).get("m2", ("",))[0]
            check(new_m2 and new_m2 != old_m2, f"m2 came back under a new id ({old_m2} -> {new_m2})")
            check(wait_until(lambda: etcdctl(final, "member", "promote", new_m2)[0] == 0, 30),
                  "m2 promoted again")
            rc, _, err = etcdctl([ms["m2"].endpoint], "put", "via-m2-again", "yes")
            check(rc == 0, f"a write through m2 after it came back: {err}")
            ms["m2"].stop()
            ms["m2"].start(again[0] if again else "", "existing")
            check(wait_until(lambda: etcdctl([ms["m2"].endpoint], "put", "m2-restarted",
                                             "yes")[0] == 0, 20),
                  "m2 restarted on its data keeps its new id and serves")
            ids = member_ids(final)
            check(ids.get("m2") == (new_m2, False), f"m2 is a voter under {new_m2}: {ids}")
            final = [ms[n].endpoint for n in ["m2", "m3", "m4", "m5"]]

            # Every acknowledged write on every member (local reads once caught up).
            last = max(acked) if acked else "ready"
            for n in ["m2", "m3", "m4", "m5"]:
                ep = [ms[n].endpoint]

                def has_last(ep=ep):
                    rc, out, _ = etcdctl(ep, "get", "via-m5", "--consistency=s",
                                         "--print-value-only")
                    return rc == 0 and out.strip() == "yes"

                wait_until(has_last, 20)
                rc, out, _ = etcdctl(ep, "get", "load/", "--prefix", "--consistency=s",
                                     timeout=30)
                lines = out.splitlines()
                got = dict(zip(lines[0::2], lines[1::2]))
                missing = [k for k, v in acked.items() if got.get(k) != v]
                check(rc == 0 and not missing,
                      f"{n} has all {len(acked)} acknowledged writes (missing {len(missing)}; "
                      f"last {last})")
        finally:
            for m in ms.values():
                m.stop()
    print(f"\n{'FAIL' if FAILURES else 'OK'}: {len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
