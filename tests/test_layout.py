"""The layout holds: every module of the library imports with the runtime dependencies alone, the
library's imports form no circle, and the library never imports the harness or the jobs."""

import ast
import json
import subprocess
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"

# Run in a fresh interpreter: every installed distribution that the runtime dependencies of seqlab
# do not bring (directly or through their own requirements) is made unimportable, then every
# module of the package is imported. The test extras (pytest, selenium, pgserver, seaweedfs) are
# installed here, so this is what an install without them would see.
IMPORT_ALL = r'''
import importlib, importlib.abc, importlib.machinery, importlib.metadata as md, json, os, pkgutil, sys
from packaging.requirements import Requirement

def closure(name):
    seen, todo = set(), [(name, ())]
    while todo:
        dist, extras = todo.pop()
        try:
            d = md.distribution(dist)
        except md.PackageNotFoundError:
            continue
        key = d.metadata["Name"].lower().replace("_", "-")
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        for text in d.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (*extras, "")):
                if req.marker is not None and "extra" in str(req.marker) and not extras:
                    continue
                todo.append((req.name, tuple(sorted(req.extras))))
    return {k for k, _ in seen}

allowed = closure("seqlab")
# the files of every other installed distribution (Ray's vendored copies under ray/ stay reachable)
roots, outside = set(), set()
for dist in md.distributions():
    name = dist.metadata["Name"].lower().replace("_", "-")
    if name in allowed:
        continue
    outside.add(name)
    for f in dist.files or []:
        if f.parts[0].endswith((".dist-info", ".data")) or f.parts[0] == "..":
            continue
        roots.add(os.path.realpath(dist.locate_file(f.parts[0])))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        origin = os.path.realpath(spec.origin) if spec and spec.origin else ""
        if any(origin == r or origin.startswith(r + os.sep) for r in roots):
            raise ModuleNotFoundError(f"{name} is not a runtime dependency of seqlab", name=name)
        return None

sys.meta_path.insert(0, Block())
import seqlab
failed = {}
names = [m.name for m in pkgutil.walk_packages(seqlab.__path__, "seqlab.")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
reachable = []
for extra in ("selenium", "pgserver", "pytest"):
    try:
        importlib.import_module(extra)
        reachable.append(extra)
    except ModuleNotFoundError:
        pass
print(json.dumps({"modules": names, "failed": failed, "outside": sorted(outside), "reachable": reachable}))
'''


def test_every_module_imports_with_the_runtime_dependencies_only():
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # the test extras are installed here, and were out of reach
    assert {"pytest", "selenium", "pgserver"} <= set(out["outside"]) and out["reachable"] == []
    assert len(out["modules"]) > 40 and not out["failed"], out["failed"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: str) -> dict[str, set[str]]:
    """Every module of ``package`` -> the modules of ``package`` it imports, wherever in the file
    (an import inside a function counts: it still runs, and a circle through it still binds)."""
    files = {module_name(p): p for p in (LIB / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.split(".")[0] == package}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
                for a in node.names:  # `from pkg import submodule` imports the submodule
                    edges.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_library_imports_form_no_circle():
    graph = imports("seqlab")
    assert len(graph) > 40 and graph["seqlab.tune.search"] >= {"seqlab.train.driver", "seqlab.tune.space"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_library_never_imports_the_harness_or_the_jobs():
    for path in (LIB / "seqlab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("seqlab_tools", "jobs", "tests", "conftest") for n in names), path
