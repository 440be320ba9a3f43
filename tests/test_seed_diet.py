"""DIET-SNN: the shipped checkpoint, imported without torch, matches the PyTorch reference model
(models/seeds/diet.py, run in float64) spike for spike in every layer and step on real N-MNIST."""
from __future__ import annotations

from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")

import eventsim as es
from eventsim.checkpoints import CheckpointError, describe_checkpoint, load_diet

import compare
import diet
import nmnist_data

N_SAMPLES = 50
SHAPE = (2, 34, 34)


@pytest.fixture(scope="module")
def images(nmnist_dir):
    return nmnist_data.images(nmnist_data.load_samples(nmnist_dir, "test", N_SAMPLES))


@pytest.mark.realdata
@pytest.mark.parametrize("order", ["integrate-fire", "fire-integrate"])
def test_diet_spikes_and_logits_match_pytorch(images, order):
    x, _ = images
    net = es.load(diet.CHECKPOINT, cfg=diet.CFG, input_shape=SHAPE, order=order)  # format detected
    assert net.metadata["format"] == "diet" and net.metadata["timesteps"] == diet.TIMESTEPS
    model, steps = diet.load_reference()
    with torch.no_grad():
        _, rec = model(torch.as_tensor(x), steps, order=order, record=True)
    assert set(rec["spikes"]) == {"features.1", "features.4", "classifier.1"}
    assert all(s.sum() > 0 for s in rec["spikes"].values()), "every layer should spike"
    result = compare.compare(net, x, rec["spikes"], rec["logits"].numpy(), steps=steps, input_kind="analog")
    assert result.mismatches == [], result.summary()
    assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale), result.summary()
    assert result.same_predictions


def _rewrite(tmp_path, name, edit):
    ckpt = torch.load(diet.CHECKPOINT, map_location="cpu", weights_only=False)
    ckpt = edit(ckpt) or ckpt
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def test_diet_older_layout_with_threshold_lists(tmp_path):
    """Older DIET code keeps thresholds and leaks only in the checkpoint's lists."""
    def drop(ckpt):
        ckpt["state_dict"] = OrderedDict((k, v) for k, v in ckpt["state_dict"].items()
                                         if ".threshold." not in k and ".leak." not in k)
    path = _rewrite(tmp_path, "old.pth", drop)
    new = load_diet(diet.CHECKPOINT, cfg=diet.CFG, input_shape=SHAPE)
    old = load_diet(path, cfg=diet.CFG, input_shape=SHAPE)
    assert old == new
    ckpt = torch.load(diet.CHECKPOINT, map_location="cpu", weights_only=False)
    assert [float(layer.threshold) for layer in old.layers if isinstance(layer, es.LIF)] == ckpt["thresholds"]


def test_diet_input_shape_is_asked_for_when_several_fit():
    # 34 -> 17 -> 8 after two 2x2 pools, as do 32, 33 and 35: the checkpoint cannot tell them apart
    with pytest.raises(CheckpointError, match=r"square sizes 32, 33, 34, 35.*input_shape=\(2, H, W\)"):
        load_diet(diet.CHECKPOINT, cfg=diet.CFG)


def test_diet_config_named_or_missing(tmp_path):
    with pytest.raises(CheckpointError, match=r"widths \[8, 16\]\); pass cfg=\[\.\.\.\]"):
        load_diet(diet.CHECKPOINT)
    assert load_diet(diet.CHECKPOINT, cfg=[8, "A", 16, "A"], input_shape=SHAPE).metadata["cfg"] == diet.CFG
    with pytest.raises(CheckpointError, match=r"convolution widths \[8, 16, 32\].*\[8, 16\]"):
        load_diet(diet.CHECKPOINT, cfg=[8, "A", 16, 32, "A"])
    with pytest.raises(CheckpointError, match="unknown DIET-SNN config"):
        load_diet(diet.CHECKPOINT, cfg="VGG7")


def test_diet_missing_unknown_and_misshaped_keys(tmp_path):
    def no_leak(ckpt):
        del ckpt["state_dict"]["module.leak.l3"]
    with pytest.raises(CheckpointError, match=r"missing key 'leak\.l3'"):
        load_diet(_rewrite(tmp_path, "a.pth", no_leak), cfg=diet.CFG)

    def extra(ckpt):
        ckpt["state_dict"]["module.features.0.bias"] = torch.zeros(8)
    with pytest.raises(CheckpointError, match=r"unknown key.*features\.0\.bias \(8,\)"):
        load_diet(_rewrite(tmp_path, "b.pth", extra), cfg=diet.CFG)

    def narrow(ckpt):
        ckpt["state_dict"]["module.classifier.3.weight"] = torch.zeros(10, 31)
    with pytest.raises(CheckpointError, match=r"classifier\.3.*32 features, expected 31"):
        load_diet(_rewrite(tmp_path, "c.pth", narrow), cfg=diet.CFG, input_shape=SHAPE)

    def leak_too_big(ckpt):
        ckpt["state_dict"]["module.leak.l0"] = torch.tensor(1.5)
    with pytest.raises(CheckpointError, match=r"features\.1.*leak.*\(0, 1\]"):
        load_diet(_rewrite(tmp_path, "d.pth", leak_too_big), cfg=diet.CFG, input_shape=SHAPE)


def test_describe_names_layout_entries_and_keys():
    text = describe_checkpoint(diet.CHECKPOINT)
    assert "layout: diet" in text and "timesteps = 8" in text and "activation = 'Linear'" in text
    assert "module.features.0.weight" in text and "(8, 2, 3, 3)" in text and "module.leak.l6" in text
