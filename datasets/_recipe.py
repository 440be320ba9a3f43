"""Shared command-line plumbing of the dataset recipes (scripts, not an import package)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from eventsim.events import build_cache  # noqa: E402


def parser(description: str, default_out: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--root", type=Path, required=True, help="folder holding the locally downloaded original files")
    ap.add_argument("--out", type=Path, default=Path(default_out), help=f"output HDF5 cache (default {default_out})")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def write(out: Path, splits: Mapping[str, Any], *, sensor_size: tuple[int, int], classes: list[str],
          provenance: dict[str, Any], progress: bool = True) -> int:
    empty = [name for name, s in splits.items() if len(s) == 0]
    if empty:
        print(f"error: no samples for split(s) {empty}", file=sys.stderr)
        return 2
    path = build_cache(out, splits, sensor_size=sensor_size, classes=classes, provenance=provenance,
                       progress=progress)
    counts = ", ".join(f"{k}: {len(v)}" for k, v in splits.items())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB; {counts})")
    return 0
