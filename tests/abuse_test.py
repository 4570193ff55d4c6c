#!/usr/bin/env python3
"""Limits against abuse, against a real member: each limit answers with an
error that says what was exceeded, and a flood of bad traffic leaves the
member serving a well-behaved client.

Usage: abuse_test.py --bulwark PATH [--etcdctl PATH] [--flood-seconds N]

One member is started (and stopped by PID) with small limits. Checked:
  - a request over --max-request-bytes: etcd's "etcdserver: request is too
    large"; one far over it: gRPC's RESOURCE_EXHAUSTED, the member unharmed;
  - a txn of more than --max-txn-ops operations: etcd's error;
  - a watch stream past --max-watchers-per-stream: the create is answered
    created+canceled with a reason naming the flag; the stream's other
    watchers go on;
  - --max-concurrent-streams: on one connection, calls past the limit wait
    (a short deadline expires) while another connection is served;
  - --max-connection-idle: an idle connection is closed by the server;
  - keepalive enforcement: a client pinging every 100 ms with no call open
    is sent GOAWAY (too_many_pings) and its connection is closed;
  - the flood: for --flood-seconds, threads send the client port random
    bytes, HTTP/1.1 requests, truncated HTTP/2 prefaces, malformed protobuf
    bodies and oversized messages over gRPC, and the peer port random bytes,
    bad frames and connections that never greet (past the cap of open peer
    connections); meanwhile a client puts and gets every 20 ms. Every bad
    gRPC call gets an error (none hangs), the good client's calls succeed
    (at least 98%, none slower than 2 s), and the member is up and healthy
    after.
"""
import argparse
import os
import random
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import free_port, run_etcdctl, spawn, stop_process  # noqa: E402

import grpc  # noqa: E402
from etcd3.etcdrpc import rpc_pb2 as pb  # noqa: E402
from etcd3.etcdrpc import KVStub, WatchStub  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def channel(endpoint, **opts):
    # A private subchannel pool: each channel its own connection.
    options = [("grpc.use_local_subchannel_pool", 1),
               ("grpc.max_send_message_length", 64 << 20)] + list(opts.items())
    return grpc.insecure_channel(endpoint, options=options)


def wait_state(ch, wanted, timeout):
    """True once the channel's connectivity state is one of `wanted`."""
    seen = threading.Event()
    got = []

    def cb(state):
        got.append(state)
        if state in wanted:
            seen.set()

    ch.subscribe(cb, try_to_connect=False)
    ok = seen.wait(timeout)
    ch.unsubscribe(cb)
    return ok, got


def limits_part(a, endpoint, pport):
    kv = KVStub(channel(endpoint))
    kv.Put(pb.PutRequest(key=b"a", value=b"1"), timeout=5)

    # Request size: just over the limit is etcd's error; far over, gRPC's.
    try:
        kv.Put(pb.PutRequest(key=b"big", value=b"x" * (a.max_request_bytes + 100)), timeout=5)
        check(False, "a put over --max-request-bytes is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and
              "etcdserver: request is too large" in e.details(),
              f"a put over --max-request-bytes: etcd's error ({e.code()}: {e.details()})")
    try:
        kv.Put(pb.PutRequest(key=b"huge", value=b"x" * (8 << 20)), timeout=10)
        check(False, "an 8 MiB put is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
              f"an 8 MiB put: RESOURCE_EXHAUSTED ({e.code()}: {e.details()[:100]})")
    kv.Put(pb.PutRequest(key=b"after-big", value=b"ok"), timeout=5)
    check(True, "the member serves after oversized requests")

    # Txn operations.
    ops = [pb.RequestOp(request_put=pb.PutRequest(key=f"t{i}".encode(), value=b"v"))
           for i in range(a.max_txn_ops + 1)]
    try:
        kv.Txn(pb.TxnRequest(success=ops), timeout=5)
        check(False, "a txn over --max-txn-ops is refused")
    except grpc.RpcError as e:
        check("etcdserver: too many operations in txn request" in e.details(),
              f"a txn over --max-txn-ops: etcd's error ({e.details()})")
    r = kv.Txn(pb.TxnRequest(success=ops[:a.max_txn_ops]), timeout=5)
    check(r.succeeded, "a txn of exactly --max-txn-ops operations is applied")

    # Watchers per stream.
    reqs = [pb.WatchRequest(create_request=pb.WatchCreateRequest(key=f"w{i}".encode()))
            for i in range(a.max_watchers + 1)]
    ch = channel(endpoint)
    answers = WatchStub(ch).Watch(iter(reqs), timeout=10)
    created = []
    refused = None
    try:
        for resp in answers:
            if resp.created and resp.canceled:
                refused = resp
                break
            if resp.created:
                created.append(resp.watch_id)
    except grpc.RpcError as e:
        check(False, f"watch stream: {e.code()} {e.details()}")
    check(len(created) == a.max_watchers, f"{len(created)} watchers created on one stream")
    check(refused is not None and "--max-watchers-per-stream" in refused.cancel_reason,
          f"the next create is refused naming the flag "
          f"({refused.cancel_reason if refused else None!r})")
    answers.cancel()
    ch.close()

    # Concurrent streams on one connection: the limit's worth of open watch
    # streams, then a unary call on the same connection waits; another
    # connection is served.
    ch = channel(endpoint)
    stop = threading.Event()

    def blocking_requests():
        yield pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"s"))
        stop.wait(30)

    holders = [WatchStub(ch).Watch(blocking_requests(), timeout=30) for _ in range(a.max_streams)]
    for it in holders:
        next(it)  # created: the stream is open on the server
    try:
        KVStub(ch).Range(pb.RangeRequest(key=b"a"), timeout=1.0)
        check(False, "a call past --max-concurrent-streams on the same connection waits")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
              f"a call past --max-concurrent-streams on one connection waits ({e.code()})")
    r = KVStub(channel(endpoint)).Range(pb.RangeRequest(key=b"a"), timeout=5)
    check(r.count == 1, "another connection is served meanwhile")
    stop.set()
    for it in holders:
        it.cancel()
    ch.close()

    # Idle connections are closed.
    ch = channel(endpoint)
    KVStub(ch).Range(pb.RangeRequest(key=b"a"), timeout=5)
    t0 = time.monotonic()
    ok, states = wait_state(ch, (grpc.ChannelConnectivity.IDLE,), a.idle_seconds + 5)
    check(ok, f"an idle connection is closed by the server after "
              f"{time.monotonic() - t0:.1f}s (--max-connection-idle {a.idle_seconds}s)")
    ch.close()

    # Keepalive enforcement: pings every 100 ms with no call open.
    ch = channel(endpoint, **{"grpc.keepalive_time_ms": 100,
                              "grpc.keepalive_permit_without_calls": 1,
                              "grpc.http2.max_pings_without_data": 0,
                              "grpc.http2.min_time_between_pings_ms": 100})
    KVStub(ch).Range(pb.RangeRequest(key=b"a"), timeout=5)
    ok, states = wait_state(ch, (grpc.ChannelConnectivity.IDLE,
                                 grpc.ChannelConnectivity.TRANSIENT_FAILURE), 10)
    check(ok, f"a client pinging too often is disconnected (GOAWAY too_many_pings; {states})")
    ch.close()


def flood_part(a, endpoint, pport, member):
    stop = threading.Event()
    stats = {"bad_errors": 0, "bad_ok": 0, "bad_hung": 0, "raw": 0, "peer": 0,
             "good_ok": 0, "good_fail": 0, "good_slowest": 0.0, "idle_closed": 0}
    lock = threading.Lock()
    host, port = endpoint.split(":")
    port = int(port)

    def bump(k, n=1):
        with lock:
            stats[k] += n

    def raw(target_port, payloads):
        rnd = random.Random(target_port)
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", target_port), timeout=2) as s:
                    s.settimeout(2)
                    s.sendall(rnd.choice(payloads)())
                    try:
                        s.recv(4096)
                    except OSError:
                        pass
                bump("raw" if target_port == port else "peer")
            except OSError:
                time.sleep(0.01)

    rnd = random.Random(1)
    client_payloads = [
        lambda: rnd.randbytes(rnd.randint(1, 70000)),
        lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[:rnd.randint(1, 23)],
        # A preface and then a frame header claiming 16 MiB.
        lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01",
    ]
    peer_payloads = [
        lambda: rnd.randbytes(rnd.randint(1, 70000)),
        # The frame magic with a length past any limit.
        lambda: struct.pack("<III", 0x46505742, 0xFFFFFFF0, 0) + rnd.randbytes(100),
        # A good header with a checksum that fails.
        lambda: struct.pack("<III", 0x46505742, 8, 12345) + b"12345678",
    ]

    def bad_grpc():
        ch = channel(endpoint)
        kv = KVStub(ch)
        garbage = ch.unary_unary("/etcdserverpb.KV/Put", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
        unknown = ch.unary_unary("/etcdserverpb.KV/NoSuchMethod",
                                 request_serializer=lambda b: b, response_deserializer=lambda b: b)
        r = random.Random(2)
        while not stop.is_set():
            which = r.randrange(4)
            t0 = time.monotonic()
            try:
                if which == 0:
                    garbage(r.randbytes(r.randint(1, 2000)), timeout=5)
                elif which == 1:
                    kv.Put(pb.PutRequest(key=b"f", value=b"x" * (a.max_request_bytes + 1)),
                           timeout=5)
                elif which == 2:
                    kv.Put(pb.PutRequest(key=b"f", value=b"x" * (3 << 20)), timeout=5)
                else:
                    unknown(b"\x00", timeout=5)
                bump("bad_ok")
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - t0 > 4:
                    bump("bad_hung")
                else:
                    bump("bad_errors")
        ch.close()

    def good():
        kv = KVStub(channel(endpoint))
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                kv.Put(pb.PutRequest(key=b"good", value=str(i).encode()), timeout=2)
                r = kv.Range(pb.RangeRequest(key=b"good"), timeout=2)
                assert r.kvs[0].value == str(i).encode()
                bump("good_ok")
            except (grpc.RpcError, AssertionError, IndexError):
                bump("good_fail")
            with lock:
                stats["good_slowest"] = max(stats["good_slowest"], time.monotonic() - t0)
            i += 1
            time.sleep(0.02)

    # Connections to the peer port that never greet: past the cap of open
    # ones they are closed at once.
    idle = []
    for _ in range(300):
        try:
            idle.append(socket.create_connection(("127.0.0.1", pport), timeout=2))
        except OSError:
            break
    threads = [threading.Thread(target=raw, args=(port, client_payloads)) for _ in range(3)]
    threads += [threading.Thread(target=raw, args=(pport, peer_payloads)) for _ in range(2)]
    threads += [threading.Thread(target=bad_grpc) for _ in range(3)]
    threads += [threading.Thread(target=good)]
    for t in threads:
        t.start()
    time.sleep(a.flood_seconds)
    stop.set()
    for t in threads:
        t.join(30)
    for s in idle:
        s.settimeout(0.5)
        try:
            if s.recv(1) == b"":
                stats["idle_closed"] += 1
        except socket.timeout:
            pass
        except OSError:
            stats["idle_closed"] += 1
        s.close()
    print(f"flood: {stats}")
    total = stats["good_ok"] + stats["good_fail"]
    check(stats["raw"] > 0 and stats["peer"] > 0 and stats["bad_errors"] > 0,
          "the flood ran (raw client-port, peer-port and bad gRPC traffic)")
    check(stats["bad_ok"] == 0 and stats["bad_hung"] == 0,
          "every bad gRPC call got an error, none hung")
    check(total > 0 and stats["good_ok"] >= 0.98 * total,
          f"the good client was served during the flood ({stats['good_ok']}/{total})")
    check(stats["good_slowest"] < 2.0, f"slowest good call {stats['good_slowest']:.2f}s")
    check(stats["idle_closed"] >= 300 - 256,
          f"peer connections past the cap (or not greeting) were closed ({stats['idle_closed']})")
    check(member.poll() is None, "the member is still up")
    r = run_etcdctl(a.etcdctl, [endpoint], ["endpoint", "health"])
    check(r.returncode == 0, f"and healthy ({(r.stdout + r.stderr).strip()})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--flood-seconds", type=float, default=15)
    a = ap.parse_args()
    a.max_request_bytes = 64 * 1024
    a.max_txn_ops = 16
    a.max_watchers = 5
    a.max_streams = 4
    a.idle_seconds = 2
    with tempfile.TemporaryDirectory(prefix="bw-abuse-test-") as tmp:
        port, pport = free_port(), free_port()
        url, purl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{pport}"
        argv = [a.bulwark, "start", "--name", "a", "--data-dir", os.path.join(tmp, "a"),
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                "--initial-cluster", f"a={purl}",
                "--max-request-bytes", str(a.max_request_bytes),
                "--max-txn-ops", str(a.max_txn_ops),
                "--max-watchers-per-stream", str(a.max_watchers),
                "--max-concurrent-streams", str(a.max_streams),
                "--max-connection-idle", f"{a.idle_seconds}s"]
        log = os.path.join(tmp, "a.log")
        p = spawn(argv, log)
        try:
            endpoint = f"127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while run_etcdctl(a.etcdctl, [endpoint], ["endpoint", "health"]).returncode != 0:
                if time.monotonic() > deadline or p.poll() is not None:
                    print(open(log).read())
                    check(False, "the member started")
                    return 1
                time.sleep(0.2)
            limits_part(a, endpoint, pport)
            flood_part(a, endpoint, pport, p)
        finally:
            stop_process(p)
        if FAILURES:
            print("--- member log (tail) ---")
            print("".join(open(log, errors="replace").readlines()[-30:]))
    if FAILURES:
        print(f"{len(FAILURES)} FAILED:\n  " + "\n  ".join(FAILURES))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
