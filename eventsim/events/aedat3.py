"""Reader for AEDAT 3.1 files (iniVation cAER / early DV): polarity events of the packet stream.

Layout (little-endian)::

    b'#!AER-DAT3.1\\r\\n', then '#'-lines ending in '\\r\\n' (e.g. '#Format: RAW', '#Source 1: DVS128',
    '#Start-Time: ...'), ending with b'#!END-HEADER\\r\\n'; then packets:
        28-byte header: int16 eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset,
                        int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid
        eventCapacity * eventSize bytes of events
    polarity events (eventType 1, eventSize 8): uint32 data, int32 timestamp
        data: bit 0 valid, bit 1 polarity (1 ON), bits 16..2 y, bits 31..17 x
        time (µs) = eventTSOverflow << 31 | timestamp

Packets of other types (special, frame, IMU ...) are skipped; events whose valid bit is 0 are
dropped. No real AEDAT 3.1 recording was at hand when this reader was written: it is tested on files
built from this layout only.
"""
from __future__ import annotations

import os
import re
import struct
from typing import Any, Sequence

import numpy as np

from ._core import EVENT_DTYPE, read_file_bytes
from .validate import finish_decoded

__all__ = ["read_aedat3", "decode_aedat3", "parse_aedat3_header", "AEDAT3_MAGIC", "SOURCE_SENSORS"]

AEDAT3_MAGIC = b"#!AER-DAT3.1\r\n"
_END = b"#!END-HEADER\r\n"
_PACKET = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
_POLARITY = np.dtype([("data", "<u4"), ("ts", "<i4")])
#: Sensor (width, height) by the camera name of a ``#Source N: NAME`` header line (prefix match).
SOURCE_SENSORS = (("DVS128", (128, 128)), ("DAVIS240", (240, 180)), ("DAVIS346", (346, 260)),
                  ("DAVIS640", (640, 480)), ("DVXPLORER", (640, 480)))


def parse_aedat3_header(data: bytes, *, source: str = "<bytes>") -> dict[str, Any]:
    """``sources`` (id -> camera name), ``sensor_size`` (of the first known source, or None) and
    ``data_start`` (byte offset of the first packet)."""
    if not data.startswith(b"#!AER-DAT3"):
        raise ValueError(f"{source}: not an AEDAT 3 file: it starts with {data[:12]!r}")
    if not data.startswith(AEDAT3_MAGIC):
        raise ValueError(f"{source}: AEDAT version {data[9:12].decode('latin-1')!r} is not supported "
                         "(this reader decodes AEDAT 3.1)")
    end = data.find(_END)
    if end < 0:
        raise ValueError(f"{source}: truncated AEDAT 3.1 header: no '#!END-HEADER' line")
    sources = {}
    for line in data[:end].decode("latin-1").split("\r\n"):
        m = re.match(r"#Source (\d+): (\S+)", line)
        if m:
            sources[int(m.group(1))] = m.group(2)
    size = None
    for name in sources.values():
        for prefix, known in SOURCE_SENSORS:
            if name.upper().startswith(prefix):
                size = known
                break
        if size:
            break
    return {"sources": sources, "sensor_size": size, "data_start": end + len(_END)}


def decode_aedat3(data: bytes, *, source: str = "<bytes>", sensor_size: Sequence[int] | None = None,
                  sort: bool = False) -> tuple[np.ndarray, dict]:
    """Decode AEDAT 3.1 bytes; returns ``(events, header)`` (see :func:`read_aedat3`)."""
    head = parse_aedat3_header(data, source=source)
    pos, n = head["data_start"], len(data)
    parts, origins = [], []
    while pos < n:
        if pos + _PACKET.size > n:
            raise ValueError(f"{source}: truncated AEDAT 3.1 file: {n - pos} bytes at byte offset {pos} are not a "
                             f"whole {_PACKET.size}-byte packet header")
        kind, _src, size, _tso, overflow, capacity, number, valid = _PACKET.unpack_from(data, pos)
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity or not 0 <= valid <= number or overflow < 0:
            raise ValueError(f"{source}: corrupt AEDAT 3.1 packet header at byte offset {pos}: eventSize {size}, "
                             f"eventCapacity {capacity}, eventNumber {number}, eventValid {valid}, "
                             f"eventTSOverflow {overflow}")
        body = pos + _PACKET.size
        if body + capacity * size > n:
            raise ValueError(f"{source}: truncated AEDAT 3.1 file: the packet at byte offset {pos} declares "
                             f"{capacity} x {size} bytes of events but {n - body} bytes remain")
        if kind == POLARITY_EVENT:
            if size != _POLARITY.itemsize:
                raise ValueError(f"{source}: AEDAT 3.1 polarity packet at byte offset {pos} has eventSize {size}, "
                                 f"expected {_POLARITY.itemsize}")
            rec = np.frombuffer(data, dtype=_POLARITY, count=number, offset=body)
            keep = (rec["data"] & 1).astype(bool)
            if np.any(rec["ts"][keep] < 0):
                i = int(np.flatnonzero(keep & (rec["ts"] < 0))[0])
                raise ValueError(f"{source}: negative timestamp {int(rec['ts'][i])} in the event at byte offset "
                                 f"{body + 8 * i}")
            parts.append((rec[keep], overflow))
            origins.append(body + 8 * np.flatnonzero(keep))
        pos = body + capacity * size
    total = sum(len(r) for r, _ in parts)
    ev = np.empty(total, dtype=EVENT_DTYPE)
    i = 0
    for rec, overflow in parts:
        d = rec["data"]
        sl = slice(i, i + len(rec))
        ev["t"][sl] = (np.int64(overflow) << 31) | rec["ts"].astype(np.int64)
        ev["x"][sl] = (d >> 17) & 0x7FFF
        ev["y"][sl] = (d >> 2) & 0x7FFF
        ev["p"][sl] = (d >> 1) & 1
        i += len(rec)
    offsets = np.concatenate(origins) if origins else np.zeros(0, np.int64)
    return finish_decoded(ev, head, sensor_size, sort, source,
                          lambda j: f"event {j} (byte offset {int(offsets[j])})")


def read_aedat3(path: str | os.PathLike, *, sensor_size: Sequence[int] | None = None,
                sort: bool = False) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 file (cAER / DV).

    Parameters
    ----------
    path : str or path-like
    sensor_size : (width, height), optional
        Default from a ``#Source N: NAME`` header line naming a known camera (:data:`SOURCE_SENSORS`);
        otherwise coordinates are only checked to be >= 0.
    sort : bool, default False
        Sort by time instead of raising when timestamps decrease.

    Returns
    -------
    numpy.ndarray
        Events (``t`` µs, ``x``, ``y``, ``p`` 1 = ON), sorted by ``t``.

    Raises
    ------
    ValueError
        Wrong magic or version, missing end of header, truncated or corrupt packet headers, decreasing
        timestamps, coordinates outside the sensor; messages name the file and the byte offset.
    """
    return decode_aedat3(read_file_bytes(path), source=str(path), sensor_size=sensor_size, sort=sort)[0]
