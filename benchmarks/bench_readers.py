"""Reader throughput (events/s) of eventsim vs tonic.io on the shared real files, in one process.

    python benchmarks/bench_readers.py [--data ../shared/data] [--min-seconds 0.5] [--json benchmarks/results/readers.json]

For each format the same files are read by eventsim and by the tonic reader (or the reader tonic
depends on, for Prophesee .dat); each timing is the best of several rounds of at least
``--min-seconds``. Prints a markdown table; writes the numbers as JSON.
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

from eventsim import events as E  # noqa: E402

TONIC_NMNIST_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])


def _time(fn, files, min_seconds: float, rounds: int = 3) -> tuple[float, int]:
    """Best seconds per pass over ``files`` and the events of one pass."""
    n_events = sum(len(fn(f)) for f in files)  # warm-up (file cache, imports)
    best = float("inf")
    for _ in range(rounds):
        passes, start = 0, time.perf_counter()
        while True:
            for f in files:
                fn(f)
            passes += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / passes)
    return best, n_events


def _tonic_aedat2(path):
    import tonic.io
    version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    a = raw["address"]
    return tonic.io.make_structured_array((a >> 1) & 0x7F, (a >> 8) & 0x7F, raw["timeStamp"], 1 - (a & 1))


def _tonic_aedat4(path):
    import tonic.io
    return tonic.io.read_aedat4(str(path))


def _expelliarmus_dat(path):
    import expelliarmus
    return expelliarmus.Wizard(encoding="dat").read(str(path))


def cases(data: Path):
    nmnist = sorted((data / "nmnist").glob("t*/*.bs2"))
    yield ("N-MNIST .bin (1100 files)", nmnist, E.read_nmnist,
           "tonic.io.read_mnist_file", lambda p: __import__("tonic.io").io.read_mnist_file(str(p), dtype=TONIC_NMNIST_DTYPE))
    yield ("AEDAT 2.0 DVS128", [data / "aedat2-dvs128" / "alex_walking_again.aedat"], E.read_aedat2,
           "tonic.io.get_aer_events_from_file + address decode", _tonic_aedat2)
    yield ("AEDAT 4.0 LZ4", [data / "aedat4-dvxplorer" / "sample.aedat4"], E.read_aedat4,
           "tonic.io.read_aedat4", _tonic_aedat4)
    yield ("Prophesee .dat EVT2D (2 files)", sorted((data / "ncars").glob("*.dat")), E.read_prophesee_dat,
           "expelliarmus (tonic dependency; tonic.io has no .dat reader)", _expelliarmus_dat)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="eventsim reader throughput vs tonic")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EVENTSIM_SHARED_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "readers.json")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: shared data not found at {args.data} (pass --data)", file=sys.stderr)
        return 2
    rows = []
    for name, files, ours, ref_name, ref in cases(args.data):
        sec, n = _time(ours, files, args.min_seconds)
        row = {"format": name, "files": len(files), "events": n, "eventsim_s": sec, "eventsim_ev_per_s": n / sec,
               "reference": ref_name}
        try:
            rsec, rn = _time(ref, files, args.min_seconds)
            row.update(reference_s=rsec, reference_ev_per_s=rn / rsec, reference_events=rn, speedup=rsec / sec)
        except Exception as exc:  # noqa: BLE001 - report why the reference could not run
            row.update(reference_s=None, reference_ev_per_s=None, speedup=None,
                       reference_error=f"{type(exc).__name__}: {exc}"[:160])
        rows.append(row)
    print("| format | files | events | eventsim (Mev/s) | reference | reference (Mev/s) | speed-up |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for r in rows:
        ref_rate = "n/a" if r["reference_ev_per_s"] is None else f"{r['reference_ev_per_s'] / 1e6:.1f}"
        speed = "n/a" if r["speedup"] is None else f"{r['speedup']:.1f}x"
        note = r["reference"] + (f" ({r['reference_error'].split(':')[0]})" if r.get("reference_error") else "")
        print(f"| {r['format']} | {r['files']} | {r['events']:,} | {r['eventsim_ev_per_s'] / 1e6:.1f} | {note} | "
              f"{ref_rate} | {speed} |")
    import tonic
    result = {"benchmark": "readers", "machine": {"python": platform.python_version(), "platform": platform.platform(),
                                                  "cpu_count": os.cpu_count(), "numpy": np.__version__,
                                                  "tonic": tonic.__version__},
              "min_seconds": args.min_seconds, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
