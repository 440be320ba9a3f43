"""Dask evaluation equals the serial run exactly, also when a worker is killed mid-run, also when
recordings are split into chains of window tasks whose engine state travels between workers."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
import cloudpickle  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402

import eventsim as es  # noqa: E402
from eventsim.evaluate import evaluate  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers cannot import test modules

EVENT_DTYPE = [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")]
VOLATILE = {"wall_s", "samples_per_s", "workers"}


def toy_net():
    rng = np.random.default_rng(0)
    return es.Network((2, 6, 6), [es.Conv2d(rng.normal(0.3, 0.5, (4, 2, 3, 3)), padding=1), es.LIF(leak=0.9),
                                  es.SumPool2d(2), es.Flatten(), es.Linear(rng.normal(0, 0.5, (3, 36))),
                                  es.Readout()], metadata={"dt_us": 1000})


class SlowToySet:
    """Synthetic recordings; ``delay_s`` per read so that a worker can be killed mid-run."""

    sensor_size = (6, 6)

    def __init__(self, n, delay_s=0.0):
        self.n, self.delay_s = n, delay_s

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        m = 150
        ev = np.zeros(m, dtype=EVENT_DTYPE)
        ev["t"] = np.sort(rng.integers(0, 3000 + 500 * (i % 5), m))
        ev["x"], ev["y"], ev["p"] = rng.integers(0, 6, m), rng.integers(0, 6, m), rng.integers(0, 2, m)
        time.sleep(self.delay_s)
        return ev, i % 3


def stable(summary):
    return {k: v for k, v in summary.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    with Client(cluster) as c:
        yield c
    cluster.close()


def test_distributed_equals_serial(client):
    net, data = toy_net(), SlowToySet(40)
    serial = evaluate(net, data, cutoff="gap", cutoff_params={"beta": 1.0})
    dist = evaluate(net, data, cutoff="gap", cutoff_params={"beta": 1.0}, client=client)
    assert stable(dist.summary) == stable(serial.summary)
    assert dist.records == serial.records
    assert sum(w["samples"] for w in dist.summary["workers"].values()) == 40


class KillOnce:
    """A progress sink that kills a busy worker process the first time results arrive."""

    def __init__(self, client):
        self.client, self.killed = client, None

    def update(self, done):
        if self.killed is None:
            busy = [w for w, tasks in self.client.processing().items() if tasks]
            if busy:
                self.killed = busy[0]
                try:
                    self.client.run(os._exit, 1, workers=[busy[0]], wait=False)
                except Exception:
                    pass


def test_killed_worker_is_retried_and_samples_count_once(client):
    from eventsim.distributed import trace_distributed
    net, data = toy_net(), SlowToySet(48, delay_s=0.05)
    options = dict(engine="stepped", dt_us=1000.0, steps=None, synop_convention="all")
    killer = KillOnce(client)
    traces, stats = trace_distributed(net, data, list(range(48)), options, client=client, chunk=4, progress=killer)
    assert killer.killed is not None, "no worker was killed: the test did not exercise recovery"
    assert [t.index for t in traces] == list(range(48))
    serial = evaluate(net, data)
    for a, b in zip(traces, serial.traces):
        np.testing.assert_array_equal(a.logits, b.logits[: len(a.logits)])
        np.testing.assert_array_equal(a.synops, b.synops[: len(a.synops)])
    assert sum(s["samples"] for s in stats.values()) == 48


class LongToySet(SlowToySet):
    """Recordings of 3-5 ms at dt 1 ms, so that ``window_us=1000`` splits each into 3-5 windows."""


@pytest.mark.parametrize("engine", ["stepped", "async"])
def test_windowed_chains_equal_serial(client, engine):
    """Every sample is a chain of window tasks whose engine state travels between workers."""
    net, data = toy_net(), LongToySet(24)
    serial = evaluate(net, data, engine=engine, cutoff="gap", cutoff_params={"beta": 1.0})
    dist = evaluate(net, data, engine=engine, cutoff="gap", cutoff_params={"beta": 1.0}, client=client,
                    window_us=1000)
    assert stable(dist.summary) == stable(serial.summary)
    assert dist.records == serial.records
    assert sum(w["samples"] for w in dist.summary["workers"].values()) == 24


def test_killed_worker_mid_chain_redoes_a_window(client):
    from eventsim.distributed import trace_distributed
    net, data = toy_net(), SlowToySet(16, delay_s=0.05)
    options = dict(engine="async", dt_us=1000.0, steps=None, synop_convention="all", window_us=1000)
    killer = KillOnce(client)
    traces, stats = trace_distributed(net, data, list(range(16)), options, client=client, chunk=2, progress=killer)
    assert killer.killed is not None, "no worker was killed: the test did not exercise recovery"
    from eventsim.samples import trace_sample
    assert [t.index for t in traces] == list(range(16))
    for i, a in enumerate(traces):
        b = trace_sample(net, *SlowToySet(16)[i], i, engine="async", dt_us=1000.0)     # unsplit, serial
        np.testing.assert_array_equal(a.logits, b.logits)
        np.testing.assert_array_equal(a.synops, b.synops)
    assert sum(s["samples"] for s in stats.values()) == 16


def test_chunks_are_guided_and_cover_every_sample():
    from eventsim.distributed import MAX_CHUNK, chunk_sizes
    for n, w in ((1, 1), (7, 2), (1100, 2), (10_000, 64)):
        sizes = chunk_sizes(n, w)
        assert sum(sizes) == n and max(sizes) <= MAX_CHUNK and sizes[-1] == 1
        assert sizes == sorted(sizes, reverse=True)
    assert len(chunk_sizes(1100, 2)) < 50


def test_local_cluster_settings():
    """Workers start without Dask's MALLOC_TRIM_THRESHOLD_ (+25 % CPU per sample) and profiler."""
    import dask

    from eventsim.distributed import open_client
    c = open_client(workers=1)
    try:
        nannies = list(c.cluster.workers.values())
        assert all("MALLOC_TRIM_THRESHOLD_" not in n.pre_spawn_env for n in nannies)
        assert set(c.run(lambda: dask.config.get("distributed.worker.profile.enabled")).values()) == {False}
    finally:
        cluster = c.cluster
        c.close()
        cluster.close()
