"""Constant currents (layer biases) into IF/LIF populations on the asynchronous engine's fast path:
predicted threshold crossings, the general path's arithmetic and queue order. Fast = general bit
for bit, both = the plain-Python heapq reference (``tests/async_reference.py``), hand-computed
crossing times, windows, and a converted model (QCFS, BN folded into conv biases) on real N-MNIST."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es

from async_reference import (assert_matches_reference, continuous_network, random_events,  # noqa: E402,F401
                             reference_simulate, warm_async, without_delays_and_refractory)
from test_fastpath import assert_same, both  # noqa: E402
from test_fastpath_windows import check_all_equal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DT = 1000.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(0, 120),
       budgets=st.lists(st.integers(1, 400), max_size=3))
def test_biases_fast_equals_general_equals_reference(net, seed, n, budgets):
    """Hypothesis networks with biases into IF and LIF populations (every reset and comparison,
    per-channel thresholds and leaks, pooling, Add/Branch, v_init above θ)."""
    net = without_delays_and_refractory(net)
    events = random_events(n, (2, 4, 4), 4000, np.random.default_rng(seed))
    kw = dict(dt_us=DT, t_stop_us=5000, record=("spike_times", "spikes"), snapshot_synops=budgets or None,
              snapshot_times_us=[0.0, 1234.5, 2000.0, 5000.0])
    fast, general = both(net, events, **kw)
    assert_same(fast, general)
    ref = reference_simulate(net, events, DT, 5000.0)
    assert_matches_reference(net, fast, ref)
    np.testing.assert_allclose(fast.final_logits, ref.logits, rtol=1e-9, atol=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(0, 120),
       edges=st.lists(st.sampled_from([1000, 2000, 3000, 4000, 5000]), min_size=1, max_size=4, unique=True))
def test_biases_windows(net, seed, n, edges):
    """Predicted crossings pending at a window edge (or exactly at it) cross it: windowed fast =
    unwindowed fast = windowed general."""
    net = without_delays_and_refractory(net)
    ev = random_events(n, (2, 4, 4), 4000, np.random.default_rng(seed))
    check_all_equal(net, ev, sorted(edges), dt_us=DT, t_stop_us=5000, record=("spike_times", "spikes"),
                    snapshot_synops=[50, 200])


# ----------------------------------------------------------------------------- hand-computed crossings

DYADIC = 1024.0   # a step of 1024 µs and a bias of 1/4: the rate 2^-12 per µs is exact


def _one_neuron(neuron, bias=0.25, weight=0.5):
    return es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[weight]]), bias=np.array([bias])), neuron,
                                  es.Linear(np.array([[1.0]])), es.Readout()])


def _event_at(t):
    ev = np.zeros(1, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"] = t
    return ev


def test_if_crossings_by_hand():
    """IF, θ = 1, rate 2^-12/µs: v = t/4096 crosses at 4096 µs; an input of 0.5 at 1024 µs moves
    the pending crossing to 2048 (the earlier prediction is superseded), then every 4096 µs.
    A snapshot exactly at a crossing includes its spike."""
    net = _one_neuron(es.IF(threshold=1.0))
    kw = dict(dt_us=DYADIC, t_stop_us=20_000, record="spike_times",
              snapshot_times_us=[2047.0, 2048.0, 6144.0, 20_000.0])
    alone, alone_general = both(net, _event_at(0)[:0], **kw)
    assert_same(alone, alone_general)
    np.testing.assert_array_equal(alone.info["spike_times"]["2.IF"]["t_us"], [4096.0, 8192.0, 12288.0, 16384.0])
    pushed, pushed_general = both(net, _event_at(1024), **kw)
    assert_same(pushed, pushed_general)
    np.testing.assert_array_equal(pushed.info["spike_times"]["2.IF"]["t_us"], [2048.0, 6144.0, 10240.0, 14336.0, 18432.0])
    assert pushed.spikes_per_row[:, 2].tolist() == [0, 1, 1, 3]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_crossings_by_hand(reset):
    """LIF, τ = 10 ms, v∞ = r·τ = 2.44 > θ = 1: from v = 0 the drive crosses at τ·ln(v∞/(v∞ − θ)),
    and again after each reset to 0 (exactly at θ: either reset gives 0), a period of 5272 µs."""
    net = _one_neuron(es.LIF(tau_s=0.01, threshold=1.0, reset=reset))
    fast, general = both(net, _event_at(0)[:0], dt_us=DYADIC, t_stop_us=30_000, record="spike_times")
    assert_same(fast, general)
    vinf = 0.25 / DYADIC * 10_000
    period = 10_000 * math.log(vinf / (vinf - 1.0))
    np.testing.assert_allclose(fast.info["spike_times"]["2.LIF"]["t_us"], period * np.arange(1, 6), rtol=1e-9)


def test_negative_and_subthreshold_drives_never_cross():
    """A negative bias (IF) and v∞ below θ (LIF) queue nothing; inputs still make them fire."""
    rng = np.random.default_rng(4)
    ev = random_events(300, (1, 2, 2), 9000, rng)
    for neuron, bias in ((es.IF(threshold=1.0), -0.05), (es.LIF(tau_s=0.002, threshold=1.0), 0.3)):
        net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.full((3, 4), 0.375), bias=np.full(3, bias)),
                                     neuron, es.Linear(np.ones((2, 3))), es.Readout()])
        fast, general = both(net, ev, dt_us=DT, t_stop_us=10_000, record=("spike_times", "spikes"))
        assert_same(fast, general)
        assert_matches_reference(net, fast, reference_simulate(net, ev, DT, 10_000.0))
        assert fast.spikes > 0


def test_drive_per_neuron_through_padding_and_pooling():
    """A bias propagated through a padded conv and average pooling differs per position: the
    drive is per neuron, not per channel; long chunks of simultaneous events and renormalised LIF
    time scales (τ = 50 µs) across them."""
    rng = np.random.default_rng(7)
    net = es.Network((2, 6, 6), [
        es.Conv2d(rng.integers(-8, 9, (3, 2, 3, 3)) / 8, padding=1, bias=np.array([0.125, -0.0625, 0.25])),
        es.SumPool2d(3, stride=1, padding=1),   # the bias summed over 4, 6 or 9 positions
        es.LIF(tau_s=5e-5, threshold=0.4, compare=">="), es.Flatten(),
        es.Linear(rng.integers(-8, 9, (5, 108)) / 8, bias=np.full(5, 0.0625)), es.IF(threshold=0.75, reset="zero"),
        es.Linear(rng.normal(0, 1, (2, 5))), es.Readout(mode="mean")])
    ev = random_events(2000, (2, 6, 6), 20_000, rng)
    ev["t"][100:300] = ev["t"][100]
    chunks = [ev[i:i + 37] for i in range(0, len(ev), 37)]
    kw = dict(dt_us=500.0, t_stop_us=20_000, record=("spike_times", "spikes"), snapshot_synops=[1000, 50_000])
    fast, general = both(net, chunks, **kw)   # a list of chunks: a stream, read once per call
    assert_same(fast, general)
    assert fast.spikes_per_layer["2.LIF"] > 100 and fast.spikes_per_layer["5.IF"] > 0
    assert_matches_reference(net, fast, reference_simulate(net, ev, 500.0, 20_000.0))


# ----------------------------------------------------------------------------- leak-free channels; fallback


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_with_leakless_channels_and_renormalisation(reset):
    """A driven LIF whose leak is 1 on some channels (τ = ∞: the general path's generic sink, IF
    arithmetic there) and τ = 14.4 µs on the others (renormalised every ~3 ms, at the moments the
    general path renormalises: only when a LIF channel is touched)."""
    rng = np.random.default_rng(11)
    net = es.Network((2, 4, 4), [
        es.Conv2d(rng.integers(-8, 9, (3, 2, 3, 3)) / 8, padding=1, bias=np.array([0.004, -0.002, 0.003])),
        es.LIF(leak=np.array([0.5, 1.0, 0.8]), threshold=0.7333, reset=reset), es.Flatten(),
        es.Linear(rng.integers(-8, 9, (4, 48)) / 8, bias=np.array([0.003, 0.0, -0.001, 0.0005])),
        es.LIF(leak=np.array([1.0, 0.95, 1.0, 0.7]), threshold=1.1111, compare=">="),
        es.Linear(rng.integers(-8, 9, (3, 4)) / 8, bias=np.ones(3) * 0.1), es.Readout()])
    ev = random_events(1500, (2, 4, 4), 20_000, rng)
    kw = dict(dt_us=10.0, t_stop_us=20_000, record=("spike_times", "spikes"), snapshot_synops=[500, 5000],
              snapshot_times_us=[5000.0, 20_000.0])
    fast, general = both(net, ev, **kw)
    assert_same(fast, general)
    assert fast.spikes_per_layer["1.LIF"] > 50 and fast.spikes_per_layer["4.LIF"] > 0
    assert_matches_reference(net, fast, reference_simulate(net, ev, 10.0, 20_000.0))


def test_per_step_bias_falls_back():
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((2, 4)), bias=np.array([0.1, 0.2])),
                                 es.IF(step_bias=np.full((3, 2), 0.1)), es.Readout()])
    res = es.simulate(net, random_events(10, (1, 2, 2), 2000, np.random.default_rng(0)), engine="async",
                      dt_us=DT, fast_path=True)
    assert res.info["path"] == "general" and "per-step bias" in res.info["fast_path_unsupported"]


# ----------------------------------------------------------------------------- a converted model, real data


@pytest.fixture(scope="module")
def qcfs_net():
    pytest.importorskip("torch")
    return es.load(ROOT / "models" / "seeds" / "checkpoints" / "qcfs_nmnist.pth", input_shape=(2, 34, 34),
                   pool="avg", v_init=0.5)


@pytest.mark.realdata
def test_qcfs_converted_model_on_nmnist(qcfs_net, nmnist_dir):
    """QCFS conv layers with BN folded into their biases, on real N-MNIST recordings: every
    observable identical on both paths, windowed or not."""
    net = qcfs_net
    assert sum(1 for layer in net.layers if getattr(layer, "bias", None) is not None) >= 3
    files = sorted((nmnist_dir / "test").glob("*.bs2"))[:2]
    assert files
    kw = dict(dt_us=10_000, record=("spike_times", "spikes"), snapshot_synops=[100_000, 400_000])
    for f in files:
        ev = es.read_events(f)
        fast, general = both(net, ev, **kw)
        assert_same(fast, general)
        assert fast.spikes > 10_000
    t_stop = float(np.ceil((ev["t"][-1] + 1) / 10_000) * 10_000)
    check_all_equal(net, ev, [50_000, 120_000], t_stop_us=t_stop, **kw)


@pytest.mark.parametrize("neuron", [es.LIF(threshold=0.7333, leak=0.97), es.IF(threshold=0.7333)])
def test_zero_charge_leaves_a_driven_neuron_alone(neuron):
    """A bias drives the 16 neurons of one channel identically; events reach some of them through a
    zero weight. A zero charge changes nothing, so all 16 cross at one instant (in flat order, on
    both paths, as the reference has them), and the layer after them sees one instant, not several
    a rounding apart (Hypothesis found the latter: neuron 14 a bit after 15, and a different count
    downstream)."""
    net = es.Network((2, 4, 4), [
        es.Conv2d(np.array([[[[0.125]], [[0.0]]]]), bias=np.array([0.21875])), neuron, es.Flatten(),
        es.Linear(np.tile([1.0, -0.875, 0.5, -0.625], (3, 4))), es.IF(threshold=0.5), es.Linear(np.eye(3)),
        es.Readout()])
    events = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    events["t"], events["x"], events["y"], events["p"] = [2044, 2547, 3402], [1, 1, 0], [0, 0, 0], [1, 1, 1]
    fast, general = both(net, events, dt_us=DT, t_stop_us=5000.0, record="spike_times")
    assert_same(fast, general)
    first = general.spike_times["1." + type(neuron).__name__]
    t0 = first["t_us"][first["t_us"] == first["t_us"].min()]
    assert t0.size == 16 and np.all(t0 == t0[0])          # one instant for the whole channel
    np.testing.assert_array_equal(first["neuron"][:16], np.arange(16))
    assert_matches_reference(net, general, reference_simulate(net, events, DT, 5000.0))
