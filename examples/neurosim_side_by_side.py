"""DNN+NeuroSim's VGG-8 (CIFAR-10) on RRAM, side by side with circuitsim's costs of the same design.

Builds NeuroSim's benchmark network, VGG-8 for CIFAR-10 (conv 128-128-pool-256-256-pool-512-512-pool,
fc 1024-10; ``cfg_list['vgg8']`` and the classifier of ``Inference_pytorch/models/VGG.py`` in
neurosim/DNN_NeuroSim_V1.4), with random weights (accuracy is not the point: the costs do not
depend on what the weights are), maps it with :func:`~circuitsim.network.map_network` the way
NeuroSim's release test configures the chip, and prints circuitsim's area, latency, energy,
TOPS/W and TOPS next to the figures NeuroSim reports for that configuration (:data:`NEUROSIM`)::

    python examples/neurosim_side_by_side.py           # 6,890 tiles: ~100 s CPU, 5.2 GB peak
    python examples/neurosim_side_by_side.py --small   # widths / 8, 16 × 16 images: 2 s

The design, as NeuroSim states it (``Param.cpp`` and ``inference.py`` of DNN_NeuroSim_V1.4 at the
commit of the release test): RRAM cells of one bit (on/off ratio 17; circuitsim's
``rram-neurosim`` preset, 100 kΩ / 1.7 MΩ), 8-bit weights over 8 cells each, signed by an offset
and a reference ("dummy") column (``[mapping] negative = "offset"``), 8-bit inputs fed one bit per
cycle at the 0.5 V read voltage in 10 ns read pulses, 4-bit ADCs each shared by 8 columns,
128 × 128 arrays read with every row at once, 1T1R cells (4 F × 12 F) at the 22 nm node. circuitsim's
periphery costs are ISAAC's 32 nm components (the ``isaac-32nm-1t1r`` table, cells at 22 nm): it
has no 22 nm tables. The wires are ideal: IR drop changes what the columns read, not these costs.

Operations per image are NeuroSim's ``numComputation``: twice the multiply-accumulates of every
crossbar layer; TOPS/W = operations / energy per image, TOPS = operations / latency per image.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
import sys
import time
from typing import Any

import numpy as np

from circuitsim.devices import device_preset
from circuitsim.network import Network, auto_partition_layers, map_network
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.layers import Activation, Conv2d, Dense, Flatten, MaxPool
from circuitsim.network.mapped import MappedNetwork
from circuitsim.periphery.adc import ADCConfig
from circuitsim.periphery.costs import CostTable, cost_preset
from circuitsim.periphery.dac import DACConfig

VGG8 = ("C128", "C128", "M", "C256", "C256", "M", "C512", "C512", "M", "F1024", "F10")
"""NeuroSim's VGG-8: 3 × 3 convolutions ("same" padding, ReLU), 2 × 2 max pooling, then the
classifier (8192 → 1024, ReLU, 1024 → 10), no biases (``models/VGG.py`` of DNN_NeuroSim_V1.4)."""

TILE = 128
"""Rows and columns of one array (NeuroSim's ``numRowSubArray``, ``numColSubArray``)."""
WEIGHT_BITS = 8
"""Bits of every weight (``--wl_weight``), one per cell (``cellBit = 1``)."""
INPUT_BITS = 8
"""Bits of every input, one per read cycle (``--wl_activate``)."""
ADC_BITS = 4
"""ADC resolution (``levelOutput = 16``)."""
COLUMNS_PER_ADC = 8
"""Columns sharing one ADC (``numColMuxed``)."""
V_READ = 0.5
"""Read voltage of the cells, volts (``readVoltage``)."""
T_READ = 10e-9
"""Read pulse, seconds (``readPulseWidth``)."""
NODE = 22e-9
"""Technology node (``technode = 22``), metres."""

NEUROSIM_OPS = 1.23184e9
"""NeuroSim's operations per VGG-8 image (``numComputation``, the release test's 30th column)."""

NEUROSIM = {
    "area": 84.7747,  # mm², chipArea
    "area_array": 3.60536, "area_ic": 8.29649, "area_adc": 5.06475, "area_accumulation": 15.0639,
    "area_other": 52.7443,
    "latency": 194.225,  # µs, chipReadLatency: the pipelined system's clock cycle per image
    "energy_dynamic": 42.0048, "energy_leakage": 0.17702,  # µJ
    "energy_adc": 21.612, "energy_accumulation": 3.57428, "energy_other": 16.8186,
    "tops_w": 23.9369, "tops": 6.3423, "zeta": 1.22,
}
"""DNN+NeuroSim V1.4's figures for this design (RRAM, 22 nm, 1T1R, 1-bit cells, 4-bit ADC shared by
8 columns, 128 × 128 arrays, 8-bit weights and inputs, VGG-8 on CIFAR-10): the first row of
``Data/1.4_Release_test.csv`` in neurosim/DNN_NeuroSim_V1.4 (commit 9e6742c), its columns in the
order ``main.cpp`` writes them (chip area and its parts in µm², latency in ns, energies in pJ,
TOPS/W, TOPS, …); the release's ``Param.cpp`` sets ``pipeline = true``, ``validated = true``
(energy efficiency divided by ``zeta = 1.22``, the post-layout energy increase) and
``SARADC = false`` (a current-mode multi-level sense amplifier as the 4-bit ADC)."""


def vgg8(shrink: int = 1, side: int = 32, seed: int = 0) -> Network:
    """NeuroSim's VGG-8 with random weights (He-scaled uniform): every width divided by ``shrink``
    (the 10 classes kept), ``side × side`` RGB images."""
    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    channels, pixels = 3, side
    for kind in VGG8:
        if kind == "M":
            layers.append(MaxPool((2, 2)))
            pixels //= 2
            continue
        width = int(kind[1:]) if kind == "F10" else int(kind[1:]) // shrink
        if kind[0] == "C":
            fan_in = channels * 9
            weight = rng.uniform(-1, 1, (width, channels, 3, 3)) * math.sqrt(6 / fan_in)
            layers += [Conv2d(weight, None, padding=(1, 1, 1, 1)), Activation("relu")]
            channels = width
        else:
            if not any(isinstance(layer, Dense) for layer in layers):
                layers.append(Flatten())
                channels *= pixels * pixels
            layers.append(Dense(rng.uniform(-1, 1, (channels, width)) * math.sqrt(6 / channels)))
            if kind != "F10":
                layers.append(Activation("relu"))
            channels = width
    return Network(layers, (3, side, side), name=f"vgg8/{shrink}")


def circuit() -> CircuitConfig:
    """NeuroSim's release-test design as a circuit configuration (ideal wires)."""
    return CircuitConfig(device=device_preset("rram-neurosim"), v_read=V_READ, t_read=T_READ,
                         adc=ADCConfig(bits=ADC_BITS, kind="sar", columns_per_adc=COLUMNS_PER_ADC),
                         dac=DACConfig("bit-serial", INPUT_BITS, v_max=V_READ),
                         weight_bits=WEIGHT_BITS, negative="offset")


def costs() -> CostTable:
    """The ``isaac-32nm-1t1r`` cost table with its cells at NeuroSim's node (22 nm)."""
    return dataclasses.replace(cost_preset("isaac-32nm-1t1r"), feature_size=NODE)


def operations(net: Network) -> float:
    """Operations per image: twice every crossbar layer's multiply-accumulates (NeuroSim's count,
    ``numComputation`` of ``main.cpp``), from one blank image's pass."""
    macs: list[int] = []

    def mac(k: int, rows: np.ndarray) -> np.ndarray:
        w, _ = net.layers[k].matrix()
        macs.append(rows.shape[0] * w.shape[0] * w.shape[1])
        return np.zeros((rows.shape[0], w.shape[1]))

    net.forward(np.zeros((1,) + net.input_shape), mac)
    return 2.0 * float(sum(macs))


def adcs(mapped: MappedNetwork) -> int:
    """ADCs of the mapped network: one per ``columns_per_adc`` columns of every tile (reference included)."""
    per = mapped.circuit.adc.columns_per_adc if mapped.circuit.adc is not None else 1
    return sum(-(-b.n_columns // per) for c in mapped.crossbars for b in c.blocks)


def run(shrink: int = 1, side: int = 32, images: int = 1, seed: int = 0) -> dict[str, Any]:
    """Map the network and measure its costs on ``images`` random images (and as many calibration
    images): area (m², by part), latency (s), energy (J, by part), operations, TOPS/W, TOPS."""
    start = time.perf_counter()
    net = vgg8(shrink, side, seed)
    rng = np.random.default_rng(seed + 1)
    x_cal, x = rng.uniform(0, 1, (images, 3, side, side)), rng.uniform(0, 1, (images, 3, side, side))
    config, table = circuit(), costs()
    parts = auto_partition_layers(net, TILE, TILE, slices=WEIGHT_BITS, reference=True)
    mapped = map_network(net, parts, config, x_calibration=x_cal)
    area, latency, energy = mapped.area(table), mapped.latency(), mapped.energy_per_inference(x, table)
    ops = operations(net)
    return {"network": net, "mapped": mapped, "costs": table, "area": area, "latency": latency, "energy": energy,
            "operations": ops, "tops_w": ops / energy["energy_per_inference"] / 1e12,
            "tops": ops / latency["latency"] / 1e12, "seconds": time.perf_counter() - start,
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def _row(label: str, neurosim: str, here: str) -> str:
    return f"| {label} | {neurosim} | {here} |"


def table(result: dict[str, Any]) -> str:
    """The side-by-side Markdown table of a :func:`run` (NeuroSim's figures are for the full network)."""
    area, energy, latency = result["area"], result["energy"], result["latency"]
    ns, mapped = NEUROSIM, result["mapped"]
    mm2 = {k: v * 1e6 for k, v in area.items()}
    uj = {k: v * 1e6 for k, v in energy.items()}
    node = result["costs"].feature_size * 1e9
    rows = [
        "| | DNN+NeuroSim V1.4 (published) | circuitsim |",
        "|---|---|---|",
        _row("technology node", "22 nm, every circuit", f"cells at {node:g} nm (48 F² 1T1R); ADCs, DACs, shift-add "
             "ISAAC's 32 nm"),
        _row("memory cell", "RRAM 1T1R, 1 bit, on/off 17", "RRAM `rram-neurosim` (100 kΩ / 1.7 MΩ), 1 bit"),
        _row("weights, inputs", "8 bits on 8 cells, offset + dummy column; 8-bit bit-serial",
             f"{WEIGHT_BITS} bits on {WEIGHT_BITS} cells, `negative = \"offset\"`; {INPUT_BITS}-bit bit-serial"),
        _row("ADC", "4-bit current-mode multi-level sense amp, 8 columns each",
             f"{ADC_BITS}-bit SAR, `columns_per_adc = {COLUMNS_PER_ADC}`"),
        _row("arrays", "128 × 128 subarrays, 128 rows read at once",
             f"{mapped.n_tiles:,} tiles of ≤ {TILE} × {TILE}"),
        _row("operations per image", f"{NEUROSIM_OPS:.6g}", f"{result['operations']:.6g}"),
        _row("ADCs (conversions per image)", "not reported",
             f"{adcs(mapped):,} ({mapped.conversions_per_inference / 1e6:,.1f} M)"),
        _row("**area (mm²)**", f"**{ns['area']:.2f}**", f"**{mm2['area']:.2f}**"),
        _row("… arrays (cells)", f"{ns['area_array']:.2f}", f"{mm2['area_cells']:.2f}"),
        _row("… ADCs", f"{ns['area_adc']:.2f}", f"{mm2['area_adc']:.2f}"),
        _row("… accumulation (shift-add, adders)", f"{ns['area_accumulation']:.2f}", f"{mm2['area_shift_add']:.2f}"),
        _row("… DACs (word-line drivers)", "in other", f"{mm2['area_dac']:.3f}"),
        _row("… interconnect, buffers, decoders, other", f"{ns['area_ic'] + ns['area_other']:.2f}", "not counted"),
        _row("**latency (µs per image)**", f"**{ns['latency']:.1f}** (pipelined: the slowest layer)",
             f"**{latency['latency'] * 1e6:.1f}** (layer after layer)"),
        _row("**energy (µJ per image)**", f"**{ns['energy_dynamic'] + ns['energy_leakage']:.2f}** "
             f"(dynamic {ns['energy_dynamic']:.2f} + leakage {ns['energy_leakage']:.2f})",
             f"**{uj['energy_per_inference']:.2f}**"),
        _row("… ADCs", f"{ns['energy_adc']:.2f}", f"{uj['adc_energy']:.2f}"),
        _row("… accumulation (shift-add)", f"{ns['energy_accumulation']:.2f}", f"{uj['digital_energy']:.2f}"),
        _row("… arrays, DACs and other", f"{ns['energy_other']:.2f}",
             f"{uj['crossbar_energy']:.2f} arrays + {uj['dac_energy']:.2f} DACs"),
        _row("**TOPS/W**", f"**{ns['tops_w']:.2f}** (energy × {ns['zeta']} post-layout)", f"**{result['tops_w']:.2f}**"),
        _row("**TOPS**", f"**{ns['tops']:.2f}**", f"**{result['tops']:.2f}**"),
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="channels / 8 and 16 × 16 images (a quick run)")
    parser.add_argument("--images", type=int, default=1, help="random images measured (and as many calibrating)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the images")
    args = parser.parse_args(argv)
    shrink, side = (8, 16) if args.small else (1, 32)
    result = run(shrink, side, args.images, args.seed)
    text = table(result)
    print(text)
    print(f"\n{'VGG-8 / 8 on 16 × 16 images' if args.small else 'VGG-8'}: {result['mapped'].n_tiles:,} tiles, "
          f"{result['seconds']:.0f} s, peak memory {result['peak_gb']:.1f} GB", file=sys.stderr)
    return text


if __name__ == "__main__":
    sys.exit(main() and 0)
