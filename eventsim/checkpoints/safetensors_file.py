"""``.safetensors`` weight files as a state-dict source, read without torch.

A safetensors file is an 8-byte little-endian header length ``N``, ``N`` bytes of JSON
(``{key: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}``) and the raw tensor bytes.
No code can run from it. The header is parsed and checked here (so that a damaged file gets a
clear :class:`CheckpointError`, and detection reads no tensor data); the tensors are read with
safetensors' NumPy API (``pip install safetensors``).

Key order: see :func:`natural_order`. The returned object is
``{"state_dict": {key: array}, **metadata}`` where each metadata value is
JSON-decoded when it parses (e.g. ``"pool": "max"``, ``"cfg": "[64, \\"A\\"]"``), so the importers read
options that a checkpoint records from a safetensors file as from a ``torch.save`` dict.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..errors import CheckpointError
from .tensors import TensorInfo

__all__ = ["is_safetensors_head", "read_safetensors"]

_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
           "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32",
           "U64": "uint64", "BOOL": "bool"}
_MAX_HEADER = 100 * 1024 * 1024


def is_safetensors_head(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes) starts like a safetensors file."""
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= _MAX_HEADER and head[8:9] == b"{"


def _header(path: str) -> tuple[dict, dict, int]:
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if not 2 <= n <= min(_MAX_HEADER, size - 8):
            raise CheckpointError(f"{path}: damaged safetensors file: header length {n} does not fit the "
                                  f"{size}-byte file")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: damaged safetensors file: its JSON header does not parse ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: damaged safetensors file: the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: damaged safetensors file: __metadata__ is not an object")
    data_size = size - 8 - n
    for key, info in header.items():
        ok = (isinstance(info, dict) and info.get("dtype") in _DTYPES and isinstance(info.get("shape"), list)
              and all(isinstance(s, int) and s >= 0 for s in info["shape"])
              and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
              and all(isinstance(o, int) for o in info["data_offsets"]))
        if not ok:
            raise CheckpointError(f"{path}: damaged safetensors file: entry {key!r} is not "
                                  "{dtype, shape, data_offsets}")
        start, stop = info["data_offsets"]
        itemsize = 2 if info["dtype"] == "BF16" else np.dtype(_DTYPES[info["dtype"]]).itemsize
        if not 0 <= start <= stop <= data_size or stop - start != itemsize * int(np.prod(info["shape"], dtype=object)):
            raise CheckpointError(f"{path}: damaged safetensors file: tensor {key!r} ({info['dtype']} "
                                  f"{tuple(info['shape'])}) has bytes {start}..{stop} of a {data_size}-byte data "
                                  "section (truncated or inconsistent)")
    return header, meta, n


def natural_order(keys) -> list[str]:
    """Keys sorted with numeric path parts compared as numbers (``features.10`` after ``features.9``).

    A safetensors file does not keep the state dict's order (it sorts tensors by dtype and name);
    this order puts ``Sequential`` members back in sequence. Importers that need the order of
    named submodules (``layer1`` … before ``classifier``) rank those themselves."""
    return sorted(keys, key=lambda k: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in k.split(".")])


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_safetensors(path: str | os.PathLike, load_data: bool = True) -> dict:
    """Read a ``.safetensors`` file as ``{"state_dict": {key: numpy array}, **metadata}``.

    With ``load_data=False`` the tensors are :class:`TensorInfo` (shape and dtype from the header).
    Raises :class:`CheckpointError` for a damaged file, a dtype NumPy lacks (bfloat16), or when the
    ``safetensors`` package is missing.
    """
    path = os.fspath(path)
    header, meta, _ = _header(path)
    extras = {str(k): _decode(v) for k, v in meta.items() if k != "state_dict"}
    if not load_data:
        tensors = {k: TensorInfo(tuple(header[k]["shape"]), _DTYPES[header[k]["dtype"]], "safetensors", 0, ())
                   for k in natural_order(header)}
        return {"state_dict": tensors, **extras}
    bf16 = [k for k, v in header.items() if v["dtype"] == "BF16"]
    if bf16:
        raise CheckpointError(f"{path}: tensor {bf16[0]!r} is bfloat16, which NumPy cannot hold; save the state "
                              "dict as float32 (model.float()) before writing the safetensors file")
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors files needs the safetensors package: "
                              "pip install 'eventsim[safetensors]'") from None
    try:
        tensors = load_file(path)
    except Exception as exc:      # the Rust reader raises its own error type
        raise CheckpointError(f"{path}: damaged safetensors file: {exc}") from None
    ordered = {k: np.ascontiguousarray(tensors[k]) for k in natural_order(header)}
    return {"state_dict": ordered, **extras}
