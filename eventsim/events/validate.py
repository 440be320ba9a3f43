"""Validation of event arrays at the boundary (DESIGN.md: "validated once at the boundary").

Kernels never see unchecked indices: every reader, the tonic adapter and the frame encoder pass
their events through :func:`validate_events`, which checks that timestamps do not decrease, that
coordinates lie inside the sensor and that polarities are 0 or 1, and names the first offending
event (and, for readers, the byte offset of its record).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ._core import as_events

__all__ = ["validate_events", "normalize_sensor_size", "time_decrease_error", "finish_decoded"]


def finish_decoded(events, head: dict, sensor_size: Any, sort: bool, source: str,
                   locate: Callable[[int], str]):
    """The last step of a binary reader: the sensor size (the caller's, else the header's, which
    ``head["sensor_size"]`` then records) and :func:`validate_events` with ``locate`` naming where
    an event sits in the file. Returns ``(events, head)``."""
    size = normalize_sensor_size(sensor_size) or head["sensor_size"]
    head["sensor_size"] = size
    return validate_events(events, size, sort=sort, source=source, locate=locate), head


def time_decrease_error(where: str, t: int, t_prev: int, fix: str = "sort the events by t first") -> ValueError:
    """The one message for events out of time order, wherever they are found (a reader, a cache,
    an engine's input): ``where`` names the event (and file), ``fix`` says what to do."""
    return ValueError(f"timestamps decrease at {where}: t = {int(t)} µs after {int(t_prev)} µs; {fix}")


def normalize_sensor_size(sensor_size: Any) -> tuple[int, int] | None:
    """Return ``(width, height)`` from ``(W, H)`` or tonic's ``(W, H, P)``; ``None`` stays ``None``.

    Examples
    --------
    >>> normalize_sensor_size((34, 34, 2))
    (34, 34)
    """
    if sensor_size is None:
        return None
    try:
        vals = tuple(int(v) for v in sensor_size)
    except (TypeError, ValueError):
        raise ValueError(f"sensor_size: expected (width, height) or (width, height, polarities), "
                         f"got {sensor_size!r}") from None
    if len(vals) not in (2, 3) or min(vals[:2]) < 1:
        raise ValueError(f"sensor_size: expected (width, height) or (width, height, polarities) with "
                         f"positive sizes, got {sensor_size!r}")
    if len(vals) == 3 and vals[2] not in (1, 2):
        raise ValueError(f"sensor_size: polarity count must be 1 or 2, got {vals[2]}")
    return vals[0], vals[1]


def _default_locate(i: int) -> str:
    return f"event {i}"


def validate_events(events: Any, sensor_size: Sequence[int] | None = None, *, sort: bool = False,
                    source: str | None = None,
                    locate: Callable[[int], str] | None = None) -> np.ndarray:
    """Check an event array and return it in the canonical dtype.

    Parameters
    ----------
    events : numpy.ndarray
        Structured array with fields ``t`` (µs), ``x``, ``y``, ``p`` (any integer dtypes, any order;
        tonic arrays are accepted as they are).
    sensor_size : (width, height) or (width, height, polarities), optional
        Pixels. When given, ``0 <= x < width`` and ``0 <= y < height`` must hold; otherwise only
        ``x, y >= 0``.
    sort : bool, default False
        If False, decreasing timestamps raise ``ValueError``. If True, events are stably sorted by
        ``t`` (events with equal timestamps keep their order).
    source : str, optional
        Name put in front of error messages, e.g. the file path.
    locate : callable, optional
        ``locate(i) -> str`` describes where event ``i`` came from (readers use it to name a byte
        offset). Default ``"event i"``.

    Returns
    -------
    numpy.ndarray
        Array of :data:`eventsim.events.EVENT_DTYPE`, sorted by ``t``. The input object itself is
        returned when it already has that dtype and needs no sorting.

    Raises
    ------
    ValueError
        Naming the first offending event: decreasing timestamp, coordinate outside the sensor,
        polarity other than 0/1, negative coordinate, or a wrong dtype.

    Examples
    --------
    >>> from eventsim.events import make_events
    >>> ev = make_events([5, 3], [0, 1], [0, 0], [1, 0])
    >>> validate_events(ev, (2, 1), sort=True)["t"].tolist()
    [3, 5]
    """
    prefix = f"{source}: " if source else ""
    where = locate or _default_locate
    try:
        ev = as_events(events)
    except ValueError as exc:
        raise ValueError(prefix + str(exc)) from None
    size = normalize_sensor_size(sensor_size)
    if ev.size == 0:
        return ev
    t = ev["t"]
    if (t[1:] < t[:-1]).any():
        if sort:
            ev = ev[np.argsort(t, kind="stable")]
        else:
            i = int(np.flatnonzero(t[1:] < t[:-1])[0]) + 1
            exc = time_decrease_error(where(i), t[i], t[i - 1], "pass sort=True to sort events by time")
            raise ValueError(prefix + str(exc))
    p = ev["p"]
    if p.min() < 0 or p.max() > 1:
        i = int(np.flatnonzero((p != 0) & (p != 1))[0])
        raise ValueError(f"{prefix}polarity at {where(i)} is {int(p[i])}, expected 0 (OFF) or 1 (ON)")
    for axis, limit in (("x", None if size is None else size[0]), ("y", None if size is None else size[1])):
        c = ev[axis]
        if c.min() >= 0 and (limit is None or c.max() < limit):
            continue
        bad = c < 0 if limit is None else (c < 0) | (c >= limit)
        i = int(np.flatnonzero(bad)[0])
        rng = "must be >= 0" if limit is None else f"outside the sensor: expected 0 <= {axis} < {limit}"
        raise ValueError(f"{prefix}{axis} = {int(c[i])} at {where(i)} {rng}"
                         + ("" if size is None else f" (sensor_size width x height = {size[0]} x {size[1]})"))
    return ev
