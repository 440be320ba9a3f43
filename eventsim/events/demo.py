"""The shipped synthetic demo set: digit glyphs moved in three saccades, seen by the emulator.

Like N-MNIST (Orchard et al. 2015) each sample is a 34 x 34 recording of about 300 ms in which a
static digit is moved along a triangle in three 100 ms saccades. The digits are drawn from a
hand-made 5 x 7 bitmap font with per-sample scale, rotation, shear, stroke blur, position and
contrast, rendered at 1 kHz and converted to events by :func:`eventsim.events.emulate_events`.

Sample ``i`` of a split depends only on ``np.random.default_rng([seed, split_id, i])``, so any sample
can be regenerated on its own (``make_demo_sample``) and compared with the shipped cache.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .cache import EventCache, build_cache
from .emulator import EmulatorParams, emulate_events

__all__ = ["load_demo", "make_demo_sample", "render_digit_video", "build_demo_cache", "GLYPHS",
           "DEMO_PATH", "DEMO_SEED", "DEMO_SPLITS", "DEMO_SENSOR_SIZE", "DEMO_EMULATOR"]

#: Hand-drawn 5 x 7 bitmap font, '#' = ink.
_FONT = {
    0: (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    1: ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    2: (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    3: ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    4: ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    5: ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    6: ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    7: ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    8: (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    9: (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}
#: digit -> (7, 5) bool array
GLYPHS = {d: np.array([[c == "#" for c in row] for row in rows]) for d, rows in _FONT.items()}

DEMO_PATH = Path(__file__).resolve().parents[1] / "data" / "demo" / "demo.h5"
DEMO_SEED = 20240611
DEMO_SPLITS = {"train": 300, "test": 100}
_SPLIT_ID = {"train": 0, "test": 1}
DEMO_SENSOR_SIZE = (34, 34)
DEMO_FRAME_US = 1000
DEMO_SACCADE_US = 100_000
#: emulator settings of the shipped set
DEMO_EMULATOR = EmulatorParams(threshold_on=0.45, threshold_off=0.45, threshold_sigma=0.05,
                               refractory_us=2000, shot_noise_rate_hz=0.3, leak_rate_hz=0.1)
_UP = 8  # glyph supersampling factor


def _glyph_image(digit: int, blur_px: float) -> np.ndarray:
    """The glyph upsampled by ``_UP`` with a 2-cell margin and a Gaussian blur (in glyph cells)."""
    from scipy.ndimage import gaussian_filter
    g = np.pad(GLYPHS[digit].astype(np.float64), 2)
    big = np.kron(g, np.ones((_UP, _UP)))
    return gaussian_filter(big, sigma=blur_px * _UP, mode="constant")


def render_digit_video(digit: int, rng: np.random.Generator, *, size: tuple[int, int] = DEMO_SENSOR_SIZE,
                       frame_us: int = DEMO_FRAME_US, saccade_us: int = DEMO_SACCADE_US) -> tuple[np.ndarray, np.ndarray]:
    """Render one digit moved in three saccades.

    Returns
    -------
    frames : numpy.ndarray, shape ``(N, H, W)``
        Intensity in [0, 1].
    t_us : numpy.ndarray of int64, shape ``(N,)``
        Frame times, ``0, frame_us, ..., 3 * saccade_us``.
    """
    from scipy.ndimage import map_coordinates
    if digit not in GLYPHS:
        raise ValueError(f"render_digit_video: digit must be 0-9, got {digit!r}")
    w, h = size
    cell = rng.uniform(2.5, 3.1)          # pixels per glyph cell: digits ~ 17-22 px tall
    angle = np.deg2rad(rng.uniform(-12, 12))
    shear = rng.uniform(-0.2, 0.2)
    blur = rng.uniform(0.25, 0.45)        # glyph cells
    centre = np.array([h / 2, w / 2]) + rng.uniform(-1.5, 1.5, 2)
    bg, fg = rng.uniform(0.05, 0.15), rng.uniform(0.55, 0.9)
    amp = rng.uniform(2.0, 3.0)           # saccade amplitude, pixels
    img = _glyph_image(digit, blur)
    # triangle of three saccades (row, col offsets in pixels), as in N-MNIST
    verts = np.array([[0.0, 0.0], [amp, amp / 2], [0.0, amp], [0.0, 0.0]]) - [amp / 3, amp / 2]
    n_per = saccade_us // frame_us
    s = np.arange(n_per) / n_per
    ease = (1 - np.cos(np.pi * s)) / 2
    path = np.concatenate([verts[k] + np.outer(ease, verts[k + 1] - verts[k]) for k in range(3)] + [verts[3:4]])
    t_us = np.arange(path.shape[0], dtype=np.int64) * frame_us
    # inverse map: sensor pixel -> glyph supersampled coordinates
    c, sn = np.cos(angle), np.sin(angle)
    a = np.array([[c, -sn], [sn, c]]) @ np.array([[1.0, 0.0], [shear, 1.0]])
    inv = np.linalg.inv(a) * (_UP / cell)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    glyph_centre = (np.array(img.shape) - 1) / 2
    frames = np.empty((path.shape[0], h, w))
    for k, off in enumerate(path):
        rel = np.stack([gy.ravel() - centre[0] - off[0], gx.ravel() - centre[1] - off[1]])
        src = inv @ rel + glyph_centre[:, None]
        ink = map_coordinates(img, src, order=1, mode="constant", cval=0.0).reshape(h, w)
        frames[k] = bg + (fg - bg) * np.clip(ink, 0.0, 1.0)
    return frames, t_us


def make_demo_sample(split: str, index: int, seed: int = DEMO_SEED) -> tuple[np.ndarray, int]:
    """Generate sample ``index`` of ``split`` ("train" or "test"); label ``index % 10``."""
    if split not in _SPLIT_ID:
        raise ValueError(f"make_demo_sample: split must be one of {sorted(_SPLIT_ID)}, got {split!r}")
    rng = np.random.default_rng([seed, _SPLIT_ID[split], index])
    label = index % 10
    frames, t_us = render_digit_video(label, rng)
    return emulate_events(frames, t_us, rng, DEMO_EMULATOR), label


class _Split:
    def __init__(self, split: str, n: int, seed: int) -> None:
        self.split, self.n, self.seed = split, n, seed

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for i in range(self.n):
            ev, label = make_demo_sample(self.split, i, self.seed)
            yield ev, label, f"{self.split}/{i:04d}"


def build_demo_cache(path: str | os.PathLike = DEMO_PATH, *, n_train: int = DEMO_SPLITS["train"],
                     n_test: int = DEMO_SPLITS["test"], seed: int = DEMO_SEED, progress: bool = True) -> Path:
    """Generate the demo set and write it as an HDF5 event cache (see ``datasets/make_demo.py``)."""
    prov = {"generator": "eventsim.events.demo.make_demo_sample", "seed": seed,
            "emulator": {k: getattr(DEMO_EMULATOR, k) for k in DEMO_EMULATOR.__dataclass_fields__},
            "frame_us": DEMO_FRAME_US, "saccade_us": DEMO_SACCADE_US,
            "description": "synthetic N-MNIST-like digits: 5x7 hand-made bitmap font, 3 saccades, 34x34"}
    return build_cache(path, {"train": _Split("train", n_train, seed), "test": _Split("test", n_test, seed)},
                       sensor_size=DEMO_SENSOR_SIZE, classes=[str(d) for d in range(10)], provenance=prov,
                       progress=progress)


def load_demo(split: str = "test", path: str | os.PathLike | None = None) -> EventCache:
    """The shipped demo recordings: a sequence of ``(events, label)`` with ``.sensor_size`` = (34, 34).

    Parameters
    ----------
    split : {"train", "test"}
    path : optional
        Another cache built by :func:`build_demo_cache`.

    Examples
    --------
    >>> demo = load_demo("test")
    >>> events, label = demo[0]
    >>> demo.sensor_size, len(demo), label
    ((34, 34), 100, 0)
    """
    p = Path(path) if path is not None else DEMO_PATH
    if not p.exists():
        raise FileNotFoundError(f"{p}: demo set missing; regenerate it with `python datasets/make_demo.py`")
    return EventCache(p, split)
