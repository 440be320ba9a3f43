"""The event record type and small helpers shared by every reader.

Events are a structured NumPy array with fields ``t`` (int64, µs), ``x``, ``y`` (int16, pixels)
and ``p`` (int8, 0 = OFF, 1 = ON), sorted by ``t`` (see DESIGN.md, "Data model").
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["EVENT_DTYPE", "make_events", "as_events", "empty_events", "read_file_bytes"]

#: The canonical event record: ``t`` µs (int64), ``x``/``y`` pixels (int16), ``p`` polarity 0/1 (int8).
EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])

_FIELDS = ("t", "x", "y", "p")
_LIMITS = {"x": np.iinfo(np.int16), "y": np.iinfo(np.int16), "p": np.iinfo(np.int8)}


def empty_events() -> np.ndarray:
    """Return an event array with no events."""
    return np.zeros(0, dtype=EVENT_DTYPE)


def make_events(t: Any, x: Any, y: Any, p: Any) -> np.ndarray:
    """Build an event array from four equally long 1-D sequences.

    Parameters
    ----------
    t : array_like of int
        Timestamps in µs.
    x, y : array_like of int
        Pixel column and row.
    p : array_like of int or bool
        Polarity, 0 = OFF, 1 = ON.

    Returns
    -------
    numpy.ndarray
        Structured array of dtype :data:`EVENT_DTYPE` (not validated, not sorted).

    Examples
    --------
    >>> ev = make_events([0, 5], [1, 2], [3, 4], [1, 0])
    >>> ev["t"].tolist(), ev.dtype.names
    ([0, 5], ('t', 'x', 'y', 'p'))
    """
    cols = [np.asarray(c).ravel() for c in (t, x, y, p)]
    n = cols[0].size
    for name, col in zip(_FIELDS, cols):
        if col.size != n:
            raise ValueError(f"make_events: field {name!r} has {col.size} values, field 't' has {n}")
    out = np.empty(n, dtype=EVENT_DTYPE)
    for name, col in zip(_FIELDS, cols):
        _assign(out, name, col)
    return out


def _assign(out: np.ndarray, name: str, col: np.ndarray) -> None:
    if col.dtype.kind == "b":
        col = col.astype(np.int8)
    if name == "t" and col.dtype.kind == "f":
        if col.size and not np.all(np.isfinite(col) & (col == np.round(col))):
            raise ValueError("events: field 't' holds non-integer floats; timestamps must be integer µs "
                             "(convert seconds with np.round(t * 1e6).astype(np.int64))")
    elif col.dtype.kind not in "iuf":
        raise ValueError(f"events: field {name!r} has dtype {col.dtype}, expected integers")
    if name in _LIMITS and col.size:
        lo, hi = _LIMITS[name].min, _LIMITS[name].max
        cmin, cmax = col.min(), col.max()
        if cmin < lo or cmax > hi:
            bad = int(np.flatnonzero((col < lo) | (col > hi))[0])
            raise ValueError(f"events: field {name!r} at event {bad} is {col[bad]!r}, outside the "
                             f"{out.dtype[name]} range [{lo}, {hi}]")
    out[name] = col


def as_events(events: Any) -> np.ndarray:
    """Return ``events`` as an array of :data:`EVENT_DTYPE`, copying only when needed.

    Any structured array with fields named ``t``, ``x``, ``y``, ``p`` is accepted, in any order and
    of any integer dtype (tonic's arrays, for example, are ``x, y, t, p`` int64). Extra fields are
    dropped. This checks dtypes only; use :func:`eventsim.events.validate_events` for ranges and order.

    Parameters
    ----------
    events : numpy.ndarray
        Structured 1-D array.

    Returns
    -------
    numpy.ndarray
        The same object if it already has :data:`EVENT_DTYPE`, else a converted copy.
    """
    arr = np.asarray(events)
    if arr.dtype == EVENT_DTYPE and arr.ndim == 1:
        return arr
    names = arr.dtype.names
    if names is None:
        raise ValueError(f"events: expected a structured array with fields t, x, y, p; got a plain "
                         f"{arr.dtype} array of shape {arr.shape}")
    missing = [f for f in _FIELDS if f not in names]
    if missing:
        raise ValueError(f"events: structured array lacks field(s) {missing}; it has {list(names)} "
                         "(expected t [µs], x, y, p)")
    if arr.ndim != 1:
        raise ValueError(f"events: expected a 1-D array, got shape {arr.shape}")
    out = np.empty(arr.size, dtype=EVENT_DTYPE)
    for name in _FIELDS:
        _assign(out, name, arr[name])
    return out


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """Read a whole file, with a clear error when it is missing or is a folder."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a recording file") from None
