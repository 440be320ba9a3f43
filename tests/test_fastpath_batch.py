"""The fast path in batch mode (``simultaneous="batch"``, the kernel of
:mod:`eventsim.kernels.fastpath_batch`) against the general path's batch mode (bit for bit: every
row, counter, raster, spike time and readout value) and against the stepped engine (the
independent reference: the same spikes and synops per step, readout to float tolerance).
"""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es

from async_reference import (continuous_network, random_events, warm_async,  # noqa: E402,F401
                             without_delays_and_refractory)
from test_async_batch import random_network  # noqa: E402
from test_fastpath import assert_same, both  # noqa: E402

DT = 1000.0
BATCH = dict(simultaneous="batch", dt_us=DT)


def against_stepped(net, inputs, fast, steps, **kw):
    """The fast batch result equals the stepped engine's: spikes and synops per step and layer,
    rasters; logits within float tolerance (the stepped engine sums in another order)."""
    ref = es.simulate(net, inputs, engine="stepped", dt_us=kw.get("dt_us", DT), steps=steps, record="spikes",
                      **{k: v for k, v in kw.items() if k in ("synop_convention", "input_kind", "t_start_us")})
    np.testing.assert_array_equal(fast.spikes_per_row, ref.spikes_per_row)
    np.testing.assert_array_equal(fast.synops_per_row, ref.synops_per_row)
    for name, raster in ref.rasters.items():
        np.testing.assert_array_equal(fast.rasters[name], raster, err_msg=name)
    np.testing.assert_allclose(fast.logits, ref.logits, rtol=1e-9, atol=1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=random_network(), seed=st.integers(0, 1000), n=st.integers(0, 300))
def test_random_networks_fast_general_stepped(net, seed, n):
    """Every neuron option of the stepped engine (resets, comparisons, orders, v_init above θ,
    amplitudes, per-channel λ and θ), biases into populations and the readout, all pool kinds."""
    events = random_events(n, (2, 5, 5), 8000, np.random.default_rng(seed))
    fast, general = both(net, events, steps=8, record="spikes", **BATCH)
    assert_same(fast, general)
    against_stepped(net, events, fast, 8)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(0, 150),
       budgets=st.lists(st.integers(1, 400), max_size=3))
def test_dag_networks_budgets_and_spike_times(net, seed, n, budgets):
    """Conv/pool/Add networks (the continuous fast path's strategy, with biases): snapshot rows at
    synop budgets, spike times and rasters, bit for bit."""
    net = without_delays_and_refractory(net)
    events = random_events(n, (2, 4, 4), 4000, np.random.default_rng(seed))
    kw = dict(t_stop_us=5000, record=("spike_times", "spikes"), snapshot_synops=budgets or None, **BATCH)
    fast, general = both(net, events, **kw)
    assert_same(fast, general)
    if "output_spikes" in general.info:   # the output population's spikes in emission order
        for a, b in zip(fast.info["output_spikes"], general.info["output_spikes"]):
            np.testing.assert_array_equal(a, b)


def _dyadic(rng, *shape):
    return rng.integers(-8, 9, shape) / 8.0


def test_resnet_block_lif_bias_count_frames():
    """A ResNet block (Branch + Add) with LIF populations and biases, from events and from count
    frames (both run the fast path), against the general path and the stepped engine."""
    rng = np.random.default_rng(3)
    layers = [es.Conv2d(_dyadic(rng, 3, 2, 3, 3), bias=_dyadic(rng, 3) / 4, padding=1), es.LIF(leak=0.9, threshold=0.75),
              es.Conv2d(_dyadic(rng, 5, 3, 3, 3), stride=2, padding=1), es.IF(threshold=1.0),
              es.Conv2d(_dyadic(rng, 5, 5, 3, 3), padding=1),
              es.Branch(source=1), es.Conv2d(_dyadic(rng, 5, 3, 1, 1), stride=2), es.Add(source=4),
              es.LIF(leak=np.linspace(0.6, 1.0, 5), threshold=0.5, reset="zero"), es.AvgPool2d(2), es.Flatten(),
              es.Linear(_dyadic(rng, 4, 20), bias=_dyadic(rng, 4)), es.Readout(mode="mean")]
    net = es.Network((2, 8, 8), layers)
    events = random_events(900, (2, 8, 8), 12_000, rng)
    kw = dict(steps=12, record=("spike_times", "spikes"), snapshot_synops=[500, 5000], **BATCH)
    fast, general = both(net, events, **kw)
    assert_same(fast, general)
    assert fast.spikes_per_layer["8.LIF"] > 0
    plain = dict(steps=12, record="spikes", **BATCH)
    fast, general = both(net, events, **plain)
    against_stepped(net, events, fast, 12)
    frames = np.random.default_rng(4).poisson(0.3, (12, 2, 8, 8))
    fast, general = both(net, frames, input_kind="events", **plain)
    assert_same(fast, general)
    against_stepped(net, frames, fast, 12, input_kind="events")


def test_chunks_log_growth_snapshot_times_window():
    """Input in small chunks (the kernel resumes between them), hundreds of spikes grow the
    spike-time log, snapshot times between steps and a window starting at t_start."""
    rng = np.random.default_rng(5)
    net = es.Network((2, 6, 6), [
        es.Conv2d(rng.normal(0.3, 0.3, (4, 2, 3, 3)), padding=1), es.LIF(leak=0.95, threshold=0.4),
        es.MaxPool2d(2), es.Conv2d(rng.normal(0.4, 0.3, (3, 4, 2, 2))),
        es.IF(threshold=0.3, order="fire-integrate", compare=">="),
        es.SumPool2d(2), es.Flatten(), es.Linear(rng.normal(0, 1, (2, 3))), es.Readout()])
    events = random_events(3000, (2, 6, 6), 20_000, rng)
    kw = dict(dt_us=500.0, simultaneous="batch", t_start_us=1000, t_stop_us=20_000, record=("spike_times", "spikes"),
              snapshot_times_us=[1000.0, 3333.3, 10_000, 20_000], snapshot_synops=[100, 20_000], chunk_events=7)
    fast, general = both(net, events, **kw)
    assert_same(fast, general)
    assert fast.spikes_per_layer["1.LIF"] > 500 and fast.spikes_per_layer["4.IF"] > 0


def test_fallbacks_say_why():
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((1, 4))), es.IF(refractory_us=1500.0), es.Readout()])
    ev = random_events(10, (1, 2, 2), 3000, np.random.default_rng(0))
    res = es.simulate(net, ev, engine="async", fast_path=True, **BATCH)
    assert res.info["path"] == "general" and "refractory" in res.info["fast_path_unsupported"]
    ok = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((1, 4))), es.IF(), es.Readout()])
    res = es.simulate(ok, ev, engine="async", fast_path=True, record="membrane", **BATCH)
    assert res.info["path"] == "general" and "membrane" in res.info["fast_path_unsupported"]
    res = es.simulate(ok, np.ones((3, 1, 2, 2)), engine="async", fast_path=True, input_kind="analog", **BATCH)
    assert res.info["path"] == "general" and "array input" in res.info["fast_path_unsupported"]
    assert es.simulate(ok, ev, engine="async", fast_path=True, **BATCH).info["path"] == "fast"


@pytest.mark.realdata
def test_nmnist_recordings_shipped_model(nmnist_dir):
    """The shipped model on real recordings at 10 ms steps: fast = general (budgets, spike times,
    rasters) = stepped."""
    from eventsim.evaluate import DEMO_MODEL_PATH
    net = es.load(DEMO_MODEL_PATH)
    files = sorted((nmnist_dir / "test").glob("*.bs2"))[:3]
    assert files
    for f in files:
        events = es.read_events(f)
        kw = dict(simultaneous="batch", dt_us=10_000, steps=34)
        fast, general = both(net, events, record=("spike_times", "spikes"), snapshot_synops=[100_000, 400_000], **kw)
        assert_same(fast, general)
        assert fast.spikes > 1000
        fast, _ = both(net, events, record="spikes", **kw)
        against_stepped(net, events, fast, 34, dt_us=10_000)


def test_generated_batch_source_is_readable():
    """One function per layer and step phase, each with a docstring naming its layer."""
    from eventsim.engines.fastpath import kernel_source
    net = es.Network((2, 6, 6), [es.Conv2d(np.ones((3, 2, 3, 3)), bias=np.ones(3), padding=1), es.IF(), es.MaxPool2d(2),
                                 es.Flatten(), es.Linear(np.ones((4, 27))), es.LIF(leak=0.9), es.Readout()])
    src = kernel_source(net, dt_us=1000.0, simultaneous="batch")
    assert "Conv2d layer 0: (2, 6, 6) -> (3, 6, 6)" in src and "Spike-max pooling layer 2" in src
    assert "Linear layer 4: 27 -> 4" in src and "def check_1" in src and "def spikes_0" in src
    assert "constant charge per step" in src and "def begin_step" in src
    compile(src, "generated", "exec")
    with pytest.raises(ValueError, match="dt_us"):
        kernel_source(net, simultaneous="batch")
