"""Reader for jAER AEDAT 2.0 files (DVS128 and DAVIS address layouts).

Layout (big-endian)::

    '#'-lines of text ending in '\\n' (first line '#!AER-DAT2.0'), then 8-byte records
    uint32 address, uint32 timestamp_us

DVS128 address: ``x = (a >> 1) & 0x7F``, ``y = (a >> 8) & 0x7F``, ``a & 1`` = 1 for OFF (so
``p = 1 - (a & 1)``); bit 15 flags external events, which are dropped.

DAVIS address (jAER ``DavisBaseCamera``): bit 31 = 0 for DVS events (1 = APS/IMU), bit 10 = 1 for
external-input events, ``x = (a >> 12) & 0x3FF``, ``y = (a >> 22) & 0x1FF``, ``p = (a >> 11) & 1``
(1 = ON). Only DVS polarity events are returned.

Coordinates are returned as stored in the address ("raw"); jAER's display mirrors x on the DVS128
(``x' = 127 - x``) and other tools transpose (see ``flip_x``/``flip_y``).
"""
from __future__ import annotations

import os
import re
from typing import Any, Sequence

import numpy as np

from ._core import EVENT_DTYPE, read_file_bytes
from .validate import normalize_sensor_size, validate_events

__all__ = ["read_aedat2", "read_aedat2_header", "decode_aedat2", "parse_aedat2_header"]

_RECORD = 8
_RECORD_V1 = 6
# chip class name fragment -> (layout, (width, height)); first match wins
_CHIPS = (
    ("davis346", ("davis", (346, 260))), ("davis240", ("davis", (240, 180))),
    ("davis640", ("davis", (640, 480))), ("davis128", ("davis", (128, 128))),
    ("davis208", ("davis", (208, 192))), ("dvs128", ("dvs128", (128, 128))),
    ("tmpdiff128", ("dvs128", (128, 128))),
)
_TEXT_BYTES = bytes([9, 10, 13]) + bytes(range(32, 256))  # bytes a header line may contain


def parse_aedat2_header(data: bytes, *, source: str = "<bytes>") -> dict[str, Any]:
    """Parse the jAER text header at the start of ``data`` (see :func:`read_aedat2_header`)."""
    if not data.startswith(b"#!AER-DAT"):
        raise ValueError(f"{source}: not an AEDAT file: it starts with {data[:12]!r}, expected b'#!AER-DAT'")
    pos, n = 0, len(data)
    lines: list[str] = []
    while pos < n and data[pos] == 0x23:  # '#'
        end = data.find(b"\n", pos)
        stop = n if end < 0 else end + 1
        line = data[pos:stop]
        if line.translate(None, _TEXT_BYTES):  # control bytes left: binary data, not a header line
            break  # binary data that happens to start with '#': the header has ended
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        pos = stop
    m = re.match(r"#!AER-DAT(\d+)\.(\d+)", lines[0]) if lines else None
    if m is None:
        raise ValueError(f"{source}: malformed AEDAT version line {lines[0][:40]!r} at byte offset 0")
    info: dict[str, Any] = {"version": float(f"{m.group(1)}.{m.group(2)}"), "data_start": pos,
                            "creation_time_ms": None, "chip": None, "layout": None, "sensor_size": None,
                            "n_header_lines": len(lines)}
    for line in lines[1:]:
        if "Creation time:" in line:
            digits = re.findall(r"\d+", line.split("Creation time:")[1])
            info["creation_time_ms"] = int(digits[-1]) if digits else None
        elif line.startswith("# AEChip:"):
            chip = line.split(":", 1)[1].strip()
            info["chip"] = chip
            low = chip.lower()
            for key, (layout, size) in _CHIPS:
                if key in low:
                    info["layout"], info["sensor_size"] = layout, size
                    break
    return info


def read_aedat2_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read the header of a jAER AEDAT 1.x/2.x file.

    Returns
    -------
    dict
        ``version`` (float), ``data_start`` (byte offset of the first event record), ``creation_time_ms``
        (``System.currentTimeMillis()`` from the header or None), ``chip`` (jAER AEChip class or None),
        ``layout`` ("dvs128", "davis" or None), ``sensor_size`` ((width, height) or None),
        ``n_header_lines``.
    """
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    return parse_aedat2_header(head, source=str(path))


def decode_aedat2(data: bytes, *, source: str = "<bytes>", layout: str | None = None,
                  sensor_size: Sequence[int] | None = None, flip_x: bool = False, flip_y: bool = False,
                  sort: bool = False) -> np.ndarray:
    """Decode the bytes of an AEDAT 1.x/2.x file (see :func:`read_aedat2`)."""
    info = parse_aedat2_header(data, source=source)
    major = int(info["version"])
    if major not in (1, 2):
        raise ValueError(f"{source}: AEDAT version {info['version']} is not supported by this reader "
                         "(AEDAT 1.x/2.x here; AEDAT 4.0 via read_aedat4; AEDAT 3.x is not supported)")
    layout = layout or info["layout"] or "dvs128"
    if layout not in ("dvs128", "davis"):
        raise ValueError(f"{source}: unknown address layout {layout!r}; expected 'dvs128' or 'davis'")
    size = normalize_sensor_size(sensor_size) or info["sensor_size"] or (128, 128)
    start = info["data_start"]
    record = _RECORD if major == 2 else _RECORD_V1
    body = len(data) - start
    if body % record:
        raise ValueError(f"{source}: truncated AEDAT {info['version']} file: {body} bytes of events after the "
                         f"header (byte offset {start}) is not a multiple of {record}; the record at byte offset "
                         f"{start + body - body % record} is incomplete")
    rec_dtype = np.dtype([("a", ">u4"), ("t", ">u4")]) if major == 2 else np.dtype([("a", ">u2"), ("t", ">u4")])
    raw = np.frombuffer(data, dtype=rec_dtype, offset=start, count=body // record)
    a = raw["a"].astype(np.uint32)
    if layout == "dvs128":
        keep = (a & 0x8000) == 0
        x, y, p = (a >> 1) & 0x7F, (a >> 8) & 0x7F, 1 - (a & 1)
    else:
        keep = (a & 0x80000400) == 0  # bit 31: APS/IMU, bit 10: external input
        x, y, p = (a >> 12) & 0x3FF, (a >> 22) & 0x1FF, (a >> 11) & 1
    t = raw["t"]
    if keep.all():
        idx = None
    else:
        idx = np.flatnonzero(keep)
        t, x, y, p = t[idx], x[idx], y[idx], p[idx]
    ev = np.empty(t.size, dtype=EVENT_DTYPE)
    ev["t"] = t
    ev["x"] = (size[0] - 1 - x.astype(np.int64)) if flip_x else x
    ev["y"] = (size[1] - 1 - y.astype(np.int64)) if flip_y else y
    ev["p"] = p

    def locate(i: int) -> str:
        return f"event {i} (byte offset {start + (i if idx is None else int(idx[i])) * record})"

    return validate_events(ev, size, sort=sort, source=source, locate=locate)


def read_aedat2(path: str | os.PathLike, *, layout: str | None = None, sensor_size: Sequence[int] | None = None,
                flip_x: bool = False, flip_y: bool = False, sort: bool = False) -> np.ndarray:
    """Read a jAER AEDAT 2.0 (or 1.0) recording.

    Parameters
    ----------
    path : str or path-like
    layout : {"dvs128", "davis"}, optional
        Address layout; default from the header's ``# AEChip:`` line, else "dvs128".
    sensor_size : (width, height), optional
        Default from the chip (DVS128 128 x 128, DAVIS346 346 x 260, DAVIS240 240 x 180), else 128 x 128.
    flip_x, flip_y : bool, default False
        Mirror coordinates (``x' = width - 1 - x``); jAER displays DVS128 data with ``flip_x=True``.
    sort : bool, default False
        Sort by time instead of raising when timestamps decrease.

    Returns
    -------
    numpy.ndarray
        DVS polarity events (``t`` µs as stored, ``x``, ``y``, ``p`` 1 = ON), sorted by ``t``. A file
        with a header and no records gives an empty array.

    Raises
    ------
    ValueError
        Not an AEDAT file, unsupported version, truncated record, decreasing timestamps, coordinates
        outside the sensor; messages name the file and the byte offset.
    """
    return decode_aedat2(read_file_bytes(path), source=str(path), layout=layout, sensor_size=sensor_size,
                         flip_x=flip_x, flip_y=flip_y, sort=sort)
