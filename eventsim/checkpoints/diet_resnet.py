"""DIET-SNN ResNets (``self_models/resnet_spiking.py``, ``RESNET_SNN_STDB``: resnet12/20/34).

Layout (``module.`` prefix from ``nn.DataParallel``, inside ``snn.py``'s checkpoint dict)
--------------------------------------------------------------------------------------
* ``pre_process``: ``Conv2d(3×3, bias=False)``, ReLU, Dropout, Conv2d, ReLU, Dropout, Conv2d, ReLU,
  ``AvgPool2d(2)``: keys ``pre_process.{0,3,6}.weight``;
* ``layer1`` … ``layer4``: BasicBlocks ``residual = Sequential(Conv2d(3×3, stride, bias=False), ReLU,
  Dropout, Conv2d(3×3, bias=False))`` (``layer<k>.<b>.residual.{0,3}.weight``) and, where the stride is not
  1 or the width changes, ``identity = Sequential(Conv2d(1×1, stride, bias=False))``
  (``layer<k>.<b>.identity.0.weight``); stride 2 for the first block of ``layer2`` … ``layer4``;
* ``classifier``: one ``Linear(bias=False)``, a non-spiking accumulator;
* ``threshold.t<n>`` / ``leak.l<n>``: ``n`` = 0, 3, 6 for the stem, then two per block from 9 on
  (the block's first conv, then its output after the addition).

Each block computes ``u₁ ← λ₁u₁ + conv₀(s_in)``, spikes ``s₁``;
``u₂ ← λ₂u₂ + conv₃(s₁) + identity(s_in)``, spikes ``s₂`` (the spiking site after the addition): the
LIF of :mod:`eventsim.checkpoints.diet`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import network as nw
from .common import KeyReader
from .resnet import ResNetBuilder
from .torchfile import CheckpointError

__all__ = ["detect_diet_resnet", "load_diet_resnet"]

LAYOUT = "DIET-SNN ResNet"
_KEY = re.compile(r"pre_process\.(\d+)\.weight|layer(\d+)\.(\d+)\.(residual|identity)\.(\d+)\.weight|"
                  r"classifier\.(\d+)\.weight|threshold\.t(\d+)|leak\.l(\d+)")


def detect_diet_resnet(state: dict) -> bool:
    return (any(k.startswith("pre_process.") for k in state) and any(".residual." in k for k in state)
            and all(_KEY.fullmatch(k) for k in state))


def _conv(keys: KeyReader, key: str, stride: int) -> nw.Conv2d:
    w = keys.take(f"{key}.weight", ndim=4)
    return nw.Conv2d(w, stride=stride, padding=((w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2), name=key)


def load_diet_resnet(state: dict, extras: dict, source: str, *, input_shape: Sequence[int] | None, order: str,
                     thresholds: list | None, leaks: list | None, strict: bool) -> nw.Network:
    keys = KeyReader(state, source, LAYOUT)
    stem = sorted(int(m.group(1)) for k in state if (m := _KEY.fullmatch(k)) and m.group(1))
    if stem != [0, 3, 6]:
        raise CheckpointError(f"{source}: the DIET-SNN ResNet stem has convolutions at pre_process {stem}; the public "
                              "resnet_spiking.py has them at [0, 3, 6] (then AvgPool2d(2) at 8)")
    blocks: dict[tuple[int, int], set[str]] = {}
    for k in state:
        m = _KEY.fullmatch(k)
        if m and m.group(2):
            blocks.setdefault((int(m.group(2)), int(m.group(3))), set()).add(f"{m.group(4)}.{m.group(5)}")
    cls = sorted(int(m.group(6)) for k in state if (m := _KEY.fullmatch(k)) and m.group(6))
    if len(cls) != 1:
        raise CheckpointError(f"{source}: a classifier of {len(cls)} Linear layers (classifier {cls}); the public "
                              "resnet_spiking.py has one, and the importer reads that form")
    sites = 3 + 2 * len(blocks)
    if thresholds is None and not any(k.startswith("threshold.") for k in state):
        thresholds = _listed(extras.get("thresholds"), sites, "thresholds", source)
    if leaks is None and not any(k.startswith("leak.") for k in state):
        leaks = _listed(extras.get("leak"), sites, "leak", source)
    count = [0]

    def neuron(n: int, name: str) -> nw.LIF:
        k = count[0]
        count[0] += 1
        if thresholds is not None and k >= len(thresholds) or leaks is not None and k >= len(leaks):
            raise CheckpointError(f"{source}: {sites} spiking layers but fewer thresholds/leaks given")
        return diet_neuron(keys, thresholds, leaks, k, n, order, name, source)

    net = ResNetBuilder(source)
    for i in (0, 3, 6):
        net.add(_conv(keys, f"pre_process.{i}", 1), neuron(i, f"pre_process.{i + 1}"))
    net.add(nw.AvgPool2d(2, name="pre_process.8"))
    pos = 9
    for (layer, b) in sorted(blocks):
        parts = blocks[(layer, b)]
        where = f"layer{layer}.{b}"
        if parts - {"residual.0", "residual.3", "identity.0"}:
            raise CheckpointError(f"{source}: block {where!r} has modules {sorted(parts)}; the public BasicBlock has "
                                  "residual.0, residual.3 and identity.0")
        stride = 2 if layer > 1 and b == 0 else 1
        if stride != 1 and "identity.0" not in parts:
            raise CheckpointError(f"{source}: block {where!r} starts {f'layer{layer}'} (stride 2) but has no shortcut "
                                  f"convolution ('{where}.identity.0.weight')")
        residual = [_conv(keys, f"{where}.residual.0", stride), neuron(pos, f"{where}.residual.1"),
                    _conv(keys, f"{where}.residual.3", 1)]
        shortcut = [_conv(keys, f"{where}.identity.0", stride)] if "identity.0" in parts else []
        net.block(where, residual, shortcut, neuron(pos + 1, f"{where}.out"))
        pos += 2
    w = keys.take(f"classifier.{cls[0]}.weight", ndim=2)
    net.add(nw.Flatten(name="flatten"), nw.Linear(w, name=f"classifier.{cls[0]}"),
            nw.Readout(mode="sum", name="readout"))
    if strict:
        keys.finish()
    channels = net.layers[0].in_channels
    if input_shape is None:
        fits = []
        for h in range(2, 257):
            try:
                nw.Network((channels, h, h), net.layers)
            except ValueError:
                continue
            fits.append(h)
        if len(fits) != 1:
            raise CheckpointError(f"{source}: the checkpoint does not record the input size and "
                                  f"{'square sizes ' + str(fits[:8]) + ' fit' if fits else 'no square size fits'}; "
                                  f"pass input_shape=({channels}, H, W), e.g. ({channels}, 32, 32) for CIFAR")
        input_shape = (channels, fits[0], fits[0])
    meta = {"format": "diet", "source": Path(source).name, "order": order, "input_encoding": "analog",
            "architecture": "resnet"}
    if isinstance(extras.get("timesteps"), (int, np.integer)):
        meta["timesteps"] = int(extras["timesteps"])
    return net.network(input_shape, meta)


def _listed(values: Any, n: int, what: str, source: str) -> list[float] | None:
    if values is None:
        return None
    if np.ndim(values) == 0:
        return [float(values)] * n
    out = [float(np.asarray(v).reshape(-1)[0]) for v in values]
    if len(out) != n:
        raise CheckpointError(f"{source}: the checkpoint's {what!r} list has {len(out)} entries, expected {n} "
                              "(one per spiking layer)")
    return out


def diet_neuron(keys, thresholds, leaks, k: int, n: int, order: str, name: str, source: str) -> nw.LIF:
    """DIET-SNN's spiking site ``k`` (``threshold.t<n>``/``leak.l<n>`` keys, or the checkpoint's
    ``thresholds``/``leak`` lists): ``LIF(leak=λ, threshold=θ)``, ``>``, subtract reset, ``u₀ = 0``."""
    th = thresholds[k] if thresholds is not None else keys.scalar(f"threshold.t{n}")
    lk = leaks[k] if leaks is not None else keys.scalar(f"leak.l{n}")
    try:
        return nw.LIF(threshold=th, leak=lk, compare=">", reset="subtract", v_init=0.0, order=order, name=name)
    except ValueError as exc:
        raise CheckpointError(f"{source}: layer {name}: {exc}") from None
