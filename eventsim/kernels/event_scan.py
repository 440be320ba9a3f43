"""One pass over an event chunk: validity and the asynchronous engine's flat input positions.

:func:`eventsim.engines.inputs.event_positions` calls :func:`scan_events` on the integer fields of
an event array. It replaces about twenty NumPy passes (each allocating a temporary) with one loop,
which matters for short recordings: the per-call cost of the fast path is dominated by them. On any
invalid event the caller re-runs the NumPy check, which names the first offending event exactly as
before; this kernel only says that one exists. Asked to, it also puts the events of each timestamp
in position order (the engine's tie rule), so that the caller needs no sort.
"""
import numpy as np
from numba import njit

from ..config import JIT

#: ``scan_events`` result flags
OK, INVALID = 0, 1


@njit(**JIT)
def _sort_group(out_pos, lo, hi):
    """Sort ``out_pos[lo:hi]`` (the positions of one timestamp) ascending: insertion sort for the
    short groups of real recordings, NumPy's sort beyond 32 (a whole chunk at one time)."""
    if hi - lo > 32:
        out_pos[lo:hi] = np.sort(out_pos[lo:hi])
        return
    for i in range(lo + 1, hi):
        v = out_pos[i]
        j = i
        while j > lo and out_pos[j - 1] > v:
            out_pos[j] = out_pos[j - 1]
            j -= 1
        out_pos[j] = v


@njit(**JIT)
def scan_events(t, x, y, p, c_in, h, w, t_before, has_before, t_lo, t_hi, sort_ties, out_t, out_pos):
    """Check ``t`` non-decreasing (and ``>= t_before`` when ``has_before``), ``0 <= x < w``,
    ``0 <= y < h``, ``p`` in {0, 1}; write the time (float64) and flat position ``(c·h + y)·w + x``
    (``c = p`` for two input channels, else 0) of each event with ``t_lo <= t <= t_hi`` to
    ``out_t``/``out_pos``.

    Returns ``(flag, n_kept, unsorted)``: ``flag`` is :data:`INVALID` when an event is invalid
    (the outputs are then incomplete), ``unsorted`` is 1 when two kept events of one timestamp are
    not in ascending position (the caller then sorts them). With ``sort_ties`` the kernel sorts
    them itself (each timestamp's positions ascending) and returns ``unsorted`` 0."""
    n = t.shape[0]
    k = 0
    unsorted = 0
    group = 0          # first kept event of the current timestamp
    group_unsorted = False
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
        if k > 0 and ti != last_t:
            if group_unsorted:
                _sort_group(out_pos, group, k)
            group, group_unsorted = k, False
        if k > 0 and ti == last_t and pos < last_pos:
            unsorted = 1
            group_unsorted = sort_ties
        out_t[k] = ti
        out_pos[k] = pos
        last_t, last_pos = ti, pos
        k += 1
    if group_unsorted:
        _sort_group(out_pos, group, k)
    return OK, k, 0 if sort_ties else unsorted
