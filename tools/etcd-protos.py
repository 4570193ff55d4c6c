#!/usr/bin/env python3
"""Fetches etcd 3.4's API definitions from Debian and prepares them for protoc.

The wire format of the etcd v3 API is defined by etcd's own .proto files, so
bulwark compiles exactly those. They come from Debian's golang-etcd-server-dev
package (only the .deb is downloaded and unpacked; nothing is installed and
nothing is committed). Go-only annotations are removed: gogoproto options and
google.api.http options, which do not change the wire format.

Usage: etcd-protos.py OUT_DIR
Writes OUT_DIR/etcd/... with the layout the files' own imports expect.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

PACKAGE = "golang-etcd-server-dev"
FILES = [
    "etcdserver/etcdserverpb/rpc.proto",
    "mvcc/mvccpb/kv.proto",
    "auth/authpb/auth.proto",
    "etcdserver/api/v3lock/v3lockpb/v3lock.proto",
    "etcdserver/api/v3election/v3electionpb/v3election.proto",
]


def strip(text: str) -> str:
    # Imports of the annotation definitions.
    text = re.sub(r'^import "(gogoproto/gogo|google/api/annotations)\.proto";\n', "", text, flags=re.M)
    # File options of gogoproto: option (gogoproto.x) = y;
    text = re.sub(r"^option \(gogoproto\.[^)]*\)[^;]*;\n", "", text, flags=re.M)
    # Field options: [(gogoproto.nullable) = false, ...]
    text = re.sub(r"\s*\[\s*\(gogoproto\.[^\]]*\]", "", text)
    # Method options: option (google.api.http) = { ... }; the braces nest.
    marker = re.compile(r"\s*option \(google\.api\.http\) = \{")
    while True:
        m = marker.search(text)
        if not m:
            break
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if text[i] == ";":
            i += 1
        text = text[:m.start()] + text[i:]
    # A method left with an empty body, rpc X(A) returns (B) {}, is valid proto3.
    return text


def download(tmp: str) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    if all(os.path.exists(os.path.join(out, "etcd", f)) for f in FILES):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        debs = glob.glob(f"/var/cache/apt/archives/{PACKAGE}_*.deb")
        if not debs:
            r = download(tmp)
            if r.returncode != 0 and os.geteuid() == 0:
                # A machine whose package lists were never fetched.
                subprocess.run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                r = download(tmp)
            debs = glob.glob(os.path.join(tmp, f"{PACKAGE}_*.deb"))
            if r.returncode != 0 or not debs:
                print(f"etcd-protos: could not download Debian's {PACKAGE} "
                      f"(apt-get download {PACKAGE}):\n{r.stdout}", file=sys.stderr)
                return 1
        unpacked = os.path.join(tmp, "x")
        subprocess.run(["dpkg-deb", "-x", debs[0], unpacked], check=True)
        src = os.path.join(unpacked, "usr/share/gocode/src/go.etcd.io/etcd")
        for f in FILES:
            with open(os.path.join(src, f), encoding="utf-8") as fh:
                text = strip(fh.read())
            dst = os.path.join(out, "etcd", f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(dst + ".tmp", dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
