#!/usr/bin/env python3
"""bulwark start as a user meets it: flags, config files, errors, HTTP endpoints.

Usage: server_test.py --bulwark PATH

Checks, each against a real process it starts and stops:
  - bad flags and bad config files are refused with exit code 2 and a message
    naming the setting (and nothing is left running);
  - a TOML config file starts a member; flags given too win over it;
  - /health, /readyz and /metrics on --listen-metrics-urls answer as etcd's
    do, 404 and 405 for other paths and methods;
  - a client port already in use is a clear error, not a silent shared port;
  - SIGTERM stops the member with exit code 0.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import free_port  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("PASS  " if cond else "FAIL  ") + what)
    if not cond:
        FAILURES.append(what)


def run(argv, timeout=10, cwd=None):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, cwd=cwd)


def http(url, method="GET", timeout=5):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Member:
    def __init__(self, binary, workdir, client_port=None, extra=()):
        self.cport, self.pport = client_port or free_port(), free_port()
        self.argv = [binary, "start", "--name", "s", "--data-dir", os.path.join(workdir, f"s-{self.cport}"),
                     "--listen-client-urls", f"http://127.0.0.1:{self.cport}",
                     "--advertise-client-urls", f"http://127.0.0.1:{self.cport}",
                     "--listen-peer-urls", f"http://127.0.0.1:{self.pport}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.pport}",
                     "--initial-cluster", f"s=http://127.0.0.1:{self.pport}"] + list(extra)
        self.log = open(os.path.join(workdir, f"s-{self.cport}.log"), "w+")
        self.p = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                return self.p.wait()
        return self.p.returncode

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


def wait_until(fn, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if fn():
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulwark", required=True)
    args = ap.parse_args()
    b = os.path.abspath(args.bulwark)
    with tempfile.TemporaryDirectory(prefix="bw-server-test-") as tmp:
        # --- bad flags: exit 2, a message naming the setting ---
        bad = [
            (["--listen-client-urls", "127.0.0.1:2379"], "--listen-client-urls"),
            (["--listen-client-urls", "http://127.0.0.1:99999"], "port must be a number"),
            (["--listen-peer-urls", "https://127.0.0.1:2380"], "TLS needs --peer-cert-file"),
            (["--listen-client-urls", "https://127.0.0.1:2379"], "TLS needs --cert-file"),
            (["--cert-file", "/nonexistent.pem", "--key-file", "/nonexistent.key"],
             "--cert-file /nonexistent.pem: cannot read"),
            (["--cipher-suites", "TLS_RSA_WITH_RC4_128_SHA"], "--cipher-suites"),
            (["--grpc-keepalive-min-time", "soon"], "--grpc-keepalive-min-time"),
            (["--max-watchers-per-stream", "0"], "--max-watchers-per-stream"),
            (["--heartbeat-interval", "100", "--election-timeout", "300"],
             "should be at least 5 times"),
            (["--name", "x", "--initial-cluster", "y=http://127.0.0.1:2380"],
             "has no member named \"x\""),
            (["--initial-cluster-state", "maybe"], "neither \"new\" nor \"existing\""),
            (["--initial-cluster", "nonsense"], "is not name=http://host:port"),
            (["--max-request-bytes", "0"], "--max-request-bytes"),
        ]
        for extra, want in bad:
            r = run([b, "start"] + extra, cwd=tmp)
            check(r.returncode == 2 and want in r.stderr,
                  f"bad flags {extra} -> exit 2 naming it ({r.returncode}: {r.stderr.strip()})")
        r = run([b, "start", "--no-such-flag"], cwd=tmp)
        check(r.returncode != 0 and "no-such-flag" in (r.stderr + r.stdout),
              f"unknown flag refused ({r.returncode})")

        # --- bad config files ---
        cfg = os.path.join(tmp, "bad.toml")
        for text, want in [("name = 3\n", "\"name\" must be a string"),
                           ("nmae = \"x\"\n", "\"nmae\" is not a setting"),
                           ("name = \"unterminated\n", "bad.toml:1")]:
            with open(cfg, "w") as f:
                f.write(text)
            r = run([b, "start", "--config-file", cfg], cwd=tmp)
            check(r.returncode == 2 and want in r.stderr,
                  f"bad config {text.strip()!r} -> exit 2 ({r.returncode}: {r.stderr.strip()})")

        # --- a TOML config file, with a flag that wins over it ---
        cport, pport, mport = free_port(), free_port(), free_port()
        good = os.path.join(tmp, "m.toml")
        with open(good, "w") as f:
            f.write(f'name = "fromfile"\n'
                    f'data-dir = "{tmp}/fromfile"\n'
                    f'listen-client-urls = ["http://127.0.0.1:{cport}"]\n'
                    f'advertise-client-urls = "http://127.0.0.1:{cport}"\n'
                    f'listen-peer-urls = "http://127.0.0.1:{pport}"\n'
                    f'initial-advertise-peer-urls = "http://127.0.0.1:{pport}"\n'
                    f'initial-cluster = "fromfile=http://127.0.0.1:{pport}"\n'
                    f'heartbeat-interval = 50\n'
                    f'election-timeout = 500\n'
                    f'listen-metrics-urls = "http://127.0.0.1:{mport}"\n')
        log = open(os.path.join(tmp, "toml.log"), "w+")
        p = subprocess.Popen([b, "start", "--config-file", good, "--max-txn-ops", "2"],
                             stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{mport}"
            ok = wait_until(lambda: http(base + "/health")[0] == 200)
            check(ok, "member from a TOML file becomes healthy (/health 200)")
            code, body = http(base + "/health")
            check(code == 200 and body == '{"health":"true"}', f"/health body {body!r}")
            code, body = http(base + "/readyz")
            check(code == 200 and body.strip() == "ok", f"/readyz {code} {body!r}")
            env = dict(os.environ, ETCDCTL_API="3")
            ep = f"127.0.0.1:{cport}"
            r = subprocess.run(["etcdctl", "--endpoints", ep, "put", "k", "v"], env=env,
                               capture_output=True, text=True, timeout=10)
            check(r.returncode == 0, "etcdctl put against the TOML-configured member")
            r = subprocess.run(["etcdctl", "--endpoints", ep, "member", "list"], env=env,
                               capture_output=True, text=True, timeout=10)
            check("fromfile" in r.stdout, f"member name from the file: {r.stdout.strip()}")
            txn = "\nput a 1\nput b 2\nput c 3\n\n\n"  # compares, success, failure
            r = subprocess.run(["etcdctl", "--endpoints", ep, "txn"], env=env, input=txn,
                               capture_output=True, text=True, timeout=10)
            check("too many operations in txn request" in r.stderr,
                  "--max-txn-ops 2 on the command line wins over the file")
            code, metrics = http(base + "/metrics")
            check(code == 200, "/metrics 200")
            for needle in ["etcd_server_has_leader 1", "etcd_server_is_leader 1",
                           "etcd_disk_wal_fsync_duration_seconds_count",
                           'grpc_server_handled_total{grpc_service="etcdserverpb.KV",'
                           'grpc_method="Put",grpc_code="OK"} 1',
                           'grpc_method="Txn",grpc_code="InvalidArgument"} 1',
                           "bulwark_raft_term", "etcd_mvcc_db_total_size_in_bytes 2",
                           "bulwark_idempotency_keys 0", "bulwark_idempotency_records 0"]:
                check(needle in metrics, f"/metrics has {needle}")
            code, _ = http(base + "/nope")
            check(code == 404, f"/nope -> {code}")
            code, _ = http(base + "/metrics", method="POST")
            check(code == 405, f"POST /metrics -> {code}")
            # A request larger than the limit is refused; the member goes on.
            s = socket.create_connection(("127.0.0.1", mport), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
            resp = s.recv(100)
            s.close()
            check(resp.startswith(b"HTTP/1.1 413"), f"oversized request -> {resp[:20]!r}")
            check(http(base + "/readyz")[0] == 200, "member still serving after it")

            # --- a client port in use: a clear error, exit 1 ---
            m2 = Member(b, tmp, client_port=cport)
            rc = m2.p.wait(timeout=15)
            out = m2.output()
            check(rc == 1 and "cannot listen" in out and str(cport) in out,
                  f"client port in use -> exit {rc}: {out.strip()[-200:]}")
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
        check(rc == 0, f"SIGTERM stops the member with exit 0 (got {rc})")

        # --- no flags at all: one member on localhost:2379, data in ./default.bulwark ---
        busy = False
        for port in (2379, 2380):
            with socket.socket() as probe:
                busy |= probe.connect_ex(("127.0.0.1", port)) == 0
        if busy:
            print("SKIP  no-flags start: ports 2379/2380 are in use on this machine")
        else:
            home = os.path.join(tmp, "noflags")
            os.makedirs(home)
            p0 = subprocess.Popen([b, "start"], cwd=home, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            try:
                env = dict(os.environ, ETCDCTL_API="3")
                ok = wait_until(lambda: subprocess.run(
                    ["etcdctl", "put", "plain", "yes"], env=env, capture_output=True,
                    timeout=10).returncode == 0, 15)
                check(ok, "bulwark start with no flags serves etcdctl's default endpoint")
                check(os.path.isdir(os.path.join(home, "default.bulwark")),
                      "its data is in ./default.bulwark")
            finally:
                p0.send_signal(signal.SIGTERM)
                p0.wait(timeout=10)

        # --- --quota-backend-bytes: etcd's NOSPACE alarm ---
        q = Member(b, tmp, extra=["--quota-backend-bytes", "2000"])
        try:
            env = dict(os.environ, ETCDCTL_API="3")
            ep = f"127.0.0.1:{q.cport}"

            def ctl(*a):
                return subprocess.run(["etcdctl", "--endpoints", ep, *a], env=env,
                                      capture_output=True, text=True, timeout=10)

            wait_until(lambda: ctl("put", "ready", "1").returncode == 0, 10)
            big = "x" * 600
            results = [ctl("put", f"big{i}", big) for i in range(4)]
            refused = [r for r in results if r.returncode != 0]
            check(len(refused) == 1 and "database space exceeded" in refused[0].stderr,
                  "a put past the quota is refused with etcd's error")
            r = ctl("alarm", "list")
            check("alarm:NOSPACE" in r.stdout, f"alarm list shows NOSPACE: {r.stdout.strip()}")
            r = ctl("put", "small", "s")
            check(r.returncode != 0, "while the alarm is raised, small puts are refused too")
            check(ctl("get", "big0", "--print-value-only").stdout.strip() == big,
                  "reads go on under the alarm; acknowledged data is intact")
            check(ctl("del", "big0").returncode == 0, "deletes go on under the alarm")
            r = ctl("alarm", "disarm")
            check("alarm:NOSPACE" in r.stdout, f"alarm disarm lists what it cleared: {r.stdout}")
            check(ctl("put", "small", "s").returncode == 0, "after disarm, writes are taken again")
        finally:
            q.stop()

    print(f"\n{'FAIL' if FAILURES else 'OK'}: {len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
