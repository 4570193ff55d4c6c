#!/usr/bin/python3
"""Authentication and RBAC on a real 3-member bulwark cluster (or etcd, to check the test).

Each case is a class of etcd's past auth bypasses, or a promise of docs/security.md,
driven through etcd's own gRPC API (python3-etcd3's generated stubs), so requests that
etcdctl cannot build (nested txns, idempotency metadata) are sent as well:

  token-any-member     a token from one member's Authenticate works at every member
  bad-token            an unknown token: Unauthenticated "etcdserver: invalid auth token"
  nested-txn           a txn nested in a txn cannot write outside the user's grant
  txn-branches         compares and the untaken branch are checked too
  prev-kv              put/delete with prev_kv need read permission
  watch                a watch on a forbidden range is created-and-canceled, a permitted
                       watch sees its events
  lease-revoke         revoking a lease that holds a forbidden key is refused, the key stays;
                       TimeToLive with keys is refused too
  admin-root-only      member add, snapshot, defragment, user management: root only
  revoked-grant        a grant revoked after a client authenticated takes effect at once
                       (the check is made when the entry is applied)
  idempotency-scopes   two users' equal idempotency keys never meet (bulwark only)
  no-plaintext         the password is nowhere in the members' data directories or logs
  password-flood       200 wrong passwords at once are answered with errors while other
                       clients are served
  restart              users, roles and auth on survive a restart of every member
  sdk                  libbulwark as a user: keyed writes through a rolling restart (tokens
                       forgotten: the client authenticates again by itself), none lost
  jwt                  --auth-token jwt: tokens checked by any member with the public key,
                       retired by any change to the auth state, forged ones refused

Usage: tests/auth_test.py --bulwark PATH [--server bulwark|etcd] [--etcd PATH] [--keep]
"""
import argparse
import concurrent.futures
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402

try:
    import grpc
    from etcd3 import etcdrpc
except ImportError as e:  # pragma: no cover
    sys.exit(f"needs python3-etcd3 (Debian package; run with /usr/bin/python3): {e}")

RESULTS = []
ONLY = set()  # --only
ROOT_PW = "root-pw-7f3a"
ALICE_PW = "alice-secret-5c1d9e"
BOB_PW = "bob-pw-22"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run_case(name, fn, *args):
    if ONLY and name not in ONLY:
        return
    t0 = time.monotonic()
    try:
        detail = fn(*args) or ""
        status = "PASS"
    except Exception as e:  # a failing case never stops the others
        status = "FAIL"
        detail = f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=4)
    RESULTS.append((name, status))
    print(f"{status:4}  {name:20} {time.monotonic() - t0:5.2f}s  "
          f"{detail.splitlines()[0] if detail else ''}", flush=True)
    if status == "FAIL":
        print("      " + detail.replace("\n", "\n      "), flush=True)


class Conn:
    """Stubs of every etcd service on one member, with a token (or none)."""

    def __init__(self, endpoint, token=None):
        self.channel = grpc.insecure_channel(endpoint)
        self.kv = etcdrpc.KVStub(self.channel)
        self.auth = etcdrpc.AuthStub(self.channel)
        self.lease = etcdrpc.LeaseStub(self.channel)
        self.watch = etcdrpc.WatchStub(self.channel)
        self.cluster = etcdrpc.ClusterStub(self.channel)
        self.maint = etcdrpc.MaintenanceStub(self.channel)
        self.token = token

    def md(self, extra=()):
        return ([("token", self.token)] if self.token else []) + list(extra)

    def call(self, method, req, extra_md=(), timeout=10):
        return method(req, metadata=self.md(extra_md), timeout=timeout)

    def close(self):
        self.channel.close()


def login(endpoint, user, password):
    c = Conn(endpoint)
    r = c.auth.Authenticate(etcdrpc.AuthenticateRequest(name=user, password=password),
                            timeout=10)
    c.token = r.token
    return c


def expect_error(fn, code, text=None):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, f"expected {code}, got {e.code()}: {e.details()}")
        if text is not None:
            check(text in (e.details() or ""), f"expected '{text}' in '{e.details()}'")
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def put_req(key, value=b"v", prev_kv=False, lease=0):
    return etcdrpc.PutRequest(key=key, value=value, prev_kv=prev_kv, lease=lease)


def get(conn, key):
    r = conn.call(conn.kv.Range, etcdrpc.RangeRequest(key=key))
    return [kv.value for kv in r.kvs]


def setup(c):
    """root; alice: readwrite on app/ and read on pub; bob: readwrite on bob/."""
    from etcd3.etcdrpc import auth_pb2
    a = Conn(c.members[0].endpoint)
    for name, pw in (("root", ROOT_PW), ("alice", ALICE_PW), ("bob", BOB_PW)):
        a.auth.UserAdd(etcdrpc.AuthUserAddRequest(name=name, password=pw), timeout=10)
    for role in ("root", "app", "bobs"):
        a.auth.RoleAdd(etcdrpc.AuthRoleAddRequest(name=role), timeout=10)
    grants = [("app", auth_pb2.Permission.READWRITE, b"app/", b"app0"),
              ("app", auth_pb2.Permission.READ, b"pub", b""),
              ("bobs", auth_pb2.Permission.READWRITE, b"bob/", b"bob0")]
    for role, t, key, end in grants:
        a.auth.RoleGrantPermission(etcdrpc.AuthRoleGrantPermissionRequest(
            name=role, perm=auth_pb2.Permission(permType=t, key=key, range_end=end)), timeout=10)
    for user, role in (("root", "root"), ("alice", "app"), ("bob", "bobs")):
        a.auth.UserGrantRole(etcdrpc.AuthUserGrantRoleRequest(user=user, role=role), timeout=10)
    a.kv.Put(put_req(b"secret", b"s3cret"), timeout=10)
    a.kv.Put(put_req(b"pub", b"public"), timeout=10)
    a.auth.AuthEnable(etcdrpc.AuthEnableRequest(), timeout=10)
    a.close()


# --- cases ------------------------------------------------------------------------------
def case_token_any_member(c):
    alice = login(c.members[0].endpoint, "alice", ALICE_PW)
    for m in c.members:
        other = Conn(m.endpoint, alice.token)
        other.call(other.kv.Put, put_req(b"app/from-" + m.name.encode()))
        check(get(other, b"app/from-" + m.name.encode()) == [b"v"], f"read back at {m.name}")
        other.close()
    noone = Conn(c.members[1].endpoint)
    expect_error(lambda: noone.call(noone.kv.Range, etcdrpc.RangeRequest(key=b"pub")),
                 grpc.StatusCode.INVALID_ARGUMENT, "user name is empty")
    return f"token issued at {c.members[0].name} accepted at all {len(c.members)}"


def case_bad_token(c):
    bad = Conn(c.members[0].endpoint, "forged.12345")
    expect_error(lambda: bad.call(bad.kv.Range, etcdrpc.RangeRequest(key=b"pub")),
                 grpc.StatusCode.UNAUTHENTICATED, "invalid auth token")
    expect_error(lambda: Conn(c.members[0].endpoint).auth.Authenticate(
        etcdrpc.AuthenticateRequest(name="alice", password="wrong"), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT, "authentication failed")


def case_nested_txn(c):
    alice = login(c.members[0].endpoint, "alice", ALICE_PW)
    inner = etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(request_put=put_req(b"secret", b"x"))])
    outer = etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(request_txn=inner)])
    expect_error(lambda: alice.call(alice.kv.Txn, outer), grpc.StatusCode.PERMISSION_DENIED)
    root = login(c.members[0].endpoint, "root", ROOT_PW)
    check(get(root, b"secret") == [b"s3cret"], "the nested put did not happen")


def case_txn_branches(c):
    alice = login(c.members[1].endpoint, "alice", ALICE_PW)
    cmp_secret = etcdrpc.Compare(key=b"secret", value=b"guess",
                                 result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.VALUE)
    t = etcdrpc.TxnRequest(compare=[cmp_secret],
                           success=[etcdrpc.RequestOp(request_put=put_req(b"app/1"))])
    expect_error(lambda: alice.call(alice.kv.Txn, t), grpc.StatusCode.PERMISSION_DENIED)
    t2 = etcdrpc.TxnRequest(
        success=[etcdrpc.RequestOp(request_put=put_req(b"app/2"))],
        failure=[etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(
            key=b"\0", range_end=b"\0"))])
    expect_error(lambda: alice.call(alice.kv.Txn, t2), grpc.StatusCode.PERMISSION_DENIED)
    check(get(alice, b"app/2") == [], "a refused txn applied nothing")


def case_prev_kv(c):
    root = login(c.members[0].endpoint, "root", ROOT_PW)
    from etcd3.etcdrpc import auth_pb2
    root.call(root.auth.RoleAdd, etcdrpc.AuthRoleAddRequest(name="wonly"))
    root.call(root.auth.RoleGrantPermission, etcdrpc.AuthRoleGrantPermissionRequest(
        name="wonly", perm=auth_pb2.Permission(permType=auth_pb2.Permission.WRITE, key=b"drop")))
    root.call(root.auth.UserGrantRole, etcdrpc.AuthUserGrantRoleRequest(user="bob", role="wonly"))
    bob = login(c.members[2].endpoint, "bob", BOB_PW)
    bob.call(bob.kv.Put, put_req(b"drop", b"1"))
    expect_error(lambda: bob.call(bob.kv.Put, put_req(b"drop", b"2", prev_kv=True)),
                 grpc.StatusCode.PERMISSION_DENIED)
    expect_error(lambda: bob.call(bob.kv.DeleteRange,
                                  etcdrpc.DeleteRangeRequest(key=b"drop", prev_kv=True)),
                 grpc.StatusCode.PERMISSION_DENIED)


def case_watch(c):
    alice = login(c.members[0].endpoint, "alice", ALICE_PW)
    reqs = [etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"secret"))]
    it = alice.watch.Watch(iter(reqs), metadata=alice.md(), timeout=5)
    first = next(it)
    check(first.created and first.canceled, f"refused watch is created and canceled: {first}")
    check("permission denied" in first.cancel_reason, first.cancel_reason)
    it.cancel()
    # A permitted watch sees its event.
    done = threading.Event()
    got = []

    def requests():
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
            key=b"app/", range_end=b"app0"))
        done.wait(10)

    it2 = alice.watch.Watch(requests(), metadata=alice.md(), timeout=10)
    created = next(it2)
    check(created.created and not created.canceled, f"permitted watch created: {created}")
    alice.call(alice.kv.Put, put_req(b"app/w", b"seen"))
    for resp in it2:
        got.extend(e.kv.value for e in resp.events)
        if got:
            break
    done.set()
    it2.cancel()
    check(got == [b"seen"], f"event seen: {got}")


def case_lease_revoke(c):
    root = login(c.members[0].endpoint, "root", ROOT_PW)
    alice = login(c.members[1].endpoint, "alice", ALICE_PW)
    lease = alice.call(alice.lease.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=300)).ID
    root.call(root.kv.Put, put_req(b"leased-secret", b"x", lease=lease))
    expect_error(lambda: alice.call(alice.lease.LeaseRevoke, etcdrpc.LeaseRevokeRequest(ID=lease)),
                 grpc.StatusCode.PERMISSION_DENIED)
    check(get(root, b"leased-secret") == [b"x"], "the key outlived the refused revoke")
    expect_error(lambda: alice.call(alice.lease.LeaseTimeToLive,
                                    etcdrpc.LeaseTimeToLiveRequest(ID=lease, keys=True)),
                 grpc.StatusCode.PERMISSION_DENIED)
    ttl = alice.call(alice.lease.LeaseTimeToLive, etcdrpc.LeaseTimeToLiveRequest(ID=lease))
    check(ttl.TTL > 0, "TimeToLive without keys is allowed")
    root.call(root.lease.LeaseRevoke, etcdrpc.LeaseRevokeRequest(ID=lease))


def case_admin_root_only(c, kind):
    alice = login(c.members[1].endpoint, "alice", ALICE_PW)
    if kind == "bulwark":  # etcd 3.4 checks no permission on membership changes
        expect_error(lambda: alice.call(alice.cluster.MemberAdd, etcdrpc.MemberAddRequest(
            peerURLs=["http://127.0.0.1:1"])), grpc.StatusCode.PERMISSION_DENIED)
    e = expect_error(lambda: next(iter(alice.maint.Snapshot(
        etcdrpc.SnapshotRequest(), metadata=alice.md(), timeout=10))),
        grpc.StatusCode.UNKNOWN, "permission denied")
    expect_error(lambda: alice.call(alice.maint.Defragment, etcdrpc.DefragmentRequest()),
                 grpc.StatusCode.UNKNOWN, "permission denied")
    expect_error(lambda: alice.call(alice.auth.UserAdd, etcdrpc.AuthUserAddRequest(
        name="eve", password="x")), grpc.StatusCode.PERMISSION_DENIED)
    expect_error(lambda: alice.call(alice.auth.AuthDisable, etcdrpc.AuthDisableRequest()),
                 grpc.StatusCode.PERMISSION_DENIED)
    # Status stays open (health checks), member list too.
    alice.call(alice.maint.Status, etcdrpc.StatusRequest())
    alice.call(alice.cluster.MemberList, etcdrpc.MemberListRequest())
    return e.details()


def case_revoked_grant(c):
    alice = login(c.members[2].endpoint, "alice", ALICE_PW)
    root = login(c.members[0].endpoint, "root", ROOT_PW)
    alice.call(alice.kv.Put, put_req(b"app/before"))
    root.call(root.auth.UserRevokeRole, etcdrpc.AuthUserRevokeRoleRequest(name="alice",
                                                                         role="app"))
    expect_error(lambda: alice.call(alice.kv.Put, put_req(b"app/after")),
                 grpc.StatusCode.PERMISSION_DENIED)
    root.call(root.auth.UserGrantRole, etcdrpc.AuthUserGrantRoleRequest(user="alice",
                                                                       role="app"))
    alice.call(alice.kv.Put, put_req(b"app/again"))


def case_idempotency_scopes(c):
    alice = login(c.members[0].endpoint, "alice", ALICE_PW)
    root = login(c.members[0].endpoint, "root", ROOT_PW)
    key = [("idempotency-key", "same-key-for-both")]
    alice.call(alice.kv.Put, put_req(b"app/idem", b"alice"), extra_md=key)
    root.call(root.kv.Put, put_req(b"app/idem", b"root"), extra_md=key)
    check(get(root, b"app/idem") == [b"root"],
          "root's write under the same key was applied, not answered from alice's record")
    r = root.kv.Put(put_req(b"app/idem", b"root"), metadata=root.md(key), timeout=10)
    check(r is not None, "root's retry answered")


def case_no_plaintext(c):
    found, with_users, scanned = [], 0, 0
    for dirpath, _, files in os.walk(c.workdir):
        for f in files:
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            scanned += 1
            # The control: the files that hold the auth state do name the users.
            with_users += b"alice" in data
            found += [(f, pw) for pw in (ROOT_PW, ALICE_PW, BOB_PW) if pw.encode() in data]
    check(with_users > 0, "the scan reads the files that hold the users")
    check(not found, f"plaintext passwords found: {found}")
    return f"no password in {scanned} files (data dirs and logs); {with_users} name the users"


def case_password_flood(c):
    ep = c.members[0].endpoint
    root = login(ep, "root", ROOT_PW)
    stop = threading.Event()
    served = [0]

    def reader():
        while not stop.is_set():
            root.call(root.kv.Range, etcdrpc.RangeRequest(key=b"pub"))
            served[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    codes = {}
    flood = Conn(ep)

    def attempt(i):
        try:
            flood.auth.Authenticate(etcdrpc.AuthenticateRequest(name="alice",
                                                                password=f"guess{i}"),
                                    timeout=30)
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        for code in pool.map(attempt, range(200)):
            codes[code] = codes.get(code, 0) + 1
    stop.set()
    t.join()
    check("OK" not in codes, f"no wrong password accepted: {codes}")
    check(served[0] > 0, "other clients were served during the flood")
    check(c.members[0].alive(), "the member is up")
    return f"answers {codes}; {served[0]} reads served meanwhile"


def case_restart(c):
    for m in c.members:
        m.stop()
    for m in c.members:
        m.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            alice = login(c.members[0].endpoint, "alice", ALICE_PW)
            alice.call(alice.kv.Put, put_req(b"app/after-restart"))
            break
        except grpc.RpcError as e:
            if time.monotonic() > deadline:
                raise
            if e.code() == grpc.StatusCode.INVALID_ARGUMENT and "authentication failed" in (
                    e.details() or ""):
                raise
            time.sleep(0.3)
    noone = Conn(c.members[1].endpoint)
    expect_error(lambda: noone.call(noone.kv.Put, put_req(b"app/x")),
                 grpc.StatusCode.INVALID_ARGUMENT, "user name is empty")
    expect_error(lambda: alice.call(alice.kv.Put, put_req(b"secret")),
                 grpc.StatusCode.PERMISSION_DENIED)


def case_jwt(binary, keep):
    """--auth-token jwt: a token from one member works at another; a change to the auth
    state retires it ("revision of auth store is old") until the client authenticates again;
    a forged token is refused; etcdctl works with it."""
    c = cl.Cluster("bulwark", 3, binary=binary, keep=keep)
    key, pub = os.path.join(c.workdir, "jwt.key"), os.path.join(c.workdir, "jwt.pub")
    cl.run_bounded(["openssl", "genrsa", "-out", key, "2048"], timeout=60)
    cl.run_bounded(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], timeout=60)
    c.extra_bulwark_args = ("--auth-token",
                            f"jwt,pub-key={pub},priv-key={key},sign-method=RS256,ttl=10m")
    try:
        c.start()
        setup(c)
        alice = login(c.members[0].endpoint, "alice", ALICE_PW)
        check(alice.token.count(".") == 2, f"a JWT: {alice.token[:40]}...")
        other = Conn(c.members[2].endpoint, alice.token)
        other.call(other.kv.Put, put_req(b"app/jwt"))
        root = login(c.members[1].endpoint, "root", ROOT_PW)
        root.call(root.auth.RoleAdd, etcdrpc.AuthRoleAddRequest(name="unrelated"))
        # Asked of the member that made the change (it has applied it; the
        # others may still be catching up).
        stale = Conn(c.members[1].endpoint, alice.token)
        expect_error(lambda: stale.call(stale.kv.Put, put_req(b"app/jwt2")),
                     grpc.StatusCode.INVALID_ARGUMENT, "revision of auth store is old")
        again = login(c.members[2].endpoint, "alice", ALICE_PW)
        again.call(again.kv.Put, put_req(b"app/jwt2"))
        expect_error(lambda: again.call(again.kv.Put, put_req(b"secret")),
                     grpc.StatusCode.PERMISSION_DENIED)
        head, claims, sig = again.token.split(".")
        forged = Conn(c.members[0].endpoint, head + "." + claims[:-4] + "AAAA." + sig)
        expect_error(lambda: forged.call(forged.kv.Range, etcdrpc.RangeRequest(key=b"pub")),
                     grpc.StatusCode.UNAUTHENTICATED, "invalid auth token")
        out = c.etcdctl(["--user", f"alice:{ALICE_PW}", "get", "app/jwt2", "--print-value-only"])
        check(out.returncode == 0 and out.stdout.strip() == "v", f"etcdctl with jwt: {out}")
    finally:
        c.stop()


def wait_serving(m, deadline_s=30):
    """Until alice can log in at member `m` and write through it (bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            alice = login(m.endpoint, "alice", ALICE_PW)
            alice.call(alice.kv.Put, put_req(b"app/serving"))
            return
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def case_sdk(c, client_faults):
    """libbulwark as alice: keyed writes through a rolling restart of every member (each
    restart forgets the simple tokens, so the client must authenticate again by itself);
    none lost, none applied twice, none failed. Like an operator's rolling restart, the
    next member goes only once the last one serves again: restarting one that has not
    rejoined would take the quorum away, and then writes rightly time out with their
    outcome unknown (under a sanitizer a member takes seconds to rejoin). The deadline is
    generous for the same reason: a loaded 2-core CI machine running the sanitizer build
    can see elections (500 ms timeout) while members catch up."""
    import json
    import subprocess
    argv = [client_faults, "--endpoints", ",".join(c.endpoints(live_only=False)),
            "--mode", "keyed-writes", "--prefix", "app/sdk/", "--duration-s", "8",
            "--concurrency", "8", "--timeout-ms", "12000", "--user", "alice",
            "--password", ALICE_PW]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        for m in c.members:
            m.stop()
            m.start()
            wait_serving(m)
            time.sleep(0.5)
        out, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    check(p.returncode == 0 and lines, f"client_faults ran (rc {p.returncode}): {err[-1500:]}")
    s = json.loads(lines[-1])
    check(s["ok"] > 50, f"many writes acknowledged: {s}")
    check(s["failed"] == 0 and s["unknown"] == 0, f"none failed: {s}\n{err[-3000:]}")
    check(s["lost"] == 0 and s["double_applied"] == 0, f"none lost or doubled: {s}")
    return f"{s['ok']} writes, {s['retries']} retries through 3 restarts"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark")
    ap.add_argument("--server", default="bulwark", choices=["bulwark", "etcd"])
    ap.add_argument("--etcd", default="etcd")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--client-faults", help="tests/client_faults (libbulwark with a user)")
    ap.add_argument("--only", action="append", default=[], metavar="CASE",
                    help="run only this case (repeatable); the setup always runs")
    a = ap.parse_args()
    ONLY.update(a.only)
    binary = a.bulwark if a.server == "bulwark" else a.etcd
    c = cl.Cluster(a.server, 3, binary=binary, keep=a.keep,
                   extra_bulwark_args=("--snapshot-count", "50"))
    try:
        c.start()
        setup(c)
        run_case("token-any-member", case_token_any_member, c)
        run_case("bad-token", case_bad_token, c)
        run_case("nested-txn", case_nested_txn, c)
        run_case("txn-branches", case_txn_branches, c)
        run_case("prev-kv", case_prev_kv, c)
        run_case("watch", case_watch, c)
        run_case("lease-revoke", case_lease_revoke, c)
        run_case("admin-root-only", case_admin_root_only, c, a.server)
        run_case("revoked-grant", case_revoked_grant, c)
        if a.server == "bulwark":
            run_case("idempotency-scopes", case_idempotency_scopes, c)
            run_case("no-plaintext", case_no_plaintext, c)
        run_case("password-flood", case_password_flood, c)
        run_case("restart", case_restart, c)
        if a.client_faults:
            run_case("sdk", case_sdk, c, a.client_faults)
    finally:
        c.stop()
    if a.server == "bulwark":
        run_case("jwt", case_jwt, binary, a.keep)
    failed = [n for n, s in RESULTS if s == "FAIL"]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed"
          + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
