"""Labelled recordings in folders, as the samples :func:`~eventsim.events.cache.build_cache` stores:
:func:`folder_samples` lists ``root/<class>/**/<file>``, :class:`FileSamples` reads them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .io import read_events

__all__ = ["FileSamples", "folder_samples"]


class FileSamples:
    """A sized iterable of ``(events, label, name)`` read from files, for :func:`build_cache`.

    Parameters
    ----------
    items : sequence of (path, label)
    reader : callable, default :func:`eventsim.events.read_events`
        ``reader(path) -> events``.
    root : path, optional
        Names are stored relative to it.
    """

    def __init__(self, items: Sequence[tuple[str | os.PathLike, int]], reader: Any = None,
                 root: str | os.PathLike | None = None) -> None:
        self.items = [(Path(p), int(lab)) for p, lab in items]
        self.reader = reader or read_events
        self.root = Path(root) if root is not None else None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int, str]]:
        for path, label in self.items:
            name = str(path.relative_to(self.root)) if self.root is not None else str(path)
            yield self.reader(path), label, name


def folder_samples(root: str | os.PathLike, extensions: Sequence[str], classes: Sequence[str] | None = None
                   ) -> tuple[list[tuple[Path, int]], list[str]]:
    """List ``root/<class>/**/<file>`` recordings labelled by their class folder.

    Parameters
    ----------
    root : path
        One sub-folder per class.
    extensions : sequence of str
        File suffixes to include, e.g. ``(".aedat",)``.
    classes : sequence of str, optional
        Class folder names in label order; default the sorted sub-folder names.

    Returns
    -------
    items : list of (path, label), sorted by label then path
    classes : list of str

    Raises
    ------
    FileNotFoundError
        When ``root`` is missing or holds no matching file.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: folder not found")
    if classes is None:
        classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    exts = tuple(e.lower() for e in extensions)
    items = []
    for label, name in enumerate(classes):
        folder = base / name
        if folder.is_dir():
            items += [(p, label) for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in exts]
    if not items:
        raise FileNotFoundError(f"{base}: no {'/'.join(exts)} files in class folders {list(classes)[:5]}...")
    return items, list(classes)
