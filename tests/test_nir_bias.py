"""NIR biases: an all-zero bias is no current; under the ``exact`` convention without ``dt_us`` a
non-zero bias is a current per second (NIR's definition), run by the asynchronous engine in
continuous time. Checked against the closed-form solutions of NIR's ODEs."""
from __future__ import annotations

import numpy as np
import pytest

import eventsim as es

nir = pytest.importorskip("nir")

from eventsim.nir import from_nir_graph  # noqa: E402


def _graph(bias, neuron):
    f = lambda x: np.array([float(x)])  # noqa: E731
    return nir.NIRGraph(nodes={
        "in": nir.Input(np.array([1, 1, 1])), "flat": nir.Flatten({"input": np.array([1, 1, 1])}, 0, -1),
        "fc": nir.Affine(np.array([[0.5]]), np.array([bias])), "pop": neuron(f),
        "out": nir.Output(np.array([1]))},
        edges=[("in", "flat"), ("flat", "fc"), ("fc", "pop"), ("pop", "out")], type_check=False)


def _events(times):
    ev = np.zeros(len(times), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"] = times
    return ev


def test_zero_bias_needs_no_step():
    g = _graph(0.0, lambda f: nir.IF(r=f(1), v_threshold=f(1.0), v_reset=f(0)))
    net = from_nir_graph(g, reset="subtract")
    assert not net.metadata.get("bias_is_current")
    res = es.simulate(net, _events([100, 200, 300, 400]), engine="async", record="spike_times")
    assert res.spike_times["pop"]["t_us"].tolist() == [300.0]     # 0.5 per event, θ = 1, ">": 1.5 > 1
    # an all-zero bias set by hand is no current either
    hand = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.5]]), bias=np.zeros(1)), es.IF()])
    assert es.simulate(hand, _events([100, 200]), engine="async").spikes == 0


def test_exact_if_bias_is_a_current_per_second():
    b, theta = 250.0, 1.0                                   # dv/dt = b per second: θ every 4 ms
    g = _graph(b, lambda f: nir.IF(r=f(1), v_threshold=f(theta), v_reset=f(0)))
    net = from_nir_graph(g, reset="subtract")
    assert net.metadata["bias_is_current"] and net.metadata["dt_us"] is None
    res = es.simulate(net, _events([]), engine="async", t_stop_us=20_000, record="spike_times")
    np.testing.assert_allclose(res.spike_times["pop"]["t_us"], [4000, 8000, 12000, 16000, 20000], atol=1e-6)
    # with input: each event adds 0.5 on top of the ramp
    res = es.simulate(net, _events([1000]), engine="async", t_stop_us=10_000, record="spike_times")
    # v(t) = 0.25·t_ms + 0.5 from t = 1 ms: crosses 1 at 2 ms, then every 4 ms
    np.testing.assert_allclose(res.spike_times["pop"]["t_us"], [2000, 6000, 10000], atol=1e-6)
    with pytest.raises(ValueError, match="currents per second"):
        es.simulate(net, _events([1000]), engine="async", dt_us=1000, simultaneous="batch", t_stop_us=5000)


def test_exact_lif_bias_charges_towards_tau_b():
    tau, r, b = 0.004, 2.0, 300.0                           # τ dv/dt = −v + R·b: v∞ = R·b = 600
    theta = 450.0                                           # crossing at t* = −τ ln(1 − θ/(R·b))
    g = _graph(b, lambda f: nir.LIF(tau=f(tau), r=f(r), v_leak=f(0), v_threshold=f(theta), v_reset=f(0)))
    net = from_nir_graph(g)
    res = es.simulate(net, _events([]), engine="async", t_stop_us=20_000, record="spike_times")
    t_star = -tau * np.log(1 - theta / (r * b)) * 1e6
    got = res.spike_times["pop"]["t_us"]
    assert len(got) == int(20_000 // t_star)               # zero reset: the same interval each time
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], got])), t_star, rtol=1e-9)
