"""Build an HDF5 event cache of N-MNIST from a local folder (nothing is downloaded).

    python datasets/make_nmnist.py --root /path/to/nmnist --out nmnist.h5

``--root`` holds either ``labels.csv`` (``split,file,label``; e.g. the shared 1100-file subset) or
the original archive layout ``Train|Test/<digit>/*.bin`` (optionally under ``NMNIST/``), complete or
partial. Download N-MNIST from its Mendeley Data record (doi 10.17632/468j46mzdv.1; Orchard et al.
2015, CC BY-SA 4.0) and extract it under ``--root``.
"""
from __future__ import annotations

import sys

from _recipe import parser, write

from eventsim.events import FileSamples, LocalNMNIST, read_nmnist


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__.splitlines()[0], "nmnist.h5")
    ap.add_argument("--splits", nargs="+", default=["train", "test"], choices=["train", "test"])
    args = ap.parse_args(argv)
    splits = {}
    for split in args.splits:
        try:
            ds = LocalNMNIST(args.root, split)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        splits[split] = FileSamples(list(zip(ds.files, ds.labels)), reader=read_nmnist, root=args.root)
    prov = {"dataset": "N-MNIST", "recipe": "datasets/make_nmnist.py", "root": str(args.root),
            "reference": "Orchard et al. 2015, Front. Neurosci. 9:437", "licence": "CC BY-SA 4.0"}
    return write(args.out, splits, sensor_size=(34, 34), classes=[str(d) for d in range(10)], provenance=prov,
                 progress=not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(main())
