"""The shipped N-MNIST model on the 100 real test recordings: stated accuracy, and the same
predictions as the PyTorch module it was trained as (rebuilt from the shipped weights)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import eventsim as es
from eventsim.engines.inputs import events_to_steps
from eventsim.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "nmnist" / "nmnist_if.npz"


def _train_module():
    spec = importlib.util.spec_from_file_location("train_nmnist", ROOT / "models" / "nmnist" / "train_nmnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_model_accuracy_and_torch_agreement(nmnist_dir):
    torch = pytest.importorskip("torch")
    from eventsim.events import LocalNMNIST
    data = LocalNMNIST(nmnist_dir, "test")
    net = es.load(MODEL)
    ev = evaluate(net, data)
    card = json.loads(MODEL.with_suffix(".json").read_text())
    assert ev.summary["samples"] == 100
    assert ev.summary["accuracy"] >= 0.90
    assert ev.summary["accuracy"] == pytest.approx(card["torch_test_accuracy"], abs=0.011)

    mod = _train_module()
    model = mod.NmnistIF().double()
    with torch.no_grad():
        model.conv1.weight.copy_(torch.from_numpy(net.layers[0].weight.copy()))
        model.conv2.weight.copy_(torch.from_numpy(net.layers[2].weight.copy()))
        model.fc.weight.copy_(torch.from_numpy(net.layers[5].weight.copy()))
        frames = np.stack([events_to_steps(data[i][0], (2, 34, 34), mod.DT_US, mod.STEPS) for i in range(len(data))])
        logits = model(torch.from_numpy(frames).double()).numpy()
    ours = np.stack([t.logits[-1] for t in ev.traces])
    np.testing.assert_allclose(ours, logits, rtol=1e-9, atol=1e-9)
    assert [r["prediction_final"] for r in ev.records] == list(np.argmax(logits, axis=1))
