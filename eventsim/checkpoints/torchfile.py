"""Read ``torch.save`` files without torch, and without running any code stored in them.

A ``.pt`` file is a pickle. Unpickling calls whatever functions the file names, so reading an
untrusted checkpoint with :func:`pickle.load` (or ``torch.load(weights_only=False)``) can run
arbitrary code. This module reads both layouts that ``torch.save`` writes with a restricted
unpickler instead:

* the **zip** layout (PyTorch >= 1.6): ``<prefix>/data.pkl`` holds the pickled object, and each
  tensor storage is a separate member ``<prefix>/data/<key>`` of raw little-endian bytes
  (``<prefix>/byteorder`` may say ``big``);
* the **legacy** layout (``_use_new_zipfile_serialization=False``): five pickles in a row (magic
  number, protocol version, system info, the object, the list of storage keys), then for every
  storage an int64 element count and its raw bytes.

The even older tar layout (PyTorch < 0.4) and TorchScript archives are refused with a message.

What the unpickler admits (:data:`ALLOWED_GLOBALS`)
---------------------------------------------------
Only data constructors, never a general callable: the tensor rebuild functions
``torch._utils._rebuild_tensor``/``_v2``/``_v3`` and ``_rebuild_parameter``/``_with_state``, the
storage types ``torch.<Float|Double|Half|BFloat16|Char|Short|Int|Long|Byte|Bool>Storage``,
``torch.storage.UntypedStorage``, ``torch.Size``, torch dtypes, ``collections.OrderedDict``,
``set``/``frozenset``, and NumPy scalars (``numpy.dtype``, ``numpy.core.multiarray.scalar`` and
``_codecs.encode`` with the latin-1 codec, which NumPy scalars need under pickle protocol 2).
Each is replaced by a local function that only builds data. Any other global (``os.system``,
``builtins.eval``, ``torch.nn.Linear`` from a whole pickled module, ``argparse.Namespace``…) raises
:class:`UnsafeCheckpointError` naming it, before anything is called.

Every tensor becomes a NumPy array (``bfloat16`` widened exactly to ``float32``). Sizes are
checked before any data is read: a storage's declared length must equal its archive member (or
legacy record), and a tensor's offset, shape and strides must stay inside its storage.

Memory is bounded by the file's size, not by what it declares: reading one checkpoint may
decompress and allocate at most :data:`MAX_BYTES_PER_FILE_BYTE` times the file's size plus
:data:`MEMORY_SLACK_BYTES` (zip members compressed like a zip bomb, tensors whose zero or
overlapping strides repeat a tiny storage into a huge array, many views of one large storage
are refused before the memory is touched), ``data.pkl`` may not exceed :data:`MAX_PICKLE_BYTES`,
and containers nested too deeply (or referring to themselves) are refused, not recursed into.

Example
-------
>>> from eventsim.checkpoints import read_state_dict
>>> sd = read_state_dict("model.pt")                      # doctest: +SKIP
>>> sd["features.0.weight"].shape                         # doctest: +SKIP
(64, 3, 3, 3)
"""
from __future__ import annotations

import io
import os
import pickle
import re
import struct
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from ..errors import CheckpointError, UnsafeCheckpointError
from .tensors import TensorInfo

__all__ = ["CheckpointError", "UnsafeCheckpointError", "TensorInfo", "read_checkpoint",
           "ALLOWED_GLOBALS", "DTYPES", "file_kind", "MAX_BYTES_PER_FILE_BYTE", "MEMORY_SLACK_BYTES",
           "MAX_PICKLE_BYTES"]


#: Tensor element types that can be read: name -> NumPy dtype string (``bfloat16`` is
#: read as raw 16-bit words and widened to float32).
DTYPES = {"float16": "<f2", "float32": "<f4", "float64": "<f8", "bfloat16": "<u2",
          "int8": "i1", "int16": "<i2", "int32": "<i4", "int64": "<i8", "uint8": "u1", "bool": "?"}

_STORAGE_TYPES = {"HalfStorage": "float16", "FloatStorage": "float32", "DoubleStorage": "float64",
                  "BFloat16Storage": "bfloat16", "CharStorage": "int8", "ShortStorage": "int16",
                  "IntStorage": "int32", "LongStorage": "int64", "ByteStorage": "uint8",
                  "BoolStorage": "bool"}
#: Storage types that are valid torch but not readable here (refused with a dtype message).
_UNSUPPORTED_STORAGE_TYPES = {"ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
                              "QInt8Storage": "qint8", "QUInt8Storage": "quint8", "QInt32Storage": "qint32",
                              "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4"}
_TORCH_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "short": "int16",
                        "int": "int32", "long": "int64"}
_NUMPY_SCALAR_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1", "?"}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001
#: Largest ``data.pkl`` read (a state dict's pickle is typically a few hundred kB).
MAX_PICKLE_BYTES = 256 << 20
#: Reading a checkpoint of ``n`` bytes may decompress and allocate at most
#: ``MAX_BYTES_PER_FILE_BYTE * n + MEMORY_SLACK_BYTES`` bytes of member data and arrays.
MAX_BYTES_PER_FILE_BYTE = 32
MEMORY_SLACK_BYTES = 64 << 20
_MAX_BYTEORDER_BYTES = 16
#: What :mod:`zipfile` raises for damaged archives (unsupported versions and compression methods
#: raise NotImplementedError, encrypted members RuntimeError, bad names UnicodeDecodeError).
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error,
               struct.error)
_KEY_RE = re.compile(r"[A-Za-z0-9_]{1,64}")


# ----------------------------------------------------------------------------- placeholders


@dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: str
    numel: int


class _NumpyDType:
    """Stand-in for a NumPy dtype inside a pickle: records the type code and byte order only."""

    __slots__ = ("code", "order")

    def __init__(self, code: str) -> None:
        self.code = code
        self.order = "<"

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">", "|", "=")):
            raise CheckpointError(f"unexpected NumPy dtype state {state!r}")
        self.order = "<" if state[1] == "=" else state[1]

    def resolve(self) -> np.dtype:
        return np.dtype("?" if self.code in ("?", "b1") else self.order + self.code)


def _bad(message: str) -> CheckpointError:
    return CheckpointError(message)


def _int_tuple(value: Any, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise _bad(f"{what}: expected a tuple of non-negative ints, got {value!r}")
    if len(value) > 64:
        raise _bad(f"{what}: {len(value)} dimensions is not a tensor shape")
    return tuple(value)


def _check_hooks(hooks: Any) -> None:
    if not isinstance(hooks, dict) or hooks:
        raise _bad("tensor carries backward hooks; only hook-free tensors can be read")


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None = None) -> TensorInfo:
    if not isinstance(storage, _StorageRef):
        raise _bad(f"tensor rebuild got {type(storage).__name__} where a storage was expected")
    if type(offset) is not int or offset < 0:
        raise _bad(f"tensor storage offset {offset!r} is not a non-negative int")
    shape = _int_tuple(size, "tensor size")
    strides = _int_tuple(stride, "tensor stride")
    if len(strides) != len(shape):
        raise _bad(f"tensor size {shape} and stride {strides} have different lengths")
    dtype = dtype or storage.dtype
    return TensorInfo(shape, dtype, storage.key, offset, strides)


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return _tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks, metadata=None):
    _check_hooks(backward_hooks)
    return _tensor(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    _check_hooks(backward_hooks)
    if not isinstance(dtype, _TorchDType):
        raise _bad(f"tensor rebuild got dtype {dtype!r}; expected a torch dtype")
    info = _tensor(storage, offset, size, stride, dtype.name)
    return info


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    _check_hooks(backward_hooks)
    if not isinstance(data, TensorInfo):
        raise _bad(f"parameter rebuild got {type(data).__name__} where a tensor was expected")
    return data


@dataclass(frozen=True)
class _TorchDType:
    name: str


def _torch_dtype(name: str) -> _TorchDType:
    name = _TORCH_DTYPE_ALIASES.get(name, name)
    return _TorchDType(name)


def _torch_size(dims=()):
    return _int_tuple(tuple(dims), "torch.Size")


def _numpy_dtype(code, align=False, copy=False):
    if not isinstance(code, str) or code not in _NUMPY_SCALAR_DTYPES:
        raise UnsafeCheckpointError(f"refused NumPy dtype {code!r}: only plain numeric scalars are read "
                                    f"({sorted(_NUMPY_SCALAR_DTYPES)})")
    return _NumpyDType(code)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes):
        raise _bad(f"NumPy scalar with unexpected arguments ({type(dtype).__name__}, {type(data).__name__})")
    dt = dtype.resolve()
    if len(data) != dt.itemsize:
        raise _bad(f"NumPy scalar of type {dt} has {len(data)} bytes, expected {dt.itemsize}")
    return np.frombuffer(data, dtype=dt)[0].astype(dt.newbyteorder("="))


def _codecs_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(f"refused _codecs.encode({type(text).__name__}, {encoding!r}); only the "
                                    "latin1 form used by pickle protocol 2 for bytes is read")
    return text.encode("latin1")


def _container(kind):
    def build(items=()):
        return kind(items)
    return build


def _allowed() -> dict:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch", "Size"): _torch_size,
        ("torch", "UntypedStorage"): _StorageType("uint8"),
        ("torch.storage", "UntypedStorage"): _StorageType("uint8"),
        ("numpy", "dtype"): _numpy_dtype,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
        ("_codecs", "encode"): _codecs_encode,
    }
    for mod in ("builtins", "__builtin__"):
        table[(mod, "set")] = _container(set)
        table[(mod, "frozenset")] = _container(frozenset)
    for name, dtype in {**_STORAGE_TYPES, **_UNSUPPORTED_STORAGE_TYPES}.items():
        table[("torch", name)] = _StorageType(dtype)
    for name in (*DTYPES, *_TORCH_DTYPE_ALIASES, "uint16", "uint32", "uint64", "complex64", "complex128"):
        table[("torch", name)] = _torch_dtype(name)
    return table


#: ``(module, name)`` -> the local, data-only stand-in used for it.
ALLOWED_GLOBALS = _allowed()


class _Unpickler(pickle.Unpickler):
    """Unpickler that resolves globals only through :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: BinaryIO, source: str, storages: dict | None) -> None:
        super().__init__(file, encoding="utf-8")
        self._source = source
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"{self._source}: refused to load global '{module}.{name}': only tensors, storages and plain "
                "containers are allowed, so nothing from this file was executed. If the file holds a whole "
                "pickled model, save model.state_dict() instead.") from None

    def persistent_load(self, pid: Any) -> Any:
        if self._storages is None:
            raise _bad(f"{self._source}: unexpected storage reference {pid!r} outside the main pickle")
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise _bad(f"{self._source}: unsupported persistent id {pid!r}; expected ('storage', type, key, "
                       "location, numel)")
        stype, key, location, numel = pid[1:5]
        if not isinstance(stype, _StorageType):
            raise _bad(f"{self._source}: storage type {stype!r} is not a torch storage class")
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise _bad(f"{self._source}: storage key {key!r} is not a plain name")
        if type(numel) is not int or numel < 0 or not isinstance(location, str):
            raise _bad(f"{self._source}: storage {key!r} declares size {numel!r} at {location!r}")
        if stype.dtype not in DTYPES:
            raise _bad(f"{self._source}: storage {key!r} holds {stype.dtype} elements; that dtype is not supported "
                       f"(readable: {sorted(DTYPES)})")
        ref = _StorageRef(key, stype.dtype, numel)
        known = self._storages.setdefault(key, ref)
        if known != ref:
            raise _bad(f"{self._source}: storage {key!r} is declared twice, as {known.numel} x {known.dtype} "
                       f"and as {numel} x {stype.dtype}")
        if len(pid) == 6 and pid[5] is not None:
            raise _bad(f"{self._source}: storage {key!r} is a legacy storage view ({pid[5]!r}); views from "
                       "PyTorch < 0.4 are not supported. Re-save the checkpoint with a recent PyTorch")
        return ref


def _unpickle(file: BinaryIO, source: str, storages: dict | None) -> Any:
    try:
        return _Unpickler(file, source, storages).load()
    except CheckpointError:
        raise
    except RecursionError:
        raise _bad(f"{source}: pickle nests too deeply to be a checkpoint") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, KeyError, IndexError,
            struct.error, UnicodeDecodeError, MemoryError) as exc:
        raise _bad(f"{source}: corrupt pickle data ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------- memory budget


class _Budget:
    """Bytes that reading one checkpoint may still decompress or allocate (see the module doc)."""

    def __init__(self, path: str, file_size: int) -> None:
        self.path = path
        self.limit = MAX_BYTES_PER_FILE_BYTE * file_size + MEMORY_SLACK_BYTES
        self.used = 0
        self.file_size = file_size

    def charge(self, nbytes: int, what: str) -> None:
        """Account for ``nbytes`` before they are allocated; refuse when over the limit."""
        if self.used + nbytes > self.limit:
            raise CheckpointError(
                f"{self.path}: {what} needs {nbytes:,} bytes, which would bring the memory used to read this "
                f"{self.file_size:,}-byte file to {self.used + nbytes:,} bytes, over the limit of {self.limit:,} "
                f"({MAX_BYTES_PER_FILE_BYTE} x file size + {MEMORY_SLACK_BYTES:,}); the file is a zip bomb or "
                "declares tensors far larger than the data it holds")
        self.used += nbytes


# ----------------------------------------------------------------------------- materialising


def _element_dtype(name: str, big_endian: bool) -> np.dtype:
    if name not in DTYPES:
        raise CheckpointError(f"tensor dtype {name} is not supported; readable dtypes: {sorted(DTYPES)}")
    dt = np.dtype(DTYPES[name])
    return dt.newbyteorder(">") if big_endian and dt.itemsize > 1 else dt


def _check_extent(path: str, info: TensorInfo, ref: _StorageRef) -> None:
    itemsize = _element_dtype(info.dtype, False).itemsize
    storage_bytes = ref.numel * _element_dtype(ref.dtype, False).itemsize
    if 0 in info.shape:
        needed = 0
    else:
        needed = (info.offset + sum((n - 1) * s for n, s in zip(info.shape, info.stride)) + 1) * itemsize
    if needed > storage_bytes:
        raise CheckpointError(
            f"{path}: tensor of shape {info.shape} (strides {info.stride}, offset {info.offset}, {info.dtype}) "
            f"needs {needed} bytes but its storage {ref.key!r} holds {storage_bytes} "
            f"({ref.numel} x {ref.dtype}); the file is corrupt or crafted")


def _to_array(info: TensorInfo, buf: memoryview, big_endian: bool, budget: _Budget, where: str) -> np.ndarray:
    dt = _element_dtype(info.dtype, big_endian)
    # bfloat16 passes through uint16, uint32 and float32 copies: 10 bytes per element
    budget.charge(info.numel * (10 if info.dtype == "bfloat16" else dt.itemsize),
                  f"tensor {where!r} of shape {info.shape} ({info.dtype})")
    try:
        if 0 in info.shape:
            arr = np.zeros(info.shape, dtype=dt)
        else:
            arr = np.ndarray(info.shape, dtype=dt, buffer=buf, offset=info.offset * dt.itemsize,
                             strides=tuple(s * dt.itemsize for s in info.stride))
    except (ValueError, OverflowError) as exc:
        raise CheckpointError(f"{budget.path}: tensor {where!r} of shape {info.shape} cannot be built ({exc})") from None
    arr = np.array(arr, dtype=dt.newbyteorder("="), order="C")
    if info.dtype == "bfloat16":
        arr = np.array((arr.astype(np.uint32) << 16).view(np.float32))  # exact widening, own memory
    return arr


def _walk(obj: Any, fn: Callable[[TensorInfo, str], Any], path: str, seen: dict) -> Any:
    """Replace every TensorInfo in a tree of containers by ``fn(info, path)``."""
    if isinstance(obj, TensorInfo):
        return fn(obj, path)
    ident = id(obj)
    if ident in seen:
        return seen[ident]
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, OrderedDict) else {}
        seen[ident] = out
        for k, v in obj.items():
            out[k] = _walk(v, fn, f"{path}.{k}" if path else str(k), seen)
        return out
    if isinstance(obj, list):
        out_list: list = []
        seen[ident] = out_list          # registered first: a list may contain itself
        out_list.extend(_walk(v, fn, f"{path}[{i}]", seen) for i, v in enumerate(obj))
        return out_list
    if isinstance(obj, tuple):
        out_tuple = tuple(_walk(v, fn, f"{path}[{i}]", seen) for i, v in enumerate(obj))
        seen[ident] = out_tuple
        return out_tuple
    return obj


def _walk_tree(obj: Any, fn: Callable[[TensorInfo, str], Any], source: str) -> Any:
    """:func:`_walk` from the root; a structure nested deeper than Python's recursion limit is refused."""
    try:
        return _walk(obj, fn, "", {})
    except RecursionError:
        raise CheckpointError(f"{source}: containers nest too deeply to be a checkpoint") from None


# ----------------------------------------------------------------------------- file layouts


def file_kind(head: bytes) -> str:
    """``"zip"``, ``"legacy"``, ``"tar"``, ``"safetensors"`` or ``"unknown"`` from a file's first bytes."""
    from .safetensors_file import is_safetensors_head
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:4] == b"\x80\x02\x8a\x0a" and len(head) >= 15 and int.from_bytes(head[4:14], "little") == _LEGACY_MAGIC:
        return "legacy"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if is_safetensors_head(head):
        return "safetensors"
    return "unknown"


def _zip_prefix(path: str, names: list) -> str:
    if any(n.endswith("constants.pkl") or n.startswith("code/") or "/code/" in n for n in names):
        raise CheckpointError(f"{path}: a TorchScript archive (torch.jit.save), not a torch.save checkpoint; "
                              "save model.state_dict() with torch.save instead")
    pkls = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if not pkls:
        raise CheckpointError(f"{path}: zip archive without data.pkl; not a torch.save checkpoint")
    if len(pkls) > 1:
        raise CheckpointError(f"{path}: zip archive has {len(pkls)} data.pkl members ({pkls[:3]}…); expected one")
    return pkls[0][: -len("data.pkl")]


def _read_member(zf: zipfile.ZipFile, name: str, expected: int, path: str, archive_size: int,
                 budget: _Budget) -> bytes:
    info = zf.getinfo(name)
    if info.file_size != expected:
        raise CheckpointError(f"{path}: archive member {name!r} has {info.file_size} bytes, but the pickle "
                              f"declares {expected}; the file is corrupt or crafted")
    if info.header_offset + info.compress_size > archive_size or (
            info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size):
        raise CheckpointError(f"{path}: archive member {name!r} runs past the end of the file; truncated?")
    budget.charge(info.file_size, f"archive member {name!r} ({info.compress_size:,} bytes compressed)")
    try:
        with zf.open(info) as fh:
            data = fh.read(expected + 1)
    except _ZIP_ERRORS as exc:
        raise CheckpointError(f"{path}: cannot read archive member {name!r} ({exc}); truncated or corrupt") from None
    if len(data) != expected:
        raise CheckpointError(f"{path}: archive member {name!r} holds {len(data)} bytes, expected {expected}")
    return data


def _read_zip(path: str, load_data: bool) -> Any:
    size = os.path.getsize(path)
    budget = _Budget(path, size)
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise CheckpointError(f"{path}: not a complete zip archive ({exc}); the file may be truncated") from None
    with zf:
        names = zf.namelist()
        prefix = _zip_prefix(path, names)
        pkl_info = zf.getinfo(prefix + "data.pkl")
        if pkl_info.file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: data.pkl declares {pkl_info.file_size} bytes; refusing more than "
                                  f"{MAX_PICKLE_BYTES}")
        pkl = _read_member(zf, prefix + "data.pkl", pkl_info.file_size, path, size, budget)
        big_endian = False
        if prefix + "byteorder" in names:
            order_size = zf.getinfo(prefix + "byteorder").file_size
            if order_size > _MAX_BYTEORDER_BYTES:
                raise CheckpointError(f"{path}: byteorder member declares {order_size} bytes; expected 'little' or "
                                      "'big'")
            order = _read_member(zf, prefix + "byteorder", order_size, path, size, budget)
            if order not in (b"little", b"big"):
                raise CheckpointError(f"{path}: byteorder member says {order[:20]!r}; expected little or big")
            big_endian = order == b"big"
        storages: dict = {}
        obj = _unpickle(io.BytesIO(pkl), path, storages)
        cache: dict = {}

        def materialise(info: TensorInfo, where: str) -> Any:
            ref = storages[info.storage]
            member = f"{prefix}data/{ref.key}"
            if member not in names:
                raise CheckpointError(f"{path}: tensor {where!r} refers to storage {ref.key!r}, but the archive "
                                      f"has no member {member!r}")
            _check_extent(path, info, ref)
            nbytes = ref.numel * _element_dtype(ref.dtype, False).itemsize
            if zf.getinfo(member).file_size != nbytes:
                raise CheckpointError(f"{path}: archive member {member!r} has {zf.getinfo(member).file_size} bytes, "
                                      f"but the pickle declares {ref.numel} x {ref.dtype} = {nbytes}; the file is "
                                      "corrupt or crafted")
            if not load_data:
                return info
            if ref.key not in cache:
                cache[ref.key] = memoryview(_read_member(zf, member, nbytes, path, size, budget))
            return _to_array(info, cache[ref.key], big_endian, budget, where)

        return _walk_tree(obj, materialise, path)


def _read_legacy(path: str, load_data: bool) -> Any:
    size = os.path.getsize(path)
    budget = _Budget(path, size)
    with open(path, "rb") as fh:
        magic = _unpickle(fh, path, None)
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: bad legacy magic number; not a torch.save file")
        protocol = _unpickle(fh, path, None)
        if protocol != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: legacy protocol version {protocol!r}, expected {_LEGACY_PROTOCOL}")
        sys_info = _unpickle(fh, path, None)
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise CheckpointError(f"{path}: legacy checkpoint written on a big-endian machine; not supported")
        storages: dict = {}
        obj = _unpickle(fh, path, storages)
        keys = _unpickle(fh, path, None)
        if (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
                or set(keys) != set(storages) or len(keys) != len(storages)):
            raise CheckpointError(f"{path}: legacy storage key list {str(keys)[:80]} does not match the "
                                  f"{len(storages)} storages the pickle refers to")
        data: dict = {}
        if load_data:
            for key in keys:
                ref = storages[key]
                itemsize = _element_dtype(ref.dtype, False).itemsize
                head = fh.read(8)
                if len(head) != 8:
                    raise CheckpointError(f"{path}: truncated before the data of storage {key!r}")
                numel = struct.unpack("<q", head)[0]
                if numel != ref.numel:
                    raise CheckpointError(f"{path}: storage {key!r} record holds {numel} elements, but the pickle "
                                          f"declares {ref.numel}; the file is corrupt or crafted")
                nbytes = numel * itemsize
                if fh.tell() + nbytes > size:
                    raise CheckpointError(f"{path}: storage {key!r} needs {nbytes} bytes but the file ends "
                                          f"{size - fh.tell()} bytes later; truncated?")
                data[key] = memoryview(fh.read(nbytes))

    def materialise(info: TensorInfo, where: str) -> Any:
        ref = storages[info.storage]
        _check_extent(path, info, ref)
        if not load_data:
            return info
        return _to_array(info, data[ref.key], False, budget, where)

    return _walk_tree(obj, materialise, path)


def read_checkpoint(path: str | os.PathLike, *, load_data: bool = True) -> Any:
    """Read a ``torch.save`` file safely and return its object with tensors as NumPy arrays.

    Parameters
    ----------
    path : str or path-like
        A ``.pt``/``.pth``/``.pth.tar`` file written by ``torch.save`` (zip or legacy layout), or a
        ``.safetensors`` file (returned as ``{"state_dict": tensors, **metadata}``, see
        :mod:`eventsim.checkpoints.safetensors_file`).
    load_data : bool, default True
        With False, tensors come back as :class:`TensorInfo` (shape and dtype, checked against
        their storages' declared sizes) and no tensor data is read: fast, for inspection.

    Returns
    -------
    object
        Dicts, lists, tuples, numbers and strings as pickled, each tensor replaced by an
        ``numpy.ndarray`` (a C-contiguous copy; views that shared a storage stay equal in value
        but no longer share memory).

    Raises
    ------
    UnsafeCheckpointError
        The pickle names a global outside :data:`ALLOWED_GLOBALS` (nothing is executed).
    CheckpointError
        Not a torch file, truncated, inconsistent sizes, unsupported dtype or layout.
    """
    path = os.fspath(path)
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as fh:
        head = fh.read(512)
    kind = file_kind(head)
    if kind == "zip":
        return _read_zip(path, load_data)
    if kind == "legacy":
        return _read_legacy(path, load_data)
    if kind == "safetensors":
        from .safetensors_file import read_safetensors
        return read_safetensors(path, load_data)
    if kind == "tar":
        raise CheckpointError(f"{path}: tar-format checkpoint from PyTorch < 0.4; not supported. Load it once with "
                              "that PyTorch and re-save it with torch.save")
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (starts with {head[:8]!r}; expected a zip archive, "
                          "a legacy torch.save pickle or a .safetensors file)")
