"""Print the minimal reproducing cases of every counting difference between eventsim and the peers.

Usage::

    python benchmarks/peers/repro_counts.py

See ``peerkit/repro.py`` for the cases. Columns: eventsim under ``"all"`` and ``"nonzero"``,
eventsim ``"nonzero"`` on the input clipped to one event per pixel and bin, then each peer's own
count (a peer that does not import here is left out).
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(HERE.parents[1] / "build" / "numba-cache"))
sys.path.insert(0, str(HERE))

from peerkit.compare import PEERS  # noqa: E402
from peerkit.repro import count_all, repro_cases  # noqa: E402


def main() -> int:
    warnings.simplefilter("ignore")
    peers = {name: m for name, m in PEERS.items() if m.status().available}
    cols = ["eventsim_all", "eventsim_nonzero", "eventsim_nonzero_binarised", *peers]
    print(f"{'case':15s} {'layer':10s} " + " ".join(f"{c:>26s}" for c in cols))
    for case in repro_cases():
        row = count_all(case, peers)
        print(f"{row['case']:15s} {row['layer']:10s} " + " ".join(f"{row[c]:>26d}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
