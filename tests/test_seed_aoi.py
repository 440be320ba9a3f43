"""AOI-SNN (snncutoff layout): the shipped direct-trained LIF checkpoint matches the PyTorch
reference (models/seeds/aoi.py, float64) spike for spike on N-MNIST event-count frames."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventsim as es
from eventsim.checkpoints import CheckpointError, load_aoi

import aoi
import compare
import nmnist_data

N_SAMPLES = 50
SHAPE = (2, 34, 34)


@pytest.fixture(scope="module")
def frames(nmnist_dir):
    return nmnist_data.frames(nmnist_data.load_samples(nmnist_dir, "test", N_SAMPLES), aoi.TIMESTEPS)


@pytest.mark.realdata
def test_aoi_spikes_and_logits_match_pytorch(frames):
    x, _ = frames
    net = es.load(aoi.CHECKPOINT, input_shape=SHAPE, pool="avg")   # format detected from the keys
    assert net.metadata["format"] == "aoi"
    model = aoi.load_reference()
    with torch.no_grad():
        logits, spikes = aoi.run(model, torch.as_tensor(x, dtype=torch.float64))
    assert set(spikes) == {"0.0.relu", "0.1.relu", "0.3.relu"} and all(s.sum() > 0 for s in spikes.values())
    result = compare.compare(net, x, spikes, logits.numpy(), input_kind="events")
    assert result.mismatches == [], result.summary()
    assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale), result.summary()
    assert result.same_predictions


def test_aoi_structure_inferred_from_keys():
    net = load_aoi(aoi.CHECKPOINT, input_shape=SHAPE, pool="avg")
    convs = [layer for layer in net.layers if isinstance(layer, es.Conv2d)]
    assert [(c.weight.shape[2], c.stride, c.padding) for c in convs] == [(4, (4, 4), (0, 0)), (3, (1, 1), (1, 1)),
                                                                         (3, (1, 1), (1, 1))]
    pools = [layer.name for layer in net.layers if isinstance(layer, es.AvgPool2d)]
    assert pools == ["0.2", "0.tail_pool0"]     # one from the index gap, one from the classifier width
    lifs = [layer for layer in net.layers if isinstance(layer, es.LIF)]
    assert all(float(n.leak) == 0.5 and float(n.threshold) == 1.0 and n.reset == "zero" and n.compare == ">"
               and float(n.v_init) == 0.0 for n in lifs)
    soft = load_aoi(aoi.CHECKPOINT, input_shape=SHAPE, pool="avg", reset="soft", v_init=0.5)
    assert all(n.reset == "subtract" and float(n.v_init) == 0.5 for n in soft.layers if isinstance(n, es.LIF))


def _rewrite(tmp_path, name, edit):
    state = OrderedDict(torch.load(aoi.CHECKPOINT, map_location="cpu", weights_only=True))
    state = edit(state) or state
    torch.save(state, tmp_path / name)
    return tmp_path / name


def test_aoi_plain_key_form_is_the_same_network(tmp_path):
    def unwrap(state):
        out = OrderedDict()
        for k, v in state.items():
            k = k.replace(".module.", ".")
            k = "features." + k[2:] if k.startswith("0.") else "classifier." + k[2:]
            out[k] = v
        return out
    plain = load_aoi(_rewrite(tmp_path, "plain.pth", unwrap), input_shape=SHAPE, pool="avg")
    wrapped = load_aoi(aoi.CHECKPOINT, input_shape=SHAPE, pool="avg")
    assert [type(a) for a in plain.layers] == [type(b) for b in wrapped.layers]
    for a, b in zip(plain.layers, wrapped.layers):
        for attr in ("weight", "bias"):
            if getattr(a, attr, None) is not None:
                assert np.array_equal(getattr(a, attr), getattr(b, attr))


def test_aoi_errors_name_what_is_missing(tmp_path):
    with pytest.raises(CheckpointError, match=r"input shapes \[\(2, 16, 16\).*pass input_shape"):
        load_aoi(aoi.CHECKPOINT, pool="avg")

    def no_var(state):
        del state["0.1.fwd.1.running_var"]
    with pytest.raises(CheckpointError, match=r"missing key '0\.1\.fwd\.1\.running_var' of shape \(32,\)"):
        load_aoi(_rewrite(tmp_path, "a.pth", no_var), input_shape=SHAPE, pool="avg")

    def extra(state):
        state["0.1.fwd.1.alpha"] = torch.zeros(32)
    with pytest.raises(CheckpointError, match=r"unknown key.*0\.1\.fwd\.1\.alpha \(32,\)"):
        load_aoi(_rewrite(tmp_path, "b.pth", extra), input_shape=SHAPE, pool="avg")

    def two_heads(state):
        state["2.module.weight"] = torch.zeros(10, 10)
    with pytest.raises(CheckpointError, match=r"one classifier Linear.*\['1', '2'\]"):
        load_aoi(_rewrite(tmp_path, "c.pth", two_heads), input_shape=SHAPE, pool="avg")

    def odd_kernel(state):
        state["0.0.fwd.0.module.weight"] = torch.zeros(16, 2, 6, 6)
    with pytest.raises(CheckpointError, match=r"6x6 kernel.*conv_geometry=\{'0\.0'"):
        load_aoi(_rewrite(tmp_path, "d.pth", odd_kernel), input_shape=SHAPE, pool="avg")
    net = load_aoi(tmp_path / "d.pth", input_shape=SHAPE, pool="avg", conv_geometry={"0.0": (4, 1)})
    assert net.layers[0].stride == (4, 4) and net.layers[0].padding == (1, 1)
