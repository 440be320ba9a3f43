"""Kernel settings in one place: every ``@njit`` in :mod:`eventsim.kernels` uses :data:`JIT`.

``fastmath`` stays off: it lets LLVM reorder float sums, which would break the spike-for-spike
equality between the engines and the PyTorch references. State is float64.
"""
import numpy as np

FLOAT = np.float64
JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
