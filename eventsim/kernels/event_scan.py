"""One pass over an event chunk: validity and the asynchronous engine's flat input positions.

:func:`eventsim.engines.inputs.event_positions` calls :func:`scan_events` on the integer fields of
an event array. It replaces about twenty NumPy passes (each allocating a temporary) with one loop,
which matters for short recordings: the per-call cost of the fast path is dominated by them. On any
invalid event the caller re-runs the NumPy check, which names the first offending event exactly as
before; this kernel only says that one exists.
"""
import numpy as np
from numba import njit

from ..config import JIT

#: ``scan_events`` result flags
OK, INVALID = 0, 1


@njit(**JIT)
def scan_events(t, x, y, p, c_in, h, w, t_before, has_before, t_lo, t_hi, out_t, out_pos):
    """Check ``t`` non-decreasing (and ``>= t_before`` when ``has_before``), ``0 <= x < w``,
    ``0 <= y < h``, ``p`` in {0, 1}; write the time (float64) and flat position ``(c·h + y)·w + x``
    (``c = p`` for two input channels, else 0) of each event with ``t_lo <= t <= t_hi`` to
    ``out_t``/``out_pos``.

    Returns ``(flag, n_kept, unsorted)``: ``flag`` is :data:`INVALID` when an event is invalid
    (the outputs are then incomplete), ``unsorted`` is 1 when two kept events of one timestamp are
    not in ascending position (the caller then sorts them)."""
    n = t.shape[0]
    k = 0
    unsorted = 0
    prev_t = t_before
    last_t = np.int64(0)
    last_pos = np.int64(-1)
    for i in range(n):
        ti = np.int64(t[i])
        if (i > 0 or has_before) and ti < prev_t:
            return INVALID, k, unsorted
        prev_t = ti
        xi, yi, pi = np.int64(x[i]), np.int64(y[i]), np.int64(p[i])
        if xi < 0 or xi >= w or yi < 0 or yi >= h or pi < 0 or pi > 1:
            return INVALID, k, unsorted
        if ti < t_lo or ti > t_hi:
            continue
        pos = ((pi if c_in == 2 else 0) * h + yi) * w + xi
        if k > 0 and ti == last_t and pos < last_pos:
            unsorted = 1
        out_t[k] = ti
        out_pos[k] = pos
        last_t, last_pos = ti, pos
        k += 1
    return OK, k, unsorted
