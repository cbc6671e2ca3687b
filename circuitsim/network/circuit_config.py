"""How a network becomes circuits: the circuit configuration of a study.

One frozen dataclass gathers what the evaluator needs to turn a trained network into
tiles and read them: the memory cell, the wires, the read voltage and pulse, the engine
that extracts each tile's transfer matrix, the readout (current or charge mode), the
amplifier gains and the ADC after every tile.

Public API
----------
CircuitConfig, READOUTS, NEGATIVES
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from ..devices import Device, Wires
from ..errors import ConfigError
from ..periphery.adc import ADCConfig
from ..periphery.dac import DACConfig, check_dac
from ..periphery.energy import ISAAC_32NM, ADCEnergyTable
from ..spice import BACKENDS, Backend
from ..tile.cell_mapping import map_conductance
from ..tile.cells import CellModel
from ..tile.checks import R_MAX, V_MAX
from ..tile.crossbar import TIA, Tile
from ..tile.extract import ENGINES, Engine

Readout = Literal["current", "charge", "charge-passive", "sense"]
"""How a tile is read: virtual-ground currents, an op-amp integrator, a sampling capacitor, or the
currents through sense resistors to ground (no virtual ground)."""
Topology = Literal["canonical", "imac-sim", "resistance-sum"]
"""A layer topology (:mod:`circuitsim.network.topologies`)."""
TOPOLOGIES: tuple[str, ...] = get_args(Topology)
NeuronReference = Literal["unpartitioned", "partitioned"]
"""The ideal circuit that sets imac-sim's neuron gains."""
NEURON_REFERENCES: tuple[str, ...] = get_args(NeuronReference)
Negative = Literal["differential", "offset"]
"""How a signed weight is held (:mod:`circuitsim.network.mapping`): a pair of cells, or one cell at
an offset conductance and a reference column per tile subtracted after the ADCs."""
NEGATIVES: tuple[str, ...] = get_args(Negative)


@dataclass(frozen=True)
class CircuitConfig:
    """How a network becomes circuits."""

    device: Device = field(default_factory=lambda: Device(8.49e3, 25.46e3, 2, "sot-mram-amin2022"))
    """Memory cell (conductance range and levels)."""
    wires: Wires = field(default_factory=Wires)
    """Interconnect parasitics per segment."""
    v_read: float = 0.8
    """Input voltage for an activation of 1 (the supply, Vdd), volts."""
    engine: Engine = "native"
    """Engine extracting each tile's ``T``: ``"native"`` or ``"ngspice"``."""
    backend: Backend = "shared"
    """ngspice backend when ``engine == "ngspice"``."""
    gains: tuple[float, ...] | None = None
    """Differential-amplifier gains per layer (dimensionless, applied to the normalized
    sums); ``None`` uses the gains the network was trained with."""
    adc: ADCConfig | None = None
    """ADC after every tile output (its range is calibrated per tile); None: no ADC."""
    t_read: float = 10e-9
    """Duration of the read pulse, seconds (crossbar energy = supply power × t_read)."""
    adc_energy: ADCEnergyTable = ISAAC_32NM
    """Energy per conversion by ADC resolution."""
    readout: Readout = "current"
    """``"current"`` (virtual ground, tiles by ``engine``), ``"charge"`` (op-amp integrator),
    ``"charge-passive"`` (sampling capacitor; charge readouts run ngspice transients) or
    ``"sense"`` (every bit line ends in ``r_sense`` to ground and the output is the current
    through it, ``V / r_sense``: the bit lines rise with the currents; tiles by ``engine``)."""
    r_sense: float = 100.0
    """``readout = "sense"``: the sense resistor from every bit line's end to ground, ohm."""
    t_int: float = 10e-9
    """Charge-mode integration window, seconds."""
    c_int: float = 1e-12
    """Charge-mode integration (or sampling) capacitance, farads."""
    topology: Topology = "canonical"
    """Layer topology (:mod:`circuitsim.tile.topology`): ``"canonical"`` (tiles of docs/design.md,
    partial sums added), ``"imac-sim"`` (IMAC-Sim's layer circuit, its difference
    amplifiers and averaging) or ``"resistance-sum"`` (Jung et al.'s MRAM strings: binary
    weights and 0/1 inputs, cells in series; :mod:`circuitsim.tile.resistance_sum`);
    :mod:`circuitsim.network.topologies`."""
    amp_gains: tuple[float, ...] | None = None
    """``imac-sim``: difference-amplifier gains per layer (``R_feedback / R_in``);
    ``None`` gives IMAC-Sim's 30 for every layer but the last and 10 for the last."""
    opamp_gain: float = 1e6
    """``imac-sim``: open-loop gain of the amplifiers' op-amps, V/V."""
    dac: DACConfig = field(default_factory=DACConfig)
    """Input stage of every crossbar layer (:mod:`circuitsim.periphery.dac`); the default drives
    ``h · v_read`` and refuses a word line above ``device.v_read_max``."""
    weight_bits: int | None = None
    """Bits of weight magnitude (the sign is the differential pair's; with ``negative = "offset"``
    the bits of the shifted unsigned code, :func:`~circuitsim.network.mapping.offset_weights`), sliced over
    ``ceil(weight_bits / log2(device.levels))`` cells per weight, each slice its own columns
    shift-added after its ADC (:func:`~circuitsim.network.mapping.sliced_weights`); None: each
    weight on one pair, rounded to the device's levels."""
    negative: Negative = "differential"
    """Signed weights: ``"differential"`` (a pair of cells per weight and slice, ``G+ - G-``) or
    ``"offset"`` (one cell per weight and slice at an offset conductance, weight 0 at the
    reference level, and one reference column per tile whose ADC code is subtracted from every
    column's; :func:`~circuitsim.network.mapping.offset_weights`)."""
    neuron_reference: NeuronReference = "unpartitioned"
    """``imac-sim``: the ideal circuit (no wire resistance) whose pre-activation scale sets the
    neurons' gains: ``"unpartitioned"`` (one tile per layer: fixed neurons for every
    partitioning) or ``"partitioned"`` (the same partitions: only the wires differ)."""

    cells: CellModel | None = None
    """The model of the tiles' cells (:mod:`circuitsim.tile.cells`; parameters that are not the
    state, scalars) or None: linear cells. A nonlinear model's tiles are solved exactly for every
    image (canonical: :mod:`~circuitsim.network.nonlinear_tiles`; imac-sim: :mod:`~circuitsim.network.nonlinear_layers`)."""

    fet_r_on: float = 500.0
    """``resistance-sum``: on resistance of a cell's bypass FETs, ohm."""
    fet_r_off: float = 1e9
    """``resistance-sum``: off resistance of a cell's bypass FETs, ohm."""
    string_max: int = 64
    """``resistance-sum``: longest string (cells per partition, bias row included) the readout
    takes; the paper's array has 64 cells per column."""
    mtj_ra_spread: float = 0.0
    """``resistance-sum``: device-to-device spread of the MTJs' resistance–area product
    (lognormal, relative sigma); scales an MTJ's parallel and antiparallel resistance together."""
    mtj_tmr_spread: float = 0.0
    """``resistance-sum``: device-to-device spread of the MTJs' TMR ratio (normal, relative
    sigma of ``r_high / r_low - 1``)."""

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise ConfigError(f"circuit.readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")
        self._check_sense()
        for name in ("t_int", "c_int"):
            if not (0 < getattr(self, name) < float("inf")):
                raise ConfigError(f"circuit.{name} must be > 0, got {getattr(self, name)!r}")
        if not (0 < self.t_read < float("inf")):
            raise ConfigError(f"circuit.t_read must be > 0 seconds, got {self.t_read!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"circuit.engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not (0 < self.v_read <= V_MAX):
            raise ConfigError(f"circuit.v_read must be > 0 and <= {V_MAX:g} volts, got {self.v_read!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"circuit.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.topology not in TOPOLOGIES:
            raise ConfigError(f"circuit.topology must be one of {', '.join(TOPOLOGIES)}, got {self.topology!r}")
        if self.topology == "resistance-sum" and self.readout != "current":
            raise ConfigError("circuit.topology = resistance-sum reads its strings with its own resistance "
                              "readout: use readout = \"current\" (the default)")
        for name in ("fet_r_on", "fet_r_off"):
            if not (0 < getattr(self, name) < float("inf")):
                raise ConfigError(f"circuit.{name} must be > 0 ohm, got {getattr(self, name)!r}")
        if isinstance(self.string_max, bool) or int(self.string_max) != self.string_max or self.string_max < 1:
            raise ConfigError(f"circuit.string_max must be a positive integer, got {self.string_max!r}")
        for name in ("mtj_ra_spread", "mtj_tmr_spread"):
            if not (0 <= getattr(self, name) < 1):
                raise ConfigError(f"circuit.{name} must be a relative sigma in [0, 1), got {getattr(self, name)!r}")
        if self.topology == "imac-sim" and (self.readout != "current" or self.adc is not None):
            raise ConfigError("circuit.topology = imac-sim feeds its difference amplifiers straight into analog "
                              "neurons (no partial sums to digitize or integrate): use readout = \"current\" and no "
                              "[adc] section, or the canonical topology")
        if self.neuron_reference not in NEURON_REFERENCES:
            raise ConfigError("circuit.neuron_reference must be unpartitioned or partitioned, "
                              f"got {self.neuron_reference!r}")
        if not (0 < self.opamp_gain < float("inf")):
            raise ConfigError(f"circuit.opamp_gain must be > 0, got {self.opamp_gain!r}")
        if not isinstance(self.dac, DACConfig):
            raise ConfigError("circuit.dac must be a circuitsim.periphery.dac.DACConfig")
        allowed = self.device.v_read_max
        if allowed is not None and self.dac.kind == "none" and self.v_read > allowed:
            raise ConfigError(f"circuit.v_read = {self.v_read:g} V is above the device's allowed read voltage "
                              f"{allowed:g} V (the bias row is driven at v_read); set v_read <= {allowed:g}")
        check_dac(self.dac, self.v_read, allowed)
        if self.weight_bits is not None and (isinstance(self.weight_bits, bool) or not isinstance(self.weight_bits, int)
                                             or not 1 <= self.weight_bits <= 16):
            raise ConfigError(f"[mapping] weight_bits must be an integer 1 .. 16, got {self.weight_bits!r}")
        if self.topology != "canonical" and (self.weight_bits is not None or self.dac.kind != "none"):
            raise ConfigError("[mapping] weight_bits and a [dac] need the canonical topology (imac-sim's analog "
                              "neurons take no digital shift-add, resistance-sum strings take ±1 weights and 0/1 "
                              "inputs); remove them or set circuit.topology = \"canonical\"")
        self._check_negative()
        self._check_cells()
        if self.amp_gains is not None and not all(0 < g < float("inf") for g in self.amp_gains):
            raise ConfigError(f"circuit.amp_gains must be positive numbers, got {self.amp_gains!r}")

    @property
    def charge_mode(self) -> bool:
        """Whether tiles are read by charge (a transient; ``T`` in V/V) rather than at DC (``T`` in siemens)."""
        return self.readout in ("charge", "charge-passive")

    @property
    def sense_ohms(self) -> float:
        """The resistance at every bit line's end, ohm: ``r_sense`` with the sense readout, else 0 (virtual ground)."""
        return self.r_sense if self.readout == "sense" else 0.0

    def tile(self, conductances) -> Tile:
        """The canonical tile of ``conductances`` (``rows × cols`` siemens) on these wires, its bit lines
        ending as the DC readout takes them: at virtual ground, or in the sense resistors (the port
        :meth:`~circuitsim.tile.crossbar.TIA.sense_resistor`, so that its ``T`` gives the sensed currents)."""
        return Tile(conductances, **vars(self.wires), tia=TIA.sense_resistor(self.r_sense) if self.readout == "sense"
                    else None)

    @property
    def nonlinear(self) -> bool:
        """Whether the cells are a nonlinear model (solved exactly per image)."""
        return self.cells is not None and self.cells.kind != "linear"

    def check_own_cells(self, own_cells: bool) -> None:
        """Refuse (one line) sliced or offset weights for a network that brings its own cells."""
        if own_cells and (self.weight_bits is not None or self.negative == "offset"):
            what = "weight_bits slices" if self.weight_bits is not None else "negative = \"offset\" maps"
            raise ConfigError(f"[mapping] {what} trained weights; a random-conductance network has its own cells: "
                              "remove it or train the network")

    def _check_negative(self) -> None:
        """Refuse (one line) an unknown scheme and what the offset scheme is not modelled with."""
        if self.negative not in NEGATIVES:
            raise ConfigError(f"[mapping] negative must be one of {', '.join(NEGATIVES)}, got {self.negative!r}")
        if self.negative == "differential":
            return
        stats = self.device.statistics
        for refused, what in ((self.topology != "canonical", f"the {self.topology} topology (it reads pairs)"),
                              (self.nonlinear, "nonlinear cells (their exact solve reads pairs)"),
                              (stats.read_noise > 0, "read noise (its law is drawn per pair)"),
                              (stats.drifts and stats.drift_compensation == "global",
                               "global drift compensation (its reference read is of pairs)")):
            if refused:
                raise ConfigError(f"[mapping] negative = \"offset\" is not modelled with {what}; "
                                  "use negative = \"differential\" or remove it")

    def _check_sense(self) -> None:
        """Refuse (one line, the physical reason) a sense resistor that is none, and what reads its own way."""
        if not (isinstance(self.r_sense, int | float) and 0 < self.r_sense <= R_MAX / 2):
            raise ConfigError(f"circuit.r_sense must be a resistance > 0 and <= {R_MAX / 2:g} ohm, got {self.r_sense!r} "
                              "(0 ohm is the virtual ground: readout = \"current\"); give e.g. r_sense = 100.0")
        if self.readout == "sense" and self.topology == "imac-sim":
            raise ConfigError("readout = \"sense\" ends canonical tiles' bit lines in resistors; the imac-sim topology "
                              "reads its bit lines with its own difference amplifiers: use topology = \"canonical\" "
                              "or readout = \"current\"")

    def _check_cells(self) -> None:
        """Refuse (one line, the physical reason) what nonlinear cells cannot be read with."""
        if self.cells is not None and not isinstance(self.cells, CellModel):
            raise ConfigError("circuit.cells must be a cell model (circuitsim.tile.cells.cell_model) or None")
        if not self.nonlinear:
            return
        kind = self.cells.kind  # type: ignore[union-attr]
        if self.topology == "resistance-sum":
            raise ConfigError(f"{kind} cells are not modelled in resistance-sum strings (each cell is two FET-MTJ "
                              "pairs of its own model): use topology = \"canonical\" or \"imac-sim\", or linear cells")
        if self.charge_mode:
            raise ConfigError(f"{kind} cells are solved at DC (virtual-ground or sense-resistor currents); a charge "
                              "readout integrates a transient: use readout = \"current\" or \"sense\", or linear cells")
        if self.dac.kind != "none":
            raise ConfigError(f"{kind} cells are mapped and solved at word lines driven at h · v_read; a [dac]'s "
                              "quantized or bit-serial cycles are not solved yet: remove [dac] or use linear cells")
        if self.wires.r_driver > 0:
            raise ConfigError(f"{kind} cells are solved with ideal input drivers; wires.r_driver = "
                              f"{self.wires.r_driver:g} ohm is not: set r_driver = 0 or use linear cells")
        if self.cells.shape != ():  # type: ignore[union-attr]
            raise ConfigError(f"circuit.cells: give the {kind} parameters as scalars (every cell's state is set "
                              "from its weight)")
        try:  # the device's whole conductance range must be reachable at the read voltage
            map_conductance(self.cells, [self.device.g_min, self.device.g_max], self.v_read)  # type: ignore[arg-type]
        except ConfigError as exc:
            fix = str(exc).split("; ", 1)[-1]
            raise ConfigError(f"{kind} cells cannot carry the device's conductances {self.device.g_min:.3g} .. "
                              f"{self.device.g_max:.3g} S at v_read = {self.v_read:g} V: {fix}") from None


READOUTS: tuple[str, ...] = get_args(Readout)
