"""Shared pytest set-up: the ``--ngspice`` option and the ``ngspice`` marker.

``--ngspice required`` (the README's test command) fails when ngspice is
missing; ``if_available`` (the default) skips ngspice tests then;
``disabled`` skips them always.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--ngspice", choices=["required", "if_available", "disabled"], default="if_available",
        help="how to treat tests marked ngspice",
    )


def pytest_collection_modifyitems(config, items):
    mode = config.getoption("--ngspice")
    if mode == "required":
        return
    reason = None
    if mode == "disabled":
        reason = "ngspice tests disabled (--ngspice disabled)"
    else:
        from circuitsim.errors import SimulatorNotFoundError
        from circuitsim.spice import require_ngspice

        try:
            require_ngspice(shared=True)
        except SimulatorNotFoundError as exc:
            reason = f"ngspice not available: {exc}"
    if reason:
        for item in items:
            if "ngspice" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def rng():
    """A seeded random generator."""
    import numpy as np

    return np.random.default_rng(12345)
