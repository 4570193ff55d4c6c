#!/usr/bin/env python3
"""TLS on the client and peer ports, against real processes and real clients.

Usage: tls_test.py --bulwark PATH [--etcdctl PATH] [--client-faults PATH]
                   [--only client|peer|reload|flood]

Certificates are made here with the openssl CLI: two CAs, server and client
certificates signed by the first (SANs 127.0.0.1 and localhost), a client
certificate signed by the second, an expired one (signed under faketime in
2020), a peer certificate naming the wrong host. Then, each against members
this test starts and stops by PID:

  client  etcdctl with --cacert/--cert/--key puts and gets on a member with
          https:// client URLs and --client-cert-auth; refused, each with
          the member logging why: a wrong CA (etcdctl does not trust the
          server), a client certificate of another CA, an expired client
          certificate, no client certificate, plaintext to the TLS port;
          TLS 1.1 refused and TLS 1.2 taken (openssl s_client); with
          --cipher-suites, a suite not listed is refused; bulwark bench and
          the C++ SDK (client_faults) work over mutual TLS, the bench with
          the wrong CA fails; an expired --cert-file, a key of another pair
          and --client-cert-auth without a CA are refused at start (exit 2).
  peer    three members with https:// peer URLs and --peer-client-cert-auth
          replicate, and a follower forwards a member add to the leader's
          https client URL; a member whose peer certificate does not name the host
          it is dialled at gets nothing from the others, and a member whose
          peer certificate is of another CA is refused; with
          --peer-cert-allowed-cn, a member whose certificate has another
          common name is refused.
  reload  the served certificate replaced on disk by one of the second CA is
          used within seconds, without a restart (and the first CA no longer
          verifies it); the same for the peer port.
  flood   garbage and broken TLS records on both TLS ports: etcdctl is
          still served, and the member's log stays bounded (gRPC's
          handshake errors and the transport's are rate-limited).
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import free_port, run_bounded, run_etcdctl, spawn, stop_process  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def openssl(*args, env=None, faketime=None):
    argv = ["openssl"] + list(args)
    if faketime:
        argv = ["faketime", faketime] + argv
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr}")
    return r


class Certs:
    """Keys and certificates in `d`, made with the openssl CLI (P-256 keys: fast)."""

    def __init__(self, d):
        self.d = d

    def path(self, name):
        return os.path.join(self.d, name)

    def key(self, name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", self.path(name + ".key"))
        return self.path(name + ".key")

    def ca(self, name):
        self.key(name)
        openssl("req", "-x509", "-new", "-key", self.path(name + ".key"), "-days", "30",
                "-subj", f"/CN={name}", "-out", self.path(name + ".pem"))
        return self.path(name + ".pem")

    def cert(self, name, ca, cn, sans="IP:127.0.0.1,DNS:localhost", days=30, faketime=None):
        """A certificate for both server and client use, signed by CA `ca`."""
        self.key(name)
        csr = self.path(name + ".csr")
        openssl("req", "-new", "-key", self.path(name + ".key"), "-subj", f"/CN={cn}",
                "-out", csr)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            if sans:
                f.write(f"subjectAltName={sans}\n")
            f.write("extendedKeyUsage=serverAuth,clientAuth\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.path(ca + ".pem"), "-CAkey",
                self.path(ca + ".key"), "-CAcreateserial", "-days", str(days), "-extfile", ext,
                "-out", self.path(name + ".pem"), faketime=faketime)
        return self.path(name + ".pem"), self.path(name + ".key")


class Node:
    """One bulwark member with https URLs, started and stopped by PID."""

    def __init__(self, binary, workdir, name, client_port, peer_port, peers, extra,
                 client_scheme="https", peer_scheme="http"):
        self.name = name
        self.client_port = client_port
        self.log = os.path.join(workdir, name + ".log")
        self.client_url = f"{client_scheme}://127.0.0.1:{client_port}"
        peer_url = f"{peer_scheme}://127.0.0.1:{peer_port}"
        self.argv = [binary, "start", "--name", name, "--data-dir", os.path.join(workdir, name),
                     "--listen-client-urls", self.client_url, "--advertise-client-urls",
                     self.client_url, "--listen-peer-urls", peer_url,
                     "--initial-advertise-peer-urls", peer_url, "--initial-cluster", peers,
                     "--heartbeat-interval", "50", "--election-timeout", "500"] + list(extra)
        self.proc = spawn(self.argv, self.log)

    def stop(self):
        stop_process(self.proc)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


def ctl(etcdctl, node, args, tls=(), timeout=8.0, endpoint=None):
    return run_etcdctl(etcdctl, [endpoint or node.client_url],
                       ["--dial-timeout=2s", "--command-timeout=3s"] + list(tls) + list(args),
                       timeout=timeout)


def wait_for(fn, timeout=15.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = fn()
        if r:
            return r
        time.sleep(step)
    return fn()


def s_client(port, *args):
    """openssl s_client's handshake against the port: (ok, output)."""
    r = run_bounded(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"] +
                    list(args), stdin="", timeout=10)
    out = r.stdout + r.stderr
    # The member may close the connection at once after the handshake (no
    # HTTP/2 preface follows); the handshake is what counts.
    return "CONNECTION ESTABLISHED" in out, out


def client_part(a, certs, tmp):
    c = certs
    tls = ["--cacert", c.path("ca.pem"), "--cert", c.path("client.pem"), "--key",
           c.path("client.key")]
    port = free_port()
    pport = free_port()
    n = Node(a.bulwark, tmp, "c1", port, pport, f"c1=http://127.0.0.1:{pport}",
             ["--cert-file", c.path("server.pem"), "--key-file", c.path("server.key"),
              "--trusted-ca-file", c.path("ca.pem"), "--client-cert-auth",
              "--cipher-suites",
              "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"])
    try:
        ok = wait_for(lambda: ctl(a.etcdctl, n, ["put", "k", "v"], tls).returncode == 0)
        check(ok, "etcdctl --cacert/--cert/--key puts over TLS with client-cert-auth")
        r = ctl(a.etcdctl, n, ["get", "k", "--print-value-only"], tls)
        check(r.returncode == 0 and r.stdout.strip() == "v", f"... and gets it back ({r.stdout!r})")

        # With auth on, a verified client certificate names its user by its
        # common name ("client") when no token is sent, as in etcd.
        for args in (["user", "add", "root:rootpw"], ["user", "grant-role", "root", "root"],
                     ["role", "add", "certs"],
                     ["role", "grant-permission", "certs", "readwrite", "cn/", "--prefix"],
                     ["user", "add", "client", "--no-password"],
                     ["user", "grant-role", "client", "certs"], ["auth", "enable"]):
            r = ctl(a.etcdctl, n, args, tls)
            if args[0] == "user" and args[1] == "grant-role" and args[2] == "root":
                continue  # the root role may not exist yet; auth enable makes it
            check(r.returncode == 0, f"etcdctl {' '.join(args)} ({r.stderr.strip()!r})")
        r = ctl(a.etcdctl, n, ["put", "cn/x", "1"], tls)
        check(r.returncode == 0, f"certificate CN as the user: put on its grant ({r.stderr!r})")
        r = ctl(a.etcdctl, n, ["put", "k", "2"], tls)
        check(r.returncode != 0 and "permission denied" in r.stderr,
              f"certificate CN as the user: put outside its grant refused ({r.stderr.strip()!r})")
        r = ctl(a.etcdctl, n, ["--user", "root:rootpw", "auth", "disable"], tls)
        check(r.returncode == 0, f"auth disable ({r.stderr.strip()!r})")

        # etcdctl 3.4 reports every failed handshake alike ("context deadline
        # exceeded", all SubConns in TransientFailure: its gRPC hides the
        # cause), against etcd too. The member's log says which it was, and
        # a gRPC C-core client (python) gets the cause in its error.
        def refused(tls_args, reason, what, endpoint=None):
            before = n.log_text().count(reason)
            r = ctl(a.etcdctl, n, ["get", "k"], tls_args, endpoint=endpoint)
            logged = wait_for(lambda: n.log_text().count(reason) > before, timeout=3)
            check(r.returncode != 0 and logged,
                  f"{what}: refused; the member logs {reason!r} (etcdctl: "
                  f"{r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''!r})")

        refused(["--cacert", c.path("ca2.pem"), "--cert", c.path("client.pem"), "--key",
                 c.path("client.key")], "alert bad certificate", "wrong CA at the client")
        refused(["--cacert", c.path("ca.pem"), "--cert", c.path("client2.pem"), "--key",
                 c.path("client2.key")], "certificate verify failed",
                "client certificate of another CA")
        refused(["--cacert", c.path("ca.pem"), "--cert", c.path("expired.pem"), "--key",
                 c.path("expired.key")], "certificate verify failed", "expired client certificate")
        refused(["--cacert", c.path("ca.pem")], "peer did not return a certificate",
                "no client certificate")
        refused([], "wrong version number", "plaintext to the TLS port",
                endpoint=f"http://127.0.0.1:{port}")
        try:
            import grpc
            from etcd3.etcdrpc import rpc_pb2, KVStub
            with open(c.path("ca2.pem"), "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            ch = grpc.secure_channel(f"127.0.0.1:{port}", creds)
            try:
                KVStub(ch).Range(rpc_pb2.RangeRequest(key=b"k"), timeout=3)
                check(False, "python gRPC with the wrong CA is refused")
            except grpc.RpcError as e:
                check("CERTIFICATE_VERIFY_FAILED" in e.details().upper().replace(" ", "_"),
                      f"a gRPC C-core client names the cause ({e.details()[-120:]!r})")
            ch.close()
        except ImportError:
            print("SKIP  python grpc not installed")

        # bulwark's own client (the CLI's bench, on the SDK's credentials).
        r = run_bounded([a.bulwark, "bench", "put", "--endpoints", f"https://127.0.0.1:{port}",
                         "--cacert", c.path("ca.pem"), "--cert", c.path("client.pem"),
                         "--key-file", c.path("client.key"), "--total", "50", "--no-progress"],
                        timeout=60)
        check(r.returncode == 0, f"bulwark bench --cacert/--cert/--key-file over TLS "
                                 f"({(r.stdout + r.stderr).strip()[-160:]!r})")
        if a.client_faults:
            # The C++ SDK (bulwark::Client) with ClientOptions' TLS files.
            r = run_bounded([a.client_faults, "--endpoints", f"https://127.0.0.1:{port}",
                             "--mode", "keyed-writes", "--duration-s", "2", "--concurrency", "2",
                             "--cacert", c.path("ca.pem"), "--cert", c.path("client.pem"),
                             "--key", c.path("client.key")], timeout=60)
            check(r.returncode == 0, f"the C++ SDK writes over mutual TLS "
                                     f"({(r.stdout + r.stderr).strip()[-160:]!r})")
        r = run_bounded([a.bulwark, "bench", "put", "--endpoints", f"https://127.0.0.1:{port}",
                         "--cacert", c.path("ca2.pem"), "--cert", c.path("client.pem"),
                         "--key-file", c.path("client.key"), "--total", "5", "--timeout", "2",
                         "--no-progress"], timeout=60)
        check(r.returncode != 0, "bulwark bench with the wrong CA fails")

        client_cert = ["-CAfile", c.path("ca.pem"), "-cert", c.path("client.pem"), "-key",
                       c.path("client.key")]
        # SECLEVEL=0: OpenSSL 3 clients refuse TLS 1.1 themselves otherwise.
        ok, out = s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", *client_cert)
        check(not ok, "TLS 1.1 refused")
        ok, out = s_client(port, "-tls1_2", *client_cert)
        check(ok, f"TLS 1.2 taken ({out.strip()[-120:]!r})")
        ok, out = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384",
                           *client_cert)
        check(not ok, "--cipher-suites: a TLS 1.2 suite not listed is refused")
        ok, out = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
                           *client_cert)
        check(ok, "--cipher-suites: a listed suite is taken")
        check(n.proc.poll() is None, "the member is still up")
    finally:
        n.stop()

    # Start-time checks: an expired served certificate, a key of another pair.
    for extra, want in [(["--cert-file", c.path("expired.pem"), "--key-file",
                          c.path("expired.key")], "expired"),
                        (["--cert-file", c.path("server.pem"), "--key-file",
                          c.path("client.key")], "is not the key of the certificate"),
                        (["--cert-file", c.path("server.pem"), "--key-file",
                          c.path("server.key"), "--client-cert-auth"],
                         "--client-cert-auth needs --trusted-ca-file")]:
        p = free_port()
        r = run_bounded([a.bulwark, "start", "--data-dir", os.path.join(tmp, "never"),
                         "--listen-client-urls", f"https://127.0.0.1:{p}", "--listen-peer-urls",
                         f"http://127.0.0.1:{free_port()}"] + extra, timeout=10)
        check(r.returncode == 2 and want in r.stderr,
              f"bulwark start {extra[-1]} -> exit 2, {want!r} ({r.stderr.strip()!r})")


def peer_cluster(a, certs, tmp, names, peer_certs, client_tls=True, extra_all=()):
    """Members with https peer URLs and --peer-client-cert-auth; name -> (cert, key)."""
    c = certs
    ports = {nm: (free_port(), free_port()) for nm in names}
    peers = ",".join(f"{nm}=https://127.0.0.1:{ports[nm][1]}" for nm in names)
    nodes = []
    for nm in names:
        cert, key = peer_certs[nm]
        extra = ["--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file",
                 c.path("ca.pem"), "--peer-client-cert-auth"] + list(extra_all)
        if client_tls:
            extra += ["--cert-file", c.path("server.pem"), "--key-file", c.path("server.key"),
                      "--trusted-ca-file", c.path("ca.pem"), "--client-cert-auth"]
        nodes.append(Node(a.bulwark, tmp, nm, ports[nm][0], ports[nm][1], peers, extra,
                          client_scheme="https" if client_tls else "http", peer_scheme="https"))
    return nodes


def peer_part(a, certs, tmp):
    c = certs
    tls = ["--cacert", c.path("ca.pem"), "--cert", c.path("client.pem"), "--key",
           c.path("client.key")]
    good = (c.path("server.pem"), c.path("server.key"))
    nodes = peer_cluster(a, c, tmp, ["p1", "p2", "p3"], {"p1": good, "p2": good, "p3": good},
                         extra_all=["--peer-cert-allowed-cn", "bulwark-server"])
    try:
        ok = wait_for(lambda: ctl(a.etcdctl, nodes[0], ["put", "pk", "pv"], tls).returncode == 0,
                      timeout=20)
        check(ok, "three members with TLS peers (mutual, checked names) elect and write")
        for n in nodes:
            ok = wait_for(lambda: ctl(a.etcdctl, n, ["get", "pk", "--print-value-only",
                                                     "--consistency=s"], tls).stdout.strip()
                          == "pv", timeout=10)
            check(ok, f"{n.name} has the write")
        # A follower forwards membership changes to the leader's https
        # client URL, with the member's own client certificate.
        follower = None
        for n in nodes:
            r = ctl(a.etcdctl, n, ["endpoint", "status", "-w", "json"], tls)
            try:
                st = json.loads(r.stdout)[0]["Status"]
                if st["header"]["member_id"] != st["leader"]:
                    follower = n
                    break
            except (ValueError, KeyError, IndexError):
                pass
        r = ctl(a.etcdctl, follower or nodes[0],
                ["member", "add", "p4", "--learner", f"--peer-urls=https://127.0.0.1:{free_port()}"],
                tls)
        check(follower is not None and r.returncode == 0 and "added" in r.stdout,
              f"member add through a follower (forwarded to the leader over TLS): "
              f"{(r.stdout + r.stderr).strip()[:120]!r}")
    finally:
        for n in nodes:
            n.stop()

    # q3's peer certificate names another host; r3's is of another CA.
    for bad_name, bad_cert, what, reason in [
            ("q3", (c.path("wrongname.pem"), c.path("wrongname.key")),
             "peer certificate naming another host", "its certificate does not name 127.0.0.1"),
            ("r3", (c.path("client2.pem"), c.path("client2.key")),
             "peer certificate of another CA", "certificate verify failed: unable to get local")]:
        names = [bad_name[0] + "1", bad_name[0] + "2", bad_name]
        nodes = peer_cluster(a, c, tmp, names, {names[0]: good, names[1]: good, bad_name: bad_cert})
        try:
            ok = wait_for(lambda: ctl(a.etcdctl, nodes[0], ["put", "qk", "qv"], tls).returncode == 0,
                          timeout=20)
            check(ok, f"{what}: the two good members still form a quorum")
            time.sleep(2)
            r = ctl(a.etcdctl, nodes[2], ["get", "qk", "--print-value-only", "--consistency=s"],
                    tls)
            check(r.stdout.strip() != "qv", f"{what}: that member got nothing ({r.stdout!r})")
            r = ctl(a.etcdctl, nodes[1], ["get", "qk", "--print-value-only", "--consistency=s"],
                    tls)
            check(r.stdout.strip() == "qv", f"{what}: a good member got the write")
            log = nodes[0].log_text() + nodes[1].log_text()
            check("bulwark: peer TLS:" in log and reason in log,
                  f"{what}: the good members log why ("
                  f"{[l for l in log.splitlines() if 'peer TLS' in l][:1]})")
        finally:
            for n in nodes:
                n.stop()


    # --peer-cert-allowed-cn: s3's certificate is of the right CA and names
    # its host, but its common name is another; its calls are refused.
    other = (c.path("othercn.pem"), c.path("othercn.key"))
    nodes = peer_cluster(a, c, tmp, ["s1", "s2", "s3"], {"s1": good, "s2": good, "s3": other},
                         extra_all=["--peer-cert-allowed-cn", "bulwark-server"])
    try:
        ok = wait_for(lambda: ctl(a.etcdctl, nodes[0], ["put", "sk", "sv"], tls).returncode == 0,
                      timeout=20)
        check(ok, "--peer-cert-allowed-cn: the two members with the allowed name form a quorum")
        reason = 'common name "other" is not --peer-cert-allowed-cn'
        ok = wait_for(lambda: reason in nodes[0].log_text() + nodes[1].log_text(), timeout=10)
        check(ok, "--peer-cert-allowed-cn: calls of the member with another name are refused, "
                  "and logged")
    finally:
        for n in nodes:
            n.stop()


def reload_part(a, certs, tmp):
    c = certs
    live = os.path.join(tmp, "live")
    os.makedirs(live, exist_ok=True)
    for f in ("server.pem", "server.key"):
        shutil.copy(c.path(f), os.path.join(live, f))
    shutil.copy(c.path("ca.pem"), os.path.join(live, "peer-ca.pem"))
    port, pport = free_port(), free_port()
    n = Node(a.bulwark, tmp, "l1", port, pport, f"l1=https://127.0.0.1:{pport}",
             ["--cert-file", os.path.join(live, "server.pem"), "--key-file",
              os.path.join(live, "server.key"), "--peer-cert-file",
              os.path.join(live, "server.pem"), "--peer-key-file",
              os.path.join(live, "server.key"), "--peer-trusted-ca-file",
              os.path.join(live, "peer-ca.pem")], peer_scheme="https")
    tls1 = ["--cacert", c.path("ca.pem")]
    tls2 = ["--cacert", c.path("ca2.pem")]
    try:
        ok = wait_for(lambda: ctl(a.etcdctl, n, ["put", "k", "1"], tls1).returncode == 0)
        check(ok, "reload: served certificate of CA 1 verifies with CA 1")
        ok, _ = s_client(pport, "-CAfile", c.path("ca.pem"), "-verify_return_error")
        check(ok, "reload: peer port serves CA 1's certificate")
        # Atomic replacement, as the file watcher asks: write aside, rename.
        for src, dst in (("server2.pem", "server.pem"), ("server2.key", "server.key")):
            shutil.copy(c.path(src), os.path.join(live, dst + ".new"))
        os.rename(os.path.join(live, "server.key.new"), os.path.join(live, "server.key"))
        os.rename(os.path.join(live, "server.pem.new"), os.path.join(live, "server.pem"))
        ok = wait_for(lambda: ctl(a.etcdctl, n, ["put", "k", "2"], tls2).returncode == 0,
                      timeout=20)
        check(ok, "reload: the replaced certificate (CA 2) is served without a restart")
        r = ctl(a.etcdctl, n, ["get", "k"], tls1)
        check(r.returncode != 0, "reload: CA 1 no longer verifies it")
        ok = wait_for(lambda: s_client(pport, "-CAfile", c.path("ca2.pem"),
                                       "-verify_return_error")[0], timeout=10)
        check(ok, "reload: the peer port serves the new certificate too")
        check(n.proc.poll() is None, "reload: the member is still up")
    finally:
        n.stop()


def flood_part(a, certs, tmp, seconds=6):
    """Garbage and broken handshakes on both TLS ports while etcdctl writes."""
    c = certs
    tls = ["--cacert", c.path("ca.pem"), "--cert", c.path("client.pem"), "--key",
           c.path("client.key")]
    port, pport = free_port(), free_port()
    n = Node(a.bulwark, tmp, "f1", port, pport, f"f1=https://127.0.0.1:{pport}",
             ["--cert-file", c.path("server.pem"), "--key-file", c.path("server.key"),
              "--trusted-ca-file", c.path("ca.pem"), "--client-cert-auth",
              "--peer-cert-file", c.path("server.pem"), "--peer-key-file", c.path("server.key"),
              "--peer-trusted-ca-file", c.path("ca.pem"), "--peer-client-cert-auth"],
             peer_scheme="https")
    stop = threading.Event()
    sent = [0]

    def garbage(target):
        rnd = random.Random(target)
        payloads = [lambda: rnd.randbytes(rnd.randint(1, 5000)),
                    # A TLS record header, then nonsense.
                    lambda: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rnd.randbytes(600),
                    lambda: b"\x16\x03\x03\xff\xff" + rnd.randbytes(100)]
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", target), timeout=2) as s:
                    s.settimeout(1)
                    s.sendall(rnd.choice(payloads)())
                    try:
                        s.recv(100)
                    except OSError:
                        pass
                sent[0] += 1
            except OSError:
                time.sleep(0.01)

    try:
        ok = wait_for(lambda: ctl(a.etcdctl, n, ["put", "k", "0"], tls).returncode == 0)
        check(ok, "flood: the TLS member serves")
        threads = [threading.Thread(target=garbage, args=(p,)) for p in (port, port, pport, pport)]
        for t in threads:
            t.start()
        good = bad = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ctl(a.etcdctl, n, ["put", "k", "1"], tls).returncode == 0:
                good += 1
            else:
                bad += 1
        stop.set()
        for t in threads:
            t.join(10)
        check(good > 0 and bad == 0,
              f"flood: {sent[0]} garbage connections on the TLS ports; etcdctl served "
              f"({good} ok, {bad} failed)")
        lines = n.log_text().count("\n")
        check(lines < 1000, f"flood: the member's log stays bounded ({lines} lines)")
        check(n.proc.poll() is None, "flood: the member is still up")
    finally:
        stop.set()
        n.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--client-faults", help="tests/client_faults (the C++ SDK), optional")
    ap.add_argument("--only", choices=["client", "peer", "reload", "flood"])
    a = ap.parse_args()
    a.bulwark = os.path.abspath(a.bulwark)
    with tempfile.TemporaryDirectory(prefix="bw-tls-test-") as tmp:
        c = Certs(tmp)
        c.ca("ca")
        c.ca("ca2")
        c.cert("server", "ca", "bulwark-server")
        c.cert("server2", "ca2", "bulwark-server")
        c.cert("client", "ca", "client", sans=None)
        c.cert("client2", "ca2", "client", sans="IP:127.0.0.1,DNS:localhost")
        c.cert("wrongname", "ca", "wrong", sans="DNS:wrong.example")
        c.cert("othercn", "ca", "other")
        # Valid for one day in 2020: expired now.
        c.cert("expired", "ca", "expired", days=1, faketime="2020-01-01 00:00:00")
        if a.only in (None, "client"):
            client_part(a, c, tmp)
        if a.only in (None, "peer"):
            peer_part(a, c, tmp)
        if a.only in (None, "reload"):
            reload_part(a, c, tmp)
        if a.only in (None, "flood"):
            flood_part(a, c, tmp)
    if FAILURES:
        print(f"{len(FAILURES)} FAILED:\n  " + "\n  ".join(FAILURES))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
