"""One pass over an event chunk: validity and the asynchronous engine's flat input positions.

:func:`eventsim.engines.inputs.event_positions` calls :func:`scan_events` on the integer fields of
an event array. It replaces about twenty NumPy passes (each allocating a temporary) with one loop,
which matters for short recordings: the per-call cost of the fast path is dominated by them. On any
invalid event the caller re-runs the NumPy check, which names the first offending event exactly as
before; this kernel only says that one exists. Asked to, it also puts the events of each timestamp
in position order (the engine's tie rule), so that the caller needs no sort.

The events come as the readers' packed record array itself (``EVENT_DTYPE``: each record read
whole, about twice as fast as through strided views of its fields) or as a tuple of four int64
field arrays (any other dtype, copied); :func:`_event` reads event ``i`` of either, so the loop
is written once and compiled for the two.
"""
import numpy as np
from numba import njit, types
from numba.extending import overload

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


def _event(src, i):
    """``(t, x, y, p)`` of event ``i`` as int64, from a record array or a tuple of field arrays
    (as plain Python, with ``NUMBA_DISABLE_JIT=1``; compiled code uses the overload below)."""
    if isinstance(src, np.ndarray):
        r = src[i]
        return np.int64(r["t"]), np.int64(r["x"]), np.int64(r["y"]), np.int64(r["p"])
    return np.int64(src[0][i]), np.int64(src[1][i]), np.int64(src[2][i]), np.int64(src[3][i])


@overload(_event, inline="always")
def _event_overload(src, i):
    if isinstance(src, types.Array):    # a record array: one record, its fields at fixed offsets
        def of_records(src, i):
            r = src[i]
            return np.int64(r.t), np.int64(r.x), np.int64(r.y), np.int64(r.p)
        return of_records

    def of_fields(src, i):               # (t, x, y, p) arrays
        return np.int64(src[0][i]), np.int64(src[1][i]), np.int64(src[2][i]), np.int64(src[3][i])
    return of_fields


@njit(**JIT)
def _sort_ties(first, end, out_t, out_pos):
    """Sort the positions of each timestamp in ``out_pos[first:end]`` ascending (times ``out_t``
    non-decreasing): only the groups with a descent are sorted."""
    j = first + 1
    while j < end:
        if out_t[j] == out_t[j - 1] and out_pos[j] < out_pos[j - 1]:   # times first: rarely equal
            lo, hi = j - 1, j + 1
            while lo > first and out_t[lo - 1] == out_t[j]:
                lo -= 1
            while hi < end and out_t[hi] == out_t[j]:
                hi += 1
            _sort_group(out_pos, lo, hi)
            j = hi
        else:
            j += 1


@njit(**JIT)
def scan_events(src, n, c_in, h, w, t_before, has_before, t_lo, t_hi, sort_ties, out_t, out_pos):
    """Check the ``n`` events of ``src`` (a record array, or a tuple of ``t, x, y, p`` arrays):
    ``t`` non-decreasing (and ``>= t_before`` when ``has_before``), ``0 <= x < w``,
    ``0 <= y < h``, ``p`` in {0, 1}; write the time and flat position ``(c·h + y)·w + x``
    (``c = p`` for two input channels, else 0) of every event to ``out_t``/``out_pos``.

    Returns ``(flag, first, end, unsorted)``: ``flag`` is :data:`INVALID` when an event is invalid
    (the outputs are then not to be used); the events with ``t_lo <= t <= t_hi`` are
    ``[first, end)`` (the times are sorted, so they are one range); ``unsorted`` is True when two
    of them of one timestamp are not in ascending position (the caller then sorts them). With
    ``sort_ties`` the kernel sorts them itself (each timestamp's positions ascending) and returns
    ``unsorted`` False.

    The loop has no branch: validity is one flag for the whole chunk, and the range is counted
    (with a branch on each event's checks the loop took twice as long)."""
    bad = False
    unsorted = False
    prev_t = t_before if has_before else np.int64(-9223372036854775807 - 1)
    last_pos = np.int64(-1)
    first, end = 0, 0
    u_w, u_h = np.uint64(w), np.uint64(h)
    for i in range(n):
        ti, xi, yi, pi = _event(src, i)
        bad |= (ti < prev_t) | (np.uint64(xi) >= u_w) | (np.uint64(yi) >= u_h) | (np.uint64(pi) > np.uint64(1))
        pos = ((pi if c_in == 2 else 0) * h + yi) * w + xi
        unsorted |= (ti == prev_t) & (pos < last_pos) & (ti >= t_lo) & (ti <= t_hi)
        first += np.int64(ti < t_lo)
        end += np.int64(ti <= t_hi)
        prev_t, last_pos = ti, pos
        out_t[i] = ti
        out_pos[i] = pos
    if bad:
        return INVALID, first, end, unsorted
    if unsorted and sort_ties:
        _sort_ties(first, end, out_t, out_pos)
        unsorted = False
    return OK, first, end, unsorted
