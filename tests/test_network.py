"""The IR validates itself: wrong shapes and options raise ValueError naming layer, found and expected."""
from __future__ import annotations

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
