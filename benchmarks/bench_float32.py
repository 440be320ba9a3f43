"""float32 against float64 in the asynchronous engine's fast path, on N-MNIST test recordings.

For each model (the shipped demo model ``eventsim.evaluate.DEMO_MODEL_PATH`` and the peers' conv
net, ``benchmarks/peers/peerkit/cases.py``) and each of the first ``--n`` recordings: one run with
``dtype="float64"`` and one with ``dtype="float32"`` (``record="spike_times"``, fast path, after a
warm-up that compiles both kernels). Prints per model: the fraction of recordings whose spikes
(every population's ``spike_times``: times and neurons) are identical, the fraction with the same
prediction (argmax of the final logits), the largest difference of the final logits, the
fraction of all spikes (both runs, all recordings) without an identical spike in the other run, and the
time of a float32 run over that of a float64 run (median over recordings, and total). The times
come from a second pass without ``record`` (rows on the 10 ms grid only: the spike-time log and
its sort would dominate): per recording the best of ``--repeat`` runs of each dtype, interleaved.

    python benchmarks/bench_float32.py [--n 100] [--repeat 3] [--data ../shared/data/nmnist]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

import eventsim as es  # noqa: E402
from eventsim.evaluate import DEMO_MODEL_PATH  # noqa: E402

OPTIONS = dict(engine="async", dt_us=10_000, record="spike_times", fast_path=True)
TIMING = dict(engine="async", dt_us=10_000, fast_path=True)


def _models() -> dict:
    from peerkit.cases import build_cases
    return {"demo": es.load(DEMO_MODEL_PATH), "peers conv": build_cases(["conv"])[0].network}


def _same_spikes(a, b) -> bool:
    ta, tb = a.info["spike_times"], b.info["spike_times"]
    return ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


def _unmatched(a, b) -> tuple[int, int]:
    """(spikes of ``a`` or ``b`` without an equal spike — time and neuron — in the other, all spikes)."""
    diff = total = 0
    for k, x in a.info["spike_times"].items():
        ca, cb = Counter(x.tolist()), Counter(b.info["spike_times"][k].tolist())
        diff += sum(((ca - cb) + (cb - ca)).values())
        total += len(x) + len(b.info["spike_times"][k])
    return diff, total


def _best(net, ev, dtype, repeat) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        es.simulate(net, ev, dtype=dtype, **TIMING)
        best = min(best, time.perf_counter() - t)
    return best


def compare(net: es.Network, recordings: list, repeat: int) -> dict:
    for dtype in ("float64", "float32"):   # compile both kernels (or load them from the disk cache)
        for options in (OPTIONS, TIMING):
            es.simulate(net, recordings[0], dtype=dtype, **options)
    same_spikes = same_pred = 0
    dlogit, unmatched, spikes = 0.0, 0, 0
    for ev in recordings:
        r64 = es.simulate(net, ev, dtype="float64", **OPTIONS)
        r32 = es.simulate(net, ev, dtype="float32", **OPTIONS)
        assert r64.info["path"] == r32.info["path"] == "fast"
        same_spikes += _same_spikes(r64, r32)
        d, n_all = _unmatched(r64, r32)
        unmatched, spikes = unmatched + d, spikes + n_all
        same_pred += int(np.argmax(r64.final_logits) == np.argmax(r32.final_logits))
        dlogit = max(dlogit, float(np.max(np.abs(r64.final_logits - r32.final_logits))))
    t64, t32 = np.zeros(len(recordings)), np.zeros(len(recordings))
    for i, ev in enumerate(recordings):
        for dtype, out in (("float64", t64), ("float32", t32)) if i % 2 else (("float32", t32), ("float64", t64)):
            out[i] = _best(net, ev, dtype, repeat)
    n = len(recordings)
    return dict(n=n, same_spikes=same_spikes / n, same_prediction=same_pred / n, max_logit_diff=dlogit,
                unmatched=unmatched / max(spikes, 1),
                ratio_median=float(np.median(t32 / t64)), ratio_total=t32.sum() / t64.sum(),
                ms64=1e3 * t64.mean(), ms32=1e3 * t32.mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="first N test recordings (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="timing: best of this many runs (default 3)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "nmnist")
    args = ap.parse_args(argv)
    files = sorted((args.data / "test").glob("*.bs2"))[:args.n]
    if not files:
        raise SystemExit(f"no N-MNIST recordings under {args.data / 'test'}")
    recordings = [es.read_events(f) for f in files]
    print(f"{len(files)} N-MNIST test recordings from {args.data / 'test'}; fast path, rows every 10 ms; "
          f"times: best of {args.repeat}, no record")
    print(f"{'model':<12} {'same spikes':>11} {'unmatched':>9} {'same pred.':>10} {'max |Δlogit|':>12} "
          f"{'f32/f64 median':>14} {'f32/f64 total':>13} {'ms f64':>7} {'ms f32':>7}")
    for name, net in _models().items():
        r = compare(net, recordings, args.repeat)
        print(f"{name:<12} {r['same_spikes']:>11.0%} {r['unmatched']:>9.1e} {r['same_prediction']:>10.0%} {r['max_logit_diff']:>12.2e} "
              f"{r['ratio_median']:>14.2f} {r['ratio_total']:>13.2f} {r['ms64']:>7.2f} {r['ms32']:>7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
