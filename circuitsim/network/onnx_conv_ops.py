"""The ONNX operators of convolutional networks: ``Conv``, ``MaxPool``, ``AveragePool``.

``Conv`` (groups = 1, dilation 1, explicit pads or ``auto_pad`` NOTSET/VALID) becomes a
:class:`~circuitsim.network.layers.Conv2d` crossbar layer; the pools (2-D, ``ceil_mode`` 0, no
``Indices`` output) :class:`~circuitsim.network.layers.MaxPool` and
:class:`~circuitsim.network.layers.AvgPool`, digital. Used by
:mod:`circuitsim.network.onnx_import`.

Public API
----------
CONV_HANDLERS
"""

from __future__ import annotations

from typing import Any, Callable

from .layers import AvgPool, Conv2d, MaxPool


def _conv(b, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    w = b.const(node, node.input[1])
    if w.ndim != 4:
        b.fail(node, f"only 2-D convolutions are supported, the kernel has shape {w.shape}")
    if a.get("group", 1) != 1:
        b.fail(node, f"group = {a['group']} is not supported (only group = 1)")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        b.fail(node, f"dilations {a['dilations']} are not supported (only 1)")
    bias = b.const(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    b.add(node, Conv2d(w, bias, tuple(a.get("strides", (1, 1))), _pads(b, node, a)), [src])


def _pads(b, node, a: dict) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID"):
        b.fail(node, f"auto_pad = {auto} is not supported; export with explicit pads")
    top, left, bottom, right = tuple(a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
    return (int(top), int(left), int(bottom), int(right))


def _pool(b, node, a: dict) -> None:
    if a.get("ceil_mode", 0):
        b.fail(node, "ceil_mode = 1 is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        b.fail(node, f"dilations {a['dilations']} are not supported")
    if len(node.output) > 1 and node.output[1]:
        b.fail(node, "the Indices output is not supported")
    kernel = tuple(a["kernel_shape"])
    if len(kernel) != 2:
        b.fail(node, f"only 2-D pooling is supported, kernel_shape = {list(kernel)}")
    stride, pads = tuple(a.get("strides", (1, 1))), _pads(b, node, a)
    src = b.computed(node, node.input[0])
    if node.op_type == "MaxPool":
        b.add(node, MaxPool(kernel, stride, pads), [src])
    else:
        b.add(node, AvgPool(kernel, stride, pads, bool(a.get("count_include_pad", 0))), [src])


CONV_HANDLERS: dict[str, Callable[[Any, Any, dict], None]] = {"Conv": _conv, "MaxPool": _pool,
                                                               "AveragePool": _pool}
"""Importers of the convolutional operators, by ONNX operator (merged into the importer's)."""
