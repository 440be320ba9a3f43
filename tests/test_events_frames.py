"""Frame encodings: hand-computed bins, tonic's ToFrame, and the step engine's binning."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsim import events as E


def ev_of(ts, xs=None, ys=None, ps=None):
    n = len(ts)
    return E.make_events(ts, xs if xs is not None else [0] * n, ys if ys is not None else [0] * n,
                         ps if ps is not None else [1] * n)


def test_edges_hand_computed():
    # window [0, 3000) in 3 bins of 1000 µs: 999 -> 0, 1000 (edge) -> 1, 2999 -> 2, 3000 dropped
    ev = ev_of([0, 999, 1000, 1999, 2000, 2999, 3000], xs=[0, 1, 0, 1, 0, 1, 0])
    f = E.to_frames(ev, (2, 1, 2), n_bins=3, t_stop_us=3000)
    assert f.dtype == np.float64 and f.shape == (3, 2, 1, 2)
    assert f[:, 1, 0].tolist() == [[1, 1], [1, 1], [1, 1]]
    assert f[:, 0].sum() == 0
    # t_stop_us=None: window ends at last + 1 = 3001, so the last event lands in the last bin
    g = E.to_frames(ev, (2, 1, 2), n_bins=3)
    # edges 0, 1000.33, 2000.67, 3001: 1000 now falls in bin 0, 2000 in bin 1, 3000 in bin 2
    assert g[:, 1, 0].tolist() == [[2, 1], [1, 1], [1, 1]]
    assert E.bin_edges_us(3, 0, 3001).tolist() == pytest.approx([0, 1000.333, 2000.667, 3001], abs=1e-3)


def test_non_integer_edges_and_start():
    # [100, 110) in 3 bins: edges 100, 103.33, 106.67, 110
    ev = ev_of([99, 100, 103, 104, 106, 107, 109, 110])
    f = E.to_frames(ev, (1, 1, 1), n_bins=3, t_start_us=100, t_stop_us=110)
    assert f[:, 0, 0, 0].tolist() == [2, 2, 2]


def test_polarity_channels_crop_downsample():
    ev = E.make_events([0, 1, 2, 3], [4, 5, 6, 33], [4, 4, 7, 33], [0, 1, 1, 1])
    f = E.to_frames(ev, (2, 2, 2), n_bins=1, crop=(4, 4, 4, 4), downsample=2)
    # (4,4)->(0,0) OFF; (5,4)->(0,0) ON; (6,7)->(1,1) ON after crop+pool; (33,33) cropped away
    assert f[0, 0].tolist() == [[1, 0], [0, 0]] and f[0, 1].tolist() == [[1, 0], [0, 1]]
    merged = E.to_frames(ev, (1, 34, 34), n_bins=1)
    assert merged.sum() == 4 and merged[0, 0, 33, 33] == 1
    with pytest.raises(ValueError, match=r"event 3 at \(x, y\) = \(33, 33\).*outside shape"):
        E.to_frames(ev, (2, 17, 17), n_bins=1)
    with pytest.raises(ValueError, match="unsorted|decrease"):
        E.to_frames(ev[::-1], (2, 34, 34), n_bins=1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=2, max_size=60), st.integers(1, 12), st.integers(1, 700))
def test_bin_index_equals_to_frames_with_step_window(ts, n_steps, dt_us):
    ev = ev_of(sorted(ts))
    f = E.to_frames(ev, (1, 1, 1), n_bins=n_steps, t_start_us=0, t_stop_us=n_steps * dt_us)
    k = E.bin_index(ev, dt_us)
    expected = np.bincount(k[k < n_steps], minlength=n_steps)
    assert f[:, 0, 0, 0].tolist() == expected.tolist()


def test_bin_index_matches_step_engine_binning():
    from eventsim.engines import inputs
    rng = np.random.default_rng(3)
    ev = E.make_events(np.sort(rng.integers(0, 100_000, 500)), rng.integers(0, 8, 500), rng.integers(0, 8, 500),
                       rng.integers(0, 2, 500))
    steps = inputs.events_to_steps(ev, (2, 8, 8), dt_us=7000, steps=15)
    frames = E.to_frames(ev, (2, 8, 8), n_bins=15, t_stop_us=15 * 7000)
    assert np.array_equal(np.asarray(steps).reshape(frames.shape), frames)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3000), min_size=2, max_size=80), st.integers(1, 8))
def test_tonic_convention_matches_tonic(ts, n_bins):
    from tonic.functional.to_frame import to_frame_numpy
    ts = sorted(ts)
    if ts[-1] - ts[0] < n_bins:
        return  # tonic's window would be 0 µs
    rng = np.random.default_rng(len(ts))
    xs, ys, ps = rng.integers(0, 5, len(ts)), rng.integers(0, 4, len(ts)), rng.integers(0, 2, len(ts))
    tonic_ev = np.array(list(zip(xs, ys, ts, ps)), dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    ref = to_frame_numpy(tonic_ev.copy(), sensor_size=(5, 4, 2), n_time_bins=n_bins)
    ours = E.to_frames(ev_of(ts, xs, ys, ps), (2, 4, 5), n_bins=n_bins, convention="tonic")
    assert np.array_equal(ours, ref.astype(np.float64))


def test_spikingjelly_convention_last_bin_takes_rest():
    # spikingjelly split_by="time": dt = (t_last - t_first) // T, the last frame runs to the end
    ev = ev_of([10, 12, 14, 16, 19, 20])
    f = E.to_frames(ev, (1, 1, 1), n_bins=3, convention="spikingjelly")  # dt = 3: [10,13) [13,16) [16, end]
    assert f[:, 0, 0, 0].tolist() == [2, 1, 3]
    g = E.to_frames(ev, (1, 1, 1), n_bins=3, convention="tonic")  # tonic drops t >= 19
    assert g[:, 0, 0, 0].tolist() == [2, 1, 1]
    with pytest.raises(ValueError, match="takes no t_start_us"):
        E.to_frames(ev, (1, 1, 1), n_bins=3, t_stop_us=100, convention="tonic")


def test_transforms_and_param_errors():
    ev = ev_of([0, 5, 10, 15], xs=[0, 1, 2, 3])
    assert E.time_window(ev, 5, 15)["t"].tolist() == [5, 10]
    assert E.crop_events(ev, 1, 0, 2, 1)["x"].tolist() == [0, 1]
    assert E.bin_index([0, 999, 1000], 1000).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="dt_us"):
        E.bin_index([0], 0)
    with pytest.raises(ValueError, match="before t_start_us"):
        E.bin_index([5], 10, t_start_us=6)
    with pytest.raises(ValueError, match="n_bins"):
        E.to_frames(ev, (2, 4, 4), n_bins=0)
    with pytest.raises(ValueError, match="empty window"):
        E.to_frames(ev, (2, 1, 4), n_bins=2, t_start_us=10, t_stop_us=10)
    with pytest.raises(ValueError, match="convention"):
        E.to_frames(ev, (2, 1, 4), convention="x")
    assert E.to_frames(E.empty_events(), (2, 3, 3), n_bins=4).shape == (4, 2, 3, 3)
