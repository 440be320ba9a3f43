"""snncutoff's CIFAR ResNet-18/34 and VGG16 (keys ``0.0.module.weight`` … ``5.7.module.bias``): the imported
LIF network equals the public code's SNN form (models/seeds/snncutoff_image.py, float64) spike for spike,
per layer and step, on normalised CIFAR-shaped images, in the stepped engine and async batch mode."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventsim as es  # noqa: E402
from eventsim.checkpoints import CheckpointError, load_aoi  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "seeds"))
import compare  # noqa: E402
import snncutoff_image as si  # noqa: E402

SHAPE = (3, 32, 32)
T = 4


def cifar_like(n: int, seed: int) -> np.ndarray:
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])
    x = np.random.default_rng(seed).random((n,) + SHAPE)
    return (x - mean[:, None, None]) / std[:, None, None]


def saved(model, tmp_path, name):
    torch.manual_seed(0)
    si.randomise(model.eval(), seed=len(name))
    torch.save(model.state_dict(), tmp_path / name)      # as scripts/training.py
    return tmp_path / name, model.double()


def check(net, model, n=2, engines=("stepped", "async"), min_layers_spiking=1.0):
    x = cifar_like(n, 3)
    with torch.no_grad():
        logits, spikes = si.run(model, torch.as_tensor(x), T)
    spikes = {k: v.numpy() for k, v in spikes.items()}
    assert np.mean([s.sum() > 0 for s in spikes.values()]) >= min_layers_spiking
    for engine in engines:
        opts = dict(engine="async", simultaneous="batch", dt_us=1000) if engine == "async" else {}
        result = compare.compare(net, x, spikes, logits.numpy(), steps=T, input_kind="analog", **opts)
        assert result.mismatches == [], (engine, result.summary())
        assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale), result.summary()


def test_resnet18_reduced(tmp_path):
    path, model = saved(si.resnet18(T, width=0.125), tmp_path, "resnet18.pth")
    net = es.load(path, input_shape=SHAPE)               # detected as snncutoff ("aoi") from the keys
    assert net.metadata["format"] == "aoi" and net.metadata["architecture"] == "resnet"
    assert net.metadata["input_encoding"] == "analog"
    check(net, model)


def test_resnet34_reduced(tmp_path):
    path, model = saved(si.resnet34(T, width=1 / 16), tmp_path, "resnet34.pth")
    check(load_aoi(path, input_shape=SHAPE), model, n=1, engines=("stepped",))


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_vgg16_reduced(tmp_path, pool):
    path, model = saved(si.vgg16(T, width=0.125, pool=pool), tmp_path, f"vgg16_{pool}.pth")
    with pytest.raises(CheckpointError, match=r"pass pool='avg' \(VGG.*pool='max' \(VGG_nobias\)"):
        es.load(path, input_shape=SHAPE)
    net = es.load(path, input_shape=SHAPE, pool=pool)
    assert net.metadata["architecture"] == "vgg" and net.metadata["pool"] == pool
    check(net, model, min_layers_spiking=0.9)


def test_vgg16_full_size_layout(tmp_path):
    """The published VGG16 (15 M weights) imports with every layer in place; numbers are checked above."""
    model = si.vgg16(T)
    torch.save(model.state_dict(), tmp_path / "vgg16.pth")
    net = es.load(tmp_path / "vgg16.pth", input_shape=SHAPE, pool="avg")
    convs = [layer for layer in net.layers if isinstance(layer, es.Conv2d)]
    assert len(convs) == 13 and [p.name for p in net.layers if isinstance(p, es.AvgPool2d)] == [
        "0.pool", "1.pool", "2.pool", "3.pool", "4.pool"]
    assert net.layers[-2].name == "5.7" and net.shapes[-1] == (10,)


def test_imagenet_stem_is_named(tmp_path):
    model = si.resnet18(T, width=0.125)
    state = model.state_dict()
    state["0.0.module.weight"] = torch.zeros(8, 3, 7, 7)
    torch.save(state, tmp_path / "r.pth")
    with pytest.raises(CheckpointError, match=r"ImageNet stem at '0\.0'"):
        es.load(tmp_path / "r.pth", input_shape=(3, 224, 224))


def test_dvs_input_shape_hint_names_128():
    import aoi
    with pytest.raises(CheckpointError, match=r"CIFAR10-DVS.*128.*input_shape=\(2, 128, 128\)"):
        load_aoi(aoi.CHECKPOINT, pool="avg")
