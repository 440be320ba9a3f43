"""Reader for Prophesee ``.dat`` files with CD events ("Event2d", EVT 2D, version 2).

Layout::

    '%'-lines of text ending in '\\n' (e.g. '% Version 2', '% Date ...', optionally '% Width 304'
    and '% Height 240' or '% geometry 304x240'), then
    uint8 event_type (0x00 = CD), uint8 event_size (8), then 8-byte little-endian records
    uint32 t_us, uint32 w:  x = w & 0x3FFF, y = (w >> 14) & 0x3FFF, p = (w >> 28) & 0xF (0 OFF, 1 ON)
"""
from __future__ import annotations

import os
import re
from typing import Any, Sequence

import numpy as np

from ._core import EVENT_DTYPE, read_file_bytes
from .validate import finish_decoded

__all__ = ["read_prophesee_dat", "decode_prophesee_dat", "parse_prophesee_header"]

_RECORD = 8


def parse_prophesee_header(data: bytes, *, source: str = "<bytes>") -> dict[str, Any]:
    """Parse the ``%`` header; returns ``version``, ``date``, ``sensor_size`` or None,
    ``event_type``, ``event_size`` and ``data_start`` (byte offset of the first record)."""
    if not data.startswith(b"%"):
        raise ValueError(f"{source}: not a Prophesee .dat file: it starts with {data[:12]!r}, expected a '%' header line")
    pos, n = 0, len(data)
    info: dict[str, Any] = {"version": None, "date": None, "sensor_size": None}
    width = height = None
    while pos < n and data[pos] == 0x25:  # '%'
        end = data.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{source}: truncated Prophesee header: the line at byte offset {pos} has no end")
        line = data[pos + 1:end].decode("latin-1").strip()
        pos = end + 1
        key, _, value = line.partition(" ")
        key = key.lower()
        if key == "version":
            try:
                info["version"] = int(value.split()[0])
            except (ValueError, IndexError):
                raise ValueError(f"{source}: malformed header line {line!r}") from None
        elif key == "date":
            info["date"] = value.strip()
        elif key == "width" and value.strip().isdigit():
            width = int(value)
        elif key == "height" and value.strip().isdigit():
            height = int(value)
        elif key == "geometry":
            m = re.match(r"\s*(\d+)\s*x\s*(\d+)", value)
            if m:
                width, height = int(m.group(1)), int(m.group(2))
    if width and height:
        info["sensor_size"] = (width, height)
    version = info["version"] or 0
    if version < 2:
        raise ValueError(f"{source}: Prophesee .dat version {info['version']} is not supported "
                         "(this reader decodes version 2 Event2d/CD files)")
    if pos + 2 > n:
        raise ValueError(f"{source}: truncated Prophesee file: no event type/size bytes at byte offset {pos}")
    info["event_type"], info["event_size"] = data[pos], data[pos + 1]
    if info["event_type"] != 0 or info["event_size"] != _RECORD:
        raise ValueError(f"{source}: unsupported Prophesee event type {info['event_type']} / size "
                         f"{info['event_size']} at byte offset {pos}; expected CD events (type 0, 8 bytes)")
    info["data_start"] = pos + 2
    return info


def decode_prophesee_dat(data: bytes, *, source: str = "<bytes>", sensor_size: Sequence[int] | None = None,
                         sort: bool = False) -> tuple[np.ndarray, dict]:
    """Decode ``.dat`` bytes; returns ``(events, header)`` (see :func:`read_prophesee_dat`)."""
    head = parse_prophesee_header(data, source=source)
    start = head["data_start"]
    body = len(data) - start
    if body % _RECORD:
        raise ValueError(f"{source}: truncated Prophesee file: {body} bytes of events after byte offset {start} "
                         f"is not a multiple of 8; the record at byte offset {start + body - body % _RECORD} is incomplete")
    raw = np.frombuffer(data, dtype=np.dtype([("t", "<u4"), ("w", "<u4")]), offset=start, count=body // _RECORD)
    w = raw["w"]
    ev = np.empty(raw.size, dtype=EVENT_DTYPE)
    ev["t"] = raw["t"]
    ev["x"] = w & 0x3FFF
    ev["y"] = (w >> 14) & 0x3FFF
    ev["p"] = (w >> 28) & 0xF
    return finish_decoded(ev, head, sensor_size, sort, source,
                          lambda i: f"event {i} (byte offset {start + i * _RECORD})")


def read_prophesee_dat(path: str | os.PathLike, *, sensor_size: Sequence[int] | None = None,
                       sort: bool = False) -> np.ndarray:
    """Read a Prophesee ``.dat`` CD recording (EVT 2D, version 2), as used by N-CARS and GEN1.

    Parameters
    ----------
    path : str or path-like
    sensor_size : (width, height), optional
        Default from ``% Width``/``% Height``/``% geometry`` header lines when present; otherwise
        coordinates are only checked to be >= 0 (N-CARS crops have no fixed size; tonic uses 120 x 100).
    sort : bool, default False
        Sort by time instead of raising when timestamps decrease.

    Returns
    -------
    numpy.ndarray
        Events (``t`` µs, ``x``, ``y``, ``p`` 1 = ON), sorted by ``t``.

    Raises
    ------
    ValueError
        Missing ``%`` header, unsupported version or event type, truncated records, polarity not
        0/1, decreasing timestamps; messages name the file and the byte offset.
    """
    return decode_prophesee_dat(read_file_bytes(path), source=str(path), sensor_size=sensor_size, sort=sort)[0]
