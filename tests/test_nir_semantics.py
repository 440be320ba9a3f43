"""NIR semantics: graphs built with the ``nir`` package, run by eventsim's stepped engine, compared
with a slow reference written directly from NIR's equations (below) and with closed-form solutions.

The reference keeps every signal as ``(impulse, constant)``: spikes are unit impulses and an
Affine/Conv bias is a constant current. Per step ``Δt`` (NIR's ODEs, ``τ`` in seconds):

* ``exact``:  LIF ``v ← e^{−Δt/τ}·v + (R/τ)·imp + R·(1 − e^{−Δt/τ})·const``;  IF/I ``v ← v + R·imp + R·Δt·const``
* ``euler``:  LIF ``v ← v + (Δt/τ)·(−v + R·(imp + const))``;  IF/I ``v ← v + R·Δt·(imp + const)``
* ``sinabs``: τ in steps, LIF ``v ← e^{−1/τ}·v + R·(imp + const)``;  IF/I ``v ← v + R·(imp + const)``

then ``spike = v > v_threshold`` and ``v ← v_reset`` (NIR ≥ 1.0.6) or ``v ← v − v_threshold``
(NIR < 1.0.6).
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim as es

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

from eventsim.nir import from_nir_graph, load_nir  # noqa: E402

F = torch.nn.functional


# ----------------------------------------------------------------------------- reference


def _topo(graph):
    pred = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    order, done = [], set()
    while len(order) < len(graph.nodes):
        for n in graph.nodes:
            if n not in done and all(p in done for p in pred[n]):
                order.append(n)
                done.add(n)
    return order, pred


def _conv(x, node, dims):
    w = torch.from_numpy(np.asarray(node.weight, float))
    pad = node.padding
    if not isinstance(pad, str):
        pad = tuple(int(p) for p in np.atleast_1d(pad))
    fn = F.conv1d if dims == 1 else F.conv2d
    out = fn(torch.from_numpy(x)[None], w, None, stride=tuple(np.atleast_1d(node.stride).astype(int)),
             padding=pad, groups=int(node.groups))[0].numpy()
    return out


def reference(graph, inputs, convention, dt_us, reset):
    """Spikes of every neuron node and the final value of every I node, step by step."""
    order, pred = _topo(graph)
    convention = "euler" if convention == "snntorch" else convention    # snnTorch steps by Euler
    dt = 1.0 if convention == "sinabs" else dt_us * 1e-6
    state, spikes, readout = {}, {}, {}
    for t in range(inputs.shape[0]):
        val = {}
        for n in order:
            node = graph.nodes[n]
            kind = type(node).__name__
            if kind == "Input":
                val[n] = (inputs[t].astype(float), np.zeros(inputs.shape[1:]))
                continue
            parts = [val[p] for p in pred[n]]
            imp, const = sum(p[0] for p in parts), sum(p[1] for p in parts)
            if kind in ("Affine", "Linear"):
                w = np.asarray(node.weight, float)
                b = np.asarray(node.bias, float) if kind == "Affine" else 0.0
                val[n] = (w @ imp, w @ const + b)
            elif kind in ("Conv1d", "Conv2d"):
                dims = 1 if kind == "Conv1d" else 2
                b = np.asarray(node.bias, float).reshape((-1,) + (1,) * dims)
                val[n] = (_conv(imp, node, dims), _conv(const, node, dims) + b)
            elif kind in ("SumPool2d", "AvgPool2d"):
                k = tuple(np.atleast_1d(node.kernel_size).astype(int)) * (2 // np.size(node.kernel_size))
                s = tuple(np.atleast_1d(node.stride).astype(int)) * (2 // np.size(node.stride))
                scale = 1.0 if kind == "AvgPool2d" else float(np.prod(k))
                pool = lambda x: F.avg_pool2d(torch.from_numpy(x)[None], k, s)[0].numpy() * scale  # noqa: E731
                val[n] = (pool(imp), pool(const))
            elif kind == "Flatten":
                val[n] = (imp.reshape(-1), const.reshape(-1))
            elif kind == "Scale":
                val[n] = (imp * node.scale, const * node.scale)
            elif kind == "Output":
                val[n] = (imp, const)
            else:
                r = np.asarray(node.r, float)
                v = state.get(n, np.zeros(imp.shape))
                if kind == "LIF":
                    tau = np.asarray(node.tau, float)
                    if convention == "exact":
                        lam = np.exp(-dt / tau)
                        v = lam * v + r / tau * imp + r * (1 - lam) * const
                    elif convention == "euler":
                        v = v + dt / tau * (-v + r * (imp + const))
                    else:
                        v = np.exp(-1.0 / tau) * v + r * (imp + const)
                else:   # IF and I integrate
                    v = v + (r * imp + r * dt * const if convention == "exact"
                             else r * dt * (imp + const) if convention == "euler" else r * (imp + const))
                if kind == "I":
                    readout[n] = v
                    state[n] = v
                    val[n] = (v, np.zeros(v.shape))
                    continue
                if convention == "sinabs":   # sinabs's from_nir: MultiSpike, subtract reset, IF floor −θ
                    th = np.asarray(node.v_threshold, float)
                    s = np.where(v > 0, np.trunc(v / th), 0.0)
                    v = v - s * th
                    if kind == "IF":
                        v = np.maximum(v, -th)
                    state[n] = v
                    spikes.setdefault(n, []).append(s.astype(np.int64))
                    val[n] = (s, np.zeros(s.shape))
                    continue
                s = v > node.v_threshold
                v = np.where(s, v - node.v_threshold, v) if reset == "subtract" else np.where(s, node.v_reset, v)
                state[n] = v
                spikes.setdefault(n, []).append(s.astype(np.uint8))
                val[n] = (s.astype(float), np.zeros(s.shape))
    return {n: np.array(s) for n, s in spikes.items()}, readout


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _lif(n, tau, r=1.0, theta=1.0, v_reset=0.0):
    f = lambda x: np.full(n, float(x))  # noqa: E731
    return nir.LIF(tau=f(tau), r=f(r), v_leak=f(0), v_threshold=f(theta), v_reset=f(v_reset))


def _if(n, r=1.0, theta=1.0):
    return nir.IF(r=np.full(n, float(r)), v_threshold=np.full(n, float(theta)), v_reset=np.zeros(n))


def _compare(graph, x, convention, dt_us, reset="auto", **load):
    net = from_nir_graph(graph, convention=convention, dt_us=dt_us, reset=reset, **load)
    ref_reset = "subtract" if reset == "subtract" else "zero"
    ref_spikes, ref_readout = reference(graph, x, convention, dt_us, ref_reset)
    xin = x.reshape((x.shape[0],) + net.input_shape)
    res = es.simulate(net, xin.astype(np.int64), dt_us=dt_us, record="spikes")
    total = 0
    for name, spikes in ref_spikes.items():
        np.testing.assert_array_equal(res.rasters[name].reshape(spikes.shape), spikes, err_msg=name)
        total += int(spikes.sum())
    for name, value in ref_readout.items():
        np.testing.assert_allclose(res.logits[-1], value.reshape(-1), rtol=1e-9, atol=1e-9)
    return net, res, total


# ----------------------------------------------------------------------------- closed forms


def test_exact_lif_follows_the_ode_solution_and_keeps_tau_continuous():
    tau, r, w, dt_us = 0.01, 2.0, 0.3, 1000.0
    g = _graph({"in": nir.Input(np.array([1])), "fc": nir.Linear(np.array([[w]])),
                "lif": _lif(1, tau, r, theta=1e9), "out": nir.Output(np.array([1]))},
               [("in", "fc"), ("fc", "lif"), ("lif", "out")])
    net = from_nir_graph(g)                                   # no dt needed: continuous time
    lif = net.layers[1]
    assert isinstance(lif, es.LIF) and lif.tau_s == tau and lif.leak is None
    assert np.isclose(lif.threshold, 1e9 * tau / r)           # θ/(R/τ)
    x = np.zeros((12, 1), np.int64)
    x[0] = 1
    res = es.simulate(net, x, dt_us=dt_us, record="membrane")
    k = np.arange(12)
    v = r / tau * w * np.exp(-k * dt_us * 1e-6 / tau)         # v(t) after a unit impulse at t = 0
    np.testing.assert_allclose(res.membranes["lif"][:, 0] * r / tau, v, rtol=1e-12)


def test_exact_bias_current_charges_towards_r_times_b():
    tau, r, b, dt_us = 0.005, 1.5, 0.4, 250.0
    g = _graph({"in": nir.Input(np.array([1])), "fc": nir.Affine(np.zeros((1, 1)), np.array([b])),
                "lif": _lif(1, tau, r, theta=1e9), "out": nir.Output(np.array([1]))},
               [("in", "fc"), ("fc", "lif"), ("lif", "out")])
    # without dt_us the bias stays a current (NIR's definition) for the async engine in continuous
    # time (tests/test_nir_bias.py); a step engine cannot hold it
    cont = from_nir_graph(g)
    assert cont.metadata["bias_is_current"]
    with pytest.raises(ValueError, match="currents per second.*dt_us="):
        es.simulate(cont, np.zeros((1,)), steps=2, dt_us=dt_us, input_kind="analog")
    net = from_nir_graph(g, dt_us=dt_us)
    res = es.simulate(net, np.zeros((1,)), steps=20, dt_us=dt_us, record="membrane", input_kind="analog")
    t = np.arange(1, 21) * dt_us * 1e-6
    np.testing.assert_allclose(res.membranes["lif"][:, 0] * r / tau, r * b * (1 - np.exp(-t / tau)), rtol=1e-12)


def test_readout_integrator_accumulates_r_times_input():
    r, dt_us = 2.0, 500.0
    w, b = np.array([[0.5, -1.0]]), np.array([3.0])
    g = _graph({"in": nir.Input(np.array([2])), "fc": nir.Affine(w, b), "ro": nir.I(np.array([r])),
                "out": nir.Output(np.array([1]))}, [("in", "fc"), ("fc", "ro"), ("ro", "out")])
    x = np.random.default_rng(0).integers(0, 2, (9, 2))
    net, res, _ = _compare(g, x, "exact", dt_us)
    assert isinstance(net.layers[-1], es.Readout)
    expected = r * (x @ w[0]).cumsum() + r * b[0] * dt_us * 1e-6 * np.arange(1, 10)
    np.testing.assert_allclose(res.logits[:, 0], expected, rtol=1e-12)


# ----------------------------------------------------------------------------- conventions


def _two_layer(n_in=5, n_hid=4, n_out=3, seed=0, kind="LIF", bias=True, tau=0.004, r=1.0):
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(0.5, 0.6, (n_hid, n_in)), rng.normal(0.4, 0.8, (n_out, n_hid))
    b1 = rng.normal(0.1, 0.2, n_hid) if bias else np.zeros(n_hid)
    neuron = (lambda n, th: _lif(n, tau * rng.uniform(0.5, 2.0), r, th)) if kind == "LIF" else \
        (lambda n, th: _if(n, r, th))
    return _graph({"in": nir.Input(np.array([n_in])), "fc1": nir.Affine(w1, b1), "n1": neuron(n_hid, 0.9),
                   "fc2": nir.Linear(w2), "n2": neuron(n_out, 0.6), "out": nir.Output(np.array([n_out]))},
                  [("in", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "out")])


def _unit_r(kind, convention, dt_us, tau):
    """A resistance giving an input gain near 1 under ``convention`` (so that neurons spike)."""
    dt = dt_us * 1e-6
    if kind == "LIF":
        return {"exact": tau, "euler": tau / dt, "snntorch": tau / dt, "sinabs": 1.0}[convention]
    return {"exact": 0.8, "euler": 0.8 / dt, "snntorch": 0.8 / dt, "sinabs": 0.8}[convention]


@pytest.mark.parametrize("kind", ["LIF", "IF"])
@pytest.mark.parametrize("convention,dt_us", [
    ("exact", 1000.0), ("exact", 250.0), ("euler", 1000.0), ("euler", 500.0), ("snntorch", 100.0),
    ("sinabs", 1000.0)])
@pytest.mark.parametrize("reset", ["auto", "subtract"])
def test_conventions_match_the_reference(kind, convention, dt_us, reset):
    tau = 10.0 if convention == "sinabs" else 0.004          # sinabs counts τ in steps
    g = _two_layer(kind=kind, tau=tau, r=_unit_r(kind, convention, dt_us, tau))
    x = (np.random.default_rng(1).random((40, 5)) < 0.5).astype(np.int64)
    net, _, total = _compare(g, x, convention, dt_us, reset)
    assert total > 10                         # the comparison involves real spiking activity
    expect = {"LIF": es.LIF, "IF": es.IF}[kind]
    assert isinstance(net.layers[1], expect) and isinstance(net.layers[3], expect)
    assert net.layers[1].reset == ("subtract" if reset == "subtract" or convention == "sinabs" else "zero")
    assert net.layers[1].multi_spike == (convention == "sinabs")


def test_snntorch_convention_recovers_beta_and_unit_gain():
    beta, dt = 0.85, 1e-4
    tau = dt / (1 - beta)                     # what snnTorch's exporter writes
    g = _graph({"in": nir.Input(np.array([2])), "fc": nir.Linear(np.eye(2)),
                "lif": _lif(2, tau, r=tau / dt, theta=0.7), "out": nir.Output(np.array([2]))},
               [("in", "fc"), ("fc", "lif"), ("lif", "out")])
    lif = from_nir_graph(g, convention="snntorch").layers[1]
    np.testing.assert_allclose(lif.leak, beta, rtol=1e-12)
    assert float(lif.threshold) == 0.7      # r·k = 1 exactly, so θ is unchanged
    with pytest.raises(ValueError, match="outside \\(0, 1\\]"):
        from_nir_graph(g, convention="euler", dt_us=2000.0)    # Δt > τ: Euler is unstable


# ----------------------------------------------------------------------------- reset convention


def _write_legacy(tmp_path, graph, version, drop_v_reset):
    path = tmp_path / f"v{version}.nir"
    nir.write(path, graph)
    with h5py.File(path, "r+") as f:
        del f["version"]
        f.create_dataset("version", data=version, dtype=h5py.string_dtype())
        if drop_v_reset:
            for name in ("n1", "n2"):
                del f[f"node/nodes/{name}/v_reset"]
    return path


@pytest.mark.parametrize("version,drop,option,expected", [
    ("1.0.5", True, "auto", "subtract"),     # before NIR 1.0.6 the reset subtracted v_threshold
    ("0.2.0", True, "auto", "subtract"),
    ("1.0.8", True, "auto", "zero"),         # NIR >= 1.0.7: a missing v_reset means 0
    ("1.0.6", False, "auto", "zero"),
    ("1.0.5", True, "zero", "zero"),
    ("1.0.8", False, "subtract", "subtract"),
])
def test_reset_follows_the_file_version(tmp_path, version, drop, option, expected):
    g = _two_layer(kind="IF", r=0.7, bias=False)
    path = _write_legacy(tmp_path, g, version, drop)
    net = load_nir(path, reset=option)
    assert [l.reset for l in net.layers if isinstance(l, es.NeuronSpec)] == [expected] * 2
    x = (np.random.default_rng(3).random((40, 5)) < 0.6).astype(np.int64)
    ref, _ = reference(g, x, "exact", 1000.0, expected)
    res = es.simulate(net, x, dt_us=1000.0, record="spikes")
    for name in ("n1", "n2"):
        np.testing.assert_array_equal(res.rasters[name], ref[name])
    if expected == "subtract":      # the two conventions really differ on this input
        other, _ = reference(g, x, "exact", 1000.0, "zero")
        assert not np.array_equal(other["n2"], ref["n2"]) or not np.array_equal(other["n1"], ref["n1"])


# ----------------------------------------------------------------------------- graph structure


def test_skip_connections_become_add():
    rng = np.random.default_rng(4)
    g = _graph({"in": nir.Input(np.array([4])), "a": nir.Linear(rng.normal(0.5, 0.5, (4, 4))),
                "n1": _if(4, 1.0, 0.8), "b": nir.Affine(rng.normal(0.3, 0.5, (4, 4)), rng.normal(0, .1, 4)),
                "n2": _lif(4, 0.003, 0.003, 1.0), "c": nir.Linear(rng.normal(0, 1, (2, 4))),
                "n3": _if(2, 1.0, 0.5), "out": nir.Output(np.array([2]))},
               [("in", "a"), ("a", "n1"), ("n1", "b"), ("b", "n2"), ("in", "n2"), ("n1", "n2"),
                ("n2", "c"), ("c", "n3"), ("n3", "out")])
    x = (rng.random((30, 4)) < 0.5).astype(np.int64)
    net, _, total = _compare(g, x, "exact", 1000.0)
    assert total > 10
    kinds = [type(l).__name__ for l in net.layers]
    assert kinds == ["Linear", "IF", "Linear", "Add", "Add", "LIF", "Linear", "IF"]
    assert [l.source for l in net.layers if isinstance(l, es.Add)] == [-1, 1]


def test_scale_nodes_fold_into_neighbours():
    rng = np.random.default_rng(5)
    g = _graph({"in": nir.Input(np.array([3])), "s0": nir.Scale(np.array([2.0, 0.5, 1.5])),
                "a": nir.Affine(rng.normal(0.4, 0.5, (4, 3)), rng.normal(0, 0.1, 4)),
                "s1": nir.Scale(np.array([1.0, 2.0, 0.5, 3.0])), "n1": _if(4, 1.0, 1.0),
                "s2": nir.Scale(np.full(4, 0.75)), "b": nir.Linear(rng.normal(0.5, 0.5, (2, 4))),
                "n2": _lif(2, 0.01, 0.01, 0.6), "out": nir.Output(np.array([2]))},
               [("in", "s0"), ("s0", "a"), ("a", "s1"), ("s1", "n1"), ("n1", "s2"), ("s2", "b"),
                ("b", "n2"), ("n2", "out")])
    x = (rng.random((30, 3)) < 0.5).astype(np.int64)
    net, _, total = _compare(g, x, "exact", 1000.0)
    assert total > 5
    assert [type(l).__name__ for l in net.layers] == ["Linear", "IF", "Linear", "LIF"]
    assert net.layers[1].spike_amplitude == 0.75


def test_delay_becomes_layer_delay():
    g = _graph({"in": nir.Input(np.array([2])), "a": nir.Linear(np.eye(2)),
                "d": nir.Delay(np.full(2, 0.0025)), "n": _if(2), "out": nir.Output(np.array([2]))},
               [("in", "a"), ("a", "d"), ("d", "n"), ("n", "out")])
    assert from_nir_graph(g).layers[0].delay_us == pytest.approx(2500.0, rel=1e-12)
    assert from_nir_graph(g, convention="sinabs", dt_us=1000.0).layers[0].delay_us == pytest.approx(2.5)


def test_conv_pool_flatten_graph():
    rng = np.random.default_rng(6)
    g = _graph({"in": nir.Input(np.array([2, 6, 6])),
                "c": nir.Conv2d(None, rng.normal(0.3, 0.5, (4, 2, 3, 3)), 1, "same", 1, 1, rng.normal(0, .1, 4)),
                "n1": _lif(4 * 36, 0.005, 0.005, 1.0), "p": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                "f": nir.Flatten({"input": np.array([4, 3, 3])}, 0, -1),
                "a": nir.Affine(rng.normal(0.2, 0.4, (3, 36)), np.zeros(3)), "n2": _if(3, 1.0, 1.0),
                "out": nir.Output(np.array([3]))},
               [("in", "c"), ("c", "n1"), ("n1", "p"), ("p", "f"), ("f", "a"), ("a", "n2"), ("n2", "out")])
    g.nodes["n1"] = nir.LIF(**{k: getattr(g.nodes["n1"], k).reshape(4, 6, 6)
                               for k in ("tau", "r", "v_leak", "v_threshold", "v_reset")})
    x = (rng.random((20, 2, 6, 6)) < 0.3).astype(np.int64)
    net, _, total = _compare(g, x, "exact", 1000.0)
    assert total > 10
    assert net.layers[0].padding == (1, 1)


def test_conv1d_runs_as_conv2d_over_a_unit_row():
    rng = np.random.default_rng(7)
    g = _graph({"in": nir.Input(np.array([2, 10])),
                "c": nir.Conv1d(None, rng.normal(0.4, 0.5, (3, 2, 3)), 2, 1, 1, 1, rng.normal(0, .1, 3)),
                "n1": nir.IF(r=np.ones((3, 5)), v_threshold=np.full((3, 5), 0.9), v_reset=np.zeros((3, 5))),
                "f": nir.Flatten({"input": np.array([3, 5])}, 0, -1), "a": nir.Linear(rng.normal(0.3, .5, (2, 15))),
                "n2": _if(2, 1.0, 0.7), "out": nir.Output(np.array([2]))},
               [("in", "c"), ("c", "n1"), ("n1", "f"), ("f", "a"), ("a", "n2"), ("n2", "out")])
    x = (rng.random((20, 2, 10)) < 0.5).astype(np.int64)
    net, _, total = _compare(g, x, "exact", 1000.0)
    assert total > 10
    assert net.input_shape == (2, 1, 10) and net.metadata["nir_input_shape"] == [2, 10]
    assert net.layers[0].stride == (1, 2) and net.layers[0].padding == (0, 1)


# ----------------------------------------------------------------------------- random graphs


@st.composite
def chain_graphs(draw):
    """Random 1-D NIR graphs: Affine/Linear/Scale/IF/LIF chains with skip connections, and the
    convention and step to run them with."""
    convention = draw(st.sampled_from(["exact", "euler", "sinabs"]))
    dt_us = 100.0 if convention == "euler" else 1000.0
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n = n0 = draw(st.integers(2, 6))
    nodes, edges, prev, sizes = {"in": nir.Input(np.array([n]))}, [], "in", {"in": n}
    for i in range(draw(st.integers(1, 4))):
        out = n if draw(st.booleans()) else draw(st.integers(2, 6))
        w = rng.normal(0.4, 0.7, (out, n))
        nodes[f"w{i}"] = nir.Affine(w, rng.normal(0, 0.2, out)) if draw(st.booleans()) else nir.Linear(w)
        edges.append((prev, f"w{i}"))
        prev = f"w{i}"
        if draw(st.booleans()):
            nodes[f"s{i}"] = nir.Scale(rng.uniform(0.5, 2.0, out))
            edges.append((prev, f"s{i}"))
            prev = f"s{i}"
        kind = draw(st.sampled_from(["IF", "LIF"]))
        tau = rng.uniform(2, 20) if convention == "sinabs" else rng.uniform(0.002, 0.02)
        r = _unit_r(kind, convention, dt_us, tau) * rng.uniform(0.5, 2)
        theta = rng.uniform(0.5, 1.5)
        nodes[f"n{i}"] = _if(out, r, theta) if kind == "IF" else _lif(out, tau, r, theta)
        edges.append((prev, f"n{i}"))
        skips = [s for s, size in sizes.items() if size == out]
        for s in skips[:draw(st.integers(0, len(skips)))]:
            edges.append((s, f"n{i}"))
        prev, n = f"n{i}", out
        sizes[prev] = out
    nodes["out"] = nir.Output(np.array([n]))
    edges.append((prev, "out"))
    return _graph(nodes, edges), convention, dt_us, n0


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=chain_graphs(), reset=st.sampled_from(["auto", "subtract"]))
def test_random_graphs_match_the_reference(case, reset):
    g, convention, dt_us, n_in = case
    x = (np.random.default_rng(0).random((25, n_in)) < 0.5).astype(np.int64)
    _compare(g, x, convention, dt_us, reset)
