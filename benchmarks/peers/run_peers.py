"""eventsim vs NeuroBench, SpikingJelly and sinabs on the same networks, weights and N-MNIST recordings.

Usage::

    python benchmarks/peers/run_peers.py [--samples 100] [--time-samples 20] [--cases conv mlp ...]
    python benchmarks/peers/run_peers.py --render-only      # rewrite REPORT.md from peers.json

Runs every network of ``peerkit.cases`` on the first ``--samples`` real N-MNIST test recordings
(``../shared/data/nmnist``) in two input modes (event counts per 10 ms bin, and binary), in
eventsim's stepped engine and in every peer that imports here (``install_peers.sh`` installs
them; a missing one is skipped and named in the report). Compares predictions, spike rasters and
synops per layer exactly, per sample; times each tool's CPU simulation on one thread on the first
``--time-samples`` recordings. Then issue #19's targets (:mod:`peerkit.targets`): the asynchronous
engine in continuous time (its compiled fast path, checked) against the stepped engine, sinabs and
SpikingJelly at 10 ms bins and sinabs at 1 ms bins, batch mode against the stepped engine, each
printed with its ratio and PASS/MISS, and the resolution sweep (10, 1 and 0.1 ms bins; the 0.1 ms
bins on the first ``--fine-samples`` recordings). ``--keep-comparisons`` reuses the exact
comparisons of the existing JSON and re-times only. Writes ``benchmarks/results/peers.json`` and
``benchmarks/peers/REPORT.md`` (the README section at its top, also written to ``docs/peers.md``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")           # one core for every tool
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache"))
sys.path.insert(0, str(HERE))

import warnings  # noqa: E402

from peerkit import report  # noqa: E402
from peerkit.cases import CASES, build_cases  # noqa: E402
from peerkit.data import MODES, load_frames, nmnist_root  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "peers.json"
REPORT = HERE / "REPORT.md"
DOCS = ROOT / "docs" / "peers.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="recordings compared per network (default 100)")
    parser.add_argument("--time-samples", type=int, default=20, help="recordings timed per network (default 20)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--report", default=str(REPORT))
    parser.add_argument("--docs", default=str(DOCS), help="the docs page (README-ready part of the report)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the report from the existing JSON")
    parser.add_argument("--fine-samples", type=int, default=5,
                        help="recordings timed at 0.1 ms bins (3,400 steps) in the resolution sweep (default 5)")
    parser.add_argument("--keep-comparisons", action="store_true",
                        help="reuse the exact comparisons (rows, repro) of the existing JSON, re-time only")
    parser.add_argument("--no-targets", action="store_true", help="skip issue #19's targets and the resolution sweep")
    args = parser.parse_args(argv)
    if args.render_only:
        import json
        report.write(json.loads(Path(args.json).read_text()), Path(args.json), Path(args.report), Path(args.docs))
        return 0

    import torch
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")                       # peers' deprecation chatter
    from peerkit.compare import PEERS, compare_case, time_case
    from peerkit.targets import format_targets, load_events, time_targets
    statuses = {name: module.status() for name, module in PEERS.items()}
    peers = {name: PEERS[name] for name, st in statuses.items() if st.available}
    for st in statuses.values():
        print(f"{st.name}: " + (f"{st.version}" if st.available else f"SKIPPED ({st.reason})"), file=sys.stderr)

    t0 = time.time()
    kept = None
    if args.keep_comparisons:
        import json
        kept = json.loads(Path(args.json).read_text())
        args.samples = args.time_samples
    frames, labels = load_frames(args.samples, nmnist_root())
    rows, timings, targets = [], {}, {}
    events = [] if args.no_targets else load_events(args.time_samples, nmnist_root())
    for case in build_cases(args.cases):
        if kept is None:
            for mode in MODES:
                rows.append(compare_case(case, frames, labels, mode, peers))
                print(f"{case.name:12s} {mode:7s} compared on {len(frames)} recordings ({time.time() - t0:.0f} s)",
                      file=sys.stderr)
        timings[case.name] = time_case(case, frames[:args.time_samples], peers)
        print(f"{case.name:12s} timed ({time.time() - t0:.0f} s)", file=sys.stderr)
        if events:
            targets[case.name] = time_targets(case, events, peers, args.fine_samples)
            print(format_targets({case.name: targets[case.name]}), flush=True)
            print(f"{case.name:12s} targets and resolution sweep timed ({time.time() - t0:.0f} s)", file=sys.stderr)
    results = {"info": report.machine_info(statuses), "samples": len(frames),
               "time_samples": min(args.time_samples, len(frames)), "rows": rows, "timings": timings,
               "repro": None, "targets": targets}
    if kept is not None:
        results.update(samples=kept["samples"], rows=kept["rows"], repro=kept["repro"],
                       comparisons_date=kept["info"]["date"])
    else:
        results["repro"] = report.repro_rows(peers)
    if targets:
        print("\n" + format_targets(targets))
    report.write(results, Path(args.json), Path(args.report), Path(args.docs))
    print(f"wrote {args.json} and {args.report} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
