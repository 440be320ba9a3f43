"""Determinism: identical spikes and counts across runs, across processes with a fresh (empty)
Numba cache, with the kernels interpreted by Python (``NUMBA_DISABLE_JIT=1``), and between the
serial and the Dask evaluation of the async engine (the stepped engine's Dask run is compared in
``test_distributed.py``).

The fixed case is :mod:`hostile.determinism_case`: a conv/LIF/IF network on 600 events with a
burst of 40 simultaneous ones, through the stepped engine and both async modes.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hostile import determinism_case
from hostile.fuzzing import PROFILE

HERE = Path(__file__).resolve().parent
ALL = ["stepped", "async-none", "async-batch"]


@pytest.fixture(scope="module")
def in_process():
    """Results in this process (kernels from the shared, warm cache), computed twice."""
    first, second = determinism_case.run(ALL), determinism_case.run(ALL)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    return first


def _child(tmp_path, engines, **env):
    out = tmp_path / "child.npz"
    environ = dict(os.environ, **env)
    environ["PYTHONPATH"] = os.pathsep.join([str(HERE), environ.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, str(HERE / "hostile" / "determinism_case.py"), str(out), ",".join(engines)],
                   check=True, env=environ, timeout=1200)
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def _same(child, reference, engines):
    keys = [k for k in reference if k.split(":")[0] in engines]
    assert sorted(child) == sorted(keys)
    for key in keys:
        np.testing.assert_array_equal(child[key], reference[key], err_msg=key)
    assert any(child[k].sum() for k in keys if k.endswith(":spikes")), "the case produced no spikes"


def _fresh_jit(tmp_path, engines, in_process):
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    _same(_child(tmp_path, engines, NUMBA_CACHE_DIR=str(cache)), in_process, engines)
    # the child compiled (and cached) the kernels itself: proof that it did not load this process's
    assert list(cache.rglob("*.nbi")) and list(cache.rglob("*.nbc")), "the child compiled nothing"


def test_fresh_jit_equals_cached(tmp_path, in_process):
    """A process compiling the stepped kernels from scratch (empty NUMBA_CACHE_DIR) gets exactly the
    results of this process, whose kernels came from the cache."""
    _fresh_jit(tmp_path, ["stepped"], in_process)


@pytest.mark.skipif(PROFILE != "long", reason="compiling the async kernels from scratch takes minutes: "
                    "EVENTSIM_FUZZ_PROFILE=long (benchmarks/fuzz_long.py) runs it")
def test_fresh_jit_equals_cached_async(tmp_path, in_process):
    """The same for the async engine in both modes (its kernels take minutes to compile)."""
    _fresh_jit(tmp_path, ["async-none", "async-batch"], in_process)


def test_interpreted_kernels_equal_compiled(tmp_path, in_process):
    """With NUMBA_DISABLE_JIT=1 the kernels run as plain Python; fastmath is off
    (eventsim/config.py), so the compiled arithmetic is bit-for-bit the interpreted one."""
    _same(_child(tmp_path, ALL, NUMBA_DISABLE_JIT="1", NUMBA_CACHE_DIR=str(tmp_path / "unused")), in_process, ALL)


# ----------------------------------------------------------------------------- serial vs Dask, async


def test_async_evaluation_on_dask_equals_serial():
    pytest.importorskip("dask.distributed")
    import cloudpickle
    from dask.distributed import Client, LocalCluster

    import eventsim as es
    from eventsim.evaluate import evaluate
    cloudpickle.register_pickle_by_value(determinism_case)
    net, ev = determinism_case.case()
    net = es.Network(net.input_shape, net.layers, metadata={"dt_us": 1000})
    rng = np.random.default_rng(5)
    data = [(ev[np.sort(rng.choice(ev.size, 300, replace=False))], i % 3) for i in range(8)]
    volatile = {"wall_s", "samples_per_s", "workers"}
    serial = evaluate(net, data, engine="async")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    try:
        with Client(cluster) as client:
            dist = evaluate(net, data, engine="async", client=client)
    finally:
        cluster.close()
    assert {k: v for k, v in dist.summary.items() if k not in volatile} == \
        {k: v for k, v in serial.summary.items() if k not in volatile}
    assert dist.records == serial.records
    for a, b in zip(dist.traces, serial.traces):
        np.testing.assert_array_equal(a.logits, b.logits)
        np.testing.assert_array_equal(a.synops, b.synops)


def test_runs_sharing_a_compiled_network_equal_runs_on_fresh_copies():
    """The async engine compiles a Network object once and shares its float tables (weights,
    per-channel constants) between calls; each run's start, stop and snapshot times are its own
    state. Interleaved runs with other times and modes on one object equal the same runs each on
    a fresh Network (built from the same layers, so compiled anew)."""
    import eventsim as es
    from eventsim.engines import cache

    net, ev = determinism_case.case()
    runs = [dict(dt_us=1000), dict(dt_us=1000, t_stop_us=7_500.0, snapshot_times_us=[1_000.0, 2_500.0, 7_500.0]),
            dict(dt_us=1000, simultaneous="batch"), dict(t_start_us=3_000, dt_us=500, steps=20),
            dict(dt_us=1000, snapshot_synops=[500, 5_000], t_stop_us=18_000.0)]
    runs = runs + runs[::-1]
    for options in runs:
        window = ev[ev["t"] >= options.get("t_start_us", 0)]
        shared = es.simulate(net, window, engine="async", record="spike_times", **options)
        fresh = es.simulate(es.Network(net.input_shape, list(net.layers)), window, engine="async",
                            record="spike_times", **options)
        np.testing.assert_array_equal(shared.times_us, fresh.times_us, err_msg=str(options))
        np.testing.assert_array_equal(shared.logits, fresh.logits, err_msg=str(options))
        np.testing.assert_array_equal(shared.synops_per_row, fresh.synops_per_row, err_msg=str(options))
        for name, times in fresh.info["spike_times"].items():
            np.testing.assert_array_equal(shared.info["spike_times"][name], times, err_msg=f"{options} {name}")
    assert shared.spikes > 0
    # one compiled network per (input kind, convention, dt, mode) on the shared object, dropped with
    # it (beside them the cache holds the fast paths' generated kernels of those compiled networks)
    key = id(net)
    compiled = [k for k in cache._CACHES[key][1] if isinstance(k, tuple) and k[0] == "async"]
    assert sorted(compiled, key=str) == sorted([("async", True, "all", 1000, False), ("async", True, "all", 1000, True),
                                                ("async", True, "all", 500, False)], key=str)
    del net
    gc.collect()
    assert key not in cache._CACHES


def test_stepped_runs_sharing_weight_tables_equal_runs_on_fresh_copies():
    """The stepped engine derives out-degrees and transposed weights once per Network object and
    synop convention. With a third of the weights zero the two conventions count differently;
    interleaved runs on one object must equal runs on fresh copies, and the counts must follow
    a brute-force count of the non-zero synapses that each delivered spike crosses."""
    import eventsim as es
    from eventsim.engines import cache

    rng = np.random.default_rng(7)
    conv = rng.normal(0.4, 0.5, (4, 2, 3, 3)) * (rng.random((4, 2, 3, 3)) > 0.33)
    fc = rng.normal(0.2, 0.5, (5, 64)) * (rng.random((5, 64)) > 0.33)
    layers = [es.Conv2d(conv, padding=1), es.IF(threshold=1.0), es.SumPool2d(2), es.Flatten(), es.Linear(fc),
              es.IF(threshold=1.0), es.Linear(rng.normal(0, 1, (3, 5))), es.Readout()]
    net = es.Network((2, 8, 8), layers)
    ev = np.zeros(300, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    ev["t"] = np.sort(rng.integers(0, 10_000, 300))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 8, 300), rng.integers(0, 8, 300), rng.integers(0, 2, 300)
    results = {}
    for convention in ["all", "nonzero", "all", "nonzero"]:
        shared = es.simulate(net, ev, dt_us=1000, synop_convention=convention, record="spikes")
        fresh = es.simulate(es.Network(net.input_shape, list(net.layers)), ev, dt_us=1000,
                            synop_convention=convention, record="spikes")
        np.testing.assert_array_equal(shared.synops_per_row, fresh.synops_per_row)
        np.testing.assert_array_equal(shared.logits, fresh.logits)
        results[convention] = shared
    # brute force for the Linear layer: spikes of the pooled first layer × non-zero weights per input
    pooled = results["nonzero"].rasters["1.IF"].reshape(-1, 4, 4, 2, 4, 2).sum(axis=(3, 5)).reshape(-1, 64)
    assert results["nonzero"].synops_per_layer["4.Linear"] == int((pooled * (fc != 0).sum(axis=0)).sum())
    assert results["all"].synops_per_layer["4.Linear"] == int(pooled.sum()) * 5
    assert results["nonzero"].synops < results["all"].synops
    assert set(cache._CACHES[id(net)][1]) == {("stepped", "all"), ("stepped", "nonzero")}
