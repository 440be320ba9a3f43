"""QCFS ResNets (``Models/ResNet.py`` of putshua/ANN_SNN_QCFS and putshua/SNN_conversion_QCFS).

Layout
------
``resnet18``/``resnet34`` (``ResNet``, stem width 64, stages ``conv2_x`` … ``conv5_x``) and ``resnet20``
(``ResNet4Cifar``, width 16, stages ``conv2_x`` … ``conv4_x``)::

    conv1.0 Conv2d(3×3, bias=False)   conv1.1 BatchNorm2d   conv1.2 clip (.thresh new code, .up old code)
    conv<s>_x.<b>.residual_function.0 Conv2d(3×3, stride)  .1 BN  .2 clip  .3 Conv2d(3×3)  .4 BN
    conv<s>_x.<b>.shortcut.0 Conv2d(1×1, stride)  .1 BN      (only where stride ≠ 1 or the width changes)
    conv<s>_x.<b>.act (new code) / .relu (old code)           the clip after the addition
    avg_pool AdaptiveAvgPool2d((1, 1)), fc Linear

The keys do not record strides: as the public ``_make_layer``, the first block of every stage but the
first has stride 2, all others stride 1. The spiking site of a block is after the addition
(``act(residual_function(x) + shortcut(x))``); the shortcut of a block without a convolution adds the
block input's spikes (amplitude θ).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from .. import network as nw
from .common import KeyReader
from .resnet import ResNetBuilder, conv_bn, need_input_shape
from .torchfile import CheckpointError

__all__ = ["is_qcfs_resnet", "load_qcfs_resnet"]

LAYOUT = "QCFS"
_KEY = re.compile(r"(conv(\d+)_x)\.(\d+)\.(residual_function|shortcut|act|relu)(?:\.(\d+))?\..+")


def is_qcfs_resnet(state: dict) -> bool:
    return any(".residual_function." in k for k in state)


def _clip_key(keys: KeyReader, module: str, source: str, what: str) -> str:
    for param in ("thresh", "up"):
        if f"{module}.{param}" in keys:
            return f"{module}.{param}"
    raise CheckpointError(f"{source}: no QCFS clip ('{module}.thresh' or '{module}.up') for {what}")


def load_qcfs_resnet(state: dict, source: str, *, input_shape: Sequence[int] | None, v_init: float,
                     readout: str, bn_eps: float, strict: bool) -> nw.Network:
    """Build the IF network of a QCFS ResNet state dict (see the module docstring)."""
    keys = KeyReader(state, source, LAYOUT)
    blocks: dict[tuple[int, int], set[str]] = {}
    for key in state:
        m = _KEY.fullmatch(key)
        if m:
            blocks.setdefault((int(m.group(2)), int(m.group(3))), set()).add(
                m.group(4) + (f".{m.group(5)}" if m.group(5) else ""))
    for (s, b), parts in sorted(blocks.items()):
        where = f"conv{s}_x.{b}"
        if any(p.startswith("residual_function.") and int(p.split(".")[1]) > 4 for p in parts):
            raise CheckpointError(f"{source}: bottleneck residual block at {where!r} (ResNet-50 and deeper: three "
                                  "convolutions per block) is not supported; the QCFS importer reads BasicBlock "
                                  "ResNets (resnet18, resnet20, resnet34)")

    def neuron(module: str, what: str) -> nw.IF:
        key = _clip_key(keys, module, source, what)
        theta = keys.scalar(key)
        try:
            return nw.IF(threshold=theta, compare=">=", reset="subtract", v_init=v_init * theta,
                         spike_amplitude="threshold", name=module)
        except ValueError as exc:
            raise CheckpointError(f"{source}: {key}: {exc}") from None

    if "conv1.0.weight" not in keys:
        raise CheckpointError(f"{source}: a QCFS ResNet starts with 'conv1.0.weight' (the stem convolution); "
                              "not found")
    channels = int(state["conv1.0.weight"].shape[1])
    if int(state["conv1.0.weight"].shape[2]) != 3:
        raise CheckpointError(f"{source}: stem convolution 'conv1.0' has a {tuple(state['conv1.0.weight'].shape[2:])} "
                              "kernel; the QCFS ResNets use 3×3 (an ImageNet 7×7 stem with max pooling is not "
                              "supported)")
    shape = need_input_shape(input_shape, source, LAYOUT, channels,
                             "(3, 32, 32) for CIFAR, (3, 224, 224) for ImageNet")
    net = ResNetBuilder(source)
    net.add(conv_bn(keys, "conv1.0", "conv1.1", bn_eps, 1), neuron("conv1.2", "the stem"))
    stages = sorted({s for s, _ in blocks})
    for si, s in enumerate(stages):
        for bi, b in enumerate(sorted(b for t, b in blocks if t == s)):
            where = f"conv{s}_x.{b}"
            parts = blocks[(s, b)]
            stride = 2 if si > 0 and bi == 0 else 1
            has_shortcut = "shortcut.0" in parts
            if stride != 1 and not has_shortcut:
                raise CheckpointError(f"{source}: block {where!r} starts stage conv{s}_x (stride 2) but has no "
                                      f"shortcut convolution ('{where}.shortcut.0.weight')")
            rf = f"{where}.residual_function"
            residual = [conv_bn(keys, f"{rf}.0", f"{rf}.1", bn_eps, stride),
                        neuron(f"{rf}.2", f"block {where!r}"),
                        conv_bn(keys, f"{rf}.3", f"{rf}.4", bn_eps, 1)]
            shortcut = [conv_bn(keys, f"{where}.shortcut.0", f"{where}.shortcut.1", bn_eps, stride)] \
                if has_shortcut else []
            site = f"{where}.act" if "act" in parts else f"{where}.relu"
            net.block(where, residual, shortcut, neuron(site, f"the addition of block {where!r}"))
    fc_w = keys.take("fc.weight", ndim=2)
    net.head(shape, fc_w, keys.optional("fc.bias", (fc_w.shape[0],)), readout)
    if strict:
        keys.finish()
    meta = {"format": "qcfs", "source": Path(source).name, "input_encoding": "analog", "v_init_fraction": v_init,
            "architecture": "resnet"}
    return net.network(shape, meta)
