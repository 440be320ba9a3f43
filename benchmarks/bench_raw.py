"""Prophesee RAW: read throughput of eventsim vs expelliarmus (tonic's RAW backend) on the shared
samples, and an end-to-end run of a small conv net on the 1280x720 Gen4 recording downsampled to the
net's input, through the asynchronous engine.

    python benchmarks/bench_raw.py [--data ../shared/data] [--min-seconds 0.5] [--json benchmarks/results/raw.json]

Read timings are the best of three rounds of at least ``--min-seconds`` each, after a warm-up
(Numba's cache load, the OS file cache). Both readers return the same x, y, p (checked here); their
``t`` differs on the EVT 3.0 file, where expelliarmus turns backward TIME_LOW steps into 4 ms wraps.
The end-to-end part times reading + fitting (``downsample=10``: 1280x720 -> 128x72) and the
simulation separately, the simulation after one warm-up run (kernel compilation excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eventsim as es  # noqa: E402
from eventsim import events as E  # noqa: E402


def _best(fn, min_seconds: float, rounds: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        passes, start = 0, time.perf_counter()
        while True:
            fn()
            passes += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / passes)
    return best


def _expelliarmus(encoding: str, path: Path):
    try:
        from expelliarmus import Wizard
    except ImportError:
        return None
    wizard = Wizard(encoding=encoding)
    wizard.set_file(str(path))
    return wizard.read


def read_throughput(data: Path, min_seconds: float) -> list[dict]:
    rows = []
    for name, encoding in (("evt3_sample.raw", "evt3"), ("evt2_sample.raw", "evt2")):
        path = data / "prophesee-evt3" / name
        ours = E.read_raw(path)
        row = {"file": name, "events": int(len(ours)), "bytes": path.stat().st_size,
               "eventsim_s": _best(lambda: E.read_raw(path), min_seconds),
               "eventsim_stream_s": _best(lambda: sum(len(c) for c in E.iter_raw(path, chunk_words=1 << 16)),
                                          min_seconds)}
        read = _expelliarmus(encoding, path)
        if read is None:
            row["expelliarmus_s"] = None
        else:
            theirs = read()
            assert all(np.array_equal(ours[k], theirs[k]) for k in "xyp"), "x, y, p differ from expelliarmus"
            row["expelliarmus_s"] = _best(read, min_seconds)
            row["t_differs_on"] = int(np.count_nonzero(ours["t"] != theirs["t"]))
        rows.append(row)
    return rows


def conv_net(input_shape=(2, 72, 128), seed: int = 0) -> es.Network:
    """2x72x128 -> conv 3x3/2 (8) -> IF -> conv 3x3/2 (16) -> IF -> linear 10 -> readout."""
    rng = np.random.default_rng(seed)
    c, h, w = input_shape
    h1, w1 = (h - 3) // 2 + 1, (w - 3) // 2 + 1
    h2, w2 = (h1 - 3) // 2 + 1, (w1 - 3) // 2 + 1
    return es.Network(input_shape, [
        es.Conv2d(rng.normal(0.15, 0.2, (8, c, 3, 3)), stride=2), es.IF(threshold=1.0),
        es.Conv2d(rng.normal(0.05, 0.2, (16, 8, 3, 3)), stride=2), es.IF(threshold=1.0),
        es.Flatten(), es.Linear(rng.normal(0, 0.05, (10, 16 * h2 * w2))), es.Readout()])


def end_to_end(data: Path) -> dict:
    path = data / "prophesee-evt3" / "evt3_sample.raw"
    start = time.perf_counter()
    rec = es.fit_recording(path, "downsample=10")
    read_s = time.perf_counter() - start
    events = rec.events.copy()
    events["t"] -= events["t"][0]
    net = conv_net((2, rec.sensor_size[1], rec.sensor_size[0]))
    t_stop = float(events["t"][-1] + 1)
    es.simulate(net, events[:1000], engine="async", t_stop_us=t_stop)         # compile / load kernels
    start = time.perf_counter()
    res = es.simulate(net, events, engine="async", t_stop_us=t_stop)
    sim_s = time.perf_counter() - start
    return {"recording": path.name, "sensor_in": [1280, 720], "fitted": list(rec.sensor_size),
            "transform": rec.meta["transforms"], "events": int(len(events)), "read_fit_s": read_s,
            "simulate_s": sim_s, "events_per_s": len(events) / sim_s, "spikes": int(res.spikes),
            "synops": int(res.synops), "prediction": int(res.prediction)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EVENTSIM_SHARED_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "raw.json")
    args = ap.parse_args(argv)
    reads = read_throughput(args.data, args.min_seconds)
    e2e = end_to_end(args.data)
    print("| file | events | eventsim Mev/s | eventsim streamed (64 Ki words) Mev/s | expelliarmus Mev/s |")
    print("|---|---:|---:|---:|---:|")
    for r in reads:
        theirs = "not installed" if r["expelliarmus_s"] is None else f"{r['events'] / r['expelliarmus_s'] / 1e6:.1f}"
        print(f"| {r['file']} | {r['events']:,} | {r['events'] / r['eventsim_s'] / 1e6:.1f} | "
              f"{r['events'] / r['eventsim_stream_s'] / 1e6:.1f} | {theirs} |")
    print(f"\nend to end: {e2e['recording']} {e2e['sensor_in'][0]}x{e2e['sensor_in'][1]} -> "
          f"{e2e['fitted'][0]}x{e2e['fitted'][1]} ({'; '.join(e2e['transform'])}), {e2e['events']:,} events: "
          f"read + fit {e2e['read_fit_s']:.3f} s, async engine {e2e['simulate_s']:.3f} s = "
          f"{e2e['events_per_s'] / 1e6:.2f} Mev/s ({e2e['spikes']:,} spikes, {e2e['synops']:,} synops)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                     "cpus": os.cpu_count(), "reads": reads, "end_to_end": e2e}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
