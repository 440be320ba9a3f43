"""eventsim's side of the comparison: spikes, synops under both conventions, logits, timing."""
from __future__ import annotations

import numpy as np

import eventsim as es

from .common import PeerRun
from .data import DT_US

__all__ = ["run_eventsim", "time_eventsim"]


def run_eventsim(network: es.Network, frames: np.ndarray, convention: str) -> PeerRun:
    """Run the stepped engine on integer ``frames`` (event counts per step).

    Parameters
    ----------
    network : eventsim network ending in a summing Readout
    frames : (T, C, H, W) integer array, events per pixel and step (10 ms)
    convention : ``"all"`` or ``"nonzero"``, the synop convention

    Returns
    -------
    PeerRun
        Rasters of every neuron population, synops per weighted layer, the summed readout.
    """
    res = es.simulate(network, np.asarray(frames, dtype=np.int64), engine="stepped", dt_us=DT_US,
                      synop_convention=convention, record="spikes")
    synops = {l.name: res.synops_per_layer[l.name] for l in network.layers if l.synaptic}
    rasters = {name: np.asarray(r, dtype=np.uint8) for name, r in res.rasters.items()}
    return PeerRun(logits=np.asarray(res.final_logits, dtype=np.float64), rasters=rasters, synops=synops,
                   extra={"macs": res.macs})


def time_eventsim(network: es.Network, engine: str):
    """A one-argument callable running ``engine`` (``"stepped"`` or ``"async"`` in batch mode) on frames."""
    options = {"simultaneous": "batch"} if engine == "async" else {}

    def run(frames):
        return es.simulate(network, frames, engine=engine, dt_us=DT_US, **options)
    return run
