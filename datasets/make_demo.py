"""Regenerate the shipped demo set ``eventsim/data/demo/demo.h5`` (deterministic).

    python datasets/make_demo.py [--out PATH] [--n-train 300] [--n-test 100] [--seed SEED]

Each sample depends only on (seed, split, index); see ``eventsim.events.demo``. The test
``tests/test_events_demo.py`` regenerates samples and compares them event for event with the file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsim.events.demo import DEMO_PATH, DEMO_SEED, DEMO_SPLITS, build_demo_cache  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEMO_PATH, help=f"output HDF5 file (default {DEMO_PATH})")
    ap.add_argument("--n-train", type=int, default=DEMO_SPLITS["train"])
    ap.add_argument("--n-test", type=int, default=DEMO_SPLITS["test"])
    ap.add_argument("--seed", type=int, default=DEMO_SEED)
    args = ap.parse_args(argv)
    path = build_demo_cache(args.out, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
