"""Implicit conv/pool connectivity against materialised scipy.sparse matrices."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

import eventsim as es
from eventsim.counting import out_degree, synapse_counts
from eventsim.kernels.layers import conv2d_scatter, pool2d
from reference import conv_matrix, out_degree_from_matrix

CASES = list(itertools.product([1, 2], [0, 1, 2], [1, 2], [1, 3]))  # stride, padding, groups, kernel


@pytest.mark.parametrize("stride,padding,groups,k", CASES)
def test_conv_scatter_and_degree_match_matrix(stride, padding, groups, k):
    rng = np.random.default_rng(stride * 100 + padding * 10 + groups + k)
    c_in, c_out, h, w = 2 * groups, 2 * groups, 7, 6
    weight = rng.normal(size=(c_out, c_in // groups, k, k))
    weight[rng.random(weight.shape) < 0.3] = 0.0                 # some zero weights
    layer = es.Conv2d(weight, stride=stride, padding=padding, groups=groups)
    out_shape = layer.output_shape((c_in, h, w))
    mat, exists = conv_matrix(layer, (c_in, h, w))
    spikes = (rng.random((c_in, h, w)) < 0.4).astype(float)
    out = np.zeros(out_shape)
    conv2d_scatter(spikes, layer.weight, stride, stride, padding, padding, groups, out)
    np.testing.assert_allclose(out.ravel(), mat @ spikes.ravel(), rtol=1e-12, atol=1e-12)
    for convention in ("all", "nonzero"):
        deg = out_degree(layer, (c_in, h, w), convention)
        np.testing.assert_array_equal(deg.ravel(), out_degree_from_matrix(mat, exists, convention))
        # synops of this spike pattern = spikes × out-degree, straight from the matrix
        expected = int(spikes.ravel() @ out_degree_from_matrix(mat, exists, convention))
        assert int((spikes * deg).sum()) == expected
    # padding targets never count: total synapses equal the matrix's stored entries
    assert synapse_counts(es.Network((c_in, h, w), [layer]))["0.Conv2d"] == exists.nnz


def pool_matrix(c, h, w, k, s, p):
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    rows, cols = [], []
    for ch, oy, ox, ky, kx in itertools.product(range(c), range(oh), range(ow), range(k), range(k)):
        iy, ix = oy * s + ky - p, ox * s + kx - p
        if 0 <= iy < h and 0 <= ix < w:
            rows.append((ch * oh + oy) * ow + ox)
            cols.append((ch * h + iy) * w + ix)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(c * oh * ow, c * h * w)), (c, oh, ow)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (2, 1, 0), (3, 1, 1)])
def test_pools_and_event_multiplicity_match_matrix(k, s, p):
    rng = np.random.default_rng(k * 10 + s + p)
    c, h, w = 2, 6, 7
    mat, shape = pool_matrix(c, h, w, k, s, p)
    n = (rng.random((c, h, w)) < 0.3).astype(np.int64)
    x = n * 0.5
    for mode, name in enumerate(["sum", "avg", "max"]):
        out = np.empty(shape)
        out_n = np.empty(shape, np.int64)
        pool2d(x, n, k, k, s, s, p, p, mode, out, out_n)
        if name == "sum":
            np.testing.assert_allclose(out.ravel(), mat @ x.ravel())
            np.testing.assert_array_equal(out_n.ravel(), mat @ n.ravel())
        elif name == "avg":
            np.testing.assert_allclose(out.ravel(), (mat @ x.ravel()) / (k * k))
            np.testing.assert_array_equal(out_n.ravel(), mat @ n.ravel())
        else:
            hit = (mat @ n.ravel()) > 0
            np.testing.assert_array_equal(out_n.ravel(), hit.astype(int))
            np.testing.assert_allclose(out.ravel(), np.where(hit, 0.5, 0.0))


def test_synops_through_pool_into_linear():
    """A spike reaching two overlapping windows arrives twice at the next weighted layer."""
    rng = np.random.default_rng(7)
    c, h, w = 1, 4, 4
    conv = es.Conv2d(np.ones((1, 1, 1, 1)))
    lin_w = rng.normal(size=(3, 9))
    net = es.Network((c, h, w), [conv, es.IF(threshold=0.5), es.SumPool2d(2, stride=1), es.Flatten(),
                                 es.Linear(lin_w), es.Readout()])
    frames = (rng.random((1, c, h, w)) < 0.5).astype(np.int64)
    res = es.simulate(net, frames)
    mat, _ = pool_matrix(c, h, w, 2, 1, 0)
    arriving = mat @ frames[0].ravel()             # events arriving at each Linear input
    assert res.synops_per_layer["4.Linear"] == int(arriving.sum() * 3)
    assert res.synops_per_layer["0.Conv2d"] == int(frames.sum())


def test_energy_tables():
    assert es.energy_pj(1000, 10, "45nm") == pytest.approx(1000 * 0.9 + 10 * 4.6)
    assert "45nm" in es.energy_tables()
    with pytest.raises(ValueError, match="unknown energy table"):
        es.energy_pj(1, 1, "3nm")
    net = es.Network((1,), [es.Linear(np.array([[1.0]])), es.IF(), es.Linear(np.array([[1.0]])), es.Readout()])
    res = es.simulate(net, np.ones((1,)), steps=3, input_kind="analog")
    assert res.energy_pj("45nm") == pytest.approx(res.synops * 0.9 + res.macs * 4.6)
