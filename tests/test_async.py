"""``engine="async"`` in continuous time, snapshots, streaming and errors.

Independent references: the plain-Python heapq simulator in ``tests/async_reference.py``
(Hypothesis-generated networks and streams), closed-form solutions computed by hand in the tests,
PyTorch's conv2d for the implicit connectivity, and re-simulation for the one-pass snapshots.
"""
from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.engines import asynchronous

from async_reference import (assert_matches_reference, continuous_network, random_events,  # noqa: F401
                             reference_simulate, warm_async)

DT = 1000.0


def _one(t_us, x=0, y=0, p=0):
    ev = np.zeros(len(t_us), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"], ev["x"], ev["y"], ev["p"] = t_us, x, y, p
    return ev


def _chain(w, spec, readout_w=1.0, **linear):
    """input (1,1,1) -> Linear(w) -> spec -> Linear(readout_w) -> Readout."""
    return es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[w]]), **linear), spec,
                                  es.Linear(np.array([[readout_w]])), es.Readout()])


def _times(res, layer="2.IF"):
    return res.info["spike_times"][layer]["t_us"].tolist()


# ----------------------------------------------------------------------------- heapq reference


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(0, 120))
def test_matches_heapq_reference(net, seed, n):
    """Identical spike times (exact in all-IF networks, 1e-9 relative once a LIF is involved),
    spike and synop counts."""
    events = random_events(n, (2, 4, 4), 4000, np.random.default_rng(seed))
    res = es.simulate(net, events, engine="async", dt_us=DT, t_stop_us=5000, record="spike_times")
    ref = reference_simulate(net, events, DT, 5000.0)
    assert_matches_reference(net, res, ref)
    np.testing.assert_allclose(res.final_logits, ref.logits, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- closed forms


def test_if_constant_current_crossings():
    """Analog input I per step on an IF: crossings at k·θ·Δt/(w·I) exactly."""
    res = es.simulate(_chain(0.75, es.IF(threshold=1.0)), np.full((1, 1, 1), 0.5), engine="async", dt_us=DT,
                      steps=20, input_kind="analog", record="spike_times")
    period = 1.0 / (0.75 * 0.5 / DT)
    np.testing.assert_allclose(_times(res), period * np.arange(1, 8), rtol=1e-12)
    assert res.macs == 1      # the analog frame is computed once in continuous time


def test_lif_exact_leak_between_impulses():
    """One impulse w at t = 100 µs, then v(t) = w·e^{−(t−100)/τ} at every snapshot."""
    tau_s = 0.002
    res = es.simulate(_chain(0.8, es.LIF(tau_s=tau_s, threshold=5.0)), _one([100]), engine="async",
                      t_stop_us=9000, snapshot_times_us=[100, 600, 2100, 9000], record="membrane")
    t = np.array([100, 600, 2100, 9000.0])
    np.testing.assert_allclose(res.membranes["2.LIF"][:, 0], 0.8 * np.exp(-(t - 100) * 1e-6 / tau_s), rtol=1e-13)


def test_per_step_leak_maps_to_time_constant():
    """λ per step ↔ τ = −Δt/ln λ: after an impulse the membrane one step later is λ·w."""
    res = es.simulate(_chain(0.5, es.LIF(leak=0.9, threshold=5.0)), _one([0]), engine="async", dt_us=DT,
                      steps=3, record="membrane")
    np.testing.assert_allclose(res.membranes["2.LIF"][:, 0], 0.5 * 0.9 ** np.arange(1, 4), rtol=1e-13)


def test_lif_bias_drive_fires_periodically():
    """Bias b per step: v∞ = b·τ/Δt; from 0 the neuron crosses θ after τ·ln(v∞/(v∞−θ)), then resets
    to 0 and repeats."""
    tau_s, b, theta = 0.005, 0.4, 1.0
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.zeros((1, 1)), bias=np.array([b])),
                                 es.LIF(tau_s=tau_s, threshold=theta), es.Linear(np.ones((1, 1))), es.Readout()])
    res = es.simulate(net, _one([]), engine="async", dt_us=DT, t_stop_us=50_000, record="spike_times")
    tau_us, vinf = tau_s * 1e6, b / DT * tau_s * 1e6
    period = tau_us * math.log(vinf / (vinf - theta))
    got = _times(res, "2.LIF")
    np.testing.assert_allclose(got, period * np.arange(1, len(got) + 1), rtol=1e-9)
    assert len(got) == int(50_000 // period)


def test_later_input_invalidates_prediction():
    """Driven IF (r = 0.5/Δt): an inhibitory impulse −0.25 at 500 µs moves the crossing from 2000
    to 2500 µs. An excitatory 0.5 at 3000 µs (v = 0.5 → 1.0, not > θ) brings the next crossing
    from 4000 forward to 3000 exactly, after which the next is due at 5000 (past t_stop)."""
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[-0.25]]), bias=np.array([0.5])),
                                 es.IF(threshold=1.0), es.Linear(np.ones((1, 1))), es.Readout()])
    res = es.simulate(net, _one([500]), engine="async", dt_us=DT, t_stop_us=4000, record="spike_times")
    assert _times(res) == [2500.0]
    net2 = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.5]]), bias=np.array([0.5])),
                                  es.IF(threshold=1.0), es.Linear(np.ones((1, 1))), es.Readout()])
    res2 = es.simulate(net2, _one([3000]), engine="async", dt_us=DT, t_stop_us=4500, record="spike_times")
    assert _times(res2) == [2000.0, 3000.0]


def test_refractory_holds_membrane_and_drops_input():
    """Driven IF (r = 1/Δt per µs, θ = 1): spikes at 1000, then held at 0 for 500 µs (an input at
    1200 is dropped), next at 1500 + 1000."""
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.6]]), bias=np.array([1.0])),
                                 es.IF(threshold=1.0, refractory_us=500), es.Linear(np.ones((1, 1))), es.Readout()])
    res = es.simulate(net, _one([1200]), engine="async", dt_us=DT, t_stop_us=4000, record="spike_times")
    assert _times(res) == [1000.0, 2500.0, 4000.0]


def test_synaptic_delay_and_multiple_spikes_at_one_instant():
    """A 3.5θ impulse makes a subtract-reset IF fire 3 times at once; a 250 µs delay on the next
    layer shifts its 3 arrivals, integrated one at a time (1.0, 1.1, 1.2 > θ = 0.9: one spike each)."""
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[3.5]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([[1.0]]), delay_us=250), es.IF(threshold=0.9),
                                 es.Linear(np.ones((1, 1))), es.Readout()])
    res = es.simulate(net, _one([100]), engine="async", t_stop_us=1000, record="spike_times")
    assert _times(res) == [100.0] * 3
    assert _times(res, "4.IF") == [350.0] * 3
    assert res.synops_per_layer["3.Linear"] == 3


def test_per_step_gain_and_bias_in_continuous_time():
    """BNTT tables: bias 0.5 then 2.0 per step (rates 0.5/Δt, 2/Δt): v(1000) = 0.5, crossing at
    1250, then 1750; an input at 1800 arrives with gain 4 (step 1): 0.1·4 → v = 0.1 + 0.4 = 0.5."""
    spec = es.IF(threshold=1.0, step_gain=np.array([1.0, 4.0]), step_bias=np.array([0.5, 2.0]))
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.1]])), spec, es.Linear(np.ones((1, 1))),
                                 es.Readout()])
    res = es.simulate(net, _one([1800]), engine="async", dt_us=DT, steps=2, record=("spike_times", "membrane"))
    assert _times(res) == [1250.0, 1750.0]
    np.testing.assert_allclose(res.membranes["2.IF"][-1, 0], (1800 - 1750) * 2 / DT + 0.4 + 200 * 2 / DT)


def test_analog_frames_change_the_drive():
    """One analog frame per step: 0.5 then 2.0 into an IF: same crossings as the bias table above."""
    res = es.simulate(_chain(1.0, es.IF(threshold=1.0)), np.array([0.5, 2.0]).reshape(2, 1, 1, 1),
                      engine="async", dt_us=DT, input_kind="analog", record="spike_times")
    assert _times(res) == [1250.0, 1750.0]
    assert res.macs == 2


def test_one_hour_stream_keeps_full_precision():
    """72 000 impulses over one hour (τ = 10 ms, renormalised every 2 s, ~1800 times): no overflow,
    and the membrane after the last impulse equals the periodic closed form to 1e-12; a driven IF
    fires exactly every θ/r over the hour."""
    tau_s, w, period_us = 0.01, 0.3, 50_000
    times = np.arange(0, 3600 * 10**6, period_us)
    res = es.simulate(_chain(w, es.LIF(tau_s=tau_s, threshold=10.0)), _one(times), engine="async",
                      t_stop_us=float(times[-1] + 1000), snapshot_times_us=[times[-1], times[-1] + 1000],
                      record="membrane")
    decay = math.exp(-period_us * 1e-6 / tau_s)
    v_after = w * (1 - decay ** len(times)) / (1 - decay)
    mem = res.membranes["2.LIF"][:, 0]
    assert np.all(np.isfinite(mem))
    np.testing.assert_allclose(mem, [v_after, v_after * math.exp(-1e-3 / tau_s)], rtol=1e-12)
    driven = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.zeros((1, 1)), bias=np.array([0.25])),
                                    es.IF(threshold=1.0), es.Linear(np.ones((1, 1))), es.Readout()])
    hour = es.simulate(driven, _one([]), engine="async", dt_us=DT, t_stop_us=3600e6, record="spike_times")
    got = _times(hour)
    assert len(got) == 900_000 and got[-1] == pytest.approx(3600e6, rel=1e-12)
    np.testing.assert_allclose(np.diff(got), 4000.0, rtol=1e-9)


def test_conv_fanout_equals_materialised_matrix():
    """Conv fan-out by index arithmetic equals a scipy.sparse matrix materialised from PyTorch's
    conv2d (unit impulses, stride/padding/groups), in both modes."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (4, 1, 3, 2))
    conv = es.Conv2d(w, stride=(2, 1), padding=(1, 1), groups=2)
    net = es.Network((2, 5, 4), [conv, es.IF(threshold=1e9), es.Flatten(), es.Linear(np.zeros((1, 60))),
                                 es.Readout()])
    cols = []
    for i in range(2 * 5 * 4):
        x = torch.zeros(1, 2, 5, 4, dtype=torch.float64)
        x.view(-1)[i] = 1.0
        y = torch.nn.functional.conv2d(x, torch.as_tensor(w), stride=(2, 1), padding=(1, 1), groups=2)
        cols.append(y.numpy().ravel())
    matrix = scipy.sparse.csc_matrix(np.stack(cols, axis=1))
    for i in rng.choice(40, 8, replace=False):
        c, rem = divmod(int(i), 20)
        y, x = divmod(rem, 4)
        for mode in ("none", "batch"):
            res = es.simulate(net, _one([0], x=x, y=y, p=c), engine="async", dt_us=DT, simultaneous=mode,
                              steps=1, record="membrane")
            np.testing.assert_allclose(res.membranes["1.IF"][0].ravel(), matrix[:, i].toarray().ravel(), atol=1e-15)
            assert res.synops == matrix[:, i].nnz


# ----------------------------------------------------------------------------- snapshots and streaming


def _conv_net(rng, bias=True):
    return es.Network((2, 8, 8), [
        es.Conv2d(rng.normal(0, .8, (4, 2, 3, 3)), bias=rng.normal(0, .05, 4) if bias else None, padding=1),
        es.LIF(leak=0.9, threshold=1.0), es.MaxPool2d(2), es.Flatten(), es.Linear(rng.normal(0, .4, (6, 64))),
        es.IF(threshold=0.8), es.Linear(rng.normal(0, 1, (4, 6))), es.Readout()])


@pytest.mark.parametrize("mode", ["none", "batch"])
def test_snapshots_in_one_pass_equal_resimulation(mode):
    """Rows at times and at synop budgets from one pass equal separate runs stopped at those times."""
    rng = np.random.default_rng(1)
    net = _conv_net(rng)
    ev = random_events(1500, (2, 8, 8), 20_000, rng)
    times = [3000.0, 7000.0, 12_000.0, 20_000.0]
    res = es.simulate(net, ev, engine="async", dt_us=DT, simultaneous=mode, t_stop_us=20_000,
                      snapshot_times_us=times, snapshot_synops=[5_000, 40_000, 10**12])
    assert res.info["snapshot_synops_unreached"] == [10**12]
    kinds = res.row_kind.tolist()
    assert kinds.count(0) == 4 and kinds.count(1) == 2 and np.all(np.diff(res.times_us) >= 0)
    for t in times:
        alone = es.simulate(net, ev, engine="async", dt_us=DT, simultaneous=mode, t_stop_us=t)
        at = res.at(t_us=t)
        assert at.spikes_per_layer == alone.spikes_per_layer and at.synops == alone.synops
        np.testing.assert_allclose(at.logits, alone.final_logits, rtol=1e-12, atol=1e-12)
    cum = res.cumulative("synops")
    budget_rows = np.flatnonzero(res.row_kind == 1)
    for budget, row in zip((5_000, 40_000), budget_rows):
        assert cum[row] >= budget > (cum[row - 1] if row else 0)
        t = res.times_us[row]
        before = t - (DT if mode == "batch" else 1e-3)   # the previous step / just before t
        run = lambda t_stop: es.simulate(net, ev, engine="async", dt_us=DT, simultaneous=mode,  # noqa: E731
                                         t_stop_us=t_stop).synops
        assert run(before) < budget <= run(t)   # the budget was crossed at exactly that time


@pytest.mark.parametrize("mode", ["none", "batch"])
def test_streamed_chunks_equal_one_array(mode):
    """Tiny chunks, and a generator of arbitrary slices (splitting a timestamp), change nothing."""
    rng = np.random.default_rng(2)
    net = _conv_net(rng)
    ev = random_events(2000, (2, 8, 8), 30_000, rng)
    opts = dict(engine="async", dt_us=DT, simultaneous=mode, t_stop_us=30_000, record=("spikes", "spike_times"))
    whole = es.simulate(net, ev, **opts)
    cuts = np.sort(rng.choice(len(ev), 25, replace=False))
    dup = np.flatnonzero(np.diff(ev["t"]) == 0)
    cuts = np.unique(np.concatenate([cuts, dup[:3] + 1]))      # some cuts fall inside one timestamp
    for other in (es.simulate(net, ev, chunk_events=7, **opts),
                  es.simulate(net, (part for part in np.split(ev, cuts)), **opts)):
        np.testing.assert_array_equal(other.spikes_per_row, whole.spikes_per_row)
        np.testing.assert_array_equal(other.synops_per_row, whole.synops_per_row)
        np.testing.assert_array_equal(other.logits, whole.logits)
        for name, times in whole.info["spike_times"].items():
            np.testing.assert_array_equal(other.info["spike_times"][name], times)
    assert whole.spikes > 100


def test_spike_log_and_rasters_agree():
    """Exact spike times, binned by row, equal the per-row rasters (log growth included)."""
    rng = np.random.default_rng(3)
    net = _conv_net(rng)
    res = es.simulate(net, random_events(3000, (2, 8, 8), 10_000, rng), engine="async", dt_us=DT,
                      record=("spikes", "spike_times"))
    for name, raster in res.rasters.items():
        times = res.spike_times[name]
        rows = np.searchsorted(res.times_us, times["t_us"], side="left")
        counts = np.zeros_like(raster.reshape(len(res.times_us), -1))
        np.add.at(counts, (rows, times["neuron"]), 1)
        np.testing.assert_array_equal(counts, raster.reshape(counts.shape))
        assert raster.sum() == res.spikes_per_layer[name] > 0


def test_module_docstring_example():
    result = doctest.testmod(asynchronous, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5, "the module docstring's example is gone"   # 5 statements today
    assert result.failed == 0


# ----------------------------------------------------------------------------- errors


def test_queue_overflow_is_reported():
    net = _chain(1.0, es.IF(threshold=0.5))
    delayed = es.Network((1, 1, 1), [*net.layers[:3], es.Linear(np.ones((1, 1)), delay_us=1e6), es.IF(),
                                     es.Linear(np.ones((1, 1))), es.Readout()])
    with pytest.raises(ValueError, match="event queue overflow"):
        es.simulate(delayed, _one(np.arange(100) * 10), engine="async", t_stop_us=2e6, queue_limit=16)


def test_runaway_multi_spike_is_reported():
    with pytest.raises(ValueError, match=r"more than 2\*\*20 times"):
        es.simulate(_chain(1e9, es.IF(threshold=1e-3)), _one([0]), engine="async", t_stop_us=10)


@pytest.mark.parametrize("kwargs,match", [
    (dict(simultaneous="all"), "simultaneous="),
    (dict(record="voltage"), "record="),
    (dict(dt_us=-1), "dt_us must be"),
    (dict(simultaneous="batch"), "pass dt_us"),
    (dict(chunk_events=0), "chunk_events"),
    (dict(queue_limit=4), "queue_limit"),
    (dict(steps=3, t_stop_us=100, dt_us=DT), "at most one of steps"),
    (dict(snapshot_times_us=[10**9], t_stop_us=100), "outside the simulation"),
    (dict(snapshot_synops=[0]), "positive synop budgets"),
    (dict(input_kind="analog"), "applies to arrays"),
    (dict(t_stop_us=-5, t_start_us=0), "before t_start_us"),
])
def test_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        es.simulate(_chain(1.0, es.IF()), _one([0, 5]), engine="async", **kwargs)


def test_input_errors():
    net = es.Network((2, 4, 4), [es.Conv2d(np.ones((1, 2, 1, 1))), es.IF(), es.Flatten(),
                                 es.Linear(np.ones((1, 16))), es.Readout()])
    ev = _one([5, 3])
    with pytest.raises(ValueError, match="timestamps decrease at event 1: t = "):
        es.simulate(net, ev, engine="async")
    with pytest.raises(ValueError, match="timestamps decrease at event 1: t = "):
        es.simulate(net, iter([_one([5]), _one([3])]), engine="async", t_stop_us=10)
    with pytest.raises(ValueError, match=r"event 0: x=9 lies outside the sensor \(0..3 for network input"):
        es.simulate(net, _one([1], x=9), engine="async")
    with pytest.raises(ValueError, match="event 0: polarity p=2, expected 0 or 1"):
        es.simulate(net, _one([1], p=2), engine="async")
    with pytest.raises(ValueError, match="needs an end"):
        es.simulate(net, iter([_one([1])]), engine="async")
    with pytest.raises(ValueError, match="has no fields t, x, y, p"):
        es.simulate(net, iter([np.zeros(3)]), engine="async", t_stop_us=10)
    with pytest.raises(ValueError, match="step grid: pass dt_us"):
        es.simulate(net, np.ones((3, 2, 4, 4), np.int64), engine="async")
    three = es.Network((3, 4, 4), [es.Conv2d(np.ones((1, 3, 1, 1))), es.IF(), es.Flatten(),
                                   es.Linear(np.ones((1, 16))), es.Readout()])
    with pytest.raises(ValueError, match=r"events need a network input of shape \(2, H, W\)"):
        es.simulate(three, ev[:1], engine="async")


def test_network_errors():
    rng = np.random.default_rng(0)
    conv_conv = es.Network((2, 4, 4), [es.Conv2d(rng.normal(size=(2, 2, 3, 3)), padding=1),
                                       es.Conv2d(rng.normal(size=(2, 2, 3, 3)), padding=1), es.IF()])
    with pytest.raises(ValueError, match="receives the weighted output of another layer"):
        es.simulate(conv_conv, _one([0]), engine="async")
    mixed = es.Network((2, 4, 4), [es.Conv2d(rng.normal(size=(2, 2, 3, 3)), padding=1), es.IF(),
                                   es.Add(source=-1), es.Conv2d(rng.normal(size=(2, 2, 3, 3))), es.IF()])
    with pytest.raises(ValueError, match="spikes mixed with a constant current"):
        es.simulate(mixed, np.ones((2, 4, 4)), engine="async", dt_us=DT, steps=2, input_kind="analog")
    with pytest.raises(ValueError, match="pass dt_us= to turn it into a current"):
        es.simulate(_chain(1.0, es.IF(), bias=np.ones(1)), _one([0]), engine="async")
    with pytest.raises(ValueError, match="per-step leak needs a step length"):
        es.simulate(_chain(1.0, es.LIF(leak=0.9)), _one([0]), engine="async")
    with pytest.raises(ValueError, match="per-step gain/bias covers 2 steps"):
        es.simulate(_chain(1.0, es.IF(step_gain=np.ones(2))), _one([0]), engine="async", dt_us=DT, steps=3)


def test_result_fields_without_a_spike_log():
    """``row_kind`` defaults to time rows; asking for spike times that were not recorded says how to."""
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[2.0]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([[1.0]])), es.Readout()])
    res = es.simulate(net, np.ones((1, 1, 1)), steps=3, input_kind="analog")
    assert res.row_kind.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="record='spike_times'"):
        res.spike_times
