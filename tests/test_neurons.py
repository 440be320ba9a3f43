"""CubaLIF, Threshold, LI, CubaLI and Recurrent (:mod:`eventsim.neurons`) in both engines, against
plain references: a NumPy step loop (``tests/reference.py``), a matrix-exponential fine grid and a
closed-form crossing (``tests/async_reference.py``), and the stepped engine for the asynchronous
engine's batch mode."""
from __future__ import annotations

import math

import numpy as np
import pytest

import eventsim as es
from eventsim.kernels.async_cuba import crossing, evolve

from async_reference import cuba_fine_grid
from reference import neuron_model_forward

DT = 1000.0


def _net(rng, readout="li", syn_form="leak", rec_bias=True):
    syn = dict(syn_leak=0.7) if syn_form == "leak" else dict(tau_syn_s=0.004)
    last = {"li": es.LI(leak=0.8), "cubali": es.CubaLI(syn_leak=0.6, tau_s=0.01), "sum": es.Readout()}[readout]
    return es.Network((2, 4, 4), [
        es.Flatten(), es.Linear(rng.normal(0, 0.8, (6, 32))), es.LIF(leak=0.9, threshold=1.0),
        es.Recurrent(rng.normal(0, 0.5, (6, 6)), bias=rng.normal(0, 0.05, 6) if rec_bias else None),
        es.Linear(rng.normal(0, 1, (5, 6))), es.CubaLIF(leak=0.85, threshold=1.0, **syn),
        es.Linear(rng.normal(0, 1, (3, 5))), last])


@pytest.mark.parametrize("readout,syn_form", [("li", "leak"), ("cubali", "tau"), ("sum", "tau")])
def test_stepped_matches_numpy_reference(readout, syn_form):
    rng = np.random.default_rng(3)
    net = _net(rng, readout, syn_form)
    x = (rng.random((40, 2, 4, 4)) < 0.25).astype(np.int64)
    res = es.simulate(net, x, engine="stepped", dt_us=DT, record="spikes")
    rasters, y, synops = neuron_model_forward(net, x, DT)
    for i in (2, 5):
        assert rasters[i].sum() > 10
        np.testing.assert_array_equal(res.rasters[net.layers[i].name], rasters[i])
    np.testing.assert_allclose(res.logits, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(res.synops_per_row, synops)
    assert res.synops_per_row[:, 3].sum() > 0 and res.synops_per_row[0, 3] == 0   # feedback from step 1 on


def test_threshold_is_stateless():
    net = es.Network((1, 1, 2), [es.Flatten(), es.Linear(np.array([[1.0, -1.0]])), es.Threshold(threshold=0.5),
                                 es.Linear(np.array([[1.0]])), es.Readout()])
    x = np.array([[1, 0], [1, 1], [0, 0], [2, 1], [1, 0]]).reshape(5, 1, 1, 2)
    res = es.simulate(net, x, dt_us=DT, record="spikes")
    assert res.rasters["2.Threshold"].ravel().tolist() == [1, 0, 0, 1, 1]   # I = x0 − x1 > 0.5
    batch = es.simulate(net, x, engine="async", dt_us=DT, simultaneous="batch", record="spikes")
    np.testing.assert_array_equal(batch.rasters["2.Threshold"], res.rasters["2.Threshold"])
    with pytest.raises(ValueError, match="no continuous-time form"):
        es.simulate(net, x, engine="async", dt_us=DT)


@pytest.mark.parametrize("readout,syn_form,bias", [("li", "leak", True), ("sum", "tau", False),
                                                   ("cubali", "tau", True)])
def test_async_batch_equals_stepped(readout, syn_form, bias):
    rng = np.random.default_rng(5)
    net = _net(rng, readout, syn_form, rec_bias=bias)
    x = (rng.random((50, 2, 4, 4)) < 0.2).astype(np.int64)
    a = es.simulate(net, x, engine="stepped", dt_us=DT, record=("spikes", "membrane"))
    b = es.simulate(net, x, engine="async", dt_us=DT, simultaneous="batch", record=("spikes", "membrane"))
    for name in a.rasters:
        assert a.rasters[name].sum() > 10
        np.testing.assert_array_equal(a.rasters[name], b.rasters[name])
        np.testing.assert_allclose(a.membranes[name], b.membranes[name], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.logits, b.logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a.synops_per_row, b.synops_per_row)
    np.testing.assert_array_equal(a.spikes_per_row, b.spikes_per_row)


# ----------------------------------------------------------------------------- continuous time


def test_crossing_closed_form():
    # τ = 2·τ_syn: v(s) = A·x + B·x² with x = e^{−s/τ}, a quadratic: v = θ has a closed form
    tau, tau_s, v0, i0, theta = 20.0, 10.0, 0.1, 0.5, 1.2
    a, b = 1 / tau, 1 / tau_s
    B = i0 / (a - b)
    A = v0 - B
    x = (-A + math.sqrt(A * A + 4 * B * theta)) / (2 * B)     # B < 0: the larger root comes first in s
    roots = [r for r in ((-A + math.sqrt(A * A + 4 * B * theta)) / (2 * B),
                         (-A - math.sqrt(A * A + 4 * B * theta)) / (2 * B)) if 0 < r < 1]
    s_exact = -tau * math.log(max(roots))
    t = crossing(v0, i0, 0.0, a, b, 0.0, 0.0, 1e6, theta, False)
    assert t == pytest.approx(s_exact, abs=1e-9)
    assert x > 0
    assert evolve(v0, i0, 0.0, a, b, t)[0] > theta >= evolve(v0, i0, 0.0, a, b, np.nextafter(t, 0))[0] - 1e-12
    # a peak below θ: no crossing; a peak above θ that falls back below by t_end: still found
    assert crossing(v0, i0, 0.0, a, b, 0.0, 0.0, 1e6, 5.0, False) == np.inf
    t_peak = crossing(v0, i0, 0.0, a, b, 0.0, 0.0, 200.0, theta, False)
    assert t_peak == pytest.approx(s_exact, abs=1e-9)


def test_crossing_cannot_miss_a_narrow_peak():
    # v rises and falls within ~1 µs of a 1e6 µs interval: a grid search would step over it
    a, b = 1 / 2.0, 1 / 0.2
    peak_s = math.log(b / a) / (b - a)
    peak = evolve(0.0, 1.0, 0.0, a, b, peak_s)[0]
    t = crossing(0.0, 1.0, 0.0, a, b, 0.0, 0.0, 1e6, peak * 0.999, True)
    assert 0 < t < peak_s
    assert crossing(0.0, 1.0, 0.0, a, b, 0.0, 0.0, 1e6, peak * 1.001, True) == np.inf


@pytest.mark.parametrize("tau_s,tau_syn_s", [(0.02, 0.005), (0.01, 0.01)])
def test_async_cuba_spike_times_match_fine_grid(tau_s, tau_syn_s):
    rng = np.random.default_rng(7)
    t_in = np.sort(rng.choice(np.arange(0, 60_000, 10), 60, replace=False))
    events = np.zeros(t_in.size, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    events["t"] = t_in
    w = 0.9
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[w]])),
                                 es.CubaLIF(tau_s=tau_s, tau_syn_s=tau_syn_s, threshold=0.35),
                                 es.Linear(np.array([[1.0]])), es.Readout()])
    res = es.simulate(net, events, engine="async", t_stop_us=70_000, record="spike_times")
    got = res.info["spike_times"]["2.CubaLIF"]["t_us"]
    ref = cuba_fine_grid([(float(t), w) for t in t_in], 70_000, tau_s * 1e6, tau_syn_s * 1e6, 0.35, grid_us=1.0)
    assert len(ref) > 5
    assert len(got) == len(ref)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    # crossings happen between inputs (the synaptic current charges on), not only at them
    assert not np.all(np.isin(got, t_in))


def test_async_cuba_with_drive_and_li_readout_closed_form():
    # constant current into a CubaLIF (no leak of v reached by the bias alone) and a LI readout
    net = es.Network((1,), [es.Linear(np.array([[0.0]]), bias=np.array([0.5])),
                            es.CubaLIF(tau_s=0.01, tau_syn_s=0.002, threshold=100.0),
                            es.Linear(np.array([[1.0]]), bias=np.array([2.0])), es.LI(tau_s=0.005)])
    times = [1000.0, 7000.0, 30_000.0]
    res = es.simulate(net, np.zeros((40, 1)), engine="async", dt_us=DT, input_kind="analog",
                      snapshot_times_us=times, record="membrane")
    # v∞ = r·τ with r = 0.5 per step of 1000 µs: v(t) = r·τ·(1 − (τ e^{−t/τ} − τs e^{−t/τs})/(τ − τs))
    tau, tau_syn, r = 10_000.0, 2000.0, 0.5 / DT
    v = [r * tau * (1 - (tau * math.exp(-t / tau) - tau_syn * math.exp(-t / tau_syn)) / (tau - tau_syn)) for t in times]
    np.testing.assert_allclose(res.membranes["1.CubaLIF"].ravel(), v, rtol=1e-9)
    y = [2.0 / DT * 5000.0 * (1 - math.exp(-t / 5000.0)) for t in times]   # LI under a constant 2 per step
    np.testing.assert_allclose(res.logits.ravel(), y, rtol=1e-9)


def test_async_li_readout_decays_exactly():
    events = np.zeros(2, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    events["t"] = [1000, 4000]
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[1.5]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([[2.0]])), es.LI(tau_s=0.003)])
    res = es.simulate(net, events, engine="async", t_stop_us=10_000, snapshot_times_us=[2000, 4000, 10_000])
    y = [2 * math.exp(-1 / 3), 2 * math.exp(-1) + 2, (2 * math.exp(-1) + 2) * math.exp(-2)]
    np.testing.assert_allclose(res.logits.ravel(), y, rtol=1e-12)


def test_recurrent_continuous_feedback_arrives_one_step_later():
    net2 = es.Network((1, 1, 2), [es.Flatten(), es.Linear(np.eye(2)), es.IF(threshold=0.5),
                                  es.Recurrent(np.array([[0, 0], [1.0, 0]])), es.Linear(np.eye(2)), es.Readout()])
    events = np.zeros(1, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    events["t"] = [1234]
    res = es.simulate(net2, events, engine="async", dt_us=DT, t_stop_us=5000, record="spike_times")
    st = res.info["spike_times"]["2.IF"]
    assert st["t_us"].tolist() == [1234.0, 2234.0] and st["neuron"].tolist() == [0, 1]
    # input event 2; each of the two spikes: feedback 2 (convention 'all' counts the zero weight) + readout 2
    assert res.synops == 2 + 2 * (2 + 2)
    with pytest.raises(ValueError, match="one step later"):
        es.simulate(net2, events, engine="async", t_stop_us=5000)


def test_ir_errors():
    with pytest.raises(ValueError, match="exactly one of syn_leak"):
        es.CubaLIF(leak=0.9)
    with pytest.raises(ValueError, match="syn_leak: must lie in"):
        es.CubaLIF(leak=0.9, syn_leak=1.0)
    with pytest.raises(ValueError, match="square"):
        es.Recurrent(np.ones((2, 3)))
    with pytest.raises(ValueError, match="directly follow a neuron population"):
        es.Network((2,), [es.Linear(np.eye(2)), es.Recurrent(np.eye(2)), es.IF()])
    with pytest.raises(ValueError, match="1-D population"):
        es.Network((1, 2, 2), [es.IF(), es.Recurrent(np.eye(2))])
    with pytest.raises(ValueError, match="mode must be 'sum'"):
        es.LI(leak=0.5, mode="mean")
    with pytest.raises(ValueError, match="reset='zero'"):
        es.Threshold(reset="subtract")
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.eye(1)), es.CubaLIF(tau_s=0.01, tau_syn_s=0.01),
                                 es.Linear(np.eye(1)), es.CubaLI(syn_leak=0.5, leak=0.5)])
    x = np.ones((3, 1, 1, 1), np.int64)
    with pytest.raises(ValueError, match="per-step leak needs a step length"):
        es.simulate(net, np.zeros(1, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")]), engine="async",
                    t_stop_us=10)
    refr = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.eye(1)),
                                  es.CubaLIF(tau_s=0.01, tau_syn_s=0.01, refractory_us=5.0)])
    with pytest.raises(ValueError, match="without refractory"):
        es.simulate(refr, x, engine="async", dt_us=DT)


def test_pause_resume_keeps_synapse_and_feedback():
    rng = np.random.default_rng(11)
    net = _net(rng, "cubali", "leak")
    ev = np.zeros(400, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    ev["t"] = np.sort(rng.integers(0, 30_000, 400))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 4, 400), rng.integers(0, 4, 400), rng.integers(0, 2, 400)
    whole = es.simulate(net, ev, dt_us=DT, steps=30, record="spikes")
    state = es.simulate(net, ev[ev["t"] < 12_000], dt_us=DT, steps=30, pause_us=12_000, record="spikes")
    rest = es.simulate(net, ev[ev["t"] >= 12_000], resume=state)
    np.testing.assert_array_equal(whole.logits, rest.logits)
    for name in whole.rasters:
        np.testing.assert_array_equal(whole.rasters[name], rest.rasters[name])


def test_async_cubali_readout_closed_form():
    # one spike of weight w into a CubaLI: i jumps by w/τ_syn; Y(s) = (w/τ_syn)·(e^{−s/τ_syn} − e^{−s/τ})/(1/τ − 1/τ_syn)
    events = np.zeros(1, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    events["t"] = [1000]
    w, tau, tau_syn = 2.0, 8000.0, 2000.0
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[1.5]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([[w]])), es.CubaLI(tau_s=tau * 1e-6, tau_syn_s=tau_syn * 1e-6)])
    snaps = [1000.0, 2500.0, 6000.0, 20_000.0]
    res = es.simulate(net, events, engine="async", t_stop_us=20_000, snapshot_times_us=snaps)
    a, b = 1 / tau, 1 / tau_syn
    y = [(w * b) * (math.exp(-b * (t - 1000)) - math.exp(-a * (t - 1000))) / (a - b) for t in snaps]
    np.testing.assert_allclose(res.logits.ravel(), y, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("recurrent", [False, True])
def test_async_cuba_network_matches_event_driven_reference(recurrent):
    from async_reference import cuba_network_reference
    rng = np.random.default_rng(21)
    w1 = rng.uniform(0.2, 1.0, (4, 3))
    w2 = rng.uniform(-0.5, 1.5, (3, 4))
    rec = rng.uniform(-0.4, 0.25, (4, 4)) if recurrent else None
    pop1, pop2 = (15_000.0, 3000.0, 0.5), (10_000.0, 2000.0, 0.6)
    t_in = np.sort(rng.choice(np.arange(0, 30_000, 7), 40, replace=False))
    pix = rng.integers(0, 3, t_in.size)
    events = np.zeros(t_in.size, dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    events["t"], events["x"] = t_in, pix
    layers = [es.Flatten(), es.Linear(w1), es.CubaLIF(tau_s=pop1[0] * 1e-6, tau_syn_s=pop1[1] * 1e-6, threshold=pop1[2])]
    if recurrent:
        layers.append(es.Recurrent(rec, delay_us=1500.0))
    layers += [es.Linear(w2), es.CubaLIF(tau_s=pop2[0] * 1e-6, tau_syn_s=pop2[1] * 1e-6, threshold=pop2[2])]
    net = es.Network((1, 1, 3), layers)
    res = es.simulate(net, events, engine="async", t_stop_us=35_000, record="spike_times")
    ref = cuba_network_reference(w1, pop1, w2, pop2, list(zip(t_in, pix)), 35_000, rec=rec, rec_delay_us=1500.0)
    for k, name in enumerate((net.layers[2].name, net.layers[-1].name)):
        got = res.info["spike_times"][name]
        want = sorted(ref[k])
        assert 5 < len(want) < 500 and len(got) == len(want)
        np.testing.assert_array_equal(got["neuron"], [j for _, j in want])
        np.testing.assert_allclose(got["t_us"], [t for t, _ in want], rtol=0, atol=1e-6)


def test_native_format_and_summary(tmp_path):
    from eventsim.native import load_native, save_native
    rng = np.random.default_rng(1)
    net = _net(rng, "cubali", "tau")
    save_native(net, tmp_path / "m.eventsim")
    back = load_native(tmp_path / "m.eventsim")
    assert back == net and [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]
    text = net.summary()
    assert "synapse τ=0.004s" in text and "feedback 6->6 one step later +bias" in text
    assert "leaky readout τ=0.01s synapse α=0.6" in text
