"""The LIF layers' spike trains equal Brian2's (issue 28): an independent simulator of the same
neurons (its own exact integration of ``dv/dt = -v/tau``, threshold, reset, refractoriness and
synaptic events), fed the same input spikes through the same weights, with the same time step.

Brian2 delivers a spike to its targets in the step after it is emitted (the synaptic pathway
runs after the state update, before the threshold: ``when = "after_groups"``), so layer ``L``
(from 1) of Brian2 at step ``t + L`` is circuitsim's layer ``L`` at step ``t``; a refractory
period of ``r + 1`` steps in Brian2 is circuitsim's ``refractory = r`` (Brian2 counts the step
of the spike). Brian2 runs with its numpy code generation target (no compiler).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

import numpy as np
import pytest

from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.network.datasets import load_dataset
from circuitsim.network.spiking import SpikingConfig, SpikingNetwork, encode

IMAGES, STEPS = 12, 16
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Brian2 calls pyparsing's old names


def _brian2():
    """Brian2, imported so that it runs on numpy ≥ 2.4 (whose ndarray lost ``ptp``; Brian2 2.9.0
    still wraps ``np.ndarray.ptp``, fixed upstream by brian-team/brian2 pull request 1705: the
    same one-word change, ``np.ptp``, made here as its module is loaded)."""
    if not hasattr(np.ndarray, "ptp") and "brian2" not in sys.modules:
        class Loader(importlib.machinery.SourceFileLoader):
            def get_code(self, fullname):
                source = self.get_data(self.path).replace(b"np.ndarray.ptp)", b"np.ptp)")
                return compile(source, self.path, "exec", dont_inherit=True)

        class Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "brian2.units.fundamentalunits":
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                if spec is not None and spec.origin:
                    spec.loader = Loader(name, spec.origin)
                return spec

        finder = Finder()
        sys.meta_path.insert(0, finder)
        try:
            b2 = pytest.importorskip("brian2", reason="the Brian2 reference needs brian2 (pip install -e '.[test]')")
        finally:
            sys.meta_path.remove(finder)
        return b2
    return pytest.importorskip("brian2", reason="the Brian2 reference needs brian2 (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def network():
    data = load_dataset("digits", side=8, test_fraction=0.3)
    mlp = train_mlp(data, MLPConfig(layers=(64, 24, 10), activation="relu", epochs=5, seed=1))
    return mlp, data.x_test[:IMAGES]


def _brian2_spikes(b2, mlp, config: SpikingConfig, x):
    """Every layer's spikes (``STEPS × images × n_out``) as Brian2 computes them."""
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    dt = 1 * b2.ms
    b2.defaultclock.dt = dt
    encoder = encode(config, x)
    trains = np.stack([encoder(t) for t in range(STEPS)]) > 0  # steps × images × inputs
    n_in = x.shape[1] + 1  # the bias row: an input that fires every step
    trains = np.concatenate([trains, np.ones(trains.shape[:2] + (1,), bool)], axis=2)
    step, image, pixel = np.nonzero(trains)
    source = b2.SpikeGeneratorGroup(IMAGES * n_in, image * n_in + pixel, step * dt)
    # no leak: v only changes by synaptic events (a leak per step β is a time constant of -1/ln β steps)
    tau = config.tau if config.tau is not None else (-1.0 / np.log(config.leak) if config.leak < 1 else None)
    equation = "dv/dt = -v/tau : 1 (unless refractory)" if tau is not None else "v : 1"
    layers = len(mlp.weights)
    # the later layers' bias rows: layer k's input k of every image fires at steps k .. k + STEPS - 1
    k_bias, img_bias, t_bias = np.meshgrid(np.arange(1, layers), np.arange(IMAGES), np.arange(STEPS), indexing="ij")
    biases = b2.SpikeGeneratorGroup(IMAGES * layers, (img_bias * layers + k_bias).ravel(),
                                    (k_bias + t_bias).ravel() * dt)
    objects, groups = [source, biases], []
    for k, (w, b, gain) in enumerate(zip(mlp.weights, mlp.biases, mlp.config.gains)):
        n_out = w.shape[1]
        group = b2.NeuronGroup(IMAGES * n_out, equation, threshold=f"v > {config.threshold!r}",
                               reset="v = 0" if config.reset == "zero" else f"v -= {config.threshold!r}",
                               refractory=(config.refractory + 1) * dt, method="exact",
                               namespace={"tau": (tau or 1.0) * dt})
        synapses = b2.Synapses(source, group, "w : 1", on_pre="v_post += w * int(not_refractory_post)")
        rows = np.vstack([w, b[None, :]]) if k == 0 else w
        a, c, img = np.meshgrid(np.arange(rows.shape[0]), np.arange(n_out), np.arange(IMAGES), indexing="ij")
        synapses.connect(i=(img * rows.shape[0] + a).ravel(), j=(img * n_out + c).ravel())
        synapses.w = (gain * rows)[a, c].ravel()
        synapses.pre.when = "after_groups"
        objects += [group, synapses]
        if k > 0:
            bias = b2.Synapses(biases, group, "w : 1", on_pre="v_post += w * int(not_refractory_post)")
            cc, img = np.meshgrid(np.arange(n_out), np.arange(IMAGES), indexing="ij")
            bias.connect(i=(img * layers + k).ravel(), j=(img * n_out + cc).ravel())
            bias.w = (gain * b)[cc].ravel()
            bias.pre.when = "after_groups"
            objects.append(bias)
        groups.append(group)
        source = group
    monitors = [b2.SpikeMonitor(g) for g in groups]
    b2.Network(*objects, *monitors).run((STEPS + layers) * dt, namespace={})
    out = []
    for k, (monitor, w) in enumerate(zip(monitors, mlp.weights)):
        spikes = np.zeros((STEPS, IMAGES, w.shape[1]), bool)
        steps = np.rint(np.asarray(monitor.t / dt)).astype(int) - (k + 1)
        index = np.asarray(monitor.i)
        keep = (steps >= 0) & (steps < STEPS)
        spikes[steps[keep], index[keep] // w.shape[1], index[keep] % w.shape[1]] = True
        out.append(spikes)
    return out


@pytest.mark.parametrize("config", [
    SpikingConfig(time_steps=STEPS, tau=6.0, threshold=0.6, reset="zero", refractory=2, encoding_seed=5),
    SpikingConfig(time_steps=STEPS, leak=1.0, threshold=0.5, reset="subtract", encoding_seed=7),
    SpikingConfig(time_steps=STEPS, leak=0.8, threshold=0.5, reset="subtract", refractory=1, encoding_seed=3),
], ids=["lif-tau-zero-refractory", "if-subtract", "leak-subtract-refractory"])
def test_lif_spike_trains_equal_brian2s(network, config):
    b2 = _brian2()
    mlp, x = network
    ours = SpikingNetwork(mlp, config).run(x, record=True).spikes
    theirs = _brian2_spikes(b2, mlp, config, x)
    for layer, (a, b) in enumerate(zip(ours, theirs)):
        assert b.sum() > 0.05 * b.size, f"layer {layer} hardly fires: the comparison would be empty"
        agree = np.mean(a == b)
        assert np.array_equal(a, b), f"layer {layer}: {agree:.4%} of spike slots agree, {a.sum()} vs {b.sum()} spikes"
