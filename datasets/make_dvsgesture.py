"""Build an HDF5 event cache of DVS Gesture from tonic's local copy (no download).

    python datasets/make_dvsgesture.py --root /path/to/tonic_root --out dvsgesture.h5 [--partial]

``--root`` is tonic's ``save_to`` folder: ``DVSGesture/ibmGestureTrain/<user>/<class>.npy`` and
``DVSGesture/ibmGestureTest/...`` as extracted from tonic's archives (Amir et al. 2017, CC BY 4.0).
``--partial`` accepts a folder with only some of the files. The original IBM release is AEDAT 3.1,
which eventsim does not read; use tonic's preprocessed files.
"""
from __future__ import annotations

import sys

from _recipe import parser, write

from eventsim.events import load_tonic_dataset

def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__.splitlines()[0], "dvsgesture.h5")
    ap.add_argument("--partial", action="store_true", help="accept a partial folder")
    args = ap.parse_args(argv)
    splits = {}
    for split, train in (("train", True), ("test", False)):
        try:
            splits[split] = load_tonic_dataset("DVSGesture", args.root, partial=args.partial, train=train)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    prov = {"dataset": "DVS Gesture", "recipe": "datasets/make_dvsgesture.py", "root": str(args.root),
            "reader": "tonic.datasets.DVSGesture", "reference": "Amir et al. 2017, CVPR", "licence": "CC BY 4.0"}
    return write(args.out, splits, sensor_size=(128, 128), classes=list(splits["train"].classes), provenance=prov,
                 progress=not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(main())
