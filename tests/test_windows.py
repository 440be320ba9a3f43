"""Pause/resume: a recording simulated as a chain of time windows, the engine state carried from
one call to the next (pickled, as between Dask workers), gives the unsplit run's result exactly."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import eventsim as es
from eventsim.engines.state import EngineState
from eventsim.samples import Continuation, SampleTrace, start_sample, trace_sample

ROOT = Path(__file__).resolve().parents[1]
EVENT_DTYPE = [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")]
FIELDS = ("times_us", "logits", "spikes_per_row", "synops_per_row", "macs_per_row", "neuron_updates_per_row")
DT = 1000.0


def long_recording(n=6000, span_us=400_000, size=6, seed=0):
    """A synthetic 0.4 s recording with bursts, simultaneous events and empty stretches."""
    rng = np.random.default_rng(seed)
    t = np.sort(np.concatenate([rng.integers(0, span_us, n - 600), np.repeat(rng.integers(0, span_us, 30), 20)]))
    t[(t > 150_000) & (t < 190_000)] += 40_000          # an empty stretch, then a dense one
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(t)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n)
    return ev


def toy_net(bias=False, delay_us=0.0):
    rng = np.random.default_rng(1)
    return es.Network((2, 6, 6), [
        es.Conv2d(rng.normal(0.25, 0.5, (4, 2, 3, 3)), padding=1, bias=rng.normal(0, 0.05, 4) if bias else None),
        es.LIF(leak=0.9, threshold=1.0), es.SumPool2d(2), es.Flatten(),
        es.Linear(rng.normal(0.1, 0.5, (8, 36)), delay_us=delay_us), es.IF(threshold=1.0, reset="zero"),
        es.Linear(rng.normal(0, 0.5, (3, 8))), es.Readout()])


def run_windows(net, ev, engine, edges, **options):
    """Simulate ``ev`` in windows ending at ``edges`` (µs), pickling the state between calls."""
    state, start = None, 0
    for end in edges:
        part = ev[(ev["t"] >= start) & (ev["t"] < end)]
        if state is None:
            state = es.simulate(net, part, engine=engine, pause_us=end, **options)
        else:
            state = es.simulate(net, part, engine=engine, pause_us=end, resume=state)
        assert isinstance(state, EngineState) and state.t_us == end
        state = pickle.loads(pickle.dumps(state))
        start = end
    return es.simulate(net, ev[ev["t"] >= start], engine=engine, resume=state)


def assert_same(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.rasters.keys() == b.rasters.keys() and a.membranes.keys() == b.membranes.keys()
    for key in a.rasters:
        np.testing.assert_array_equal(a.rasters[key], b.rasters[key])
    for key in a.membranes:
        np.testing.assert_array_equal(a.membranes[key], b.membranes[key])


EDGES = [[1000], [50_000, 51_000, 190_000], list(range(7000, 400_000, 7000)), [399_000]]


@pytest.mark.parametrize("edges", EDGES, ids=["one-step", "uneven", "every-7-steps", "last-step"])
@pytest.mark.parametrize("bias", [False, True], ids=["plain", "bias"])
def test_stepped_windows_equal_whole_run(edges, bias):
    net, ev = toy_net(bias), long_recording()
    opts = dict(dt_us=DT, steps=400, record=("spikes", "membrane"))
    whole = es.simulate(net, ev, **opts)
    assert_same(run_windows(net, ev, "stepped", edges, **opts), whole)


@pytest.mark.parametrize("edges", EDGES, ids=["one-step", "uneven", "every-7-steps", "last-step"])
@pytest.mark.parametrize("mode", ["none", "batch"])
@pytest.mark.parametrize("bias,delay", [(False, 0.0), (True, 2500.0)], ids=["plain", "bias+delay"])
def test_async_windows_equal_whole_run(edges, mode, bias, delay):
    """The queue (predicted crossings under a bias, delayed spikes), cursors, counters, readout
    and the spike-time log cross the window edges."""
    if mode == "batch" and delay:
        delay = 2000.0                                     # batch mode: whole steps
    net, ev = toy_net(bias, delay), long_recording()
    opts = dict(dt_us=DT, simultaneous=mode, t_stop_us=400_000.0, snapshot_synops=[500, 5000, 50_000],
                record=("spike_times", "spikes"))
    whole = es.simulate(net, ev, engine="async", **opts)
    split = run_windows(net, ev, "async", edges, **opts)
    assert_same(split, whole)
    np.testing.assert_array_equal(split.info["row_kind"], whole.info["row_kind"])
    if whole.info["path"] == split.info["path"]:   # (windows run on the general path; the fast path
        assert split.info["queue_high_water"] == whole.info["queue_high_water"]   # counts no heap)
    for name, times in whole.info["spike_times"].items():
        np.testing.assert_array_equal(split.info["spike_times"][name], times)


def test_batch_windows_equal_stepped_engine():
    net, ev = toy_net(True), long_recording()
    stepped = es.simulate(net, ev, dt_us=DT, steps=400)
    batch = run_windows(net, ev, "async", [100_000, 300_000], dt_us=DT, simultaneous="batch", steps=400)
    np.testing.assert_array_equal(batch.spikes_per_row, stepped.spikes_per_row)
    np.testing.assert_array_equal(batch.synops_per_row, stepped.synops_per_row)


@pytest.fixture(scope="module")
def nmnist_samples(nmnist_dir):
    from eventsim.events import LocalNMNIST
    data = LocalNMNIST(nmnist_dir, "test")
    return es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz"), [data[i] for i in range(0, len(data), 40)]


@pytest.mark.parametrize("engine", ["stepped", "async"])
def test_real_nmnist_windowed_traces_are_identical(nmnist_samples, engine):
    """Real N-MNIST recordings (~0.3 s) cut into 30 ms and 70 ms windows on the 10 ms grid."""
    net, samples = nmnist_samples
    for i, (ev, label) in enumerate(samples):
        whole = trace_sample(net, ev, label, i, engine=engine)
        for window_us in (30_000, 70_000):
            split = trace_sample(net, ev, label, i, engine=engine, window_us=window_us)
            for name in ("times_us", "logits", "synops", "macs", "spikes", "spikes_per_layer"):
                np.testing.assert_array_equal(getattr(split, name), getattr(whole, name), err_msg=name)
            assert (split.n_events, split.duration_us) == (whole.n_events, whole.duration_us)


def test_short_recordings_are_not_split():
    net, ev = toy_net(), long_recording()
    assert isinstance(start_sample(net, ev, 1, 0, dt_us=DT, window_us=1e6), SampleTrace)
    cont = start_sample(net, ev, 1, 0, dt_us=DT, window_us=100_000)
    assert isinstance(cont, Continuation) and cont.state.t_us == 100_000 and cont.steps == 400
    # a window that is not a whole number of steps is rounded up to one
    assert start_sample(net, ev, 1, 0, dt_us=DT, window_us=1500).state.t_us == 2000


def test_absolute_timestamps_are_windowed_like_the_whole_run():
    net, ev = toy_net(), long_recording()
    ev["t"] += 1_700_000_000_000                            # wall-clock µs, as AEDAT 4 stores them
    whole = trace_sample(net, ev, 0, 0, dt_us=DT, engine="async")
    split = trace_sample(net, ev, 0, 0, dt_us=DT, engine="async", window_us=64_000)
    np.testing.assert_array_equal(split.logits, whole.logits)
    np.testing.assert_array_equal(split.synops, whole.synops)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("engine", ["stepped", "async"])
def test_pause_errors(engine):
    net, ev = toy_net(), long_recording()
    end = dict(steps=400) if engine == "stepped" else dict(t_stop_us=400_000.0)
    first = ev[ev["t"] < 10_000]
    with pytest.raises(ValueError, match="on the step grid"):
        es.simulate(net, first, engine=engine, dt_us=DT, pause_us=10_500, **end)
    with pytest.raises(ValueError, match="whole-µs"):
        es.simulate(net, first, engine=engine, dt_us=999.5, pause_us=9995, **end)
    with pytest.raises(ValueError, match="only the window's events"):
        es.simulate(net, ev, engine=engine, dt_us=DT, pause_us=10_000, **end)
    with pytest.raises(ValueError, match="up front"):
        es.simulate(net, first, engine=engine, dt_us=DT, pause_us=10_000)
    with pytest.raises(ValueError, match="event-array input"):
        es.simulate(net, np.zeros((5, 2, 6, 6), np.int64), engine=engine, dt_us=DT, pause_us=2000, steps=5)
    state = es.simulate(net, first, engine=engine, dt_us=DT, pause_us=10_000, **end)
    with pytest.raises(ValueError, match="differs from the paused run"):
        es.simulate(net, ev[ev["t"] >= 10_000], engine=engine, resume=state, dt_us=2000.0)
    with pytest.raises(ValueError, match="different network"):
        other_net = es.Network((2, 6, 6), [es.Flatten(), es.Linear(np.ones((3, 72))), es.Readout()])
        es.simulate(other_net, ev[ev["t"] >= 10_000], engine=engine, resume=state)
    with pytest.raises(ValueError, match="only the window's events"):
        es.simulate(net, ev, engine=engine, resume=state)                      # events before the window
    with pytest.raises(ValueError, match="after the resumed state"):
        es.simulate(net, ev[(ev["t"] >= 10_000) & (ev["t"] < 5000)], engine=engine, resume=state, pause_us=5000)
    other = "async" if engine == "stepped" else "stepped"
    with pytest.raises(ValueError, match="comes from engine"):
        es.simulate(net, ev[ev["t"] >= 10_000], engine=other, resume=state)
    with pytest.raises(ValueError, match="EngineState"):
        es.simulate(net, ev, engine=engine, resume={"k": 3})


def test_batch_t_stop_off_the_grid_is_refused_not_rounded_down():
    """It used to become floor(t_stop / dt) steps, silently dropping the last partial step's events."""
    net = es.Network((2, 2, 2), [es.Flatten(), es.Linear(np.ones((1, 8))), es.IF(threshold=0.5),
                                 es.Linear(np.ones((1, 1))), es.Readout()])
    ev = np.zeros(3, dtype=EVENT_DTYPE)
    ev["t"] = [100, 5200, 5400]
    with pytest.raises(ValueError, match=r"not on the grid.*t_stop_us=6000 \(or steps=6\)"):
        es.simulate(net, ev, engine="async", dt_us=1000, t_stop_us=5500, simultaneous="batch")
    batch = es.simulate(net, ev, engine="async", dt_us=1000, t_stop_us=6000, simultaneous="batch")
    stepped = es.simulate(net, ev, dt_us=1000)
    np.testing.assert_array_equal(batch.spikes_per_row, stepped.spikes_per_row)
    assert batch.spikes == 2
    # on the grid up to float rounding is still accepted
    assert es.simulate(net, ev[:0], engine="async", dt_us=0.1, t_stop_us=0.3, simultaneous="batch").times_us.size == 3


def test_serial_evaluate_with_windows_equals_unsplit():
    from eventsim.evaluate import evaluate
    net = toy_net(bias=True)
    data = [(long_recording(n=1500, span_us=40_000 + 9000 * i, seed=i), i % 3) for i in range(4)]
    whole = evaluate(net, data, dt_us=DT, engine="async")
    split = evaluate(net, data, dt_us=DT, engine="async", window_us=7000)
    assert split.records == whole.records
    assert {k: v for k, v in split.summary.items() if k not in ("wall_s", "samples_per_s")} == \
        {k: v for k, v in whole.summary.items() if k not in ("wall_s", "samples_per_s")}
    with pytest.raises(ValueError, match="window_us must be >= 0"):
        evaluate(net, data, dt_us=DT, window_us=-1)
