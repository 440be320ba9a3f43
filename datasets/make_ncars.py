"""Build an HDF5 event cache of N-CARS from the original Prophesee ``.dat`` files (no download).

    python datasets/make_ncars.py --root /path/to/N-CARS --out ncars.h5

``--root`` holds ``n-cars_train/`` and ``n-cars_test/``, each with ``background/`` (label 0) and
``cars/`` (label 1) folders of ``*_td.dat`` files (Sironi et al. 2018; from Prophesee after a
form). Crops are at most 120 x 100 pixels (tonic's sensor size for N-CARS).
"""
from __future__ import annotations

import sys

from _recipe import parser, write

from eventsim.events import FileSamples, folder_samples, read_prophesee_dat

CLASSES = ["background", "cars"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__.splitlines()[0], "ncars.h5")
    args = ap.parse_args(argv)
    splits = {}
    for split in ("train", "test"):
        try:
            items, _ = folder_samples(args.root / f"n-cars_{split}", (".dat",), CLASSES)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        splits[split] = FileSamples(items, lambda p: read_prophesee_dat(p, sensor_size=(120, 100)), args.root)
    prov = {"dataset": "N-CARS", "recipe": "datasets/make_ncars.py", "root": str(args.root),
            "reference": "Sironi et al. 2018, CVPR (HATS)", "licence": "Prophesee research licence (see the download form)"}
    return write(args.out, splits, sensor_size=(120, 100), classes=CLASSES, provenance=prov,
                 progress=not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(main())
