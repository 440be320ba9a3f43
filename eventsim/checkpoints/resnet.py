"""Residual networks for the importers: BasicBlocks written as IR layers with :class:`~eventsim.network.Branch`
and :class:`~eventsim.network.Add`.

A BasicBlock whose input is the output of layer ``k`` becomes::

    Conv2d, neuron, Conv2d                      residual path (its current ends at layer m)
    Branch(source=k), Conv2d(1×1, stride)        downsampling shortcut, when the block has one
    Add(source=m)                               shortcut current + residual current
    neuron                                      the spiking site after the addition

and without a shortcut convolution ``Conv2d, neuron, Conv2d, Add(source=k), neuron`` (the block
input's spikes are added to the residual current). The importers fold BatchNorm into each
convolution before handing the layers here.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import network as nw
from .common import KeyReader, fold_batchnorm
from .torchfile import CheckpointError

__all__ = ["conv_bn", "ResNetBuilder", "need_input_shape"]


def conv_bn(keys: KeyReader, conv: str, bn: str | None, bn_eps: float, stride: int, name: str | None = None
            ) -> nw.Conv2d:
    """``<conv>.weight`` (and ``.bias`` if present) with the BatchNorm ``<bn>.*`` (if present) folded in;
    padding ``(k − 1)/2`` as in every public BasicBlock."""
    w = keys.take(f"{conv}.weight", ndim=4)
    b = keys.optional(f"{conv}.bias", (w.shape[0],))
    if bn is not None and f"{bn}.running_mean" in keys:
        c = w.shape[0]
        w, b = fold_batchnorm(w, b, keys.take(f"{bn}.running_mean", (c,)), keys.take(f"{bn}.running_var", (c,)),
                              keys.optional(f"{bn}.weight", (c,)), keys.optional(f"{bn}.bias", (c,)), bn_eps)
    kh, kw = w.shape[2:]
    return nw.Conv2d(w, b, stride=stride, padding=((kh - 1) // 2, (kw - 1) // 2), name=name or conv)


class ResNetBuilder:
    """Collect IR layers of a residual network in topological order.

    ``add(layer, ...)`` appends a chain; ``block(...)`` appends one BasicBlock reading the output of
    the last layer; ``head(...)`` ends with global average pooling, Flatten, Linear and a Readout.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.layers: list[nw.Layer] = []

    def add(self, *layers: nw.Layer) -> None:
        self.layers.extend(layers)

    def block(self, name: str, residual: Sequence[nw.Layer], shortcut: Sequence[nw.Layer],
              neuron: nw.Layer) -> None:
        """One BasicBlock: ``residual`` (conv, neuron, conv), ``shortcut`` (its layers, empty for
        identity) and the ``neuron`` after the addition."""
        if not self.layers:
            raise CheckpointError(f"{self.source}: residual block {name!r} has no input layer before it")
        k = len(self.layers) - 1
        self.layers.extend(residual)
        m = len(self.layers) - 1
        if shortcut:
            self.layers.append(nw.Branch(source=k, name=f"{name}.shortcut_in"))
            self.layers.extend(shortcut)
            self.layers.append(nw.Add(source=m, name=f"{name}.add"))
        else:
            self.layers.append(nw.Add(source=k, name=f"{name}.add"))
        self.layers.append(neuron)

    def feature_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Output shape of the layers so far for ``input_shape`` (raises CheckpointError on a mismatch)."""
        try:
            return nw.Network(tuple(input_shape), list(self.layers)).shapes[-1]
        except ValueError as exc:
            raise CheckpointError(f"{self.source}: {exc}") from None

    def head(self, input_shape: Sequence[int], fc_weight: np.ndarray, fc_bias: np.ndarray | None,
             readout: str, pool_name: str = "avg_pool", fc_name: str = "fc") -> None:
        """``AdaptiveAvgPool2d((1, 1))`` (an average over the whole map), Flatten, ``Linear``, Readout."""
        c, h, w = self.feature_shape(input_shape)
        if fc_weight.shape[1] != c:
            raise CheckpointError(f"{self.source}: {fc_name}.weight has {fc_weight.shape[1]} inputs but the last "
                                  f"block has {c} channels")
        self.layers += [nw.AvgPool2d((h, w), name=pool_name), nw.Flatten(name="flatten"),
                        nw.Linear(fc_weight, fc_bias, name=fc_name), nw.Readout(mode=readout, name="readout")]

    def network(self, input_shape: Sequence[int], metadata: dict) -> nw.Network:
        try:
            return nw.Network(tuple(input_shape), self.layers, metadata=metadata)
        except ValueError as exc:
            raise CheckpointError(f"{self.source}: {exc}") from None


def need_input_shape(input_shape: Sequence[int] | None, source: str, layout: str, channels: int,
                     hint: str) -> tuple[int, ...]:
    """ResNets end in global average pooling, so every image size fits: the caller must say."""
    if input_shape is None:
        raise CheckpointError(f"{source}: a {layout} ResNet ends in global average pooling, so the checkpoint does not "
                              f"fix the image size; pass input_shape=({channels}, H, W) ({hint})")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[0] != channels:
        raise CheckpointError(f"{source}: input_shape={tuple(input_shape)} must be ({channels}, H, W) for this "
                              f"checkpoint (its first convolution reads {channels} channels)")
    return shape

