"""The notebooks in ``notebooks/`` run from top to bottom without error.

Each notebook is executed with nbclient in a fresh ``python3`` kernel: the
ipykernel installed beside pytest, whose kernel spec names ``python``, which
jupyter_client replaces by this interpreter (``sys.executable``), so the kernel
runs this environment's circuitsim. The kernel's working directory and its
``TMPDIR`` are a pytest temporary folder: the notebooks keep their caches and
results under ``tempfile.mkdtemp()``, so nothing outside that folder is touched.
A failing cell fails the test with that cell's source and traceback.

Only the quickstart needs ngspice; the sweeps and the bring-your-own-model notebook (PyTorch and
scikit-learn, skipped without them) use the native engine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook tests need nbformat (pip install -e '.[test]')")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient (pip install -e '.[test]')")
pytest.importorskip("ipykernel", reason="notebook tests need ipykernel (pip install -e '.[test]')")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 300
"""Seconds one cell may take before the test fails (the notebooks take well under 60 s)."""


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    pytest.param("quickstart.ipynb", marks=pytest.mark.ngspice),
    "partition_study.ipynb",
    "adc_study.ipynb",
    "bring_your_own_model.ipynb",
])
def test_notebook_runs(name, tmp_path):
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") or cell.get("execution_count")
                   for cell in nb.cells if cell.cell_type == "code"), \
        f"{name} is stored with outputs; clear them before committing"

    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("CIRCUITSIM_CACHE", None)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT, allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as exc:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # IPython colours its tracebacks
        pytest.fail(f"{name}: a cell failed\n{plain}", pytrace=False)

    errors = [out for cell in nb.cells for out in cell.get("outputs", [])
              if out.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    figures = sum("image/png" in out.get("data", {}) for cell in nb.cells
                  for out in cell.get("outputs", []))
    assert figures > 0, f"{name} displayed no figure"
