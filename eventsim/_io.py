"""Private file helpers shared by the subpackages.

* Atomic file output: write to a temporary file beside the target, then rename over it
  (:func:`atomic_path`, :func:`atomic_write_text`).
* :func:`check_global_heaps`: a check libhdf5 does not make, run before it reads strings from
  an untrusted HDF5 file. Variable-length strings (NIR's node types and edges, an event cache's attributes and sample
  names) live in *global heap collections*: blocks that start with ``GCOL``, version 1, three
  reserved zero bytes and the collection's size, followed by objects ``(index, reference count,
  reserved, size, data padded to 8 bytes)`` (HDF5 file format specification, "Global Heap").
  libhdf5 (seen with 2.0.0) loops forever when an object's size runs past the end of its
  collection, so one flipped byte in a ``.nir`` file or an event cache could hang the reader.
  :func:`check_global_heaps` finds every collection in the file and refuses the file when one is
  inconsistent, before libhdf5 parses any of them.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    An exception (or Ctrl-C) inside the block removes the temporary file and leaves any existing
    ``path`` untouched, so readers never see a half-written file. The file gets the mode any new
    file of the user gets (``0o666`` less the umask), not ``tempfile.mkstemp``'s ``0o600``: others
    sharing a results folder can read it as they could any other file there.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
        except FileExistsError:   # 48 random bits collided: draw again
            continue
        os.close(fd)
        break
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# ----------------------------------------------------------------------------- HDF5 global heaps

_SIGNATURE = b"GCOL\x01\x00\x00\x00"
_MIN_COLLECTION = 4096            # H5HG_MINSIZE


def _check_collection(data, at: int, length: int, where: str) -> None:
    """Walk the collection at byte ``at`` as libhdf5 does (``H5HG__cache_heap_deserialize``);
    ValueError if an object runs past the end or would not advance the walk."""
    end_of_file = len(data)
    size = int.from_bytes(data[at + 8:at + 8 + length], "little")
    if size < _MIN_COLLECTION or at + size > end_of_file:
        raise ValueError(f"{where}: corrupt HDF5 global heap at byte {at}: it declares {size:,} bytes "
                         f"({end_of_file - at:,} remain in the file)")
    pos, obj_head = 8 + length, 8 + length
    while pos + obj_head <= size:                         # a shorter tail is free space
        index = int.from_bytes(data[at + pos:at + pos + 2], "little")
        obj_size = int.from_bytes(data[at + pos + 8:at + pos + 8 + length], "little")
        # objects take a header plus their data padded to 8 bytes; the free space (index 0)
        # states its whole size, header included, so less than a header never advances
        span = obj_head + obj_size + (-obj_size % 8) if index else obj_size
        if span < obj_head or pos + span > size:
            raise ValueError(f"{where}: corrupt HDF5 global heap at byte {at}: object {index} of {obj_size:,} "
                             f"bytes at offset {pos} {'runs past' if span >= obj_head else 'is shorter than its header in'} "
                             f"the {size:,}-byte collection")
        pos += span


def check_global_heaps(path: str | Path, length_size: int = 8) -> int:
    """Validate every global heap collection of the HDF5 file at ``path``.

    Parameters
    ----------
    path : str or path-like
    length_size : int
        The file's "size of lengths" (8 unless the file was created otherwise; h5py:
        ``f.id.get_create_plist().get_sizes()[1]``).

    Returns
    -------
    int
        Number of collections checked.

    Raises
    ------
    ValueError
        Naming the byte offset of the first inconsistent collection.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        return 0
    count = 0
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(_SIGNATURE)
        while at != -1:
            if at + 8 + length_size <= len(data):
                _check_collection(data, at, length_size, str(path))
                count += 1
            at = data.find(_SIGNATURE, at + 1)
    return count
