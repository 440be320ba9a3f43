"""Array-backed binary min-heap of events for the asynchronous engine.

An entry is a time ``ht[i]`` (float64, µs), a packed key ``hk[i, 0]`` and a payload ``hk[i, 1]``.
Entries are ordered by ``(t, layer, phase, neuron)``:

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
The arrays are allocated once at ``queue_limit`` entries; superseded entries are dropped by the
engine (:func:`eventsim.kernels.async_events.push`), which knows the neuron versions.
"""
from numba import njit

from .async_layout import ASYNC_JIT

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
def key_less(ht, hk, i, j):
    """True when entry ``i`` sorts strictly before entry ``j``."""
    if ht[i] != ht[j]:
        return ht[i] < ht[j]
    return hk[i, 0] < hk[j, 0]


@njit(inline="always", **ASYNC_JIT)
def _move(ht, hk, src, dst):
    ht[dst] = ht[src]
    hk[dst, 0] = hk[src, 0]
    hk[dst, 1] = hk[src, 1]


@njit(**ASYNC_JIT)
def _sift_down(ht, hk, size, i):
    """Move the entry at ``i`` down (hole method: one write per level)."""
    t, key, aux = ht[i], hk[i, 0], hk[i, 1]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and key_less(ht, hk, child + 1, child):
            child += 1
        if ht[child] < t or (ht[child] == t and hk[child, 0] < key):
            _move(ht, hk, child, i)
            i = child
        else:
            break
    ht[i] = t
    hk[i, 0] = key
    hk[i, 1] = aux


@njit(**ASYNC_JIT)
def heap_push(ht, hk, size, t, layer, phase, neuron, aux):
    """Insert an entry; the caller guarantees ``size < len(ht)``. Returns the new size."""
    key = pack(layer, phase, neuron)
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if t < ht[parent] or (t == ht[parent] and key < hk[parent, 0]):
            _move(ht, hk, parent, i)
            i = parent
        else:
            break
    ht[i] = t
    hk[i, 0] = key
    hk[i, 1] = aux
    return size + 1


@njit(**ASYNC_JIT)
def heap_pop(ht, hk, size):
    """Remove the smallest entry. Returns ``(t, layer, phase, neuron, aux, new_size)``."""
    t = ht[0]
    layer, phase, neuron = unpack(hk[0, 0])
    aux = hk[0, 1]
    size -= 1
    if size > 0:
        _move(ht, hk, size, 0)
        _sift_down(ht, hk, size, 0)
    return t, layer, phase, neuron, aux, size


@njit(**ASYNC_JIT)
def heapify(ht, hk, size):
    """Restore the heap invariant over the first ``size`` entries in O(size)."""
    for i in range((size - 2) // 2, -1, -1):
        _sift_down(ht, hk, size, i)
