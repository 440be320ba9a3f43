"""BNTT on normalised images (README recipe): ``poisson_encode`` of an image with negative values gives
signed spikes. ``input_kind="auto"``/``"analog"`` feeds them as one frame per step and matches the
PyTorch reference (models/seeds/bntt.py, float64) spike for spike; ``input_kind="events"`` refuses
them with a message naming the fix."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventsim as es  # noqa: E402
from eventsim.checkpoints import poisson_encode  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "seeds"))
import compare  # noqa: E402
import bntt  # noqa: E402

SHAPE = (2, 34, 34)


def signed_spikes(n=3):
    rng = np.random.default_rng(0)
    images = rng.random((n,) + SHAPE)
    images = (images - images.mean(axis=(0, 2, 3), keepdims=True)) / images.std(axis=(0, 2, 3), keepdims=True)
    return np.stack([poisson_encode(img, bntt.TIMESTEPS, seed=10 + i, rescale=2.0) for i, img in enumerate(images)])


def test_signed_spikes_match_pytorch():
    s = signed_spikes()
    assert s.min() == -1 and s.max() == 1
    net = es.load(bntt.CHECKPOINT, input_shape=SHAPE)
    with torch.no_grad():
        _, rec = bntt.load_reference()(torch.as_tensor(s, dtype=torch.float64).transpose(0, 1), record=True)
    assert all(v.sum() > 0 for v in rec["spikes"].values())
    for kind in ("auto", "analog"):
        result = compare.compare(net, s, rec["spikes"], rec["logits"].numpy(), input_kind=kind)
        assert result.mismatches == [], result.summary()
        assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale)


def test_events_kind_names_the_fix():
    net = es.load(bntt.CHECKPOINT, input_shape=SHAPE)
    with pytest.raises(ValueError, match=r"negative values: signed spikes.*pass input_kind='analog'"):
        es.simulate(net, signed_spikes(1)[0], input_kind="events")
