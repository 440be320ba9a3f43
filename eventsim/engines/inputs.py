"""Input preparation shared by the engines: validation of event arrays and binning to steps."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..events._core import EVENT_DTYPE
from ..events.validate import time_decrease_error
from ..kernels.event_scan import OK, scan_events
from ..network import Network
from .params import check_dt

EVENT_FIELDS = ("t", "x", "y", "p")
#: Most values (steps x C x H x W) :func:`events_to_steps` bins densely: 2**28, 2 GiB as float64.
#: Events far from ``t_start_us`` (absolute camera timestamps, a stray event hours later) would
#: otherwise make the stepped engine allocate an input for every empty step in between.
MAX_DENSE_INPUT_VALUES = 1 << 28


def is_event_array(obj) -> bool:
    """True for a structured array with fields ``t``, ``x``, ``y``, ``p`` (tonic's arrays qualify)."""
    names = getattr(getattr(obj, "dtype", None), "names", None)
    return names is not None and all(f in names for f in EVENT_FIELDS)


def check_events(events: np.ndarray, input_shape: tuple, first_index: int = 0,
                 t_before: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate an event array against a ``(C, H, W)`` input and return ``(t, c, y, x)`` int64 arrays.

    ``C`` must be 2 (one channel per polarity) or 1 (polarities merged). Raises ValueError naming
    the first offending event index. For one chunk of a stream, ``first_index`` is the index of its
    first event and ``t_before`` the time of the event before it.
    """
    if len(input_shape) != 3 or input_shape[0] not in (1, 2):
        raise ValueError(f"events need a network input of shape (2, H, W) or (1, H, W), got {input_shape}")
    c_in, h, w = input_shape
    if np.ndim(events) != 1:
        raise ValueError(f"events must be a 1-D structured array (one record per event), got shape "
                         f"{np.shape(events)}")
    t = _integer_times(np.asarray(events["t"]), first_index)
    x = np.asarray(events["x"]).astype(np.int64)
    y = np.asarray(events["y"]).astype(np.int64)
    p = np.asarray(events["p"]).astype(np.int64)
    if t.size:
        if t_before is not None and t[0] < t_before:
            raise time_decrease_error(f"event {first_index}", t[0], t_before)
        bad = np.flatnonzero(np.diff(t) < 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise time_decrease_error(f"event {first_index + i}", t[i], t[i - 1])
        for name, arr, hi in (("x", x, w), ("y", y, h)):
            bad = np.flatnonzero((arr < 0) | (arr >= hi))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"event {first_index + i}: {name}={int(arr[i])} lies outside the sensor "
                                 f"(0..{hi - 1} for network input {input_shape})")
        bad = np.flatnonzero((p < 0) | (p > 1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"event {first_index + i}: polarity p={int(p[i])}, expected 0 or 1")
    c = p if c_in == 2 else np.zeros_like(p)
    return t, c, y, x


def event_positions(events: np.ndarray, input_shape: tuple, first_index: int, t_before, t_lo: float,
                    t_hi: float, sort_ties: bool = False) -> tuple[np.ndarray, np.ndarray, int | None, bool]:
    """Validate an event array as :func:`check_events` does and return ``(t, pos, last_t)``: the
    int64 times and flat input positions ``(c·H + y)·W + x`` of the events with
    ``t_lo <= t <= t_hi``, the time of the array's last event (None when empty) and whether two
    events of one timestamp are out of position order (``unsorted``; True when unknown).
    ``sort_ties``: put each timestamp's events in position order (then ``unsorted`` is False).

    Integer fields go through one compiled pass (:func:`eventsim.kernels.event_scan.scan_events`);
    on an invalid event, and for other dtypes, :func:`check_events` runs and names the problem."""
    # two compiled signatures whatever the reader's dtypes, strides and flags: the readers' packed
    # EVENT_DTYPE array itself when it is contiguous and writable (its records read whole), any
    # other as a tuple of writable int64 copies of its fields (each other dtype, stride or a
    # read-only array would cost a compile of its own)
    shape_ok = len(input_shape) == 3 and input_shape[0] in (1, 2)
    if (type(events) is np.ndarray and events.dtype == EVENT_DTYPE and events.ndim == 1 and shape_ok
            and events.flags.c_contiguous and events.flags.writeable):
        src = events
        n = events.shape[0]
        last = int(events[n - 1]["t"]) if n else None
    else:
        fields = [np.asarray(events[f]) for f in ("t", "x", "y", "p")] if is_event_array(events) else None
        if (fields is None or np.ndim(events) != 1 or not shape_ok
                or fields[0].dtype.kind != "i" or any(f.dtype.kind not in "iu" for f in fields[1:])):
            return _checked_positions(events, input_shape, first_index, t_before, t_lo, t_hi, sort_ties)
        src = tuple(np.array(f, np.int64) for f in fields)
        n = src[0].size
        last = int(src[0][-1]) if n else None
    c_in, h, w = input_shape
    out_t, out_pos = np.empty(n, np.int64), np.empty(n, np.int64)
    flag, first, end, unsorted = scan_events(src, n, c_in, h, w, 0 if t_before is None else int(t_before),
                                             t_before is not None, float(t_lo), float(t_hi), sort_ties, out_t, out_pos)
    if flag != OK:
        check_events(events, input_shape, first_index, t_before)   # raises, naming the event
        raise AssertionError("scan_events flagged an event that check_events accepts")
    return out_t[first:end], out_pos[first:end], last, bool(unsorted)


def _checked_positions(events, input_shape: tuple, first_index: int, t_before, t_lo: float, t_hi: float,
                       sort_ties: bool) -> tuple[np.ndarray, np.ndarray, int | None, bool]:
    """:func:`event_positions` through NumPy (:func:`check_events`): other input shapes, float
    timestamps, arrays that are not event arrays (it raises, naming the problem)."""
    t, c, y, x = check_events(events, input_shape, first_index, t_before)
    keep = (t >= t_lo) & (t <= t_hi)
    c_in, h, w = input_shape
    last = int(t[-1]) if t.size else None
    t, pos = t[keep], (c[keep] * h + y[keep]) * w + x[keep]
    if sort_ties:
        order = np.lexsort((pos, t))
        t, pos = t[order], pos[order]
    return t, pos, last, not sort_ties


def _integer_times(t: np.ndarray, first_index: int = 0) -> np.ndarray:
    """Timestamps as int64 µs; float timestamps must be finite whole numbers inside int64.
    ``first_index`` numbers the events in error messages (the position of ``t[0]`` in a stream)."""
    if t.dtype.kind in "iu":
        if t.dtype == np.uint64 and t.size and int(t.max()) > np.iinfo(np.int64).max:
            i = int(np.argmax(t > np.iinfo(np.int64).max))
            raise ValueError(f"event {first_index + i}: timestamp {int(t[i])} µs does not fit in int64")
        return t.astype(np.int64, copy=False)
    if t.dtype.kind != "f":
        raise ValueError(f"event timestamps t must be integers (µs), got dtype {t.dtype}")
    bad = ~np.isfinite(t) | (np.abs(t) >= 2.0**63) | (t != np.floor(t))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"event {first_index + i}: timestamp {t[i]!r} µs is not a whole number of µs "
                         "inside int64")
    return t.astype(np.int64)


def check_steps(steps) -> int | None:
    """``steps`` as a positive int, or None (``-1`` or ``2.5`` would otherwise fail deep inside NumPy)."""
    if steps is None:
        return None
    whole = (isinstance(steps, (int, np.integer, float, np.floating)) and not isinstance(steps, (bool, np.bool_))
             and np.isfinite(steps) and float(steps).is_integer())
    if not whole or steps < 1:
        raise ValueError(f"steps must be a positive whole number of steps, got {steps!r}")
    return int(steps)


def check_start(t_start_us) -> float:
    """``t_start_us`` as a finite float (NaN would silently drop every event)."""
    try:
        t0 = float(t_start_us)
    except (TypeError, ValueError):
        t0 = float("nan")
    if not np.isfinite(t0):
        raise ValueError(f"t_start_us must be a finite time in µs, got {t_start_us!r}")
    return t0


def events_to_steps(events: np.ndarray, input_shape: tuple, dt_us: float, steps: int | None = None,
                    t_start_us: int = 0) -> np.ndarray:
    """Count events per step: event ``e`` goes to step ``floor((t_e − t_start_us) / dt_us)``.

    Returns an int64 array ``(steps, C, H, W)``. ``steps`` defaults to the number of steps needed to
    cover the last event; events at or after ``t_start_us + steps·dt_us`` or before ``t_start_us``
    are dropped.
    """
    try:
        dt = float(dt_us)
    except (TypeError, ValueError):
        dt = float("nan")
    if not (np.isfinite(dt) and dt > 0):                 # NaN would silently drop every event
        raise ValueError(f"dt_us must be a positive step length in µs, got {dt_us!r}")
    t, c, y, x = check_events(events, input_shape)
    if dt.is_integer() and float(t_start_us).is_integer():
        k = (t - int(t_start_us)) // int(dt)             # exact integer floor division
    else:
        q = np.floor((t - t_start_us) / dt)
        k = np.clip(q, -1, 2.0**62).astype(np.int64)    # far outside any simulable range either way
    c_in, h, w = input_shape
    if steps is None:
        steps = int(k.max()) + 1 if k.size else 1
        steps = max(steps, 1)
    if steps * c_in * h * w > MAX_DENSE_INPUT_VALUES:
        t_first, t_last = (int(t[0]), int(t[-1])) if t.size else (None, None)
        raise ValueError(f"the events span {steps:,} steps of {dt_us} µs from t_start_us={t_start_us} (events at "
                         f"{t_first}..{t_last} µs): a dense input of {steps * c_in * h * w:,} values, more than "
                         f"{MAX_DENSE_INPUT_VALUES:,}. Pass t_start_us= (e.g. the first event's time) and steps= "
                         "to simulate a window, a larger dt_us, or engine='async'")
    keep = (k >= 0) & (k < steps)
    flat = ((k[keep] * c_in + c[keep]) * h + y[keep]) * w + x[keep]
    counts = np.bincount(flat, minlength=steps * c_in * h * w)
    return counts.reshape(steps, c_in, h, w).astype(np.int64)


def prepare_steps(network: Network, inputs: Any, steps: int | None, dt_us: float | None,
                  input_kind: str, t_start_us: int = 0):
    """Turn user input into ``(frames, is_events, steps)``.

    * an event array (fields t, x, y, p) with ``dt_us``: event counts per step (``is_events``);
    * an array of ``network.input_shape``: an analog input repeated for ``steps`` steps;
    * an array ``(T, *input_shape)``: one input per step; integer/bool dtype means event counts,
      float means analog, unless ``input_kind`` says otherwise; with ``"auto"``, integers with negative
      values (signed spikes of a normalised image) are analog frames.

    ``frames`` is either ``(T, *input_shape)`` or ``(1, *input_shape)`` (repeated).
    """
    if input_kind not in ("auto", "analog", "events"):
        raise ValueError(f"input_kind={input_kind!r}: choose 'auto', 'analog' or 'events'")
    check_dt(dt_us)
    shape = network.input_shape
    if is_event_array(inputs):
        if dt_us is None:
            raise ValueError("event input to the stepped engine needs a step length: pass dt_us=")
        frames = events_to_steps(inputs, shape, dt_us, steps, t_start_us).astype(np.float64)
        return frames, input_kind != "analog", frames.shape[0]
    arr = np.asarray(inputs)
    if arr.dtype.names is not None:
        raise ValueError(f"structured input with fields {arr.dtype.names}; events need fields t, x, y, p")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"inputs: expected a numeric array, got dtype {arr.dtype}")
    integral = arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)
    is_events = integral if input_kind == "auto" else input_kind == "events"
    if tuple(arr.shape) == shape:
        if steps is None:
            raise ValueError(f"a single analog input of shape {shape} is repeated each step: pass steps=")
        frames = arr[None]
    elif arr.ndim == len(shape) + 1 and tuple(arr.shape[1:]) == shape:
        frames = arr
        if steps is None:
            steps = arr.shape[0]
        elif steps > arr.shape[0]:
            raise ValueError(f"steps={steps} but the input has only {arr.shape[0]} steps")
    else:
        raise ValueError(f"inputs: shape {arr.shape}, expected {shape} (repeated) or (T, {', '.join(map(str, shape))})")
    frames = np.ascontiguousarray(frames, dtype=np.float64)
    if not np.all(np.isfinite(frames)):
        raise ValueError("inputs contain NaN or infinite values")
    if is_events and input_kind == "auto" and np.any(frames < 0):
        is_events = False           # signed spikes (poisson_encode of a normalised image): analog frames
    if is_events and (np.any(frames < 0) or np.any(frames != np.round(frames))):
        what = ("negative values: signed spikes such as poisson_encode() of a normalised image (BNTT on CIFAR) "
                "are not event counts" if np.any(frames < 0) else "non-integer values")
        raise ValueError(f"input_kind='events' needs non-negative integer event counts per step, but the input has "
                         f"{what}; pass input_kind='analog' (or 'auto') to feed it as one analog frame per step "
                         "(the same input currents; the first layer's work is then counted as dense MACs)")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return frames, is_events, int(steps)
