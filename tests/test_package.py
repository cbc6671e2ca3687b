"""Package-level promises: a light import and example decks that ngspice runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_is_light():
    code = (
        "import sys, circuitsim; "
        "heavy = [m for m in ('matplotlib', 'PySpice', 'dask', 'pandas', 'onnx', 'onnxruntime') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.ngspice
@pytest.mark.parametrize("deck", sorted((ROOT / "netlists").glob("*.cir")), ids=lambda p: p.name)
def test_example_decks_run(deck):
    from circuitsim.spice import get_backend

    text = deck.read_text()
    analysis = [ln for ln in text.splitlines() if ln.startswith((".op", ".tran"))][0]
    body = text.replace(analysis + "\n", "")
    (result,) = get_backend("subprocess").run(body, [[analysis[1:]]])
    assert result


# -- the layout: stages, no cycles, small modules -----------------------------------

PACKAGE = ROOT / "circuitsim"
STAGES = {  # a module may import only modules of its own stage or of lower ones
    "_version": 0, "errors": 0, "files": 0, "configs": 0, "devices": 0, "device_statistics": 0,
    "spice": 1, "tile": 1,
    "periphery": 2,
    "network": 3,
    "study": 4,
    "plots": 5, "cli": 5, "circuit_commands": 5, "search_commands": 5, "__init__": 5,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules of circuitsim that ``path`` imports (at module level or inside functions)."""
    import ast

    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("circuitsim"):
                continue
            for alias in node.names:  # "from . import native" names a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _is_module(candidate) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("circuitsim")}
    return found - {name}


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _stage(module: str) -> int:
    parts = module.split(".")
    return STAGES[parts[1] if len(parts) > 1 else "__init__"]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_lower_stages_never_import_higher_ones(path):
    own = _stage(_module_name(path))
    higher = sorted(m for m in _imports(path) if _stage(m) > own)
    assert not higher, f"{_module_name(path)} (stage {own}) imports {higher}"


def test_no_import_cycles():
    import graphlib

    graph = {_module_name(p): {m for m in _imports(p) if not m.endswith("__init__")} for p in MODULES}
    for name in graph:  # a package's __init__ re-exports its modules: not an edge back into it
        graph[name] = {m for m in graph[name] if m != "circuitsim" and not name.startswith(m + ".")}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small(path):
    assert len(path.read_text().splitlines()) <= 420, "split the module by concept"


def test_every_subpackage_lists_its_public_api():
    import importlib

    for init in sorted(PACKAGE.glob("*/__init__.py")):
        module = importlib.import_module(_module_name(init))
        assert "Public API" in (module.__doc__ or ""), init
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{init}: {name} in __all__ but not defined"


def test_version_and_plain_help():
    import circuitsim

    out = subprocess.run([sys.executable, "-m", "circuitsim.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"circuitsim {circuitsim.__version__}"
    text = subprocess.run([sys.executable, "-m", "circuitsim.cli", "--help"], capture_output=True,
                          text=True, check=True).stdout
    assert "``" not in text and ":func:" not in text and ":mod:" not in text
