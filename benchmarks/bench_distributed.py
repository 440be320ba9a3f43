"""Speed-up of Dask evaluation (2 worker processes) over the serial run, on real N-MNIST.

Usage::

    python benchmarks/bench_distributed.py [--data ../shared/data/nmnist] [--workers 2] [--engine stepped]

Evaluates the shipped N-MNIST model on all 1100 recordings (train + test) serially and on a
LocalCluster, in the same process, checks that the results are identical, and reports the ratio.
From the measured per-sample and per-event cost it estimates the cluster size needed for DVS
Gesture and CIFAR10-DVS; those datasets' sizes are stated assumptions, printed with the estimate.
Results go to ``benchmarks/results/distributed.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

import eventsim as es
from eventsim.evaluate import evaluate
from eventsim.events import LocalNMNIST

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VOLATILE = {"wall_s", "samples_per_s", "workers"}

# Assumptions for the estimate (public dataset descriptions; events per sample are rough averages
# that scale the measured per-event cost, not measurements).
TARGETS = {
    "DVS Gesture (1342 recordings, 128×128, ~6 s each)": {"samples": 1342, "events_per_sample": 300_000},
    "CIFAR10-DVS (10000 recordings, 128×128, ~1.3 s each)": {"samples": 10_000, "events_per_sample": 200_000},
}


class Both:
    """Train and test splits as one sequence."""

    def __init__(self, root):
        self.parts = [LocalNMNIST(root, "train"), LocalNMNIST(root, "test")]
        self.sensor_size = (34, 34)

    def __len__(self):
        return sum(len(p) for p in self.parts)

    def __getitem__(self, i):
        first = len(self.parts[0])
        return self.parts[0][i] if i < first else self.parts[1][i - first]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nmnist"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine", default="stepped")
    parser.add_argument("--hours", type=float, default=1.0, help="target wall time for the estimate")
    args = parser.parse_args(argv)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache"))
    net = es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz")
    data = Both(args.data)
    evaluate(net, [data[0]], engine=args.engine)                    # warm the JIT

    t0 = time.perf_counter()
    serial = evaluate(net, data, engine=args.engine)
    t_serial = time.perf_counter() - t0
    from eventsim.distributed import open_client
    client = open_client(workers=args.workers)
    try:
        evaluate(net, [data[0]], engine=args.engine, client=client)     # start-up and warm-up not timed
        t0 = time.perf_counter()
        dist = evaluate(net, data, engine=args.engine, client=client)
        t_dist = time.perf_counter() - t0
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    same = ({k: v for k, v in serial.summary.items() if k not in VOLATILE}
            == {k: v for k, v in dist.summary.items() if k not in VOLATILE})
    n = len(data)
    events = sum(r["events"] for r in serial.records)
    per_sample = t_serial / n
    per_event = t_serial / events
    estimate = {}
    for name, spec in TARGETS.items():
        core_s = spec["samples"] * spec["events_per_sample"] * per_event
        estimate[name] = {**spec, "core_hours": core_s / 3600,
                          "workers_for_target": max(1, math.ceil(core_s / (args.hours * 3600)))}
    result = {"samples": n, "events": events, "engine": args.engine, "workers": args.workers,
              "serial_s": t_serial, "distributed_s": t_dist, "speedup": t_serial / t_dist,
              "identical_results": same, "serial_s_per_sample": per_sample, "serial_s_per_event": per_event,
              "accuracy": serial.summary["accuracy"], "cpu_count": os.cpu_count(),
              "estimate_target_hours": args.hours, "estimate": estimate}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "distributed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"| samples | serial s | {args.workers} workers s | speed-up | identical |")
    print("|---:|---:|---:|---:|:---:|")
    print(f"| {n} | {t_serial:.1f} | {t_dist:.1f} | {t_serial / t_dist:.2f}× | {'yes' if same else 'NO'} |")
    print(f"\nmeasured serial cost: {per_sample * 1e3:.2f} ms/sample, {per_event * 1e9:.0f} ns/input event")
    for name, e in estimate.items():
        print(f"- {name}: ~{e['core_hours']:.2f} core-hours → {e['workers_for_target']} one-core workers "
              f"for {args.hours:g} h (assumes {e['events_per_sample']:,} events/sample)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
