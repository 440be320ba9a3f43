"""Kernel settings in one place: every ``@njit`` in :mod:`eventsim.kernels` uses :data:`JIT`.

``fastmath`` stays off: it lets LLVM reorder float sums, which would break the spike-for-spike
equality between the engines and the PyTorch references. State is float64.

Compiled kernels are cached on disk (``cache=True``). Numba keys each cached function by its own
file's timestamp only, so after an edit to a kernel it calls in *another* file (or a constant of
:mod:`eventsim.kernels.async_layout`) it would run stale machine code and give wrong spikes
without a word. The cache therefore lives in a folder named by a hash of the source of every
kernel module (:func:`kernel_source_hash`): any edit or upgrade starts a fresh cache. The folder
is under ``$NUMBA_CACHE_DIR`` when set (CI keeps it inside the checkout's ``build/``), else under
``$XDG_CACHE_HOME/eventsim/numba`` (default ``~/.cache/eventsim/numba``).
"""
import hashlib
import os
from pathlib import Path

import numba
import numpy as np

FLOAT = np.float64
JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

#: Settings of the asynchronous engine's kernels (:mod:`eventsim.kernels.async_loop` and friends):
#: :data:`JIT` without Numba's reference counting (NRT). Those kernels never allocate; with NRT every
#: call would increment and decrement the count of each array in the state tuples (measured: ~45 %
#: of the run time).
ASYNC_JIT = dict(JIT, _nrt=False)

KERNELS_DIR = Path(__file__).resolve().parent / "kernels"


def kernel_source_hash(folder: Path = KERNELS_DIR) -> str:
    """SHA-256 (first 16 hex digits) of this file, the Numba version and every ``.py`` file of
    ``folder``, in name order."""
    digest = hashlib.sha256(numba.__version__.encode())
    for path in [Path(__file__).resolve()] + sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def kernel_cache_dir() -> Path:
    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "eventsim", "numba")
    return Path(base) / f"eventsim-{kernel_source_hash()}"


# before any kernel module is imported (they all import this one first): Numba reads the cache
# folder when a cached function is decorated
numba.config.CACHE_DIR = str(kernel_cache_dir())
