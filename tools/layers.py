#!/usr/bin/env python3
"""The layers of src/ (docs/DESIGN's table), checked from the #include lines.

  tools/layers.py check       every include points down, the pure layers use no
                              threads, sockets, files, gRPC or clocks; exits 1
                              naming each breach (LayersTest)
  tools/layers.py graph       the layer-to-layer include counts
  tools/layers.py self-test   check, shown to fail on a tree with an upward
                              include and on one with a thread in raft/

The build checks the same order by symbols (CMakeLists.txt, "One library
per layer": each layer a library linking only those below it, and a
bw_<layer>_check executable per layer that links its whole archive alone).
This check adds what symbols cannot show: an upward include of an inline
function or a type, and the pure layers' threads, sockets, files and clock
reads, which libc provides to every layer. Tests (*_test.cc and testing/)
may include anything.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from self_test import judge

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bottom to top. A layer may include the layers before it, and itself.
ORDER = ["core", "env", "clock", "check", "raft", "storage", "kv", "transport", "client", "node",
         "causal", "member", "server", "gateway", "chaos", "sim", "cli"]

# The worlds behind env::Env. Real I/O (sockets, threads, clocks, files) is
# reached only by the layers that run in production alone; the simulated
# world only by the simulator.
WORLD_USERS = {
    "env/real": {"transport", "client", "server", "gateway", "chaos", "cli"},
    "env/sim": {"sim", "cli"},
}

# Layers that must run unchanged in the simulator: no threads, sockets,
# files, gRPC or clock reads of their own (everything through env::Env).
PURE = {"core", "env", "clock", "check", "raft", "kv", "node", "causal", "member"}
IMPURE_INCLUDES = re.compile(
    r"^(thread|mutex|shared_mutex|condition_variable|future|fstream|filesystem|"
    r"sys/socket\.h|netinet/.*|arpa/.*|unistd\.h|fcntl\.h|grpcpp/.*|grpc/.*|asio.*|rocksdb/.*)$")
CLOCK_READ = re.compile(r"std::chrono::(system_clock|steady_clock|high_resolution_clock)::now|"
                        r"std::random_device|std::this_thread::sleep")

# Breaches kept on purpose, each with its reason.
ALLOWED = {
    ("src/storage/rocks_engine.cc", "env/real"):
        "RocksDB does its own file I/O; the state store runs only in production",
}


def layer_of(path):
    """'src/env/real/x.cc' -> 'env/real'; 'src/raft/x.h' -> 'raft'."""
    parts = path.split("/")
    if parts[0] == "src":
        parts = parts[1:]
    if parts[0] == "env" and len(parts) > 2 and parts[1] in ("real", "sim"):
        return "env/" + parts[1]
    return parts[0]


def rank(layer):
    base = layer.split("/")[0]
    return ORDER.index(base) if base in ORDER else None


def is_test(path):
    return path.endswith("_test.cc") or "/testing/" in path


def sources(root):
    out = []
    for d, _, files in os.walk(os.path.join(root, "src")):
        for f in files:
            if f.endswith((".cc", ".h")):
                out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def breaches(root):
    found, graph = [], {}
    for rel in sources(root):
        me = layer_of(rel)
        if rank(me) is None:
            found.append(f"{rel}: layer '{me}' is not in the table (tools/layers.py ORDER)")
            continue
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            lines = f.readlines()
        for n, line in enumerate(lines, 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if m and not is_test(rel):
                inc = m.group(1)
                if inc.split("/")[0] in ("bulwark", "etcd") or not os.path.exists(
                        os.path.join(root, "src", inc)):
                    continue  # generated protos, public include/ and libraries
                other = layer_of(inc)
                if other == me:
                    continue
                graph[(me, other)] = graph.get((me, other), 0) + 1
                if (rel, other) in ALLOWED:
                    continue
                if other in WORLD_USERS and me not in WORLD_USERS[other]:
                    found.append(f"{rel}:{n}: {me} includes {inc}: only "
                                 f"{', '.join(sorted(WORLD_USERS[other]))} may reach {other}")
                elif rank(other) is None or rank(other) > rank(me):
                    found.append(f"{rel}:{n}: {me} includes {inc}, a layer above it ({other})")
                elif rank(other) == rank(me) and other != me and me not in WORLD_USERS.get(other, ()):
                    # env/real and env/sim are siblings of env: neither reaches the other
                    if me.startswith("env/") and other.startswith("env/"):
                        found.append(f"{rel}:{n}: {me} includes {inc}: the two worlds are apart")
            if me.split("/")[0] in PURE and me not in WORLD_USERS and not is_test(rel):
                m = re.match(r"\s*#\s*include\s+<([^>]+)>", line)
                if m and IMPURE_INCLUDES.match(m.group(1)) and \
                        (rel, f"<{m.group(1)}>") not in ALLOWED:
                    found.append(f"{rel}:{n}: {me} must run in the simulator: no <{m.group(1)}>")
                if CLOCK_READ.search(line.split("//")[0]):
                    found.append(f"{rel}:{n}: {me} reads a clock or sleeps; use env::Env")
    return found, graph


def cmd_check(args):
    found, graph = breaches(args.root)
    for b in found:
        print(f"layers: {b}")
    print(f"layers: {len(sources(args.root))} files, {len(graph)} layer-to-layer edges, "
          f"{len(found)} breaches")
    return 1 if found else 0


def cmd_graph(args):
    _, graph = breaches(args.root)
    for (a, b), n in sorted(graph.items(), key=lambda x: (ORDER.index(x[0][0].split('/')[0]),
                                                          x[0][1])):
        print(f"{a:10} -> {b:10} {n}")
    return 0


def cmd_self_test(args):
    cases = [
        ("an upward include", "src/raft/raft.cc", '#include "server/etcd_server.h"\n',
         "raft includes server/etcd_server.h, a layer above it"),
        ("a thread in raft/", "src/raft/raft.cc", "#include <thread>\n",
         "raft must run in the simulator: no <thread>"),
        ("a clock read in kv/", "src/kv/mvcc.cc",
         "static auto t = std::chrono::steady_clock::now();\n",
         "kv reads a clock or sleeps"),
        ("the real world from node/", "src/node/node.cc", '#include "env/real/real_env.h"\n',
         "only chaos, cli, client, gateway, server, transport may reach env/real"),
    ]
    failed = 0
    for title, target, text, expect in cases:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(args.root, "src"), os.path.join(tmp, "src"))
            with open(os.path.join(tmp, target), "a") as f:
                f.write(text)
            r = subprocess.run([sys.executable, __file__, "check", "--root", tmp],
                               capture_output=True, text=True)
        if not judge(title, r, expect):
            failed += 1
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["check", "graph", "self-test"])
    ap.add_argument("--root", default=ROOT)
    args = ap.parse_args()
    return {"check": cmd_check, "graph": cmd_graph, "self-test": cmd_self_test}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
