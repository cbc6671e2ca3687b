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
        "heavy = [m for m in ('matplotlib', 'PySpice', 'dask', 'pandas') if m in sys.modules]; "
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
