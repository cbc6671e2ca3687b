"""The front door (issue 23): the README is a front page whose examples run, the docs site
builds with warnings as errors, and the docs' own-model examples run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def _run(code: str, cwd: Path) -> None:
    os.chdir(cwd)  # pytest's monkeypatch-free chdir: restored by the fixture below
    exec(compile(code, "<example>", "exec"), {"__name__": "__example__"})


@pytest.fixture
def in_tmp(tmp_path):
    here = Path.cwd()
    yield tmp_path
    os.chdir(here)


def test_readme_is_a_front_page_pointing_into_the_repository():
    text = README.read_text()
    assert len(text.splitlines()) < 300
    for section in ("## Two commands", "## One example", "## Documentation", "## Install"):
        assert section in text
    assert "bash scripts/run.sh" in text and "bash scripts/test.sh" in text
    installs = re.findall(r"pip install '?([\w-]+)", text)
    assert installs and set(installs) == {"aimc-circuitsim"}
    links = re.findall(r"\]\(((?:docs/|CHANGELOG)[^)#]*)", text)
    assert len(links) >= 8 and all((ROOT / link).is_file() for link in links), links
    name = re.search(r'^name = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)[1]
    assert name == "aimc-circuitsim"


def test_nothing_points_outside_the_repository():
    files = [README, *DOCS.rglob("*.md"), *(ROOT / "circuitsim").rglob("*.py"), *(ROOT / "notebooks").glob("*.ipynb")]
    bad = [str(f.relative_to(ROOT)) for f in files if re.search(r"\b(DESIGN|REFERENCE)\.md\b", f.read_text())]
    assert not bad, f"still pointing to DESIGN.md/REFERENCE.md outside the repository: {bad}"
    assert "## Layout" in (DOCS / "design.md").read_text()


def test_readme_commands_exist():
    from circuitsim.cli import _parser

    commands = set(_parser()._subparsers._group_actions[0].choices)
    quoted = {m for block in _blocks(README, "bash") for m in re.findall(r"^circuitsim (\S+)", block, flags=re.M)}
    assert quoted and quoted <= commands, quoted - commands


@pytest.mark.ngspice
def test_readme_example_runs(in_tmp, capsys):
    pytest.importorskip("torch")
    blocks = _blocks(README, "python")
    assert len(blocks) == 1
    _run(blocks[0], in_tmp)
    out = capsys.readouterr().out
    assert float(re.search(r"largest relative difference: (\S+)", out)[1]) < 1e-9
    assert "Network('Sequential'" in out


def test_own_model_examples_run(in_tmp):
    pytest.importorskip("torch")
    pytest.importorskip("skl2onnx")
    blocks = _blocks(DOCS / "tutorials" / "own-model.md", "python")
    assert len(blocks) >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the example's short fit: scikit-learn's convergence warning
        for block in blocks[:2]:  # the PyTorch and the scikit-learn examples
            _run(block, in_tmp)


def test_docs_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 0, "\n".join(lines[-20:])
    assert not [ln for ln in lines if ln.startswith("WARNING")]
    assert (tmp_path / "site" / "api" / "index.html").is_file()
    print(lines[-1])  # "INFO - Documentation built in ... seconds"
