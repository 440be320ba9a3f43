"""float32 against float64 in the asynchronous engine's fast path, on N-MNIST test recordings.

For each model (the shipped demo model ``eventsim.evaluate.DEMO_MODEL_PATH`` and the peers' conv
net, ``benchmarks/peers/peerkit/cases.py``) and each of the first ``--n`` recordings: one run with
``dtype="float64"`` and one with ``dtype="float32"`` (``record="spike_times"``, fast path, after a
warm-up that compiles both kernels). Prints per model: the fraction of recordings whose spikes
(every population's ``spike_times``: times and neurons) are identical, the fraction with the same
prediction (argmax of the final logits), the largest difference of the final logits, and the
time of a float32 run over that of a float64 run (median over recordings, and total).

    python benchmarks/bench_float32.py [--n 100] [--data ../shared/data/nmnist]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

import eventsim as es  # noqa: E402
from eventsim.evaluate import DEMO_MODEL_PATH  # noqa: E402

OPTIONS = dict(engine="async", dt_us=10_000, record="spike_times", fast_path=True)


def _models() -> dict:
    from peerkit.cases import build_cases
    return {"demo": es.load(DEMO_MODEL_PATH), "peers conv": build_cases(["conv"])[0].network}


def _same_spikes(a, b) -> bool:
    ta, tb = a.info["spike_times"], b.info["spike_times"]
    return ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


def compare(net: es.Network, recordings: list) -> dict:
    for dtype in ("float64", "float32"):   # compile both kernels (or load them from the disk cache)
        es.simulate(net, recordings[0], dtype=dtype, **OPTIONS)
    same_spikes = same_pred = 0
    ratios, t64, t32, dlogit = [], 0.0, 0.0, 0.0
    for ev in recordings:
        t = time.perf_counter()
        r64 = es.simulate(net, ev, dtype="float64", **OPTIONS)
        t1 = time.perf_counter()
        r32 = es.simulate(net, ev, dtype="float32", **OPTIONS)
        t2 = time.perf_counter()
        assert r64.info["path"] == r32.info["path"] == "fast"
        ratios.append((t2 - t1) / (t1 - t))
        t64, t32 = t64 + t1 - t, t32 + t2 - t1
        same_spikes += _same_spikes(r64, r32)
        same_pred += int(np.argmax(r64.final_logits) == np.argmax(r32.final_logits))
        dlogit = max(dlogit, float(np.max(np.abs(r64.final_logits - r32.final_logits))))
    n = len(recordings)
    return dict(n=n, same_spikes=same_spikes / n, same_prediction=same_pred / n, max_logit_diff=dlogit,
                ratio_median=float(np.median(ratios)), ratio_total=t32 / t64, ms64=1e3 * t64 / n, ms32=1e3 * t32 / n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="first N test recordings (default 100)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "nmnist")
    args = ap.parse_args(argv)
    files = sorted((args.data / "test").glob("*.bs2"))[:args.n]
    if not files:
        raise SystemExit(f"no N-MNIST recordings under {args.data / 'test'}")
    recordings = [es.read_events(f) for f in files]
    print(f"{len(files)} N-MNIST test recordings from {args.data / 'test'}; fast path, dt_us=10000 rows")
    print(f"{'model':<12} {'same spikes':>11} {'same pred.':>10} {'max |Δlogit|':>12} "
          f"{'f32/f64 median':>14} {'f32/f64 total':>13} {'ms f64':>7} {'ms f32':>7}")
    for name, net in _models().items():
        r = compare(net, recordings)
        print(f"{name:<12} {r['same_spikes']:>11.0%} {r['same_prediction']:>10.0%} {r['max_logit_diff']:>12.2e} "
              f"{r['ratio_median']:>14.2f} {r['ratio_total']:>13.2f} {r['ms64']:>7.2f} {r['ms32']:>7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
