"""Helpers of the eventsim-vs-peers suite (``benchmarks/peers``).

Not part of the ``eventsim`` package: ``run_peers.py`` and ``tests/test_peers.py`` put
``benchmarks/peers`` on ``sys.path`` and import ``peerkit`` from there.

Modules
-------
common
    :class:`PeerRun` (what every simulator returns), peer status, timing.
cases
    The networks compared, built as eventsim IR from the shipped N-MNIST model or seeded weights.
data
    Real N-MNIST test recordings binned to frames (event counts or binary).
ours
    eventsim's side: the stepped engine with spike rasters under both synop conventions.
peer_spikingjelly, peer_sinabs, peer_neurobench, torch_common
    One adapter per peer: build the peer's model from an eventsim network, simulate, count.
explain
    Each peer's counting rule written out, to reproduce every count that differs from eventsim's.
compare
    Per-recording exact comparison of one network across all tools; timing.
repro
    Minimal reproducing cases for every counting disagreement.
report
    JSON and ``REPORT.md`` rendering.
"""
