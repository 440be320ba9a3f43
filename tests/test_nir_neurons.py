"""Hand-written NIR graphs with ``CubaLIF``, ``LI``, ``CubaLI`` and ``Threshold`` nodes: the importer's
conventions checked against NIR's ODEs solved independently (``scipy.linalg.expm`` on a fine grid,
closed forms), in the asynchronous engine's continuous time and the stepped engine."""
from __future__ import annotations

import math

import numpy as np
import pytest

import eventsim as es

nir = pytest.importorskip("nir")
from eventsim.nir import from_nir_graph  # noqa: E402

from async_reference import cuba_fine_grid  # noqa: E402


def _graph(nodes, n_in):
    names = ["in", *nodes, "out"]
    shape_out = None
    all_nodes = {"in": nir.Input(np.array(n_in))}
    all_nodes.update(nodes)
    last = list(nodes.values())[-1]
    shape_out = getattr(last, "output_type", {}).get("output", None) if hasattr(last, "output_type") else None
    all_nodes["out"] = nir.Output(np.array(shape_out if shape_out is not None else [1]))
    return nir.NIRGraph(nodes=all_nodes, edges=list(zip(names, names[1:])), type_check=False)


def _events(times):
    ev = np.zeros(len(times), dtype=[("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    ev["t"] = times
    return ev


def test_cubalif_exact_convention_matches_nir_ode():
    tau_syn, tau_mem, r, w_in, theta, w = 0.004, 0.015, 2.0, 1.5, 40.0, 0.8
    g = _graph({"flat": nir.Flatten({"input": np.array([1, 1, 1])}, start_dim=0), "fc": nir.Linear(np.array([[w]])),
                "cuba": nir.CubaLIF(tau_syn=np.array([tau_syn]), tau_mem=np.array([tau_mem]), r=np.array([r]),
                                    v_leak=np.zeros(1), v_threshold=np.array([theta]), v_reset=np.zeros(1),
                                    w_in=np.array([w_in]))}, [1, 1, 1])
    net = from_nir_graph(g)
    cuba = net.layers[2]
    assert isinstance(cuba, es.CubaLIF) and cuba.tau_s == tau_mem and cuba.tau_syn_s == tau_syn
    assert cuba.reset == "zero"
    rng = np.random.default_rng(2)
    times = np.sort(rng.choice(np.arange(0, 50_000, 10), 50, replace=False))
    model = es.Network(net.input_shape, [*net.layers, es.Linear(np.eye(1)), es.Readout()])
    res = es.simulate(model, _events(times), engine="async", t_stop_us=60_000, record="spike_times")
    got = res.info["spike_times"][cuba.name]["t_us"]
    # NIR (t in s): τ_syn·dI/dt = −I + w_in·Σ w·δ(t − t_j);  τ_mem·dv/dt = −v + R·I;  v > θ → v ← 0.
    # On a µs grid: I jumps by w_in·w/τ_syn[s] = (w_in·1e6)·w/τ_syn[µs]; dv/dt[µs] = −v/τ_mem[µs] + (R/τ_mem[µs])·I
    ref = cuba_fine_grid([(float(t), w) for t in times], 60_000, tau_mem * 1e6, tau_syn * 1e6, theta,
                         grid_us=1.0, q=w_in * 1e6, coupling=r / (tau_mem * 1e6), reset="zero")
    assert len(ref) > 5 and len(got) == len(ref)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_li_readout_exact_convention_matches_nir_ode():
    tau, r = 0.005, 3.0
    g = _graph({"flat": nir.Flatten({"input": np.array([1, 1, 2])}, start_dim=0), "fc": nir.Linear(np.array([[1.0, 0.0], [0.5, 1.0]])),
                "if": nir.IF(r=np.ones(2), v_threshold=np.full(2, 0.5), v_reset=np.zeros(2)),
                "fc2": nir.Linear(np.array([[1.0, -1.0], [0.25, 2.0]])),
                "li": nir.LI(tau=np.full(2, tau), r=np.full(2, r), v_leak=np.zeros(2))}, [1, 1, 2])
    net = from_nir_graph(g)
    assert isinstance(net.layers[-1], es.LI) and net.layers[-1].tau_s == tau
    ev = _events([1000, 2500, 2600, 7000])
    ev["x"] = [0, 1, 0, 1]
    snaps = [2000.0, 2600.0, 6000.0, 12_000.0]
    res = es.simulate(net, ev, engine="async", t_stop_us=12_000, snapshot_times_us=snaps)
    # every input event makes its IF neurons spike at once; NIR: τ·dv/dt = −v + R·Σ w·δ(t − t_j)
    w1 = np.array([[1.0, 0.0], [0.5, 1.0]])
    w2 = np.array([[1.0, -1.0], [0.25, 2.0]])
    v_if = np.zeros(2)
    jumps = []
    for t, x in zip(ev["t"], ev["x"]):
        v_if = v_if + w1[:, x]
        s = v_if > 0.5
        v_if[s] = 0.0
        jumps.append((t, w2 @ s.astype(float) * r / tau))
    expect = [sum(j * math.exp(-(ts - t) * 1e-6 / tau) for t, j in jumps if t <= ts) for ts in snaps]
    np.testing.assert_allclose(res.logits, np.array(expect), rtol=1e-9, atol=1e-12)


def test_conventions_for_cuba_nodes_per_step():
    dt = 1e-4
    alpha, beta = 0.6, 0.9
    cuba = nir.CubaLIF(tau_syn=np.full(3, dt / (1 - alpha)), tau_mem=np.full(3, dt / (1 - beta)),
                       r=np.full(3, 1 / (1 - beta)), v_leak=np.zeros(3), v_threshold=np.ones(3),
                       w_in=np.full(3, 1 / (1 - alpha)))
    net = from_nir_graph(_graph({"fc": nir.Linear(np.eye(3)), "c": cuba}, [3]), convention="snntorch")
    layer = net.layers[1]
    np.testing.assert_allclose([layer.syn_leak, layer.leak, layer.threshold], [alpha, beta, 1.0], rtol=1e-12)
    li = nir.CubaLI(tau_syn=np.full(3, 2.0), tau_mem=np.full(3, 4.0), r=np.ones(3), v_leak=np.zeros(3))
    net = from_nir_graph(_graph({"fc": nir.Linear(np.eye(3)), "c": li}, [3]), convention="sinabs")
    layer = net.layers[1]
    assert isinstance(layer, es.CubaLI)
    np.testing.assert_allclose([layer.syn_leak, layer.leak], [math.exp(-1 / 2), math.exp(-1 / 4)], rtol=1e-12)
    net = from_nir_graph(_graph({"fc": nir.Linear(np.eye(3)), "t": nir.Threshold(np.full(3, 0.5))}, [3]))
    assert isinstance(net.layers[1], es.Threshold) and float(net.layers[1].threshold) == 0.5


@pytest.mark.parametrize("convention,form", [("exact", "tau"), ("snntorch", "leak"), ("sinabs", "leak")])
def test_round_trip_cuba_li_threshold_recurrent(tmp_path, convention, form):
    rng = np.random.default_rng(4)
    if form == "tau":
        cuba, li = es.CubaLIF(tau_s=0.01, tau_syn_s=0.003, threshold=0.2, reset="zero"), es.LI(tau_s=0.004)
        cubali = es.CubaLI(tau_s=0.01, tau_syn_s=0.003)
    else:
        cuba, li = es.CubaLIF(leak=0.9, syn_leak=0.7, threshold=0.8, reset="zero"), es.LI(leak=0.8)
        cubali = es.CubaLI(leak=0.9, syn_leak=0.5)
    for last in (li, cubali):
        net = es.Network((1, 2, 3), [
            es.Flatten(), es.Linear(rng.normal(0, 1, (5, 6)), bias=rng.normal(0, 0.1, 5)), cuba,
            es.Recurrent(rng.normal(0, 0.5, (5, 5)), bias=rng.normal(0, 0.1, 5)),
            es.Linear(rng.normal(0, 1, (4, 5))), es.Threshold(threshold=0.3),
            es.Linear(rng.normal(0, 1, (3, 4)), bias=rng.normal(0, 0.1, 3)), last])
        path = tmp_path / f"{convention}.nir"
        es.save(net, path, convention=convention, dt_us=1000.0)
        for meta in (True, False):      # eventsim's metadata, and NIR's fields alone
            back = es.load(path, use_metadata=meta, dt_us=1000.0, convention=convention)
            assert [type(layer).__name__ for layer in back.layers] == [type(layer).__name__ for layer in net.layers]
            x = (rng.random((30, 1, 2, 3)) < 0.4).astype(np.int64)
            a = es.simulate(net, x, dt_us=1000.0, record="spikes")
            b = es.simulate(back, x, dt_us=1000.0, record="spikes")
            for name, raster in a.rasters.items():
                np.testing.assert_array_equal(b.rasters[back.layers[net.layers.index(next(
                    l for l in net.layers if l.name == name))].name], raster)
            np.testing.assert_allclose(b.logits, a.logits, rtol=1e-9, atol=1e-9)


def test_li_readout_under_sinabs_convention_matches_sinabs(tmp_path):
    """sinabs's own ``from_nir`` reads ``LI`` as ``ExpLeak`` (τ in steps, no input normalisation):
    its membrane per step equals eventsim's ``LI`` readout loaded with ``convention="sinabs"``."""
    sinabs_nir = pytest.importorskip("sinabs.nir")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1, (4, 5))
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([5])), "fc": nir.Affine(w, rng.normal(0, 0.2, 4)),
                            "li": nir.LI(tau=np.full(4, 6.0), r=np.ones(4), v_leak=np.zeros(4)),
                            "out": nir.Output(np.array([4]))},
                     edges=[("in", "fc"), ("fc", "li"), ("li", "out")])
    x = (rng.random((25, 5)) < 0.4).astype(np.int64)
    model = sinabs_nir.from_nir(g, batch_size=1)
    with torch.no_grad():
        out = model(torch.from_numpy(x.astype(np.float32)))
        theirs = (out[0] if isinstance(out, tuple) else out).numpy()        # (time, 4)
    net = from_nir_graph(g, convention="sinabs")
    assert isinstance(net.layers[-1], es.LI)
    ours = es.simulate(net, x, dt_us=1000.0).logits
    assert np.abs(theirs).max() > 1
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
