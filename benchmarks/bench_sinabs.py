"""A sinabs-exported CNN in sinabs vs eventsim's stepped engine vs eventsim's asynchronous engine.

Usage::

    python benchmarks/bench_sinabs.py [--recordings 20] [--bins-us 1000 100]

One process, one thread (torch, Numba and BLAS limited to 1), the same real N-MNIST test recordings
(``../shared/data/nmnist``) for every simulator. The network is the sum-pooling conv net of the peer
comparison (``benchmarks/peers``: conv 2→8 k3 → IF → sumpool 2 → conv 8→16 k3 → IF → sumpool 2 →
linear 1024→10 → IF), built in sinabs and exported with ``sinabs.nir.to_nir`` to a ``.nir`` file:

* **sinabs** runs the file with ``sinabs.nir.from_nir`` (float32, as it ships) on the events
  binned into frames of ``dt`` (the binning is timed too);
* **eventsim stepped** loads it with ``convention="sinabs"`` and runs the same bins;
* **eventsim async** loads it with ``convention="exact", reset="subtract"`` (NIR's continuous-time
  IF; no floor, which is a per-step clamp) and runs the events in continuous time, no bins.

Each row reports the mean wall time per recording (after one warm-up recording), accuracy by output
spike counts, spikes and synops per recording, and for eventsim stepped the fraction of recordings
whose every spike equals sinabs's (float32 sinabs against eventsim's float64: a rare spike at an
exact threshold boundary may flip; tests/test_sinabs.py checks exact equality against sinabs in
float64). Results go to ``benchmarks/results/sinabs.json``.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import eventsim as es  # noqa: E402
from eventsim.engines.inputs import events_to_steps  # noqa: E402
from eventsim.events import LocalNMNIST  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE / "peers"))


def _row(name, dt_us, times, preds, labels, spikes, synops, agree=None):
    preds, labels = np.asarray(preds), np.asarray(labels)
    row = {"simulator": name, "bin_us": dt_us, "ms_per_recording": 1e3 * float(np.mean(times[1:] if len(times) > 1 else times)),
           "accuracy": float(np.mean(preds == labels)), "spikes_per_recording": float(np.mean(spikes)),
           "synops_per_recording": None if synops is None else float(np.mean(synops))}
    if agree is not None:
        row["recordings_spike_for_spike_with_sinabs"] = agree
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--bins-us", type=int, nargs="+", default=[1000, 100])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "nmnist"))
    parser.add_argument("--out", default=str(RESULTS / "sinabs.json"))
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from peerkit.cases import build_cases
    from peerkit.sinabs_nir import SinabsRun, export_nir

    data = LocalNMNIST(args.data, "test")
    recs = [data[i] for i in range(min(args.recordings, len(data)))]
    labels = [int(label) for _, label in recs]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_nir(build_cases(["pool_sum"])[0].network, Path(tmp) / "cnn.nir")
        stepped_net = es.load(path, format="nir", convention="sinabs")
        async_net = es.load(path, format="nir", reset="subtract")
        sinabs_run = SinabsRun(path, double=False)
        out_name = stepped_net.layers[-1].name
        rows = []
        for dt in args.bins_us:
            t_s, p_s, sp_s, raster_s = [], [], [], []
            t_e, p_e, sp_e, sy_e, agree = [], [], [], [], 0
            for events, _ in recs:
                steps = int(events["t"][-1] // dt) + 1
                t0 = time.perf_counter()
                frames = events_to_steps(events, (2, 34, 34), dt, steps)
                spikes = sinabs_run(frames)
                t_s.append(time.perf_counter() - t0)
                counts = spikes[out_name].reshape(steps, -1).sum(axis=0)
                p_s.append(int(np.argmax(counts)) if counts.max() > 0 else -1)
                sp_s.append(sum(float(v.sum()) for v in spikes.values()))
                t0 = time.perf_counter()
                res = es.simulate(stepped_net, events, engine="stepped", dt_us=dt, steps=steps)
                t_e.append(time.perf_counter() - t0)
                p_e.append(res.prediction)
                sp_e.append(res.spikes)
                sy_e.append(res.synops)
                check = es.simulate(stepped_net, events, engine="stepped", dt_us=dt, steps=steps, record="spikes")
                agree += int(all(np.array_equal(check.rasters[k], spikes[k].reshape(check.rasters[k].shape))
                                 for k in check.rasters))
            rows.append(_row("sinabs (from_nir, float32)", dt, t_s, p_s, labels, sp_s, None))
            rows.append(_row("eventsim stepped (convention='sinabs')", dt, t_e, p_e, labels, sp_e, sy_e,
                             f"{agree}/{len(recs)}"))
        t_a, p_a, sp_a, sy_a = [], [], [], []
        for events, _ in recs:
            t0 = time.perf_counter()
            res = es.simulate(async_net, events, engine="async")
            t_a.append(time.perf_counter() - t0)
            p_a.append(res.prediction)
            sp_a.append(res.spikes)
            sy_a.append(res.synops)
        rows.append(_row("eventsim async, continuous time (convention='exact', reset='subtract')", None, t_a, p_a,
                         labels, sp_a, sy_a))
    import sinabs
    result = {"network": "sinabs-exported sum-pool CNN (peer net pool_sum, spiking output)",
              "recordings": len(recs), "threads": 1, "machine": platform.platform(),
              "versions": {"eventsim": es.__version__, "sinabs": sinabs.__version__, "torch": torch.__version__},
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'simulator':<72} {'bin µs':>7} {'ms/rec':>8} {'acc':>5} {'spikes':>9} {'synops':>10}  same spikes")
    for r in rows:
        syn = "" if r["synops_per_recording"] is None else f"{r['synops_per_recording']:.0f}"
        print(f"{r['simulator']:<72} {str(r['bin_us'] or '-'):>7} {r['ms_per_recording']:8.1f} {r['accuracy']:5.2f} "
              f"{r['spikes_per_recording']:9.0f} {syn:>10}  {r.get('recordings_spike_for_spike_with_sinabs', '')}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
