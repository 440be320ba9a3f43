"""Networks whose merges hold layers on both paths (:class:`eventsim.Branch` + :class:`eventsim.Add`).

Independent references: the dense NumPy forward in ``tests/reference.py`` (stepped engine), the
plain-Python heapq simulator in ``tests/async_reference.py`` (continuous time), and a brute-force
synop count from materialised connectivity matrices (each spike times the number of synapses it
reaches, summed over both paths).
"""
from __future__ import annotations

import numpy as np
import pytest

import eventsim as es
from async_reference import assert_matches_reference, random_events, reference_simulate, warm_async  # noqa: F401
from reference import conv_matrix, dense_forward


def _dyadic(rng, *shape):
    return rng.integers(-8, 9, shape) / 8.0


def resnet_block_net(rng, downsample: bool = True) -> es.Network:
    """conv stem, one BasicBlock (projection or identity shortcut), linear readout."""
    c1, c2 = 3, (5 if downsample else 3)
    stride = 2 if downsample else 1
    layers = [es.Conv2d(_dyadic(rng, c1, 2, 3, 3), padding=1), es.IF(threshold=0.75),           # 0, 1
              es.Conv2d(_dyadic(rng, c2, c1, 3, 3), stride=stride, padding=1, bias=_dyadic(rng, c2) / 4),
              es.IF(threshold=1.0),                                                             # 3
              es.Conv2d(_dyadic(rng, c2, c2, 3, 3), padding=1)]                                 # 4
    if downsample:
        layers += [es.Branch(source=1), es.Conv2d(_dyadic(rng, c2, c1, 1, 1), stride=2),        # 5, 6
                   es.Add(source=4)]                                                            # 7
    else:
        layers += [es.Add(source=1)]
    layers += [es.IF(threshold=0.5), es.Flatten()]
    n = c2 * (4 if downsample else 8) ** 2
    layers += [es.Linear(_dyadic(rng, 4, n)), es.Readout()]
    return es.Network((2, 8, 8), layers)


def test_branch_validation_and_shapes():
    rng = np.random.default_rng(0)
    net = resnet_block_net(rng)
    assert net.shapes[5] == (3, 8, 8) and net.shapes[6] == net.shapes[4] == (5, 4, 4)
    assert net.input_of(5) == 1 and net.input_of(6) == 5 and net.input_shape_of(6) == (3, 8, 8)
    assert net.consumers(1) == [2, 5] and net.consumers(4) == [7] and net.has_branches
    layers = list(net.layers)
    with pytest.raises(ValueError, match="computed for nothing"):      # the path ending at 4 is dropped
        es.Network((2, 8, 8), layers[:5] + [es.Branch(source=1), layers[6], es.IF()])
    with pytest.raises(ValueError, match="must index an earlier layer"):
        es.Network((2, 8, 8), layers[:5] + [es.Branch(source=9)] + layers[6:])
    with pytest.raises(ValueError, match="adds shape"):                 # shortcut without downsampling
        es.Network((2, 8, 8), layers[:5] + [es.Branch(source=1), es.Add(source=4)] + layers[8:])
    assert "from layer 1" in net.summary()


@pytest.mark.parametrize("downsample", [True, False])
@pytest.mark.parametrize("convention", ["all", "nonzero"])
def test_stepped_equals_dense_reference(downsample, convention):
    rng = np.random.default_rng(1 + downsample)
    net = resnet_block_net(rng, downsample)
    frames = rng.poisson(0.4, (12, 2, 8, 8)).astype(np.int64)
    ref = dense_forward(net, frames, True, convention)
    res = es.simulate(net, frames, engine="stepped", record="spikes", synop_convention=convention)
    np.testing.assert_array_equal(res.spikes_per_row, ref["spikes"])
    np.testing.assert_array_equal(res.synops_per_row, ref["synops"])
    np.testing.assert_allclose(res.logits, ref["logits"], rtol=0, atol=1e-12)
    for name, raster in ref["rasters"].items():
        np.testing.assert_array_equal(res.rasters[name], raster)
    out_site = max(i for i, layer in enumerate(net.layers) if isinstance(layer, es.IF))
    assert ref["spikes"][:, out_site].sum() > 0          # the block's output site really spikes


def test_synops_brute_force_through_both_paths():
    """Each spike of the block input (layer 1) is delivered to the residual conv *and* to the
    1×1 shortcut conv: synops = Σ spikes × (synapses on each path)."""
    rng = np.random.default_rng(3)
    net = resnet_block_net(rng)
    frames = rng.poisson(0.5, (6, 2, 8, 8)).astype(np.int64)
    res = es.simulate(net, frames, engine="stepped", record="spikes")
    raster = res.rasters["1.IF"].reshape(6, -1)
    for j in (2, 6):   # the two consumers of layer 1's spikes
        _, exists = conv_matrix(net.layers[j], net.input_shape_of(j))
        degree = np.asarray(exists.sum(axis=0)).ravel()
        np.testing.assert_array_equal(res.synops_per_row[:, j], raster @ degree)
    assert res.synops_per_row[:, 6].sum() > 0


@pytest.mark.parametrize("downsample", [True, False])
def test_async_batch_equals_stepped(downsample):
    rng = np.random.default_rng(5)
    net = resnet_block_net(rng, downsample)
    events = random_events(600, (2, 8, 8), 20_000, rng)
    a = es.simulate(net, events, engine="stepped", dt_us=1000, record="spikes")
    b = es.simulate(net, events, engine="async", dt_us=1000, simultaneous="batch", record="spikes")
    np.testing.assert_array_equal(a.spikes_per_row, b.spikes_per_row)
    np.testing.assert_array_equal(a.synops_per_row, b.synops_per_row)
    np.testing.assert_allclose(a.final_logits, b.final_logits, rtol=0, atol=1e-12)


@pytest.mark.parametrize("downsample", [True, False])
def test_async_continuous_equals_heapq_reference(downsample):
    rng = np.random.default_rng(7)
    net = resnet_block_net(rng, downsample)
    events = random_events(400, (2, 8, 8), 8000, rng)
    res = es.simulate(net, events, engine="async", dt_us=1000, t_stop_us=10_000, record="spike_times")
    ref = reference_simulate(net, events, 1000.0, 10_000.0)
    assert_matches_reference(net, res, ref)
    np.testing.assert_allclose(res.final_logits, ref.logits, rtol=1e-9, atol=1e-9)
    assert res.spikes_per_layer["8.IF" if downsample else "6.IF"] > 0


def test_native_format_round_trip(tmp_path):
    net = resnet_block_net(np.random.default_rng(9))
    es.save(net, tmp_path / "block.npz")
    assert es.load(tmp_path / "block.npz") == net
