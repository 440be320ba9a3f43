"""Fuzzing the checkpoint importers (DIET, QCFS, AOI, BNTT, ANN conversion) and layout detection.

Each example takes one of the shipped seed checkpoints, applies random damage (a key dropped,
renamed or added; a tensor reshaped, retyped, replaced by a scalar, a string or a list; values
set to NaN, ±inf, zero or negative; extra entries of odd types) and writes it back with the
torch-free writer. ``eventsim.load`` with the layout's format, and without a format (detection),
must then either raise a ValueError or return a network that the stepped engine runs with
finite output. Budgets: :mod:`hostile.fuzzing`.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventsim as es
from hostile import corpus, ptfile
from hostile.fuzzing import fuzz

SEEDS = corpus.SEEDS
_TREES: dict = {}


def seed_tree(layout):
    if layout not in _TREES:
        tree = corpus._seed_tree(SEEDS[layout][0])
        tree.pop("optimizer", None)
        _TREES[layout] = tree
    return _TREES[layout]


def _copy(tree):
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_copy(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return tree.copy()
    return tree


def _state(tree):
    return tree["state_dict"] if isinstance(tree.get("state_dict"), dict) else tree


odd_values = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(), st.text(max_size=5),
                       st.lists(st.integers(-3, 70), max_size=4), st.just({"type": "Conv2d", "stride": "x"}))


@st.composite
def damage(draw, layout):
    """A list of edits to apply to the layout's seed checkpoint tree."""
    tree = seed_tree(layout)
    keys = list(_state(tree))
    top = [k for k in tree if k != "state_dict"]
    edit = st.one_of(
        st.tuples(st.just("drop"), st.sampled_from(keys)),
        st.tuples(st.just("rename"), st.sampled_from(keys), st.sampled_from(["x", "module.x", "features.99.weight"])),
        st.tuples(st.just("reshape"), st.sampled_from(keys), st.lists(st.integers(0, 5), max_size=4)),
        st.tuples(st.just("retype"), st.sampled_from(keys), st.sampled_from(["float16", "float64", "int64", "int8",
                                                                             "bool", "uint8"])),
        st.tuples(st.just("value"), st.sampled_from(keys),
                  st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, 1e-30])),
        st.tuples(st.just("value"), st.sampled_from(keys), st.floats(-10, 10)),
        st.tuples(st.just("scale"), st.sampled_from(keys), st.sampled_from([0.0, -1.0, 1e6, 1e-6])),
        st.tuples(st.just("replace"), st.sampled_from(keys), odd_values),
        st.tuples(st.just("extra"), st.sampled_from(keys + ["new"]), odd_values),
        st.tuples(st.just("top"), st.sampled_from(top or ["epoch"]), odd_values),
    )
    return draw(st.lists(edit, min_size=1, max_size=3))


def apply(tree, edits, rng):
    tree = _copy(tree)
    state = _state(tree)
    for kind, key, *arg in edits:
        if kind != "top" and key not in state and kind != "extra":
            continue
        if kind == "drop":
            del state[key]
        elif kind == "rename":
            state[arg[0]] = state.pop(key)
        elif kind == "reshape":
            state[key] = rng.normal(size=tuple(arg[0])).astype(np.float32)
        elif kind == "retype" and isinstance(state[key], np.ndarray):
            state[key] = state[key].astype(arg[0])
        elif kind == "value" and isinstance(state[key], np.ndarray) and state[key].size:
            arr = state[key].astype(np.float32)
            arr.reshape(-1)[rng.integers(arr.size)] = arg[0]
            state[key] = arr
        elif kind == "scale" and isinstance(state[key], np.ndarray) and state[key].dtype.kind == "f":
            state[key] = (state[key] * arg[0]).astype(state[key].dtype)
        elif kind == "replace":
            state[key] = arg[0]
        elif kind == "extra":
            state[key + ".extra"] = arg[0]
        elif kind == "top":
            tree[key] = arg[0]
    return tree


def _inputs(net):
    """A small input in the network's recorded encoding (events or an analog image)."""
    rng = np.random.default_rng(0)
    kind = net.metadata.get("input_encoding", "analog")
    if kind in ("events", "frames", "poisson"):
        return rng.poisson(0.3, size=(3,) + net.input_shape).astype(np.int64), "events"
    return rng.uniform(0, 1, size=net.input_shape), "analog"


def _check_network(net):
    x, kind = _inputs(net)
    try:
        res = es.simulate(net, x, steps=3, input_kind=kind, dt_us=1000)
    except ValueError as exc:          # the importer recorded fewer steps (BNTT tables) than we ask
        assert "steps" in str(exc)
        return
    assert np.all(np.isfinite(res.logits)) and res.spikes >= 0 and res.synops >= 0


def _try_load(path, **kw):
    try:
        return es.load(path, **kw)
    except ValueError:
        return None


@pytest.mark.parametrize("layout", list(SEEDS))
def test_undamaged_seeds_load(layout, tmp_path):
    """Control: rewritten by the torch-free writer, every seed loads with its layout and by detection."""
    path = ptfile.save_tree(tmp_path / f"{layout}.pt", seed_tree(layout))
    opts = SEEDS[layout][1]
    net = es.load(path, format=layout, **opts)
    _check_network(net)
    if layout != "ann":                     # the ANN layout is detected from its architecture entry too
        assert es.load(path, **opts) == net


def _fuzz_layout(layout, tmp_path_factory, data):
    edits, seed, strict = data.draw(damage(layout)), data.draw(st.integers(0, 99)), data.draw(st.booleans())
    path = tmp_path_factory.mktemp(layout) / f"{layout}.pt"
    ptfile.save_tree(path, apply(seed_tree(layout), edits, np.random.default_rng(seed)))
    opts = {**SEEDS[layout][1], "strict": strict}
    for net in (_try_load(path, format=layout, **opts), _try_load(path, **opts)):
        if net is not None:
            _check_network(net)


@fuzz("import_diet", 25)
@given(data=st.data())
def test_fuzz_diet(tmp_path_factory, data):
    _fuzz_layout("diet", tmp_path_factory, data)


@fuzz("import_qcfs", 25)
@given(data=st.data())
def test_fuzz_qcfs(tmp_path_factory, data):
    _fuzz_layout("qcfs", tmp_path_factory, data)


@fuzz("import_aoi", 25)
@given(data=st.data())
def test_fuzz_aoi(tmp_path_factory, data):
    _fuzz_layout("aoi", tmp_path_factory, data)


@fuzz("import_bntt", 15)
@given(data=st.data())
def test_fuzz_bntt(tmp_path_factory, data):
    _fuzz_layout("bntt", tmp_path_factory, data)


@fuzz("import_ann", 25)
@given(data=st.data())
def test_fuzz_ann(tmp_path_factory, data):
    _fuzz_layout("ann", tmp_path_factory, data)
