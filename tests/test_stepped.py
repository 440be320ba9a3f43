"""The stepped engine against the dense NumPy reference and hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es
from reference import dense_forward

DYADIC = np.array([-1.0, -0.75, -0.5, -0.25, -0.125, 0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.5])


def dyadic(rng, shape):
    """Weights that are small multiples of 1/8: sums are exact, so summation order cannot matter."""
    return rng.choice(DYADIC, size=shape)


@st.composite
def neuron_specs(draw, channels: int, steps: int):
    kind = draw(st.sampled_from(["IF", "LIF"]))
    per_channel = draw(st.booleans())
    n = channels if per_channel else 1
    theta = draw(st.lists(st.sampled_from([0.5, 0.75, 1.0, 1.25, 2.0]), min_size=n, max_size=n))
    kwargs = dict(
        threshold=theta if per_channel else theta[0],
        compare=draw(st.sampled_from([">", ">="])),
        reset=draw(st.sampled_from(["subtract", "zero"])),
        order=draw(st.sampled_from(["integrate-fire", "fire-integrate"])),
        v_init=draw(st.sampled_from([0.0, 0.25, 0.5])),
        spike_amplitude=draw(st.sampled_from([1.0, 0.5, "threshold"])),
    )
    if draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        kwargs["step_gain"] = rng.choice([0.5, 1.0, 1.5], size=(steps, channels))
        kwargs["step_bias"] = rng.choice([-0.25, 0.0, 0.125], size=(steps, channels))
    if kind == "LIF":
        kwargs["leak"] = draw(st.sampled_from([0.5, 0.75, 0.875, 1.0]))
        return es.LIF(**kwargs)
    return es.IF(**kwargs)


@st.composite
def networks(draw):
    """Random small conv nets covering stride/padding/groups, every pool, Add and every neuron option."""
    steps = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    c_in = draw(st.integers(1, 3))
    h = draw(st.integers(4, 8))
    w = draw(st.integers(4, 8))
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if c_in % g == 0]))
    c_out = groups * draw(st.integers(1, 2))
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    bias = dyadic(rng, (c_out,)) if draw(st.booleans()) else None
    layers = [es.Conv2d(dyadic(rng, (c_out, c_in // groups, k, k)), bias=bias, stride=stride,
                        padding=padding, groups=groups)]
    probe = es.Network((c_in, h, w), layers)
    shape = probe.shapes[-1]
    layers.append(draw(neuron_specs(shape[0], steps)))
    if draw(st.booleans()):  # residual block: conv 3x3 same-size + neuron + Add(source=first neuron)
        c = shape[0]
        layers.append(es.Conv2d(dyadic(rng, (c, c, 3, 3)), padding=1))
        layers.append(es.Add(source=1))
        layers.append(draw(neuron_specs(c, steps)))
    pool = draw(st.sampled_from([None, es.SumPool2d, es.AvgPool2d, es.MaxPool2d]))
    if pool is not None and min(shape[1:]) >= 2:
        pk = draw(st.integers(1, 2))
        layers.append(pool(kernel_size=pk, stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, pk // 2))))
    layers.append(es.Flatten())
    n_flat = es.Network((c_in, h, w), layers).shapes[-1][0]
    hidden = draw(st.integers(1, 6))
    layers.append(es.Linear(dyadic(rng, (hidden, n_flat)), bias=dyadic(rng, (hidden,)) if draw(st.booleans()) else None))
    layers.append(draw(neuron_specs(hidden, steps)))
    layers.append(es.Linear(dyadic(rng, (3, hidden))))
    layers.append(es.Readout(mode=draw(st.sampled_from(["sum", "mean"]))))
    net = es.Network((c_in, h, w), layers)
    events = draw(st.booleans())
    if events:
        frames = rng.poisson(draw(st.sampled_from([0.2, 0.6, 1.5])), size=(steps, c_in, h, w)).astype(np.int64)
    else:
        frames = rng.choice([0.0, 0.25, 0.5, 1.0], size=(steps, c_in, h, w))
    return net, frames, events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=networks(), convention=st.sampled_from(["all", "nonzero"]))
def test_matches_dense_reference(case, convention):
    net, frames, events = case
    res = es.simulate(net, frames, engine="stepped", record="spikes", synop_convention=convention,
                      input_kind="events" if events else "analog")
    ref = dense_forward(net, frames, events, convention)
    for name, raster in ref["rasters"].items():
        np.testing.assert_array_equal(res.rasters[name], raster, err_msg=f"spikes differ in {name}")
    np.testing.assert_array_equal(res.spikes_per_row, ref["spikes"])
    np.testing.assert_array_equal(res.synops_per_row, ref["synops"])
    np.testing.assert_array_equal(res.macs_per_row, ref["macs"])
    np.testing.assert_allclose(res.logits, ref["logits"], rtol=1e-12, atol=1e-12)


def test_if_hand_computed():
    # constant input 0.6, θ = 1, strict >, subtract: v = 0.6, 1.2→0.2 (spike), 0.8, 1.4→0.4 (spike), 1.0
    net = es.Network((1,), [es.Linear(np.array([[0.6]])), es.IF(threshold=1.0), es.Linear(np.array([[2.0]])), es.Readout()])
    res = es.simulate(net, np.ones((1,)), steps=5, input_kind="analog", record=("spikes", "membrane"))
    np.testing.assert_array_equal(res.rasters["1.IF"].ravel(), [0, 1, 0, 1, 0])
    np.testing.assert_allclose(res.membranes["1.IF"].ravel(), [0.6, 0.2, 0.8, 0.4, 1.0])
    np.testing.assert_allclose(res.logits.ravel(), [0, 2, 2, 4, 4])
    assert res.macs_per_layer["0.Linear"] == 5          # analog input: dense MACs, 1 synapse × 5 steps
    assert res.synops_per_layer["2.Linear"] == 2        # two spikes × one synapse


def test_ge_zero_reset_and_fire_integrate_hand_computed():
    # >= fires at exactly θ; zero reset drops the remainder
    net = es.Network((1,), [es.Linear(np.array([[0.5]])), es.IF(threshold=1.0, compare=">=", reset="zero"),
                            es.Linear(np.array([[1.0]])), es.Readout()])
    res = es.simulate(net, np.ones((1,)), steps=4, input_kind="analog", record="spikes")
    np.testing.assert_array_equal(res.rasters["1.IF"].ravel(), [0, 1, 0, 1])
    # fire-then-integrate fires from the previous membrane: one step later than integrate-first
    net = es.Network((1,), [es.Linear(np.array([[0.75]])),
                            es.LIF(leak=0.5, threshold=1.0, order="fire-integrate"),
                            es.Linear(np.array([[1.0]])), es.Readout()])
    # v: 0.75, 0.5·0.75+0.75=1.125, then fires (1.125>1): 0.5·1.125+0.75−1 = 0.3125, ...
    res = es.simulate(net, np.ones((1,)), steps=4, input_kind="analog", record=("spikes", "membrane"))
    np.testing.assert_array_equal(res.rasters["1.LIF"].ravel(), [0, 0, 1, 0])
    np.testing.assert_allclose(res.membranes["1.LIF"].ravel(), [0.75, 1.125, 0.3125, 0.90625])


def test_lif_tau_uses_dt():
    lif = es.LIF(tau_s=0.01, threshold=1.0)
    assert lif.leak_per_step(1000)[0] == pytest.approx(np.exp(-0.1))
    net = es.Network((1,), [es.Linear(np.array([[1.0]])), lif, es.Linear(np.array([[1.0]])), es.Readout()])
    with pytest.raises(ValueError, match="dt_us"):
        es.simulate(net, np.ones((1,)), steps=2, input_kind="analog")


def test_event_input_binning_and_counts():
    ev = np.zeros(5, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    ev["t"] = [0, 999, 1000, 2500, 2999]
    ev["x"] = [0, 0, 1, 1, 0]
    ev["p"] = [0, 0, 1, 1, 0]
    net = es.Network((2, 1, 2), [es.Conv2d(np.ones((1, 2, 1, 1))), es.IF(threshold=1.0, compare=">=", reset="zero"),
                                 es.Flatten(), es.Linear(np.ones((1, 2))), es.Readout()])
    res = es.simulate(net, ev, dt_us=1000, record="spikes")
    assert res.steps == 3
    # step 0: two events at (p0, x0) → current 2; step 1: one at (p1, x1); step 2: (p1,x1) and (p0,x0)
    np.testing.assert_array_equal(res.rasters["1.IF"][:, 0, 0, :], [[1, 0], [0, 1], [1, 1]])
    assert res.synops_per_layer["0.Conv2d"] == 5        # 5 events × 1 synapse each
    np.testing.assert_array_equal(res.times_us, [1000, 2000, 3000])
    bad = ev.copy()
    bad["x"][3] = 2
    with pytest.raises(ValueError, match="event 3: x=2"):
        es.simulate(net, bad, dt_us=1000)
    unsorted = ev[::-1].copy()
    with pytest.raises(ValueError, match=r"timestamps decrease at event 1: t = \d+ µs after \d+ µs; sort the events"):
        es.simulate(net, unsorted, dt_us=1000)


def test_at_returns_cumulative_counts():
    rng = np.random.default_rng(3)
    net = es.Network((2, 6, 6), [es.Conv2d(rng.normal(size=(3, 2, 3, 3))), es.IF(threshold=0.5), es.Flatten(),
                                 es.Linear(rng.normal(size=(4, 48))), es.Readout()])
    frames = rng.poisson(0.5, size=(8, 2, 6, 6))
    res = es.simulate(net, frames)
    snap = res.at(step=5)
    assert snap.synops == int(res.synops_per_row[:5].sum())
    np.testing.assert_array_equal(snap.logits, res.logits[4])
    assert res.at(t_us=5.5).step == 5
    assert res.at(step=0).synops == 0 and res.at(step=8).synops == res.synops
    with pytest.raises(ValueError):
        res.at(step=9)


def test_bad_inputs_are_refused():
    net = es.Network((1, 3, 3), [es.Flatten(), es.Linear(np.ones((2, 9))), es.Readout()])
    with pytest.raises(ValueError, match="pass steps="):
        es.simulate(net, np.ones((1, 3, 3)))
    with pytest.raises(ValueError, match="shape"):
        es.simulate(net, np.ones((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        es.simulate(net, np.full((2, 1, 3, 3), np.nan))
    with pytest.raises(ValueError, match="unknown engine"):
        es.simulate(net, np.ones((2, 1, 3, 3)), engine="warp")
    with pytest.raises(ValueError, match="record"):
        es.simulate(net, np.ones((2, 1, 3, 3)), record="voltage")
    with pytest.raises(ValueError, match="convention"):
        es.simulate(net, np.ones((2, 1, 3, 3)), synop_convention="some")
    bntt = es.Network((2,), [es.Linear(np.eye(2)), es.IF(step_gain=np.ones((3, 2))), es.Linear(np.eye(2)), es.Readout()])
    with pytest.raises(ValueError, match="covers 3 steps"):
        es.simulate(bntt, np.ones((2,)), steps=4, input_kind="analog")


def test_determinism():
    rng = np.random.default_rng(0)
    net = es.Network((2, 8, 8), [es.Conv2d(rng.normal(size=(4, 2, 3, 3)), padding=1), es.LIF(leak=0.9, threshold=0.7),
                                 es.AvgPool2d(2), es.Flatten(), es.Linear(rng.normal(size=(5, 64))), es.Readout()])
    frames = rng.poisson(0.4, size=(10, 2, 8, 8))
    a = es.simulate(net, frames, record="spikes")
    b = es.simulate(net, frames, record="spikes")
    np.testing.assert_array_equal(a.rasters["1.LIF"], b.rasters["1.LIF"])
    np.testing.assert_array_equal(a.logits, b.logits)
    assert a.synops == b.synops
