"""NIR graphs whose merges hold layers on both paths (ResNet projection shortcuts).

Export → import gives the same network (with eventsim's metadata) or the same spikes (NIR's
standard fields only); a hand-built ``nir.NIRGraph`` with a projection shortcut imports as
``Branch``/``Add`` and simulates equal to a plain NumPy IF simulation of the graph written from
NIR's definitions, and to the same network built by hand.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import eventsim as es

nir = pytest.importorskip("nir")
from eventsim.nir import from_nir_graph, load_nir, to_nir_graph  # noqa: E402
from eventsim.nir.exporter import NIRExportWarning  # noqa: E402


def _dyadic(rng, *shape):
    return rng.integers(-8, 9, shape) / 8.0


def resnet_net(rng) -> es.Network:
    """stem, an identity block, a downsampling block with a 1×1 projection (biases on both
    paths of the merge), a LIF site, linear readout."""
    c = lambda *s: _dyadic(rng, *s)  # noqa: E731
    layers = [es.Conv2d(c(3, 2, 3, 3), padding=1), es.IF(threshold=0.75),                    # 0, 1
              es.Conv2d(c(3, 3, 3, 3), padding=1), es.IF(threshold=1.0),                      # 2, 3
              es.Conv2d(c(3, 3, 3, 3), padding=1), es.Add(source=1), es.IF(threshold=0.5),    # 4, 5, 6
              es.Conv2d(c(4, 3, 3, 3), stride=2, padding=1, bias=c(4) / 4), es.IF(),          # 7, 8
              es.Conv2d(c(4, 4, 3, 3), padding=1, bias=c(4) / 4),                             # 9
              es.Branch(source=6), es.Conv2d(c(4, 3, 1, 1), stride=2, bias=c(4) / 4),         # 10, 11
              es.Add(source=9), es.LIF(leak=0.875, threshold=0.5),                            # 12, 13
              es.Flatten(), es.Linear(c(5, 64)), es.Readout()]
    return es.Network((2, 8, 8), layers)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        return fn(*args, **kw)


@pytest.mark.parametrize("convention,dt_us", [("exact", 1000.0), ("euler", 1000.0), ("sinabs", None)])
def test_branching_network_roundtrips_exactly(tmp_path, convention, dt_us):
    net = resnet_net(np.random.default_rng(0))
    path = tmp_path / "resnet.nir"
    _quiet(es.save, net, path, convention=convention, dt_us=dt_us)
    back = es.load(path)
    assert back == net and [l.name for l in back.layers] == [l.name for l in net.layers]
    assert back.shapes == net.shapes
    assert _quiet(from_nir_graph, _quiet(to_nir_graph, net, convention=convention, dt_us=dt_us)) == net


def test_branching_network_through_standard_fields_gives_identical_spikes(tmp_path):
    net = resnet_net(np.random.default_rng(1))
    path = tmp_path / "resnet.nir"
    _quiet(es.save, net, path, convention="euler", dt_us=1000.0)
    back = load_nir(path, use_metadata=False, convention="euler", dt_us=1000.0, reset="subtract")
    assert sum(isinstance(l, es.Branch) for l in back.layers) == 1
    assert sum(isinstance(l, es.Add) for l in back.layers) == 2
    frames = np.random.default_rng(2).poisson(0.5, (12, 2, 8, 8)).astype(np.int64)
    a = es.simulate(net, frames, dt_us=1000.0, record="spikes")
    b = es.simulate(back, frames, dt_us=1000.0, record="spikes")
    for layer in net.layers:
        if isinstance(layer, es.NeuronSpec):
            np.testing.assert_array_equal(b.rasters[layer.name], a.rasters[layer.name])
    assert a.rasters[net.layers[13].name].sum() > 0          # the merged site really spikes
    np.testing.assert_allclose(b.logits, a.logits, rtol=1e-9, atol=1e-9)
    assert b.synops == a.synops


# ----------------------------------------------------------------------------- hand-built graph


def _conv_np(x, w, stride, pad):
    """Plain loops: out[o, y, x] = Σ w[o, i, ky, kx]·xp[i, y·s + ky, x·s + kx]."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    co, ci, kh, kw = w.shape
    oh, ow = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
    out = np.zeros((co, oh, ow))
    for o in range(co):
        for y in range(oh):
            for x_ in range(ow):
                out[o, y, x_] = np.sum(w[o] * xp[:, y * stride:y * stride + kh, x_ * stride:x_ * stride + kw])
    return out


def _if(shape, theta):
    return nir.IF(r=np.ones(shape), v_threshold=np.full(shape, theta), v_reset=np.zeros(shape))


def _projection_graph(rng):
    """in → c1 → n1 → c2 (stride 2) → n2 → c3 → n3 ← s (1×1, stride 2) ← n1; n3 → flat → fc → n4 → out."""
    w = {"c1": _dyadic(rng, 3, 2, 3, 3), "c2": _dyadic(rng, 4, 3, 3, 3), "c3": _dyadic(rng, 4, 4, 3, 3),
         "s": _dyadic(rng, 4, 3, 1, 1), "fc": _dyadic(rng, 5, 64)}
    conv = lambda k, stride, pad: nir.Conv2d(None, w[k], stride, pad, 1, 1, np.zeros(w[k].shape[0]))  # noqa: E731
    nodes = {"in": nir.Input(np.array([2, 8, 8])), "c1": conv("c1", 1, 1), "n1": _if((3, 8, 8), 0.75),
             "c2": conv("c2", 2, 1), "n2": _if((4, 4, 4), 1.0), "c3": conv("c3", 1, 1),
             "s": conv("s", 2, 0), "n3": _if((4, 4, 4), 0.5),
             "flat": nir.Flatten({"input": np.array([4, 4, 4])}, 0, -1), "fc": nir.Linear(w["fc"]),
             "n4": _if((5,), 0.5), "out": nir.Output(np.array([5]))}
    edges = [("in", "c1"), ("c1", "n1"), ("n1", "c2"), ("c2", "n2"), ("n2", "c3"), ("c3", "n3"),
             ("n1", "s"), ("s", "n3"), ("n3", "flat"), ("flat", "fc"), ("fc", "n4"), ("n4", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), w


def _numpy_reference(w, frames):
    """NIR IF with r = 1 stepped as eventsim's 'exact' convention: v += input (unit impulses), spike
    when v > θ, v ← v_reset = 0; within a step, layers in graph order (zero delay)."""
    theta = {"n1": 0.75, "n2": 1.0, "n3": 0.5, "n4": 0.5}
    v = {"n1": np.zeros((3, 8, 8)), "n2": np.zeros((4, 4, 4)), "n3": np.zeros((4, 4, 4)), "n4": np.zeros(5)}
    out = {k: [] for k in v}

    def fire(name, current):
        v[name] += current
        s = v[name] > theta[name]
        v[name][s] = 0.0
        out[name].append(s.astype(np.int64))
        return s.astype(np.float64)

    for x in frames.astype(np.float64):
        s1 = fire("n1", _conv_np(x, w["c1"], 1, 1))
        s2 = fire("n2", _conv_np(s1, w["c2"], 2, 1))
        s3 = fire("n3", _conv_np(s2, w["c3"], 1, 1) + _conv_np(s1, w["s"], 2, 0))
        fire("n4", w["fc"] @ s3.reshape(-1))
    return {k: np.array(val) for k, val in out.items()}


def test_hand_built_projection_shortcut_matches_numpy_and_hand_built_network():
    rng = np.random.default_rng(5)
    graph, w = _projection_graph(rng)
    net = from_nir_graph(graph, reset="zero")
    kinds = [type(l).__name__ for l in net.layers]
    assert kinds == ["Conv2d", "IF", "Conv2d", "IF", "Conv2d", "Branch", "Conv2d", "Add", "IF", "Flatten",
                     "Linear", "IF"]
    assert net.layers[5].source == 1 and net.layers[7].source == 4
    hand = es.Network((2, 8, 8), [
        es.Conv2d(w["c1"], np.zeros(3), padding=1, name="c1"), es.IF(threshold=0.75, reset="zero", name="n1"),
        es.Conv2d(w["c2"], np.zeros(4), stride=2, padding=1, name="c2"), es.IF(threshold=1.0, reset="zero", name="n2"),
        es.Conv2d(w["c3"], np.zeros(4), padding=1, name="c3"), es.Branch(source=1),
        es.Conv2d(w["s"], np.zeros(4), stride=2, name="s"), es.Add(source=4),
        es.IF(threshold=0.5, reset="zero", name="n3"), es.Flatten(name="flat"), es.Linear(w["fc"], name="fc"),
        es.IF(threshold=0.5, reset="zero", name="n4")])
    frames = rng.poisson(0.6, (15, 2, 8, 8)).astype(np.int64)
    want = _numpy_reference(w, frames)
    assert want["n3"].sum() > 0 and want["n4"].sum() > 0
    got = es.simulate(net, frames, dt_us=1000.0, record="spikes")
    ref = es.simulate(hand, frames, dt_us=1000.0, record="spikes")
    for name, raster in want.items():
        np.testing.assert_array_equal(got.rasters[name], raster)
        np.testing.assert_array_equal(ref.rasters[name], raster)
    assert got.synops == ref.synops


def test_merge_of_unequal_shapes_names_the_node():
    rng = np.random.default_rng(6)
    graph, w = _projection_graph(rng)
    graph.nodes["s"] = nir.Conv2d(None, w["s"], 1, 0, 1, 1, np.zeros(4))       # no downsampling: 8×8
    with pytest.raises(ValueError, match=r"node 'n3' \(IF\): merges 'c3' of shape \(4, 4, 4\) with shape \(4, 8, 8\); merged inputs must"):
        from_nir_graph(graph, reset="zero")
