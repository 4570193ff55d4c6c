#!/usr/bin/python3
"""etcdctl compatibility suite: the same etcdctl commands against etcd 3.4 and bulwark.

Starts a fresh single-member etcd and a fresh single-member bulwark (same flags), runs
one fixed sequence of etcdctl (API v3) commands against each, in order (both start at
revision 1, so revisions must agree), normalises what may legitimately differ (cluster
and member ids, raft term and index, durations, DB size, server version, ports, lease
ids, timestamps in client logs) and compares exit code, stdout and stderr.

Prints a PASS/DIFF table and a unified diff (etcd -> bulwark) for every difference.
Exit 0 only when every difference is listed in the known-differences file
(tests/compat_known_differences.txt: one command id per line, reason after '#').

Usage:
  tests/etcd_compat_test.py --bulwark PATH [--etcd PATH] [--etcdctl PATH]
                            [--report FILE] [--known FILE] [--only REGEX] [--keep]
Needs Python 3 (stdlib only) and etcd/etcdctl 3.4.
"""
import argparse
import difflib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_KNOWN = os.path.join(HERE, "compat_known_differences.txt")


# --------------------------------------------------------------------------------------
# The command sequence
# --------------------------------------------------------------------------------------
class Cmd:
    """One etcdctl invocation.

    args     etcdctl arguments; "{name}" is replaced by a per-server variable
             (captured from an earlier command's output, or snapdir/workdir)
    stdin    text fed on stdin (txn input, put value)
    timeout  seconds after which the command gets SIGTERM (long-running commands:
             watch, elect, lock); the record notes that it timed out
    during   [(delay_s, args), ...] etcdctl commands run while this one is running
    capture  [(var, regex)]: group 1 of regex on stdout becomes {var}
    norm     extra normalisers by name (see normalise())
    """

    def __init__(self, cid, *args, stdin=None, timeout=None, during=(), capture=(),
                 norm=(), note=""):
        self.id = cid
        self.args = list(args)
        self.stdin = stdin
        self.timeout = timeout
        self.during = list(during)
        self.capture = list(capture)
        self.norm = set(norm)
        self.note = note


def txn(compares=(), success=(), failure=()):
    """etcdctl txn's non-interactive input: compares, blank, success, blank, failure."""
    return "\n".join(["\n".join(compares), "", "\n".join(success), "",
                      "\n".join(failure), ""]) + "\n"


def build_sequence():
    C = Cmd
    seq = []
    add = seq.append

    # ---- put ---------------------------------------------------------------------
    add(C("put/basic", "put", "foo", "bar"))
    add(C("put/overwrite", "put", "foo", "bar2"))
    add(C("put/prev-kv", "put", "foo", "bar3", "--prev-kv"))
    add(C("put/prev-kv-json", "put", "foo", "bar4", "--prev-kv", "-w", "json"))
    add(C("put/prev-kv-new-key", "put", "newkey", "v", "--prev-kv"))
    add(C("put/prev-kv-new-key-json", "put", "newkey2", "v", "--prev-kv", "-w", "json"))
    add(C("put/json", "put", "jkey", "jval", "-w", "json"))
    add(C("put/fields", "put", "fkey", "fval", "-w", "fields"))
    add(C("put/simple", "put", "skey", "sval", "-w", "simple"))
    add(C("put/ignore-value", "put", "foo", "--ignore-value"))
    add(C("get/after-ignore-value", "get", "foo", "-w", "json"))
    add(C("put/ignore-value-missing-key", "put", "nokey", "--ignore-value"))
    add(C("put/ignore-value-with-value", "put", "foo", "x", "--ignore-value"))
    add(C("put/ignore-lease", "put", "foo", "bar5", "--ignore-lease"))
    add(C("put/ignore-lease-missing-key", "put", "nokey2", "v", "--ignore-lease"))
    add(C("put/ignore-value-and-lease", "put", "foo", "--ignore-value", "--ignore-lease",
          "--prev-kv"))
    add(C("put/value-from-stdin", "put", "stdinkey", stdin="from stdin\nline 2\n"))
    add(C("get/value-from-stdin", "get", "stdinkey"))
    add(C("put/dash-value", "put", "dash", "--", "-dashvalue"))
    add(C("put/empty-value", "put", "emptyval", ""))
    add(C("get/empty-value-json", "get", "emptyval", "-w", "json"))
    add(C("put/utf8", "put", "ключ", "значение ✓"))
    add(C("get/utf8-hex", "get", "ключ", "--hex"))
    add(C("put/binary-ish", "put", "bin\tkey", "va\x01lue"))
    add(C("get/binary-ish-json", "get", "bin\tkey", "-w", "json"))
    add(C("put/no-args", "put"))

    # ---- get ---------------------------------------------------------------------
    add(C("get/simple", "get", "foo"))
    add(C("get/json", "get", "foo", "-w", "json"))
    add(C("get/fields", "get", "foo", "-w", "fields"))
    add(C("get/print-value-only", "get", "foo", "--print-value-only"))
    add(C("get/keys-only", "get", "foo", "--keys-only"))
    add(C("get/keys-only-json", "get", "foo", "--keys-only", "-w", "json"))
    add(C("get/hex", "get", "foo", "--hex"))
    add(C("get/hex-json", "get", "foo", "--hex", "-w", "json"))
    add(C("get/missing", "get", "nokey"))
    add(C("get/missing-json", "get", "nokey", "-w", "json"))
    add(C("get/missing-fields", "get", "nokey", "-w", "fields"))
    add(C("get/serializable", "get", "foo", "--consistency=s", "-w", "json"))
    add(C("get/table-unsupported", "get", "foo", "-w", "table"))
    # Keyspace for sorting: KEY a<b<c, CREATE c<a<b, MODIFY a<c<b, VALUE c<a<b,
    # VERSION a<c<b.
    add(C("setup/s-c", "put", "s/c", "1"))
    add(C("setup/s-a", "put", "s/a", "3"))
    add(C("setup/s-b", "put", "s/b", "2"))
    add(C("setup/s-c2", "put", "s/c", "0"))
    add(C("setup/s-b2", "put", "s/b", "4"))
    add(C("setup/s-b3", "put", "s/b", "5"))
    add(C("get/prefix", "get", "s/", "--prefix"))
    add(C("get/prefix-json", "get", "s/", "--prefix", "-w", "json"))
    add(C("get/prefix-limit", "get", "s/", "--prefix", "--limit", "2"))
    add(C("get/prefix-limit-json", "get", "s/", "--prefix", "--limit", "2", "-w", "json"))
    add(C("get/prefix-limit-fields", "get", "s/", "--prefix", "--limit", "1", "-w", "fields"))
    add(C("get/prefix-limit-exact", "get", "s/", "--prefix", "--limit", "3", "-w", "json"))
    add(C("get/range", "get", "s/a", "s/c"))
    add(C("get/range-empty", "get", "s/c", "s/a"))
    add(C("get/from-key", "get", "s/b", "--from-key"))
    add(C("get/from-key-keys-only", "get", "s", "--from-key", "--keys-only"))
    add(C("get/from-key-empty", "get", "", "--from-key", "--keys-only"))
    add(C("get/all-prefix-empty", "get", "", "--prefix", "--keys-only"))
    add(C("get/all-count-json", "get", "", "--prefix", "--limit", "1", "-w", "json"))
    for target in ("KEY", "CREATE", "MODIFY", "VALUE", "VERSION"):
        for order in ("ASCEND", "DESCEND"):
            add(C(f"get/sort-{target.lower()}-{order.lower()}", "get", "s/", "--prefix",
                  f"--sort-by={target}", f"--order={order}"))
    add(C("get/order-only-descend", "get", "s/", "--prefix", "--order=DESCEND"))
    add(C("get/sort-only-value", "get", "s/", "--prefix", "--sort-by=VALUE"))
    add(C("get/sort-limit", "get", "s/", "--prefix", "--sort-by=VALUE", "--order=DESCEND",
          "--limit", "1", "-w", "json"))
    add(C("get/sort-bad-target", "get", "s/", "--prefix", "--sort-by=NOPE"))
    add(C("get/order-bad", "get", "s/", "--prefix", "--order=SIDEWAYS"))
    add(C("get/prefix-print-value-only", "get", "s/", "--prefix", "--print-value-only"))
    add(C("get/prefix-keys-only", "get", "s/", "--prefix", "--keys-only"))
    add(C("get/rev-1", "get", "foo", "--rev=1"))
    add(C("get/rev-2", "get", "foo", "--rev=2"))
    add(C("get/rev-3-json", "get", "foo", "--rev=3", "-w", "json"))
    add(C("get/rev-prefix", "get", "s/", "--prefix", "--rev=30"))
    add(C("get/rev-future", "get", "foo", "--rev=100000"))
    add(C("get/prefix-and-from-key", "get", "s/", "--prefix", "--from-key"))
    add(C("get/empty-key", "get", ""))
    add(C("get/no-args", "get"))
    add(C("get/limit-negative", "get", "s/", "--prefix", "--limit=-1"))

    # ---- many keys in one txn (exactly 128 ops: the limit) ---------------------------
    add(C("txn/128-ops", "txn", stdin=txn(success=[f"put many/{i:03d} v{i}" for i in range(128)])))
    add(C("get/many-limit-json", "get", "many/", "--prefix", "--limit", "3", "-w", "json"))
    add(C("get/many-keys-only-desc-limit", "get", "many/", "--prefix", "--keys-only",
          "--order=DESCEND", "--limit", "5"))

    # ---- del ---------------------------------------------------------------------
    add(C("setup/d1", "put", "d/1", "one"))
    add(C("setup/d2", "put", "d/2", "two"))
    add(C("setup/d3", "put", "d/3", "three"))
    add(C("setup/d4", "put", "d/4", "four"))
    add(C("setup/e1", "put", "e/1", "x"))
    add(C("setup/e2", "put", "e/2", "y"))
    add(C("del/missing", "del", "nokey"))
    add(C("del/missing-json", "del", "nokey", "-w", "json"))
    add(C("del/one", "del", "d/1"))
    add(C("del/prev-kv", "del", "d/2", "--prev-kv"))
    add(C("del/prev-kv-json", "del", "d/3", "--prev-kv", "-w", "json"))
    add(C("del/range", "del", "d/4", "d/5"))
    add(C("del/prefix-prev-kv", "del", "many/00", "--prefix", "--prev-kv"))
    add(C("del/prefix", "del", "many/", "--prefix"))
    add(C("del/prefix-json", "del", "s/", "--prefix", "-w", "json"))
    add(C("del/from-key", "del", "e/2", "--from-key", "--prev-kv"))
    add(C("get/after-del", "get", "", "--from-key", "--keys-only"))
    add(C("del/empty-key", "del", ""))
    add(C("del/no-args", "del"))
    add(C("del/fields", "del", "e/1", "-w", "fields"))

    # ---- txn ---------------------------------------------------------------------
    add(C("setup/t1", "put", "t1", "v1"))
    add(C("txn/value-eq-success", "txn", stdin=txn(
        ['value("t1") = "v1"'], ["put t1 v2", "get t1"], ["put t1 failed"])))
    add(C("txn/value-eq-failure", "txn", stdin=txn(
        ['value("t1") = "nope"'], ["put t1 nope"], ["get t1", "put t2 fromfailure"])))
    add(C("txn/value-ne", "txn", stdin=txn(['value("t1") != "x"'], ["get t1"], [])))
    add(C("txn/value-gt-lt", "txn", stdin=txn(['value("t1") > "v1"', 'value("t1") < "v3"'],
                                               ["get t1"], ["get t2"])))
    add(C("txn/version-eq", "txn", stdin=txn(['version("t1") = "2"'], ["get t1 -w json"],
                                              ["del t1"])))
    add(C("txn/version-missing-key", "txn", stdin=txn(['version("absent") = "0"'],
                                                       ["put absent created"], [])))
    add(C("txn/create-gt", "txn", stdin=txn(['create("t1") > "1"'], ["get t1 --keys-only"],
                                             ["get t2"])))
    add(C("txn/create-missing-eq-0", "txn", stdin=txn(['create("nosuch") = "0"'],
                                                       ["put nosuch created"], ["get nosuch"])))
    add(C("txn/mod-lt-failure", "txn", stdin=txn(['mod("t1") < "2"'], ["put t1 x"],
                                                  ["get t1", "get t2"])))
    add(C("txn/mod-eq", "txn", stdin=txn(['mod("t2") > "0"'], ["del t2 --prev-kv"], [])))
    add(C("txn/multi-compare-and", "txn", stdin=txn(
        ['value("t1") = "v2"', 'version("t1") = "2"', 'create("t1") > "0"'],
        ["put t1 v3 --prev-kv"], ["put t1 wrong"])))
    add(C("txn/multi-compare-one-false", "txn", stdin=txn(
        ['value("t1") = "v3"', 'version("t1") = "99"'], ["put t1 wrong"], ["get t1"])))
    add(C("txn/json-success", "txn", "-w", "json", stdin=txn(
        ['value("t1") = "v3"'], ["put t1 v4", "get t1", "del nosuch"], [])))
    add(C("txn/json-failure", "txn", "-w", "json", stdin=txn(
        ['value("t1") = "zzz"'], [], ["get t1", "put t3 v"])))
    add(C("txn/fields", "txn", "-w", "fields", stdin=txn(['value("t1") = "v4"'],
                                                          ["get t1"], [])))
    add(C("txn/empty", "txn", stdin=txn()))
    add(C("txn/no-compare-success", "txn", stdin=txn([], ["put t4 a", "put t5 b"], [])))
    add(C("txn/ops-with-flags", "txn", stdin=txn(
        [], ["get t --prefix --keys-only", "get t --from-key --limit=2", "put t4 c --prev-kv",
             "del t5 --prev-kv"], [])))
    add(C("txn/range-del-prefix", "txn", stdin=txn(['version("t4") > "0"'], ["del t --prefix"],
                                                    [])))
    add(C("txn/compare-missing-key-value", "txn", stdin=txn(
        ['value("nosuchkey") = ""'], ["put wrong 1"], ["get nosuchkey"])))
    add(C("txn/bad-syntax", "txn", stdin='value("t1") == "x"\n\n\n\n'))
    add(C("txn/too-many-ops", "txn", stdin=txn(success=[f"put op{i} v" for i in range(129)])))
    add(C("txn/too-many-ops-failure-branch", "txn", stdin=txn(
        ['value("a") = "b"'], ["put a 1"], [f"put op{i} v" for i in range(129)])))
    add(C("txn/duplicate-put", "txn", stdin=txn([], ["put dup 1", "put dup 2"], [])))
    add(C("txn/duplicate-put-del", "txn", stdin=txn([], ["put dup 1", "del dup"], [])))
    add(C("txn/duplicate-put-del-range", "txn", stdin=txn([], ["put dup/a 1", "del dup/ --prefix"],
                                                           [])))
    add(C("txn/duplicate-across-branches-ok", "txn", stdin=txn(['value("dup") = "x"'],
                                                                ["put dup 1"], ["put dup 2"])))
    add(C("txn/duplicate-get-put-ok", "txn", stdin=txn([], ["get dup", "put dup 3"], [])))

    # ---- errors ------------------------------------------------------------------
    add(C("err/put-empty-key", "put", "", "v"))
    add(C("err/put-oversize-value", "put", "bigkey", stdin="x" * (1536 * 1024 + 1024)))
    add(C("ok/put-1mib-value", "put", "bigok", stdin="y" * (1024 * 1024)))
    add(C("ok/get-1mib-value-keys-only", "get", "bigok", "--keys-only", "-w", "json"))
    add(C("err/put-unknown-lease", "put", "leased", "v", "--lease=1234"))
    add(C("err/put-bad-lease-hex", "put", "leased", "v", "--lease=xyz"))
    add(C("err/txn-oversize", "txn", stdin=txn([], ["put big1 " + "z" * (800 * 1024),
                                                   "put big2 " + "z" * (800 * 1024)], [])))

    # ---- compaction ----------------------------------------------------------------
    add(C("compact/rev-before", "get", "foo", "-w", "json"))
    add(C("compact/at-10", "compaction", "10"))
    add(C("compact/again-10", "compaction", "10"))
    add(C("compact/older-5", "compaction", "5"))
    add(C("compact/future", "compaction", "100000"))
    add(C("compact/get-compacted-rev", "get", "foo", "--rev=9"))
    add(C("compact/get-at-compact-rev", "get", "foo", "--rev=10", "-w", "json"))
    add(C("compact/get-after-compact-rev", "get", "foo", "--rev=11"))
    add(C("compact/get-future-rev", "get", "foo", "--rev=100000"))
    add(C("compact/physical-20", "compaction", "20", "--physical"))
    add(C("compact/get-rev-19", "get", "foo", "--rev=19"))
    add(C("compact/zero", "compaction", "0"))
    add(C("compact/bad-arg", "compaction", "abc"))
    add(C("compact/txn-get-compacted", "txn", stdin=txn([], ["get foo --rev=3"], [])))

    # ---- endpoint / member / maintenance ---------------------------------------------
    add(C("endpoint/health", "endpoint", "health", norm={"took"}))
    add(C("endpoint/health-json", "endpoint", "health", "-w", "json"))
    add(C("endpoint/status", "endpoint", "status", norm={"status"}))
    add(C("endpoint/status-json", "endpoint", "status", "-w", "json"))
    add(C("endpoint/status-fields", "endpoint", "status", "-w", "fields"))
    add(C("endpoint/hashkv", "endpoint", "hashkv"))
    add(C("endpoint/hashkv-json", "endpoint", "hashkv", "-w", "json"))
    add(C("endpoint/hashkv-rev", "endpoint", "hashkv", "--rev=25", "-w", "json"))
    add(C("member/list", "member", "list"))
    add(C("member/list-json", "member", "list", "-w", "json"))
    add(C("member/list-fields", "member", "list", "-w", "fields"))
    add(C("member/list-table", "member", "list", "-w", "table"))
    add(C("maint/alarm-list", "alarm", "list"))
    add(C("maint/defrag", "defrag"))
    add(C("maint/move-leader-self", "move-leader", "{member_hex}"))
    add(C("auth/user-list", "user", "list"))
    add(C("auth/role-list", "role", "list"))

    # ---- not implemented in bulwark yet: leases, watch, snapshot, lock, elect,
    # member add/remove. Kept last: they may create revisions on etcd only. ----------
    add(C("watch/history", "watch", "--rev=2", "foo", timeout=1.5,
          note="watch from a compacted revision"))
    add(C("watch/history-prefix", "watch", "--prefix", "--rev=30", "s/", timeout=1.5))
    add(C("watch/history-prev-kv", "watch", "--prev-kv", "--rev=30", "t1", timeout=1.5))
    # Live watches start at the current revision (captured first), so events
    # made before a slow etcdctl has registered its watch still come; the
    # watcher is stopped seconds after the last put.
    add(C("watch/live-start", "get", "w/", "--prefix", "-w", "json",
          capture=[("liverev", r'"revision":([0-9]+)')]))
    add(C("watch/live", "watch", "--rev={liverev}", "w/live", timeout=4.0,
          during=[(0.8, ["put", "w/live", "v1"]), (0.1, ["put", "w/live", "v2"]),
                  (0.1, ["del", "w/live"])]))
    add(C("watch/live-prefix-start", "get", "w/p/", "--prefix", "-w", "json",
          capture=[("prefixrev", r'"revision":([0-9]+)')]))
    add(C("watch/live-prefix-json", "watch", "--prefix", "--rev={prefixrev}", "w/p/", "-w",
          "json", timeout=4.0, during=[(0.8, ["put", "w/p/x", "1"])]))
    add(C("lease/grant", "lease", "grant", "30", capture=[("lease", r"lease ([0-9a-f]+) granted")]))
    add(C("lease/grant-json", "lease", "grant", "20", "-w", "json"))
    add(C("lease/put-with-lease", "put", "leased/a", "va", "--lease={lease}"))
    add(C("lease/put-with-lease-2", "put", "leased/b", "vb", "--lease={lease}"))
    add(C("lease/get-leased-json", "get", "leased/", "--prefix", "-w", "json"))
    add(C("lease/put-ignore-lease", "put", "leased/a", "va2", "--ignore-lease"))
    add(C("lease/get-after-ignore-lease", "get", "leased/a", "-w", "json"))
    add(C("lease/timetolive", "lease", "timetolive", "{lease}", norm={"ttl"}))
    add(C("lease/timetolive-keys", "lease", "timetolive", "{lease}", "--keys", norm={"ttl"}))
    add(C("lease/timetolive-json", "lease", "timetolive", "{lease}", "--keys", "-w", "json",
          norm={"ttl"}))
    add(C("lease/timetolive-unknown", "lease", "timetolive", "1234"))
    add(C("lease/keep-alive-once", "lease", "keep-alive", "--once", "{lease}"))
    add(C("lease/keep-alive-once-unknown", "lease", "keep-alive", "--once", "1234"))
    add(C("lease/list", "lease", "list"))
    add(C("lease/revoke", "lease", "revoke", "{lease}"))
    add(C("lease/get-after-revoke", "get", "leased/", "--prefix", "-w", "json"))
    add(C("lease/revoke-again", "lease", "revoke", "{lease}"))
    add(C("lease/revoke-unknown", "lease", "revoke", "1234"))
    add(C("snapshot/save", "snapshot", "save", "{snapdir}/snap.db"))
    add(C("snapshot/status", "snapshot", "status", "{snapdir}/snap.db", "-w", "json",
          norm={"snapstatus"}))
    add(C("lock/exec", "lock", "mylock", "echo", "locked", timeout=5.0))
    add(C("lock/hold", "lock", "mylock2", timeout=1.5))
    add(C("lock/ttl", "lock", "--ttl=5", "mylock3", "echo", "ttl-locked", timeout=5.0))
    add(C("elect/campaign", "elect", "myelection", "proposal1", timeout=1.5))
    add(C("elect/listen", "elect", "-l", "myelection", timeout=3.0,
          during=[(0.5, ["put", "myelection/x", "notalease"])]))
    add(C("member/add-learner", "member", "add", "learner1", "--learner",
          "--peer-urls=http://127.0.0.1:1", capture=[("learner", r"Member +([0-9a-f]+) added")]))
    add(C("member/list-with-learner", "member", "list", norm={"sortlines"}))
    add(C("member/promote-not-ready", "member", "promote", "{learner}"))
    add(C("member/remove", "member", "remove", "{learner}"))
    add(C("member/remove-unknown", "member", "remove", "1234"))
    add(C("end/get-all-keys", "get", "", "--from-key", "--keys-only"))
    add(C("end/status-revision", "endpoint", "status", "-w", "json"))

    # ---- authentication and RBAC. Last: once on, every command needs a user. ------
    root = ["--user", "root:rootpw"]
    alice = ["--user", "alice:alicepw"]
    add(C("auth/enable-no-root", "auth", "enable"))
    add(C("auth/user-add-root", "user", "add", "root:rootpw"))
    add(C("auth/user-add-alice", "user", "add", "alice:alicepw"))
    add(C("auth/user-add-dup", "user", "add", "alice:other"))
    add(C("auth/user-add-no-password", "user", "add", "svc", "--no-password"))
    add(C("auth/role-add", "role", "add", "app"))
    add(C("auth/role-add-dup", "role", "add", "app"))
    add(C("auth/role-grant-prefix", "role", "grant-permission", "app", "readwrite", "app/",
          "--prefix"))
    add(C("auth/role-grant-read", "role", "grant-permission", "app", "read", "pub"))
    add(C("auth/role-grant-range", "role", "grant-permission", "app", "write", "w1", "w5"))
    add(C("auth/role-grant-from-key", "role", "grant-permission", "app", "read", "zz",
          "--from-key"))
    add(C("auth/role-grant-unknown-role", "role", "grant-permission", "nope", "read", "x"))
    add(C("auth/role-grant-bad-type", "role", "grant-permission", "app", "readonly", "x"))
    add(C("auth/role-get", "role", "get", "app"))
    add(C("auth/role-get-unknown", "role", "get", "nope"))
    add(C("auth/user-grant", "user", "grant-role", "alice", "app"))
    add(C("auth/user-grant-again", "user", "grant-role", "alice", "app"))
    add(C("auth/user-grant-unknown-role", "user", "grant-role", "alice", "nope"))
    add(C("auth/user-grant-unknown-user", "user", "grant-role", "nobody", "app"))
    add(C("auth/user-get", "user", "get", "alice"))
    add(C("auth/user-get-detail", "user", "get", "alice", "--detail"))
    add(C("auth/user-get-unknown", "user", "get", "nobody"))
    add(C("auth/user-list-before", "user", "list"))
    add(C("auth/role-list-before", "role", "list"))
    add(C("auth/put-pub", "put", "pub", "public"))
    add(C("auth/enable", "auth", "enable"))
    add(C("auth/role-list-root", *root, "role", "list"))
    add(C("auth/user-get-root", *root, "user", "get", "root"))
    add(C("auth/get-no-user", "get", "foo"))
    add(C("auth/put-no-user", "put", "foo", "x"))
    add(C("auth/wrong-password", "--user", "alice:nope", "get", "pub"))
    add(C("auth/unknown-user", "--user", "mallory:x", "get", "pub"))
    add(C("auth/alice-put-prefix", *alice, "put", "app/x", "1"))
    add(C("auth/alice-get-prefix", *alice, "get", "app/", "--prefix"))
    add(C("auth/alice-get-pub", *alice, "get", "pub"))
    add(C("auth/alice-put-pub", *alice, "put", "pub", "mine"))
    add(C("auth/alice-get-foo", *alice, "get", "foo"))
    add(C("auth/alice-get-all", *alice, "get", "", "--from-key"))
    add(C("auth/alice-put-range", *alice, "put", "w3", "v"))
    add(C("auth/alice-put-range-end", *alice, "put", "w5", "v"))
    add(C("auth/alice-get-from-key", *alice, "get", "zzz", "--from-key"))
    add(C("auth/alice-del-prefix", *alice, "del", "app/", "--prefix"))
    add(C("auth/alice-txn-compare-forbidden", *alice, "txn",
          stdin=txn(['value("foo") = "bar"'], ["put app/y 1"], [])))
    add(C("auth/alice-txn-failure-forbidden", *alice, "txn",
          stdin=txn(['value("app/x") = "nope"'], ["put app/y 1"], ["put foo stolen"])))
    add(C("auth/alice-txn-ok", *alice, "txn",
          stdin=txn(['value("app/x") = "nope"'], ["put app/y 1"], ["get pub"])))
    add(C("auth/alice-watch-forbidden", *alice, "watch", "foo", timeout=1.5))
    add(C("auth/alice-compact", *alice, "compaction", "3"))
    add(C("auth/alice-user-list", *alice, "user", "list"))
    add(C("auth/alice-user-add", *alice, "user", "add", "eve:evepw"))
    add(C("auth/alice-user-get-self", *alice, "user", "get", "alice"))
    add(C("auth/alice-role-get-own", *alice, "role", "get", "app"))
    add(C("auth/alice-grant-self-root", *alice, "user", "grant-role", "alice", "root"))
    add(C("auth/alice-auth-disable", *alice, "auth", "disable"))
    add(C("auth/alice-defrag", *alice, "defrag"))
    add(C("auth/root-get-foo", *root, "get", "foo"))
    add(C("auth/root-revoke-perm", *root, "role", "revoke-permission", "app", "pub"))
    add(C("auth/root-revoke-perm-again", *root, "role", "revoke-permission", "app", "pub"))
    add(C("auth/alice-get-pub-revoked", *alice, "get", "pub"))
    add(C("auth/root-passwd", *root, "user", "passwd", "alice", "--interactive=false",
          stdin="newpw\n"))
    add(C("auth/alice-old-password", *alice, "get", "app/x"))
    add(C("auth/alice-new-password", "--user", "alice:newpw", "get", "app/x"))
    add(C("auth/root-delete-root", *root, "user", "delete", "root"))
    add(C("auth/root-revoke-root-role", *root, "user", "revoke-role", "root", "root"))
    add(C("auth/root-delete-root-role", *root, "role", "delete", "root"))
    add(C("auth/root-revoke-role", *root, "user", "revoke-role", "alice", "app"))
    add(C("auth/root-revoke-role-again", *root, "user", "revoke-role", "alice", "app"))
    add(C("auth/root-role-delete", *root, "role", "delete", "app"))
    add(C("auth/root-user-delete", *root, "user", "delete", "alice"))
    add(C("auth/root-user-delete-again", *root, "user", "delete", "alice"))
    add(C("auth/root-disable", *root, "auth", "disable"))
    add(C("auth/get-after-disable", "get", "foo"))
    add(C("auth/user-list-after", "user", "list"))
    return seq


# --------------------------------------------------------------------------------------
# Running and normalising
# --------------------------------------------------------------------------------------
class Server:
    def __init__(self, kind, binary, etcdctl, keep):
        self.kind = kind
        self.cluster = cl.Cluster(kind, 1, binary=binary, etcdctl=etcdctl, keep=keep,
                                  token="compat")
        self.etcdctl = etcdctl
        self.member = self.cluster.members[0]
        self.snapdir = os.path.join(self.cluster.workdir, "snap")
        os.makedirs(self.snapdir, exist_ok=True)
        # Stand-ins for ids captured from output: when a capture fails (the service is
        # missing), later commands still reach the server with a well-formed, unknown id.
        self.vars = {"snapdir": self.snapdir, "workdir": self.cluster.workdir,
                     "lease": "7e57000000000001", "learner": "7e57000000000002"}
        self.results = {}
        self.error = None

    def subst(self):
        """Literal strings that differ between the two servers -> placeholders."""
        m = self.member
        return [(self.snapdir, "<SNAPDIR>"), (self.cluster.workdir, "<WORKDIR>"),
                (m.client_url, "<CLIENT_URL>"), (m.peer_url, "<PEER_URL>"),
                (m.endpoint, "<CLIENT>"), (f"127.0.0.1:{m.peer_port}", "<PEER>")]

    def fmt(self, s):
        def rep(mo):
            return self.vars.get(mo.group(1), "UNSET_" + mo.group(1))
        return re.sub(r"\{([a-z_]+)\}", rep, s)

    def run_one(self, cmd):
        args = [self.fmt(a) for a in cmd.args]
        stdin = self.fmt(cmd.stdin) if cmd.stdin is not None and "{" in cmd.stdin[:4096] \
            else cmd.stdin
        eps = [self.member.endpoint]
        timeout = cmd.timeout or 15.0
        parts = []
        if cmd.during:
            box = {}
            th = threading.Thread(target=lambda: box.setdefault(
                "r", cl.run_etcdctl(self.etcdctl, eps, args, stdin=stdin, timeout=timeout)))
            th.start()
            for delay, dargs in cmd.during:
                time.sleep(delay)
                d = cl.run_etcdctl(self.etcdctl, eps, dargs, timeout=10.0)
                parts.append((" ".join(dargs), d))
            th.join(timeout + 10)
            r = box.get("r")
        else:
            r = cl.run_etcdctl(self.etcdctl, eps, args, stdin=stdin, timeout=timeout)
        for var, rx in cmd.capture:
            mo = re.search(rx, r.stdout)
            if mo:
                self.vars[var] = mo.group(1)
        return r, parts

    def run_all(self, seq):
        try:
            self.cluster.start(ready_timeout=20)
            st = self.cluster.status()
            mid = st[self.member]["header"]["member_id"]
            self.vars["member_hex"] = f"{mid:x}"
            for cmd in seq:
                r, parts = self.run_one(cmd)
                self.results[cmd.id] = render(r, parts, cmd, self)
        except Exception as e:  # reported, never crashes the suite
            self.error = f"{type(e).__name__}: {e}"
        finally:
            if self.member.alive():
                self.results["__server_alive_at_end"] = "alive"
            else:
                self.results["__server_alive_at_end"] = f"DEAD rc={self.member.proc.returncode}"
                self.results["__server_log_tail"] = self.member.log_tail(30)


JSON_NORM_KEYS = {"cluster_id", "member_id", "raft_term", "raftTerm", "raftIndex",
                  "raftAppliedIndex", "dbSize", "dbSizeInUse", "leader", "took", "ts",
                  "target", "ID"}
FIELDS_NORM_KEYS = ("ClusterID", "MemberID", "RaftTerm", "RaftIndex", "RaftAppliedIndex",
                    "DBSize", "DBSizeInUse", "Leader", "ID")


def norm_json(v, parent_key=None):
    if isinstance(v, dict):
        out = {}
        is_status = "dbSize" in v or "raftIndex" in v
        for k, x in v.items():
            if k in JSON_NORM_KEYS and not isinstance(x, (dict, list)):
                out[k] = f"<{k}>"
            elif k == "version" and is_status:
                out[k] = "<version>"
            elif k in ("lease", "Lease") and isinstance(x, int) and x != 0:
                out[k] = "<lease>"
            elif k == "id" and isinstance(x, int) and x != 0:  # lease timetolive
                out[k] = "<id>"
            elif k == "size" and isinstance(x, str):  # snapshot save's client log
                out[k] = "<size>"
            elif k in ("ttl",) and isinstance(x, int) and x > 0:
                out[k] = "<ttl>"
            elif k == "keys" and isinstance(x, list):  # a lease's keys: Go map order
                out[k] = sorted(norm_json(e, k) for e in x)
            else:
                out[k] = norm_json(x, k)
        return out
    if isinstance(v, list):
        return [norm_json(x, parent_key) for x in v]
    return v


def normalise(text, server, norm=()):
    for lit, ph in server.subst():
        if lit:
            text = text.replace(lit, ph)
    lines = []
    for line in text.split("\n"):
        s = line.strip()
        if s[:1] in "[{" and s[-1:] in "]}":
            try:
                lines.append(json.dumps(norm_json(json.loads(s)), sort_keys=True,
                                        ensure_ascii=False))
                continue
            except ValueError:
                pass
        for k in FIELDS_NORM_KEYS:
            line = re.sub(rf'^"{k}" : \d+$', f'"{k}" : <{k}>', line)
        line = re.sub(r'^"Version" : "[^"]*"$', '"Version" : <version>', line)
        line = re.sub(r'^"Lease" : [1-9]\d*$', '"Lease" : <lease>', line)
        line = re.sub(r"\b[0-9a-f]{12,16}\b", "<HEX>", line)
        # etcdctl pads ids to 16 columns ("Member %16x added to cluster %16x"):
        # a short id leaves spaces.
        line = re.sub(r"\b(Member|cluster) +<HEX>", r"\1 <HEX>", line)
        # Members come sorted by id, and ids differ between servers: sort the
        # names in an initial-cluster line.
        m = re.match(r'^(\s*ETCD_INITIAL_CLUSTER=")([^"]*)(")$', line)
        if m:
            line = m.group(1) + ",".join(sorted(m.group(2).split(","))) + m.group(3)
        # Table widths follow the ids' lengths (etcdctl prints ids without
        # leading zeros): squeeze the padding of table rules and cells.
        if line.lstrip().startswith(("+-", "|")):
            line = re.sub(r"-{2,}", "--", line)
            line = re.sub(r" {2,}", " ", line)
        line = re.sub(r"took = [0-9.]+[µnm]?s", "took = <DUR>", line)
        line = re.sub(r"\b0xc[0-9a-f]{5,}", "0xc<ADDR>", line)  # Go panic traces
        line = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)? ", "<TIME> ", line)
        if "ttl" in norm:
            line = re.sub(r"remaining\(\d+s\)", "remaining(<N>s)", line)
            # etcd lists a lease's keys in Go map order (random): sort them.
            line = re.sub(r"attached keys\(\[([^\]]*)\]\)",
                          lambda m: "attached keys([" + " ".join(sorted(m.group(1).split())) + "])",
                          line)
        if "status" in norm:
            f = line.split(", ")
            if len(f) >= 9:
                f[2] = "<version>"
                f[3] = "<dbsize>"
                f[6] = "<term>"
                f[7] = "<index>"
                f[8] = "<applied>"
                line = ", ".join(f)
        lines.append(line)
    if "sortlines" in norm:
        # Output ordered by member id, which differs between the servers.
        lines = sorted(l for l in lines if l.strip())
    text = "\n".join(lines)
    if "snapstatus" in norm:
        text = re.sub(r'"(hash|totalSize)": \d+', r'"\1": <\1>', text)
    return text


def render(r, parts, cmd, server):
    def block(title, res):
        out = [f"{title}exit: {res.returncode}" + ("  (timed out: SIGTERM)" if res.timed_out else "")]
        so = normalise(res.stdout, server, cmd.norm).rstrip("\n")
        se = normalise(res.stderr, server, cmd.norm).rstrip("\n")
        out.append("stdout:" + ("" if so else " (empty)"))
        out += ["  " + x for x in so.split("\n")] if so else []
        out.append("stderr:" + ("" if se else " (empty)"))
        out += ["  " + x for x in se.split("\n")] if se else []
        return out
    if r is None:
        return "NO RESULT (runner thread hung)"
    lines = block("", r)
    for name, d in parts:
        lines += block(f"[concurrent: etcdctl {name}] ", d)
    return "\n".join(lines)


def load_known(path):
    known = {}
    if not os.path.exists(path):
        return known
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            cid, _, reason = line.partition("#")
            known[cid.strip()] = reason.strip()
    return known


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bulwark", required=True, help="path to the bulwark binary")
    ap.add_argument("--etcd", default=shutil.which("etcd") or "etcd")
    ap.add_argument("--etcdctl", default=shutil.which("etcdctl") or "etcdctl")
    ap.add_argument("--report", help="also write the table and diffs to this file")
    ap.add_argument("--known", default=DEFAULT_KNOWN, help="known-differences file")
    ap.add_argument("--only", help="run only commands whose id matches this regex "
                    "(revisions may then differ from a full run)")
    ap.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    ap.add_argument("--verbose", action="store_true", help="print every command's output")
    args = ap.parse_args()

    t0 = time.monotonic()
    seq = build_sequence()
    if args.only:
        seq = [c for c in seq if re.search(args.only, c.id)]
    ids = [c.id for c in seq]
    assert len(ids) == len(set(ids)), "duplicate command ids"
    known = load_known(args.known)

    servers = [Server("etcd", args.etcd, args.etcdctl, args.keep),
               Server("bulwark", args.bulwark, args.etcdctl, args.keep)]
    threads = [threading.Thread(target=s.run_all, args=(seq,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    etcd, bw = servers
    for s in servers:
        s.cluster.stop()

    out = []
    fatal = False
    for s in servers:
        if s.error:
            out.append(f"ERROR: {s.kind}: {s.error}")
            fatal = True
    if etcd.error:
        out.append("etcd itself failed: the comparison is meaningless")

    rows = []
    diffs = []
    new_diffs = []
    fixed = []
    for c in seq:
        a = etcd.results.get(c.id, "NOT RUN")
        b = bw.results.get(c.id, "NOT RUN")
        if a == b:
            status = "PASS"
            if c.id in known:
                fixed.append(c.id)
        else:
            status = "DIFF (known)" if c.id in known else "DIFF (NEW)"
            if c.id not in known:
                new_diffs.append(c.id)
            d = "\n".join(difflib.unified_diff(a.split("\n"), b.split("\n"),
                                               f"etcd 3.4: {c.id}", f"bulwark: {c.id}",
                                               lineterm="", n=20))
            diffs.append((c.id, d, known.get(c.id)))
        rows.append((c.id, status))
        if args.verbose:
            out.append(f"=== {c.id}  args={c.args}\n--- etcd\n{a}\n--- bulwark\n{b}")

    for extra in ("__server_alive_at_end", "__server_log_tail"):
        if extra in bw.results and bw.results[extra] != "alive":
            out.append(f"bulwark server: {bw.results[extra]}")
            fatal = True

    w = max(len(r[0]) for r in rows) if rows else 10
    out.append(f"{'command':<{w}}  result")
    out.append("-" * (w + 16))
    for cid, status in rows:
        out.append(f"{cid:<{w}}  {status}")
    npass = sum(1 for r in rows if r[1] == "PASS")
    out.append("-" * (w + 16))
    out.append(f"{npass} PASS, {len(rows) - npass} DIFF ({len(new_diffs)} new, "
               f"{len(rows) - npass - len(new_diffs)} known) of {len(rows)} commands")
    for cid, d, reason in diffs:
        out.append("")
        out.append(f"==== DIFF {cid}" + (f"  [known: {reason}]" if reason else "  [NEW]"))
        out.append(d)
    if fixed:
        out.append("")
        out.append("Known differences that now PASS (remove them from the known list): "
                   + ", ".join(fixed))
    stale = [k for k in known if k not in ids]
    if stale and not args.only:
        out.append("Known-difference ids not in the sequence: " + ", ".join(stale))
    if new_diffs:
        out.append("")
        out.append("NEW differences (not in %s): %s" % (os.path.basename(args.known),
                                                        ", ".join(new_diffs)))
    out.append(f"elapsed {time.monotonic() - t0:.1f}s")
    text = "\n".join(out)
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    ok = not new_diffs and not fatal
    print("RESULT:", "OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
