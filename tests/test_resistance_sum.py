"""The resistance-sum MRAM column (Jung et al., Nature 601, 2022) against hand-written ngspice decks.

The decks below are written by hand in their own structure (a ``.subckt`` per FET–MTJ pair,
``.param`` values, no shared code with :func:`string_circuit`); the native engine and the
generated deck must give the same string currents to 1e-9 (relative).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.tile.resistance_sum import (StringCell, StringReadout, mtj_states, string_affine, string_circuit,
                                            string_currents)

# 3 cells × 2 strings, wire 4 ohm per cell, FETs 500 ohm / 1 Gohm
R_A = np.array([[10_150.0, 4_920.0], [5_080.0, 9_870.0], [9_990.0, 10_240.0]])
R_B = np.array([[4_975.0, 10_060.0], [10_110.0, 5_030.0], [5_010.0, 4_890.0]])
CELL = StringCell(r_p=5e3, r_ap=10e3, r_on=500.0, r_off=1e9, r_wire=4.0)
V_READ = 0.2

HEADER = """hand-written resistance-sum strings
.param vr=0.2 ron=500 roff=1e9 rw=4
* one FET-MTJ pair: the FET (a resistor set by the gate) bypasses the MTJ
.subckt pair top bot rmtj=5k rfet=1e9
Rmtj top bot {rmtj}
Rfet top bot {rfet}
.ends
Vread vdd 0 DC {vr}
"""

# inputs +1, -1, +1: FET A on in cells 0 and 2, FET B on in cell 1
DECK_PMP = HEADER + """
* string 0
Rw00 vdd s00 {rw}
XA00 s00 h00 pair rmtj=10150 rfet={ron}
XB00 h00 s01 pair rmtj=4975 rfet={roff}
Rw10 s01 s02 {rw}
XA10 s02 h10 pair rmtj=5080 rfet={roff}
XB10 h10 s03 pair rmtj=10110 rfet={ron}
Rw20 s03 s04 {rw}
XA20 s04 h20 pair rmtj=9990 rfet={ron}
XB20 h20 end0 pair rmtj=5010 rfet={roff}
Vsense0 end0 0 DC 0
* string 1
Rw01 vdd s10 {rw}
XA01 s10 h01 pair rmtj=4920 rfet={ron}
XB01 h01 s11 pair rmtj=10060 rfet={roff}
Rw11 s11 s12 {rw}
XA11 s12 h11 pair rmtj=9870 rfet={roff}
XB11 h11 s13 pair rmtj=5030 rfet={ron}
Rw21 s13 s14 {rw}
XA21 s14 h21 pair rmtj=10240 rfet={ron}
XB21 h21 end1 pair rmtj=4890 rfet={roff}
Vsense1 end1 0 DC 0
.end
"""

# inputs -1, -1, +1
DECK_MMP = DECK_PMP.replace("XA00 s00 h00 pair rmtj=10150 rfet={ron}", "XA00 s00 h00 pair rmtj=10150 rfet={roff}") \
    .replace("XB00 h00 s01 pair rmtj=4975 rfet={roff}", "XB00 h00 s01 pair rmtj=4975 rfet={ron}") \
    .replace("XA01 s10 h01 pair rmtj=4920 rfet={ron}", "XA01 s10 h01 pair rmtj=4920 rfet={roff}") \
    .replace("XB01 h01 s11 pair rmtj=10060 rfet={roff}", "XB01 h01 s11 pair rmtj=10060 rfet={ron}")
X = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])


def _hand(deck: str) -> np.ndarray:
    from circuitsim.spice import get_backend

    result = get_backend("subprocess").run(deck, [["op"]], save=["i(vsense0)", "i(vsense1)"])[0]
    return np.array([result["i(vsense0)"][0], result["i(vsense1)"][0]])


def _closed_form(x: np.ndarray) -> np.ndarray:
    """Series sum by hand: per cell its wire plus each pair's MTJ parallel to its FET."""
    def par(a, b):
        return a * b / (a + b)

    on_a = np.where(x > 0, 500.0, 1e9)[:, None]
    on_b = np.where(x > 0, 1e9, 500.0)[:, None]
    total = (4.0 + par(R_A, on_a) + par(R_B, on_b)).sum(0)
    return V_READ / total


@pytest.mark.ngspice
def test_string_currents_match_hand_written_decks():
    hand = np.array([_hand(DECK_PMP), _hand(DECK_MMP)])
    native = string_currents(R_A, R_B, X, CELL, V_READ)
    spice = string_currents(R_A, R_B, X, CELL, V_READ, engine="ngspice", backend="subprocess")
    closed = np.array([_closed_form(x) for x in X])
    for name, got in (("native", native), ("generated deck", spice), ("closed form", closed)):
        error = float(np.abs(got - hand).max() / np.abs(hand).max())
        print(f"\nresistance-sum 3x2, {name} vs hand deck: max rel. error {error:.2e}")
        assert error <= 1e-9, name
    # the inputs change the currents (the test can fail on a wrong FET assignment)
    assert np.abs(hand[0] - hand[1]).max() > 1e-3 * np.abs(hand).max()


def test_readout_recovers_binary_mac_and_affine_model_is_exact():
    rng = np.random.default_rng(3)
    w = np.where(rng.random((64, 5)) < 0.5, -1.0, 1.0)
    x = np.where(rng.random((6, 64)) < 0.5, -1.0, 1.0)
    cell = StringCell()
    a, b = mtj_states(w, cell)
    readout = StringReadout(cell, v_read=0.2)
    mac = readout.mac(string_currents(a, b, x, cell, 0.2), 64)
    np.testing.assert_allclose(mac, x @ w, atol=1e-6)  # nominal cells, no wire: the exact MAC
    # with wire and MTJ spread the affine model (weights, offset) is what the readout reads
    wired = StringCell(r_wire=20.0)
    a2, b2 = a * (1 + 0.05 * rng.standard_normal(a.shape)), b * (1 + 0.05 * rng.standard_normal(b.shape))
    weights, offset = string_affine(a2, b2, wired, reference=cell)
    mac2 = readout.mac(string_currents(a2, b2, x, wired, 0.2), 64)
    np.testing.assert_allclose(mac2, x @ weights + offset, rtol=0, atol=1e-8 * 64)
    assert np.abs(mac2 - x @ w).max() > 0.5  # the spread and the uncalibrated wire are visible
    # the ADC: 7 bits over [-64, 64] keeps integer MACs of even parity within half a step
    adc = StringReadout(cell, bits=7)
    assert np.abs(adc.read(string_currents(a, b, x, cell, 0.2), 64) - x @ w).max() <= 64 / 127 + 1e-9


@pytest.mark.parametrize("call, message", [
    (lambda: mtj_states([[1.0, 0.0]], StringCell()), "weight[0, 1] is 0;"),
    (lambda: string_circuit(*mtj_states(np.ones((2, 1)), StringCell()), [1.0, 0.5], StringCell()), "input[1]"),
    (lambda: string_circuit(*mtj_states(np.ones((65, 1)), StringCell()), np.ones(65), StringCell()),
     "longer than the readout's range of 64"),
    (lambda: StringReadout(StringCell()).mac(np.ones(2), 65), "longer than the readout's range"),
    (lambda: StringCell(r_p=10e3, r_ap=5e3), "TMR > 0"),
])
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.ngspice
def test_paper_size_array_both_engines_agree():
    """The paper's 64 × 64 array (wire 2 ohm per cell, 5 % MTJ spread): native vs ngspice."""
    rng = np.random.default_rng(7)
    cell = StringCell(r_wire=2.0)
    a, b = mtj_states(np.where(rng.random((64, 64)) < 0.5, -1.0, 1.0), cell)
    a, b = a * np.exp(0.05 * rng.standard_normal(a.shape)), b * np.exp(0.05 * rng.standard_normal(b.shape))
    x = np.where(rng.random((2, 64)) < 0.5, -1.0, 1.0)
    native = string_currents(a, b, x, cell)
    spice = string_currents(a, b, x, cell, engine="ngspice")
    error = float(np.abs(native - spice).max() / np.abs(spice).max())
    print(f"\nresistance-sum 64x64, native vs ngspice: max rel. error {error:.2e}")
    assert error <= 1e-9
