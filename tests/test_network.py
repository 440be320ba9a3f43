"""The IR validates itself: wrong shapes and options raise ValueError naming layer, found and expected."""
from __future__ import annotations

import os

import numpy as np
import pytest

import eventsim as es


def test_shapes_are_derived():
    net = es.Network((2, 34, 34), [
        es.Conv2d(np.zeros((8, 2, 4, 4)), stride=4), es.LIF(leak=0.5),          # 8×8×8
        es.Conv2d(np.zeros((16, 8, 3, 3)), padding=1), es.IF(), es.AvgPool2d(2),  # 16×4×4
        es.Flatten(), es.Linear(np.zeros((10, 256))), es.Readout()])
    assert net.shapes[0] == (8, 8, 8)
    assert net.shapes[4] == (16, 4, 4)
    assert net.output_shape == (10,)
    assert net.parameter_count() == 8 * 2 * 16 + 16 * 8 * 9 + 2560


@pytest.mark.parametrize("layers,message", [
    ([es.Conv2d(np.zeros((4, 3, 3, 3)))], r"0\.Conv2d: input has 2 channels .* expected 3"),
    ([es.Flatten(), es.Linear(np.zeros((4, 10)))], r"1\.Linear: input has 50 features, expected 10"),
    ([es.Linear(np.zeros((4, 10)))], r"not flat; insert a Flatten"),
    ([es.Conv2d(np.zeros((4, 2, 9, 9)))], r"smaller than kernel"),
    ([es.Readout(), es.Flatten()], r"Readout must be the last layer"),
    ([es.IF(threshold=[1.0, 2.0, 3.0])], r"threshold: 3 values, expected 1 or 2"),
    ([es.Add(source=3)], r"must index an earlier layer"),
    ([es.Conv2d(np.zeros((3, 2, 1, 1))), es.Add(source=-1)], r"adds shape \(2, 5, 5\) .* to shape \(3, 5, 5\)"),
])
def test_shape_errors_name_layer_found_and_expected(layers, message):
    with pytest.raises(ValueError, match=message):
        es.Network((2, 5, 5), layers)


@pytest.mark.parametrize("make,message", [
    (lambda: es.IF(threshold=0.0), "threshold: must be > 0"),
    (lambda: es.IF(compare="<"), "compare"),
    (lambda: es.IF(reset="halve"), "reset"),
    (lambda: es.IF(order="random"), "order"),
    (lambda: es.LIF(), "exactly one of leak"),
    (lambda: es.LIF(leak=1.5), r"leak: must lie in \(0, 1\]"),
    (lambda: es.LIF(tau_s=-1.0), "tau_s"),
    (lambda: es.Conv2d(np.zeros((4, 2, 3))), "4-D"),
    (lambda: es.Conv2d(np.zeros((4, 2, 3, 3)), groups=3), "not divisible by groups"),
    (lambda: es.Conv2d(np.zeros((4, 2, 3, 3)), bias=np.zeros(3)), r"bias: shape \(3,\), expected \(4,\)"),
    (lambda: es.Linear(np.array([[np.nan]])), "NaN"),
    (lambda: es.AvgPool2d(2, padding=2), "at most half the kernel"),
    (lambda: es.IF(spike_amplitude="big"), "spike_amplitude"),
    (lambda: es.IF(step_gain=np.ones((3, 2)), step_bias=np.ones((4, 2))), "3 steps but step_bias has 4"),
    (lambda: es.Readout(mode="max"), "mode"),
])
def test_option_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_layers_are_frozen_and_compare_by_value():
    a = es.Conv2d(np.ones((1, 1, 2, 2)), stride=2)
    b = es.Conv2d(np.ones((1, 1, 2, 2)), stride=(2, 2))
    assert a == b
    with pytest.raises(Exception):
        a.stride = 1
    with pytest.raises(ValueError):
        a.weight[0, 0, 0, 0] = 5.0          # weights are read-only copies


def test_native_roundtrip_and_corrupt_file(tmp_path):
    rng = np.random.default_rng(0)
    net = es.Network((2, 8, 8), [
        es.Conv2d(rng.normal(size=(4, 1, 3, 3)), bias=rng.normal(size=4), padding=1, groups=2),
        es.LIF(leak=[0.9, 0.8, 0.7, 0.6], threshold=1.0, v_init=0.5, order="fire-integrate"),
        es.MaxPool2d(2), es.Flatten(), es.Linear(rng.normal(size=(10, 64))),
        es.IF(threshold=1.0, spike_amplitude="threshold", step_gain=np.ones((5, 10)), step_bias=np.zeros((5, 10))),
        es.Linear(rng.normal(size=(3, 10))), es.Readout(mode="mean")], metadata={"source": "test"})
    path = tmp_path / "model.npz"
    es.save(net, path)
    again = es.load(path)
    assert again == net and again.metadata == {"source": "test"}
    frames = rng.poisson(0.3, size=(5, 2, 8, 8))
    np.testing.assert_array_equal(es.simulate(net, frames).logits, es.simulate(again, frames).logits)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="model.npz"):
        es.load(path)
    with pytest.raises(ValueError, match="no such model file"):
        es.load(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------- equality, hash, repr


def _hash_net(weight_scale=1.0, name=None, conv=None):
    rng = np.random.default_rng(3)
    conv = rng.normal(0, 1, (4, 2, 3, 3)) if conv is None else conv
    return es.Network((2, 6, 6), [es.Conv2d(conv * weight_scale, padding=1, name=name), es.LIF(leak=[0.9, 0.8, 0.7, 0.6]),
                                  es.AvgPool2d(2), es.Flatten(), es.Linear(rng.normal(0, 1, (3, 36))), es.Readout()])


def test_equal_networks_hash_equal_and_unequal_ones_differ():
    a, b = _hash_net(), _hash_net()
    assert a is not b and a.layers[0].weight is not b.layers[0].weight
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1 and {a: 1}[b] == 1
    assert all(x == y and hash(x) == hash(y) for x, y in zip(a.layers, b.layers))
    # a changed weight, a renamed layer, a changed neuron parameter: unequal, and here hashed differently
    w = a.layers[0].weight.copy()
    w[1, 0, 2, 2] += 1e-12
    for other in (_hash_net(conv=w), _hash_net(name="conv"),
                  es.Network(a.input_shape, [*a.layers[:1], es.LIF(leak=0.9), *a.layers[2:]])):
        assert other != a and hash(other) != hash(a) and len({a, other}) == 2
    # metadata is provenance: not compared, not hashed
    c = es.Network(a.input_shape, a.layers, metadata={"source": "elsewhere"})
    assert c == a and hash(c) == hash(a)


def test_hash_agrees_with_equality_on_signed_zero():
    conv = np.zeros((4, 2, 3, 3))
    a, b = _hash_net(conv=conv), _hash_net(conv=-conv)
    assert np.signbit(b.layers[0].weight).all() and not np.signbit(a.layers[0].weight).any()
    assert a == b and hash(a) == hash(b)


def test_hash_digests_the_weights_once(monkeypatch):
    import eventsim.network as netmod
    calls = []
    real = netmod._hash_key
    monkeypatch.setattr(netmod, "_hash_key", lambda v: calls.append(1) or real(v))
    net = _hash_net()
    first = hash(net)
    n = len(calls)
    assert n > 0 and hash(net) == first and hash(net.layers[0]) == hash(net.layers[0])
    assert len(calls) == n


def test_hash_survives_pickling_into_another_process(tmp_path):
    """The cached hash is not pickled: ``hash`` of a name differs between processes."""
    import pickle
    import subprocess
    import sys
    net = _hash_net(name="conv")
    hash(net)                                           # cache it before pickling
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(net))
    code = ("import pickle, sys, dataclasses, eventsim as es\n"
            "net = pickle.load(open(sys.argv[1], 'rb'))\n"
            "copy = lambda l: type(l)(**{f.name: getattr(l, f.name) for f in dataclasses.fields(l) if f.init})\n"
            "fresh = es.Network(net.input_shape, [copy(l) for l in net.layers])\n"
            "assert fresh.layers[0] is not net.layers[0]\n"
            "assert net == fresh and hash(net) == hash(fresh) and len({net, fresh}) == 1, 'hash differs'\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "net.pkl")],
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_equal_networks_keep_their_own_engine_caches():
    """The engines' per-network tables stay keyed by identity: equal networks simulate alike,
    each with its own cache, and a cache goes with its network."""
    import gc
    from eventsim.engines import cache
    a, b = _hash_net(), _hash_net()
    rng = np.random.default_rng(0)
    events = np.zeros(300, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    events["t"] = np.sort(rng.integers(0, 20_000, 300))
    events["x"], events["y"], events["p"] = rng.integers(0, 6, 300), rng.integers(0, 6, 300), rng.integers(0, 2, 300)
    for engine in ("stepped", "async"):
        ra = es.simulate(a, events, engine=engine, dt_us=1000, steps=20)
        rb = es.simulate(b, events, engine=engine, dt_us=1000, steps=20)
        np.testing.assert_array_equal(ra.final_logits, rb.final_logits)
        assert ra.synops == rb.synops
    assert cache.cache_for(a) is not cache.cache_for(b) and cache.cache_for(a) and cache.cache_for(b)
    key = id(a)
    del a, ra
    gc.collect()
    assert key not in cache._CACHES


def test_repr_is_the_inspect_table(tmp_path, capsys):
    from eventsim.cli import main
    from eventsim.report import network_table
    big = es.Network((1, 64, 64), [es.Flatten(), es.Linear(np.full((256, 4096), 0.123456789)), es.IF(),
                                   es.Linear(np.ones((10, 256))), es.Readout()])
    text = repr(big)
    assert text == network_table(big) == str(big) and len(text) < 2000 and "0.123456789" not in text
    es.save(big, tmp_path / "big.npz")
    assert main(["inspect", str(tmp_path / "big.npz")]) == 0
    assert text in capsys.readouterr().out
    assert "total parameters: 1051136" in text         # 256·4096 + 10·256, no biases
