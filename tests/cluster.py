"""Start, stop, crash and inspect local clusters of bulwark or etcd 3.4 for tests.

Both servers get the same etcd flags (names, URLs on free loopback ports, temp data
dirs, heartbeat 50 ms and election timeout 500 ms by default), so a test can run the
same steps against either. Every wait is bounded; every process started here is
stopped by PID when the cluster is closed, when the interpreter exits (atexit), on
SIGTERM/SIGINT/SIGHUP, and (through `setpriv --pdeathsig KILL` where available) even
if this Python process is killed with -9.

    with Cluster("bulwark", 3, binary="/tmp/compat-bin/bulwark") as c:
        c.wait_ready()
        leader = c.leader()
        leader.kill()            # SIGKILL
        ...
        leader.start()           # restart with the same flags and data dir
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HEARTBEAT_MS = 50
ELECTION_MS = 500

# Every live process started by this module: pid -> Popen. Cleanup walks it.
_LIVE = {}
_LIVE_LOCK = threading.Lock()
_RESERVED_PORTS = set()
_TEMP_DIRS = set()  # work dirs this module created and should remove
_SETPRIV = shutil.which("setpriv")


def _cleanup_all():
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
        _LIVE.clear()
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except (ProcessLookupError, OSError):
            pass
    for p in procs:
        _terminate(p, grace=2.0)
    for d in list(_TEMP_DIRS):
        shutil.rmtree(d, ignore_errors=True)
        _TEMP_DIRS.discard(d)


def _terminate(p, grace=2.0):
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; always reaps. By PID only."""
    if p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    except ProcessLookupError:
        pass


def _on_signal(signum, _frame):
    _cleanup_all()
    # Restore the default action and re-deliver, so the exit status says what happened.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_cleanup_all)
if threading.current_thread() is threading.main_thread():
    for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            if signal.getsignal(_s) in (signal.SIG_DFL, signal.default_int_handler):
                signal.signal(_s, _on_signal)
        except (ValueError, OSError):
            pass


def free_port():
    """A loopback TCP port that is free now and not handed out before by this process."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _RESERVED_PORTS:
            _RESERVED_PORTS.add(port)
            return port
    raise RuntimeError("no free loopback port")


def spawn(argv, log_path, env=None):
    """Start a server process, stdout+stderr to log_path, registered for cleanup."""
    cmd = list(argv)
    if _SETPRIV:
        cmd = [_SETPRIV, "--pdeathsig", "KILL", "--"] + cmd
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
    finally:
        log.close()
    with _LIVE_LOCK:
        _LIVE[p.pid] = p
    return p


def spawn_piped(argv):
    """Start a helper process with its stdout readable (text), registered for cleanup."""
    cmd = list(argv)
    if _SETPRIV:
        cmd = [_SETPRIV, "--pdeathsig", "KILL", "--"] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    with _LIVE_LOCK:
        _LIVE[p.pid] = p
    return p


def stop_process(p, grace=2.0):
    """SIGTERM (then SIGKILL) a process started here, by its PID, and forget it."""
    _terminate(p, grace)
    _forget(p)


def _forget(p):
    with _LIVE_LOCK:
        _LIVE.pop(p.pid, None)


class Member:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = f"m{index}"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = os.path.join(cluster.workdir, self.name)
        self.log_path = os.path.join(cluster.workdir, self.name + ".log")
        self.proc = None
        self.member_id = None  # learnt from endpoint status
        self.env = None  # extra environment for the process (libfaketime, ...)

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    def argv(self):
        c = self.cluster
        args = [
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", c.initial_cluster(),
            "--initial-cluster-state", "new",
            "--initial-cluster-token", c.token,
            "--heartbeat-interval", str(c.heartbeat_ms),
            "--election-timeout", str(c.election_ms),
        ]
        if c.kind == "bulwark":
            return [c.binary, "start"] + args + list(c.extra_bulwark_args)
        return [c.binary] + args + list(c.extra_etcd_args)

    def start(self):
        """Start (or restart, with the same flags and data dir) this member."""
        if self.alive():
            return
        with open(self.log_path, "ab") as f:
            f.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv())}\n".encode())
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = spawn(self.argv(), self.log_path, env=env)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Send `sig` (default SIGKILL) to this member's PID and reap it."""
        if not self.alive():
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        _forget(self.proc)

    def stop(self, grace=3.0):
        if self.proc is None:
            return
        _terminate(self.proc, grace)
        _forget(self.proc)

    def restart(self):
        self.stop()
        self.start()

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""


class Cluster:
    """N members of `kind` ("bulwark" or "etcd") on loopback, in a temp dir."""

    def __init__(self, kind, size, binary=None, etcdctl="etcdctl", workdir=None,
                 heartbeat_ms=HEARTBEAT_MS, election_ms=ELECTION_MS, token=None,
                 keep=False, extra_etcd_args=(), extra_bulwark_args=()):
        if kind not in ("bulwark", "etcd"):
            raise ValueError(kind)
        self.kind = kind
        self.binary = binary or ("etcd" if kind == "etcd" else "bulwark")
        self.etcdctl_bin = etcdctl
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.token = token or f"{kind}-test"
        self.keep = keep
        self.extra_etcd_args = extra_etcd_args
        self.extra_bulwark_args = extra_bulwark_args
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"{kind}-cluster-")
        if self._own_workdir and not keep:
            _TEMP_DIRS.add(self.workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.members = [Member(self, i) for i in range(size)]

    # -- lifecycle -------------------------------------------------------------------
    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start(self, ready_timeout=20.0):
        for m in self.members:
            m.start()
        if ready_timeout:
            self.wait_ready(ready_timeout)
        return self

    def stop(self):
        # SIGTERM every member first, then wait: members stop in parallel.
        for m in self.members:
            if m.alive():
                try:
                    m.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for m in self.members:
            m.stop()
        if self._own_workdir and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
            _TEMP_DIRS.discard(self.workdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- etcdctl -------------------------------------------------------------------
    def endpoints(self, members=None, live_only=True):
        ms = members if members is not None else self.members
        return [m.endpoint for m in ms if (m.alive() or not live_only)]

    def etcdctl(self, args, endpoints=None, stdin=None, timeout=10.0, env_extra=None):
        """Run etcdctl (API v3) against `endpoints` (default: live members)."""
        eps = endpoints if endpoints is not None else self.endpoints()
        return run_etcdctl(self.etcdctl_bin, eps, args, stdin=stdin, timeout=timeout,
                           env_extra=env_extra)

    def healthy(self, member, timeout=3.0):
        r = self.etcdctl(["endpoint", "health", "--command-timeout=2s"],
                         endpoints=[member.endpoint], timeout=timeout)
        return r.returncode == 0 and "is healthy" in (r.stdout + r.stderr)

    def wait_ready(self, timeout=20.0, members=None):
        """Wait until every (given) live member answers `endpoint health`; bounded."""
        ms = [m for m in (members or self.members) if m.alive()]
        deadline = time.monotonic() + timeout
        pending = list(ms)
        while pending:
            for m in list(pending):
                if not m.alive():
                    raise RuntimeError(f"{self.kind} member {m.name} exited "
                                       f"(rc {m.proc.returncode}):\n{m.log_tail()}")
                if self.healthy(m, timeout=min(3.0, max(0.5, deadline - time.monotonic()))):
                    pending.remove(m)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind}: not healthy within {timeout}s: "
                                   + ", ".join(m.name for m in pending)
                                   + "\n" + "\n".join(m.log_tail(10) for m in pending))
            time.sleep(0.1)
        return self

    def status(self, members=None):
        """{member: Status dict} from `etcdctl endpoint status -w json`, for live members
        that answered."""
        out = {}
        for m in (members or self.members):
            if not m.alive():
                continue
            r = self.etcdctl(["endpoint", "status", "-w", "json", "--command-timeout=2s"],
                             endpoints=[m.endpoint], timeout=4.0)
            if r.returncode != 0:
                continue
            try:
                st = json.loads(r.stdout)[0]["Status"]
            except (ValueError, KeyError, IndexError):
                continue
            m.member_id = st["header"]["member_id"]
            out[m] = st
        return out

    def leader(self, timeout=10.0, exclude=()):
        """The member that live members agree is leader; waits (bounded) for one."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status([m for m in self.members if m not in exclude])
            by_id = {s["header"]["member_id"]: m for m, s in st.items()}
            leaders = {s.get("leader") for s in st.values()}
            if len(leaders) == 1:
                lid = leaders.pop()
                if lid in by_id and by_id[lid] not in exclude:
                    return by_id[lid]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind}: no agreed leader within {timeout}s "
                                   f"(status: { {m.name: s.get('leader') for m, s in st.items()} })")
            time.sleep(0.1)

    def followers(self, leader=None):
        leader = leader or self.leader()
        return [m for m in self.members if m is not leader]


def run_etcdctl(etcdctl, endpoints, args, stdin=None, timeout=10.0, env_extra=None):
    """Run `etcdctl --endpoints=... ARGS` with ETCDCTL_API=3. Never hangs past timeout:
    returns a CompletedProcess whose returncode is -9 and stderr notes the timeout."""
    env = dict(os.environ)
    env["ETCDCTL_API"] = "3"
    for k in list(env):
        if k.startswith("ETCDCTL_") and k != "ETCDCTL_API":
            del env[k]
    if env_extra:
        env.update(env_extra)
    argv = [etcdctl, "--endpoints=" + ",".join(endpoints)] + list(args)
    return run_bounded(argv, stdin=stdin, timeout=timeout, env=env)


def run_bounded(argv, stdin=None, timeout=10.0, env=None, term_first=True):
    """Run argv with a hard time bound: at `timeout` SIGTERM, 2 s later SIGKILL.
    The result has .timed_out set."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    timed_out = False
    try:
        out, err = p.communicate(stdin.encode() if isinstance(stdin, str) else stdin,
                                 timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        if term_first:
            p.send_signal(signal.SIGTERM)
            try:
                out, err = p.communicate(timeout=2.0)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
        else:
            p.kill()
            out, err = p.communicate()
    r = subprocess.CompletedProcess(argv, p.returncode, out.decode(errors="replace"),
                                    err.decode(errors="replace"))
    r.timed_out = timed_out
    return r


if __name__ == "__main__":
    # Smoke test: python3 tests/cluster.py [bulwark|etcd] [N] [BINARY]
    kind = sys.argv[1] if len(sys.argv) > 1 else "bulwark"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    binary = sys.argv[3] if len(sys.argv) > 3 else None
    t0 = time.monotonic()
    with Cluster(kind, n, binary=binary) as c:
        c.start()
        ld = c.leader()
        print(f"{kind} x{n} ready in {time.monotonic() - t0:.2f}s; leader {ld.name}")
        ld.kill()
        nl = c.leader(exclude=(ld,))
        print(f"killed {ld.name}; new leader {nl.name} after {time.monotonic() - t0:.2f}s")
        ld.start()
        c.wait_ready()
        print(f"restarted {ld.name}; all healthy after {time.monotonic() - t0:.2f}s")
