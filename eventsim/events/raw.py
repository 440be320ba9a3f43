"""Reader for Prophesee RAW files (``.raw``): EVT 3.0 (Gen4 / IMX636, 16-bit words) and EVT 2.0
(Gen3, 32-bit words), streamed in chunks of words.

Layout::

    '%'-lines of text ending in '\\n' ('% evt 3.0' or '% format EVT3;height=720;width=1280',
    optionally '% geometry 1280x720', '% plugin_name ...', '% end'), then little-endian words.

The word types of both formats are listed in :mod:`eventsim.kernels.evt`.

**Sensor size**: ``sensor_size=`` when given; else ``% geometry WxH``; else ``width=``/``height=``
of the ``% format`` line; else the sensor of a known ``% plugin_name`` / ``% sensor_generation``
(:data:`PLUGIN_SENSORS`); else a ``ValueError`` asking for ``sensor_size=``.

**Time** (µs, int64): the 24-bit (EVT 3.0) / 34-bit (EVT 2.0) camera time; each TIME_HIGH value
lower than the one before by at least half its range is a wrap and adds ``2**24`` / ``2**34`` µs.
A TIME_HIGH that changes value starts its period at low time 0 (EVT 3.0). Prophesee cameras write
the TIME_LOW word that follows a TIME_HIGH slightly ahead of the events after it (the shared Gen4
sample steps back ~11 µs eleven times). The rule here: events keep their order in the file, and an
event whose decoded time is earlier than the previous event's by at most ``max_backstep_us``
(:data:`MAX_BACKSTEP_US` by default) gets the previous event's time, so time never decreases and no
event moves by more than that tolerance. No wrap is ever inferred from TIME_LOW. A larger backward
step of an event, or a TIME_HIGH decrease smaller than half the range, is an error naming the byte
offset.

External-trigger words (``0xA``) are never CD events; ``triggers=True`` returns them as a second
array of :data:`TRIGGER_DTYPE` (``t`` µs, ``id`` channel, ``value`` 0 falling / 1 rising edge).
"""
from __future__ import annotations

import io
import os
import re
from typing import Any, BinaryIO, Iterator, Sequence

import numpy as np

from ..kernels import evt as K
from ._core import EVENT_DTYPE
from .validate import normalize_sensor_size

__all__ = ["read_raw", "iter_raw", "decode_raw", "parse_raw_header", "TRIGGER_DTYPE", "MAX_BACKSTEP_US",
           "PLUGIN_SENSORS", "DEFAULT_CHUNK_WORDS"]

#: External-trigger records: ``t`` µs, ``id`` trigger channel, ``value`` edge (0 falling, 1 rising).
TRIGGER_DTYPE = np.dtype([("t", "<i8"), ("id", "i1"), ("value", "i1")])
#: Default tolerance of a backward time step between consecutive events (µs), see the module doc.
MAX_BACKSTEP_US = 256
#: Words decoded per chunk (64 Ki words: 128 KiB of EVT 3.0, 256 KiB of EVT 2.0; cache-sized).
DEFAULT_CHUNK_WORDS = 1 << 16
#: Sensor (width, height) of a plugin or sensor name found in ``% plugin_name`` / ``% sensor_generation``.
PLUGIN_SENSORS = (("imx636", (1280, 720)), ("gen41", (1280, 720)), ("gen4", (1280, 720)),
                  ("gen31", (640, 480)), ("gen3", (640, 480)), ("imx8", (320, 320)), ("genx320", (320, 320)))
_FORMATS = {"3.0": ("3.0", 2), "evt3": ("3.0", 2), "evt3.0": ("3.0", 2), "2.0": ("2.0", 4), "evt2": ("2.0", 4),
            "evt2.0": ("2.0", 4)}
_MAX_SIDE = 2048                 # x and y are 11-bit fields in both formats
_MAX_HEADER = 1 << 20


def parse_raw_header(fh: BinaryIO, *, source: str = "<bytes>", evt: str | None = None,
                     sensor_size: Sequence[int] | None = None) -> dict[str, Any]:
    """Read the ``%`` header from ``fh`` (left at the first word).

    Returns
    -------
    dict
        ``evt`` ("3.0" or "2.0"), ``word_bytes`` (2 or 4), ``sensor_size`` (width, height),
        ``sensor_size_from`` (where the size came from), ``data_start`` (byte offset of the first
        word), ``fields`` (every header line as key -> value).
    """
    fields: dict[str, str] = {}
    pos = 0
    while True:
        first = fh.read(1)
        if first != b"%":
            if first:
                fh.seek(-1, io.SEEK_CUR)
            break
        line = fh.readline(_MAX_HEADER)
        if pos and not _is_header_text(line):
            # a first word whose low byte is '%' (0x25), e.g. ADDR_X x=37: data, not a header line
            fh.seek(-(1 + len(line)), io.SEEK_CUR)
            break
        if not line.endswith(b"\n"):
            raise ValueError(f"{source}: truncated Prophesee RAW header: the line at byte offset {pos} has no end")
        pos += 1 + len(line)
        if pos > _MAX_HEADER:
            raise ValueError(f"{source}: Prophesee RAW header longer than {_MAX_HEADER} bytes; not a RAW file")
        key, _, value = line.decode("latin-1").strip().partition(" ")
        fields[key.lower()] = value.strip()
        if key.lower() == "end":
            break
    if pos == 0:
        raise ValueError(f"{source}: not a Prophesee RAW file: no '%' header line at byte offset 0")
    fmt_line = fields.get("format", "")
    declared = evt or fields.get("evt") or fmt_line.split(";")[0]
    if not declared:
        raise ValueError(f"{source}: the Prophesee RAW header has no '% evt' or '% format' line naming the event "
                         "format; pass evt='3.0' or evt='2.0'")
    key = declared.strip().lower().replace(" ", "")
    if key not in _FORMATS:
        raise ValueError(f"{source}: unsupported Prophesee event format {declared!r} in the header "
                         "(this reader decodes EVT 3.0 and EVT 2.0: '% evt 3.0', '% evt 2.0', '% format EVT3...')")
    version, word_bytes = _FORMATS[key]
    size, origin = _sensor_size(fields, fmt_line, sensor_size, source)
    return {"evt": version, "word_bytes": word_bytes, "sensor_size": size, "sensor_size_from": origin,
            "data_start": pos, "fields": fields}


_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13))


def _is_header_text(line: bytes) -> bool:
    """A header line after '%': a space (or the line end) first, then text without control bytes."""
    return line[:1] in (b" ", b"\n", b"\r") and not any(c in _CONTROL for c in line.rstrip(b"\r\n"))


def _sensor_size(fields: dict, fmt_line: str, sensor_size, source: str) -> tuple[tuple[int, int], str]:
    given = normalize_sensor_size(sensor_size)
    size, origin = None, None
    if given:
        size, origin = given, "sensor_size="
    elif "geometry" in fields:
        m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", fields["geometry"])
        if not m:
            raise ValueError(f"{source}: malformed header line '% geometry {fields['geometry']}' (expected WxH)")
        size, origin = (int(m.group(1)), int(m.group(2))), "'% geometry'"
    else:
        opts = dict(item.partition("=")[::2] for item in fmt_line.split(";")[1:])
        if opts.get("width", "").isdigit() and opts.get("height", "").isdigit():
            size, origin = (int(opts["width"]), int(opts["height"])), "'% format'"
        else:
            names = (fields.get("plugin_name", "") + " " + fields.get("sensor_name", "")).lower()
            generation = fields.get("sensor_generation", "").replace(".", "")
            for name, known in PLUGIN_SENSORS:
                if name in names or (generation and name == f"gen{generation}"):
                    size, origin = known, f"plugin {name}"
                    break
    if size is None:
        raise ValueError(f"{source}: the Prophesee RAW header does not state the sensor size (no '% geometry', "
                         "no width/height in '% format', no known '% plugin_name'); pass sensor_size=(width, height)")
    if not (0 < size[0] <= _MAX_SIDE and 0 < size[1] <= _MAX_SIDE):
        raise ValueError(f"{source}: sensor size {size[0]}x{size[1]} from {origin} is impossible for a Prophesee RAW "
                         f"file (coordinates are 11-bit: 1..{_MAX_SIDE} pixels per side)")
    return size, origin


def _fail(status: int, index: int, words: np.ndarray, state: np.ndarray, head: dict, offset: int,
          source: str, max_backstep_us: int) -> ValueError:
    where = f"{source}: EVT {head['evt']} word 0x{int(words[index]):0{2 * head['word_bytes']}x} at byte offset {offset}"
    w = int(words[index])
    if status == K.UNKNOWN_WORD:
        kind = w >> (12 if head["word_bytes"] == 2 else 28)
        return ValueError(f"{where} has type 0x{kind:X}, which EVT {head['evt']} does not define (corrupt data, "
                          f"or a file of another format than the header's EVT {head['evt']})")
    if status == K.HIGH_BACKWARDS:
        bits = 12 if head["word_bytes"] == 2 else 28
        new = w & ((1 << bits) - 1)
        return ValueError(f"{where}: time goes backwards: TIME_HIGH {new} after {int(state[K.S_HIGH])}, a decrease "
                          f"smaller than half the {bits}-bit range, so not a wrap")
    if status == K.TIME_BACKWARDS:
        if head["word_bytes"] == 2:
            now = (int(state[K.S_WRAPS]) << 24) + (int(state[K.S_HIGH]) << 12) + int(state[K.S_LOW])
        else:
            now = (int(state[K.S_WRAPS]) << 34) + (int(state[K.S_HIGH]) << 6) + ((w >> 22) & 0x3F)
        last = int(state[K.S_T_LAST])
        return ValueError(f"{where}: time goes backwards: an event at {now} µs after one at {last} µs, "
                          f"{last - now} µs earlier (steps back of at most max_backstep_us={max_backstep_us} µs "
                          "are kept at the earlier time)")
    axis = "x" if status == K.X_OUTSIDE else "y"
    return ValueError(f"{where}: event {axis} lies outside the {head['sensor_size'][0]}x{head['sensor_size'][1]} "
                      f"sensor (size from {head['sensor_size_from']}); pass sensor_size=(width, height) if that is wrong")


def _stream(fh: BinaryIO, source: str, total: int, *, sensor_size, evt, max_backstep_us: int, chunk_words: int,
            head: dict | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(events, triggers)`` per chunk of ``chunk_words`` words (None: all words at once)."""
    if head is None:
        head = parse_raw_header(fh, source=source, evt=evt, sensor_size=sensor_size)
    size, start, nb = head["sensor_size"], head["data_start"], head["word_bytes"]
    if int(max_backstep_us) < 0:
        raise ValueError(f"max_backstep_us must be >= 0 µs, got {max_backstep_us}")
    if chunk_words is not None and chunk_words < 1:
        raise ValueError(f"chunk_words must be >= 1, got {chunk_words}")
    body = total - start
    if body % nb:
        raise ValueError(f"{source}: truncated Prophesee RAW file: {body} bytes of EVT {head['evt']} words after byte "
                         f"offset {start} is not a multiple of {nb}; the word at byte offset {total - body % nb} "
                         "is incomplete")
    count, decode = (K.count_evt3, K.decode_evt3) if nb == 2 else (K.count_evt2, K.decode_evt2)
    dtype = "<u2" if nb == 2 else "<u4"
    state = K.new_state()
    done = 0
    step = body // nb if chunk_words is None else int(chunk_words)
    while True:
        data = fh.read(max(1, step) * nb)
        if not data:
            return
        words = np.frombuffer(data, dtype=dtype)
        n_events, n_triggers = count(words)
        events, trig = np.empty(n_events, EVENT_DTYPE), np.empty(n_triggers, TRIGGER_DTYPE)
        k, m, status, index = decode(words, state, size[0], size[1], int(max_backstep_us), events, trig)
        if status != K.OK:
            raise _fail(status, index, words, state, head, start + (done + index) * nb, source, max_backstep_us)
        yield events, trig
        done += words.size


def _records(path, **kw) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    source = str(path)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a recording file") from None
    with fh:
        yield from _stream(fh, source, os.fstat(fh.fileno()).st_size, **kw)


def _join(parts: list) -> tuple[np.ndarray, np.ndarray]:
    """Events and triggers of all chunks as two arrays."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.zeros(0, EVENT_DTYPE), np.zeros(0, TRIGGER_DTYPE)
    return np.concatenate([e for e, _ in parts]), np.concatenate([g for _, g in parts])


def iter_raw(path: str | os.PathLike, *, sensor_size: Sequence[int] | None = None, evt: str | None = None,
             max_backstep_us: int = MAX_BACKSTEP_US, chunk_words: int = DEFAULT_CHUNK_WORDS,
             triggers: bool = False) -> Iterator[Any]:
    """Stream a Prophesee RAW file as consecutive event chunks (memory O(chunk_words)).

    Yields event arrays (:data:`~eventsim.events.EVENT_DTYPE`, ``t`` non-decreasing across chunks),
    or ``(events, triggers)`` pairs with ``triggers=True``. Parameters as :func:`read_raw`.
    """
    for ev, trig in _records(path, sensor_size=sensor_size, evt=evt, max_backstep_us=max_backstep_us,
                             chunk_words=chunk_words):
        yield (ev, trig) if triggers else ev


def raw_header(path: str | os.PathLike, *, sensor_size=None, evt=None) -> dict[str, Any]:
    """The header of a RAW file (see :func:`parse_raw_header`), reading nothing else."""
    with open(path, "rb") as fh:
        return parse_raw_header(fh, source=str(path), evt=evt, sensor_size=sensor_size)


def decode_raw(data: bytes, *, source: str = "<bytes>", sensor_size: Sequence[int] | None = None,
               evt: str | None = None, max_backstep_us: int = MAX_BACKSTEP_US,
               chunk_words: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Decode the bytes of a RAW file; returns ``(events, triggers, header)``."""
    fh = io.BytesIO(data)
    head = parse_raw_header(fh, source=source, evt=evt, sensor_size=sensor_size)
    parts = list(_stream(fh, source, len(data), sensor_size=sensor_size, evt=evt, max_backstep_us=max_backstep_us,
                         chunk_words=chunk_words, head=head))
    ev, trig = _join(parts)
    return ev, trig, head


def read_raw(path: str | os.PathLike, *, sensor_size: Sequence[int] | None = None, evt: str | None = None,
             max_backstep_us: int = MAX_BACKSTEP_US, triggers: bool = False,
             chunk_words: int | None = None) -> Any:
    """Read a Prophesee RAW recording (EVT 3.0 or EVT 2.0).

    Parameters
    ----------
    path : str or path-like
    sensor_size : (width, height), optional
        Overrides the header (see the module docstring for where the size comes from otherwise).
    evt : "3.0" or "2.0", optional
        Overrides the header's ``% evt`` / ``% format`` line.
    max_backstep_us : int, default :data:`MAX_BACKSTEP_US`
        Largest backward time step between consecutive events that is kept at the earlier time;
        a larger one is an error.
    triggers : bool, default False
        Also return the external-trigger records.
    chunk_words : int, optional
        Words decoded per kernel call; default all at once (the file's words are in memory anyway,
        and smaller than the events). Never changes the result.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        CD events (``t`` µs non-decreasing, ``x``, ``y``, ``p`` 1 = ON); with ``triggers=True`` also
        the trigger records (:data:`TRIGGER_DTYPE`).

    Raises
    ------
    ValueError
        Header without a supported format or a sensor size, impossible geometry, truncated words,
        undefined word types, time going backwards, coordinates outside the sensor; the message
        names the file and the byte offset.
    """
    ev, trig = _join(list(_records(path, sensor_size=sensor_size, evt=evt, max_backstep_us=max_backstep_us,
                                   chunk_words=chunk_words)))
    return (ev, trig) if triggers else ev
