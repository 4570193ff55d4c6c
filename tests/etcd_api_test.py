#!/usr/bin/python3
"""The raw etcd v3 gRPC API against etcd 3.4: the same requests, the same answers.

Where tests/etcd_compat_test.py compares what etcdctl prints, this test sends requests
etcdctl never sends (empty ops, nested transactions, negative ids, watch ids chosen by
the client, alarms raised by hand, sizes at the limits) straight to the gRPC services of
a fresh single-member etcd and a fresh single-member bulwark, in the same order, and
compares each answer: the gRPC status code and message of an error, or the response
with what legitimately differs normalised (cluster, member and raft ids and terms,
versions, sizes). Both start at revision 1, so revisions must agree too.

Exit 0 only when every difference is listed in tests/api_known_differences.txt (one
case name a line, the reason after '#'); listed cases that now match are named so the
list can shrink.

Usage:
  tests/etcd_api_test.py --bulwark PATH --proto-src DIR [--etcd PATH] [--only REGEX]
                         [--report FILE] [--known FILE]

--proto-src is the build's copy of etcd's .proto files (BUILD/proto-src); the messages
are built from them at run time (protoc, the protobuf runtime and grpcio; no generated
code in the tree).
"""
import argparse
import difflib
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_KNOWN = os.path.join(HERE, "api_known_differences.txt")
MAX_REQUEST = 1572864  # etcd's default --max-request-bytes (1.5 MiB); bulwark's too
RPC_TIMEOUT = 10.0
WATCH_WAIT = 5.0  # how long a watch case waits for each answer it expects


# --------------------------------------------------------------------------------------
# Messages from etcd's .proto files
# --------------------------------------------------------------------------------------
class Api:
    """The etcdserverpb messages, built from the .proto files, and generic stubs."""

    def __init__(self, proto_src):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "rpc.pb")
            subprocess.run(["protoc", f"-I{proto_src}", "--include_imports",
                            f"--descriptor_set_out={out}",
                            "etcd/etcdserver/etcdserverpb/rpc.proto"], check=True)
            with open(out, "rb") as f:
                fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
        self.pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:
            self.pool.Add(fd)
        self._factory = message_factory.MessageFactory(self.pool)
        self._classes = {}

    def msg(self, type_name, **fields):
        """An etcdserverpb (or mvccpb/authpb when qualified) message."""
        full = type_name if "." in type_name else "etcdserverpb." + type_name
        if full not in self._classes:
            self._classes[full] = self._factory.GetPrototype(
                self.pool.FindMessageTypeByName(full))
        return self._classes[full](**fields)

    def method(self, service, name):
        sd = self.pool.FindServiceByName("etcdserverpb." + service)
        md = sd.FindMethodByName(name)
        out = self._factory.GetPrototype(md.output_type)
        return f"/etcdserverpb.{service}/{name}", out, md.client_streaming


class Server:
    """One running server and a channel to it."""

    def __init__(self, api, kind, binary):
        self.api = api
        self.kind = kind
        self.cluster = cl.Cluster(kind, 1, binary=binary)
        self.cluster.start()
        self.channel = grpc.insecure_channel(
            self.cluster.members[0].endpoint,
            options=[("grpc.max_send_message_length", 8 << 20),
                     ("grpc.max_receive_message_length", 8 << 20)])
        status = self.call("Maintenance", "Status", api.msg("StatusRequest"))
        self.member_id = status.header.member_id

    def call(self, service, name, request):
        path, out, _ = self.api.method(service, name)
        fn = self.channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=out.FromString)
        return fn(request, timeout=RPC_TIMEOUT)

    def stream(self, service, name):
        path, out, _ = self.api.method(service, name)
        return Stream(self.channel.stream_stream(
            path, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=out.FromString))

    def close(self):
        self.channel.close()
        self.cluster.stop()


class Stream:
    """A bidirectional stream: send requests, take answers with a bounded wait."""

    def __init__(self, fn):
        self.requests = queue.Queue()
        self.answers = queue.Queue()
        self.call = fn(iter(self.requests.get, None), timeout=60)

        def read():
            try:
                for a in self.call:
                    self.answers.put(a)
            except grpc.RpcError as e:
                self.answers.put(e)
            self.answers.put(None)
        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def send(self, m):
        self.requests.put(m)

    def take(self, wait=WATCH_WAIT):
        """The next answer, or "(nothing)" when none comes within `wait` seconds."""
        try:
            a = self.answers.get(timeout=wait)
        except queue.Empty:
            return "(nothing)"
        return "(end of stream)" if a is None else a

    def close(self):
        self.requests.put(None)
        self.call.cancel()
        self.reader.join(timeout=5)


# --------------------------------------------------------------------------------------
# Normalising answers
# --------------------------------------------------------------------------------------
DROP_HEADER = ("cluster_id", "member_id", "raft_term")
DROP_TOP = ("version", "dbSize", "dbSizeInUse", "raftIndex", "raftTerm", "raftAppliedIndex",
                 "leader")


def normal(x, server):
    """A JSON-able form of an answer or an error, with what may differ replaced."""
    if isinstance(x, grpc.RpcError):
        return {"error": x.code().name, "message": x.details()}
    if isinstance(x, str):
        return x
    d = json_format.MessageToDict(x, preserving_proto_field_name=True)
    return _scrub(d, server, ())


def _scrub(v, server, path):
    if isinstance(v, dict):
        out = {}
        if "TTL" in v and "grantedTTL" in v:
            # What is left of a lease depends on when it is asked: only its
            # range must agree.
            left, granted = int(v["TTL"]), int(v["grantedTTL"])
            v = dict(v, TTL="(0 < TTL <= granted)" if 0 < left <= granted else f"({left}?)")
        for k, val in v.items():
            if k in DROP_TOP and not path:
                out[k] = "(any)"
                continue
            if path and path[-1] == "header" and k in DROP_HEADER:
                out[k] = "(id)" if k != "raft_term" else "(any)"
                continue
            if k in ("memberID", "ID", "id") and str(val) == str(server.member_id):
                out[k] = "(this member)"
                continue
            out[k] = _scrub(val, server, path + (k,))
        return out
    if isinstance(v, list):
        out = [_scrub(x, server, path) for x in v]
        if path and path[-1] == "alarms":  # etcd lists them in Go's map order
            out.sort(key=lambda a: json.dumps(a, sort_keys=True))
        return out
    if isinstance(v, str):
        v = v.replace(str(server.member_id), "(this member)")
        return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:(port)", v)
    return v


# --------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class Ctx:
    """What a case sees: its server, the messages, shorthands for the services."""

    def __init__(self, server):
        self.s = server
        self.api = server.api
        self.m = server.api.msg

    def rpc(self, service, name, request):
        try:
            return normal(self.s.call(service, name, request), self.s)
        except grpc.RpcError as e:
            return normal(e, self.s)

    def kv(self, name, **f):
        request = "CompactionRequest" if name == "Compact" else name + "Request"
        return self.rpc("KV", name, self.m(request, **f))

    def put(self, key, value=b"v", **f):
        return self.kv("Put", key=key, value=value, **f)

    def txn(self, compare=(), success=(), failure=()):
        return self.rpc("KV", "Txn", self.m("TxnRequest", compare=list(compare),
                                            success=list(success), failure=list(failure)))

    def op_put(self, key, value=b"v", **f):
        return self.m("RequestOp", request_put=self.m("PutRequest", key=key, value=value, **f))

    def op_range(self, key, **f):
        return self.m("RequestOp", request_range=self.m("RangeRequest", key=key, **f))

    def op_del(self, key, **f):
        return self.m("RequestOp", request_delete_range=self.m("DeleteRangeRequest", key=key, **f))

    def op_txn(self, success=(), failure=(), compare=()):
        return self.m("RequestOp", request_txn=self.m(
            "TxnRequest", compare=list(compare), success=list(success), failure=list(failure)))

    def lease(self, name, **f):
        return self.rpc("Lease", name, self.m(name + "Request", **f))

    def maint(self, name, **f):
        return self.rpc("Maintenance", name, self.m(name + "Request", **f))

    def watch(self):
        return self.s.stream("Watch", "Watch")

    def wcreate(self, **f):
        return self.m("WatchRequest", create_request=self.m("WatchCreateRequest", **f))

    def wanswers(self, stream, n):
        return [normal(stream.take(), self.s) for _ in range(n)]


def brief(answer):
    """A long txn answer in short: the error, or the header, outcome and answer count."""
    if not isinstance(answer, dict) or "error" in answer:
        return answer
    return {"header": answer.get("header"), "succeeded": answer.get("succeeded", False),
            "responses": len(answer.get("responses", []))}


# --- KV -------------------------------------------------------------------------------
@case
def put_and_range(c):
    return [c.put(b"a", b"1"), c.put(b"b", b"2", prev_kv=True), c.put(b"b", b"3", prev_kv=True),
            c.kv("Range", key=b"a", range_end=b"c"), c.kv("Range", key=b"a", range_end=b"\0",
                                                        count_only=True)]


@case
def empty_key(c):
    return [c.put(b""), c.kv("Range", key=b""), c.kv("DeleteRange", key=b"")]


@case
def range_options(c):
    return [c.kv("Range", key=b"a", range_end=b"\0", limit=1),
            c.kv("Range", key=b"a", range_end=b"\0", sort_order=2, sort_target=3),
            c.kv("Range", key=b"a", range_end=b"\0", keys_only=True, min_mod_revision=3),
            c.kv("Range", key=b"a", range_end=b"\0", max_create_revision=2),
            c.kv("Range", key=b"a", revision=2), c.kv("Range", key=b"a", revision=99),
            c.kv("Range", key=b"a", limit=-1), c.kv("Range", key=b"z", range_end=b"a")]


@case
def put_ignore_flags(c):
    return [c.put(b"nokey", ignore_value=True, value=b""), c.put(b"a", b"x", ignore_value=True),
            c.put(b"a", ignore_lease=True), c.put(b"a", b"4")]


@case
def put_negative_lease(c):
    return [c.put(b"neg", lease=-1), c.put(b"neg", lease=12345)]


@case
def delete_ranges(c):
    return [c.put(b"d1"), c.put(b"d2"), c.kv("DeleteRange", key=b"d1", range_end=b"d3",
                                              prev_kv=True),
            c.kv("DeleteRange", key=b"zz", range_end=b"\0"),
            c.kv("DeleteRange", key=b"q", range_end=b"p")]


@case
def txn_empty(c):
    return [c.txn()]


@case
def txn_empty_op(c):
    return [c.txn(success=[c.m("RequestOp")]), c.txn(success=[c.op_put(b"t"), c.m("RequestOp")])]


@case
def txn_nested_header(c):
    return [c.txn(success=[c.op_txn(success=[c.op_put(b"n1"), c.op_range(b"n1")]),
                           c.op_range(b"n1")])]


@case
def txn_too_many_ops(c):
    ops = [c.op_put(b"k%03d" % i) for i in range(129)]
    return [brief(c.txn(success=ops)), brief(c.txn(failure=ops)),
            c.txn(compare=[c.m("Compare", key=b"k%03d" % i, target=0, result=0)
                           for i in range(129)])]


@case
def txn_nested_op_counts(c):
    # 100 operations at each of two levels: 200 in all, at most 100 in any one list.
    inner = [c.op_put(b"in%03d" % i) for i in range(100)]
    outer = [c.op_range(b"out%03d" % i) for i in range(99)] + [c.op_txn(success=inner)]
    too_many_inner = [c.op_range(b"r%03d" % i) for i in range(129)]
    return [brief(c.txn(success=outer)), brief(c.txn(success=[c.op_txn(success=too_many_inner)]))]


@case
def txn_duplicate_keys(c):
    return [c.txn(success=[c.op_put(b"dup"), c.op_put(b"dup")]),
            c.txn(success=[c.op_del(b"a", range_end=b"c"), c.op_put(b"b")]),
            c.txn(success=[c.op_put(b"b"), c.op_txn(success=[c.op_put(b"b")])]),
            c.txn(success=[c.op_put(b"b")], failure=[c.op_put(b"b")])]


@case
def txn_from_key_delete_and_put(c):
    return [c.txn(success=[c.op_del(b"m", range_end=b"\0"), c.op_put(b"n")]),
            c.txn(success=[c.op_del(b"m", range_end=b"\0"), c.op_put(b"a")]),
            c.kv("Range", key=b"a", range_end=b"\0", keys_only=True)]


@case
def txn_compares(c):
    cmp = c.m
    return [
        c.txn(compare=[cmp("Compare", key=b"a", target=0, result=0, version=0)],
              success=[c.op_range(b"a")], failure=[c.op_put(b"cmpfail")]),
        c.txn(compare=[cmp("Compare", key=b"nothere", target=0, result=0, version=0)],
              success=[c.op_put(b"created")]),
        c.txn(compare=[cmp("Compare", key=b"a", range_end=b"c", target=3, result=1,
                           mod_revision=1000)], success=[c.op_range(b"a")]),
        c.txn(compare=[cmp("Compare", key=b"a", target=4, result=0, lease=0)],
              success=[c.op_range(b"a")]),
        c.txn(compare=[cmp("Compare", key=b"a", target=2, result=2, value=b"0")],
              success=[c.op_range(b"a")]),
    ]


@case
def request_sizes(c):
    out = []
    for n in (MAX_REQUEST - 64, MAX_REQUEST - 24, MAX_REQUEST - 12, MAX_REQUEST,
              MAX_REQUEST + 1):
        r = c.put(b"big", b"x" * n)
        out.append({"value bytes": n, "answer": r})
    return out


@case
def grpc_message_limit(c):
    # Past --max-request-bytes and gRPC's 512 KiB of slack, the gRPC library
    # itself refuses the message.
    return [c.put(b"big", b"x" * (3 << 20))]


@case
def hashkv_before_any_compaction(c):
    return [c.maint("HashKV", revision=0)]


@case
def compaction(c):
    return [c.kv("Compact", revision=999), c.kv("Compact", revision=3),
            c.kv("Compact", revision=3), c.kv("Compact", revision=2),
            c.kv("Range", key=b"a", revision=2), c.kv("Range", key=b"a", revision=3),
            c.maint("HashKV", revision=2), c.maint("HashKV", revision=0)]


# --- Lease ----------------------------------------------------------------------------
@case
def lease_ids(c):
    return [c.lease("LeaseGrant", ID=-5, TTL=60), c.lease("LeaseGrant", ID=77, TTL=60),
            c.lease("LeaseGrant", ID=77, TTL=60), c.lease("LeaseTimeToLive", ID=-5),
            c.lease("LeaseRevoke", ID=-5), c.lease("LeaseRevoke", ID=4242),
            c.lease("LeaseTimeToLive", ID=4242, keys=True),
            c.lease("LeaseGrant", ID=78, TTL=9000000001)]


@case
def lease_attach(c):
    return [c.put(b"la", lease=77), c.lease("LeaseTimeToLive", ID=77, keys=True),
            c.lease("LeaseRevoke", ID=77), c.kv("Range", key=b"la"),
            c.lease("LeaseTimeToLive", ID=77)]


@case
def lease_list_and_keepalive(c):
    grants = [c.lease("LeaseGrant", ID=300, TTL=60), c.lease("LeaseGrant", ID=301, TTL=60)]
    listed = c.lease("LeaseLeases")
    s = c.s.stream("Lease", "LeaseKeepAlive")
    s.send(c.m("LeaseKeepAliveRequest", ID=300))
    kept = normal(s.take(), c.s)
    s.close()
    return grants + [listed, kept, c.lease("LeaseRevoke", ID=300), c.lease("LeaseRevoke", ID=301),
                     c.lease("LeaseLeases")]


@case
def lease_keepalive_unknown(c):
    s = c.s.stream("Lease", "LeaseKeepAlive")
    s.send(c.m("LeaseKeepAliveRequest", ID=4243))
    a = normal(s.take(), c.s)
    s.close()
    return [a]


# --- Maintenance ----------------------------------------------------------------------
@case
def alarms(c):
    me = c.s.member_id
    return [c.maint("Alarm", action=0),
            c.maint("Alarm", action=1, memberID=me, alarm=1),
            c.maint("Alarm", action=0), c.maint("Status").get("errors"),
            c.put(b"during-alarm"), c.kv("Range", key=b"a"),
            c.txn(success=[c.op_range(b"a")]), c.kv("DeleteRange", key=b"a"),
            c.lease("LeaseGrant", ID=91, TTL=60),
            c.maint("Alarm", action=2, memberID=me, alarm=1),
            c.maint("Alarm", action=0), c.put(b"after-alarm"),
            c.maint("Alarm", action=1, memberID=me, alarm=0),
            c.maint("Alarm", action=1, memberID=12345, alarm=1),
            c.maint("Alarm", action=0),
            c.maint("Alarm", action=2, memberID=12345, alarm=1),
            c.maint("Alarm", action=2, memberID=me, alarm=2)]


@case
def status_and_defrag(c):
    return [c.maint("Status"), c.maint("Defragment")]


# --- Cluster --------------------------------------------------------------------------
@case
def members(c):
    ml = c.rpc("Cluster", "MemberList", c.m("MemberListRequest"))
    return [ml, c.rpc("Cluster", "MemberRemove", c.m("MemberRemoveRequest", ID=12345)),
            c.rpc("Cluster", "MemberUpdate", c.m("MemberUpdateRequest", ID=12345,
                                                 peerURLs=["http://127.0.0.1:1"])),
            c.rpc("Cluster", "MemberAdd", c.m("MemberAddRequest", peerURLs=["not a url"])),
            c.rpc("Cluster", "MemberAdd", c.m("MemberAddRequest", peerURLs=[]))]


@case
def member_calls_on_unknown_ids(c):
    return [c.rpc("Cluster", "MemberPromote", c.m("MemberPromoteRequest", ID=12345)),
            c.rpc("Maintenance", "MoveLeader", c.m("MoveLeaderRequest", targetID=12345)),
            c.rpc("Maintenance", "MoveLeader", c.m("MoveLeaderRequest", targetID=c.s.member_id))]


@case
def reads_of_every_kind(c):
    return [c.kv("Range", key=b"a", range_end=b"\0", serializable=True, keys_only=True),
            c.kv("Range", key=b"\0", range_end=b"\0", count_only=True),
            c.kv("Range", key=b"a", range_end=b"\0", sort_target=4, sort_order=1, limit=2),
            c.txn(compare=[c.m("Compare", key=b"missing", target=3, result=0, value=b"")],
                  success=[c.op_range(b"a")], failure=[c.op_range(b"b")]),
            c.kv("DeleteRange", key=b"zz1", range_end=b"\0", prev_kv=True)]


# --- Watch ----------------------------------------------------------------------------
@case
def watch_duplicate_id(c):
    s = c.watch()
    s.send(c.wcreate(key=b"w", watch_id=7))
    first = c.wanswers(s, 1)
    s.send(c.wcreate(key=b"w2", watch_id=7))
    second = c.wanswers(s, 1)
    s.close()
    return first + second


@case
def watch_empty_and_inverted_ranges(c):
    s = c.watch()
    s.send(c.wcreate(key=b"w", range_end=b"w"))
    a = c.wanswers(s, 1)
    s.send(c.wcreate(key=b"x", range_end=b"a"))
    b = c.wanswers(s, 1)
    s.send(c.wcreate(key=b"", range_end=b""))
    d = c.wanswers(s, 1)
    s.close()
    return a + b + d


@case
def watch_events_and_cancel(c):
    s = c.watch()
    s.send(c.wcreate(key=b"we", prev_kv=True))
    created = c.wanswers(s, 1)
    c.put(b"we", b"1")
    c.put(b"we", b"2")
    ev = [normal(s.take(), c.s)]
    s.send(c.m("WatchRequest", cancel_request=c.m("WatchCancelRequest", watch_id=0)))
    canceled = c.wanswers(s, 1)
    s.send(c.m("WatchRequest", cancel_request=c.m("WatchCancelRequest", watch_id=55)))
    unknown = [normal(s.take(wait=1.0), c.s)]
    s.close()
    return created + ev + canceled + unknown


@case
def watch_compacted_and_future(c):
    s = c.watch()
    s.send(c.wcreate(key=b"a", start_revision=2))
    a = c.wanswers(s, 2)  # created, then cancelled: compacted
    s.send(c.wcreate(key=b"a", start_revision=10000))
    b = c.wanswers(s, 1)
    s.send(c.m("WatchRequest", progress_request=c.m("WatchProgressRequest")))
    p = c.wanswers(s, 1)
    s.close()
    return a + b + p


# --- Auth (disabled) ------------------------------------------------------------------
@case
def auth_without_auth(c):
    a = c.rpc
    m = c.m
    return [a("Auth", "Authenticate", m("AuthenticateRequest", name="u", password="p")),
            a("Auth", "UserAdd", m("AuthUserAddRequest", name="", password="p")),
            a("Auth", "UserAdd", m("AuthUserAddRequest", name="u1", password="p")),
            a("Auth", "UserAdd", m("AuthUserAddRequest", name="u1", password="p")),
            a("Auth", "UserGet", m("AuthUserGetRequest", name="nobody")),
            a("Auth", "RoleAdd", m("AuthRoleAddRequest", name="")),
            a("Auth", "RoleAdd", m("AuthRoleAddRequest", name="r1")),
            a("Auth", "RoleGrantPermission", m("AuthRoleGrantPermissionRequest", name="r1",
                                               perm=m("authpb.Permission", permType=2, key=b"p",
                                                      range_end=b"\0"))),
            a("Auth", "RoleGet", m("AuthRoleGetRequest", role="r1")),
            a("Auth", "UserGrantRole", m("AuthUserGrantRoleRequest", user="u1", role="nope")),
            a("Auth", "UserGrantRole", m("AuthUserGrantRoleRequest", user="u1", role="r1")),
            a("Auth", "UserGet", m("AuthUserGetRequest", name="u1")),
            a("Auth", "AuthEnable", m("AuthEnableRequest")),
            a("Auth", "UserDelete", m("AuthUserDeleteRequest", name="u1")),
            a("Auth", "RoleDelete", m("AuthRoleDeleteRequest", role="r1")),
            a("Auth", "AuthDisable", m("AuthDisableRequest"))]


# --------------------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------------------
def run_all(server, cases):
    c = Ctx(server)
    out = {}
    for fn in cases:
        try:
            out[fn.__name__] = fn(c)
        except Exception as e:  # a case that cannot run is a difference, not a crash
            out[fn.__name__] = f"(case failed: {type(e).__name__}: {e})"
    return out


def read_known(path):
    known = {}
    if not os.path.exists(path):
        return known
    with open(path) as f:
        for line in f:
            name, _, why = line.partition("#")
            if name.strip():
                known[name.strip()] = why.strip()
    return known


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--proto-src", required=True)
    ap.add_argument("--etcd", default="etcd")
    ap.add_argument("--only", help="run only cases whose name matches this regex")
    ap.add_argument("--report", help="write both answers of every case here")
    ap.add_argument("--known", default=DEFAULT_KNOWN)
    args = ap.parse_args()

    api = Api(args.proto_src)
    cases = [fn for fn in CASES if not args.only or re.search(args.only, fn.__name__)]
    answers = {}
    for kind, binary in (("etcd", args.etcd), ("bulwark", args.bulwark)):
        s = Server(api, kind, binary)
        try:
            answers[kind] = run_all(s, cases)
        finally:
            s.close()

    known = read_known(args.known)
    report = []
    unexpected, fixed = [], []
    for fn in cases:
        name = fn.__name__
        e = json.dumps(answers["etcd"][name], indent=1, sort_keys=True)
        b = json.dumps(answers["bulwark"][name], indent=1, sort_keys=True)
        same = e == b and "(case failed" not in e
        print(f"{'PASS' if same else 'DIFF'}  {name}" + ("" if same or name not in known
                                                          else f"  (known: {known[name]})"))
        report.append(f"== {name}: {'same' if same else 'DIFFERENT'}\n--- etcd\n{e}\n"
                      f"--- bulwark\n{b}\n")
        if not same:
            print("".join(difflib.unified_diff(e.splitlines(True), b.splitlines(True),
                                               "etcd", "bulwark", n=2)))
            if name not in known:
                unexpected.append(name)
        elif name in known:
            fixed.append(name)
    if args.report:
        with open(args.report, "w") as f:
            f.write("\n".join(report))
    answers_compared = sum(len(a) if isinstance(a, list) else 1 for a in answers["etcd"].values())
    print(f"{len(cases)} cases ({answers_compared} answers), {len(unexpected)} unexpected "
          f"differences" + (f": {', '.join(unexpected)}" if unexpected else ""))
    for n in fixed:
        print(f"listed in {os.path.basename(args.known)} but now the same: {n}")
    return 1 if unexpected or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
