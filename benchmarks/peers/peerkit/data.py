"""Real N-MNIST test recordings as per-step frames, the input every simulator receives.

Events are binned as eventsim's stepped engine bins them (:func:`eventsim.engines.inputs.events_to_steps`:
event ``e`` goes to step ``floor(t_e / dt)``), 10 ms steps, 34 steps (340 ms covers every
recording). Two input modes:

* ``"counts"``: events per pixel and step (up to 5 on these recordings): the shipped model's input;
* ``"binary"``: at most one event per pixel and step (``min(count, 1)``): what the peers' counters
  assume (NeuroBench binarises inputs, SpikingJelly counts only 0/1 inputs).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eventsim.engines.inputs import events_to_steps
from eventsim.events import LocalNMNIST

__all__ = ["DT_US", "STEPS", "MODES", "nmnist_root", "load_frames", "as_mode"]

DT_US = 10_000
STEPS = 34
MODES = ("counts", "binary")
_ROOT = Path(__file__).resolve().parents[3]


def nmnist_root() -> Path:
    """``$EVENTSIM_SHARED_DATA/nmnist`` or ``../shared/data/nmnist`` beside the checkout."""
    base = Path(os.environ.get("EVENTSIM_SHARED_DATA", _ROOT.parent / "shared" / "data"))
    return base / "nmnist"


def load_frames(n: int, root: Path | None = None, split: str = "test") -> tuple[list[np.ndarray], np.ndarray]:
    """The first ``n`` recordings of ``split`` as ``(T, 2, 34, 34)`` int64 event counts, and their labels."""
    data = LocalNMNIST(root or nmnist_root(), split)
    n = min(n, len(data))
    frames, labels = [], []
    for i in range(n):
        events, label = data[i]
        frames.append(events_to_steps(events, (2, 34, 34), DT_US, STEPS))
        labels.append(int(label))
    return frames, np.asarray(labels, dtype=np.int64)


def as_mode(frames: np.ndarray, mode: str) -> np.ndarray:
    """``frames`` in input ``mode`` (``"counts"`` unchanged, ``"binary"`` clipped to 1)."""
    if mode == "counts":
        return frames
    if mode == "binary":
        return np.minimum(frames, 1)
    raise ValueError(f"input mode {mode!r}: choose one of {MODES}")
