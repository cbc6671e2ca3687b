"""A PyTorch module as a circuitsim :class:`~circuitsim.network.network.Network`.

:func:`from_torch` exports the module to ONNX with PyTorch's default exporter
(``torch.onnx.export(..., dynamo=True)``, which needs the ``onnxscript`` package) and,
when that exporter fails or writes something the importer refuses, with the legacy one
(``dynamo=False``); it then imports the file with
:func:`~circuitsim.network.onnx_import.load_network` and checks that the network computes
what the module computes on the example input. PyTorch is an optional dependency
(``pip install torch onnxscript``); nothing here imports it until :func:`from_torch` runs.

Public API
----------
from_torch, EXPORTERS
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .network import Network

EXPORTERS = ("auto", "dynamo", "legacy")
"""Choices of :func:`from_torch`'s ``exporter``: both in turn, or only one of them."""

AGREEMENT = 1e-4
"""Largest difference, relative to the output's largest magnitude, accepted between the
imported network and the module on the example input (float32 module, float64 network)."""


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _export(torch: Any, module: Any, example: Any, file: Path, dynamo: bool) -> None:
    """Write ``module`` to ``file`` with one exporter, keeping its chatter off the terminal."""
    quiet = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, tracer notes
            torch.onnx.export(module, (example,), str(file), dynamo=dynamo)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def from_torch(module: Any, example_input: Any, *, exporter: str = "auto", path: str | Path | None = None,
               name: str | None = None) -> Network:
    """Import a PyTorch module through ONNX.

    Parameters
    ----------
    module : torch.nn.Module
        The model; it is exported in eval mode (batch-norm statistics, no dropout) and
        left in the mode it was in.
    example_input : torch.Tensor or numpy.ndarray
        One batch of inputs of the shape the model takes (e.g. ``(1, 1, 28, 28)`` images);
        its first dimension is the batch. Values in the units the model was trained on.
    exporter : {"auto", "dynamo", "legacy"}
        ``"auto"`` tries PyTorch's default (dynamo) exporter first and the legacy
        TorchScript one when that fails; the others use only one.
    path : str or Path, optional
        Where to keep the ONNX file that was imported (default: a temporary file, removed).
    name : str, optional
        The network's name (default: the module's class name).

    Returns
    -------
    Network
        Its ``forward(x)`` equals the module's output in float64; ``network.exporter`` says
        which exporter wrote the imported file.

    Raises
    ------
    ConfigError
        PyTorch is missing, ``exporter`` is not one of :data:`EXPORTERS`, or neither
        exporter gives a model the importer takes (one line with each exporter's reason,
        naming every node that cannot be imported), or the imported network disagrees with
        the module on ``example_input``.
    """
    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    try:
        import torch
    except ImportError:
        raise ConfigError("from_torch needs PyTorch: pip install torch onnxscript") from None
    from .onnx_import import load_network

    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"from_torch takes a torch.nn.Module, got {type(module).__name__}")
    try:
        example = torch.as_tensor(np.asarray(example_input) if not torch.is_tensor(example_input)
                                  else example_input, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"example_input must be an array of numbers: {_first_line(exc)}") from None
    if example.ndim < 2:
        raise ConfigError(f"example_input needs a batch dimension first, got shape {tuple(example.shape)}")
    name = name or type(module).__name__
    order = {"auto": (True, False), "dynamo": (True,), "legacy": (False,)}[exporter]
    was_training = module.training
    module.eval()
    reasons = []
    try:
        with torch.no_grad():
            expected = module(example)
        expected = (expected[0] if isinstance(expected, (tuple, list)) else expected).detach().double().numpy()
        with tempfile.TemporaryDirectory(prefix="circuitsim-torch-") as tmp:
            for dynamo in order:
                label = "default exporter" if dynamo else "legacy exporter"
                file = Path(tmp) / ("dynamo" if dynamo else "legacy") / f"{name}.onnx"
                file.parent.mkdir()
                try:
                    _export(torch, module, example, file, dynamo)
                except Exception as exc:  # exporters raise many kinds (TorchExportError, ONNX errors, ...)
                    reasons.append(f"{label}: export failed: {_first_line(exc)}")
                    continue
                try:
                    net = load_network(file)
                except ConfigError as exc:
                    reasons.append(f"{label}: {exc}")
                    continue
                got = net.forward(example.double().numpy())
                scale = max(float(np.abs(expected).max()), 1e-30)
                if got.shape != expected.shape or np.abs(got - expected).max() > AGREEMENT * scale:
                    reasons.append(f"{label}: the imported network's output differs from the module's")
                    continue
                net.name = name
                net.exporter = "dynamo" if dynamo else "legacy"
                if path is not None:
                    _keep(file, Path(path))
                return net
    finally:
        module.train(was_training)
    raise ConfigError(f"cannot import {name} from PyTorch: {' | '.join(reasons)}")


def _keep(file: Path, target: Path) -> None:
    """Copy the ONNX file (and its external weights, if the exporter wrote them apart)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, target)
    data = file.with_name(file.name + ".data")
    if data.exists():
        import onnx

        model = onnx.load(str(file))
        onnx.save(model, str(target))  # weights inline: one self-contained file
