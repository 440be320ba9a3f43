"""Malformed and unsupported NIR files fail with errors that name the node and the field; the CLI
helpers (``nir_summary``, ``convert``) and the format registry work on .nir files."""
from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest

import eventsim as es
from eventsim.formats import detect_format

nir = pytest.importorskip("nir")

from eventsim.nir import (convert, from_nir_graph, load_nir, nir_summary,  # noqa: E402
                                      save_nir, to_nir_graph)


def _lif(shape, tau=0.01, v_leak=0.0, v_reset=0.0):
    f = lambda x: np.full(shape, float(x))  # noqa: E731
    return nir.LIF(tau=f(tau), r=f(tau), v_leak=f(v_leak), v_threshold=f(1.0), v_reset=f(v_reset))


def _chain(*middle, n_in=3, n_out=None):
    """Input → middle nodes in a chain → Output, as a NIRGraph (no type check)."""
    nodes = {"in": nir.Input(np.array([n_in]))}
    names = [name for name, _ in middle]
    nodes.update(dict(middle))
    nodes["out"] = nir.Output(np.array([n_out or n_in]))
    seq = ["in"] + names + ["out"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(seq, seq[1:])), type_check=False)


@pytest.fixture
def good_file(tmp_path):
    g = _chain(("fc", nir.Affine(np.ones((5, 3)), np.zeros(5))), ("lif", _lif(5)), n_out=5)
    path = tmp_path / "good.nir"
    nir.write(path, g)
    assert load_nir(path).layers[1].kind == "LIF"     # the unmodified file is fine
    return path


# ----------------------------------------------------------------------------- malformed files


def test_missing_field_names_node_and_field(good_file):
    with h5py.File(good_file, "r+") as f:
        del f["node/nodes/lif/tau"]
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\): missing field 'tau'"):
        es.load(good_file)


def test_unknown_node_type(good_file):
    with h5py.File(good_file, "r+") as f:
        del f["node/nodes/lif/type"]
        f.create_dataset("node/nodes/lif/type", data="Frobnicator", dtype=h5py.string_dtype())
    with pytest.raises(ValueError, match=r"node 'lif' has unknown NIR node type 'Frobnicator'"):
        load_nir(good_file)


def test_inconsistent_parameter_shapes(good_file):
    with h5py.File(good_file, "r+") as f:
        del f["node/nodes/lif/tau"]
        f.create_dataset("node/nodes/lif/tau", data=np.full(3, 0.01))
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\): .*tau \(3,\)"):
        load_nir(good_file)


def test_parameter_shape_not_matching_the_population(good_file):
    with h5py.File(good_file, "r+") as f:
        for k in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            data = f[f"node/nodes/lif/{k}"][()][:4]
            del f[f"node/nodes/lif/{k}"]
            f.create_dataset(f"node/nodes/lif/{k}", data=data)
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\) field 'v_threshold': shape \(4,\), "
                                         r"expected a single value or the population shape \(5,\)"):
        load_nir(good_file)


def test_weight_shape_not_matching_the_input(good_file):
    with h5py.File(good_file, "r+") as f:
        del f["node/nodes/fc/weight"]
        f.create_dataset("node/nodes/fc/weight", data=np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"node 'fc' \(Affine\): .*3 features, expected 4"):
        load_nir(good_file)
    g = _chain(("fc", nir.Affine(np.ones((5, 3)), np.zeros(2))), ("lif", _lif(5)), n_out=5)
    with pytest.raises(ValueError, match=r"node 'fc' \(Affine\): fc.bias: shape \(2,\), expected \(5,\)"):
        from_nir_graph(g)


def test_output_shape_not_matching(tmp_path):
    g = _chain(("fc", nir.Linear(np.ones((5, 3)))), ("lif", _lif(5)), n_out=4)
    with pytest.raises(ValueError, match=r"node 'out' \(Output\) field 'shape': \[4\], but the layers before it produce \[5\]"):
        from_nir_graph(g)


def test_edge_to_a_missing_node(good_file):
    with h5py.File(good_file, "r+") as f:
        edges = f["node/edges"][()]
        edges[0, 1] = b"ghost"
        del f["node/edges"]
        f.create_dataset("node/edges", data=edges)
    with pytest.raises(ValueError, match=r"no node named 'ghost'"):
        load_nir(good_file)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_hdf5(good_file, damage):
    data = good_file.read_bytes()
    good_file.write_bytes(b"not an HDF5 file at all" * 10 if damage == "garbage" else data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"not a readable HDF5 file|corrupt NIR file"):
        es.load(good_file)          # detected by extension, then refused clearly


def test_hdf5_that_is_not_nir(tmp_path):
    path = tmp_path / "x.nir"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.arange(3))
    with pytest.raises(ValueError, match="without a 'node' group: not a NIR file"):
        load_nir(path)


def test_corrupt_eventsim_metadata(tmp_path):
    path = tmp_path / "m.nir"
    save_nir(es.Network((2,), [es.Linear(np.eye(2)), es.IF(reset="zero")]), path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/1.IF/metadata/eventsim"]
        f.create_dataset("node/nodes/1.IF/metadata/eventsim", data="{not json", dtype=h5py.string_dtype())
    with pytest.raises(ValueError, match=r"node '1.IF': metadata\['eventsim'\] is corrupt"):
        load_nir(path)
    assert load_nir(path, use_metadata=False).layers[1].kind == "IF"


# ----------------------------------------------------------------------------- unsupported content


@pytest.mark.parametrize("node", [
    nir.LI(np.full(3, 0.01), np.ones(3), np.zeros(3)),
    nir.CubaLI(np.full(3, .01), np.full(3, .01), np.ones(3), np.zeros(3)),
], ids=["LI", "CubaLI"])
def test_leaky_readouts_only_at_the_end(node):
    g = _chain(("fc", nir.Linear(np.eye(3))), ("x", node), ("fc2", nir.Linear(np.eye(3))))
    kind = type(node).__name__
    with pytest.raises(ValueError, match=rf"node 'x' \({kind}\): a non-spiking integrator is supported only"):
        from_nir_graph(g)


def test_cuba_with_a_resting_potential_is_refused():
    node = nir.CubaLIF(np.full(3, .01), np.full(3, .01), np.ones(3), np.full(3, 0.1), np.ones(3))
    with pytest.raises(ValueError, match=r"node 'x' \(CubaLIF\) field 'v_leak'.*resting potential"):
        from_nir_graph(_chain(("fc", nir.Linear(np.eye(3))), ("x", node)))


def test_nested_subgraph_is_refused():
    inner = nir.NIRGraph(nodes={"i": nir.Input(np.array([3])), "l": _lif(3), "o": nir.Output(np.array([3]))},
                         edges=[("i", "l"), ("l", "o")], type_check=False)
    with pytest.raises(ValueError, match=r"node 'sub' \(NIRGraph\): not supported.*subgraph"):
        from_nir_graph(_chain(("sub", inner)))


def test_integrator_only_as_readout():
    g = _chain(("fc", nir.Linear(np.eye(3))), ("i", nir.I(np.ones(3))), ("fc2", nir.Linear(np.eye(3))))
    with pytest.raises(ValueError, match=r"node 'i' \(I\): a non-spiking integrator is supported only"):
        from_nir_graph(g)


@pytest.mark.parametrize("field,value,match", [
    ("v_leak", 0.2, r"field 'v_leak': 0.2; .*resting potential"),
    ("v_reset", -0.5, r"field 'v_reset': -0.5; .*reset potential"),
])
def test_nonzero_rest_or_reset_potential(field, value, match):
    g = _chain(("fc", nir.Linear(np.eye(3))), ("lif", _lif(3, **{field: value})))
    with pytest.raises(ValueError, match=rf"node 'lif' \(LIF\) {match}"):
        from_nir_graph(g)
    if field == "v_reset":     # a subtractive reset ignores v_reset
        assert from_nir_graph(g, reset="subtract").layers[1].reset == "subtract"


def test_parameters_varying_within_a_channel():
    tau = np.full((2, 3, 3), 0.01)
    tau[1, 2, 0] = 0.02
    lif = nir.LIF(tau=tau, r=tau, v_leak=np.zeros_like(tau), v_threshold=np.ones_like(tau), v_reset=np.zeros_like(tau))
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([1, 3, 3])),
                            "c": nir.Conv2d(None, np.ones((2, 1, 1, 1)), 1, 0, 1, 1, np.zeros(2)),
                            "lif": lif, "out": nir.Output(np.array([2, 3, 3]))},
                     edges=[("in", "c"), ("c", "lif"), ("lif", "out")], type_check=False)
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\) field 'r': values differ within channel 1"):
        from_nir_graph(g, dt_us=1000.0)


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_cycle_is_refused():
    # a population's own projection (l → w → l) is a Recurrent layer; a longer cycle is refused
    g = _graph({"in": nir.Input(np.array([2])), "a": nir.Linear(np.eye(2)), "l": _lif(2),
                "w": nir.Linear(np.eye(2)), "w2": nir.Linear(np.eye(2)), "out": nir.Output(np.array([2]))},
               [("in", "a"), ("a", "l"), ("l", "w"), ("w", "w2"), ("w2", "l"), ("l", "out")])
    with pytest.raises(ValueError, match=r"cycle.*'w2' → 'l'|cycle.*'l' → 'w'|cycle.*'w' → 'w2'"):
        from_nir_graph(g)
    g = _graph({"in": nir.Input(np.array([2])), "a": nir.Linear(np.eye(2)), "l": _lif(2),
                "w": nir.Linear(np.eye(2)), "out": nir.Output(np.array([2]))},
               [("in", "a"), ("a", "l"), ("l", "w"), ("w", "l"), ("l", "out")])
    assert [type(layer).__name__ for layer in from_nir_graph(g, dt_us=100.0).layers] == ["Linear", "LIF", "Recurrent"]
    g = _graph({"in": nir.Input(np.array([2])), "a": nir.Linear(np.eye(2)), "f": nir.Flatten(np.array([2])),
                "w": nir.Linear(np.eye(2)), "out": nir.Output(np.array([2]))},
               [("in", "a"), ("a", "f"), ("f", "w"), ("w", "f"), ("f", "out")])
    with pytest.raises(ValueError, match=r"node 'w' \(Linear\): a recurrent cycle through a Flatten"):
        from_nir_graph(g)


def test_dead_end_and_multiple_inputs():
    g = _graph({"in": nir.Input(np.array([2])), "a": nir.Linear(np.eye(2)), "l": _lif(2),
                "dead": _lif(2), "out": nir.Output(np.array([2]))},
               [("in", "a"), ("a", "l"), ("a", "dead"), ("l", "out")])
    with pytest.raises(ValueError, match=r"node 'dead' \(LIF\) does not lead to the Output"):
        from_nir_graph(g)
    g = _graph({"i1": nir.Input(np.array([2])), "i2": nir.Input(np.array([2])), "l": _lif(2),
                "out": nir.Output(np.array([2]))}, [("i1", "l"), ("i2", "l"), ("l", "out")])
    with pytest.raises(ValueError, match="2 Input and 1 Output nodes"):
        from_nir_graph(g)


@pytest.mark.parametrize("node,match", [
    (nir.Conv2d(None, np.ones((2, 1, 3, 3)), 1, 1, 2, 1, np.zeros(2)), r"field 'dilation': \(2, 2\)"),
    (nir.Conv2d(None, np.ones((2, 1, 2, 2)), 1, "same", 1, 1, np.zeros(2)), r"field 'padding': 'same'.*asymmetric"),
    (nir.Flatten({"input": np.array([1, 4, 4])}, 1, -1), r"keeps several axes"),
    (nir.Scale(np.ones((1, 4, 4))), r"cannot fold this Scale"),
    (nir.Delay(np.ones((1, 4, 4))), r"a Delay must directly follow a weighted node"),
], ids=["dilation", "same-even", "partial-flatten", "scale", "delay"])
def test_unmappable_layers(node, match):
    g = _graph({"in": nir.Input(np.array([1, 4, 4])), "x": node,
                "p": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                "out": nir.Output(np.array([1, 2, 2]))},
               [("in", "x"), ("x", "p"), ("p", "out")])
    with pytest.raises(ValueError, match=rf"node 'x' \({type(node).__name__}\).*{match}"):
        from_nir_graph(g)


def test_options_that_need_a_step_length_or_are_unknown():
    tau = np.array([0.01, 0.02])
    lif = nir.LIF(tau=tau, r=tau, v_leak=np.zeros(2), v_threshold=np.ones(2), v_reset=np.zeros(2))
    g = _chain(("fc", nir.Linear(np.eye(2))), ("lif", lif), n_in=2)
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\): a per-channel τ needs the step length; pass dt_us="):
        from_nir_graph(g)
    np.testing.assert_allclose(from_nir_graph(g, dt_us=1000.0).layers[1].leak, np.exp(-0.001 / tau))
    with pytest.raises(ValueError, match=r"convention 'euler' needs the step length"):
        from_nir_graph(g, convention="euler")
    with pytest.raises(ValueError, match=r"convention='rk4': choose one of \['euler', 'exact', 'sinabs', 'snntorch'\]"):
        from_nir_graph(g, convention="rk4")
    with pytest.raises(ValueError, match=r"reset='soft': choose one of"):
        from_nir_graph(g, reset="soft")


# ----------------------------------------------------------------------------- export errors


@pytest.mark.parametrize("net,kw,match", [
    (es.Network((1, 4, 4), [es.MaxPool2d(2)]), {}, "MaxPool2d has no NIR primitive"),
    (es.Network((2,), [es.Linear(np.eye(2)), es.LIF(leak=0.9)]), {}, r"1.LIF: converting a per-step leak .* pass dt_us="),
    (es.Network((2,), [es.Linear(np.eye(2)), es.LIF(tau_s=0.01)]), {"convention": "euler"}, r"needs the step length"),
    (es.Network((2,), [es.Linear(np.eye(2)), es.LIF(leak=[1.0, 0.9])]), {"dt_us": 1000.0}, r"some channels have λ = 1"),
    (es.Network((1, 4, 4), [es.Conv2d(np.ones((1, 1, 1, 1)), np.ones(1)), es.SumPool2d(2), es.IF()]),
     {"dt_us": 1000.0}, "bias does not feed a single neuron population"),
], ids=["maxpool", "leak-no-dt", "euler-no-dt", "mixed-leak", "bias-through-pool"])
def test_export_errors(tmp_path, net, kw, match):
    with pytest.raises(ValueError, match=match):
        save_nir(net, tmp_path / "e.nir", **kw)
    assert not (tmp_path / "e.nir").exists()


def test_missing_nir_package_names_the_extra(monkeypatch, tmp_path, good_file):
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"pip install 'eventsim\[nir\]'"):
        es.load(good_file)
    with pytest.raises(ImportError, match=r"eventsim\[nir\]"):
        es.save(es.Network((2,), [es.Linear(np.eye(2))]), tmp_path / "x.nir")
    assert "needs the 'nir' package" in nir_summary(good_file)


# ----------------------------------------------------------------------------- CLI helpers


def test_summary_describes_nodes_edges_and_mapping(good_file, tmp_path):
    text = nir_summary(good_file)
    assert "NIR version" in text and "lif" in text and "LIF" in text
    assert "in → fc" in text and "fc → lif" in text
    assert "eventsim: input (3,) → 2 layers: fc (Linear), lif (LIF); output (5,)" in text
    bad = tmp_path / "bad.nir"
    nir.write(bad, _chain(("fc", nir.Linear(np.eye(3))), ("x", nir.LI(np.full(3, .01), np.ones(3), np.zeros(3))),
                          ("fc2", nir.Linear(np.eye(3)))))
    assert "does not map with the default options" in nir_summary(bad) and "LI" in nir_summary(bad)


def test_convert_and_format_detection(tmp_path):
    net = es.Network((2, 4, 4), [es.Conv2d(np.ones((3, 2, 3, 3)) * 0.1, padding=1), es.IF(reset="zero"),
                                 es.Flatten(), es.Linear(np.ones((2, 48))), es.Readout()])
    src = tmp_path / "m.npz"
    es.save(net, src)
    back = convert(src, tmp_path / "m.nir")
    assert back == net
    assert detect_format(tmp_path / "m.nir") == "nir"
    renamed = tmp_path / "m.bin"
    renamed.write_bytes((tmp_path / "m.nir").read_bytes())
    assert detect_format(renamed) == "nir"           # by content, not extension
    assert convert(tmp_path / "m.nir", tmp_path / "again.npz") == net
    assert es.load(tmp_path / "again.npz") == net
    graph = to_nir_graph(net)
    assert set(graph.nodes) == {"input", "0.Conv2d", "1.IF", "2.Flatten", "3.Linear", "4.Readout", "output"}
