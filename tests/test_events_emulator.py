"""Event-camera emulator: hand-computed cases, a slow per-pixel reference, rates, determinism."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eventsim import events as E
from eventsim.events.emulator import EmulatorParams, emulate_events

CLEAN = dict(threshold_sigma=0.0, shot_noise_rate_hz=0.0, leak_rate_hz=0.0)


def reference_emulator(video, ts, theta_on, theta_off, refractory_us, eps):
    """Plain Python: one pixel at a time, one crossing at a time, greedy refractory filter."""
    n, h, w = video.shape
    out = []
    for y in range(h):
        for x in range(w):
            L = [math.log(max(float(v), 0.0) + eps) for v in video[:, y, x]]
            ref, ready = L[0], -10**18
            for k in range(n - 1):
                t0, t1, l0, l1 = int(ts[k]), int(ts[k + 1]), L[k], L[k + 1]
                for sign, theta in ((1, theta_on), (-1, theta_off)):
                    count = max(math.floor(sign * (l1 - ref) / theta), 0)
                    for j in range(1, count + 1):
                        level = ref + sign * j * theta
                        s = (level - l0) / (l1 - l0) if l1 != l0 else 0.0
                        t = min(t0 + math.floor(min(max(s, 0.0), 1.0) * (t1 - t0)), t1 - 1)
                        if t >= ready:
                            out.append((t, y * w + x, 1 if sign > 0 else 0))
                            ready = t + refractory_us
                    ref += sign * count * theta
    out.sort()
    return [(t, pix % w, pix // w, p) for t, pix, p in out]


def as_tuples(ev):
    return list(zip(ev["t"].tolist(), ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist()))


def test_single_pixel_ramp_hand_computed():
    # log(0.9 + 0.01) - log(0.1 + 0.01) = 2.1130; / 0.2 -> 10 ON crossings, the j-th at
    # floor(1000 * 0.2 j / 2.1130) µs
    video = np.array([[[0.1]], [[0.9]]])
    ev = emulate_events(video, [0, 1000], np.random.default_rng(0), EmulatorParams(refractory_us=0, **CLEAN))
    d = math.log(0.91) - math.log(0.11)
    assert ev["t"].tolist() == [math.floor(1000 * 0.2 * j / d) for j in range(1, 11)]
    assert set(ev["p"].tolist()) == {1}
    back = emulate_events(video[::-1], [0, 1000], np.random.default_rng(0), EmulatorParams(refractory_us=0, **CLEAN))
    assert back.size == 10 and set(back["p"].tolist()) == {0}
    # refractory 150 µs with crossings every 94.6 µs: greedy keeps every second one
    slow = emulate_events(video, [0, 1000], np.random.default_rng(0), EmulatorParams(refractory_us=150, **CLEAN))
    assert slow["t"].tolist() == ev["t"].tolist()[::2]


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(1, 3), st.integers(1, 3)),
              elements=st.floats(0.0, 1.0)),
       st.integers(0, 400), st.floats(0.05, 0.5), st.floats(0.05, 0.5))
def test_matches_slow_reference(video, refractory_us, th_on, th_off):
    ts = np.arange(video.shape[0], dtype=np.int64) * 1000
    params = EmulatorParams(threshold_on=th_on, threshold_off=th_off, refractory_us=refractory_us, **CLEAN)
    ev = emulate_events(video, ts, np.random.default_rng(1), params)
    assert as_tuples(ev) == reference_emulator(video, ts, th_on, th_off, refractory_us, params.eps)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3000))
def test_refractory_and_order_with_noise(seed, refractory_us):
    rng = np.random.default_rng(seed)
    video = rng.random((20, 4, 4))
    params = EmulatorParams(refractory_us=refractory_us, shot_noise_rate_hz=0.0, leak_rate_hz=20.0, threshold_sigma=0.05)
    ev = emulate_events(video, np.arange(20) * 500, np.random.default_rng(seed), params)
    E.validate_events(ev, (4, 4))
    for pix in np.unique(ev["y"].astype(int) * 4 + ev["x"]):
        t = ev["t"][ev["y"].astype(int) * 4 + ev["x"] == pix]
        assert np.all(np.diff(t) >= refractory_us)


def test_noise_and_leak_rates():
    static = np.full((11, 20, 20), 0.5)
    ts = np.arange(11) * 100_000  # 1 s
    noise = emulate_events(static, ts, np.random.default_rng(2),
                           EmulatorParams(shot_noise_rate_hz=5.0, leak_rate_hz=0.0, threshold_sigma=0.0))
    expected = 5.0 * 400 * 1.0
    assert abs(noise.size - expected) < 5 * math.sqrt(expected)
    assert abs(noise["p"].mean() - 0.5) < 0.1
    leak = emulate_events(static, ts, np.random.default_rng(3),
                          EmulatorParams(shot_noise_rate_hz=0.0, leak_rate_hz=3.0, leak_sigma=0.0, threshold_sigma=0.0,
                                         refractory_us=0))
    # each pixel's reference drifts by 3 thresholds in 1 s from a phase in [-θ/2, θ/2): 2 to 3 ON events
    per_pixel = np.bincount(leak["y"].astype(int) * 20 + leak["x"], minlength=400)
    assert set(leak["p"].tolist()) == {1} and per_pixel.min() >= 2 and per_pixel.max() <= 4


def test_mismatch_spreads_counts_and_seed_determinism():
    video = np.stack([np.full((8, 8), 0.1), np.full((8, 8), 0.9)])
    p = EmulatorParams(threshold_sigma=0.04, refractory_us=0, shot_noise_rate_hz=0.0, leak_rate_hz=0.0)
    ev = emulate_events(video, [0, 1000], np.random.default_rng(5), p)
    counts = np.bincount(ev["y"].astype(int) * 8 + ev["x"], minlength=64)
    assert counts.min() < counts.max()
    noisy = EmulatorParams(shot_noise_rate_hz=50.0)
    a = emulate_events(video, [0, 100_000], np.random.default_rng(7), noisy)
    b = emulate_events(video, [0, 100_000], np.random.default_rng(7), noisy)
    c = emulate_events(video, [0, 100_000], np.random.default_rng(8), noisy)
    assert as_tuples(a) == as_tuples(b) and as_tuples(a) != as_tuples(c)


def test_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"shape \(N >= 2, H, W\)"):
        emulate_events(np.zeros((1, 2, 2)), [0], rng)
    with pytest.raises(ValueError, match="2 timestamps for 3 frames"):
        emulate_events(np.zeros((3, 2, 2)), [0, 1], rng)
    with pytest.raises(ValueError, match="frame 2 at 5 µs follows 5 µs"):
        emulate_events(np.zeros((3, 2, 2)), [0, 5, 5], rng)
    with pytest.raises(ValueError, match="threshold_on"):
        EmulatorParams(threshold_on=0)
    with pytest.raises(ValueError, match="refractory_us"):
        EmulatorParams(refractory_us=-1)
