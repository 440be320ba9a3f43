"""Model file formats: a registry behind :func:`load` and :func:`save`.

Each format registers a loader (path -> Network), optionally a saver, a content sniffer and its
file extensions. Importer modules register themselves when imported; :data:`PLUGINS` lists the
modules imported on first use.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .network import Network

__all__ = ["ModelFormat", "register_format", "formats", "load", "save", "detect_format", "MAX_LAYER_VALUES"]

PLUGINS = ("eventsim.native", "eventsim.checkpoints", "eventsim.nir")

#: Most values one layer of a loaded model may hold (2**28, 2 GiB as float64 state). A file whose
#: shapes declare more (a huge input shape or padding, which cost the file nothing) is refused by
#: :func:`load` instead of exhausting memory when it is simulated.
MAX_LAYER_VALUES = 1 << 28


@dataclass(frozen=True)
class ModelFormat:
    """A model file format.

    ``detect(path, head)`` gets the first 4 KiB of the file and returns True when the content is
    unambiguously this format (used by ``load(path)`` without ``format=``).
    """

    name: str
    load: Callable[..., Network]
    save: Callable[..., None] | None = None
    detect: Callable[[Path, bytes], bool] | None = None
    extensions: tuple[str, ...] = ()
    description: str = ""


_FORMATS: dict[str, ModelFormat] = {}
_plugins_loaded = False


def register_format(fmt: ModelFormat) -> ModelFormat:
    _FORMATS[fmt.name] = fmt
    return fmt


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in PLUGINS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # a plugin that is not part of this build (or its parent package) is skipped;
            # a plugin that fails to import one of *its* dependencies is a real error
            if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                raise


def formats() -> dict[str, ModelFormat]:
    """All registered formats by name."""
    _load_plugins()
    return dict(_FORMATS)


def _get(name: str) -> ModelFormat:
    fmts = formats()
    if name not in fmts:
        raise ValueError(f"unknown model format {name!r}; choose one of {sorted(fmts)}")
    return fmts[name]


def detect_format(path: str | os.PathLike) -> str:
    """Name of the format of ``path`` by content, then extension; ValueError if ambiguous."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    fmts = formats()
    hits = [f.name for f in fmts.values() if f.detect is not None and f.detect(path, head)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        hits = [f.name for f in fmts.values() if path.suffix.lower() in f.extensions]
        if len(hits) == 1:
            return hits[0]
    if hits:
        raise ValueError(f"{path}: could be any of {sorted(hits)}; pass format= to choose")
    raise ValueError(f"{path}: unrecognised model file; pass format= (one of {sorted(fmts)})")


def load(path: str | os.PathLike, format: str | None = None, **options: Any) -> Network:
    """Load a model file as a :class:`~eventsim.network.Network`.

    ``format`` is one of :func:`formats` (e.g. ``"eventsim"``, ``"diet"``, ``"qcfs"``, ``"aoi"``,
    ``"bntt"``, ``"nir"``); without it the format is detected from the content.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    name = format or detect_format(path)
    network = _get(name).load(path, **options)
    for shape, where in [(network.input_shape, "input")] + [
            (shape, f"layer {layer.name}") for layer, shape in zip(network.layers, network.shapes)]:
        values = int(np.prod(shape, dtype=object))
        if values > MAX_LAYER_VALUES:
            raise ValueError(f"{path}: {where} has shape {tuple(shape)} ({values:,} values), more than the "
                             f"{MAX_LAYER_VALUES:,} a loaded model may declare per layer")
    return network


def save(network: Network, path: str | os.PathLike, format: str | None = None, **options: Any) -> None:
    """Save ``network`` to ``path`` (atomically). The format defaults from the extension
    (``.npz``: eventsim's native format, ``.nir``: NIR)."""
    if not isinstance(network, Network):
        raise ValueError(f"save: expected an eventsim.Network, got {type(network).__name__}")
    path = Path(path)
    if format is None:
        fmts = formats()
        hits = [f.name for f in fmts.values() if f.save is not None and path.suffix.lower() in f.extensions]
        if not hits:
            raise ValueError(f"{path}: cannot tell the format from the extension; pass format=")
        format = hits[0]
    fmt = _get(format)
    if fmt.save is None:
        raise ValueError(f"format {format!r} can be loaded but not saved")
    fmt.save(network, path, **options)
