"""Throughput of ADC.convert: 10**7 samples per kind at 8 bits, 1 and 64 columns.

Run with ``.venv/bin/python bench/bench_adc.py``. Each kind uses its preset (so
"sar", "flash", "ramp" and "cco" include per-conversion input noise); the time is
the best of three conversions of the same input array (float64), excluding the
one-off construction of the ADC, which is reported separately. Drawing the
noise (float32 normals) is most of the difference between "ideal" and the rest.
"""

from __future__ import annotations


import numpy as np

import benchlib

from circuitsim.periphery.adc import ADC, KINDS, ADCConfig

N_SAMPLES = 10**7
BITS = 8


def bench(kind: str, n_columns: int, repeats: int = 3) -> tuple[float, float, float]:
    """Return (construction time, best conversion wall time, its CPU time) in seconds."""
    cfg = ADCConfig.preset(kind, bits=BITS)
    adc, t_build, _ = benchlib.timed(lambda: ADC(cfg, n_columns=n_columns))
    span = cfg.v_max - cfg.v_min
    x = np.random.default_rng(0).uniform(cfg.v_min - 0.05 * span, cfg.v_max + 0.05 * span,
                                         (N_SAMPLES // n_columns, n_columns))
    best, best_cpu = np.inf, np.inf
    for _ in range(repeats):
        _, wall, cpu = benchlib.timed(lambda: adc.convert(x))
        best, best_cpu = min(best, wall), min(best_cpu, cpu)
    return t_build, best, best_cpu


def main() -> None:
    print("start:", benchlib.environment())
    print(f"ADC.convert, {N_SAMPLES:.0e} samples, {BITS} bits, numpy {np.__version__}, best of 3")
    print(f"{'kind':<6} {'columns':>7} {'build ms':>9} {'convert s':>10} {'CPU s':>7} {'Msamples/s':>11}")
    for kind in KINDS:
        for n_columns in (1, 64):
            t_build, t, cpu = bench(kind, n_columns)
            print(f"{kind:<6} {n_columns:>7} {1e3 * t_build:>9.2f} {t:>10.3f} {cpu:>7.3f} "
                  f"{N_SAMPLES / t / 1e6:>11.1f}")
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
