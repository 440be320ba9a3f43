"""Build an HDF5 event cache of CIFAR10-DVS from the original jAER AEDAT 2.0 files (no download).

    python datasets/make_cifar10dvs.py --root /path/to/CIFAR10-DVS --out cifar10dvs.h5 [--test-per-class 100]

``--root`` has one folder per class (airplane, automobile, bird, cat, deer, dog, frog, horse, ship,
truck) of ``*.aedat`` DVS128 recordings (Li et al. 2017, figshare, CC BY 4.0). The dataset has no
official split: the last ``--test-per-class`` files of each class (in sorted order) form the test
split. Coordinates are stored as in the address (``flip_x``/``flip_y`` off; spikingjelly
transposes and mirrors them).
"""
from __future__ import annotations

import sys

from _recipe import parser, write

from eventsim.events import FileSamples, folder_samples, read_aedat2

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__.splitlines()[0], "cifar10dvs.h5")
    ap.add_argument("--test-per-class", type=int, default=100)
    args = ap.parse_args(argv)
    try:
        items, classes = folder_samples(args.root, (".aedat",), CLASSES)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train, test = [], []
    for label in range(len(classes)):
        mine = [it for it in items if it[1] == label]
        cut = max(len(mine) - args.test_per_class, 0)
        train += mine[:cut]
        test += mine[cut:]

    def reader(path):
        return read_aedat2(path, layout="dvs128", sort=True)

    splits = {"train": FileSamples(train, reader, args.root), "test": FileSamples(test, reader, args.root)}
    prov = {"dataset": "CIFAR10-DVS", "recipe": "datasets/make_cifar10dvs.py", "root": str(args.root),
            "split": f"last {args.test_per_class} files per class (sorted) are test",
            "reference": "Li et al. 2017, Front. Neurosci. 11:309", "licence": "CC BY 4.0"}
    return write(args.out, splits, sensor_size=(128, 128), classes=classes, provenance=prov,
                 progress=not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(main())
