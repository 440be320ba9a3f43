"""DIET-SNN ResNets (resnet_spiking.py layout, saved as snn.py does): the imported LIF network equals
the public code's forward (models/seeds/diet_resnet.py, float64) spike for spike, per layer and step,
on normalised CIFAR-shaped images, in the stepped engine and async batch mode."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventsim as es  # noqa: E402
from eventsim.checkpoints import CheckpointError, load_diet  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "seeds"))
import compare  # noqa: E402
import diet_resnet as dr  # noqa: E402

SHAPE = (3, 32, 32)
STEPS = 5


def cifar_like(n, seed):
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])
    return (np.random.default_rng(seed).random((n,) + SHAPE) - mean[:, None, None]) / std[:, None, None]


def saved(tmp_path, name, blocks, width, seed=0):
    torch.manual_seed(seed)
    model = dr.randomise(dr.DietResNet(blocks, width=width), seed=seed).eval()
    dr.save_like_snn_py(model, tmp_path / name, STEPS)
    return tmp_path / name, model.double()


def check(net, model, n=2, engines=("stepped", "async")):
    x = cifar_like(n, 1)
    with torch.no_grad():
        logits, spikes = model(torch.as_tensor(x), STEPS)
    spikes = {k: v.numpy() for k, v in spikes.items()}
    assert all(s.sum() > 0 for s in spikes.values())
    for engine in engines:
        opts = dict(engine="async", simultaneous="batch", dt_us=1000) if engine == "async" else {}
        result = compare.compare(net, x, spikes, logits.numpy(), steps=STEPS, input_kind="analog", **opts)
        assert result.mismatches == [], (engine, result.summary())
        assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale), result.summary()


def test_resnet20_reduced(tmp_path):
    path, model = saved(tmp_path, "resnet20.pth", dr.CONFIGS["resnet20"], 0.125)
    net = es.load(path, input_shape=SHAPE)                 # detected as DIET-SNN from the keys
    assert net.metadata["format"] == "diet" and net.metadata["architecture"] == "resnet"
    assert net.metadata["timesteps"] == STEPS
    check(net, model)
    layer = {l.name: l for l in net.layers}["layer2.0.out"]     # sites 9, 10 | 11, 12 | 13, 14
    assert float(layer.threshold) == float(model.threshold["t14"]) and float(layer.leak) == float(model.leak["l14"])


def test_resnet12_and_thresholds_list(tmp_path):
    """Older checkpoints: thresholds and leaks only in the checkpoint's lists."""
    path, model = saved(tmp_path, "resnet12.pth", dr.CONFIGS["resnet12"], 0.125, seed=1)
    state = torch.load(path, weights_only=False)
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if ".threshold." not in k and ".leak." not in k}
    torch.save(state, tmp_path / "lists.pth")
    check(load_diet(tmp_path / "lists.pth", input_shape=SHAPE), model, n=1, engines=("stepped",))


def test_input_size_and_cfg_errors(tmp_path):
    path, _ = saved(tmp_path, "r.pth", dr.CONFIGS["resnet12"], 0.125)
    with pytest.raises(CheckpointError,
                       match=r"does not record the input size and square sizes \[18, 19.*input_shape=\(3, H, W\)"):
        load_diet(path)
    with pytest.raises(CheckpointError, match=r"cfg= describes a DIET-SNN VGG, but this is a ResNet"):
        load_diet(path, cfg="VGG5", input_shape=SHAPE)
