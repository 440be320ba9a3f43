"""Per-network caches of what the engines derive from a network's weights.

Both engines turn a :class:`~eventsim.network.Network` into tables before they simulate
(out-degrees for synop counting, transposed weights, the asynchronous engine's compiled layout).
A Network is immutable (its arrays are read-only), so these are computed once per Network
*object* and shared by every call: a dataset loop pays for them once, not once per recording.

The cache is keyed by identity on purpose, and dropped with the object. Networks compare and hash
by value (equal networks hash equal), so a value-keyed lookup would be correct too, but it would
compare every weight of two equal networks with ``==`` on a hash match; equal networks built
separately therefore get one cache each. The ``id`` is only trusted while the weak reference still
points at the same object, so a recycled ``id`` never serves another network's tables.
"""
from __future__ import annotations

import weakref

from ..network import Network

_CACHES: "dict[int, tuple[weakref.ref, dict]]" = {}


def cache_for(network: Network) -> dict:
    """The cache of this Network object: a dict the engines fill with their own keys."""
    key = id(network)
    entry = _CACHES.get(key)
    if entry is None or entry[0]() is not network:
        def forget(ref, key=key):
            if _CACHES.get(key, (None,))[0] is ref:
                del _CACHES[key]
        entry = _CACHES[key] = (weakref.ref(network, forget), {})
    return entry[1]
