"""Per-network caches of what the engines derive from a network's weights.

Both engines turn a :class:`~eventsim.network.Network` into tables before they simulate
(out-degrees for synop counting, transposed weights, the asynchronous engine's compiled layout).
A Network is immutable (its arrays are read-only), so these are computed once per Network
*object* and shared by every call: a dataset loop pays for them once, not once per recording.

The cache is keyed by identity and dropped with the object. A value-keyed lookup
(``WeakKeyDictionary``) would compare every weight of the network with ``==`` on each call.
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
