"""Stepped engine vs a dense clock-driven PyTorch forward of the same network, in one process.

Usage::

    python benchmarks/bench_stepped.py [--steps 10 30] [--rates 0.01 0.05] [--repeat 3]

Both sides run the same N-MNIST-sized conv net (2×34×34 → conv16 → IF → pool → conv32 → IF →
pool → fc128 → IF → fc10) on the same Poisson event frames, on one thread. Reports the stepped
engine's delivered synops per second and the wall-time ratio PyTorch / eventsim (> 1 means
eventsim is faster). Results go to ``benchmarks/results/stepped.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import eventsim as es

RESULTS = Path(__file__).resolve().parent / "results"


def reference_net(seed: int = 0) -> es.Network:
    rng = np.random.default_rng(seed)
    return es.Network((2, 34, 34), [
        es.Conv2d(rng.normal(0, 0.3, (16, 2, 3, 3)), padding=1), es.IF(threshold=1.0),
        es.AvgPool2d(2),
        es.Conv2d(rng.normal(0, 0.15, (32, 16, 3, 3)), padding=1), es.IF(threshold=1.0),
        es.AvgPool2d(2), es.Flatten(),
        es.Linear(rng.normal(0, 0.05, (128, 2048))), es.IF(threshold=1.0),
        es.Linear(rng.normal(0, 0.1, (10, 128))), es.Readout()])


def torch_forward(net: es.Network, frames: np.ndarray):
    """Dense clock-driven forward of ``net`` in PyTorch (IF, subtract reset, strict >)."""
    import torch
    import torch.nn.functional as F
    layers = net.layers
    w = [torch.from_numpy(l.weight.astype(np.float32)) for l in layers if hasattr(l, "weight")]
    x_all = torch.from_numpy(frames.astype(np.float32))
    v = [None, None, None]
    out = torch.zeros(10)
    with torch.no_grad():
        for x in x_all:
            x = F.conv2d(x[None], w[0], padding=1)
            v[0] = x if v[0] is None else v[0] + x
            s = (v[0] > 1.0).float(); v[0] -= s
            x = F.conv2d(F.avg_pool2d(s, 2), w[1], padding=1)
            v[1] = x if v[1] is None else v[1] + x
            s = (v[1] > 1.0).float(); v[1] -= s
            x = F.linear(torch.flatten(F.avg_pool2d(s, 2), 1), w[2])
            v[2] = x if v[2] is None else v[2] + x
            s = (v[2] > 1.0).float(); v[2] -= s
            out += F.linear(s, w[3])[0]
    return out.numpy()


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.005, 0.02, 0.1],
                        help="input events per pixel per step")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    net = reference_net()
    rng = np.random.default_rng(1)
    warm = rng.poisson(0.02, size=(2, 2, 34, 34))
    es.simulate(net, warm)                      # JIT compile outside the timed region
    torch_forward(net, warm)

    rows = []
    for steps in args.steps:
        for rate in args.rates:
            frames = rng.poisson(rate, size=(steps, 2, 34, 34)).astype(np.int64)
            res = es.simulate(net, frames)
            t_es = best_of(lambda: es.simulate(net, frames), args.repeat)
            t_torch = best_of(lambda: torch_forward(net, frames), args.repeat)
            rows.append({"steps": steps, "input_rate": rate, "input_events": int(frames.sum()),
                         "synops": res.synops, "spikes": res.spikes,
                         "eventsim_s": t_es, "torch_s": t_torch,
                         "synops_per_s": res.synops / t_es, "speedup_vs_torch": t_torch / t_es})
    info = {"machine": platform.machine(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "torch_threads": 1, "numpy": np.__version__,
            "torch": torch.__version__}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stepped.json").write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    print("| steps | events/pixel/step | synops | eventsim ms | torch ms | synops/s | torch/eventsim |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['steps']} | {r['input_rate']} | {r['synops']:,} | {r['eventsim_s'] * 1e3:.1f} | "
              f"{r['torch_s'] * 1e3:.1f} | {r['synops_per_s'] / 1e6:.1f} M | {r['speedup_vs_torch']:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
