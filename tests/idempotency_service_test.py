#!/usr/bin/env python3
"""bulwark.v1.Idempotency on a real three-member cluster: the payment pattern.

Usage: idempotency_service_test.py --bulwark PATH

The Python message classes are generated at run time from proto/bulwark/
idempotency.proto with protoc (nothing generated is committed). Checks:
  - Begin -> STARTED with a token; a second Begin -> IN_PROGRESS; Complete;
    Begin again -> COMPLETED with the stored response; another request with
    the same key -> MISMATCH;
  - fencing: worker A stalls past its lock, B takes over (took_over, resumes
    from A's recovery point), A's Complete is refused, B's stands;
  - Release gives the key up; Get and List for operators;
  - the records survive the leader being SIGKILLed (asked of the new leader).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster as cl  # noqa: E402

import grpc  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def load_pb(tmp):
    proto_dir = os.path.join(os.path.dirname(HERE), "proto")
    subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={tmp}",
                    os.path.join(proto_dir, "bulwark", "idempotency.proto")], check=True)
    sys.path.insert(0, tmp)
    from bulwark import idempotency_pb2  # noqa: E402
    return idempotency_pb2


class Service:
    def __init__(self, pb, endpoint):
        ch = grpc.insecure_channel(endpoint)
        self.pb = pb
        names = {"Begin": ("BeginRequest", "BeginResponse"),
                 "Checkpoint": ("CheckpointRequest", "CheckpointResponse"),
                 "Complete": ("CompleteRequest", "CompleteResponse"),
                 "Release": ("ReleaseRequest", "ReleaseResponse"),
                 "Get": ("GetRequest", "GetResponse"),
                 "List": ("ListRequest", "ListResponse")}
        for m, (req, resp) in names.items():
            setattr(self, m, ch.unary_unary(
                f"/bulwark.v1.Idempotency/{m}",
                request_serializer=getattr(pb, req).SerializeToString,
                response_deserializer=getattr(pb, resp).FromString))


def worker(endpoint, pbdir):
    """A worker process: Begin + Checkpoint, then (when told) Complete."""
    sys.path.insert(0, pbdir)
    from bulwark import idempotency_pb2 as pb  # noqa: E402
    svc = Service(pb, endpoint)
    r = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-9", fingerprint=b"fp9",
                                  lock_ttl_ms=400), timeout=5)
    svc.Checkpoint(pb.CheckpointRequest(scope="pay", key=b"order-9", token=r.token,
                                        recovery_point="charged", data=b"ch_9"), timeout=5)
    print(f"token {r.token}", flush=True)
    sys.stdin.readline()  # the parent stops us here (SIGSTOP), then lets us go on
    try:
        svc.Complete(pb.CompleteRequest(scope="pay", key=b"order-9", token=r.token,
                                        response=b"from the stalled worker", status=200),
                     timeout=5)
        print("completed", flush=True)
    except grpc.RpcError as e:
        print(f"refused {e.code().name}", flush=True)
    return 0


def stopped_worker_is_fenced(pb, svc, endpoint, pbdir):
    import signal
    w = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", endpoint,
                          "--pbdir", pbdir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        line = w.stdout.readline().strip()
        check(line.startswith("token "), f"the worker holds the key ({line})")
        w.send_signal(signal.SIGSTOP)  # paused past its 400 ms lock
        time.sleep(1.0)
        b = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-9", fingerprint=b"fp9",
                                      lock_ttl_ms=5000), timeout=5)
        check(b.outcome == pb.BeginResponse.STARTED and b.took_over and
              b.recovery_point == "charged",
              "a successor takes over the SIGSTOPped worker's key and resumes")
        w.send_signal(signal.SIGCONT)
        w.stdin.write("go\n")
        w.stdin.flush()
        result = w.stdout.readline().strip()
        check(result == "refused FAILED_PRECONDITION",
              f"the worker, continued, cannot complete: {result}")
        svc.Complete(pb.CompleteRequest(scope="pay", key=b"order-9", token=b.token,
                                        response=b"from the successor", status=200), timeout=5)
        got = svc.Get(pb.GetRequest(scope="pay", key=b"order-9"), timeout=5).record
        check(got.response == b"from the successor", "the successor's outcome stands")
    finally:
        if w.poll() is None:
            w.send_signal(signal.SIGCONT)
            w.kill()
        w.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--pbdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.pbdir)
    if not args.bulwark:
        ap.error("--bulwark is required")
    with tempfile.TemporaryDirectory(prefix="bw-idem-pb-") as tmp, \
            cl.Cluster("bulwark", 3, binary=os.path.abspath(args.bulwark)) as cluster:
        pb = load_pb(tmp)
        R = pb.BeginResponse
        cluster.start()
        leader = cluster.leader()
        svc = Service(pb, leader.endpoint)
        fp = b"charge:alice:4200:EUR"

        a = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-1", fingerprint=fp,
                                      lock_ttl_ms=5000), timeout=5)
        check(a.outcome == R.STARTED and a.token > 0, f"Begin -> STARTED token {a.token}")
        b = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-1", fingerprint=fp,
                                      lock_ttl_ms=5000), timeout=5)
        check(b.outcome == R.IN_PROGRESS and 0 < b.lock_remaining_ms <= 5000,
              f"a second Begin -> IN_PROGRESS ({b.lock_remaining_ms} ms left)")
        svc.Checkpoint(pb.CheckpointRequest(scope="pay", key=b"order-1", token=a.token,
                                            recovery_point="gateway-called", data=b"txn-9"),
                       timeout=5)
        svc.Complete(pb.CompleteRequest(scope="pay", key=b"order-1", token=a.token,
                                        response=b"receipt-1", status=201), timeout=5)
        c = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-1", fingerprint=fp,
                                      lock_ttl_ms=5000), timeout=5)
        check(c.outcome == R.COMPLETED and c.response == b"receipt-1" and c.status == 201,
              "Begin after Complete -> COMPLETED with the stored response")
        m = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-1", fingerprint=b"other",
                                      lock_ttl_ms=5000), timeout=5)
        check(m.outcome == R.MISMATCH, "the key with another request -> MISMATCH")

        # Fencing: A stalls past its lock; B takes over and resumes.
        a = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-2", fingerprint=fp,
                                      lock_ttl_ms=300), timeout=5)
        svc.Checkpoint(pb.CheckpointRequest(scope="pay", key=b"order-2", token=a.token,
                                            recovery_point="card-charged", data=b"ch_1"),
                       timeout=5)
        time.sleep(0.6)  # A is paused past its lock
        b = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-2", fingerprint=fp,
                                      lock_ttl_ms=5000), timeout=5)
        check(b.outcome == R.STARTED and b.took_over and b.token > a.token,
              f"B takes over the expired lock (token {a.token} -> {b.token})")
        check(b.recovery_point == "card-charged" and b.checkpoint_data == b"ch_1",
              "B resumes from A's recovery point instead of charging again")
        try:
            svc.Complete(pb.CompleteRequest(scope="pay", key=b"order-2", token=a.token,
                                            response=b"A", status=200), timeout=5)
            check(False, "the stalled worker's Complete is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "fencing" in e.details(),
                  f"the stalled worker's Complete is refused: {e.details()}")
        svc.Complete(pb.CompleteRequest(scope="pay", key=b"order-2", token=b.token,
                                        response=b"B", status=200), timeout=5)

        # Release: nothing kept.
        r = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-3", fingerprint=fp,
                                      lock_ttl_ms=5000), timeout=5)
        svc.Release(pb.ReleaseRequest(scope="pay", key=b"order-3", token=r.token), timeout=5)
        again = svc.Begin(pb.BeginRequest(scope="pay", key=b"order-3", fingerprint=fp,
                                          lock_ttl_ms=5000), timeout=5)
        check(again.outcome == R.STARTED and not again.took_over,
              "after Release the key starts over")

        stopped_worker_is_fenced(pb, svc, leader.endpoint, tmp)

        lst = svc.List(pb.ListRequest(scope="pay", prefix=b"order-"), timeout=5)
        check(len(lst.records) == 4, f"List shows the 4 records ({len(lst.records)})")

        # The records survive the leader's death.
        leader.kill()
        new = cluster.leader(exclude=(leader,))
        svc2 = Service(pb, new.endpoint)
        got = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                got = svc2.Get(pb.GetRequest(scope="pay", key=b"order-2"), timeout=2).record
                break
            except grpc.RpcError:
                time.sleep(0.1)
        check(got is not None and got.state == pb.Record.COMPLETED and got.response == b"B",
              "after the leader's death the new leader has B's outcome")
    print(f"\n{'FAIL' if FAILURES else 'OK'}: {len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
