"""What every simulator in the comparison returns, peer availability, and timing.

Every adapter (eventsim's own side and each peer) turns one sample into a :class:`PeerRun` keyed
by the *eventsim* layer names (``"0.Conv2d"``, ``"1.IF"``, ...), so that rows line up.
"""
from __future__ import annotations

import importlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["PeerRun", "PeerStatus", "peer_status", "seconds_per_sample", "as_count"]


@dataclass
class PeerRun:
    """Result of one simulator on one sample.

    Attributes
    ----------
    logits : (n_out,) float64 array, the readout summed over all steps
    rasters : ``{neuron layer name: (T, *shape) uint8}`` spikes per step
    synops : ``{weighted layer name: int}`` the simulator's own synop count (empty if it has none)
    extra : anything else the tool reports (NeuroBench's AC/MAC split, activation sparsity, ...)
    """

    logits: np.ndarray
    rasters: Mapping[str, np.ndarray]
    synops: Mapping[str, int] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def prediction(self) -> int:
        """Index of the largest summed readout (lowest index on ties, as ``argmax``)."""
        return int(np.argmax(self.logits))

    @property
    def spikes(self) -> dict[str, int]:
        """Spike count per neuron layer."""
        return {name: int(r.sum()) for name, r in self.rasters.items()}


@dataclass(frozen=True)
class PeerStatus:
    """Whether a peer can run here: ``available``, its ``version`` or the ``reason`` it cannot."""

    name: str
    available: bool
    version: str = ""
    reason: str = ""


def peer_status(name: str, distribution: str, modules: Sequence[str]) -> PeerStatus:
    """Import ``modules`` and report the installed version of ``distribution``.

    Any exception during import (missing package, missing transitive dependency, incompatible
    torch) makes the peer unavailable with the exception text as the reason, so the suite can
    skip it cleanly.
    """
    from importlib.metadata import PackageNotFoundError, version
    try:
        ver = version(distribution)
    except PackageNotFoundError:
        return PeerStatus(name, False, reason=f"{distribution} is not installed "
                          "(bash benchmarks/peers/install_peers.sh installs it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception as exc:  # any import failure means: skip this peer, say why
                return PeerStatus(name, False, ver, f"import {module} failed: {type(exc).__name__}: {exc}")
    return PeerStatus(name, True, ver)


def as_count(value: float, what: str) -> int:
    """Round a float that a peer reports for an integer count; refuse a non-integral value.

    Peers accumulate counts in floating point (sinabs reports a mean per time step). A value more
    than 1e-6 away from an integer means the count is not what it claims to be.
    """
    value = float(value)
    rounded = round(value)
    if abs(value - rounded) > 1e-6:
        raise ValueError(f"{what}: {value!r} is not an integer count")
    return int(rounded)


def seconds_per_sample(run: Callable[[object], object], inputs: Sequence[object], warmup: int = 1) -> float:
    """Mean wall time in seconds of ``run(x)`` over ``inputs``, after ``warmup`` untimed calls.

    The caller fixes the thread count (``torch.set_num_threads(1)``, ``NUMBA_NUM_THREADS=1``).
    """
    for x in list(inputs)[:warmup]:
        run(x)
    start = time.perf_counter()
    for x in inputs:
        run(x)
    return (time.perf_counter() - start) / max(1, len(inputs))
