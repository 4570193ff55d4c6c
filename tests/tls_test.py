#!/usr/bin/env python3
"""TLS on the client and peer ports, against real processes and real clients.

Usage: tls_test.py --bulwark PATH [--etcdctl PATH] [--only client]

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
          --cipher-suites, a suite not listed is refused; bulwark bench
          (the SDK's credentials) with --cacert/--cert/--key-file works and
          with the wrong CA fails; an expired
          --cert-file is refused at start with exit code 2.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--client-faults", help="tests/client_faults (the C++ SDK), optional")
    ap.add_argument("--only", choices=["client"])
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
        # Valid for one day in 2020: expired now.
        c.cert("expired", "ca", "expired", days=1, faketime="2020-01-01 00:00:00")
        if a.only in (None, "client"):
            client_part(a, c, tmp)
    if FAILURES:
        print(f"{len(FAILURES)} FAILED:\n  " + "\n  ".join(FAILURES))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
