"""QCFS: the shipped ANN checkpoint, converted by eventsim (BN folded, θ = trained clip, v₀ = θ/2),
matches the public code's SNN mode (models/seeds/qcfs.py, float64) spike for spike on N-MNIST."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventsim as es
from eventsim.checkpoints import CheckpointError, load_qcfs

import compare
import nmnist_data
import qcfs

N_SAMPLES = 50
SHAPE = (2, 34, 34)
IF_LAYERS = {"layer1.2", "layer2.2", "classifier.2"}


@pytest.fixture(scope="module")
def images(nmnist_dir):
    return nmnist_data.images(nmnist_data.load_samples(nmnist_dir, "test", N_SAMPLES))


@pytest.mark.realdata
@pytest.mark.parametrize("v_init", [0.5, 0.0])
def test_qcfs_spikes_and_logits_match_pytorch(images, v_init):
    x, _ = images
    net = es.load(qcfs.CHECKPOINT, input_shape=SHAPE, pool="avg", v_init=v_init)  # format detected from the keys
    assert net.metadata["format"] == "qcfs"
    model = qcfs.load_reference()
    with torch.no_grad():
        logits, spikes = model.simulate(torch.as_tensor(x), qcfs.TIMESTEPS, v_init=v_init)
    assert set(spikes) == IF_LAYERS and all(s.sum() > 0 for s in spikes.values())
    result = compare.compare(net, x, spikes, logits.numpy(), steps=qcfs.TIMESTEPS, input_kind="analog")
    assert result.mismatches == [], result.summary()
    assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale), result.summary()
    assert result.same_predictions


def test_qcfs_conversion_parameters():
    state = torch.load(qcfs.CHECKPOINT, map_location="cpu", weights_only=True)
    net = load_qcfs(qcfs.CHECKPOINT, input_shape=SHAPE, pool="avg")
    neurons = {layer.name: layer for layer in net.layers if isinstance(layer, es.IF)}
    assert set(neurons) == IF_LAYERS
    for name, layer in neurons.items():
        theta = float(state[f"{name}.thresh"])
        assert float(layer.threshold) == theta and float(layer.v_init) == theta / 2
        assert layer.compare == ">=" and layer.reset == "subtract" and layer.spike_amplitude == "threshold"
    # BN folding checked against PyTorch's own conv+BN in float64
    model = qcfs.load_reference()
    x = torch.rand(3, *SHAPE, dtype=torch.float64)
    with torch.no_grad():
        want = model.layer1[1](model.layer1[0](x)).numpy()
    conv = net.layers[0]
    got = torch.nn.functional.conv2d(x, torch.tensor(conv.weight), torch.tensor(conv.bias), padding=1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert isinstance(net.layers[-1], es.Readout) and net.layers[-1].mode == "sum"
    assert load_qcfs(qcfs.CHECKPOINT, input_shape=SHAPE, pool="avg", readout="mean").layers[-1].mode == "mean"


def _rewrite(tmp_path, name, edit):
    state = OrderedDict(torch.load(qcfs.CHECKPOINT, map_location="cpu", weights_only=True))
    state = edit(state) or state
    torch.save(state, tmp_path / name)
    return tmp_path / name


def test_qcfs_old_code_names_the_clip_up(tmp_path):
    path = _rewrite(tmp_path, "old.pth", lambda s: OrderedDict(
        (k.replace(".thresh", ".up"), v) for k, v in s.items()))
    assert load_qcfs(path, input_shape=SHAPE, pool="avg") == load_qcfs(qcfs.CHECKPOINT, input_shape=SHAPE, pool="avg")


def test_qcfs_missing_unknown_and_misshaped_keys(tmp_path):
    def no_clip(s):
        del s["layer1.2.thresh"]
    with pytest.raises(CheckpointError, match=r"no QCFS clip.*'layer1\.0'"):
        load_qcfs(_rewrite(tmp_path, "a.pth", no_clip), input_shape=SHAPE, pool="avg")

    def no_var(s):
        del s["layer2.1.running_var"]
    with pytest.raises(CheckpointError, match=r"layer2\.1.*not a conv, BatchNorm"):
        load_qcfs(_rewrite(tmp_path, "b.pth", no_var), input_shape=SHAPE, pool="avg")

    def extra(s):
        s["layer1.9.alpha"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"'layer1\.9' with parameters \['alpha'\]"):
        load_qcfs(_rewrite(tmp_path, "c.pth", extra), input_shape=SHAPE, pool="avg")

    def wide_thresh(s):
        s["classifier.2.thresh"] = torch.ones(3)
    with pytest.raises(CheckpointError, match=r"classifier\.2\.thresh' has shape \(3,\), expected a single number"):
        load_qcfs(_rewrite(tmp_path, "d.pth", wide_thresh), input_shape=SHAPE, pool="avg")

    def bad_bn(s):
        s["layer1.1.running_mean"] = torch.zeros(7)
    with pytest.raises(CheckpointError, match=r"layer1\.1\.running_mean' has shape \(7,\), expected \(8,\)"):
        load_qcfs(_rewrite(tmp_path, "e.pth", bad_bn), input_shape=SHAPE, pool="avg")
