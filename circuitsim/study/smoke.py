"""A spec reduced to a quick run that keeps its structure (``circuitsim sweep --smoke``).

The reduced spec has every section, every swept axis, the first and last partition entry
and compensation entry, and the first and last value of every axis; it trains on at most
:data:`TRAIN_IMAGES` images for one epoch, tests on :data:`TEST_IMAGES` images and runs at
most two device seeds; a spec with ``[cells]`` (every tile solved for every image) tests on
:data:`EXACT_TEST_IMAGES`. It is written out as TOML (the results folder's ``spec.toml``), so a
smoke run's folder is never mistaken for the full run's, and re-running the same command
resumes it. The test suite runs every shipped example this way, so that an example the
README quotes cannot break silently.

Public API
----------
TRAIN_IMAGES, TEST_IMAGES, EXACT_TEST_IMAGES, smoke_text
"""

from __future__ import annotations

import json
import math
import re
import tomllib

from ..errors import ConfigError

TRAIN_IMAGES = 200
"""Training images of a smoke run."""
TEST_IMAGES = 40
"""Test images of a smoke run."""
EXACT_TEST_IMAGES = 4
"""Test images of a smoke run whose tiles have a cell model (``[cells]``: solved for every image)."""

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _ends(values: list) -> list:
    """The first and the last of ``values`` (all of them when there are two or fewer)."""
    return list(values) if len(values) <= 2 else [values[0], values[-1]]


def smoke_text(text: str) -> str:
    """The TOML text of the smoke run of the spec ``text`` (see the module docstring).

    Raises
    ------
    ConfigError
        ``text`` is not valid TOML.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the spec is not valid TOML: {exc}") from None
    dataset = data.setdefault("dataset", {})
    test_images = EXACT_TEST_IMAGES if "cells" in data else TEST_IMAGES
    if isinstance(dataset, dict):
        dataset["limit"] = min(dataset.get("limit", test_images), test_images)
        dataset["train_limit"] = min(dataset.get("train_limit", TRAIN_IMAGES), TRAIN_IMAGES)
    network = data.get("network")
    trained = not (isinstance(network, dict) and ("onnx" in network or network.get("kind") == "onnx"))
    if trained:
        data.setdefault("network", {})
        if isinstance(data["network"], dict):
            data["network"]["epochs"] = 1
    if isinstance(data.get("compensation"), dict) and "epochs" in data["compensation"]:
        data["compensation"]["epochs"] = 1
    sweep = data.get("sweep")
    if isinstance(sweep, dict):
        for key, values in sweep.items():
            if isinstance(values, list):
                sweep[key] = _ends(values)
        if isinstance(sweep.get("seeds"), int):
            sweep["seeds"] = min(sweep["seeds"], 2)
    title = data.pop("title", "")
    lines = [f"# circuitsim sweep --smoke: at most {TRAIN_IMAGES} training and {test_images} test images, one "
             "epoch, the first and last value of every swept axis",
             f"title = {_value(f'{title} (smoke)' if title else 'smoke')}"]
    for section, table in data.items():
        if not isinstance(table, dict):
            lines.append(f"{_key(section)} = {_value(table)}")
            continue
        lines.append(f"\n[{_key(section)}]")
        lines.extend(f"{_key(key)} = {_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else "inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"a spec value of type {type(value).__name__} cannot be written back as TOML")
