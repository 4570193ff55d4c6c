#!/usr/bin/env python3
"""The project's Debian dependencies, from one table: tools/deps.txt.

  tools/deps.py packages     the packages to install, one a line (make deps)
  tools/deps.py check        every program, file and Python module of the table
                             is there; names the package of each one missing
  tools/deps.py audit        every program the tree calls comes from a package of
                             the table (or one of its dependencies) or from an
                             Essential package, and the table's programs come
                             from the packages it names (DepsTest)
  tools/deps.py self-test    audit, shown to fail on a table that lacks one
                             program the tree calls, and on one that names the
                             wrong package for a program

Why a scan: a program called by a test but installed only by hand on the
developer's machine (faketime, issue 24) passes CI there and fails on a fresh
machine. The audit reads the tree (Python lists that start a command line, shell
command words, C++ command vectors, CMake's find_program) and asks dpkg which
package owns each program it finds.
"""
import argparse
import ast
import glob
import os
import re
import subprocess
import sys
import tempfile

from self_test import judge

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "tools", "deps.txt")
# Programs are looked up where Debian's packages put them, never in
# /usr/local or a version manager's shims: those are not on a fresh machine.
SYSTEM_PATH = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
KINDS = ("program", "file", "module")


class Entry:
    def __init__(self, package, kind, what, line):
        self.package, self.kind, self.what, self.line = package, kind, what, line


def read_table(path):
    entries = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            text = raw.split("#", 1)[0].split()
            if not text:
                continue
            if len(text) < 3 or text[1] not in KINDS:
                sys.exit(f"{path}:{n}: expected 'package kind what...' with kind one of {KINDS}")
            for what in text[2:]:
                entries.append(Entry(text[0], text[1], what, n))
    return entries


def packages(entries):
    seen = []
    for e in entries:
        if e.package not in seen:
            seen.append(e.package)
    return seen


def which(program):
    if program.startswith("/"):
        return program if os.access(program, os.X_OK) else None
    for d in SYSTEM_PATH:
        p = os.path.join(d, program)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def present(e):
    if e.kind == "program":
        return which(e.what) is not None
    if e.kind == "file":
        return bool(glob.glob(e.what))
    r = subprocess.run(["/usr/bin/python3", "-c", f"import {e.what}"], capture_output=True)
    return r.returncode == 0


def cmd_check(args):
    missing = [e for e in read_table(args.table) if not present(e)]
    for e in missing:
        print(f"deps: {e.kind} {e.what} is missing: Debian package {e.package} "
              f"(apt-get install {e.package}) — {os.path.relpath(args.table, ROOT)}:{e.line}")
    if missing:
        return 1
    print(f"deps: all {len(read_table(args.table))} programs, files and modules of "
          f"{os.path.relpath(args.table, ROOT)} are present")
    return 0


# --- which package owns what -------------------------------------------------


class Dpkg:
    """What dpkg knows of the installed packages: owners, Essential, Depends."""

    def __init__(self):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package}\t${Status}\t${Essential}\t${Provides}\t"
             "${Depends}, ${Pre-Depends}\n"], capture_output=True, text=True, check=True).stdout
        self.installed, self.essential, self.depends, self.providers = set(), set(), {}, {}
        for line in out.splitlines():
            name, status, essential, provides, depends = line.split("\t")
            if not status.endswith(" installed"):
                continue
            self.installed.add(name)
            if essential == "yes":
                self.essential.add(name)
            self.depends[name] = _names(depends)
            for v in _names(provides):
                self.providers.setdefault(v, set()).add(name)

    def closure(self, package):
        """The package and every installed package it depends on, transitively."""
        todo, seen = [package], set()
        while todo:
            p = todo.pop()
            for q in [p] + sorted(self.providers.get(p, ())):
                if q in self.installed and q not in seen:
                    seen.add(q)
                    todo.extend(self.depends.get(q, ()))
        return seen

    @staticmethod
    def owner(path):
        """The package that ships `path` (trying the pre-/usr-merge name and
        the symlink's target too), or None."""
        tries = [path]
        if path.startswith("/usr/"):
            tries.append(path[4:])
        real = os.path.realpath(path)
        tries += [real, real[4:] if real.startswith("/usr/") else real]
        for t in tries:
            r = subprocess.run(["dpkg-query", "-S", t], capture_output=True, text=True)
            if r.returncode == 0:
                for line in r.stdout.splitlines():
                    pkg, _, where = line.partition(": ")
                    if where.strip() == t and "diversion" not in pkg:
                        return pkg.split(",")[0].split(":")[0].strip()
        return None


def _names(field):
    names = []
    for part in field.split(","):
        for alt in part.split("|"):
            alt = re.sub(r"\(.*?\)", "", alt).strip()
            if alt:
                names.append(alt.split(":")[0])
    return names


# --- the scan ------------------------------------------------------------------

# Calls whose first argument is a command line (a list whose first element is
# the program): a literal program there is a program even when it is absent.
EXEC_CALLS = {"run", "Popen", "check_output", "check_call", "call", "run_bounded", "spawn",
              "RunCommand", "Spawn", "execvp", "execv"}
SHELL_SKIP = {"sudo", "exec", "env", "time", "nohup", "!", "then", "do", "else", "if", "while",
              "until", "elif", "command"}
WORD = re.compile(r"^[A-Za-z_][\w.+-]*$")


class Call:
    def __init__(self, program, where, strict):
        self.program, self.where, self.strict = program, where, strict


def tree_files():
    r = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.split()
    found = []
    for d, dirs, files in os.walk(ROOT):
        dirs[:] = [x for x in dirs if not x.startswith((".git", "build"))]
        found += [os.path.relpath(os.path.join(d, f), ROOT) for f in files]
    return found


def scan_python(rel, text):
    calls = []
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        sys.exit(f"{rel}: cannot parse: {e}")
    # A list of strings is a command line when it is run, built up with +,
    # assigned to a name that says so, or carries a flag.
    strict_lists, command_lists = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            command_lists.update({id(node.left), id(node.right)})
        if isinstance(node, ast.Assign) and any(
                re.search(r"cmd|argv|command", getattr(t, "id", ""), re.I) for t in node.targets):
            command_lists.add(id(node.value))
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name == "which" and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                calls.append(Call(node.args[0].value, f"{rel}:{node.lineno}", False))
            if name in EXEC_CALLS and node.args and isinstance(node.args[0], (ast.List, ast.Tuple)):
                strict_lists.add(id(node.args[0]))
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            first = node.elts[0]
            flags = any(isinstance(x, ast.Constant) and isinstance(x.value, str)
                        and x.value.startswith("-") for x in node.elts[1:])
            command = id(node) in strict_lists or id(node) in command_lists or flags
            if command and isinstance(first, ast.Constant) and isinstance(first.value, str) \
                    and (WORD.match(first.value) or first.value.startswith("/")):
                calls.append(Call(first.value, f"{rel}:{node.lineno}", id(node) in strict_lists))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.match(r"^/(usr/)?s?bin/[\w.+-]+$", node.value):
            calls.append(Call(node.value, f"{rel}:{node.lineno}", True))
    return calls


def scan_shell(rel, lines):
    calls = []
    for n, line in lines:
        line = re.sub(r"(^|\s)#.*$", "", line)
        # Quoted text is data, except the command substitutions inside "...".
        line = re.sub(r"'[^']*'", " ", line)
        line = re.sub(r'"([^"]*)"', lambda m: " ; ".join(re.findall(r"\$\(([^)]*)", m.group(1))),
                      line)
        for piece in re.split(r"\|\||&&|[|;`(]|\$\(", line):
            words = piece.split()
            while words and (words[0] in SHELL_SKIP or "=" in words[0] or words[0] == "$(SUDO)"
                             or words[0].startswith("-")):
                words = words[1:]
            if words and (WORD.match(words[0]) or words[0].startswith("/usr/")):
                calls.append(Call(words[0], f"{rel}:{n}", False))
    return calls


def scan_cpp(rel, text):
    calls = []
    runs_programs = re.search(r"\b(execvp|RunCommand|Spawn)\b", text)
    for m in re.finditer(r'\{\s*"([\w.+-]+)"', text):
        if runs_programs:
            calls.append(Call(m.group(1), f"{rel}:{text.count(chr(10), 0, m.start()) + 1}", False))
    for m in re.finditer(r'"(/(?:usr/)?s?bin/[\w.+-]+)"', text):
        calls.append(Call(m.group(1), f"{rel}:{text.count(chr(10), 0, m.start()) + 1}", True))
    return calls


def scan_cmake(rel, text):
    calls = []
    for m in re.finditer(r"find_program\(\s*\w+\s+([\w.+-]+)", text):
        calls.append(Call(m.group(1), f"{rel}:{text.count(chr(10), 0, m.start()) + 1}", True))
    return calls


def scan(files):
    calls = []
    for rel in files:
        path = os.path.join(ROOT, rel)
        if not os.path.isfile(path):
            continue
        base = os.path.basename(rel)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            continue
        numbered = list(enumerate(text.splitlines(), 1))
        if rel.endswith(".py"):
            calls += scan_python(rel, text)
        elif rel.endswith(".sh") or rel == ".ci/run" or text.startswith("#!/bin/sh") \
                or text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash"):
            calls += scan_shell(rel, numbered)
        elif base == "Makefile":
            calls += scan_shell(rel, [(n, l) for n, l in numbered if l.startswith("\t")])
        elif rel.endswith((".cc", ".h")):
            calls += scan_cpp(rel, text)
        elif base == "CMakeLists.txt" or rel.endswith(".cmake"):
            calls += scan_cmake(rel, text)
    return calls


def cmd_audit(args):
    entries = read_table(args.table)
    dpkg = Dpkg()
    table_programs = {e.what: e for e in entries if e.kind == "program"}
    problems = []

    # The table tells the truth: each package is installed, each program in it
    # comes from the package named (or from one it depends on).
    for p in packages(entries):
        if p not in dpkg.installed:
            problems.append(f"package {p} of the table is not installed (make deps)")
    for e in table_programs.values():
        path = which(e.what)
        if path is None:
            problems.append(f"{e.what} is not installed; the table says {e.package} provides it")
            continue
        owner = dpkg.owner(path)
        if owner is None or owner not in dpkg.closure(e.package):
            problems.append(f"the table says {e.package} provides {e.what}, but {path} comes from "
                            f"{owner or 'no package'} ({os.path.relpath(args.table, ROOT)}:{e.line})")

    # Every program the tree calls comes from the table or an Essential package.
    calls = scan(tree_files())
    checked = {}
    for c in calls:
        name = os.path.basename(c.program)
        if name in table_programs:
            continue
        if c.program not in checked:
            path = which(c.program)
            owner = dpkg.owner(path) if path else None
            checked[c.program] = (path, owner)
        path, owner = checked[c.program]
        if path is None:
            if c.strict:
                problems.append(f"{c.where} runs {c.program}, which is not installed and which no "
                                f"line of the table provides")
            continue
        if owner in dpkg.essential:
            continue
        if owner is None:
            problems.append(f"{c.where} runs {c.program} ({path}), which no Debian package ships")
        else:
            problems.append(f"{c.where} runs {c.program} from package {owner}, which no line of "
                            f"{os.path.relpath(args.table, ROOT)} names: add '{owner}  program  "
                            f"{name}'")
    for p in problems:
        print(f"deps audit: {p}")
    programs = sorted({os.path.basename(c.program) for c in calls
                       if checked.get(c.program, (None,))[0] or c.program in table_programs})
    print(f"deps audit: {len(calls)} calls scanned, {len(programs)} programs, "
          f"{len(problems)} problems")
    return 1 if problems else 0


def cmd_self_test(args):
    """The audit catches the two mistakes it exists for."""
    entries_text = open(args.table).read()
    cases = [
        ("a program the tests call left out of the table",
         re.sub(r"(?m)^faketime\s+program\s+faketime\s*$", "", entries_text),
         "runs faketime from package faketime, which no line"),
        ("a program attributed to the wrong package",
         re.sub(r"(?m)^procps(\s+program\s+pgrep)", r"util-linux\1", entries_text),
         "the table says util-linux provides pgrep, but"),
    ]
    failed = 0
    for title, text, expect in cases:
        if text == entries_text:
            print(f"self-test: cannot plant '{title}': the table has changed shape")
            failed += 1
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text)
        r = subprocess.run([sys.executable, __file__, "audit", "--table", f.name],
                           capture_output=True, text=True)
        os.unlink(f.name)
        if not judge(title, r, expect):
            failed += 1
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["packages", "check", "audit", "self-test"])
    ap.add_argument("--table", default=TABLE)
    args = ap.parse_args()
    if args.command == "packages":
        print(" ".join(packages(read_table(args.table))))
        return 0
    return {"check": cmd_check, "audit": cmd_audit, "self-test": cmd_self_test}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
