"""eventsim's native model format: one ``.npz`` (no pickles) holding a JSON description of the
network under ``__eventsim__`` and every array under ``L<index>.<field>``."""
from __future__ import annotations

import json
import struct
import zipfile
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np

from . import network as nw
from . import neurons
from ._io import atomic_path
from .formats import ModelFormat, register_format

FORMAT_VERSION = 1
LAYER_TYPES = {cls.__name__: cls for cls in (
    nw.Conv2d, nw.Linear, nw.AvgPool2d, nw.SumPool2d, nw.MaxPool2d, nw.Flatten, nw.Add, nw.Branch,
    nw.IF, nw.LIF, nw.Readout, neurons.CubaLIF, neurons.Threshold, neurons.LI, neurons.CubaLI,
    neurons.Recurrent)}


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


#: Reading a model file of ``n`` bytes may decompress at most ``MAX_BYTES_PER_FILE_BYTE * n +
#: MEMORY_SLACK_BYTES`` bytes of arrays (``np.savez_compressed`` of float weights is ~1.1x; more is
#: a zip bomb).
MAX_BYTES_PER_FILE_BYTE = 32
MEMORY_SLACK_BYTES = 64 << 20
_NUMBER_KINDS = "biuf"
#: What :mod:`zipfile` raises for damaged archives (unsupported versions and compression methods
#: raise NotImplementedError, encrypted members RuntimeError, bad names UnicodeDecodeError).
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error,
               struct.error)


def _non_finite(value) -> bool:
    """True when a JSON layer field holds NaN or ±inf anywhere in its (nested) lists."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not np.isfinite(item):
            return True
        if isinstance(item, list):
            stack.extend(item)
    return False


def _member_header(fh, name: str, path: Path) -> tuple[tuple, bool, np.dtype]:
    """Read and check one ``.npy`` member's header: plain numbers only, never pickled objects."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    else:
        raise ValueError(f"{path}: array {name!r} has .npy format version {version}; expected 1.0 or 2.0")
    if dtype.hasobject:
        raise ValueError(f"{path}: array {name!r} holds Python objects (dtype {dtype}), i.e. a pickle; refused "
                         "without unpickling. eventsim models hold numeric arrays only")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _NUMBER_KINDS:
        raise ValueError(f"{path}: array {name!r} has dtype {dtype}; expected a real number type "
                         "(bool, int, uint, float)")
    return shape, fortran, dtype


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every member of the ``.npz`` as an array, with sizes checked before anything is decompressed."""
    size = path.stat().st_size
    limit = MAX_BYTES_PER_FILE_BYTE * size + MEMORY_SLACK_BYTES
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise ValueError(f"{path}: corrupt eventsim model file (not a complete .npz archive: {exc})") from None
    arrays: dict[str, np.ndarray] = {}
    with zf:
        infos = zf.infolist()
        declared = sum(info.file_size for info in infos)
        if declared > limit:
            raise ValueError(f"{path}: its members declare {declared:,} bytes, more than {MAX_BYTES_PER_FILE_BYTE} "
                             f"x the {size:,}-byte file + {MEMORY_SLACK_BYTES:,}; refused as a zip bomb")
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{path}: unexpected member {info.filename!r}; an eventsim model holds .npy "
                                 "arrays only")
            name = info.filename[:-4]
            if name in arrays:
                raise ValueError(f"{path}: array {name!r} appears twice in the archive")
            try:
                with zf.open(info) as fh:
                    shape, fortran, dtype = _member_header(fh, name, path)
                    header = fh.tell()
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if header + nbytes != info.file_size:
                    raise ValueError(f"{path}: array {name!r} declares shape {shape} of {dtype} ({nbytes:,} bytes) "
                                     f"but its member holds {info.file_size - header:,} bytes of data")
                with zf.open(info) as fh:
                    arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
            except (ValueError, TypeError, IndexError, KeyError, SyntaxError, RecursionError, MemoryError,
                    OverflowError) as exc:      # what NumPy's header parser (ast.literal_eval) raises for junk
                message = str(exc)
                raise ValueError(message if message.startswith(str(path)) else
                                 f"{path}: array {name!r} is corrupt ({message})") from None
            except _ZIP_ERRORS as exc:
                raise ValueError(f"{path}: array {name!r} is corrupt or truncated ({exc})") from None
    return arrays


def _description(arrays: dict[str, np.ndarray], path: Path) -> dict:
    raw = arrays.pop("__eventsim__", None)
    if raw is None:
        raise ValueError(f"{path}: not an eventsim model (no __eventsim__ entry)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: __eventsim__ entry is {raw.dtype} {raw.shape}; expected UTF-8 JSON bytes")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:   # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: corrupt eventsim model description ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the model description is a JSON {type(meta).__name__}, expected an object")
    if meta.get("format") != "eventsim" or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported eventsim model version {meta.get('version')!r}")
    shape = meta.get("input_shape")
    if not (isinstance(shape, list) and shape and all(type(v) is int and v > 0 for v in shape)):
        raise ValueError(f"{path}: input_shape {shape!r} is not a list of positive ints")
    if not isinstance(meta.get("layers"), list) or not all(isinstance(spec, dict) for spec in meta["layers"]):
        raise ValueError(f"{path}: 'layers' must be a list of objects")
    if not isinstance(meta.get("metadata"), (dict, type(None))):
        raise ValueError(f"{path}: 'metadata' must be an object")
    return meta


def load_native(path) -> nw.Network:
    """Read a model written by :func:`save_native`.

    Nothing in the file is unpickled or executed: members are checked to be plain numeric
    ``.npy`` arrays whose declared sizes match their data (and, together, stay within
    :data:`MAX_BYTES_PER_FILE_BYTE` times the file size) before they are decompressed.

    Raises
    ------
    ValueError
        Naming the file and the problem: not a zip archive, a pickled object array, a size
        mismatch, a zip bomb, corrupt JSON, an unknown layer type or field, a missing or unused
        array, or a layer that fails validation (e.g. NaN weights).
    """
    path = Path(path)
    arrays = _read_arrays(path)
    meta = _description(arrays, path)
    used: set[str] = set()
    layers = []
    for i, spec in enumerate(meta["layers"]):
        spec = dict(spec)
        kind = spec.pop("type", None)
        cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError(f"{path}: layer {i} has unknown type {kind!r}; expected one of {sorted(LAYER_TYPES)}")
        kwargs = {}
        for key, value in spec.items():
            if _non_finite(value):
                raise ValueError(f"{path}: layer {i} ({cls.__name__}) field {key}: {value!r} is not finite")
            if isinstance(value, dict):
                ref = value.get("array")
                if set(value) != {"array"} or not isinstance(ref, str):
                    raise ValueError(f"{path}: layer {i} field {key}: {value!r} is not an array reference")
                if ref not in arrays:
                    raise ValueError(f"{path}: layer {i} field {key} refers to missing array {ref}")
                used.add(ref)
                value = arrays[ref]
            kwargs[key] = value
        try:
            layers.append(cls(**kwargs))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: layer {i} ({cls.__name__}): {exc}") from None
    unused = sorted(set(arrays) - used)
    if unused:
        raise ValueError(f"{path}: arrays {unused[:5]} are not used by any layer; the file is corrupt or was edited")
    try:
        return nw.Network(tuple(meta["input_shape"]), layers, metadata=dict(meta.get("metadata") or {}))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _detect(path: Path, head: bytes) -> bool:
    if not head.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return "__eventsim__.npy" in zf.namelist()
    except _ZIP_ERRORS:
        return False


register_format(ModelFormat("eventsim", load_native, save_native, _detect, (".npz",),
                            "eventsim native model (.npz, no pickles)"))
