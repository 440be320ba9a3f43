"""Per-image time of a CIFAR-10 ResNet-20 (QCFS layout, full width) at T = 32: eventsim's stepped engine
and its asynchronous engine (batch mode) against the PyTorch reference that defines the model
(models/seeds/qcfs_resnet.py, its SNN mode), in one process on one thread.

Usage::

    python benchmarks/bench_resnet.py [--steps 32] [--images 4] [--dtype float32]

The model is untrained (``qcfs_resnet.randomise``: BatchNorm statistics and clips chosen so every layer
spikes); images are uniform noise normalised with CIFAR-10's channel statistics. Before timing, one image is
checked spike for spike in both engines. The PyTorch reference runs the T steps of one image as one
merged ``(T, 3, 32, 32)`` batch (how the public code runs), in float32 (its training dtype) unless
``--dtype float64``. Results go to ``benchmarks/results/resnet.json``.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import eventsim as es  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models" / "seeds"))
import qcfs_resnet  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def images(n: int, seed: int = 0) -> np.ndarray:
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])
    x = np.random.default_rng(seed).random((n, 3, 32, 32))
    return (x - mean[:, None, None]) / std[:, None, None]


def timed(fn, items) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per item; on a shared machine CPU time is the steadier."""
    wall, cpu = time.perf_counter(), time.process_time()
    for item in items:
        fn(item)
    return (time.perf_counter() - wall) / len(items), (time.process_time() - cpu) / len(items)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = qcfs_resnet.randomise(qcfs_resnet.resnet20(), seed=1).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet20.pth"
        torch.save(model.state_dict(), path)
        net = es.load(path, input_shape=(3, 32, 32))
    x = images(args.images + 1)
    T = args.steps
    opts = dict(steps=T, input_kind="analog")
    async_opts = dict(engine="async", simultaneous="batch", dt_us=1000, **opts)

    # correctness gate and warm-up (compilation) on image 0
    ref64 = model.double()
    with torch.no_grad():
        _, spikes = ref64.simulate(torch.as_tensor(x[:1]), T)
    a = es.simulate(net, x[0], record="spikes", **opts)
    b = es.simulate(net, x[0], record="spikes", **async_opts)
    for name, s in spikes.items():
        assert np.array_equal(a.rasters[name], s[:, 0].numpy()), name
        assert np.array_equal(b.rasters[name], s[:, 0].numpy()), name
    n_spikes = int(sum(s.sum() for s in spikes.values()))
    neurons = sum(int(np.prod(net.shapes[i])) for i, layer in enumerate(net.layers) if isinstance(layer, es.IF))

    ref = model.to(getattr(torch, args.dtype))
    xt = torch.as_tensor(x[1:], dtype=getattr(torch, args.dtype))
    with torch.no_grad():
        ref.simulate(xt[:1], T)                                           # warm-up
        t_torch = timed(lambda i: ref.simulate(xt[i:i + 1], T), range(args.images))
    t_stepped = timed(lambda i: es.simulate(net, x[1 + i], **opts), range(args.images))
    t_async = timed(lambda i: es.simulate(net, x[1 + i], **async_opts), range(args.images))
    out = {
        "model": "QCFS ResNet-20 (CIFAR-10, full width, 0.27 M weights), untrained, randomised BN",
        "steps": T, "images": args.images, "torch_dtype": args.dtype, "threads": 1,
        "spikes_per_image": n_spikes, "if_neurons": neurons,
        "spike_rate_per_neuron_step": n_spikes / (neurons * T),
        "wall_seconds_per_image": {"pytorch": t_torch[0], "stepped": t_stepped[0], "async_batch": t_async[0]},
        "cpu_seconds_per_image": {"pytorch": t_torch[1], "stepped": t_stepped[1], "async_batch": t_async[1]},
        "cpu_ratio_vs_pytorch": {"stepped": t_stepped[1] / t_torch[1], "async_batch": t_async[1] / t_torch[1]},
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
        "torch": torch.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resnet.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
