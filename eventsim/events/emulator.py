"""A small event-camera emulator: intensity video in, DVS events out.

Model (per pixel, in the spirit of ESIM/v2e, vectorised over pixels; one Python iteration per
video frame, none per event):

* Log intensity ``L = log(I + eps)``, linearly interpolated in time between frames.
* Each pixel keeps a reference level ``r``. While ``L - r >= θ_on`` it emits ON events and raises
  ``r`` by ``θ_on``; while ``r - L >= θ_off`` it emits OFF events and lowers ``r`` by ``θ_off``.
  The time of the j-th crossing is where the interpolated ``L`` reaches ``r ± j·θ``, floored to µs.
* Thresholds differ per pixel (mismatch): ``θ = max(θ_nominal + σ·N(0, 1), θ_min)``, drawn once.
* Refractory period: after an event a pixel emits nothing for ``refractory_us`` µs; crossings in
  that time still move ``r`` (their events are lost, as in a real pixel that resets late). A pixel
  crosses in one direction only within one frame interval, so ON and OFF never interleave there.
* Leak events: ``r`` drifts down by ``θ_on · leak_rate_hz · Δt`` per pixel (rate mismatch
  ``leak_sigma``), which makes a static pixel emit ON events at about ``leak_rate_hz``.
* Shot noise: a Poisson process of ``shot_noise_rate_hz`` per pixel, random polarity, independent
  of the signal (not subject to the refractory period).

Everything random comes from the ``numpy.random.Generator`` passed in, so the same generator state
gives the same events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._core import EVENT_DTYPE, empty_events

__all__ = ["EmulatorParams", "emulate_events"]


@dataclass(frozen=True)
class EmulatorParams:
    """Parameters of :func:`emulate_events` (log-intensity units are natural-log contrast).

    Attributes
    ----------
    threshold_on, threshold_off : float
        Nominal contrast thresholds θ (> 0).
    threshold_sigma : float
        Standard deviation of the per-pixel threshold mismatch (same units).
    threshold_min : float
        Lower bound on a pixel's threshold.
    refractory_us : int
        Dead time after each event, µs.
    shot_noise_rate_hz : float
        Noise events per pixel per second.
    leak_rate_hz : float
        Leak (ON) events per pixel per second for a static scene.
    leak_sigma : float
        Relative per-pixel spread of the leak rate.
    eps : float
        Offset in ``log(I + eps)``; intensities are expected in [0, 1].
    """

    threshold_on: float = 0.2
    threshold_off: float = 0.2
    threshold_sigma: float = 0.03
    threshold_min: float = 0.01
    refractory_us: int = 1000
    shot_noise_rate_hz: float = 0.1
    leak_rate_hz: float = 0.05
    leak_sigma: float = 0.1
    eps: float = 1e-2

    def __post_init__(self) -> None:
        for name in ("threshold_on", "threshold_off", "threshold_min", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EmulatorParams.{name}: must be > 0, got {getattr(self, name)!r}")
        for name in ("threshold_sigma", "refractory_us", "shot_noise_rate_hz", "leak_rate_hz", "leak_sigma"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"EmulatorParams.{name}: must be >= 0, got {getattr(self, name)!r}")


def _crossings(l0: np.ndarray, l1: np.ndarray, ref: np.ndarray, theta: np.ndarray, sign: int,
               t0: int, t1: int, ready_us: np.ndarray, refractory_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Threshold crossings of one polarity in one frame interval ``[t0, t1)``.

    The j-th crossing of a pixel is where ``l0 + (l1 - l0)·s`` reaches ``ref + sign·j·θ``, at
    ``t0 + floor(s·(t1 - t0))`` µs. A crossing becomes an event only if its time is at or after
    ``ready_us`` of its pixel, which then moves to ``time + refractory_us`` (updated in place).
    One pass per crossing index j, vectorised over pixels.

    Returns (pixel index, time µs) of the events and the number of crossings per pixel.
    """
    n = np.floor(sign * (l1 - ref) / theta).astype(np.int64)
    n[n < 0] = 0
    pix_out, t_out = [], []
    active = np.flatnonzero(n)
    j = 0
    while active.size:
        j += 1
        level = ref[active] + sign * j * theta[active]
        dl = l1[active] - l0[active]
        safe = np.where(dl != 0, dl, 1.0)
        frac = np.where(dl != 0, (level - l0[active]) / safe, 0.0)
        t = t0 + np.floor(np.clip(frac, 0.0, 1.0) * (t1 - t0)).astype(np.int64)
        t = np.minimum(t, t1 - 1)
        ok = t >= ready_us[active]
        pix_out.append(active[ok])
        t_out.append(t[ok])
        ready_us[active[ok]] = t[ok] + refractory_us
        active = active[n[active] > j]
    if not pix_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), n
    return np.concatenate(pix_out), np.concatenate(t_out), n


def emulate_events(frames: Any, timestamps_us: Any, rng: np.random.Generator,
                   params: EmulatorParams | None = None) -> np.ndarray:
    """Convert an intensity video into DVS events.

    Parameters
    ----------
    frames : array_like, shape ``(N, H, W)``
        Linear intensity in [0, 1] (values are clipped at 0), N >= 2.
    timestamps_us : array_like of int, shape ``(N,)``
        Frame times in µs, strictly increasing.
    rng : numpy.random.Generator
        Source of all randomness (threshold mismatch, leak spread, noise); e.g.
        ``np.random.default_rng(seed)``.
    params : EmulatorParams, optional

    Returns
    -------
    numpy.ndarray
        Events (``t`` µs in ``[timestamps_us[0], timestamps_us[-1])``, ``x``, ``y``, ``p`` 1 = ON),
        sorted by ``t`` then pixel (``y * W + x``) then polarity.

    Examples
    --------
    >>> import numpy as np
    >>> video = np.stack([np.full((1, 1), 0.1), np.full((1, 1), 0.9)])
    >>> p = EmulatorParams(threshold_sigma=0, shot_noise_rate_hz=0, leak_rate_hz=0, refractory_us=0)
    >>> ev = emulate_events(video, [0, 1000], np.random.default_rng(0), p)
    >>> int(ev.size), set(ev["p"].tolist())    # log(0.91/0.11) / 0.2 = 10.6 -> 10 ON events
    (10, {1})
    """
    params = params or EmulatorParams()
    video = np.asarray(frames, dtype=np.float64)
    ts = np.asarray(timestamps_us, dtype=np.int64)
    if video.ndim != 3 or video.shape[0] < 2:
        raise ValueError(f"emulate_events: frames must have shape (N >= 2, H, W), got {video.shape}")
    if ts.shape != (video.shape[0],):
        raise ValueError(f"emulate_events: {ts.size} timestamps for {video.shape[0]} frames")
    if np.any(np.diff(ts) <= 0):
        i = int(np.flatnonzero(np.diff(ts) <= 0)[0]) + 1
        raise ValueError(f"emulate_events: timestamps must increase; frame {i} at {ts[i]} µs follows {ts[i - 1]} µs")
    _, h, w = video.shape
    npx = h * w
    logs = np.log(np.clip(video, 0.0, None) + params.eps).reshape(video.shape[0], npx)
    theta_on = np.maximum(params.threshold_on + params.threshold_sigma * rng.standard_normal(npx), params.threshold_min)
    theta_off = np.maximum(params.threshold_off + params.threshold_sigma * rng.standard_normal(npx), params.threshold_min)
    leak = params.leak_rate_hz * np.maximum(1.0 + params.leak_sigma * rng.standard_normal(npx), 0.0)
    # random initial phase so that leak events of different pixels do not line up
    ref = logs[0] + (rng.random(npx) - 0.5) * theta_on * (leak > 0)
    ready = np.full(npx, np.iinfo(np.int64).min // 2, dtype=np.int64)  # earliest next event time
    chunks = []
    for k in range(video.shape[0] - 1):
        t0, t1 = int(ts[k]), int(ts[k + 1])
        l0, l1 = logs[k], logs[k + 1]
        ref = ref - theta_on * leak * (t1 - t0) * 1e-6
        pix_on, t_on, n_on = _crossings(l0, l1, ref, theta_on, +1, t0, t1, ready, params.refractory_us)
        ref = ref + n_on * theta_on
        pix_off, t_off, n_off = _crossings(l0, l1, ref, theta_off, -1, t0, t1, ready, params.refractory_us)
        ref = ref - n_off * theta_off
        pix = np.concatenate([pix_on, pix_off])
        t = np.concatenate([t_on, t_off])
        p = np.concatenate([np.ones(pix_on.size, np.int8), np.zeros(pix_off.size, np.int8)])
        n_noise = rng.poisson(params.shot_noise_rate_hz * npx * (t1 - t0) * 1e-6) if params.shot_noise_rate_hz else 0
        if n_noise:
            pix = np.concatenate([pix, rng.integers(0, npx, n_noise)])
            t = np.concatenate([t, rng.integers(t0, t1, n_noise)])
            p = np.concatenate([p, rng.integers(0, 2, n_noise).astype(np.int8)])
        if pix.size:
            order = np.lexsort((p, pix, t))
            ev = np.empty(pix.size, dtype=EVENT_DTYPE)
            ev["t"], ev["x"], ev["y"], ev["p"] = t[order], pix[order] % w, pix[order] // w, p[order]
            chunks.append(ev)
    return np.concatenate(chunks) if chunks else empty_events()
