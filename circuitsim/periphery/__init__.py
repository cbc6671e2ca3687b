"""The periphery around the arrays: ADCs, neurons and their energy.

Modules
-------
adc
    Behavioural ADCs (ideal, SAR, flash, ramp, current-controlled oscillator) with
    offset, gain error, DNL, INL, noise and per-column variation, vectorized.
adc_linearity
    Static linearity tests of an ADC: code density (histogram) and transfer sweep.
neurons
    Analog neurons (BSIM4 inverter sigmoid, behavioural sigmoid and ReLU) and their
    extracted transfer curves (ngspice).
lif
    An analog leaky integrate-and-fire neuron (membrane capacitor, switched leak,
    comparator, latch, reset switch), clocked in time steps, for transient decks.
energy
    Energy per ADC conversion by resolution (published tables).

Public API
----------
ADCConfig, ADC, KINDS, Linearity, code_density_test, transfer_sweep_test,
Neuron, NeuronDesign, NeuronCurve, design_neuron, extract_curve,
ADCEnergyTable, ISAAC_32NM, adc_energy
"""

from .adc import ADC, KINDS, ADCConfig
from .adc_linearity import Linearity, code_density_test, transfer_sweep_test
from .energy import ISAAC_32NM, ADCEnergyTable, adc_energy
from .neurons import Neuron, NeuronCurve, NeuronDesign, design_neuron, extract_curve

__all__ = [
    "ADCConfig", "ADC", "KINDS", "Linearity", "code_density_test", "transfer_sweep_test",
    "Neuron", "NeuronDesign", "NeuronCurve", "design_neuron", "extract_curve",
    "ADCEnergyTable", "ISAAC_32NM", "adc_energy",
]
