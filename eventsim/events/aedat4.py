"""Reader for AEDAT 4.0 files (iniVation DV), with a minimal hand-written FlatBuffer decoder.

Layout (little-endian)::

    b'#!AER-DAT4.0\\r\\n'
    int32 N, N bytes: IOHeader FlatBuffer ('IOHE'): compression, dataTablePosition, infoNode (XML)
    packets until dataTablePosition (or end of file):
        int32 streamId, int32 byteSize, byteSize bytes compressed as one LZ4 frame / ZSTD frame
        payload: uint32 size, then a FlatBuffer ('EVTS' for events) whose field 0 is a vector of
        16-byte Event structs: int64 timestamp_us, int16 x, int16 y, uint8 on, 3 bytes padding

LZ4 needs the ``lz4`` package and ZSTD the ``zstandard`` package.
"""
from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from typing import Any, Sequence

import numpy as np

from ._core import EVENT_DTYPE, read_file_bytes
from .validate import normalize_sensor_size, validate_events

__all__ = ["read_aedat4", "decode_aedat4", "parse_aedat4_header"]

MAGIC = b"#!AER-DAT4.0\r\n"
_COMPRESSION = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}
_EVENT = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                   "offsets": [0, 8, 10, 12], "itemsize": 16})


class _FlatBuffer:
    """Bounds-checked access to one FlatBuffer in ``buf``; errors name ``where`` and a byte offset."""

    def __init__(self, buf: bytes, base: int, where: str) -> None:
        self.buf, self.base, self.where = buf, base, where

    def _fail(self, what: str, pos: int) -> ValueError:
        return ValueError(f"{self.where}: corrupt FlatBuffer: {what} at byte offset {self.base + pos}")

    def _unpack(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.buf):
            raise self._fail(f"{size}-byte read outside the {len(self.buf)}-byte buffer", pos)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def root(self, pos: int = 0) -> int:
        return pos + self._unpack("<I", pos)

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None when absent."""
        vtable = table - self._unpack("<i", table)
        vt_size = self._unpack("<H", vtable)
        if vt_size < 4 or vt_size % 2:
            raise self._fail(f"vtable size {vt_size}", vtable)
        if 4 + 2 * index >= vt_size:
            return None
        off = self._unpack("<H", vtable + 4 + 2 * index)
        return table + off if off else None

    def scalar(self, table: int, index: int, fmt: str, default: int) -> int:
        pos = self.field(table, index)
        return default if pos is None else self._unpack(fmt, pos)

    def vector(self, table: int, index: int, item_size: int) -> tuple[int, int]:
        """``(start, count)`` of a vector field; ``(0, 0)`` when absent."""
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        vec = pos + self._unpack("<I", pos)
        count = self._unpack("<I", vec)
        start = vec + 4
        if start + count * item_size > len(self.buf):
            raise self._fail(f"vector of {count} x {item_size} bytes runs past the end", vec)
        return start, count

    def string(self, table: int, index: int) -> str:
        start, count = self.vector(table, index, 1)
        return self.buf[start:start + count].decode("utf-8", "replace")


def _streams(info_xml: str, source: str) -> dict[int, dict[str, Any]]:
    """Stream id -> {type, width, height, source, ts_offset} from the IOHeader's infoNode XML."""
    if "<!DOCTYPE" in info_xml or "<!ENTITY" in info_xml:
        # DV never writes a DTD; entity declarations are how XML expands a few bytes into gigabytes
        raise ValueError(f"{source}: AEDAT4 infoNode XML is malformed: it declares a DTD or entities, which "
                         "AEDAT 4.0 headers never contain; refused without expanding them")
    try:
        root = ET.fromstring(info_xml) if info_xml.strip() else None
    except ET.ParseError as exc:
        raise ValueError(f"{source}: AEDAT4 infoNode XML is malformed: {exc}") from None
    out: dict[int, dict[str, Any]] = {}
    if root is None:
        return out
    for outinfo in root.iter("node"):
        if outinfo.get("name") != "outInfo":
            continue
        for node in outinfo.findall("node"):
            try:
                sid = int(node.get("name", ""))
            except ValueError:
                continue
            attrs = {a.get("key"): (a.text or "") for a in node.iter("attr")}
            def _int(key: str) -> int | None:
                try:
                    return int(attrs[key])
                except (KeyError, ValueError):
                    return None
            out[sid] = {"type": attrs.get("typeIdentifier"), "width": _int("sizeX"), "height": _int("sizeY"),
                        "source": attrs.get("source"), "ts_offset": _int("tsOffset")}
    return out


def parse_aedat4_header(data: bytes, *, source: str = "<bytes>") -> dict[str, Any]:
    """Parse the magic line and IOHeader.

    Returns
    -------
    dict
        ``compression`` ("none", "lz4", "zstd"), ``data_table_position`` (byte offset or -1),
        ``data_start`` (byte offset of the first packet), ``streams`` (id -> type, width, height,
        source, ts_offset), ``info_xml``.
    """
    if not data.startswith(MAGIC):
        raise ValueError(f"{source}: not an AEDAT 4.0 file: it starts with {data[:14]!r}, expected {MAGIC!r}")
    if len(data) < len(MAGIC) + 4:
        raise ValueError(f"{source}: truncated AEDAT4 header at byte offset {len(MAGIC)}")
    (n,) = struct.unpack_from("<i", data, len(MAGIC))
    start = len(MAGIC) + 4
    if n <= 0 or start + n > len(data):
        raise ValueError(f"{source}: truncated or corrupt AEDAT4 header: IOHeader size {n} at byte offset "
                         f"{len(MAGIC)} does not fit in the {len(data)}-byte file")
    fb = _FlatBuffer(data[start:start + n], start, f"{source} (IOHeader)")
    table = fb.root()
    code = fb.scalar(table, 0, "<i", 0)
    if code not in _COMPRESSION:
        raise ValueError(f"{source}: unknown AEDAT4 compression code {code} in the IOHeader")
    info = fb.string(table, 2)
    return {"compression": _COMPRESSION[code], "data_table_position": fb.scalar(table, 1, "<q", -1),
            "data_start": start + n, "streams": _streams(info, source), "info_xml": info}


#: Decoding ``n`` bytes of AEDAT4 may decompress at most ``MAX_BYTES_PER_FILE_BYTE * n +
#: MEMORY_SLACK_BYTES`` bytes of packets in all (events compress ~3-10x; more is a bomb).
MAX_BYTES_PER_FILE_BYTE = 32
MEMORY_SLACK_BYTES = 64 << 20


def _decompress(payload: bytes, method: str, where: str, limit: int) -> bytes:
    """Decompress one packet, 1 MiB at a time; ValueError if it is corrupt or exceeds ``limit`` bytes."""
    if method == "none":
        return payload
    chunk, parts, total = 1 << 20, [], 0

    def keep(data: bytes) -> None:
        nonlocal total
        parts.append(data)
        total += len(data)
        if total > limit:
            raise ValueError(f"{where}: packet decompresses to more than {limit:,} bytes, over the limit of "
                             f"{MAX_BYTES_PER_FILE_BYTE} x the file size + {MEMORY_SLACK_BYTES:,}; refused as a "
                             "decompression bomb")

    if method == "lz4":
        try:
            import lz4.frame
        except ImportError:
            raise ImportError("reading LZ4-compressed AEDAT4 files needs the 'lz4' package: pip install lz4") from None
        dec = lz4.frame.LZ4FrameDecompressor()
        try:
            keep(dec.decompress(payload, max_length=chunk))
            while not dec.eof and not dec.needs_input:
                keep(dec.decompress(b"", max_length=chunk))
        except RuntimeError as exc:  # lz4 raises RuntimeError for corrupt frames
            raise ValueError(f"{where}: corrupt LZ4 packet: {exc}") from None
        if not dec.eof:
            raise ValueError(f"{where}: corrupt LZ4 packet: frame incomplete")
        return b"".join(parts)
    try:
        import zstandard
    except ImportError:
        raise ImportError("reading ZSTD-compressed AEDAT4 files needs the 'zstandard' package: "
                          "pip install zstandard") from None
    try:
        declared = zstandard.frame_content_size(payload)      # -1 when the frame does not say
        if declared > limit:
            raise ValueError(f"{where}: packet declares {declared:,} decompressed bytes, over the limit of "
                             f"{limit:,} ({MAX_BYTES_PER_FILE_BYTE} x the file size + {MEMORY_SLACK_BYTES:,}); "
                             "refused as a decompression bomb")
        with zstandard.ZstdDecompressor().stream_reader(payload) as reader:
            while data := reader.read(chunk):
                keep(data)
    except zstandard.ZstdError as exc:
        raise ValueError(f"{where}: corrupt ZSTD packet: {exc}") from None
    if declared >= 0 and total != declared:
        raise ValueError(f"{where}: corrupt ZSTD packet: {total} bytes decompressed, the frame declares {declared}")
    return b"".join(parts)


def decode_aedat4(data: bytes, *, source: str = "<bytes>", stream: int | None = None,
                  sensor_size: Sequence[int] | None = None, sort: bool = False) -> tuple[np.ndarray, dict]:
    """Decode AEDAT 4.0 bytes; returns ``(events, header)`` (see :func:`read_aedat4`)."""
    head = parse_aedat4_header(data, source=source)
    evts = [sid for sid, s in head["streams"].items() if s["type"] == "EVTS"]
    if stream is None:
        stream = min(evts) if evts else 0
    elif head["streams"] and stream not in evts:
        raise ValueError(f"{source}: stream {stream} is not an event (EVTS) stream; event streams: {evts}")
    meta = head["streams"].get(stream, {})
    size = normalize_sensor_size(sensor_size)
    if size is None and meta.get("width") and meta.get("height"):
        size = (meta["width"], meta["height"])
    head["sensor_size"], head["stream"] = size, stream
    end = head["data_table_position"] if 0 < head["data_table_position"] <= len(data) else len(data)
    pos = head["data_start"]
    chunks: list[np.ndarray] = []
    offsets: list[tuple[int, int]] = []  # (first event index, byte offset of packet)
    n_total = 0
    budget = MAX_BYTES_PER_FILE_BYTE * len(data) + MEMORY_SLACK_BYTES
    while pos < end:
        if pos + 8 > end:
            raise ValueError(f"{source}: truncated AEDAT4 packet header at byte offset {pos}")
        sid, size_b = struct.unpack_from("<ii", data, pos)
        if size_b < 0 or pos + 8 + size_b > end:
            raise ValueError(f"{source}: truncated or corrupt AEDAT4 packet at byte offset {pos}: "
                             f"declares {size_b} bytes, {end - pos - 8} remain")
        if sid == stream:
            where = f"{source}: packet at byte offset {pos}"
            buf = _decompress(data[pos + 8:pos + 8 + size_b], head["compression"], where, budget)
            budget -= len(buf)
            fb = _FlatBuffer(buf, 0, where + " (decompressed)")
            if len(buf) < 12 or buf[8:12] != b"EVTS":
                raise ValueError(f"{where}: expected an 'EVTS' FlatBuffer, found identifier {buf[8:12]!r}")
            start, count = fb.vector(fb.root(4), 0, _EVENT.itemsize)
            if count:
                chunks.append(np.frombuffer(buf, dtype=_EVENT, count=count, offset=start))
                offsets.append((n_total, pos))
                n_total += count
        pos += 8 + size_b
    raw = np.concatenate(chunks) if chunks else np.zeros(0, dtype=_EVENT)
    firsts = np.array([o[0] for o in offsets], dtype=np.int64)

    def locate(i: int) -> str:
        k = int(np.searchsorted(firsts, i, side="right")) - 1
        return f"event {i} (event {i - offsets[k][0]} of the packet at byte offset {offsets[k][1]})"

    if raw.size and raw["on"].max() > 1:
        i = int(np.flatnonzero(raw["on"] > 1)[0])
        raise ValueError(f"{source}: polarity byte at {locate(i)} is {int(raw['on'][i])}, expected 0 (OFF) or 1 (ON)")
    events = np.empty(raw.size, dtype=EVENT_DTYPE)
    events["t"], events["x"], events["y"], events["p"] = raw["t"], raw["x"], raw["y"], raw["on"]

    return validate_events(events, size, sort=sort, source=source, locate=locate), head


def read_aedat4(path: str | os.PathLike, *, stream: int | None = None, sensor_size: Sequence[int] | None = None,
                sort: bool = False) -> np.ndarray:
    """Read the polarity events of an AEDAT 4.0 recording.

    Parameters
    ----------
    path : str or path-like
    stream : int, optional
        Stream id; default the lowest-numbered ``EVTS`` stream in the header.
    sensor_size : (width, height), optional
        Default ``sizeX`` x ``sizeY`` of that stream in the header.
    sort : bool, default False
        Sort by time instead of raising when timestamps decrease.

    Returns
    -------
    numpy.ndarray
        Events with absolute timestamps as stored (µs, Unix time for DV recordings), ``p`` 1 = ON.

    Raises
    ------
    ValueError
        Wrong magic, truncated header or packet, corrupt compressed packet or FlatBuffer, decreasing
        timestamps, coordinates outside the sensor; messages name the file and the byte offset.
    ImportError
        When the file is LZ4/ZSTD compressed and ``lz4``/``zstandard`` is not installed.
    """
    return decode_aedat4(read_file_bytes(path), source=str(path), stream=stream, sensor_size=sensor_size,
                         sort=sort)[0]
