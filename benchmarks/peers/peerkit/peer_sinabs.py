"""sinabs 3.1 adapter: ``IAFSqueeze`` neurons, ``sinabs.hooks.register_synops_hooks`` counters.

The eventsim network becomes ``torch.nn.Sequential`` of ``torch.nn`` layers and
``sinabs.layers.IAFSqueeze(spike_fn=SingleSpike, reset_fn=MembraneSubtract())`` (one spike per
step at most, subtract reset, fires on ``v >= θ``), sinabs's usual layout with batch and time
squeezed into one axis, so every layer processes all T steps at once. sinabs emits float32 spikes,
so a cast back to the model's float64 follows each population (it changes no value).

Synops are sinabs's own hooks: per weighted layer, ``Σ input × fan-out`` with the fan-out map
from a transposed convolution of ones (``"all"`` convention, padding excluded; inputs keep their
multiplicity, so event counts > 1 count as many synops), and the model-level hook multiplies a
layer after ``AvgPool2d`` by the pooling area. sinabs reports the **mean per time step**
(``synops_per_timestep``); the total is that mean × T, an integer up to float rounding
(:func:`peerkit.common.as_count` checks it).
"""
from __future__ import annotations

import numpy as np

import eventsim as es

from .common import PeerRun, PeerStatus, as_count, peer_status
from .torch_common import check_if_population, load_weights, readout_last, scalar_threshold, torch_layer

__all__ = ["NAME", "COMPARE", "status", "build", "simulate", "timer"]

NAME = "sinabs"
COMPARE = ">="
MODULES = ("sinabs.layers", "sinabs.hooks", "sinabs.activation")


def status() -> PeerStatus:
    """Whether sinabs imports here (see :func:`peerkit.common.peer_status`)."""
    return peer_status(NAME, "sinabs", MODULES)


def build(network: es.Network, dtype=None, count: bool = True):
    """sinabs twin of ``network``: ``(sequential, names)``; ``names[i]`` is the eventsim layer of
    module ``i`` (None for the casts). ``count=True`` registers sinabs's synops hooks."""
    import torch
    import sinabs.layers as sl
    from sinabs.activation import MembraneSubtract, SingleSpike
    from sinabs.hooks import register_synops_hooks

    from .torch_common import AsDtype
    dtype = dtype or torch.float64
    readout_last(network, NAME)
    modules, names = [], []
    for spec in network.layers[:-1]:
        extra = None
        mod = torch_layer(spec)
        if isinstance(spec, es.NeuronSpec):
            check_if_population(spec, COMPARE, NAME)
            mod = sl.IAFSqueeze(batch_size=1, spike_threshold=torch.tensor(scalar_threshold(spec, NAME), dtype=dtype),
                                spike_fn=SingleSpike, reset_fn=MembraneSubtract(), min_v_mem=None)
            extra = AsDtype(dtype)
        elif isinstance(spec, es.SumPool2d):
            if spec.padding != (0, 0):
                raise ValueError(f"{NAME}: {spec.name}: sinabs SumPool2d has no padding")
            mod = sl.SumPool2d(spec.kernel_size, spec.stride)
        elif mod is None:
            raise ValueError(f"{NAME}: {spec.name} ({type(spec).__name__}) has no adapter")
        modules.append(mod)
        names.append(spec.name)
        if extra is not None:
            modules.append(extra)
            names.append(None)
    seq = torch.nn.Sequential(*modules).to(dtype)
    load_weights(seq, names, network)
    if count:
        register_synops_hooks(seq)
    seq.eval()
    return seq, names


def _input(frames: np.ndarray, seq):
    import torch
    dtype = next(p for p in seq.parameters()).dtype
    return torch.from_numpy(np.asarray(frames)).to(dtype)          # (B·T, C, H, W) with B = 1


def simulate(model, frames: np.ndarray) -> PeerRun:
    """Run one sample ``(T, C, H, W)``: spikes of every population, synops from sinabs's hooks.

    Parameters
    ----------
    model : ``(model, names)`` from :func:`build`
    frames : (T, C, H, W) array of event counts per 10 ms step

    Returns
    -------
    PeerRun
        Keyed by eventsim layer names: rasters ``(T, *shape)``, synops per weighted layer.
    """
    import torch
    import sinabs
    import sinabs.layers as sl
    seq, names = model
    x = _input(frames, seq)
    steps = x.shape[0]
    rasters, handles = {}, []
    for mod, name in zip(seq, names):
        if isinstance(mod, sl.StatefulLayer):
            handles.append(mod.register_forward_hook(
                lambda m, i, o, name=name: rasters.__setitem__(name, o.detach().numpy().astype(np.uint8))))
    sinabs.reset_states(seq)
    try:
        with torch.no_grad():
            out = seq(x)
    finally:
        for h in handles:
            h.remove()
    data = getattr(seq, "hook_data", {})
    per_step = data.get("synops_per_timestep", {})
    synops = {names[i]: as_count(float(v) * steps, f"sinabs synops of {names[i]}") for i, v in per_step.items()}
    total = as_count(float(data.get("total_synops_per_timestep", 0.0)) * steps, "sinabs total synops")
    return PeerRun(logits=out.sum(0).double().numpy(), rasters=rasters, synops=synops,
                   extra={"synops_total": total})


def timer(model):
    """A one-argument callable: simulate a prepared input tensor (build with ``count=False`` to time)."""
    import torch
    import sinabs
    seq, _ = model

    def run(x):
        sinabs.reset_states(seq)
        with torch.no_grad():
            return seq(x).sum(0)
    return run, (lambda frames: _input(frames, seq))
