"""The package's layers: imports run one way and never in a circle (docs/ARCHITECTURE.md).

    cli -> demo -> {admm, export, bench, sensitivity} -> {runtime, check} -> {models, data, manifest, io}
        -> nm -> errors

Every ``import`` of an ``nxm_deploy`` module counts, at module level or inside a function (a lazy
import is still a dependency). Within a layer, two sibling subpackages (admm and export, runtime
and check) do not import each other; the bottom layer's modules may, without a cycle.

The benchmarks are held to the size limit too, and import their siblings and ``common`` by name
(Python puts a script's folder first on its path): none edits ``sys.path``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nxm_deploy

ROOT = Path(nxm_deploy.__file__).parent
PACKAGE = "nxm_deploy"

# rank of each top-level part of the package; a module may import only its own part or lower ranks
LAYERS: dict[str, int] = {
    "errors": 0,
    "version": 0,
    "lazy": 0,
    "nm": 1,
    "io": 2,
    "outputs": 2,
    "models": 2,
    "families": 2,
    "data": 2,
    "manifest": 2,
    "origin": 2,
    "runtime": 3,
    "check": 3,
    "admm": 4,
    "export": 4,
    "bench": 4,
    "sensitivity": 4,
    "serve": 4,
    "demo": 5,
    "cli": 6,
    "__main__": 7,
    "": 7,  # the package's own __init__: lazy re-exports of everything
}
BOTTOM = 2  # the one layer whose parts may import each other (acyclically)
# Registration: the registry imports the built-in methods, which import the registry to register.
CYCLE_EXCEPTIONS = {("nxm_deploy.admm.registry", "nxm_deploy.admm.methods")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


MODULES = _modules()
# the studies under benchmarks/ (not what they write under work/ and results/)
BENCHMARKS = {
    p.relative_to(ROOT.parent).as_posix(): p
    for p in sorted((ROOT.parent / "benchmarks").rglob("*.py"))
    if not {"work", "results"} & set(p.relative_to(ROOT.parent / "benchmarks").parts)
}


def _resolve(module: str, name: str | None) -> str:
    """The module an import statement depends on: ``from a import b`` is ``a.b`` when that is a module."""
    if name and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    while module not in MODULES:  # an attribute path: the module that defines it
        module = module.rsplit(".", 1)[0]
    return module


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name, None) for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{module}" if module else base
            if module.split(".")[0] == PACKAGE:
                found |= {_resolve(module, a.name) for a in node.names}
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_part_has_a_layer():
    assert {_part(m) for m in MODULES} <= set(LAYERS), "a new top-level module needs a place in LAYERS"


def test_imports_run_one_way():
    wrong = []
    for module, targets in GRAPH.items():
        src = _part(module)
        for target in targets:
            dst = _part(target)
            if dst == src:
                continue
            if LAYERS[dst] > LAYERS[src] or (LAYERS[dst] == LAYERS[src] != BOTTOM):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def _cycle() -> list[str] | None:
    graph = {m: {t for t in ts if (m, t) not in CYCLE_EXCEPTIONS} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return [*stack[stack.index(t) :], t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checker_sees_a_cycle_and_a_wrong_way_import():
    GRAPH["nxm_deploy.nm"].add("nxm_deploy.check.onnx")
    try:
        assert _cycle() is not None
        with pytest.raises(AssertionError, match=r"nxm_deploy\.nm imports nxm_deploy\.check\.onnx"):
            test_imports_run_one_way()
    finally:
        GRAPH["nxm_deploy.nm"].discard("nxm_deploy.check.onnx")


def test_help_and_the_public_names_load_neither_torch_nor_onnxruntime():
    code = (
        "import sys\n"
        "from nxm_deploy.cli import main\n"
        "import nxm_deploy.admm, nxm_deploy.export, nxm_deploy.bench, nxm_deploy.check, nxm_deploy.runtime\n"
        "import nxm_deploy.sensitivity\n"
        "from nxm_deploy.sensitivity import SensitivityConfig\n"
        "from nxm_deploy.export import ExportConfig\n"
        "from nxm_deploy.bench import BenchConfig\n"
        "from nxm_deploy.admm import TrainConfig\n"
        "heavy = sorted(m for m in ('torch', 'onnxruntime', 'onnx', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api():
    from nxm_deploy import BenchConfig, ExportConfig, Predictor, TrainConfig, nm, train
    from nxm_deploy.admm import TrainConfig as TrainConfig2
    from nxm_deploy.admm import train as train2
    from nxm_deploy.bench import BenchConfig as BenchConfig2
    from nxm_deploy.bench import bench
    from nxm_deploy.check import check
    from nxm_deploy.export import ExportConfig as ExportConfig2
    from nxm_deploy.export import export
    from nxm_deploy.runtime import Predictor as Predictor2

    assert (TrainConfig, train, ExportConfig, BenchConfig, Predictor) == (
        TrainConfig2,
        train2,
        ExportConfig2,
        BenchConfig2,
        Predictor2,
    )
    assert all(callable(f) for f in (train, export, check, bench, nm.project))


def test_no_module_is_over_about_350_lines():
    long = {name: n for name, path in {**MODULES, **BENCHMARKS}.items()
            if (n := len(path.read_text().splitlines())) > 370}  # fmt: skip
    assert not long, f"split these modules by job: {long}"


def sys_path_edits(source: str) -> list[int]:
    """The lines of ``source`` that touch ``sys.path`` (or import ``path`` from ``sys``, or call
    ``site.addsitedir``): a hidden way to import what should be a sibling or a package."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        name = node.value.id if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) else ""
        from_sys = isinstance(node, ast.ImportFrom) and node.module == "sys"
        if (name, getattr(node, "attr", None)) in {("sys", "path"), ("site", "addsitedir")} or (
            from_sys and any(a.name == "path" for a in node.names)
        ):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_benchmarks_do_not_edit_sys_path():
    wrong = [f"{name}:{line}" for name, path in BENCHMARKS.items()
             for line in sys_path_edits(path.read_text(encoding="utf-8"))]  # fmt: skip
    assert BENCHMARKS, "no benchmarks found"
    assert not wrong, "sys.path edited (import the sibling or common/ by name):\n" + "\n".join(wrong)


def test_the_sys_path_check_sees_an_insertion():
    assert sys_path_edits("import sys\nsys.path.insert(0, 'x')\nimport glue_methods\n") == [2]
    assert sys_path_edits("import sys\n\nsys.path = ['x', *sys.path]\n") == [3]
    assert sys_path_edits("from sys import path\npath.append('x')\n") == [1]
    assert sys_path_edits("import sys\nfrom common import runs\nprint(sys.argv)\n") == []


# ---- docstrings point only at files of this repository --------------------------------------------

REPO_FILES = [p.relative_to(ROOT.parent).as_posix() for p in ROOT.parent.rglob("*") if p.is_file()
              and ".git" not in p.parts and ".venv" not in p.parts]  # fmt: skip
# files the tool writes, not files of the repository: bench's report, a Triton Python-backend model
WRITTEN = {"report.md", "model.py"}
FILE_NAME = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.(?:md|py))\b")


def _docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)),
    ]
    out = []
    for node in nodes:
        doc = ast.get_docstring(node, clean=False)
        if doc:
            out.append((getattr(node, "lineno", 1), doc))
    return out


def missing_files(text: str) -> list[str]:
    """The ``*.md``/``*.py`` names in ``text`` that no file of the repository ends with."""
    names = [n for n in FILE_NAME.findall(text) if n.rsplit("/", 1)[-1] not in WRITTEN]
    return [n for n in names if not any(f == n or f.endswith("/" + n) for f in REPO_FILES)]


def test_docstrings_name_only_files_in_the_repository():
    wrong = [f"{name}:{line}: {missing}" for name, path in MODULES.items() for line, doc in _docstrings(path)
             for missing in missing_files(doc)]  # fmt: skip
    assert not wrong, "docstrings naming files that are not in the repository:\n" + "\n".join(wrong)


def test_the_docstring_check_sees_a_missing_file():
    assert missing_files("see STYLE.md habit 4 and DESIGN.md") == ["STYLE.md", "DESIGN.md"]
    assert missing_files("see docs/ARCHITECTURE.md, README.md and admm/run.py") == []


def test_backends_and_providers_are_named_in_one_place():
    """The backend and provider lists live in runtime/backends.py alone; every command reads them."""
    literals = ('("cpu", "cuda", "tensorrt")', '("ort", "trt")', '("ort", "trt", "torch")')
    homes = sorted(
        {
            name
            for name, path in MODULES.items()
            for lit in literals
            if lit in path.read_text(encoding="utf-8")
        }
    )
    assert homes == ["nxm_deploy.runtime.backends"], homes


# ---- tests mirror the packages --------------------------------------------------------------------

TESTS = ROOT.parent / "tests"
# subpackages tested elsewhere, and where: each command's CLI with its package, the server through
# the runtime's clients
TESTS_ELSEWHERE = {"cli": "test_bad_input.py", "serve": "runtime/test_serve.py"}


def test_every_subpackage_has_a_tests_package():
    subpackages = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())
    tested = {p.parent.name for p in TESTS.glob("*/__init__.py")} | set(TESTS_ELSEWHERE)
    missing = [n for n in subpackages if n not in tested]
    assert not missing, f"add tests/NAME/__init__.py and move NAME's tests there: {missing}"
    elsewhere = {n: where for n, where in TESTS_ELSEWHERE.items() if n in subpackages}
    assert elsewhere == TESTS_ELSEWHERE and all((TESTS / where).is_file() for where in elsewhere.values())
