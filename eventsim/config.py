"""Kernel settings in one place: every ``@njit`` in :mod:`eventsim.kernels` uses :data:`JIT`.

``fastmath`` stays off: it lets LLVM reorder float sums, which would break the spike-for-spike
equality between the engines and the PyTorch references. State is float64.
"""
import numpy as np

FLOAT = np.float64
JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

#: Settings of the asynchronous engine's kernels (:mod:`eventsim.kernels.async_loop` and friends):
#: :data:`JIT` without Numba's reference counting (NRT). Those kernels never allocate; with NRT every
#: call would increment and decrement the count of each array in the state tuples (measured: ~45 %
#: of the run time).
ASYNC_JIT = dict(JIT, _nrt=False)
