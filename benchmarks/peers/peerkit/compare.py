"""Run one network on many samples in eventsim and in every available peer, and compare exactly.

Every comparison is per sample and exact: spike rasters element for element, synops per layer as
integers, predictions as argmax of the summed readout. eventsim runs the twin of each peer's
network (same threshold comparison, see :func:`peerkit.cases.with_compare`) under the peer's synop
convention. Where a peer's count differs, the peer's own convention (:mod:`peerkit.explain`)
applied to the peer's own spikes must reproduce it exactly, or the difference is unexplained.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

import eventsim as es

from . import explain, peer_neurobench, peer_sinabs, peer_spikingjelly
from .cases import Case, with_compare
from .common import seconds_per_sample
from .data import as_mode
from .ours import run_eventsim, time_eventsim

__all__ = ["PEERS", "CONVENTION", "compare_case", "time_case"]

#: peer name -> adapter module, in table order
PEERS: dict[str, ModuleType] = {"NeuroBench": peer_neurobench, "SpikingJelly": peer_spikingjelly,
                                "sinabs": peer_sinabs}
#: the synop convention each peer's own counter uses
CONVENTION = {"NeuroBench": "nonzero", "SpikingJelly": "all", "sinabs": "all"}
_EXPLAIN = {"NeuroBench": explain.neurobench_convention, "SpikingJelly": explain.spikingjelly_convention}


def _sparsity(spikes: int, neurons: int) -> float:
    """NeuroBench's activation sparsity from integer totals, with its own expression."""
    return (neurons - spikes) / neurons if neurons else 0.0


def compare_case(case: Case, frames: list[np.ndarray], labels: np.ndarray, mode: str,
                 peers: dict[str, ModuleType]) -> dict:
    """Compare ``case`` on ``frames`` in input ``mode`` with every peer adapter in ``peers``.

    Parameters
    ----------
    case : the network
    frames : list of ``(T, 2, 34, 34)`` int64 event counts, one per recording
    labels : (N,) int64 true classes (for eventsim's accuracy)
    mode : ``"counts"`` or ``"binary"`` (see :func:`peerkit.data.as_mode`)
    peers : ``{peer name: adapter module}``, the available subset of :data:`PEERS`

    Returns
    -------
    dict
        JSON-ready: eventsim's totals over the recordings (``v > θ`` network; spikes per layer,
        synops per layer under both conventions, accuracy) and per peer: totals, and for each
        quantity the number of recordings on which it equals eventsim's exactly
        (``prediction_agree``, ``rasters_equal``, ``synops_equal[layer]``) or the peer's own rule
        (``explained[layer]``).
    """
    net = case.network
    weighted = [l.name for l in net.layers if l.synaptic]
    neurons = [l.name for l in net.layers if isinstance(l, es.NeuronSpec)]
    neurons_per_step = sum(int(np.prod(net.shapes[i])) for i, l in enumerate(net.layers) if isinstance(l, es.NeuronSpec))
    n = len(frames)
    twins = {c: with_compare(net, c) for c in {m.COMPARE for m in peers.values()} | {">"}}
    models = {name: m.build(twins[m.COMPARE]) for name, m in peers.items()}
    ours = {"accuracy": 0, "spikes_per_layer": dict.fromkeys(neurons, 0),
            "synops_all": dict.fromkeys(weighted, 0), "synops_nonzero": dict.fromkeys(weighted, 0)}
    theirs = {name: {"convention": CONVENTION[name], "prediction_agree": 0, "rasters_equal": 0,
                     "spikes_per_layer": dict.fromkeys(neurons, 0), "synops_per_layer": dict.fromkeys(weighted, 0),
                     "eventsim_synops_per_layer": dict.fromkeys(weighted, 0),
                     "synops_equal": dict.fromkeys(weighted, 0), "explained": dict.fromkeys(weighted, 0),
                     "extra": {}} for name in peers}
    for frame, label in zip(frames, labels):
        x = as_mode(frame, mode)
        runs = {(c, conv): run_eventsim(tw, x, conv) for c, tw in twins.items() for conv in ("all", "nonzero")}
        base = runs[(">", "all")]
        ours["accuracy"] += int(base.prediction == label)
        for k, v in base.spikes.items():
            ours["spikes_per_layer"][k] += v
        for conv in ("all", "nonzero"):
            for k, v in runs[(">", conv)].synops.items():
                ours[f"synops_{conv}"][k] += v
        for name, module in peers.items():
            out = theirs[name]
            twin = runs[(module.COMPARE, CONVENTION[name])]
            run = module.simulate(models[name], x)
            out["prediction_agree"] += int(run.prediction == twin.prediction)
            out["rasters_equal"] += int(all(np.array_equal(run.rasters[k], twin.rasters[k]) for k in neurons))
            for k, v in run.spikes.items():
                out["spikes_per_layer"][k] += v
            expected = _EXPLAIN[name](twins[module.COMPARE], x, run.rasters) if name in _EXPLAIN else twin.synops
            for k in weighted:
                out["synops_per_layer"][k] += run.synops[k]
                out["eventsim_synops_per_layer"][k] += twin.synops[k]
                out["synops_equal"][k] += int(run.synops[k] == twin.synops[k])
                out["explained"][k] += int(run.synops[k] == expected[k])
            if name == "NeuroBench":
                ours_sparsity = _sparsity(sum(twin.spikes.values()), neurons_per_step * x.shape[0])
                extra = out["extra"]
                extra["activation_sparsity_equal"] = extra.get("activation_sparsity_equal", 0) + int(
                    run.extra["activation_sparsity"] == ours_sparsity)
                extra["activation_sparsity_sum"] = extra.get("activation_sparsity_sum", 0.0) + run.extra["activation_sparsity"]
                for key in ("effective_acs", "effective_macs", "dense"):
                    extra[key] = extra.get(key, 0) + run.extra[key]
                extra["total_equal"] = extra.get("total_equal", 0) + int(run.extra["synops_total"] == sum(twin.synops.values()))
                extra["total_equals_layer_sum"] = extra.get("total_equals_layer_sum", 0) + int(
                    run.extra["synops_total"] == sum(run.synops.values()))
    ours["accuracy"] /= n
    return {"case": case.name, "layers": case.layers, "zero_fraction": round(case.zero_fraction, 4),
            "mode": mode, "samples": n, "eventsim": ours, "peers": theirs}


def time_case(case: Case, frames: list[np.ndarray], peers: dict[str, ModuleType], dtypes=("float64", "float32"),
              rounds: int = 3) -> dict:
    """Mean wall seconds per sample, one thread: eventsim (stepped, async batch) and each peer's
    plain simulation (no counting hooks) in each torch ``dtype``.

    Inputs are prepared outside the timed region for every tool; eventsim's runs include its
    counting, which cannot be switched off. The tools take turns for ``rounds`` rounds and each
    keeps its fastest round (the machine is shared; the minimum is the least disturbed figure).
    """
    import torch
    runs = {}
    for engine in ("stepped", "async"):
        runs[f"eventsim_{engine}"] = (time_eventsim(case.network, engine), list(frames))
    for name, module in peers.items():
        twin = with_compare(case.network, module.COMPARE)
        for dtype in dtypes:
            kwargs = {"dtype": getattr(torch, dtype)}
            if name == "sinabs":
                kwargs["count"] = False
            elif name == "NeuroBench":
                kwargs["hooks"] = False
            run, prepare = module.timer(module.build(twin, **kwargs))
            runs[f"{name}_{dtype}"] = (run, [prepare(f) for f in frames])
    best = {key: float("inf") for key in runs}
    for r in range(rounds):
        for key, (run, inputs) in runs.items():
            best[key] = min(best[key], seconds_per_sample(run, inputs, warmup=1 if r == 0 else 0))
    return best
