"""Input preparation shared by the engines: validation of event arrays and binning to steps."""
from __future__ import annotations

import numpy as np

EVENT_FIELDS = ("t", "x", "y", "p")


def is_event_array(obj) -> bool:
    """True for a structured array with fields ``t``, ``x``, ``y``, ``p`` (tonic's arrays qualify)."""
    names = getattr(getattr(obj, "dtype", None), "names", None)
    return names is not None and all(f in names for f in EVENT_FIELDS)


def check_events(events: np.ndarray, input_shape: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate an event array against a ``(C, H, W)`` input and return ``(t, c, y, x)`` int64 arrays.

    ``C`` must be 2 (one channel per polarity) or 1 (polarities merged). Raises ValueError naming
    the first offending event index.
    """
    if len(input_shape) != 3 or input_shape[0] not in (1, 2):
        raise ValueError(f"events need a network input of shape (2, H, W) or (1, H, W), got {input_shape}")
    c_in, h, w = input_shape
    t = np.asarray(events["t"]).astype(np.int64, copy=False)
    x = np.asarray(events["x"]).astype(np.int64)
    y = np.asarray(events["y"]).astype(np.int64)
    p = np.asarray(events["p"]).astype(np.int64)
    if t.size:
        bad = np.flatnonzero(np.diff(t) < 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise ValueError(f"event {i}: timestamp {int(t[i])} µs is earlier than event {i - 1} "
                             f"({int(t[i - 1])} µs); sort the events by t first")
        for name, arr, hi in (("x", x, w), ("y", y, h)):
            bad = np.flatnonzero((arr < 0) | (arr >= hi))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"event {i}: {name}={int(arr[i])} lies outside the sensor "
                                 f"(0..{hi - 1} for network input {input_shape})")
        bad = np.flatnonzero((p < 0) | (p > 1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"event {i}: polarity p={int(p[i])}, expected 0 or 1")
    c = p if c_in == 2 else np.zeros_like(p)
    return t, c, y, x


def events_to_steps(events: np.ndarray, input_shape: tuple, dt_us: float, steps: int | None = None,
                    t_start_us: int = 0) -> np.ndarray:
    """Count events per step: event ``e`` goes to step ``floor((t_e − t_start_us) / dt_us)``.

    Returns an int64 array ``(steps, C, H, W)``. ``steps`` defaults to the number of steps needed to
    cover the last event; events at or after ``t_start_us + steps·dt_us`` or before ``t_start_us``
    are dropped.
    """
    if not dt_us or dt_us <= 0:
        raise ValueError(f"dt_us must be a positive step length in µs, got {dt_us!r}")
    t, c, y, x = check_events(events, input_shape)
    k = np.floor((t - t_start_us) / float(dt_us)).astype(np.int64)
    if steps is None:
        steps = int(k.max()) + 1 if k.size else 1
        steps = max(steps, 1)
    keep = (k >= 0) & (k < steps)
    c_in, h, w = input_shape
    flat = ((k[keep] * c_in + c[keep]) * h + y[keep]) * w + x[keep]
    counts = np.bincount(flat, minlength=steps * c_in * h * w)
    return counts.reshape(steps, c_in, h, w).astype(np.int64)
