"""tonic integration: accept tonic samples as they are and load tonic datasets from a local root.

eventsim never downloads. :func:`load_tonic_dataset` builds a tonic dataset whose ``download`` raises
a ``FileNotFoundError`` saying where the files were expected; with ``partial=True`` a folder holding
only some of the files is accepted (tonic's own check wants the full set, e.g. 10 000 N-MNIST test
files). :class:`LocalNMNIST` reads a partial N-MNIST folder with a ``labels.csv``
(``split,file,label``) or tonic's ``Train|Test/<digit>/*.bin`` layout without tonic.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .nmnist import NMNIST_SENSOR_SIZE, read_nmnist
from .validate import normalize_sensor_size, validate_events

__all__ = ["from_tonic", "TonicAdapter", "load_tonic_dataset", "LocalNMNIST"]


def from_tonic(sample: Any, sensor_size: Any = None) -> Any:
    """Convert a tonic sample or transform output to eventsim's validated events.

    Parameters
    ----------
    sample : numpy.ndarray or (events, target)
        A structured array with fields ``x``, ``y``, ``t``, ``p`` (any order, int64 in tonic), or a
        dataset item ``(events, target)``.
    sensor_size : tonic-style ``(W, H, P)`` or ``(W, H)``, optional

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, target)
    """
    if isinstance(sample, tuple) and len(sample) == 2:
        return validate_events(sample[0], sensor_size), sample[1]
    return validate_events(sample, sensor_size)


class TonicAdapter:
    """Wrap any tonic dataset (or sequence of ``(events, target)``) so items are validated eventsim events.

    Parameters
    ----------
    dataset : sequence
        Supports ``len`` and indexing; items ``(events, target)``.
    sensor_size : optional
        Default: ``dataset.sensor_size`` when present.
    """

    def __init__(self, dataset: Any, sensor_size: Any = None) -> None:
        self.dataset = dataset
        size = sensor_size if sensor_size is not None else getattr(dataset, "sensor_size", None)
        self.sensor_size = normalize_sensor_size(size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[np.ndarray, Any]:
        events, target = self.dataset[index]
        return validate_events(events, self.sensor_size, source=f"{self.dataset!r}[{index}]"), target

    def __iter__(self) -> Iterator[tuple[np.ndarray, Any]]:
        for i in range(len(self)):
            yield self[i]


def _tonic_class(name: str) -> type:
    import tonic.datasets as tds
    lookup = {n.lower(): n for n in dir(tds) if isinstance(getattr(tds, n), type)}
    if name.lower() not in lookup:
        raise ValueError(f"tonic has no dataset {name!r}; available: {sorted(lookup.values())}")
    return getattr(tds, lookup[name.lower()])


def load_tonic_dataset(name: str, root: str | os.PathLike, *, partial: bool = False, **kwargs: Any) -> Any:
    """Instantiate ``tonic.datasets.<name>(save_to=root, **kwargs)`` without ever downloading.

    Parameters
    ----------
    name : str
        tonic dataset class name, case-insensitive ("NMNIST", "DVSGesture", "CIFAR10DVS", ...).
    root : path
        The ``save_to`` folder; tonic expects ``root/<ClassName>/<folder>``.
    partial : bool, default False
        Accept a folder holding any number (>= 1) of extracted files, skipping tonic's archive and
        file-count checks.
    **kwargs
        Passed to the tonic class (``train=False``, ``transform=...``).

    Returns
    -------
    tonic.Dataset
        Its items are tonic's ``(events, target)``; wrap it in :class:`TonicAdapter` or pass it to
        :func:`eventsim.events.build_cache` directly.

    Raises
    ------
    FileNotFoundError
        When the files are not there; the message names the folder and the original archive.
    """
    base = _tonic_class(name)
    root = Path(root)

    def download(self: Any) -> None:
        where = Path(self.location_on_system, getattr(self, "folder_name", "") or "")
        archive = getattr(self, "filename", None) or getattr(self, "url", None) or "the original archive"
        raise FileNotFoundError(
            f"tonic.datasets.{base.__name__}: files not found under {where} (eventsim never downloads). "
            f"Download {archive} yourself and extract it there"
            + ("" if partial else ", or pass partial=True to use a folder holding only some of the files") + ".")

    def check_exists(self: Any) -> bool:
        folder = Path(self.location_on_system, getattr(self, "folder_name", "") or "")
        return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))

    attrs: dict[str, Any] = {"download": download}
    if partial:
        attrs["_check_exists"] = check_exists
    cls = type(base.__name__, (base,), attrs)
    return cls(save_to=str(root), **kwargs)


class LocalNMNIST:
    """N-MNIST from a local, possibly partial folder; a sequence of ``(events, label)``.

    Layouts, tried in order:

    1. ``root/labels.csv`` with columns ``split,file,label`` (file relative to ``root``), as in the
       shared N-MNIST subset;
    2. tonic's / the original archive's ``root/[NMNIST/]Train|Test/<digit>/*.bin``.

    Parameters
    ----------
    root : path
    split : {"train", "test"}
    transform : callable, optional
        Applied to the events of each item.
    sort : bool
        Sort files whose timestamps decrease instead of raising.

    Attributes
    ----------
    files : list of pathlib.Path
    labels : numpy.ndarray of int64
    sensor_size : (34, 34, 2) (tonic's convention: width, height, polarities)
    """

    sensor_size = (*NMNIST_SENSOR_SIZE, 2)
    classes = [str(d) for d in range(10)]

    def __init__(self, root: str | os.PathLike, split: str = "test", *, transform: Callable | None = None,
                 sort: bool = False) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"LocalNMNIST: split must be 'train' or 'test', got {split!r}")
        self.root, self.split, self.transform, self.sort = Path(root), split, transform, sort
        self.files, labels = self._find()
        self.labels = np.asarray(labels, dtype=np.int64)

    def _find(self) -> tuple[list[Path], list[int]]:
        csv_path = self.root / "labels.csv"
        if csv_path.is_file():
            files, labels = [], []
            with open(csv_path, newline="") as fh:
                reader = csv.DictReader(fh)
                missing = {"split", "file", "label"} - set(reader.fieldnames or [])
                if missing:
                    raise ValueError(f"{csv_path}: missing column(s) {sorted(missing)}; expected split,file,label")
                for row in reader:
                    if row["split"] == self.split:
                        files.append(self.root / row["file"])
                        labels.append(int(row["label"]))
            absent = [f for f in files if not f.is_file()]
            if absent:
                raise FileNotFoundError(f"{csv_path} lists {len(absent)} file(s) that are missing, first {absent[0]}")
            if files:
                return files, labels
        folder_name = "Train" if self.split == "train" else "Test"
        for base in (self.root / "NMNIST", self.root):
            folder = base / folder_name
            if folder.is_dir():
                pairs = sorted((p for p in folder.glob("[0-9]/*.bin")), key=lambda p: (p.parent.name, p.name))
                if pairs:
                    return pairs, [int(p.parent.name) for p in pairs]
        raise FileNotFoundError(
            f"LocalNMNIST: no {self.split} files under {self.root}: expected labels.csv (split,file,label) or "
            f"{folder_name}/<digit>/*.bin (optionally under NMNIST/). eventsim never downloads; fetch N-MNIST "
            "from its Mendeley Data record (doi 10.17632/468j46mzdv.1) and extract it there.")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        events = read_nmnist(self.files[index], sort=self.sort)
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.labels[index])

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        for i in range(len(self)):
            yield self[i]

    def samples(self) -> Iterator[tuple[np.ndarray, int, str]]:
        """Yield ``(events, label, file name)`` for :func:`eventsim.events.build_cache`."""
        for i in range(len(self)):
            ev, label = self[i]
            yield ev, label, str(self.files[i].relative_to(self.root))

    def __repr__(self) -> str:
        return f"LocalNMNIST({str(self.root)!r}, split={self.split!r}, samples={len(self)})"
