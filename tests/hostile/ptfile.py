"""A torch-free writer of ``torch.save`` files, opcode by opcode, for hostile and fuzzed checkpoints.

``encode(obj)`` assembles pickle protocol-2 opcodes for plain data (dicts, lists, tuples, str,
int, float, bool, None) and :class:`Tensor` placeholders (``torch._utils._rebuild_tensor_v2`` of a
persistent storage id, exactly what ``torch.save`` writes); :class:`Raw` splices arbitrary opcodes
in, which is how the hostile corpus smuggles in calls. ``write_pt`` wraps a pickle and storages in
the zip layout (``archive/data.pkl``, ``archive/data/<key>``); ``save_tree`` does both for a tree
of NumPy arrays. Independent of eventsim's reader: it follows the pickle opcode table (PEP 307 and
``pickletools``) and PyTorch's archive layout.
"""
from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
           np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage",
           np.dtype("int32"): "IntStorage", np.dtype("int16"): "ShortStorage",
           np.dtype("int8"): "CharStorage", np.dtype("uint8"): "ByteStorage", np.dtype("bool"): "BoolStorage"}


@dataclass(frozen=True)
class Raw:
    """Opcodes pasted verbatim where a value is expected (they must push exactly one object)."""

    ops: bytes


@dataclass(frozen=True)
class Tensor:
    """A tensor view of storage ``key`` (``numel`` elements of ``storage`` type)."""

    key: str
    numel: int
    shape: tuple
    stride: tuple
    storage: str = "FloatStorage"
    offset: int = 0


def string(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(data)) + data          # BINUNICODE


def integer(value: int) -> bytes:
    if -2**31 <= value < 2**31:
        return b"J" + struct.pack("<i", value)                 # BININT
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data                 # LONG1


def glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()               # GLOBAL


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"                       # MARK ... TUPLE


def call(module: str, name: str, *args: bytes) -> bytes:
    """``module.name(*args)`` as GLOBAL + args tuple + REDUCE."""
    return glob(module, name) + tup(*args) + b"R"


def tensor_ops(t: Tensor) -> bytes:
    pid = tup(string("storage"), glob("torch", t.storage), string(t.key), string("cpu"), integer(t.numel))
    hooks = glob("collections", "OrderedDict") + b")R"
    args = tup(pid + b"Q", integer(t.offset), tup(*map(integer, t.shape)), tup(*map(integer, t.stride)),
               b"\x89", hooks)
    return glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def encode(obj: Any) -> bytes:
    """Opcodes that push ``obj`` (plain data, :class:`Tensor`, :class:`Raw`)."""
    if isinstance(obj, Raw):
        return obj.ops
    if isinstance(obj, Tensor):
        return tensor_ops(obj)
    if obj is None:
        return b"N"
    if obj is True or obj is False:
        return b"\x88" if obj else b"\x89"
    if isinstance(obj, (int, np.integer)):
        return integer(int(obj))
    if isinstance(obj, (float, np.floating)):
        return b"G" + struct.pack(">d", float(obj))            # BINFLOAT
    if isinstance(obj, str):
        return string(obj)
    if isinstance(obj, dict):
        return b"}(" + b"".join(encode(k) + encode(v) for k, v in obj.items()) + b"u"
    if isinstance(obj, list):
        return b"](" + b"".join(encode(v) for v in obj) + b"e"
    if isinstance(obj, tuple):
        return tup(*(encode(v) for v in obj))
    raise TypeError(f"cannot encode {type(obj).__name__}")


def write_pt(path, pickle_ops: bytes, storages: dict | None = None, *, compression=zipfile.ZIP_STORED,
             byteorder: bytes = b"little"):
    """Write ``pickle_ops`` (without PROTO/STOP) and raw storages in torch's zip layout."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02" + pickle_ops + b".")
        zf.writestr("archive/byteorder", byteorder)
        for key, data in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", b"3\n")
    return path


def tree_to_pt(tree: Any) -> tuple[Any, dict]:
    """Replace every NumPy array in ``tree`` by a :class:`Tensor` with its own storage."""
    storages: dict = {}

    def conv(value):
        if isinstance(value, np.ndarray):
            arr = np.array(value, order="C", copy=True)
            if arr.dtype not in STORAGE:
                raise TypeError(f"no storage type for {arr.dtype}")
            key = str(len(storages))
            storages[key] = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            stride = tuple(s // arr.itemsize for s in arr.strides) if arr.size else (0,) * arr.ndim
            return Tensor(key, arr.size, arr.shape, stride, STORAGE[arr.dtype])
        if isinstance(value, dict):
            return {k: conv(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(conv(v) for v in value)
        return value

    return conv(tree), storages


def save_tree(path, tree: Any, **kwargs):
    """``torch.save(tree)`` without torch, for trees of dicts, lists, scalars and NumPy arrays."""
    obj, storages = tree_to_pt(tree)
    return write_pt(path, encode(obj), storages, **kwargs)
