"""The compiled one-pass event check (eventsim.kernels.event_scan via engines.inputs.event_positions)
against the NumPy check it replaces (engines.inputs.check_events): same positions, same errors."""
import numpy as np
import pytest

from eventsim.engines.inputs import check_events, event_positions

SHAPE = (2, 5, 7)


def _events(rng, n, dtype_xy=np.int16, dtype_t=np.int64):
    ev = np.zeros(n, dtype=[("t", dtype_t), ("x", dtype_xy), ("y", dtype_xy), ("p", np.int8)])
    ev["t"] = np.sort(rng.integers(0, 40, n))
    ev["x"] = rng.integers(0, SHAPE[2], n)
    ev["y"] = rng.integers(0, SHAPE[1], n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def _numpy(ev, shape, lo, hi, t_before=None):
    t, c, y, x = check_events(ev, shape, 0, t_before)
    keep = (t >= lo) & (t <= hi)
    return t[keep], ((c * shape[1] + y) * shape[2] + x)[keep]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("shape", [SHAPE, (1, 5, 7)])
def test_positions_equal_numpy(seed, shape):
    rng = np.random.default_rng(seed)
    ev = _events(rng, int(rng.integers(0, 60)), dtype_xy=[np.int16, np.uint16, np.int64][seed % 3],
                 dtype_t=[np.int64, np.int32][seed % 2])
    lo, hi = sorted(rng.integers(-5, 45, 2))
    t, pos, last, unsorted = event_positions(ev, shape, 0, None, float(lo), float(hi))
    t_ref, pos_ref = _numpy(ev, shape, lo, hi)
    np.testing.assert_array_equal(t, t_ref)
    np.testing.assert_array_equal(pos, pos_ref)
    assert last == (int(ev["t"][-1]) if len(ev) else None)
    key = t * 1000 + pos
    if not unsorted:      # the flag may only be clear when ties are in position order
        assert np.all(np.diff(key) >= 0)


@pytest.mark.parametrize("field, value", [("x", 7), ("x", -1), ("y", 5), ("p", 2), ("p", -1), ("t", -100)])
def test_invalid_event_same_message(field, value):
    ev = _events(np.random.default_rng(1), 30)
    ev[field][17] = value
    with pytest.raises(ValueError) as ours:
        event_positions(ev, SHAPE, 0, None, 0.0, 100.0)
    with pytest.raises(ValueError) as numpy_check:
        check_events(ev, SHAPE)
    assert str(ours.value) == str(numpy_check.value)
    assert "event 17" in str(ours.value)


def test_time_before_chunk():
    ev = _events(np.random.default_rng(2), 10)
    with pytest.raises(ValueError, match="event 100"):
        event_positions(ev, SHAPE, 100, int(ev["t"][0]) + 1, 0.0, 100.0)


def test_float_times_take_the_numpy_check():
    ev = np.zeros(3, dtype=[("t", np.float64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
    ev["t"] = [1.0, 2.5, 3.0]
    with pytest.raises(ValueError, match="whole number"):
        event_positions(ev, SHAPE, 0, None, 0.0, 10.0)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype_xy", [np.int16, np.uint16])
def test_sorted_ties_equal_numpy_lexsort(seed, dtype_xy):
    """sort_ties=True: each timestamp's events in position order (the engine's tie rule), as a
    NumPy lexsort of the reference puts them; long tie groups (a whole chunk at one time) too."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(0, 300))
    ev = _events(rng, n, dtype_xy=dtype_xy)
    if seed % 3 == 0:
        ev["t"] = 7                               # one group, longer than the insertion-sort limit
    t, pos, last, unsorted = event_positions(ev, SHAPE, 0, None, 3.0, 35.0, sort_ties=True)
    t_ref, pos_ref = _numpy(ev, SHAPE, 3, 35)
    order = np.lexsort((pos_ref, t_ref))
    np.testing.assert_array_equal(t, t_ref[order])
    np.testing.assert_array_equal(pos, pos_ref[order])
    assert not unsorted


def test_sorted_ties_numpy_fallback():
    """Float timestamps take the NumPy check; sort_ties still sorts the ties."""
    ev = np.zeros(4, dtype=[("t", np.float64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
    ev["t"] = [1.0, 1.0, 1.0, 2.0]
    ev["x"] = [3, 1, 2, 0]
    t, pos, last, unsorted = event_positions(ev, SHAPE, 0, None, 0.0, 10.0, sort_ties=True)
    np.testing.assert_array_equal(pos, [1, 2, 3, 0])
    assert last == 2 and not unsorted


@pytest.mark.parametrize("seed", range(4))
def test_reader_fields_scanned_in_place_equal_the_copies(seed):
    """The readers' EVENT_DTYPE array is scanned as it is (its records, no copies); any other
    dtype, a read-only array and a strided view as int64 copies of the fields: the same positions
    and times either way."""
    from numba import types

    from eventsim.events import EVENT_DTYPE
    from eventsim.kernels.event_scan import scan_events
    rng = np.random.default_rng(300 + seed)
    ev = _events(rng, int(rng.integers(2, 200)))
    reader = ev.astype(EVENT_DTYPE)
    other = ev.astype([("t", np.int32), ("x", np.uint16), ("y", np.uint16), ("p", np.uint8)])
    frozen = reader.copy()
    frozen.flags.writeable = False
    strided = np.repeat(reader, 2)[::2]
    got = [event_positions(a, SHAPE, 0, None, 3.0, 30.0, sort_ties=True) for a in (reader, other, frozen, strided)]
    t_ref, pos_ref = _numpy(ev, SHAPE, 3, 30)
    order = np.lexsort((pos_ref, t_ref))
    for t, pos, last, unsorted in got:
        np.testing.assert_array_equal(t, t_ref[order])
        np.testing.assert_array_equal(pos, pos_ref[order])
        assert last == int(ev["t"][-1]) and not unsorted
    # the reader's array took the in-place route: a signature of its records, not int64 copies
    assert any(isinstance(sig[0], types.Array) and isinstance(sig[0].dtype, types.Record)
               for sig in scan_events.signatures), scan_events.signatures


@pytest.mark.parametrize("reader_dtype", [True, False])
def test_ties_at_the_window_edges(reader_dtype):
    """Out-of-order ties at exactly t_lo and at exactly t_hi are kept, flagged and sorted; the
    events outside the window are dropped (hand-computed: y = p = 0, so the position is x)."""
    from eventsim.events import EVENT_DTYPE
    dtype = EVENT_DTYPE if reader_dtype else [("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)]
    ev = np.zeros(7, dtype=dtype)
    ev["t"] = [2, 3, 3, 5, 9, 9, 10]
    ev["x"] = [5, 4, 1, 6, 3, 0, 2]
    t, pos, last, unsorted = event_positions(ev, SHAPE, 0, None, 3.0, 9.0)
    np.testing.assert_array_equal(t, [3, 3, 5, 9, 9])
    np.testing.assert_array_equal(pos, [4, 1, 6, 3, 0])
    assert unsorted and last == 10
    t, pos, last, unsorted = event_positions(ev, SHAPE, 0, None, 3.0, 9.0, sort_ties=True)
    np.testing.assert_array_equal(t, [3, 3, 5, 9, 9])
    np.testing.assert_array_equal(pos, [1, 4, 6, 0, 3])
    assert not unsorted
    ev["x"][4:6] = [0, 3]     # only the tie at t_lo out of order
    _, pos, _, unsorted = event_positions(ev, SHAPE, 0, None, 3.0, 9.0)
    assert unsorted
    np.testing.assert_array_equal(event_positions(ev, SHAPE, 0, None, 3.0, 9.0, sort_ties=True)[1], [1, 4, 6, 0, 3])
