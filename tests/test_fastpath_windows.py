"""Pause/resume on the asynchronous engine's fast path: a recording run as a chain of windows on
the fast path (the state pickled between calls, as Dask sends it) gives, bit for bit, the fast
path's unwindowed result and the general path's windowed one; the saved state says which path and
kernel it belongs to, and continuing it elsewhere is a clear error."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.engines.state import EngineState

from async_reference import continuous_network, random_events, warm_async  # noqa: E402,F401
from test_fastpath import assert_same, fast_eligible, path_mode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DT = 1000.0


def windows(net, ev, edges, mode, **options):
    """``ev`` simulated in windows ending at ``edges`` (µs) with ``EVENTSIM_FASTPATH=mode``, the
    state pickled between calls; returns (result, [states])."""
    states, state, start = [], None, options.get("t_start_us", 0)
    with path_mode(mode):
        for end in edges:
            part = ev[(ev["t"] >= start) & (ev["t"] < end)]
            state = es.simulate(net, part, engine="async", pause_us=end, **(
                dict(resume=state) if state is not None else options))
            assert isinstance(state, EngineState) and state.t_us == end
            state = pickle.loads(pickle.dumps(state))
            states.append(state)
            start = end
        res = es.simulate(net, ev[ev["t"] >= start], engine="async", resume=state)
    return res, states


def check_all_equal(net, ev, edges, **options):
    """windowed fast == unwindowed fast == windowed general == unwindowed general, bit for bit."""
    with path_mode("1"):
        whole_fast = es.simulate(net, ev, engine="async", **options)
    with path_mode("0"):
        whole_general = es.simulate(net, ev, engine="async", **options)
    split_fast, states = windows(net, ev, edges, "1", **options)
    split_general, general_states = windows(net, ev, edges, "0", **options)
    assert whole_fast.info["path"] == split_fast.info["path"] == "fast", whole_fast.info.get("fast_path_unsupported")
    assert whole_general.info["path"] == split_general.info["path"] == "general"
    assert all(s.data["path"] == "fast" for s in states)
    assert all(s.data["path"] == "general" for s in general_states)
    for other in (whole_fast, split_general):
        assert_same(split_fast, other)
    assert_same(whole_fast, whole_general)
    assert split_fast.info["queue_high_water"] == whole_fast.info["queue_high_water"]
    if "output_spikes" in whole_fast.info:
        for a, b in zip(split_fast.info["output_spikes"], whole_fast.info["output_spikes"]):
            np.testing.assert_array_equal(a, b)
    return split_fast, states


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(0, 120),
       edges=st.lists(st.sampled_from([1000, 2000, 3000, 4000, 5000]), min_size=1, max_size=4, unique=True),
       budgets=st.lists(st.integers(1, 400), max_size=3))
def test_windowed_fast_equals_whole_and_general(net, seed, n, edges, budgets):
    """Hypothesis networks (every reset, comparison, LIF kind, pooling, Add/Branch); events at the
    window edges themselves (they belong to the next window); budgets reached in any window."""
    net = fast_eligible(net)
    rng = np.random.default_rng(seed)
    ev = random_events(n, (2, 4, 4), 4000, rng)
    at_edges = random_events(6, (2, 4, 4), 1, rng)
    at_edges["t"] = rng.choice([1000, 2000, 3000, 4000], 6)
    ev = np.sort(np.concatenate([ev, at_edges]), order="t", kind="stable")
    check_all_equal(net, ev, sorted(edges), dt_us=DT, t_stop_us=5000, record=("spike_times", "spikes"),
                    snapshot_synops=budgets or None)


def long_recording(n=6000, span_us=400_000, size=6, seed=0):
    """0.4 s with bursts, simultaneous events and an empty stretch, then a dense one."""
    rng = np.random.default_rng(seed)
    t = np.sort(np.concatenate([rng.integers(0, span_us, n - 600), np.repeat(rng.integers(0, span_us, 30), 20)]))
    t[(t > 150_000) & (t < 190_000)] += 40_000
    ev = np.zeros(n, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    ev["t"] = np.sort(t)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n)
    return ev


def lif_net(tau_s=None):
    rng = np.random.default_rng(1)
    first = es.LIF(tau_s=tau_s, threshold=0.6) if tau_s else es.LIF(leak=0.9, threshold=1.0)
    return es.Network((2, 6, 6), [
        es.Conv2d(rng.normal(0.25, 0.5, (4, 2, 3, 3)), padding=1), first, es.SumPool2d(2), es.Flatten(),
        es.Linear(rng.normal(0.1, 0.5, (8, 36))), es.IF(threshold=1.0, reset="zero"),
        es.Linear(rng.normal(0, 0.5, (3, 8)), bias=rng.normal(0, 0.1, 3)), es.Readout()])


@pytest.mark.parametrize("edges", [[1000], [50_000, 51_000, 190_000], list(range(7000, 400_000, 7000)), [399_000]],
                         ids=["one-step", "uneven", "every-7-steps", "last-step"])
def test_long_recording_windows(edges):
    """Snapshot rows on the step grid (one at every window edge), synop budgets reached in several
    windows, rasters, spike times and a readout with a bias (a constant rate) across the edges."""
    split, _ = check_all_equal(lif_net(), long_recording(), edges, dt_us=DT, t_stop_us=400_000.0,
                               snapshot_synops=[500, 5000, 50_000], record=("spike_times", "spikes"))
    assert split.spikes > 1000 and (split.info["row_kind"] == 1).sum() == 3


def test_renormalisation_and_log_growth_across_windows():
    """τ = 20 µs renormalises the scaled time many times, within windows and across them; the
    spike-time log grows in a window and is carried (not re-grown from empty) into the next."""
    ev = long_recording(n=3000, span_us=40_000)
    split, states = check_all_equal(lif_net(tau_s=2e-5), ev, [3000, 9000, 20_000, 33_000], dt_us=500.0,
                                    t_stop_us=40_000.0, record="spike_times",
                                    snapshot_times_us=[0.0, 2999.5, 3000, 9000.25, 40_000])
    assert split.spikes_per_layer["1.LIF"] > 500
    assert states[-1].data["LT"].size > states[0].data["LT"].size > 0


def test_state_is_plain_arrays_and_small():
    """What travels between workers: NumPy arrays and a few strings (no kernel objects), without
    the rows not taken yet."""
    ev = long_recording()
    _, states = windows(lif_net(), ev, [100_000], "1", dt_us=DT, t_stop_us=400_000.0)
    data = states[0].data
    assert {k for k, v in data.items() if not isinstance(v, np.ndarray)} == {"path", "kernel", "params", "k"}
    assert data["RT"].shape == (99,) and data["k"] == 100   # the row at 100 ms belongs to the next window
    assert np.array_equal(data["RT"], np.arange(1, 100) * DT)


# ----------------------------------------------------------------------------- a state continued elsewhere


def _paused(net, ev, mode, **kw):
    with path_mode(mode):
        return es.simulate(net, ev[ev["t"] < 100_000], engine="async", dt_us=DT, t_stop_us=400_000.0,
                           pause_us=100_000, **kw)


def test_fast_state_continues_only_on_its_kernel():
    ev = long_recording()
    net = lif_net()
    state = _paused(net, ev, "1")
    rest = ev[ev["t"] >= 100_000]
    with path_mode("0"), pytest.raises(ValueError, match="paused on the asynchronous engine's fast path"):
        es.simulate(net, rest, engine="async", resume=state)
    with pytest.raises(ValueError, match="fast_path=False differs from the paused run's None"):
        es.simulate(net, rest, engine="async", resume=state, fast_path=False)
    # the same layer names and shapes, other weights: the kernel is the same, the parameters are not
    other = es.Network(net.input_shape, [l if i != 4 else es.Linear(l.weight * 0.5) for i, l in enumerate(net.layers)])
    with pytest.raises(ValueError, match="other weights"):
        es.simulate(other, rest, engine="async", resume=state)
    # another threshold: another kernel
    changed = es.Network(net.input_shape, [l if i != 5 else es.IF(threshold=0.9, reset="zero")
                                           for i, l in enumerate(net.layers)])
    with pytest.raises(ValueError, match="fast-path kernel"):
        es.simulate(changed, rest, engine="async", resume=state)
    forged = EngineState(state.engine, state.t_us, state.options, state.signature,
                         {**state.data, "V": state.data["V"][:-1]})
    with pytest.raises(ValueError, match="saved array V"):
        es.simulate(net, rest, engine="async", resume=forged)


def test_general_state_continues_on_the_general_path():
    """A state paused on the general path (auto mode's first calls) continues there even where
    the fast path would run the call, and gives the same result."""
    ev = long_recording()
    net = lif_net()
    state = _paused(net, ev, "0", record="spike_times")
    with path_mode("1"):
        res = es.simulate(net, ev[ev["t"] >= 100_000], engine="async", resume=state)
        whole = es.simulate(net, ev, engine="async", dt_us=DT, t_stop_us=400_000.0, record="spike_times")
    assert res.info["path"] == "general" and "general path" in res.info["fast_path_unsupported"]
    assert whole.info["path"] == "fast"
    assert_same(res, whole)


# ----------------------------------------------------------------------------- real recordings


@pytest.fixture(scope="module")
def nmnist(nmnist_dir):
    net = es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz")
    files = sorted((nmnist_dir / "test").glob("*.bs2"))[:3]
    assert files
    return net, [es.read_events(f) for f in files]


@pytest.mark.realdata
def test_nmnist_windows_fast_equals_general(nmnist):
    """The shipped model on real N-MNIST recordings cut at 30/70/150 ms: budgets, rasters, spike
    times and logits identical on both paths, windowed or not."""
    net, recordings = nmnist
    for ev in recordings:
        t_stop = float(np.ceil((ev["t"][-1] + 1) / 10_000) * 10_000)
        split, _ = check_all_equal(net, ev, [30_000, 100_000, 150_000], dt_us=10_000, t_stop_us=t_stop,
                                   snapshot_synops=[100_000, 400_000], record=("spike_times", "spikes"))
        assert split.spikes > 1000


@pytest.mark.realdata
def test_nmnist_traces_windowed_on_the_fast_path(nmnist, monkeypatch):
    """eventsim.samples (what Dask workers run) now keeps split samples on the fast path: the
    trace equals the unsplit one and the general path's."""
    from eventsim.engines import fastpath
    from eventsim.samples import Continuation, start_sample, trace_sample
    net, recordings = nmnist
    monkeypatch.delenv("EVENTSIM_FASTPATH", raising=False)
    calls = []
    real = fastpath.run_fast
    monkeypatch.setattr(fastpath, "run_fast", lambda *a, **k: calls.append(k.get("pause_us")) or real(*a, **k))
    for i, ev in enumerate(recordings):
        first = start_sample(net, ev, 0, i, engine="async", window_us=70_000)
        assert isinstance(first, Continuation) and first.state.data["path"] == "fast"
        split = trace_sample(net, ev, 0, i, engine="async", window_us=70_000)
        whole = trace_sample(net, ev, 0, i, engine="async")
        with path_mode("0"):
            general = trace_sample(net, ev, 0, i, engine="async", window_us=70_000)
        for name in ("times_us", "logits", "synops", "spikes", "spikes_per_layer", "predictions"):
            for other in (whole, general):
                np.testing.assert_array_equal(getattr(split, name), getattr(other, name), err_msg=name)
    assert 70_000 in calls and None in calls
