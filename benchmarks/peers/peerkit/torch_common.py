"""Pieces shared by the PyTorch-based peer adapters: checks of what a peer can express, casts."""
from __future__ import annotations

import numpy as np

import eventsim as es

__all__ = ["check_if_population", "scalar_threshold", "readout_last", "torch_layer", "load_weights", "AsDtype"]


def check_if_population(layer: es.NeuronSpec, compare: str, peer: str) -> None:
    """Refuse a neuron population that ``peer``'s IF neuron cannot reproduce exactly.

    The peers' IF neurons integrate then fire with a subtract reset from v₀ = 0 and emit
    unit spikes; their threshold comparison is fixed (``compare``).
    """
    problems = []
    if type(layer) is not es.IF:
        problems.append(f"{type(layer).__name__} (only IF)")
    if layer.compare != compare:
        problems.append(f"compare {layer.compare!r} (the peer fires on v {compare} θ; "
                        "use peerkit.cases.with_compare)")
    if layer.reset != "subtract":
        problems.append(f"reset {layer.reset!r}")
    if np.any(np.asarray(layer.v_init) != 0):
        problems.append("v_init != 0")
    if layer.order != "integrate-fire":
        problems.append(f"order {layer.order!r}")
    if layer.spike_amplitude != 1.0:
        problems.append(f"spike_amplitude {layer.spike_amplitude!r}")
    if layer.step_gain is not None or layer.step_bias is not None or layer.refractory_us:
        problems.append("per-step gain/bias or refractory period")
    if problems:
        raise ValueError(f"{peer}: {layer.name} cannot be expressed exactly: " + "; ".join(problems))


def scalar_threshold(layer: es.NeuronSpec, peer: str) -> float:
    """The population's threshold as one float (the peers take a scalar)."""
    theta = np.unique(np.asarray(layer.threshold, dtype=np.float64))
    if theta.size != 1:
        raise ValueError(f"{peer}: {layer.name} has per-channel thresholds; the peer takes one scalar")
    return float(theta[0])


def readout_last(network: es.Network, peer: str) -> None:
    """Require a summing :class:`~eventsim.Readout` as the last layer (the peer's output is summed over time)."""
    last = network.layers[-1]
    if not isinstance(last, es.Readout) or last.mode != "sum":
        raise ValueError(f"{peer}: the network must end in Readout(mode='sum'), found {last.name}")


def torch_layer(spec: es.Layer, nn=None):
    """The module of a Conv2d, Linear, pooling or Flatten layer, built from ``nn`` (default
    ``torch.nn``; SpikingJelly's ``activation_based.layer`` has the same constructors), or None for
    any other layer. Weights are copied afterwards by :func:`load_weights`."""
    if nn is None:
        import torch
        nn = torch.nn
    if isinstance(spec, es.Conv2d):
        c_out, _, kh, kw = spec.weight.shape
        return nn.Conv2d(spec.in_channels, c_out, (kh, kw), stride=spec.stride, padding=spec.padding,
                         groups=spec.groups, bias=spec.bias is not None)
    if isinstance(spec, es.Linear):
        return nn.Linear(spec.weight.shape[1], spec.weight.shape[0], bias=spec.bias is not None)
    if isinstance(spec, es.AvgPool2d):
        return nn.AvgPool2d(spec.kernel_size, spec.stride, spec.padding)
    if isinstance(spec, es.SumPool2d):
        return nn.AvgPool2d(spec.kernel_size, spec.stride, spec.padding, divisor_override=1)
    if isinstance(spec, es.MaxPool2d):
        return nn.MaxPool2d(spec.kernel_size, spec.stride, spec.padding)
    if isinstance(spec, es.Flatten):
        return nn.Flatten()
    return None


def load_weights(modules, names, network: es.Network) -> None:
    """Copy the weights and biases of ``network``'s weighted layers into ``modules`` (``names[i]``:
    the eventsim layer of module ``i``, None for helper modules)."""
    import torch
    by_name = {layer.name: layer for layer in network.layers}
    with torch.no_grad():
        for mod, name in zip(modules, names):
            spec = by_name.get(name)
            if getattr(spec, "synaptic", False):
                mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(spec.weight)))
                if spec.bias is not None:
                    mod.bias.copy_(torch.from_numpy(spec.bias))


def _as_dtype_module():
    import torch

    class AsDtype(torch.nn.Module):
        """Cast to ``dtype``: sinabs and snnTorch emit float32 spikes even in a float64 model."""

        def __init__(self, dtype):
            super().__init__()
            self.dtype = dtype

        def forward(self, x):
            return x.to(self.dtype)
    return AsDtype


def __getattr__(name):
    if name == "AsDtype":   # defined lazily so that importing this module does not import torch
        return _as_dtype_module()
    raise AttributeError(name)
