"""SpikingJelly 2.0 adapter: ``activation_based`` IF neurons in multi-step mode, ``op_counter.SynOpCounter``.

The eventsim network becomes ``torch.nn.Sequential`` of ``spikingjelly.activation_based.layer``
modules and ``neuron.IFNode(v_threshold=θ, v_reset=None)`` (soft = subtract reset; fires on
``v >= θ``), all in step mode ``"m"`` so each layer processes the ``(T, B, ...)`` sequence at once
(SpikingJelly's fast path on CPU). Synops are SpikingJelly's own ``SynOpCounter`` under
``DispatchCounterMode``: for each ``aten.convolution``/``aten.mm`` whose input is a binary (0/1)
tensor it counts every existing synapse the non-zero inputs reach (``"all"`` convention, padding
excluded); **an input that is not binary counts 0** (event counts > 1 per bin, average- or
sum-pooled spikes).
"""
from __future__ import annotations

import numpy as np

import eventsim as es

from .common import PeerRun, PeerStatus, peer_status
from .torch_common import check_if_population, load_weights, readout_last, scalar_threshold, torch_layer

__all__ = ["NAME", "COMPARE", "status", "build", "simulate", "timer"]

NAME = "SpikingJelly"
COMPARE = ">="
MODULES = ("spikingjelly.activation_based.neuron", "spikingjelly.activation_based.functional",
           "spikingjelly.activation_based.layer", "spikingjelly.activation_based.op_counter")


def status() -> PeerStatus:
    """Whether SpikingJelly imports here (see :func:`peerkit.common.peer_status`)."""
    return peer_status(NAME, "spikingjelly", MODULES)


def build(network: es.Network, dtype=None):
    """SpikingJelly twin of ``network``: ``(sequential, names)``, ``names[i]`` the eventsim layer of module ``i``."""
    import torch
    from spikingjelly.activation_based import functional, layer, neuron
    dtype = dtype or torch.float64
    readout_last(network, NAME)
    modules, names = [], []
    for spec in network.layers[:-1]:
        mod = torch_layer(spec, layer)
        if isinstance(spec, es.NeuronSpec):
            check_if_population(spec, COMPARE, NAME)
            mod = neuron.IFNode(v_threshold=scalar_threshold(spec, NAME), v_reset=None)
        elif mod is None:
            raise ValueError(f"{NAME}: {spec.name} ({type(spec).__name__}) has no adapter")
        modules.append(mod)
        names.append(spec.name)
    seq = torch.nn.Sequential(*modules).to(dtype)
    load_weights(seq, names, network)
    functional.set_step_mode(seq, "m")
    seq.eval()
    return seq, names


def _input(frames: np.ndarray, seq):
    import torch
    dtype = next(p for p in seq.parameters()).dtype
    return torch.from_numpy(np.asarray(frames)).to(dtype).unsqueeze(1)     # (T, B=1, C, H, W)


def simulate(model, frames: np.ndarray, count: bool = True) -> PeerRun:
    """Run one sample ``(T, C, H, W)``; spikes of every IF layer, SynOpCounter per weighted layer.

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
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter
    seq, names = model
    x = _input(frames, seq)
    rasters, handles = {}, []
    for mod, name in zip(seq, names):
        if isinstance(mod, neuron.IFNode):
            handles.append(mod.register_forward_hook(
                lambda m, i, o, name=name: rasters.__setitem__(name, o.detach()[:, 0].numpy().astype(np.uint8))))
    counter = SynOpCounter()
    functional.reset_net(seq)
    try:
        with torch.no_grad():
            if count:
                with DispatchCounterMode([counter]):
                    out = seq(x)
            else:
                out = seq(x)
    finally:
        for h in handles:
            h.remove()
    synops = {}
    if count:
        root = type(seq).__name__
        for i, (mod, name) in enumerate(zip(seq, names)):
            if hasattr(mod, "weight"):
                synops[name] = int(sum(counter.records.get(f"{root}.{i}", {}).values()))
    return PeerRun(logits=out.sum(0)[0].double().numpy(), rasters=rasters, synops=synops,
                   extra={"synops_total": int(counter.get_total()) if count else None})


def timer(model):
    """A one-argument callable: simulate a prepared input tensor, no counting (what timing measures)."""
    import torch
    from spikingjelly.activation_based import functional
    seq, _ = model

    def run(x):
        functional.reset_net(seq)
        with torch.no_grad():
            return seq(x).sum(0)
    return run, (lambda frames: _input(frames, seq))
