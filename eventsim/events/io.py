"""Format detection, :func:`read_events`, and the recording summary behind ``eventsim inspect``."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ._core import read_file_bytes
from .aedat2 import decode_aedat2, parse_aedat2_header
from .aedat3 import decode_aedat3
from .aedat4 import MAGIC as AEDAT4_MAGIC, decode_aedat4
from .nmnist import NMNIST_SENSOR_SIZE, decode_nmnist
from .prophesee import decode_prophesee_dat
from .raw import DEFAULT_CHUNK_WORDS, decode_raw, iter_raw
from .validate import normalize_sensor_size, validate_events

__all__ = ["Recording", "read_events", "read_recording", "iter_events", "EventStream", "detect_format", "describe_recording",
           "format_recording", "READERS"]


@dataclass(frozen=True)
class Recording:
    """Events of one file with what the file says about them.

    Attributes
    ----------
    events : numpy.ndarray
        Validated events sorted by ``t`` (µs).
    sensor_size : (width, height) or None
        Pixels, from the header or the format; None when the file does not say.
    format : str
        Registry name of the reader ("nmnist", "aedat2", "aedat4", "prophesee_dat", "npy").
    meta : dict
        Header fields of the format.
    """

    events: np.ndarray
    sensor_size: tuple[int, int] | None
    format: str
    meta: dict = field(default_factory=dict)


def _nmnist(data: bytes, source: str, sensor_size, sort: bool, **kw) -> Recording:
    size = normalize_sensor_size(sensor_size) or NMNIST_SENSOR_SIZE
    return Recording(decode_nmnist(data, source=source, sensor_size=size, sort=sort), size, "nmnist", {})


def _aedat2(data: bytes, source: str, sensor_size, sort: bool, **kw) -> Recording:
    head = parse_aedat2_header(data, source=source)
    ev = decode_aedat2(data, source=source, sensor_size=sensor_size, sort=sort, **kw)
    size = normalize_sensor_size(sensor_size) or head["sensor_size"] or (128, 128)
    return Recording(ev, size, "aedat2", head)


def _aedat4(data: bytes, source: str, sensor_size, sort: bool, **kw) -> Recording:
    ev, head = decode_aedat4(data, source=source, sensor_size=sensor_size, sort=sort, **kw)
    head = {k: v for k, v in head.items() if k != "info_xml"}
    return Recording(ev, head["sensor_size"], "aedat4", head)


def _aedat3(data: bytes, source: str, sensor_size, sort: bool, **kw) -> Recording:
    ev, head = decode_aedat3(data, source=source, sensor_size=sensor_size, sort=sort)
    return Recording(ev, head["sensor_size"], "aedat3", head)


def _raw(data: bytes, source: str, sensor_size, sort: bool, **kw) -> Recording:
    ev, trig, head = decode_raw(data, source=source, sensor_size=sensor_size, **kw)
    return Recording(ev, head["sensor_size"], "prophesee_raw", {**head, "triggers": trig})


def _prophesee(data: bytes, source: str, sensor_size, sort: bool, **kw) -> Recording:
    ev, head = decode_prophesee_dat(data, source=source, sensor_size=sensor_size, sort=sort)
    return Recording(ev, head["sensor_size"], "prophesee_dat", head)


def _npy(data: bytes, source: str, sensor_size, sort: bool, **kw) -> Recording:
    import io
    fmt = np.lib.format
    try:
        fh = io.BytesIO(data)
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy format version {version} is not supported (1.0 or 2.0)")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(fh)
        if dtype.hasobject:
            raise ValueError(f"dtype {dtype} holds Python objects (a pickle); refused without unpickling")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if nbytes != len(data) - fh.tell():
            raise ValueError(f"header declares shape {shape} of {dtype} ({nbytes:,} bytes) but "
                             f"{len(data) - fh.tell():,} bytes of data follow")
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, TypeError, IndexError, KeyError, SyntaxError, RecursionError, MemoryError,
            OverflowError) as exc:    # what NumPy's header parser (ast.literal_eval) raises for junk
        raise ValueError(f"{source}: not a readable .npy event array: {exc}") from None
    size = normalize_sensor_size(sensor_size)
    return Recording(validate_events(arr, size, sort=sort, source=source), size, "npy", {})


#: Reader registry: format name -> (decoder of the file's bytes, file extensions).
READERS: dict[str, tuple[Callable[..., Recording], tuple[str, ...]]] = {
    "nmnist": (_nmnist, (".bin", ".bs2")),
    "aedat2": (_aedat2, (".aedat",)),
    "aedat3": (_aedat3, (".aedat",)),
    "aedat4": (_aedat4, (".aedat4",)),
    "prophesee_dat": (_prophesee, (".dat",)),
    "prophesee_raw": (_raw, (".raw",)),
    "npy": (_npy, (".npy",)),
}


def detect_format(path: str | os.PathLike, head: bytes | None = None) -> str:
    """Name of the reader for ``path``, chosen by content first, then by extension.

    Content: ``#!AER-DAT4.0`` → aedat4, ``#!AER-DAT3`` → aedat3, ``#!AER-DAT`` → aedat2, ``%`` header
    → prophesee_raw when the extension is ``.raw`` or the header has a ``% evt``/``% format`` line
    (within ``head``), else prophesee_dat; ``\\x93NUMPY`` → npy. Header-less N-MNIST ``.bin``/``.bs2``
    files are recognised by extension.

    Raises
    ------
    ValueError
        When neither content nor extension identifies the format.
    """
    if head is None:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    if head.startswith(AEDAT4_MAGIC):
        return "aedat4"
    if head.startswith(b"#!AER-DAT3"):
        return "aedat3"
    if head.startswith(b"#!AER-DAT"):
        return "aedat2"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    ext = Path(path).suffix.lower()
    if head.startswith(b"%") and (ext == ".raw" or (ext != ".dat" and re.search(rb"(?:^|\n)% (?:evt|format) ", head))):
        return "prophesee_raw"
    if head.startswith(b"% ") or (ext == ".dat" and head.startswith(b"%")):
        return "prophesee_dat"
    for name, (_, exts) in READERS.items():
        if ext in exts and name in ("nmnist",):
            return name
    raise ValueError(f"{path}: cannot tell the event format from its first bytes {head[:12]!r} or its "
                     f"extension {ext!r}; pass format= one of {sorted(READERS)}")


def read_recording(path: str | os.PathLike, *, format: str | None = None,
                   sensor_size: Sequence[int] | None = None, sort: bool = False, **options: Any) -> Recording:
    """Read a recording with its sensor size and header fields (see :func:`read_events`)."""
    data = read_file_bytes(path)
    name = format or detect_format(path, data[:_SNIFF_BYTES])
    if name not in READERS:
        raise ValueError(f"unknown event format {name!r}; known formats: {sorted(READERS)}")
    return READERS[name][0](data, str(path), sensor_size, sort, **options)


_SNIFF_BYTES = 4096


class EventStream:
    """A recording handed out as consecutive event chunks (see :func:`iter_events`).

    ``sensor_size``, ``format`` and ``meta`` are known before the first chunk (RAW: from the
    header). After a full pass, ``triggers`` holds a RAW file's external-trigger records
    (``triggers=True``) and ``meta["n_triggers"]`` their number.
    """

    def __init__(self, path: str | os.PathLike, *, format: str | None = None,
                 sensor_size: Sequence[int] | None = None, sort: bool = False, chunk_events: int = 1 << 20,
                 **options: Any) -> None:
        name = format or detect_format(path)
        if name not in READERS:
            raise ValueError(f"unknown event format {name!r}; known formats: {sorted(READERS)}")
        if int(chunk_events) < 1:
            raise ValueError(f"chunk_events must be >= 1, got {chunk_events}")
        self.path, self.format, self.chunk_events = path, name, int(chunk_events)
        self.keep_triggers = bool(options.pop("triggers", False))
        self.options, self.triggers, self._recording = options, None, None
        if name == "prophesee_raw":
            from .raw import raw_header
            head = raw_header(path, sensor_size=sensor_size, evt=options.get("evt"))
            self.sensor_size, self.meta = head["sensor_size"], head
            self._sensor_option = sensor_size
        else:
            rec = read_recording(path, format=name, sensor_size=sensor_size, sort=sort, **options)
            self._recording, self.sensor_size, self.meta = rec, rec.sensor_size, dict(rec.meta)

    def __iter__(self):
        if self._recording is not None:
            ev = self._recording.events
            for i in range(0, len(ev), self.chunk_events):
                yield ev[i:i + self.chunk_events]
            return
        from .raw import TRIGGER_DTYPE
        words = min(DEFAULT_CHUNK_WORDS, self.chunk_events)
        trig = []
        for ev, tr in iter_raw(self.path, sensor_size=self._sensor_option, chunk_words=words, triggers=True,
                               **self.options):
            trig.append(tr)
            yield ev
        self.meta["n_triggers"] = int(sum(len(t) for t in trig))
        if self.keep_triggers:
            self.triggers = np.concatenate(trig) if trig else np.zeros(0, TRIGGER_DTYPE)


def iter_events(path: str | os.PathLike, **options: Any) -> EventStream:
    """Open a recording as a stream of consecutive event chunks (an iterable :class:`EventStream`).

    Prophesee RAW files are decoded as they stream (memory O(chunk)); other formats are read whole
    and handed out in slices of ``chunk_events`` (default 2**20). Options as :func:`read_events`,
    plus ``chunk_events``.

    Examples
    --------
    >>> stream = iter_events("recording.raw")            # doctest: +SKIP
    >>> stream.sensor_size, sum(len(chunk) for chunk in stream)  # doctest: +SKIP
    """
    return EventStream(path, **options)


def read_events(path: str | os.PathLike, *, format: str | None = None, sensor_size: Sequence[int] | None = None,
                sort: bool = False, **options: Any) -> np.ndarray:
    """Read an event-camera recording into a structured array ``t`` (µs), ``x``, ``y``, ``p``.

    The reader is chosen by content (magic bytes) and extension; see :func:`detect_format`.

    Parameters
    ----------
    path : str or path-like
        N-MNIST ``.bin``/``.bs2``, jAER AEDAT 2.0 ``.aedat``, AEDAT 4.0 ``.aedat4``, Prophesee
        ``.dat`` (EVT 2D), or a ``.npy`` structured array.
    format : str, optional
        Force a reader: one of ``READERS`` ("nmnist", "aedat2", "aedat4", "prophesee_dat", "npy").
    sensor_size : (width, height), optional
        Check coordinates against this size instead of the one implied by the file.
    sort : bool, default False
        Sort by time instead of raising when timestamps decrease.
    **options
        Reader-specific options (``layout``, ``flip_x``, ``flip_y`` for aedat2; ``stream`` for aedat4).

    Returns
    -------
    numpy.ndarray
        Validated events of :data:`eventsim.events.EVENT_DTYPE`, sorted by ``t``.

    Raises
    ------
    ValueError
        Unknown format or malformed file; the message names the file and the byte offset or event.
    FileNotFoundError
        When ``path`` does not exist.
    """
    return read_recording(path, format=format, sensor_size=sensor_size, sort=sort, **options).events


def describe_recording(path: str | os.PathLike, *, transform: Any = None, **read_options: Any) -> dict[str, Any]:
    """Summarise a recording for ``eventsim inspect``, after ``transform`` (see
    :func:`eventsim.events.transforms.parse_transforms`) when given.

    Returns
    -------
    dict
        ``path``, ``format``, ``sensor_size`` ([width, height] or None), ``n_events``, ``t_first_us``,
        ``t_last_us``, ``duration_s`` (last minus first timestamp), ``rate_ev_per_s`` (events /
        duration; None for fewer than two distinct timestamps), ``n_on``, ``n_off``, ``on_fraction``
        (None without events), ``x_range``, ``y_range`` ([min, max] or None). JSON-serialisable.
        Prophesee RAW adds ``evt``, ``n_triggers``, ``sensor_size_from``; a transform adds
        ``transforms`` and ``sensor_size_in`` (``sensor_size`` is then the fitted size).
        For an HDF5 event cache: ``format`` "eventsim-cache", ``sensor_size``, ``n_events``,
        ``splits`` (name -> n_samples, n_events, n_per_label), ``classes``, ``provenance``.
    """
    with open(path, "rb") as fh:
        if fh.read(8) == _HDF5_MAGIC:
            return _describe_cache(path)
    from .transforms import parse_transforms
    pipe = parse_transforms(transform)
    stream = iter_events(path, **read_options)
    size = pipe.output_size(stream.sensor_size)
    n = n_on = 0
    t0 = t1 = None
    lo, hi = [np.iinfo(np.int64).max] * 2, [np.iinfo(np.int64).min] * 2
    for chunk in stream:                 # streamed: memory O(chunk) for Prophesee RAW
        ev = pipe.apply(chunk, stream.sensor_size)
        if not ev.size:
            continue
        n += int(ev.size)
        n_on += int(np.count_nonzero(ev["p"]))
        t0 = int(ev["t"][0]) if t0 is None else t0
        t1 = int(ev["t"][-1])
        for k, axis in enumerate("xy"):
            lo[k], hi[k] = min(lo[k], int(ev[axis].min())), max(hi[k], int(ev[axis].max()))
    duration_s = (t1 - t0) / 1e6 if n else 0.0
    info = {
        "path": str(path), "format": stream.format,
        "sensor_size": list(size) if size else None,
        "n_events": n, "t_first_us": t0, "t_last_us": t1, "duration_s": duration_s,
        "rate_ev_per_s": n / duration_s if duration_s > 0 else None,
        "n_on": n_on, "n_off": n - n_on, "on_fraction": n_on / n if n else None,
        "x_range": [lo[0], hi[0]] if n else None,
        "y_range": [lo[1], hi[1]] if n else None,
    }
    if stream.format == "prophesee_raw":
        info.update(evt=stream.meta["evt"], n_triggers=stream.meta["n_triggers"],
                    sensor_size_from=stream.meta["sensor_size_from"])
    if pipe:
        info.update(transforms=pipe.describe(),
                    sensor_size_in=list(stream.sensor_size) if stream.sensor_size else None)
    return info


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _describe_cache(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of an HDF5 event cache: per split, samples and events."""
    from .cache import EventCache
    first = EventCache(path)
    splits = {}
    for name in first.splits:
        c = EventCache(path, name)
        splits[name] = {"n_samples": len(c), "n_events": int(c.offsets[-1]),
                        "n_per_label": np.bincount(c.labels).tolist() if len(c) else []}
        c.close()
    first.close()
    return {"path": str(path), "format": "eventsim-cache", "sensor_size": list(first.sensor_size),
            "n_events": sum(s["n_events"] for s in splits.values()), "splits": splits,
            "classes": first.classes, "provenance": first.provenance}


def format_recording(info: dict[str, Any]) -> str:
    """Render :func:`describe_recording`'s dict as a short human-readable block.

    Examples
    --------
    >>> print(format_recording({"path": "a.bin", "format": "nmnist", "sensor_size": [34, 34],
    ...     "n_events": 4, "t_first_us": 0, "t_last_us": 2000, "duration_s": 0.002,
    ...     "rate_ev_per_s": 2000.0, "n_on": 3, "n_off": 1, "on_fraction": 0.75}))
    recording     a.bin
    format        nmnist
    sensor        34 x 34 pixels
    events        4
    time          0 .. 2,000 µs (duration 0.002 s)
    rate          2.00 kev/s
    polarity      3 ON / 1 OFF (75.0 % ON)
    """
    size = info.get("sensor_size")
    n = info["n_events"]
    if info.get("format") == "eventsim-cache":
        rows = [("cache", str(info["path"])), ("sensor", f"{size[0]} x {size[1]} pixels")]
        rows += [(f"split {k}", f"{v['n_samples']:,} samples, {v['n_events']:,} events") for k, v in info["splits"].items()]
        if info.get("classes"):
            rows.append(("classes", ", ".join(map(str, info["classes"]))))
        return "\n".join(f"{k:<13} {v}" for k, v in rows)
    lines = [("recording", str(info["path"])), ("format", info["format"]),
             ("sensor", f"{size[0]} x {size[1]} pixels" if size else "unknown (not stated in the file)"),
             ("events", f"{n:,}")]
    if n:
        lines.append(("time", f"{info['t_first_us']:,} .. {info['t_last_us']:,} µs (duration {info['duration_s']:.6g} s)"))
        rate = info.get("rate_ev_per_s")
        lines.append(("rate", "n/a" if rate is None else f"{rate / 1e3:.2f} kev/s"))
        lines.append(("polarity", f"{info['n_on']:,} ON / {info['n_off']:,} OFF ({100 * info['on_fraction']:.1f} % ON)"))
    else:
        lines.append(("time", "no events"))
    if info.get("evt"):
        lines.insert(2, ("encoding", f"EVT {info['evt']}, sensor size from {info['sensor_size_from']}, "
                                     f"{info['n_triggers']:,} external-trigger events"))
    if info.get("transforms"):
        size_in = info.get("sensor_size_in")
        lines.insert(2, ("fitted", "; ".join(info["transforms"]) +
                         (f" (from {size_in[0]} x {size_in[1]})" if size_in else "")))
    return "\n".join(f"{k:<13} {v}" for k, v in lines)
