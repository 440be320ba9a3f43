"""QCFS ResNets (both public repositories' key layouts): the imported IF network equals the public
code's SNN mode (models/seeds/qcfs_resnet.py, float64) spike for spike, per layer and step, on
CIFAR-shaped normalised images, in the stepped engine and the asynchronous engine's batch mode."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventsim as es  # noqa: E402
from eventsim.checkpoints import CheckpointError, load_qcfs  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "seeds"))
import compare  # noqa: E402
import qcfs_resnet  # noqa: E402

SHAPE = (3, 32, 32)
MEAN, STD = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])


def cifar_like(n: int, seed: int) -> np.ndarray:
    """Random images in [0, 1], normalised with CIFAR-10's channel statistics (as the public loaders do)."""
    x = np.random.default_rng(seed).random((n,) + SHAPE)
    return (x - MEAN[:, None, None]) / STD[:, None, None]


def check(model, path, steps, n=2, seed=0, v_init=0.5, engines=("stepped", "async"), **options):
    net = es.load(path, input_shape=SHAPE, v_init=v_init, **options)
    assert net.metadata["format"] == "qcfs" and net.metadata.get("architecture", "vgg") == (
        "vgg" if "pool" in options else "resnet")
    x = cifar_like(n, seed)
    with torch.no_grad():
        logits, spikes = model.double().eval().simulate(torch.as_tensor(x), steps, v_init=v_init)
    spikes = {k: v.numpy() for k, v in spikes.items()}
    assert all(s.sum() > 0 for s in spikes.values()), "every layer must spike for the test to mean anything"
    for engine in engines:
        opts = dict(engine="async", simultaneous="batch", dt_us=1000) if engine == "async" else {}
        result = compare.compare(net, x, spikes, logits.numpy(), steps=steps, input_kind="analog", **opts)
        assert result.mismatches == [], (engine, result.summary())
        assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale), result.summary()
    return net


def save(model, tmp_path, name):
    path = tmp_path / name
    torch.save(model.state_dict(), path)     # as main_train.py / main.py
    return path


def test_resnet20_full_width_new_code(tmp_path):
    torch.manual_seed(0)
    model = qcfs_resnet.randomise(qcfs_resnet.resnet20(), seed=1)
    net = check(model, save(model, tmp_path, "resnet20_L[8].pth"), steps=4)
    # 19 IF populations: stem + 2 per block; 2 downsampling shortcuts (conv3_x.0, conv4_x.0)
    assert sum(isinstance(layer, es.IF) for layer in net.layers) == 19
    assert [layer.name for layer in net.layers if isinstance(layer, es.Branch)] == [
        "conv3_x.0.shortcut_in", "conv4_x.0.shortcut_in"]


@pytest.mark.parametrize("v_init", [0.5, 0.0])
def test_resnet18_old_code_layout(tmp_path, v_init):
    torch.manual_seed(1)
    model = qcfs_resnet.randomise(qcfs_resnet.resnet18(width=1 / 16, old=True), seed=2)
    assert "conv2_x.0.relu.up" in model.state_dict()
    check(model, save(model, tmp_path, "resnet18.pth"), steps=5, v_init=v_init, engines=("stepped",))


def test_resnet34_reduced(tmp_path):
    torch.manual_seed(2)
    model = qcfs_resnet.randomise(qcfs_resnet.resnet34(width=1 / 16), seed=3)
    check(model, save(model, tmp_path, "resnet34.pth"), steps=3, n=1)


def test_resnet_needs_input_shape_and_names_bottlenecks(tmp_path):
    model = qcfs_resnet.resnet20(width=0.25)
    path = save(model, tmp_path, "r.pth")
    with pytest.raises(CheckpointError, match=r"global average pooling.*input_shape=\(3, H, W\)"):
        load_qcfs(path)
    state = model.state_dict()
    state["conv2_x.0.residual_function.6.weight"] = torch.zeros(4, 4, 1, 1)   # a third conv: bottleneck
    torch.save(state, tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match=r"bottleneck residual block at 'conv2_x\.0'"):
        load_qcfs(tmp_path / "b.pth", input_shape=SHAPE)


def test_vgg_wobn_max_pooling_is_asked_and_matches(tmp_path):
    """vgg16_wobn (MaxPool2d, no BatchNorm): refused without pool=; with pool="max" equal spike for
    spike; read as average pooling it would differ (so the question matters)."""
    torch.manual_seed(3)
    model = qcfs_resnet.VGGwoBN()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(3.0)
            if isinstance(m, qcfs_resnet.Clip):
                m.thresh.fill_(0.5)
    path = save(model, tmp_path, "vgg16_wobn_L[8].pth")
    with pytest.raises(CheckpointError,
                       match=r"pass pool='avg' \(the public vgg16.*pool='max' \(the public vgg16_wobn\)"):
        load_qcfs(path, input_shape=SHAPE)
    net = check(model, path, steps=6, n=2, pool="max")
    assert net.metadata["pool"] == "max"
    x = cifar_like(1, 0)[0]
    as_max = es.simulate(net, x, steps=6, input_kind="analog", record="spikes")
    as_avg = es.simulate(load_qcfs(path, input_shape=SHAPE, pool="avg"), x, steps=6, input_kind="analog",
                         record="spikes")
    assert not np.array_equal(as_max.rasters["layer2.1"], as_avg.rasters["layer2.1"])

