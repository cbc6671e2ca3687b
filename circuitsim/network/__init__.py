"""Networks on crossbars: data, training, mapping onto tiles, evaluation.

A trained network's weights become differential conductance pairs, are cut into
partitioned tiles of a topology, each tile's transfer matrix is extracted (and cached by
content), and the one mapped network runs the test images through the network as its tiles
compute it — whatever the network (MLP, random cells, CNN, ONNX) and the topology.

Modules
-------
datasets
    One loader for the MNIST sample, digits, Fashion-MNIST and IDX files.
mlp
    The numpy multilayer perceptron with float, ternary or binary weights, its
    training (straight-through estimator) and its cache.
network_cache
    One verified, atomic cache of every trained network (MLP, CNN, random, fine-tuned).
mapping
    Weights to conductances (differential pairs, bias rows) and partitions.
circuit_config
    ``CircuitConfig``: how a network becomes circuits (device, wires, engine,
    readout, gains, ADC).
realization
    Device statistics realized per (seed, layer, tile) (the tile cache and read noise
    are in :mod:`circuitsim.tile`).
topologies
    How a crossbar layer becomes tiles and how they combine (canonical, imac-sim).
mapped
    ``map_network``: any network on partitioned tiles under any topology, and the
    ``MappedNetwork`` it returns (accuracy, energy, ADCs, read noise).
adc_calibration
    Every tile's ADC: its own instance, its range set on calibration images.
compensation
    Remedies for the circuit's errors: per-column affine correction, low-rank adapters,
    hardware-aware fine-tuning (``compensate``).
conv
    im2col unrolling of convolutions and pooling windows.
backprop
    The reverse pass through any ``Network`` (``forward_trace``, ``backward``,
    ``softmax_cross_entropy``).
layers
    Layer types: Dense and Conv2d (on crossbars), pooling, flatten, reshape,
    batch-norm, activations, residual add.
network
    ``Network``: a sequence of layers (today's MLP is one), its ``.npz`` weights file.
random_weights, mask_training
    Random-conductance networks (cells drawn once, pairs pruned) and their edge-popup training.

Public API
----------
Dataset, load_dataset, DATASETS, MLPConfig, MLP, train_mlp, load_or_train,
Partition, LayerMapping, map_layer, auto_partition, CircuitConfig, TileCache,
MappedNetwork, CrossbarLayer, map_network, map_layers, Network, Dense, Conv2d, MaxPool, AvgPool,
GlobalAvgPool, Flatten, Reshape, BatchNorm, Activation, Add, auto_partition_layers,
RealizedTile, realize_tile, ReadNoise
"""

from .circuit_config import CircuitConfig
from .datasets import DATASETS, Dataset, load_dataset
from .crossbar_layer import CrossbarLayer
from .mapped import MappedNetwork, auto_partition_layers, map_layers, map_network
from .layers import (Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool,
                     Reshape)
from .mapping import LayerMapping, Partition, auto_partition, map_layer
from .mlp import MLP, MLPConfig, load_or_train, train_mlp
from .network import Network
from ..tile.read_noise import ReadNoise
from .realization import RealizedTile, realize_tile
from ..tile.tile_cache import TileCache

__all__ = [
    "Dataset", "load_dataset", "DATASETS", "MLPConfig", "MLP", "train_mlp", "load_or_train",
    "Partition", "LayerMapping", "map_layer", "auto_partition", "CircuitConfig", "TileCache",
    "MappedNetwork", "CrossbarLayer", "map_network", "map_layers", "Network", "Dense", "Conv2d", "MaxPool",
    "AvgPool", "GlobalAvgPool", "Flatten", "Reshape", "BatchNorm", "Activation", "Add",
    "auto_partition_layers",
    "RealizedTile", "realize_tile", "ReadNoise",
]
