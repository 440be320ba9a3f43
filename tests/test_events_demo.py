"""The shipped demo set and demo model: regeneration, contents, size, and the exported network."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from eventsim import events as E
from eventsim.events.demo import DEMO_PATH, build_demo_cache, make_demo_sample

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "eventsim" / "data" / "demo"


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in ("t", "x", "y", "p"))


def test_demo_contents():
    test, train = E.load_demo("test"), E.load_demo("train")
    assert (len(train), len(test)) == (300, 100) and test.sensor_size == (34, 34)
    assert np.bincount(test.labels).tolist() == [10] * 10 and np.bincount(train.labels).tolist() == [30] * 10
    for i in (0, 50, 99):
        ev, label = test[i]
        E.validate_events(ev, (34, 34))
        assert 300 < ev.size < 5000 and 0 <= ev["t"][0] and ev["t"][-1] < 300_000
        assert 0.3 < ev["p"].mean() < 0.7


@pytest.mark.parametrize("split,index", [("test", 0), ("test", 57), ("train", 123)])
def test_shipped_samples_regenerate_event_for_event(split, index):
    shipped, label = E.load_demo(split)[index]
    regenerated, label2 = make_demo_sample(split, index)
    assert label == label2 == index % 10
    assert _same(shipped, regenerated)


def test_demo_build_is_deterministic(tmp_path):
    a = build_demo_cache(tmp_path / "a.h5", n_train=2, n_test=1, progress=False)
    b = build_demo_cache(tmp_path / "b.h5", n_train=2, n_test=1, progress=False)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert _same(E.load_demo("train", path=a)[1][0], E.load_demo("train")[1][0])
    with pytest.raises(ValueError, match="split must be"):
        make_demo_sample("val", 0)


def test_demo_size_budget():
    total = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert DEMO_PATH.exists() and total <= 5_000_000


def test_demo_model_matches_torch_reference_and_card():
    import eventsim as es
    torch = pytest.importorskip("torch")
    net = es.load(DEMO_DIR / "model.npz")
    simulate = es.simulate
    import train_demo
    model = train_demo.DemoSNN().double()
    model.load_state_dict(torch.load(ROOT / "models" / "demo" / "demo_snn.pt"))
    assert net == train_demo.build_network(model)
    demo = E.load_demo("test")
    idx = list(range(0, 100, 10))
    frames = np.stack([E.to_frames(demo[i][0], (2, 34, 34), n_bins=10, t_stop_us=300_000) for i in idx])
    with torch.no_grad():
        ref, _ = model(torch.from_numpy(frames))
    for row, i in enumerate(idx):
        res = simulate(net, demo[i][0], engine="stepped", dt_us=train_demo.DT_US, steps=train_demo.T_STEPS)
        np.testing.assert_allclose(res.final_logits, ref[row].numpy(), rtol=1e-9, atol=1e-9)
    metrics = json.loads((ROOT / "models" / "demo" / "metrics.json").read_text())
    assert f"{100 * metrics['test_accuracy']:.1f} %" in (ROOT / "models" / "demo" / "MODEL_CARD.md").read_text()
