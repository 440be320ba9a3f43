"""Shared helpers of the NIR modules: the lazy ``nir`` import and eventsim's metadata encoding.

eventsim writes one JSON string per node under ``metadata["eventsim"]`` (and one for the graph),
holding the layer fields that NIR cannot express. Arrays are encoded as
``{"__ndarray__": nested list, "shape": [...]}``; Python's float ``repr`` round-trips exactly.
JSON keeps HDF5 out of it: ``nir.write`` cannot store 0-d arrays in a compressed dataset.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["NODE_KEY", "GRAPH_KEY", "require_nir", "encode_json", "decode_json"]

NODE_KEY = "eventsim"
GRAPH_KEY = "eventsim"
EXTRA = "nir"


def require_nir():
    """Import and return the ``nir`` package, or raise ImportError naming the extra to install."""
    try:
        import nir
    except ImportError as exc:
        raise ImportError("reading or writing NIR (.nir) files needs the 'nir' package: "
                          f"pip install 'eventsim[{EXTRA}]'  (or: pip install nir)") from exc
    return nir


def _default(value: Any):
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in NIR metadata")


def _hook(obj: dict):
    if "__ndarray__" in obj:
        return np.array(obj["__ndarray__"], dtype=np.float64).reshape(obj["shape"])
    return obj


def encode_json(value: Any) -> str:
    return json.dumps(value, default=_default)


def decode_json(text: Any, where: str) -> dict:
    """Parse eventsim's metadata string (bytes or str); ValueError naming ``where`` if corrupt."""
    if isinstance(text, (bytes, np.bytes_)):
        text = bytes(text).decode("utf-8", "replace")
    if isinstance(text, np.ndarray) and text.dtype.kind in "OSU" and text.size == 1:
        return decode_json(text.reshape(-1)[0], where)
    if not isinstance(text, str):
        raise ValueError(f"{where}: metadata['eventsim'] is not a JSON string")
    try:
        out = json.loads(text, object_hook=_hook)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: metadata['eventsim'] is corrupt ({exc})") from None
    if not isinstance(out, dict):
        raise ValueError(f"{where}: metadata['eventsim'] is not a JSON object")
    return out
