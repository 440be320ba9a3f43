"""``simulate(..., engine="async", dtype="float32")``: the fast path against the general path, bit
for bit, and both against an independent NumPy float32 reference (``tests/f32_reference.py``) and
hand-computed cases; the float64 default; errors for what float32 does not cover."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.engines import fastpath

from async_reference import continuous_network, random_events, warm_async  # noqa: E402,F401
from f32_reference import reference_float32  # noqa: E402
from test_fastpath import assert_same, both, fast_eligible  # noqa: E402

DT = 1000.0
F32 = dict(dtype="float32")


def _events(ts, pos=None, shape=(1, 1, 1)):
    ev = np.zeros(len(ts), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"] = ts
    if pos is not None:
        c, h, w = shape
        ev["p"], rem = np.divmod(pos, h * w)
        ev["y"], ev["x"] = np.divmod(rem, w)
    return ev


def _spike_list(res, name):
    return [(float(t), int(i)) for t, i in res.info["spike_times"][name]]


# ----------------------------------------------------------------------------- hand-computed


def test_tenth_of_a_threshold():
    """w = 0.1, θ = 1: in float32 ten impulses sum to 1.0000001 > 1 (spike at the 10th); in float64
    to 0.9999999999999999 (spike at the 11th). The float32 sum, by NumPy: float32(0.1) added ten times."""
    acc32, acc64 = np.float32(0.0), 0.0
    for _ in range(10):
        acc32, acc64 = acc32 + np.float32(0.1), acc64 + 0.1
    assert acc32 > 1 and acc64 < 1   # the premise, computed independently of the engine
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.1]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([[1.0]])), es.Readout()])
    ev = _events(np.arange(1, 13) * 100)
    for kw, first in ((F32, 1000.0), ({}, 1100.0), (dict(dtype="float64"), 1100.0)):
        fast, general = both(net, ev, dt_us=DT, t_stop_us=2000, record="spike_times", **kw)
        assert_same(fast, general)
        assert _spike_list(fast, "2.IF")[0] == (first, 0), kw


def test_lif_scale_is_float32():
    """LIF in scaled time, by hand: τ = 1 ms, w = 0.3, θ = 0.5, impulses at 0 and 1000 µs. The
    second impulse sees q = float32(0.3) and adds float32(float32(0.3)·s), s = float32(e); the
    threshold is float32(float32(0.5)·s). Spike iff q > θ·s, computed here with NumPy float32."""
    f = np.float32
    s = f(np.exp(1.0))
    q = f(0.3) + f(f(0.3) * s)
    spikes = bool(q > f(0.5) * s)
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.3]])), es.LIF(tau_s=1e-3, threshold=0.5),
                                 es.Linear(np.array([[1.0]])), es.Readout()])
    fast, general = both(net, _events([0, 1000]), dt_us=DT, t_stop_us=2000, record="spike_times", **F32)
    assert_same(fast, general)
    assert _spike_list(fast, "2.LIF") == ([(1000.0, 0)] if spikes else [])


# ----------------------------------------------------------------------------- the NumPy float32 reference


def _chain(rng, sizes, lif, **neuron):
    """Flatten → (Linear → IF/LIF)* → Linear → Readout; ``threshold="per-channel"``: θ from 0.5 to 1.3."""
    layers = [es.Flatten()]
    for k in range(len(sizes) - 2):
        kw = dict(neuron)
        if isinstance(kw.get("threshold"), str):
            kw["threshold"] = np.linspace(0.5, 1.3, sizes[k + 1])
        layers += [es.Linear(rng.normal(0.0, 0.45, (sizes[k + 1], sizes[k]))),
                   es.LIF(tau_s=lif, **kw) if lif else es.IF(**kw)]
    layers += [es.Linear(rng.normal(0.0, 0.5, (sizes[-1], sizes[-2]))), es.Readout()]
    return es.Network((2, 3, 3), layers)


@pytest.mark.parametrize("seed, lif, neuron", [
    (0, None, dict(threshold=1.0)),
    (1, None, dict(threshold=0.7, compare=">=", v_init=0.3, spike_amplitude="threshold")),
    (2, None, dict(threshold=0.9, reset="zero")),
    (3, 0.004, dict(threshold=0.8)),
    (4, 0.002, dict(threshold=0.6, reset="zero", compare=">=")),
    (5, 0.0002, dict(threshold=0.5)),      # τ = 200 µs over 30 ms: renormalised (exponent > 60) many times
    (6, None, dict(threshold="per-channel")),                          # a threshold vector per tap
    (7, 0.003, dict(threshold="per-channel", spike_amplitude="threshold")),
])
def test_against_float32_reference(seed, lif, neuron):
    rng = np.random.default_rng(seed)
    net = _chain(rng, [18, 12, 7, 4], lif, **neuron)
    ev = random_events(300, (2, 3, 3), 30_000, rng)
    fast, general = both(net, ev, dt_us=DT, t_stop_us=30_000, record="spike_times", **F32)
    assert_same(fast, general)
    times, counts, logits, membranes = reference_float32(net, ev, 30_000)
    assert sum(counts.values()) > 20
    for name, expected in times.items():
        assert _spike_list(fast, name) == expected, name
    np.testing.assert_array_equal(fast.final_logits, logits)
    # the membranes (general path: record="membrane"), bit for bit; float64 differs from them
    for dtype, equal in (("float32", True), ("float64", False)):
        res = es.simulate(net, ev, engine="async", dt_us=DT, t_stop_us=30_000, snapshot_times_us=[30_000],
                          record="membrane", dtype=dtype)
        assert res.info["path"] == "general"
        got = np.concatenate([res.membranes[name][-1] for name in membranes])
        assert np.array_equal(got, np.concatenate(list(membranes.values()))) == equal, dtype


# ----------------------------------------------------------------------------- fast = general, random networks


def _perturbed(net: es.Network, rng) -> es.Network:
    """The network with weights that are not float32 values (float32 rounding matters)."""
    return es.Network(net.input_shape, [
        dataclasses.replace(l, weight=l.weight + rng.normal(0.0, 0.05, l.weight.shape)) if l.synaptic else l
        for l in net.layers])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(0, 150))
def test_fast_equals_general_float32(net, seed, n):
    rng = np.random.default_rng(seed)
    net = _perturbed(fast_eligible(net), rng)
    events = random_events(n, (2, 4, 4), 4000, rng)
    fast, general = both(net, events, dt_us=DT, t_stop_us=5000, record=("spike_times", "spikes"),
                         snapshot_synops=[50, 300], **F32)
    assert_same(fast, general)


def test_pause_resume_float32():
    """A paused float32 run (general path) continues in float32: equal to one call."""
    rng = np.random.default_rng(7)
    net = _chain(rng, [18, 10, 3], 0.003, threshold=0.6)
    ev = random_events(200, (2, 3, 3), 10_000, rng)
    whole = es.simulate(net, ev, engine="async", dt_us=DT, t_stop_us=10_000, record="spike_times", **F32)
    state = es.simulate(net, ev[ev["t"] < 4000], engine="async", dt_us=DT, t_stop_us=10_000, pause_us=4000,
                        record="spike_times", **F32)
    assert state.options["dtype"] == "float32"
    res = es.simulate(net, ev[ev["t"] >= 4000], engine="async", resume=state)
    np.testing.assert_array_equal(res.logits, whole.logits)
    for name, rec in whole.info["spike_times"].items():
        np.testing.assert_array_equal(res.info["spike_times"][name], rec)
    with pytest.raises(ValueError, match="dtype='float64' differs"):
        es.simulate(net, ev[ev["t"] >= 4000], engine="async", resume=state, dtype="float64")


@pytest.mark.realdata
def test_nmnist_shipped_model_float32(nmnist_dir):
    """The shipped conv model on real recordings (16- and 32-channel float32 taps): fast = general."""
    net = es.load(Path(__file__).resolve().parents[1] / "models" / "nmnist" / "nmnist_if.npz")
    for f in sorted((nmnist_dir / "test").glob("*.bs2"))[:2]:
        fast, general = both(net, es.read_events(f), record="spike_times", dt_us=10_000, **F32)
        assert_same(fast, general)
        assert fast.spikes > 1000


# ----------------------------------------------------------------------------- kernel source and errors


def test_kernel_source_differs_by_dtype():
    net = es.Network((2, 4, 4), [es.Conv2d(np.full((3, 2, 3, 3), 0.3)), es.IF(), es.Flatten(),
                                 es.Linear(np.ones((2, 12))), es.Readout()])
    s64, s32 = fastpath.kernel_source(net), fastpath.kernel_source(net, dtype="float32")
    assert "DTYPE = 'float64'" in s64 and "DTYPE = 'float32'" in s32
    assert "make_tap(3, False, 'scalar', True)" in s32 and "make_tap(3, False, 'scalar')" in s64
    assert fastpath.source_hash(s64) != fastpath.source_hash(s32)


@pytest.mark.parametrize("bad", ["float16", "int32", "double64", 3])
def test_bad_dtype(bad):
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[1.0]])), es.IF(), es.Readout()])
    with pytest.raises(ValueError, match=r"dtype=.*'float64', 'float32'"):
        es.simulate(net, _events([10]), engine="async", dt_us=DT, dtype=bad)


def test_numpy_dtype_names_accepted():
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.1]])), es.IF(), es.Readout()])
    a = es.simulate(net, _events(np.arange(1, 13) * 100), engine="async", dt_us=DT, dtype=np.float32)
    b = es.simulate(net, _events(np.arange(1, 13) * 100), engine="async", dt_us=DT, dtype="float32")
    np.testing.assert_array_equal(a.spikes_per_row, b.spikes_per_row)


def test_stepped_engine_has_no_float32():
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[2.0]])), es.IF(), es.Readout()])
    with pytest.raises(ValueError, match="engine='async' only"):
        es.simulate(net, _events([10]), dt_us=DT, steps=2, dtype="float32")
    res = es.simulate(net, _events([10]), dt_us=DT, steps=2, dtype="float64")   # the default is fine
    assert res.spikes == 1


@pytest.mark.parametrize("change, layer, why", [
    (dict(simultaneous="batch"), es.IF(), "batch"),
    ({}, es.IF(refractory_us=100.0), "refractory"),
    ({}, es.IF(step_gain=np.ones(3)), "gain"),
])
def test_float32_coverage_errors(change, layer, why):
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[1.0]])), layer, es.Readout()])
    with pytest.raises(ValueError, match=f"dtype='float32' covers.*{why}"):
        es.simulate(net, _events([10]), engine="async", dt_us=DT, **change, **F32)


def test_float32_array_input_error():
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[1.0]])), es.IF(), es.Readout()])
    with pytest.raises(ValueError, match="dtype='float32' covers.*array input"):
        es.simulate(net, np.ones((3, 1, 1, 1)), engine="async", dt_us=DT, input_kind="events", **F32)
