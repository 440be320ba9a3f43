"""A fixed simulation case for the determinism tests, runnable in a fresh process.

``python tests/hostile/determinism_case.py OUT.npz ENGINES`` builds the same seeded network and
event stream every time, runs each engine in ``ENGINES`` (comma-separated: ``stepped``,
``async-none``, ``async-batch``) and saves logits, per-row counts and spike rasters or spike logs
to ``OUT.npz``. Run under different ``NUMBA_CACHE_DIR`` / ``NUMBA_DISABLE_JIT`` settings, the
files must be identical to the results computed in the test process.
"""
from __future__ import annotations

import sys

import numpy as np


def case():
    import eventsim as es
    rng = np.random.default_rng(20240611)
    net = es.Network((2, 8, 8), [
        es.Conv2d(rng.normal(0.2, 0.6, (4, 2, 3, 3)), bias=rng.normal(0, 0.05, 4), padding=1),
        es.LIF(leak=0.85, threshold=0.9), es.AvgPool2d(2), es.Flatten(),
        es.Linear(rng.normal(0, 0.4, (6, 64))), es.IF(threshold=0.7, reset="zero"),
        es.Linear(rng.normal(0, 0.5, (3, 6))), es.Readout()])
    n = 600
    ev = np.zeros(n, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    ev["t"] = np.sort(rng.integers(0, 20_000, n))
    ev["t"][100:140] = ev["t"][100]                      # a burst of ties
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 8, n), rng.integers(0, 8, n), rng.integers(0, 2, n)
    return net, ev


def run(engines: list[str]) -> dict:
    import eventsim as es
    net, ev = case()
    out = {}
    for engine in engines:
        if engine == "stepped":
            res = es.simulate(net, ev, dt_us=1000, record="spikes")
            extra = {f"raster/{k}": v for k, v in res.rasters.items()}
        else:
            mode = engine.split("-")[1]
            res = es.simulate(net, ev, engine="async", simultaneous=mode, dt_us=1000, record="spike_times")
            extra = {f"log/{k}": np.stack([v["t_us"], v["neuron"].astype(np.float64)]) for k, v in
                     res.info["spike_times"].items()}
        out.update({f"{engine}:logits": res.logits, f"{engine}:spikes": res.spikes_per_row,
                    f"{engine}:synops": res.synops_per_row,
                    **{f"{engine}:{k}": v for k, v in extra.items()}})
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **run(sys.argv[2].split(",")))
