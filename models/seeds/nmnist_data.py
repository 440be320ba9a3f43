"""N-MNIST inputs for the seed models, built once in NumPy and fed unchanged to PyTorch and eventsim.

* :func:`count_image`: analog image (DIET-SNN, QCFS, BNTT's Poisson rates): event counts per
  polarity and pixel over the whole recording, divided by the sample's largest count (so in [0, 1]).
* :func:`count_frames`: event counts in ``T`` equal time bins (AOI-SNN), from
  :func:`eventsim.events.to_frames` (window ``[0, t_last + 1)`` µs).

The recordings are read from ``../shared/data/nmnist`` (or ``$EVENTSIM_SHARED_DATA/nmnist``) and are
never copied into the repository.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from eventsim.events import read_nmnist, to_frames

SHAPE = (2, 34, 34)
ROOT = Path(__file__).resolve().parents[2]


def default_root() -> Path:
    base = os.environ.get("EVENTSIM_SHARED_DATA")
    return (Path(base) if base else ROOT.parent / "shared" / "data") / "nmnist"


def load_samples(root: str | os.PathLike | None = None, split: str = "test", n: int = 50,
                 start: int = 0) -> list[tuple[np.ndarray, int]]:
    """``n`` labelled recordings ``(events, label)`` of ``split`` ("train" or "test") in file order."""
    root = Path(root) if root is not None else default_root()
    with open(root / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split]
    rows = rows[start:start + n]
    if len(rows) < n:
        raise ValueError(f"{root}: only {len(rows)} {split} samples from index {start}, asked for {n}")
    return [(read_nmnist(root / r["file"]), int(r["label"])) for r in rows]


def count_image(events: np.ndarray) -> np.ndarray:
    """``(2, 34, 34)`` float64 event counts normalised by their maximum (all zeros stay zeros)."""
    counts = to_frames(events, SHAPE, n_bins=1)[0]
    peak = counts.max()
    return counts / peak if peak > 0 else counts


def count_frames(events: np.ndarray, steps: int) -> np.ndarray:
    """``(steps, 2, 34, 34)`` int64 event counts in ``steps`` equal bins of ``[0, t_last + 1)`` µs."""
    return to_frames(events, SHAPE, n_bins=steps).astype(np.int64)


def images(samples) -> tuple[np.ndarray, np.ndarray]:
    """Stack :func:`count_image` of each sample: ``(N, 2, 34, 34)`` and labels ``(N,)``."""
    return (np.stack([count_image(ev) for ev, _ in samples]), np.array([lab for _, lab in samples]))


def frames(samples, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack :func:`count_frames`: ``(N, T, 2, 34, 34)`` int64 and labels ``(N,)``."""
    return (np.stack([count_frames(ev, steps) for ev, _ in samples]), np.array([lab for _, lab in samples]))
