#!/usr/bin/env python3
"""Layering and format checks for `make check` (run by `make test`).

Rules, on the quoted #include lines of engine/, connectors/ and portal/:
  1. A plug-in (connectors/) includes from the engine only the plug-in API,
     engine/kagari.h; anything else it needs comes from connectors/ helpers.
  2. The engine core includes no plug-in: only engine/registry.c, the one list of
     plug-ins, may include connectors/ headers.
  3. The portal (portal/) includes no connector either.
  4. No dependency circle between modules (a module is a .c with its .h; an edge is an
     include in either file).
  5. A module's .c includes its own header first.
  6. C sources are formatted with the repository's .clang-format (clang-format).

Usage: check.py [--no-format] [--self-test] [ROOT]
Prints each violation as "file: message" and exits 1 when there is any.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

LAYERED = ("engine", "connectors", "portal")
FORMATTED = ("engine", "connectors", "portal", "tests/unit", "tests/fuzz", "tests/mock",
             "tests/plugin")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
PLUGIN_API = "engine/kagari.h"
REGISTRY = "engine/registry.c"


def sources(root, folders, exts=(".c", ".h")):
    out = []
    for folder in folders:
        d = os.path.join(root, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(exts):
                out.append(folder + "/" + name)
    return out


def includes(root, path):
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
        return INCLUDE.findall(f.read())


def module(path):
    return path.rsplit(".", 1)[0]


def check_rules(root):
    errors = []
    graph = {}
    for path in sources(root, LAYERED):
        folder = path.split("/", 1)[0]
        incs = includes(root, path)
        for inc in incs:
            if folder == "connectors" and inc.startswith("engine/") and inc != PLUGIN_API:
                errors.append("%s: includes %s; a connector may include only %s from the "
                              "engine" % (path, inc, PLUGIN_API))
            if folder == "engine" and inc.startswith("connectors/") and path != REGISTRY:
                errors.append("%s: includes %s; only %s may name a plug-in"
                              % (path, inc, REGISTRY))
            if folder == "portal" and inc.startswith("connectors/"):
                errors.append("%s: includes %s; the portal uses no connector" % (path, inc))
            if module(inc) != module(path) and inc.split("/", 1)[0] in LAYERED:
                graph.setdefault(module(path), set()).add(module(inc))
        own = module(path) + ".h"
        if path.endswith(".c") and os.path.exists(os.path.join(root, own)):
            if not incs or incs[0] != own:
                errors.append("%s: its first include must be its own header %s" % (path, own))
    for cycle in cycles(graph):
        errors.append("%s: dependency circle: %s" % (cycle[0], " -> ".join(cycle + [cycle[0]])))
    return errors


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan), each as a
    path through it, smallest module first."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(path_through(graph, sorted(comp)))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def path_through(graph, comp):
    """A circle inside comp that starts at its first module (breadth-first back to it)."""
    members, start = set(comp), comp[0]
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path))
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def check_format(root):
    tool = shutil.which("clang-format")
    if tool is None:
        return ["clang-format: not installed (scripts/install-deps.sh installs it)"]
    files = sources(root, FORMATTED)
    if not files:
        return []
    r = subprocess.run([tool, "--dry-run", "--Werror", "--style=file"] + files, cwd=root,
                       capture_output=True, text=True)
    if r.returncode == 0:
        return []
    bad = sorted(set(re.findall(r"^([^:\s]+\.[ch]):\d+:\d+: (?:error|warning)", r.stderr, re.M)))
    return ["%s: not formatted as .clang-format says (make format)" % f for f in bad] or \
        [r.stderr.strip()[:2000]]


def self_test():
    """Each rule must catch its violation on a small tree, and pass a clean one."""
    cases = {
        "clean": ({"engine/a.c": '#include "engine/a.h"\n#include "engine/b.h"\n',
                   "engine/a.h": "", "engine/b.c": '#include "engine/b.h"\n', "engine/b.h": "",
                   "connectors/x.c": '#include "connectors/x.h"\n#include "engine/kagari.h"\n',
                   "connectors/x.h": '#include "engine/kagari.h"\n',
                   "engine/registry.c": '#include "engine/registry.h"\n'
                                        '#include "connectors/x.h"\n',
                   "engine/registry.h": ""}, None),
        "connector reaches into the engine": (
            {"connectors/x.c": '#include "connectors/x.h"\n#include "engine/run.h"\n',
             "connectors/x.h": ""}, "a connector may include only"),
        "engine names a plug-in": (
            {"engine/run.c": '#include "engine/run.h"\n#include "connectors/call.h"\n',
             "engine/run.h": ""}, "only engine/registry.c may name a plug-in"),
        "circle": ({"engine/a.c": '#include "engine/a.h"\n#include "engine/b.h"\n',
                    "engine/a.h": "", "engine/b.h": "",
                    "engine/b.c": '#include "engine/b.h"\n#include "engine/c.h"\n',
                    "engine/c.h": "", "engine/c.c": '#include "engine/c.h"\n#include "engine/a.h"\n'},
                   "dependency circle: engine/a -> engine/b -> engine/c -> engine/a"),
        "own header first": ({"engine/a.c": '#include "engine/b.h"\n#include "engine/a.h"\n',
                              "engine/a.h": "", "engine/b.h": ""}, "its own header"),
    }
    failed = 0
    for name, (files, want) in cases.items():
        d = tempfile.mkdtemp()
        try:
            for rel, text in files.items():
                os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(d, rel), "w") as f:
                    f.write(text)
            errs = check_rules(d)
        finally:
            shutil.rmtree(d)
        ok = (not errs) if want is None else any(want in e for e in errs)
        if not ok:
            failed += 1
            print("check self-test %s: failed: %r" % (name, errs))
    return failed


def main(argv):
    root = "."
    fmt = True
    for a in argv:
        if a == "--no-format":
            fmt = False
        elif a == "--self-test":
            n = self_test()
            print("check self-test: %s" % ("ok" if n == 0 else "%d failed" % n))
            if n:
                return 1
        else:
            root = a
    errors = check_rules(root)
    if fmt:
        errors += check_format(root)
    for e in errors:
        print(e)
    print("check: %s" % ("ok" if not errors else "%d problem(s)" % len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
