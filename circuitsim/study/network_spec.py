"""The ``[network]`` section of a spec: what kind of network a point has, its shapes and partitions.

``[network]`` describes one of four kinds of network (:func:`network_kind`, the one place the
kind is asked):

- ``"mlp"``: the MLP (the default, ``kind = "mlp"``; the fields of
  :class:`~circuitsim.network.mlp.MLPConfig`);
- ``"random"``: an MLP whose ``weights = "random"`` (cells drawn once and pruned; the fields of
  :class:`~circuitsim.network.random_weights.RandomNetworkConfig`);
- ``"cnn"`` (``kind = "cnn"``): a LeNet-5-class network trained in numpy (the fields of
  :class:`~circuitsim.network.cnn_training.CNNConfig`), e.g.
  ``{kind = "cnn", weights = "ternary", epochs = 10}``;
- ``"onnx"`` (``onnx = "path/model.onnx"``, relative to the working folder; a circuitsim ``.npz``
  weights file is read too): a network trained elsewhere. The dataset's images are fed in
  the model's input shape, so ``[dataset] side`` must match it;
- ``"snn"`` (``kind = "snn"``): a spiking network (:mod:`circuitsim.network.spiking`): the MLP's
  ``layers`` with LIF neurons after every layer, the fields of
  :class:`~circuitsim.network.spiking.SpikingConfig` (``time_steps``, ``threshold``, ``leak`` or
  ``tau``, ``reset``, ``refractory``, ``encoding``, ``score``, ``early_stop_margin``, ...) and its
  weights: ``"float"``/``"ternary"``/``"binary"`` trained as a ReLU MLP (the default activation of
  a spiking network) and run as spikes (fine-tuned through time with ``surrogate_epochs``), or
  ``"random"`` with the random network's fields.

Partitions give one ``h``/``v`` value per crossbar layer (Dense and Conv2d) and
``{auto = N}`` cuts every crossbar layer into tiles of at most ``N × N``.

Public API
----------
LAYER_NETWORK_KEYS, NETWORK_KINDS, LAYER_KINDS, network_kind, check_network_section, check_layer_network,
network_inputs, network_io, model_sha256, layer_partitions, layer_skeleton, crossbar_count, build_layer_network,
check_partition_entry, mlp_shapes, check_dataset, check_resistance_sum, spiking_weights, build_spiking_config,
check_spiking
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..network.cnn_training import CNNConfig, build_cnn, load_or_train_cnn
from ..network.mapped import auto_partition_layers, crossbar_shapes
from ..network.mapping import Partition
from ..network.mlp import MLPConfig
from ..network.onnx_import import load_network
from ..network.random_weights import RANDOM_KEYS
from ..tile.topology import partition_slices
from ..network.spiking import SPIKING_KEYS, SpikingConfig

CNN_KEYS = {f.name for f in dataclasses.fields(CNNConfig)}
MLP_KEYS = {f.name for f in dataclasses.fields(MLPConfig)}
LAYER_NETWORK_KEYS = {"kind", "onnx"} | CNN_KEYS
"""Keys of ``[network]`` beyond the MLP's."""

KINDS = ("mlp", "cnn", "onnx", "snn")
"""Values of ``[network] kind``."""
NETWORK_KINDS = ("mlp", "random", "cnn", "onnx", "snn")
"""What a point's network is: a trained MLP, a random-conductance network (an MLP whose
``weights = "random"``), a trained CNN, an ONNX model (or weights file) or a spiking network."""
LAYER_KINDS = ("cnn", "onnx")
"""Kinds whose network is a layer network built by :func:`build_layer_network`."""
_CLASSES = 10  # every dataset circuitsim loads has ten classes


def network_kind(section: dict) -> str:
    """One of :data:`NETWORK_KINDS` for a ``[network]`` table: the one place the kind is asked."""
    kind = section.get("kind", "onnx" if "onnx" in section else "mlp")
    if kind not in KINDS:
        raise ConfigError(f"[network] kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return "random" if kind == "mlp" and section.get("weights") == "random" else kind


def check_network_section(section: dict) -> None:
    """Check that ``[network]``'s keys belong to its kind (one line naming the first stray key)."""
    kind = network_kind(section)
    random = kind == "random" or (kind == "snn" and spiking_weights(section) == "random")
    allowed = {"mlp": MLP_KEYS, "random": MLP_KEYS | RANDOM_KEYS, "cnn": CNN_KEYS, "onnx": {"onnx"},
               "snn": MLP_KEYS | SPIKING_KEYS | (RANDOM_KEYS if random else set())}[kind] | {"kind"}
    if not random and RANDOM_KEYS & set(section):
        raise ConfigError(f"key {sorted(RANDOM_KEYS & set(section))[0]!r} applies only to a random network; "
                          "set [network] weights = \"random\" or remove it")
    stray = sorted(set(section) - allowed)
    if stray:
        raise ConfigError(f"key {stray[0]!r} does not apply to a [network] of kind {kind!r}; "
                          f"allowed: {', '.join(sorted(allowed))}")
    if kind == "onnx" and not isinstance(section.get("onnx"), str):
        raise ConfigError("[network] onnx must be the path of an .onnx (or .npz) file, as a string")


def spiking_weights(section: dict) -> str:
    """What a spiking ``[network]``'s weights are: ``"random"`` (drawn cells) or ``"mlp"`` (trained)."""
    return "random" if section.get("weights") == "random" else "mlp"


def build_spiking_config(section: dict) -> SpikingConfig:
    """The :class:`~circuitsim.network.spiking.SpikingConfig` of a spiking ``[network]``."""
    return SpikingConfig(**{k: v for k, v in section.items() if k in SPIKING_KEYS})


def check_spiking(config: dict) -> None:
    """Check a spiking network's neuron fields and that the dataset can feed its encoding (one
    line each, before anything runs)."""
    spiking = build_spiking_config(config["network"])
    dataset = config["dataset"]
    if spiking.encoding == "latency" and dataset.get("binarize"):
        raise ConfigError("network.encoding = \"latency\" cannot encode a binarized dataset: every pixel is 0 or 1, "
                          "so every spike would come at step 0; use encoding = \"rate\" or \"current\", or "
                          "binarize = false")
    random = spiking_weights(config["network"]) == "random"
    if spiking.surrogate_epochs and random and config["network"].get("training", "none") != "mask":
        raise ConfigError("network.surrogate_epochs trains a random network's mask through time: set "
                          "training = \"mask\" (its cells are drawn, not programmed) or remove surrogate_epochs")
    if spiking.surrogate_epochs and not random and config["network"].get("weights", "binary") != "float":
        raise ConfigError("network.surrogate_epochs fine-tunes float weights; set [network] weights = \"float\" "
                          "or remove surrogate_epochs")
    if spiking.encoding == "latency" and spiking.time_steps < 2:
        raise ConfigError("network.encoding = \"latency\" needs time_steps >= 2 (one step carries no latency); "
                          "give more steps or another encoding")


def _cnn_config(section: dict) -> CNNConfig:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in section.items() if k != "kind"}
    return CNNConfig(**values)


def _input_shape(config: dict) -> tuple[int, int, int]:
    side = config["dataset"].get("side", 20)
    return (1, side, side)


@lru_cache(maxsize=8)
def _onnx(path: str, digest: str):
    """The network of the model at ``path`` whose content hash is ``digest`` (a model replaced at the
    same path is read again)."""
    try:
        return load_network(path)
    except MemoryError:  # the import runs the model's layers on one image: its shapes, not the machine
        raise ConfigError(f"the ONNX model {path} needs more memory than the machine has for one image; "
                          "check its shapes (e.g. a Conv's pads)") from None


def _skeleton(config: dict):
    """The network of a configuration without training (its layer shapes)."""
    section = config["network"]
    if network_kind(section) == "onnx":
        return _onnx(section["onnx"], model_sha256(config))
    return build_cnn(_cnn_config(section), _input_shape(config), _CLASSES)


def layer_skeleton(config: dict):
    """The CNN (untrained) or ONNX network of a configuration: its layer shapes."""
    return _skeleton(config)


def check_layer_network(config: dict, partitions) -> None:
    """Check a CNN or ONNX configuration and its partition entries before anything runs."""
    net = _skeleton(config)
    shape = _input_shape(config)
    if network_kind(config["network"]) == "onnx" and math.prod(net.input_shape) != shape[1] * shape[2]:
        raise ConfigError(f"the ONNX model {config['network']['onnx']} takes inputs of shape {net.input_shape} "
                          f"but the dataset gives {shape[1]} × {shape[2]} images; set [dataset] side to match")
    for entry in partitions:
        check_partition_entry(entry, crossbar_shapes(net))


def mlp_shapes(section: dict) -> list[tuple[int, int, bool]]:
    """``(n_in, n_out, bias)`` of every layer of an MLP ``[network]`` (trained or random)."""
    layers, bias = section.get("layers", MLPConfig().layers), section.get("bias", True)
    return [(int(n_in), int(n_out), bool(bias)) for n_in, n_out in zip(layers[:-1], layers[1:])]


def check_partition_entry(entry: Any, shapes: list[tuple[int, int, bool]]) -> None:
    """The one check of a partitions entry against its network's crossbar layers
    (``(n_in, n_out, bias)`` each): ``{h = [...], v = [...]}`` with one positive integer per
    layer, at most its rows (bias row counted) and outputs, or ``{auto = N}``."""
    if entry == {"h": None, "v": None}:
        return
    if not isinstance(entry, dict) or not (set(entry) == {"h", "v"} or set(entry) == {"auto"}):
        raise ConfigError(f"a partitions entry must be {{h = [...], v = [...]}} or {{auto = N}}, got {entry!r}")
    if "auto" in entry:
        if not isinstance(entry["auto"], int) or isinstance(entry["auto"], bool) or entry["auto"] < 1:
            raise ConfigError(f"auto partition size must be a positive integer, got {entry['auto']!r}")
        return
    for name in ("h", "v"):
        values = entry[name]
        if not isinstance(values, list) or len(values) != len(shapes):
            raise ConfigError(f"partition {name} = {values!r} needs one value per crossbar layer ({len(shapes)})")
        for k, ((n_in, n_out, bias), value) in enumerate(zip(shapes, values)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"partition {name} = {values!r}: values must be positive integers")
            limit = n_in + int(bias) if name == "h" else n_out
            if value > limit:
                raise ConfigError(f"partition {name} = {values!r}: layer {k} has only {limit} "
                                  f"{'rows' if name == 'h' else 'outputs'}, fewer than {value} partitions")


def model_sha256(config: dict) -> str:
    """SHA-256 of the model file of ``[network] onnx`` (with its ``.data`` file of external
    weights, when there is one), or ``""`` for a network circuitsim trains.

    Raises
    ------
    ConfigError
        The model file cannot be read.
    """
    section = config["network"]
    if network_kind(section) != "onnx":
        return ""
    path = Path(section["onnx"])
    data = path.with_name(path.name + ".data")
    try:
        stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in (path, data) if f.is_file())
        return _file_sha256(str(path), stamp)
    except OSError as exc:
        raise ConfigError(f"cannot read the model {path}: {exc.strerror or exc}") from None


@lru_cache(maxsize=32)
def _file_sha256(path: str, stamp: tuple) -> str:
    """SHA-256 of ``path`` and its ``.data`` file (``stamp``: their times and sizes, so a file
    replaced since is read again)."""
    import hashlib

    h = hashlib.sha256()
    for file in (Path(path), Path(path + ".data")):
        if file.is_file():
            with open(file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _what(config: dict) -> str:
    section = config["network"]
    return f"the ONNX model {section['onnx']}" if network_kind(section) == "onnx" else "the network of [network]"


def network_inputs(config: dict) -> int:
    """Inputs per image of a configuration's network (the MLP's ``layers[0]``, or the CNN's or
    ONNX model's input shape), without running it."""
    section = config["network"]
    if network_kind(section) not in LAYER_KINDS:
        return int(section.get("layers", MLPConfig().layers)[0])
    return int(math.prod(_skeleton(config).input_shape))


def network_io(config: dict) -> tuple[int, int]:
    """Inputs per image and outputs (scores) of a configuration's network, from its layer shapes
    (the MLP's ``layers``, or the CNN or ONNX network built without training, run on one image)."""
    section = config["network"]
    if network_kind(section) not in LAYER_KINDS:
        layers = section.get("layers", MLPConfig().layers)
        return int(layers[0]), int(layers[-1])
    net = _skeleton(config)
    try:
        import numpy as np

        out = net.forward(np.zeros((1, *net.input_shape)))
    except ConfigError as exc:
        raise ConfigError(f"{_what(config)}: {exc}") from None
    except MemoryError as exc:  # one image, so the model's shapes (e.g. a Conv's pads), not the machine
        raise ConfigError(f"{_what(config)} needs more memory than the machine has for one image "
                          f"({str(exc)[:120]}); check its shapes (e.g. a Conv's pads)") from None
    except (ValueError, TypeError, ArithmeticError, IndexError) as exc:
        raise ConfigError(f"{_what(config)} cannot run on one image of shape {net.input_shape} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check the model") \
            from None
    return int(math.prod(net.input_shape)), int(out.size)


def layer_partitions(entry: dict, config: dict, slices: int = 1, reference: bool = False) -> tuple[Partition, ...]:
    """Partitions of a CNN or ONNX network for one partitions entry (``slices`` columns per output
    and a ``reference`` column per tile)."""
    net = _skeleton(config)
    if "auto" in entry:
        return tuple(auto_partition_layers(net, int(entry["auto"]), slices=slices, reference=reference))
    if entry.get("h") is None:
        return tuple(Partition() for _ in net.crossbar_layers)
    return tuple(Partition(h, v) for h, v in zip(entry["h"], entry["v"]))


def crossbar_count(config: dict) -> int:
    """Number of crossbar layers of a configuration's network."""
    if network_kind(config["network"]) not in LAYER_KINDS:
        return len(config["network"].get("layers", MLPConfig().layers)) - 1
    return len(_skeleton(config).crossbar_layers)


def build_layer_network(config: dict, dataset, cache_dir: str | Path):
    """The trained (cached) CNN or the loaded ONNX network of a configuration."""
    section = config["network"]
    if network_kind(section) == "onnx":
        return _onnx(section["onnx"], model_sha256(config))
    return load_or_train_cnn(dataset, _cnn_config(section), cache_dir)


def check_dataset(config: dict, data) -> None:
    """Refuse a network (MLP, CNN or ONNX model) whose inputs are not the dataset's input size
    or which has fewer outputs than the dataset has classes."""
    n_in = math.prod(data.x_train.shape[1:])
    network_in = network_inputs(config)
    network_out = network_io(config)[1] if network_in == n_in else 0  # run it only on the right inputs
    if network_kind(config["network"]) not in LAYER_KINDS:
        if network_in != n_in:
            raise ConfigError(f"network.layers[0] = {network_in} but dataset {data.name!r} has {n_in} inputs per "
                              f"image; set layers[0] = {n_in} (or change dataset.side)")
        if network_out < data.n_classes:
            raise ConfigError(f"network.layers[-1] = {network_out} outputs but dataset {data.name!r} has "
                              f"{data.n_classes} classes; set layers[-1] = {data.n_classes}")
        return
    what = (f"the ONNX model {config['network']['onnx']}" if network_kind(config["network"]) == "onnx"
            else "the CNN of [network]")
    if network_in != n_in:
        raise ConfigError(f"{what} takes {network_in} inputs per image but dataset {data.name!r} has {n_in}; "
                          "set [dataset] side (and crop) to match the network")
    if network_out < data.n_classes:
        raise ConfigError(f"{what} has {network_out} outputs but dataset {data.name!r} has {data.n_classes} "
                          f"classes: a class without an output can never be predicted; give a model with "
                          f"{data.n_classes} outputs")


def check_resistance_sum(config: dict, string_max: int, entries: list[tuple[dict, tuple[Partition, ...]]]) -> None:
    """One line unless a point of the resistance-sum topology is an MLP with binary weights, step
    activations and binarized images whose strings (rows of a horizontal partition, bias row
    included) are at most ``string_max`` cells for every partitions entry of ``entries``
    (``(entry, partitions per layer)``)."""
    net, data = config["network"], config["dataset"]
    if network_kind(net) in LAYER_KINDS:
        raise ConfigError(f"the resistance-sum topology maps binary MLPs; network kind {network_kind(net)!r} has "
                          "no step activations: use an MLP [network] (layers, weights = \"binary\", "
                          "activation = \"step\")")
    for key, value, fix in (("network.weights", net.get("weights", MLPConfig().weights), "binary"),
                            ("network.activation", net.get("activation", MLPConfig().activation), "step"),
                            ("dataset.binarize", data.get("binarize", False), True)):
        if value != fix:
            raise ConfigError(f"the resistance-sum topology stores ±1 weights and reads 0/1 inputs: {key} is "
                              f"{value!r}; set {key} = {json.dumps(fix)}")
    for entry, parts in entries:
        for k, ((n_in, _, bias), part) in enumerate(zip(mlp_shapes(net), parts)):
            rows = n_in + int(bias)
            longest = max(s.stop - s.start for s in partition_slices(rows, part.h))
            if longest > string_max:
                raise ConfigError(f"partitions {entry}: layer {k + 1} has strings of {longest} cells, longer than "
                                  f"the readout's range of {string_max} (circuit.string_max); use at least "
                                  f"{-(-rows // string_max)} horizontal partitions there")
