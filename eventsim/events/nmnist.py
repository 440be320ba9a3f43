"""Reader for the native N-MNIST / N-Caltech101 ``.bin`` format (SLAYER names it ``.bs2``).

No header; 5-byte records (Orchard et al. 2015)::

    byte 0  x (uint8)
    byte 1  y (uint8)
    byte 2  bit 7: polarity (1 = ON, 0 = OFF); bits 6..0: timestamp bits 22..16
    byte 3  timestamp bits 15..8
    byte 4  timestamp bits 7..0          (timestamp in µs, big-endian, 23 bits)
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ._core import EVENT_DTYPE, read_file_bytes
from .validate import validate_events

__all__ = ["read_nmnist", "decode_nmnist", "NMNIST_SENSOR_SIZE"]

#: N-MNIST sensor size ``(width, height)`` in pixels.
NMNIST_SENSOR_SIZE = (34, 34)
_RECORD = 5
_REC_DTYPE = np.dtype({"names": ["x", "ytp"], "formats": ["u1", ">u4"], "offsets": [0, 1], "itemsize": _RECORD})


def decode_nmnist(data: bytes, *, source: str = "<bytes>", sensor_size: Sequence[int] | None = NMNIST_SENSOR_SIZE,
                  sort: bool = False) -> np.ndarray:
    """Decode the bytes of an N-MNIST ``.bin`` file (see :func:`read_nmnist`)."""
    n = len(data)
    if n % _RECORD:
        raise ValueError(f"{source}: truncated N-MNIST file: {n} bytes is not a multiple of the 5-byte "
                         f"record; the record at byte offset {n - n % _RECORD} is incomplete")
    # byte 0 = x; bytes 1-4 read as one big-endian uint32 = y << 24 | p << 23 | t (23 bits)
    raw = np.frombuffer(data, dtype=_REC_DTYPE)
    ytp = raw["ytp"]
    ev = np.empty(raw.size, dtype=EVENT_DTYPE)
    ev["x"] = raw["x"]
    ev["y"] = ytp >> 24
    ev["p"] = (ytp >> 23) & 1
    ev["t"] = ytp & 0x7FFFFF
    return validate_events(ev, sensor_size, sort=sort, source=source,
                           locate=lambda i: f"event {i} (byte offset {i * _RECORD})")


def read_nmnist(path: str | os.PathLike, *, sensor_size: Sequence[int] | None = NMNIST_SENSOR_SIZE,
                sort: bool = False) -> np.ndarray:
    """Read an N-MNIST ``.bin``/``.bs2`` recording.

    Parameters
    ----------
    path : str or path-like
        The file.
    sensor_size : (width, height), default (34, 34)
        Coordinates are checked against it; ``None`` checks only that they are >= 0
        (N-Caltech101 uses the same format on a larger sensor).
    sort : bool, default False
        Sort by time instead of raising when timestamps decrease.

    Returns
    -------
    numpy.ndarray
        Events (``t`` µs, ``x``, ``y``, ``p``), sorted by ``t``.

    Raises
    ------
    ValueError
        Truncated file (size not a multiple of 5 bytes), decreasing timestamps, coordinates outside
        the sensor; the message names the file, the event index and its byte offset.
    """
    return decode_nmnist(read_file_bytes(path), source=str(path), sensor_size=sensor_size, sort=sort)
