"""Array-backed binary min-heap of events for the asynchronous engine.

An entry is a record (:data:`ENTRY`): a time ``q[i].t`` (float64, µs), a packed key ``q[i].key``
and a payload ``q[i].aux``. Entries are ordered by ``(t, layer, phase, neuron)``:

* ``layer`` — index in ``Network.layers`` of the population the entry belongs to (``-1`` is the
  network input: delayed input events; fresh input events are merged from their own sorted
  stream and come before every heap entry of the same time);
* ``phase`` — ``0`` wake-up / predicted threshold crossing of that population's neuron, ``1`` the
  batch-mode threshold check of the whole population, ``2 + g`` delivery of a spike (or delayed
  input event) along the source's delay group ``g``;
* ``neuron`` — flat index of the neuron in the population's ``(C, H, W)`` shape (PyTorch order).

The key packs ``((layer + 1) << 53) | (phase << 47) | neuron`` into one int64, so a comparison is
two words. The payload (``aux``) is a prediction's version number (``-1`` for a wake-up) or the
multiplicity of a spike; entries equal in ``(t, layer, phase, neuron)`` concern the same neuron at
the same instant and are interchangeable, so the order is total in effect, and deterministic.
The array is allocated once at ``queue_limit`` entries; superseded entries are dropped by the
engine (:func:`eventsim.kernels.async_events.push`), which knows the neuron versions.
"""
import numpy as np
from numba import njit

from .async_layout import ASYNC_JIT

#: a queue entry: time (µs), packed key (:func:`pack`), payload
ENTRY = np.dtype([("t", np.float64), ("key", np.int64), ("aux", np.int64)], align=True)

LAYER_SHIFT = 53
PHASE_SHIFT = 47
NEURON_MASK = (1 << 47) - 1
#: limits of the packed key: layers + 1 < 1024, phases < 64, neurons < 2**47
MAX_LAYERS, MAX_PHASES = 1022, 64
#: phases: a wake-up (predicted crossing, end of a refractory period, batch wake-up), the batch
#: threshold check of a population, and the first delivery phase (``PHASE_DELIVER + g`` delivers
#: delay group ``g``); ``PHASE_INPUT`` marks a fresh input event (never queued)
PHASE_INPUT, PHASE_WAKE, PHASE_CHECK, PHASE_DELIVER = -1, 0, 1, 2
#: payload of a wake-up that is not a prediction (the end of a refractory period, a batch wake-up)
AUX_WAKE = -1
#: batch check of a population with a recurrent projection: after the deliveries of its own layer
#: (its feedback from the step before), where ordinary populations use phase 1
PHASE_LATE_CHECK = MAX_PHASES - 1


@njit(inline="always", **ASYNC_JIT)
def pack(layer, phase, neuron):
    return ((layer + 1) << LAYER_SHIFT) | (phase << PHASE_SHIFT) | neuron


@njit(inline="always", **ASYNC_JIT)
def unpack(key):
    """``(layer, phase, neuron)`` of a packed key."""
    return (key >> LAYER_SHIFT) - 1, (key >> PHASE_SHIFT) & 63, key & NEURON_MASK


@njit(inline="always", **ASYNC_JIT)
def key_less(q, i, j):
    """True when entry ``i`` sorts strictly before entry ``j``."""
    if q[i].t != q[j].t:
        return q[i].t < q[j].t
    return q[i].key < q[j].key


@njit(inline="always", **ASYNC_JIT)
def _move(q, src, dst):
    q[dst].t = q[src].t
    q[dst].key = q[src].key
    q[dst].aux = q[src].aux


@njit(**ASYNC_JIT)
def _sift_down(q, size, i):
    """Move the entry at ``i`` down (hole method: one write per level)."""
    t, key, aux = q[i].t, q[i].key, q[i].aux
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and key_less(q, child + 1, child):
            child += 1
        if q[child].t < t or (q[child].t == t and q[child].key < key):
            _move(q, child, i)
            i = child
        else:
            break
    q[i].t = t
    q[i].key = key
    q[i].aux = aux


@njit(**ASYNC_JIT)
def heap_push(q, size, t, layer, phase, neuron, aux):
    """Insert an entry; the caller guarantees ``size < len(q)``. Returns the new size."""
    key = pack(layer, phase, neuron)
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if t < q[parent].t or (t == q[parent].t and key < q[parent].key):
            _move(q, parent, i)
            i = parent
        else:
            break
    q[i].t = t
    q[i].key = key
    q[i].aux = aux
    return size + 1


@njit(**ASYNC_JIT)
def heap_pop(q, size):
    """Remove the smallest entry. Returns ``(t, layer, phase, neuron, aux, new_size)``."""
    t = q[0].t
    layer, phase, neuron = unpack(q[0].key)
    aux = q[0].aux
    size -= 1
    if size > 0:
        _move(q, size, 0)
        _sift_down(q, size, 0)
    return t, layer, phase, neuron, aux, size


@njit(**ASYNC_JIT)
def heapify(q, size):
    """Restore the heap invariant over the first ``size`` entries in O(size)."""
    for i in range((size - 2) // 2, -1, -1):
        _sift_down(q, size, i)
