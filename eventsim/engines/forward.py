"""One dense forward description of the routing and weighted layers, shared by both engines.

The stepped engine runs it at every step; the asynchronous engine runs it once per analog frame
(or for the biases alone) to get the constant current each population integrates between spikes.
Both therefore sum a layer's input in the same order and get bit-identical currents.
"""
from __future__ import annotations

import numpy as np

from ..kernels.layers import conv2d_scatter, linear_scatter, pool2d
from ..network import AvgPool2d, Conv2d, Layer, Linear, MaxPool2d, SumPool2d

__all__ = ["POOL_MODE", "weighted_forward", "pool_forward"]

#: pooling kind -> the ``mode`` of :func:`eventsim.kernels.layers.pool2d`
POOL_MODE = {SumPool2d: 0, AvgPool2d: 1, MaxPool2d: 2}


def weighted_forward(layer: Layer, x: np.ndarray | None, shape: tuple, weight_t: np.ndarray | None = None,
                     bias: bool = True) -> np.ndarray:
    """``I = b + W·x`` of a :class:`~eventsim.network.Conv2d` or :class:`~eventsim.network.Linear`
    into a new array of ``shape`` (the bias first, then the input scattered in order).

    ``x`` None: the bias alone; ``bias=False`` leaves it out. ``weight_t`` is a Linear's
    transposed weight ``(in, out)`` when the caller keeps one (computed here otherwise).
    """
    out = np.zeros(shape)
    if bias and layer.bias is not None:
        out += layer.bias.reshape((-1,) + (1,) * (len(shape) - 1))
    if x is not None:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if isinstance(layer, Conv2d):
            conv2d_scatter(x, layer.weight, layer.stride[0], layer.stride[1], layer.padding[0], layer.padding[1],
                           layer.groups, out)
        elif isinstance(layer, Linear):
            linear_scatter(x, np.ascontiguousarray(layer.weight.T) if weight_t is None else weight_t, out)
        else:  # pragma: no cover - callers pass weighted layers only
            raise TypeError(f"{layer.name}: {type(layer).__name__} is not a weighted layer")
    return out


def pool_forward(layer: Layer, x: np.ndarray, counts: np.ndarray | None, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A pooling layer's output values and event counts (``counts`` None: an analog input, whose
    output counts are all zero)."""
    out, out_n = np.empty(shape), np.empty(shape, np.int64)
    src_n = counts if counts is not None else np.zeros(np.shape(x), np.int64)
    pool2d(np.ascontiguousarray(x, dtype=np.float64), src_n, layer.kernel_size[0], layer.kernel_size[1],
           layer.stride[0], layer.stride[1], layer.padding[0], layer.padding[1], POOL_MODE[type(layer)], out, out_n)
    return out, out_n
