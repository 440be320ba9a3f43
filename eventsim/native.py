"""eventsim's native model format: one ``.npz`` (no pickles) holding a JSON description of the
network under ``__eventsim__`` and every array under ``L<index>.<field>``."""
from __future__ import annotations

import json
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np

from . import network as nw
from ._io import atomic_path
from .formats import ModelFormat, register_format

FORMAT_VERSION = 1
LAYER_TYPES = {cls.__name__: cls for cls in (
    nw.Conv2d, nw.Linear, nw.AvgPool2d, nw.SumPool2d, nw.MaxPool2d, nw.Flatten, nw.Add,
    nw.IF, nw.LIF, nw.Readout)}


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def save_native(network: nw.Network, path) -> None:
    arrays, layers = {}, []
    for i, layer in enumerate(network.layers):
        spec = {"type": type(layer).__name__}
        for f in fields(layer):
            if not f.init:
                continue
            value = getattr(layer, f.name)
            if isinstance(value, np.ndarray):
                key = f"L{i}.{f.name}"
                arrays[key] = value
                spec[f.name] = {"array": key}
            else:
                spec[f.name] = _plain(value)
        layers.append(spec)
    meta = {"format": "eventsim", "version": FORMAT_VERSION, "input_shape": list(network.input_shape),
            "layers": layers, "metadata": network.metadata}
    arrays["__eventsim__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_native(path) -> nw.Network:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__eventsim__" not in data.files:
                raise ValueError(f"{path}: not an eventsim model (no __eventsim__ entry)")
            meta = json.loads(bytes(data["__eventsim__"]).decode())
            arrays = {k: data[k] for k in data.files if k != "__eventsim__"}
    except (zipfile.BadZipFile, OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt eventsim model file ({exc})") from None
    if meta.get("format") != "eventsim" or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported eventsim model version {meta.get('version')!r}")
    layers = []
    for i, spec in enumerate(meta.get("layers", [])):
        spec = dict(spec)
        cls = LAYER_TYPES.get(spec.pop("type", None))
        if cls is None:
            raise ValueError(f"{path}: layer {i} has unknown type; expected one of {sorted(LAYER_TYPES)}")
        kwargs = {}
        for key, value in spec.items():
            if isinstance(value, dict) and "array" in value:
                if value["array"] not in arrays:
                    raise ValueError(f"{path}: layer {i} field {key} refers to missing array {value['array']}")
                value = arrays[value["array"]]
            kwargs[key] = value
        try:
            layers.append(cls(**kwargs))
        except TypeError as exc:
            raise ValueError(f"{path}: layer {i} ({cls.__name__}): {exc}") from None
    return nw.Network(tuple(meta["input_shape"]), layers, metadata=dict(meta.get("metadata") or {}))


def _detect(path: Path, head: bytes) -> bool:
    if not head.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return "__eventsim__.npy" in zf.namelist()
    except zipfile.BadZipFile:
        return False


register_format(ModelFormat("eventsim", load_native, save_native, _detect, (".npz",),
                            "eventsim native model (.npz, no pickles)"))
