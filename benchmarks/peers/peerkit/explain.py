"""The peers' counting conventions written out, to explain every count that differs from eventsim's.

eventsim counts ``Σ_t Σ_i n_{t,i} · d_i`` per weighted layer: ``n`` the events that reach input
position ``i`` in step ``t`` (several when a pixel fires several times in one bin, or when a sum or
average pool merges several spikes), ``d`` the out-degree (existing synapses; ``"nonzero"``: only
non-zero weights). The peers differ in how they treat an input value other than 0 or 1:

* NeuroBench binarises every layer input per forward call (per step here):
  ``Σ_t Σ_i [x_{t,i} ≠ 0] · d_i^{nonzero}`` (:func:`neurobench_convention`);
* SpikingJelly's ``SynOpCounter`` counts ``Σ x_{t,i} · d_i^{all}`` only when the whole input
  tensor of a call is binary, else 0; in multi-step mode one call covers all T steps
  (:func:`spikingjelly_convention`);
* sinabs counts ``Σ x · d^{all}`` and rescales a layer after ``AvgPool2d`` by the pooling area:
  exactly eventsim's ``"all"``.

The functions here rebuild every weighted layer's input from the input frames and a simulator's
spike rasters with plain NumPy, and apply those formulas with :func:`eventsim.counting.out_degree`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

import eventsim as es
from eventsim.counting import out_degree

__all__ = ["layer_inputs", "neurobench_convention", "spikingjelly_convention"]


def _pool(x: np.ndarray, layer) -> np.ndarray:
    """Pool ``x`` ``(T, C, H, W)`` per step like PyTorch (average includes padding)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    fill = -np.inf if isinstance(layer, es.MaxPool2d) else 0.0
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    if isinstance(layer, es.MaxPool2d):
        return win.max(axis=(-2, -1))
    total = win.sum(axis=(-2, -1))
    return total / (kh * kw) if isinstance(layer, es.AvgPool2d) else total


def layer_inputs(network: es.Network, frames: np.ndarray, rasters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Input of every weighted layer per step, ``{name: (T, *input_shape)}``.

    ``frames`` ``(T, *input_shape)`` feeds the first layer; a neuron population's output is its
    raster (unit spikes); pools and Flatten transform values as PyTorch does.
    """
    x = np.asarray(frames, dtype=np.float64)
    inputs = {}
    for layer in network.layers:
        if layer.synaptic:
            inputs[layer.name] = x
            x = None                          # the next population's raster replaces it
        elif isinstance(layer, es.NeuronSpec):
            x = np.asarray(rasters[layer.name], dtype=np.float64)
        elif isinstance(layer, (es.AvgPool2d, es.SumPool2d, es.MaxPool2d)):
            x = _pool(x, layer)
        elif isinstance(layer, es.Flatten):
            x = x.reshape(x.shape[0], -1)
        elif isinstance(layer, es.Readout):
            break
        else:
            raise ValueError(f"layer_inputs: {layer.name} ({type(layer).__name__}) is not supported")
    return inputs


def _degrees(network: es.Network, convention: str) -> dict[str, np.ndarray]:
    return {l.name: out_degree(l, network.input_shape_of(i), convention).astype(np.float64)
            for i, l in enumerate(network.layers) if l.synaptic}


def neurobench_convention(network, frames, rasters) -> dict[str, int]:
    """NeuroBench: ``Σ_t Σ_i [x_{t,i} ≠ 0] · d_i^{nonzero}`` (input binarised per step)."""
    degrees = _degrees(network, "nonzero")
    return {name: int(((x != 0) * degrees[name]).sum())
            for name, x in layer_inputs(network, frames, rasters).items()}


def spikingjelly_convention(network, frames, rasters) -> dict[str, int]:
    """SpikingJelly multi-step: ``Σ x · d^{all}`` if all of a layer's T-step input is 0/1, else 0."""
    degrees = _degrees(network, "all")
    out = {}
    for name, x in layer_inputs(network, frames, rasters).items():
        binary = bool(np.all((x == 0) | (x == 1)))
        out[name] = int((x * degrees[name]).sum()) if binary else 0
    return out
