"""HDF5 event cache: many labelled recordings in one chunked, compressed file.

Layout (``format = "eventsim-event-cache"``, ``version = 1``)::

    /                         attrs: format, version, sensor_size [W, H], classes (JSON),
                                     provenance (JSON), splits (JSON list)
    /<split>/events/t         int64  µs     all samples of the split, concatenated
    /<split>/events/x, y      int16
    /<split>/events/p         int8
    /<split>/samples/offset   int64  (n + 1,) sample i is events[offset[i]:offset[i + 1]]
    /<split>/samples/label    int64  (n,)
    /<split>/samples/name     bytes  (n,)   source file name or id, UTF-8, fixed length

Event columns are chunked (``chunk_events`` per chunk) with shuffle + gzip, written incrementally
(memory bounded by one sample), into a temporary file that replaces ``path`` atomically
(``os.replace``) only once complete. The file uses the HDF5 1.10 format, whose metadata is
checksummed; the sample table also carries Fletcher-32 checksums (the gzip streams of the event
columns carry Adler-32), and strings are fixed-length (variable-length strings would live in
HDF5's global heap, which has no checksum), so every byte the reader uses is checked. Caches with
variable-length strings (written before) are read too. No timestamps are stored in the file
(``track_times=False``), so the same inputs give the same bytes with the same HDF5 library.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ._core import EVENT_DTYPE
from .._io import check_global_heaps
from .validate import normalize_sensor_size, time_decrease_error, validate_events

__all__ = ["build_cache", "open_cache", "EventCache", "CACHE_FORMAT", "CACHE_VERSION"]

CACHE_FORMAT = "eventsim-event-cache"
CACHE_VERSION = 1
_COLUMNS = (("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8))
#: Opening a cache of ``n`` bytes refuses datasets that declare more than
#: ``MAX_BYTES_PER_FILE_BYTE * n + MEMORY_SLACK_BYTES`` bytes in all (HDF5 compression and
#: unallocated chunks let a tiny file declare terabytes; event columns compress ~2-8x).
MAX_BYTES_PER_FILE_BYTE = 32
MEMORY_SLACK_BYTES = 64 << 20
#: HDF5 file-format bounds of the caches written (see :func:`build_cache`)
_LIBVER = ("v110", "v110")


def _h5py():
    import h5py
    return h5py


def _split_sample(item: Any, index: int) -> tuple[Any, int, str]:
    if isinstance(item, tuple):
        if len(item) == 2:
            return item[0], int(item[1]), str(index)
        if len(item) == 3:
            return item[0], int(item[1]), str(item[2])
    raise ValueError(f"build_cache: sample {index} must be (events, label) or (events, label, name), "
                     f"got {type(item).__name__}")


def build_cache(path: str | os.PathLike, splits: Mapping[str, Iterable[Any]], *, sensor_size: Sequence[int],
                classes: Sequence[str] | None = None, provenance: Mapping[str, Any] | None = None,
                chunk_events: int = 1 << 15, compression_level: int = 6, sort: bool = False,
                progress: bool = True) -> Path:
    """Write labelled recordings to an HDF5 event cache, atomically.

    Parameters
    ----------
    path : str or path-like
        Output ``.h5`` file; replaced only when the new file is complete.
    splits : mapping of split name -> iterable
        Each iterable yields ``(events, label)`` or ``(events, label, name)``; ``events`` is any
        structured array with ``t`` (µs), ``x``, ``y``, ``p`` (tonic's are accepted). A tonic dataset
        can be passed directly: it yields ``(events, target)``.
    sensor_size : (width, height) or (width, height, polarities)
        Every event is checked against it.
    classes : sequence of str, optional
        Class names; ``classes[label]``.
    provenance : mapping, optional
        JSON-serialisable description of the source (recipe, original files, options).
    chunk_events : int
        Events per HDF5 chunk.
    compression_level : int
        gzip level 0-9.
    sort : bool
        Sort samples whose timestamps decrease instead of raising.
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        A sample fails validation (message names split, sample index and event).
    """
    h5py = _h5py()
    size = normalize_sensor_size(sensor_size)
    if size is None:
        raise ValueError("build_cache: sensor_size is required, e.g. (34, 34)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        # the HDF5 1.10 file format, pinned: its superblock, object headers and chunk indexes carry
        # checksums, so a damaged cache is refused instead of read with silently different metadata;
        # HDF5 >= 1.10 reads it ("latest" would follow the library: under HDF5 2.0 other bytes, in a
        # format HDF5 1.x may not read)
        with h5py.File(tmp_name, "w", track_order=False, libver=_LIBVER) as f:
            _text_attr(f, "format", CACHE_FORMAT)
            f.attrs["version"] = CACHE_VERSION
            f.attrs["sensor_size"] = np.asarray(size, dtype=np.int64)
            _text_attr(f, "classes", json.dumps(list(classes) if classes is not None else None))
            _text_attr(f, "provenance", json.dumps(dict(provenance or {}), sort_keys=True))
            _text_attr(f, "splits", json.dumps(list(splits)))
            for split, samples in splits.items():
                _write_split(f, split, samples, size, chunk_events, compression_level, sort, progress)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp_name, out)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return out


def _write_split(f: Any, split: str, samples: Iterable[Any], size: tuple[int, int], chunk_events: int,
                 level: int, sort: bool, progress: bool) -> None:
    h5py = _h5py()
    g = f.create_group(split)
    ev_group = g.create_group("events")
    cols = {name: ev_group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(chunk_events,),
                                          compression="gzip", compression_opts=level, shuffle=True,
                                          track_times=False)
            for name, dt in _COLUMNS}
    offsets, labels, names = [0], [], []
    total = len(samples) if hasattr(samples, "__len__") else None
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc=f"caching {split}", unit="sample", file=sys.stderr)
    # buffer events up to one chunk so that HDF5 resizes rarely
    pending: list[np.ndarray] = []
    n_pending = 0
    for i, item in enumerate(samples):
        raw, label, name = _split_sample(item, i)
        ev = validate_events(raw, size, sort=sort, source=f"build_cache: split {split!r} sample {i} ({name})")
        pending.append(ev)
        n_pending += ev.size
        offsets.append(offsets[-1] + ev.size)
        labels.append(label)
        names.append(name)
        if n_pending >= chunk_events:
            _append(cols, pending)
            pending, n_pending = [], 0
        if bar is not None:
            bar.update(1)
    _append(cols, pending)
    if bar is not None:
        bar.close()
    sg = g.create_group("samples")
    # checksummed (the event columns are gzip streams, whose Adler-32 already catches damage); names
    # as fixed-length UTF-8 bytes in the chunks, not variable-length strings in HDF5's global heap,
    # which has no checksum
    sg.create_dataset("offset", data=np.asarray(offsets, dtype=np.int64), chunks=True, fletcher32=True,
                      track_times=False)
    sg.create_dataset("label", data=np.asarray(labels, dtype=np.int64), chunks=True, fletcher32=True,
                      track_times=False)
    encoded = [name.encode("utf-8") for name in names]
    sg.create_dataset("name", data=np.array(encoded, dtype=f"S{max([1, *map(len, encoded)])}"), chunks=True,
                      compression="gzip", fletcher32=True, track_times=False)


def _text_attr(f: Any, name: str, text: str) -> None:
    """A fixed-length UTF-8 string attribute: stored in the (checksummed) object header, not in
    HDF5's global heap as a variable-length string would be."""
    data = text.encode("utf-8")
    f.attrs.create(name, data=np.bytes_(data), dtype=_h5py().string_dtype("utf-8", max(1, len(data))))


def _append(cols: dict, pending: list[np.ndarray]) -> None:
    if not pending:
        return
    block = np.concatenate(pending)
    start = cols["t"].shape[0]
    for name, ds in cols.items():
        ds.resize((start + block.size,))
        ds[start:] = block[name]


class EventCache:
    """Read access to one split of an HDF5 event cache; a sequence of ``(events, label)``.

    Opens the file lazily and reopens it after pickling, so it can be shipped to Dask workers.

    Attributes
    ----------
    sensor_size : (width, height)
    labels : numpy.ndarray of int64
    names : list of str
    classes : list of str or None
    provenance : dict
    """

    def __init__(self, path: str | os.PathLike, split: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such event cache")
        self._file = None
        try:
            f = self._h5()
        except OSError as exc:
            raise ValueError(f"{self.path}: not a readable HDF5 file, so not an event cache ({exc})") from None
        try:
            check_global_heaps(self.path, f.id.get_create_plist().get_sizes()[1])
        except ValueError:
            self.close()
            raise
        try:
            self._open_checked(f, split)
        except (OSError, KeyError, RuntimeError, TypeError) as exc:   # what h5py raises for damaged files
            self.close()
            raise ValueError(f"{self.path}: corrupt event cache ({type(exc).__name__}: {exc})") from None
        except ValueError:
            self.close()
            raise

    def _open_checked(self, f: Any, split: str | None) -> None:
        if _attr(f, "format", "text", self.path, missing_ok=True) != CACHE_FORMAT:
            raise ValueError(f"{self.path}: not an eventsim event cache (format attribute "
                             f"{f.attrs.get('format')!r}, expected {CACHE_FORMAT!r})")
        try:
            version = int(_attr(f, "version", "int", self.path))
            self.splits = json.loads(_attr(f, "splits", "text", self.path))
            self.sensor_size = normalize_sensor_size(_attr(f, "sensor_size", "int", self.path))
            self.classes = json.loads(_attr(f, "classes", "text", self.path))
            self.provenance = json.loads(_attr(f, "provenance", "text", self.path))
        except (KeyError, TypeError, ValueError, OSError, RecursionError) as exc:
            raise ValueError(f"{self.path}: corrupt event cache attributes ({type(exc).__name__}: {exc})") from None
        if version > CACHE_VERSION:
            raise ValueError(f"{self.path}: cache version {version} is newer than this "
                             f"eventsim reads ({CACHE_VERSION}); upgrade eventsim")
        if not (isinstance(self.splits, list) and self.splits and all(isinstance(n, str) for n in self.splits)):
            raise ValueError(f"{self.path}: 'splits' attribute {self.splits!r} is not a list of split names")
        if not isinstance(self.provenance, dict) or not isinstance(self.classes, (list, type(None))):
            raise ValueError(f"{self.path}: 'classes' must be a list (or null) and 'provenance' an object")
        if split is None:
            split = self.splits[0]
        if split not in self.splits:
            raise ValueError(f"{self.path}: no split {split!r}; the cache has {self.splits}")
        self.split = split
        self.offsets, self.labels, self.names = _check_split(f, split, self.path)

    def _h5(self) -> Any:
        if self._file is None:
            self._file = _h5py().File(self.path, "r")
        return self._file

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def close(self) -> None:
        """Close the HDF5 file (it reopens on next access)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "EventCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.labels)

    def _read(self, lo: int, hi: int) -> np.ndarray:
        """Events ``lo:hi`` of the split, validated (sorted, inside the sensor, polarity 0/1)."""
        ev = np.empty(hi - lo, dtype=EVENT_DTYPE)
        try:
            g = self._h5()[self.split]["events"]
            for name, _ in _COLUMNS:
                ev[name] = g[name][lo:hi]
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path} [{self.split}]: events {lo}..{hi} cannot be read ({exc}); "
                             "the cache is corrupt") from None
        return validate_events(ev, self.sensor_size, source=f"{self.path} [{self.split}]",
                               locate=lambda i: f"event {lo + i} of the split")

    def events(self, index: int) -> np.ndarray:
        """Events of sample ``index`` (``t`` µs as stored)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{self.path} [{self.split}]: sample {index} out of range (0..{n - 1})")
        index %= n
        return self._read(int(self.offsets[index]), int(self.offsets[index + 1]))

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        ev = self.events(index)
        return ev, int(self.labels[index % len(self)])

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        for i in range(len(self)):
            yield self[i]

    def n_events(self, index: int) -> int:
        """Number of events in sample ``index`` (no read of the events)."""
        return int(self.offsets[index + 1] - self.offsets[index])

    def iter_windows(self, index: int, window_us: int, *, t_start_us: int | None = None,
                     block_events: int = 1 << 16) -> Iterator[tuple[int, np.ndarray]]:
        """Stream sample ``index`` in consecutive time windows with bounded memory.

        Yields ``(t0, events)`` for windows ``[t0, t0 + window_us)``, ``t0 = t_start_us + k·window_us``
        (default start: the first event's time), empty windows included, until the last event. At
        most ``block_events`` events plus one window's events are held at a time.
        """
        if window_us <= 0:
            raise ValueError(f"iter_windows: window_us must be > 0, got {window_us}")
        lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
        if lo == hi:
            return
        t0 = int(self._read(lo, lo + 1)["t"][0]) if t_start_us is None else int(t_start_us)
        buf = np.zeros(0, dtype=EVENT_DTYPE)
        pos = lo
        last_t = None
        while pos < hi:
            nxt = min(hi, pos + block_events)
            block = self._read(pos, nxt)
            if last_t is not None and block.size and block["t"][0] < last_t:
                raise time_decrease_error(f"event {pos} of the split ({self.path} [{self.split}])",
                                          block["t"][0], last_t, "rebuild the cache from sorted recordings")
            last_t = int(block["t"][-1]) if block.size else last_t
            buf = np.concatenate([buf, block])
            pos = nxt
            buf = buf[np.searchsorted(buf["t"], t0, side="left"):] if buf.size and buf["t"][0] < t0 else buf
            while buf.size and buf["t"][-1] >= t0 + window_us:
                cut = int(np.searchsorted(buf["t"], t0 + window_us, side="left"))
                yield t0, buf[:cut]
                buf = buf[cut:]
                t0 += window_us
        while buf.size:
            cut = int(np.searchsorted(buf["t"], t0 + window_us, side="left"))
            yield t0, buf[:cut]
            buf = buf[cut:]
            t0 += window_us

    def __repr__(self) -> str:
        return (f"EventCache({str(self.path)!r}, split={self.split!r}, samples={len(self)}, "
                f"sensor_size={self.sensor_size})")


def _attr(f: Any, name: str, kind: str, path: Path, missing_ok: bool = False) -> Any:
    """Attribute ``name`` of the file's root, read only once its type is what a cache stores
    (``"text"``: a string; ``"int"``: integers). Other types are refused unread: libhdf5 can
    crash converting a damaged variable-length type."""
    import h5py
    if name not in f.attrs:
        if missing_ok:
            return None
        raise KeyError(f"attribute {name!r} is missing")
    dt = f.attrs.get_id(name).dtype
    ok = (h5py.check_string_dtype(dt) is not None or dt.kind in "SU") if kind == "text" else dt.kind in "iu"
    if not ok:
        raise ValueError(f"{path}: attribute {name!r} has type {dt}, expected {kind}")
    value = f.attrs[name]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _dataset(group: Any, name: str, path: Path) -> Any:
    """``group[name]`` if it is a plain dataset stored in this file (no links, no external storage)."""
    h5py = _h5py()
    where = f"{group.name.rstrip('/')}/{name}"
    link = group.get(name, getlink=True)
    if link is None:
        raise ValueError(f"{path}: missing {where!r}; the cache is incomplete or not an eventsim cache")
    if not isinstance(link, h5py.HardLink):
        raise ValueError(f"{path}: {where!r} is a {type(link).__name__}; links to other objects or files are refused")
    item = group[name]
    if not isinstance(item, h5py.Dataset) or item.is_virtual or item.external or item.ndim != 1:
        raise ValueError(f"{path}: {where!r} is not a 1-D dataset stored in this file")
    return item


def _check_split(f: Any, split: str, path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check one split's datasets (names, dtypes, lengths, declared sizes, offsets) and return its
    ``offsets``, ``labels`` and ``names``."""
    h5py = _h5py()
    where = f"{path} [{split}]"
    group = f.get(split)
    if not isinstance(group, h5py.Group) or not isinstance(f.get(split, getlink=True), h5py.HardLink):
        raise ValueError(f"{where}: the split is listed but its group is missing")
    events, samples = group.get("events"), group.get("samples")
    if not isinstance(events, h5py.Group) or not isinstance(samples, h5py.Group):
        raise ValueError(f"{where}: expected groups 'events' and 'samples'")
    cols = {name: _dataset(events, name, path) for name, _ in _COLUMNS}
    offset, label, names = (_dataset(samples, name, path) for name in ("offset", "label", "name"))
    for name, dt in _COLUMNS:
        if cols[name].dtype != np.dtype(dt):
            raise ValueError(f"{where}: column {name!r} has dtype {cols[name].dtype}, expected {np.dtype(dt)}")
    n_events = cols["t"].shape[0]
    if any(c.shape[0] != n_events for c in cols.values()):
        raise ValueError(f"{where}: event columns differ in length: "
                         f"{ {k: c.shape[0] for k, c in cols.items()} }")
    if offset.dtype.kind not in "iu" or label.dtype.kind not in "iu":
        raise ValueError(f"{where}: samples/offset ({offset.dtype}) and samples/label ({label.dtype}) must be integers")
    if h5py.check_string_dtype(names.dtype) is None and names.dtype.kind not in "SU":
        raise ValueError(f"{where}: samples/name has dtype {names.dtype}, expected strings")
    n = label.shape[0]
    if offset.shape[0] != n + 1 or names.shape[0] != n:
        raise ValueError(f"{where}: {n} labels need {n + 1} offsets and {n} names; found {offset.shape[0]} "
                         f"and {names.shape[0]}")
    size = path.stat().st_size
    limit = MAX_BYTES_PER_FILE_BYTE * size + MEMORY_SLACK_BYTES
    declared = sum(int(d.shape[0]) * d.dtype.itemsize for d in (*cols.values(), offset, label, names))
    if declared > limit:
        raise ValueError(f"{where}: datasets declare {declared:,} bytes, more than {MAX_BYTES_PER_FILE_BYTE} x the "
                         f"{size:,}-byte file + {MEMORY_SLACK_BYTES:,}; refused as a compression bomb")
    try:
        offsets = offset[()].astype(np.int64)
        labels = label[()].astype(np.int64)
        text = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in names[()]]
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"{where}: sample table cannot be read ({exc}); the cache is corrupt") from None
    if offsets[0] != 0 or offsets[-1] != n_events or np.any(np.diff(offsets) < 0):
        bad = int(np.flatnonzero(np.diff(offsets) < 0)[0]) + 1 if np.any(np.diff(offsets) < 0) else None
        raise ValueError(f"{where}: sample offsets must rise from 0 to the {n_events} events; found first "
                         f"{int(offsets[0])}, last {int(offsets[-1])}"
                         + ("" if bad is None else f", decreasing at sample {bad}"))
    return offsets, labels, text


def open_cache(path: str | os.PathLike, split: str | None = None) -> EventCache:
    """Open one split (default: the first written) of an HDF5 event cache; see :class:`EventCache`."""
    return EventCache(path, split)
