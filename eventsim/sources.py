"""Where evaluation data comes from: the shipped demo set, a folder, an HDF5 cache, one file, or a
tonic dataset. Every source is a sized sequence of ``(events, label)`` with ``sensor_size``
``(width, height)``; a label of ``-1`` means unknown."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

CACHE_SUFFIXES = (".h5", ".hdf5")


class FileList:
    """Unlabelled recordings (one file or every recording in a folder)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self.labels = np.full(len(self.files), -1, dtype=np.int64)
        self.sensor_size = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        from .events import read_events
        return read_events(self.files[index]), -1


class TonicSource:
    """A tonic dataset adapted to ``(events, label)`` with eventsim's event dtype."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        size = getattr(dataset, "sensor_size", None)
        self.sensor_size = tuple(size[:2]) if size is not None else None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        from .events import from_tonic
        events, label = self.dataset[index][:2]
        return from_tonic(events), int(np.asarray(label).ravel()[0]) if np.size(label) else -1


def open_source(data: str | None, split: str = "test", root: str | None = None) -> Any:
    """Resolve ``--data`` (and ``--root``) to a dataset; see the module docstring."""
    from . import events as ev
    if data is None or data == "demo":
        return ev.load_demo(split)
    path = Path(data)
    if path.is_dir():
        try:
            return ev.LocalNMNIST(path, split)
        except FileNotFoundError:
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in
                           (".bin", ".bs2", ".aedat", ".aedat4", ".dat", ".raw", ".npy"))
            if not files:
                raise ValueError(f"{path}: no recordings found (expected labels.csv, Train/Test/<digit>/*.bin, "
                                 "or .bin/.aedat/.aedat4/.dat/.raw files)") from None
            return FileList(files)
    if path.is_file():
        if path.suffix.lower() in CACHE_SUFFIXES:
            return ev.open_cache(path, split)
        return FileList([path])
    if root is not None:
        return TonicSource(ev.load_tonic_dataset(data, root, train=(split == "train")))
    raise ValueError(f"--data {data}: no such file or folder (for a tonic dataset name also pass --root)")
