"""Tests of the behavioural ADC models, their characterisation and the energy table."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.periphery.adc import ADC, KINDS, ADCConfig, cco_frequency, cco_power
from circuitsim.periphery.adc_linearity import (
    code_density_test,
    linearity_from_transitions,
    transfer_sweep_test,
)
from circuitsim.periphery.energy import ISAAC_32NM, ADCEnergyTable, adc_energy

IDEAL3 = ADCConfig(kind="ideal", bits=3, v_min=0.0, v_max=1.0)  # LSB = 0.125 V


def test_ideal_quantizer_codes_and_reconstruction():
    adc = ADC(IDEAL3)
    x = np.array([0.0, 0.124999, 0.125, 0.3, 0.5, 0.874999, 0.875, 0.999])
    np.testing.assert_array_equal(adc.convert(x), [0, 0, 1, 2, 4, 6, 7, 7])
    np.testing.assert_allclose(adc.reconstruct(np.arange(8)), (np.arange(8) + 0.5) / 8)
    np.testing.assert_allclose(adc.quantize(0.3), 0.3125)
    assert adc.thresholds.shape == (1, 7) and not adc.thresholds.flags.writeable


def test_clipping_at_range_ends():
    adc = ADC(IDEAL3)
    codes = adc.convert([-5.0, -np.inf, 1.0, 7.0, np.inf])
    np.testing.assert_array_equal(codes, [0, 0, 7, 7, 7])
    with pytest.raises(ConfigError):
        adc.convert([0.1, np.nan])


def test_matches_searchsorted_for_every_column():
    cfg = ADCConfig.preset("flash", bits=8, noise_sigma=0.0, seed=5)
    adc = ADC(cfg, n_columns=16)
    x = np.random.default_rng(0).uniform(-0.1, 1.1, (5000, 16))
    x[:3] = adc.thresholds[:, :3].T  # exact ties land in the upper code
    ref = np.stack([np.searchsorted(adc.thresholds[c], x[:, c], side="right")
                    for c in range(16)], axis=1)
    np.testing.assert_array_equal(adc.convert(x), ref)
    np.testing.assert_array_equal(adc.convert(x[:, 3], column=3), ref[:, 3])
    with pytest.raises(ConfigError):
        adc.convert(np.zeros((10, 15)))


def test_offset_and_gain_shift_the_transfer():
    lsb = 1 / 256
    x = (np.arange(20, 200) + 0.5) * lsb  # mid-code inputs
    ideal = ADC(ADCConfig(bits=8)).convert(x)
    np.testing.assert_array_equal(ideal, np.arange(20, 200))
    shifted = ADC(ADCConfig(bits=8, offset=3 * lsb)).convert(x)
    np.testing.assert_array_equal(shifted, ideal + 3)
    steep = ADC(ADCConfig(bits=8, gain_error=0.1)).convert(x)
    np.testing.assert_array_equal(steep, np.floor(x * 1.1 / lsb).astype(int))


def test_code_density_recovers_dnl_sigma_within_10_percent():
    for sigma, coherent in [(0.1, False), (0.3, False), (0.2, True)]:
        adc = ADC(ADCConfig(kind="flash", bits=8, dnl_sigma=sigma, seed=11))
        result = code_density_test(adc, n_samples=1 << 22, coherent=coherent, seed=1)
        measured = np.std(result.dnl[1:-1])
        assert abs(measured / sigma - 1) < 0.10
        true = linearity_from_transitions(adc.thresholds[0])
        assert np.corrcoef(result.dnl[1:-1], true.dnl[1:-1])[0, 1] > 0.99


def test_code_density_ramp_with_noise_and_missing_codes():
    adc = ADC(ADCConfig(kind="flash", bits=6, dnl_sigma=0.2, noise_sigma=0.3 / 64))
    result = code_density_test(adc, n_samples=1 << 20, stimulus="ramp")
    true = linearity_from_transitions(adc.thresholds[0])
    assert np.nanmax(np.abs(result.dnl - true.dnl)) < 0.05
    gappy = ADC(ADCConfig(kind="flash", bits=6, dnl_sigma=0.8, seed=2))
    found = code_density_test(gappy, n_samples=1 << 20).missing_codes
    np.testing.assert_array_equal(found, linearity_from_transitions(gappy.thresholds[0]).missing_codes)
    assert found.size > 0


def test_transfer_sweep_measures_configured_inl_bow():
    for bow in (1.5, -0.8):
        adc = ADC(ADCConfig(kind="ramp", bits=8, inl_bow=bow))
        result = transfer_sweep_test(adc, points_per_code=64)
        u = np.arange(255) / 254
        np.testing.assert_allclose(result.inl[1:], bow * 4 * u * (1 - u), atol=0.02)
        assert np.nanmax(np.abs(result.dnl)) < 0.05


def test_noise_is_per_conversion_and_reproducible():
    sigma = 0.5 / 256
    cfg = ADCConfig(bits=8, noise_sigma=sigma, seed=4)
    x = np.full(100_000, 128 / 256)  # exactly on a transition
    codes = ADC(cfg).convert(x)
    assert set(np.unique(codes)) >= {127, 128} and abs(np.mean(codes >= 128) - 0.5) < 0.01
    above = ADC(cfg).convert(x + sigma)  # one sigma above: P(code >= 128) = Phi(1)
    assert np.mean(above >= 128) == pytest.approx(0.8413, abs=0.01)
    np.testing.assert_array_equal(ADC(cfg).convert(x), codes)
    assert not np.array_equal(ADC(cfg, rng=9).convert(x), codes)


def test_column_variation_differs_between_columns_and_follows_seed():
    cfg = ADCConfig.preset("sar", bits=8, seed=3)
    a, b = ADC(cfg, n_columns=8), ADC(cfg, n_columns=8)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert np.all(np.ptp(a.thresholds, axis=0) > 0)
    np.testing.assert_array_equal(ADC(cfg, n_columns=3).thresholds, a.thresholds[:3])
    assert not np.array_equal(ADC(cfg.replace(seed=4), n_columns=8).thresholds, a.thresholds)


def test_cco_count_bends_more_at_low_supply():
    def max_inl(supply):
        cfg = ADCConfig(kind="cco", bits=8, v_max=10e-6, supply_v=supply)
        adc = ADC(cfg)
        assert adc.convert(5e-6) > 128  # saturating f(I): mid-scale reads high
        return np.nanmax(np.abs(linearity_from_transitions(adc.thresholds[0]).inl))
    low, nominal, high = max_inl(0.6), max_inl(0.8), max_inl(1.0)
    assert low > nominal > high > 0.5
    cfg = ADCConfig(kind="cco", v_max=10e-6)
    assert float(cco_frequency(cfg, 10e-6)) == pytest.approx(cfg.cco_f_full_scale)
    assert float(cco_power(cfg.replace(supply_v=1.0), 5e-6)) > float(cco_power(cfg, 5e-6))


@pytest.mark.parametrize("changes", [
    dict(bits=0), dict(bits=17), dict(bits=8.0), dict(v_min=1.0, v_max=1.0),
    dict(v_min=2.0, v_max=1.0), dict(dnl_sigma=-0.1), dict(noise_sigma=-1e-3),
    dict(column_gain_sigma=-0.01), dict(column_offset_sigma=-1e-3), dict(kind="delta"),
    dict(gain_error=-1.0), dict(v_max=float("nan")), dict(kind="ideal", dnl_sigma=0.1),
])
def test_bad_parameters_raise_config_error(changes):
    with pytest.raises(ConfigError):
        ADCConfig(**changes)


def test_config_round_trip_and_presets():
    for kind in KINDS:
        cfg = ADCConfig.preset(kind, bits=6, v_min=-0.5, v_max=0.5)
        assert ADCConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert ADCConfig.preset("flash").dnl_sigma > ADCConfig.preset("sar").dnl_sigma
    assert ADCConfig.preset("ramp").inl_bow > ADCConfig.preset("sar").inl_bow
    cfg = ADCConfig.from_dict(tomllib.loads('bits = 6\nkind = "flash"\nv_max = 2'))
    assert cfg.v_max == 2.0 and isinstance(cfg.v_max, float)
    with pytest.raises(ConfigError):
        ADCConfig.from_dict({"bitz": 8})
    with pytest.raises(ConfigError):
        ADCConfig.preset("sar", dnl_sigmaa=0.1)


def test_energy_table_values_and_extrapolation():
    for bits, pj in [(4, 0.79), (5, 0.99), (6, 1.20), (8, 1.67)]:
        assert adc_energy(bits, 1) == pytest.approx(pj * 1e-12)
    assert adc_energy(8, 1000) == pytest.approx(1.67e-9)
    assert adc_energy(7, 1) == pytest.approx(np.sqrt(1.20 * 1.67) * 1e-12)
    assert adc_energy(10, 1) == pytest.approx(1.67e-12 * 1.67 / 1.20)
    assert adc_energy(3, 1) == pytest.approx(0.79e-12 * 0.79 / 0.99)
    np.testing.assert_allclose(adc_energy(np.array([4, 8]), 2), [1.58e-12, 3.34e-12])
    assert ADCEnergyTable.from_dict(json.loads(json.dumps(ISAAC_32NM.to_dict()))) == ISAAC_32NM
    for bad in [dict(bits=0), dict(bits=17), dict(bits=4.5), dict(bits=8, conversions=-1)]:
        with pytest.raises(ConfigError):
            adc_energy(**bad)
    with pytest.raises(ConfigError):
        ADCEnergyTable(bits=(8, 4), energy_j=(1e-12, 2e-12))
