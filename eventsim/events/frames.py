"""Event transforms and frame encodings: crop, time window, step index, frames of event counts.

Bin edges (convention ``"eventsim"``, the default of :func:`to_frames`)
----------------------------------------------------------------------
The window ``[t_start_us, t_stop_us)`` is half-open and split into ``n_bins`` equal bins of width
``D / n_bins`` µs, ``D = t_stop_us - t_start_us`` (an exact rational, no rounding). An event at time
``t`` goes to bin ``k = floor((t - t_start_us) * n_bins / D)``, computed in integers. Hence:

* an event exactly on an inner edge ``t_start_us + k * D / n_bins`` goes to bin ``k`` (the later bin);
* events with ``t < t_start_us`` or ``t >= t_stop_us`` are dropped;
* with ``t_stop_us=None`` the window ends one µs after the last event (``t_last + 1``), so the last
  event is always counted, in the last bin.

A clock-driven engine with step ``dt_us`` uses :func:`bin_index` ``k = (t - t_start_us) // dt_us``;
``to_frames(..., n_bins=N, t_start_us=0, t_stop_us=N * dt_us)`` gives exactly the same bins.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .validate import validate_events

__all__ = ["to_frames", "bin_index", "bin_edges_us", "crop_events", "time_window", "CONVENTIONS"]

#: Bin conventions of :func:`to_frames`.
CONVENTIONS = ("eventsim", "tonic", "spikingjelly")


def bin_index(t_us: Any, dt_us: int, t_start_us: int = 0) -> np.ndarray:
    """Step index of each timestamp for a clock-driven engine: ``(t - t_start_us) // dt_us``.

    Parameters
    ----------
    t_us : array_like of int or event array
        Timestamps in µs (or a structured event array, whose ``t`` is used).
    dt_us : int
        Step length in µs, > 0.
    t_start_us : int, default 0
        Time of the start of step 0.

    Returns
    -------
    numpy.ndarray of int64

    Examples
    --------
    >>> bin_index([0, 999, 1000, 2500], dt_us=1000).tolist()
    [0, 0, 1, 2]
    """
    arr = np.asarray(t_us)
    if arr.dtype.names is not None:
        arr = arr["t"]
    t = arr.astype(np.int64)
    if int(dt_us) != dt_us or dt_us <= 0:
        raise ValueError(f"bin_index: dt_us must be a positive integer number of µs, got {dt_us!r}")
    if t.size and t.min() < t_start_us:
        i = int(np.argmin(t))
        raise ValueError(f"bin_index: event {i} at t = {int(t[i])} µs is before t_start_us = {t_start_us}")
    return (t - int(t_start_us)) // int(dt_us)


def bin_edges_us(n_bins: int, t_start_us: int, t_stop_us: int) -> np.ndarray:
    """The ``n_bins + 1`` edges (float64, µs) of the ``"eventsim"`` convention; bin k is
    ``[edges[k], edges[k + 1])``."""
    return t_start_us + (t_stop_us - t_start_us) * np.arange(n_bins + 1, dtype=np.float64) / n_bins


def crop_events(events: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Keep events with ``x0 <= x < x0 + width`` and ``y0 <= y < y0 + height``, shifted to start at 0."""
    ev = validate_events(events)
    keep = (ev["x"] >= x0) & (ev["x"] < x0 + width) & (ev["y"] >= y0) & (ev["y"] < y0 + height)
    out = ev[keep].copy()
    out["x"] -= x0
    out["y"] -= y0
    return out


def time_window(events: np.ndarray, t_start_us: int | None = None, t_stop_us: int | None = None) -> np.ndarray:
    """Events with ``t_start_us <= t < t_stop_us`` (either bound optional), found by binary search."""
    ev = validate_events(events)
    lo = 0 if t_start_us is None else int(np.searchsorted(ev["t"], t_start_us, side="left"))
    hi = ev.size if t_stop_us is None else int(np.searchsorted(ev["t"], t_stop_us, side="left"))
    return ev[lo:max(lo, hi)]


def _pair(value: Any, name: str) -> tuple[int, int]:
    if np.isscalar(value):
        value = (value, value)
    fx, fy = (int(v) for v in value)
    if fx < 1 or fy < 1:
        raise ValueError(f"to_frames: {name} factors must be >= 1, got {value!r}")
    return fx, fy


def _bins(t: np.ndarray, n_bins: int, t_start_us: int, t_stop_us: int | None, convention: str) -> np.ndarray:
    """Bin index per event, -1 for dropped events."""
    k = np.full(t.size, -1, dtype=np.int64)
    if t.size == 0:
        return k
    if convention == "eventsim":
        stop = int(t[-1]) + 1 if t_stop_us is None else int(t_stop_us)
        span = stop - int(t_start_us)
        if span <= 0:
            raise ValueError(f"to_frames: empty window: t_stop_us = {stop} <= t_start_us = {t_start_us}")
        inside = (t >= t_start_us) & (t < stop)
        k[inside] = ((t[inside] - int(t_start_us)) * n_bins) // span
        return k
    if t_stop_us is not None or t_start_us != 0:
        raise ValueError(f"to_frames: convention={convention!r} bins from the first to the last event and "
                         "takes no t_start_us/t_stop_us; use convention='eventsim' for a fixed window")
    width = (int(t[-1]) - int(t[0])) // n_bins
    if width == 0:
        # the recording is shorter than n_bins µs: tonic and spikingjelly give empty bins here
        if convention == "spikingjelly":
            k[:] = n_bins - 1
        return k
    k = (t - int(t[0])) // width
    if convention == "tonic":
        k[k >= n_bins] = -1  # tonic drops events after n_bins * width, including the last one
    else:
        k[k >= n_bins] = n_bins - 1  # spikingjelly's last frame runs to the last event
    return k


def to_frames(events: np.ndarray, shape: Sequence[int] = (2, 34, 34), n_bins: int = 1, t_start_us: int = 0,
              t_stop_us: int | None = None, *, downsample: int | Sequence[int] = 1,
              crop: Sequence[int] | None = None, convention: str = "eventsim",
              dtype: Any = np.float64) -> np.ndarray:
    """Accumulate events into ``n_bins`` frames of event counts per polarity and pixel.

    Parameters
    ----------
    events : numpy.ndarray
        Structured event array (``t`` µs, ``x``, ``y``, ``p``), sorted by ``t``.
    shape : (channels, height, width)
        Frame shape after crop and downsampling. ``channels`` = 2 puts OFF (p = 0) in channel 0
        and ON (p = 1) in channel 1; ``channels`` = 1 sums both polarities.
    n_bins : int
        Number of time bins T (> 0).
    t_start_us, t_stop_us : int
        Window ``[t_start_us, t_stop_us)`` in µs (convention "eventsim"); ``t_stop_us=None`` ends it
        at the last event + 1 µs. E.g. the first 1.3 s: ``t_start_us=0, t_stop_us=1_300_000``.
    downsample : int or (fx, fy)
        Integer pooling factors: ``x' = x // fx``, ``y' = y // fy`` (after cropping).
    crop : (x0, y0, width, height), optional
        Keep only this sensor region (before downsampling); coordinates are shifted by ``(x0, y0)``.
    convention : {"eventsim", "tonic", "spikingjelly"}
        "eventsim": the bin edges described in the module docstring. "tonic": tonic's
        ``ToFrame(n_time_bins=T)``: bins of ``(t_last - t_first) // T`` µs from the first event,
        events after ``T`` bins (at least the last one) dropped. "spikingjelly": the same bins but
        the last bin runs to the last event inclusive (``split_by="time"``).
    dtype : numpy dtype, default float64

    Returns
    -------
    numpy.ndarray, shape ``(n_bins, channels, height, width)``
        Counts; ``frames[k, c, y, x]``.

    Raises
    ------
    ValueError
        Unsorted events, a coordinate outside ``shape`` after crop/downsampling (naming the event),
        bad parameters.

    Examples
    --------
    >>> from eventsim.events import make_events
    >>> ev = make_events([0, 500, 1000, 1999], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 1, 1])
    >>> f = to_frames(ev, shape=(2, 2, 2), n_bins=2, t_stop_us=2000)
    >>> f[0, 1].tolist(), f[1, 1].tolist()
    ([[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]])
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"to_frames: unknown convention {convention!r}; expected one of {CONVENTIONS}")
    try:
        c, h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"to_frames: shape must be (channels, height, width), got {shape!r}") from None
    if c not in (1, 2) or h < 1 or w < 1:
        raise ValueError(f"to_frames: shape {tuple(shape)} needs 1 or 2 channels and positive height/width")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"to_frames: n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    ev = validate_events(events)
    if crop is not None:
        x0, y0, cw, ch = (int(v) for v in crop)
        ev = crop_events(ev, x0, y0, cw, ch)
    fx, fy = _pair(downsample, "downsample")
    x = ev["x"].astype(np.int64) // fx
    y = ev["y"].astype(np.int64) // fy
    k = _bins(ev["t"], n_bins, t_start_us, t_stop_us, convention)
    used = k >= 0
    bad = used & ((x >= w) | (y >= h))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"to_frames: event {i} at (x, y) = ({int(ev['x'][i])}, {int(ev['y'][i])}) maps to "
                         f"({int(x[i])}, {int(y[i])}) after crop/downsample, outside shape (H, W) = ({h}, {w})")
    ch_idx = ev["p"].astype(np.int64) if c == 2 else np.zeros(ev.size, dtype=np.int64)
    flat = ((k * c + ch_idx) * h + y) * w + x
    counts = np.bincount(flat[used], minlength=n_bins * c * h * w)
    return counts.reshape(n_bins, c, h, w).astype(dtype, copy=False)

