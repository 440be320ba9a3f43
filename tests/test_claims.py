"""The shipped claim checkpoints (``models/claims/checkpoints``) reach, in eventsim, the accuracy
their PyTorch models reached on the 100 real N-MNIST test recordings.

Each checkpoint's ``.json`` holds what its training script measured with the PyTorch reference
model (float64) on the test recordings: accuracies and per-sample predictions. Here eventsim
imports the checkpoint (no torch), simulates every test recording, scores the predictions against
the labels of ``labels.csv`` and must agree with PyTorch to within one sample (a membrane landing
within rounding of θ may flip one decision) and predict the same class on ≥ 99 of 100 recordings.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import eventsim as es
from eventsim.checkpoints import ann_forward, read_checkpoint, read_state_dict, split_state_dict
from eventsim.checkpoints.convert import parse_architecture
from eventsim.cutoff import bn_gain_per_step
from eventsim.encodings import count_image
from eventsim.evaluate import evaluate
from eventsim.events import LocalNMNIST

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "models" / "claims" / "checkpoints"
SHAPE = (2, 34, 34)
ONE_SAMPLE = 0.01 + 1e-9

pytestmark = pytest.mark.realdata


def sidecar(path: Path) -> dict:
    return json.loads(Path(str(path) + ".json").read_text())


@pytest.fixture(scope="module")
def test_set(nmnist_dir):
    return LocalNMNIST(nmnist_dir, "test")


@pytest.fixture(scope="module")
def images(test_set):
    return np.stack([count_image(test_set[i][0], SHAPE) for i in range(len(test_set))]), test_set.labels


def check_against_pytorch(ev, labels, torch_accuracy: float, torch_predictions, column: int = -1) -> None:
    """eventsim's accuracy from its own predictions and the real labels, vs PyTorch's. Both take the
    argmax of the readout (an all-zero readout early on counts as class 0, as ``torch.argmax``)."""
    preds = np.array([int(np.argmax(t.logits[column])) for t in ev.traces])
    acc = float(np.mean(preds == labels))
    assert abs(acc - torch_accuracy) <= ONE_SAMPLE, (acc, torch_accuracy)
    assert np.sum(preds == np.asarray(torch_predictions)) >= 99


#: every shipped checkpoint and the test below that loads it and checks its stated accuracy
COVERED = {"qcfs_claims.pth": "test_qcfs_accuracy_vs_steps, test_qcfs_ann_accuracy",
           "diet_claims.pth": "test_diet_snn_accuracy", "diet_claims_ann.pt": "test_diet_ann_accuracy",
           "aoi_claims.pth": "test_aoi_accuracy",
           "bntt_claims_timestep20_leak0.95_bestmodel.pth.tar": "test_bntt_accuracy_and_gamma"}


def test_checkpoints_small_with_cards():
    files = sorted(p for p in CKPT.iterdir() if p.suffix in (".pth", ".pt", ".tar"))
    assert {p.name for p in files} == set(COVERED)          # a new checkpoint needs its accuracy test
    for tests in COVERED.values():
        assert all(name.strip() in globals() for name in tests.split(","))
    for path in files:
        assert path.stat().st_size < 1_000_000, path
        card = Path(str(path) + ".md").read_text()
        assert "Accuracy" in card and "../shared/data/nmnist" in card
    for path in CKPT.glob("*.json"):
        assert sidecar(path.with_suffix(""))["bytes"] == path.with_suffix("").stat().st_size
    assert sidecar(CKPT / "diet_claims.pth")["ann_bytes"] == (CKPT / "diet_claims_ann.pt").stat().st_size


def test_sidecar_labels_are_the_real_labels(test_set):
    for path in CKPT.glob("*.json"):
        assert sidecar(path.with_suffix(""))["test_labels"] == test_set.labels.tolist(), path


def test_qcfs_accuracy_vs_steps(test_set):
    path = CKPT / "qcfs_claims.pth"
    info = sidecar(path)
    card = Path(str(path) + ".md").read_text()
    labels = test_set.labels
    for v_init, key in ((0.5, "v_init_0.5"), (0.0, "v_init_0")):
        ref = info["pytorch"]["snn"][key]
        steps = 32 if v_init else 8
        net = es.load(path, input_shape=SHAPE, pool="avg", v_init=v_init)
        assert net.metadata["format"] == "qcfs"
        ev = evaluate(net, test_set, steps=steps)
        for t in (2, 4, 8, 16, 32):
            if t <= steps:
                check_against_pytorch(ev, labels, ref["accuracy_per_step"][t - 1], ref["predictions"][str(t)], t - 1)
        assert f"{ref['accuracy_per_step'][steps - 1]:.2f}" in card


def test_qcfs_ann_accuracy(images):
    """The QCFS ANN (clip-floor-shift activation), in NumPy from the imported weights."""
    from claims_common import numpy_forward
    from qcfs_conversion import qcfs_activation
    path = CKPT / "qcfs_claims.pth"
    info = sidecar(path)
    x, labels = images
    out = numpy_forward(es.load(path, input_shape=SHAPE, pool="avg"), x, qcfs_activation(info["levels"]))
    preds = np.argmax(out, axis=1)
    assert abs(np.mean(preds == labels) - info["pytorch"]["ann_accuracy"]) <= ONE_SAMPLE
    assert np.sum(preds == np.array(info["pytorch"]["ann_predictions"])) >= 99
    assert f"ANN {info['pytorch']['ann_accuracy']:.2f}" in Path(str(path) + ".md").read_text()


def test_diet_snn_accuracy(test_set):
    path = CKPT / "diet_claims.pth"
    info = sidecar(path)
    net = es.load(path, input_shape=SHAPE)            # the VGG config is read from the file
    assert net.metadata["format"] == "diet" and net.metadata["timesteps"] == info["timesteps"]
    ev = evaluate(net, test_set, steps=info["timesteps"])
    check_against_pytorch(ev, test_set.labels, info["pytorch"]["snn_accuracy"], info["pytorch"]["snn_predictions"])
    assert f"SNN {info['pytorch']['snn_accuracy']:.2f}" in Path(str(path) + ".md").read_text()


def test_diet_ann_accuracy(images):
    path = CKPT / "diet_claims_ann.pt"
    info = sidecar(CKPT / "diet_claims.pth")
    state, extras = split_state_dict(read_checkpoint(path))
    x, labels = images
    preds = np.argmax(ann_forward(parse_architecture(state, extras["architecture"]), x)[-1], axis=1)
    assert abs(np.mean(preds == labels) - info["pytorch"]["ann_accuracy"]) <= ONE_SAMPLE
    assert np.sum(preds == np.array(info["pytorch"]["ann_predictions"])) >= 99
    assert f"{info['pytorch']['ann_accuracy']:.2f}" in Path(str(path) + ".md").read_text()


def test_aoi_accuracy(test_set):
    path = CKPT / "aoi_claims.pth"
    info = sidecar(path)
    net = es.load(path, input_shape=SHAPE, pool="avg")
    assert net.metadata["input_encoding"] == "frames"
    ev = evaluate(net, test_set, steps=info["timesteps"])
    check_against_pytorch(ev, test_set.labels, info["pytorch"]["accuracy"], info["pytorch"]["predictions"])
    per_step = np.array([[int(np.argmax(t.logits[k])) for k in range(info["timesteps"])] for t in ev.traces])
    acc = (per_step == test_set.labels[:, None]).mean(axis=0)
    assert np.all(np.abs(acc - np.array(info["pytorch"]["accuracy_per_step"])) <= ONE_SAMPLE)
    assert f"{info['pytorch']['accuracy']:.2f} at T = {info['timesteps']}" in Path(str(path) + ".md").read_text()


def test_bntt_accuracy_and_gamma(test_set):
    path = next(CKPT.glob("bntt_claims_timestep*_leak*_bestmodel.pth.tar"))
    info = sidecar(path)
    net = es.load(path, input_shape=SHAPE)                # leak from the file name
    assert net.metadata["timesteps"] == info["timesteps"] and net.metadata["leak"] == info["leak"]
    ev = evaluate(net, test_set, steps=info["timesteps"], seed=0)
    ref = info["pytorch"]
    check_against_pytorch(ev, test_set.labels, ref["accuracy"], ref["predictions"])
    for t in (1, 2, info["timesteps"] // 2):
        check_against_pytorch(ev, test_set.labels, ref["accuracy_per_step"][t - 1], ref["predictions_per_step"][t - 1],
                              t - 1)
    assert f"{ref['accuracy']:.2f} at T = {info['timesteps']}" in Path(str(path) + ".md").read_text()
    # γ as the importer records it for the fixed-exit rule (no torch), and as read from the state dict,
    # equal what the training script recorded with torch
    state = read_state_dict(path)
    layers = sorted({k.split(".")[0] for k in state if re.fullmatch(r"bntt[a-z_]*\d*\.\d+\.weight", k)})
    gamma = np.mean([[np.mean(state[f"{p}.{t}.weight"]) for t in range(info["timesteps"])] for p in layers], axis=0)
    np.testing.assert_allclose(gamma, info["gamma"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(net.metadata["bn_gamma_mean"], info["gamma"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(bn_gain_per_step(net), info["gamma"]["mean"], rtol=1e-6)
