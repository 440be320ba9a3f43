"""snncutoff's image models (github.com/Dengyu-Wu/snncutoff ``snncutoff/models/VGG.py`` and ``ResNet.py``)
as saved after its SNN conversion: the model's children in a ``Sequential`` (keys ``0.``, ``1.``, …),
every Conv2d/Linear/pool wrapped in a ``PreConstrs`` (``.module`` in the key), ReLUs replaced by LIF
layers (no parameters).

VGG (``VGG("VGG16", …)``)
    ``<b>.<i>`` for the blocks ``layer1`` … ``layer5`` (``Conv2d(3×3, padding 1)``, ``BatchNorm2d``, LIF,
    ``Dropout`` per width, a 2×2 pool closing each block) and ``5.<j>`` for the classifier
    (``Flatten``, ``Linear``, LIF, ``Dropout``, …, ``Linear``): ``0.0.module.weight``, ``0.1.running_mean``,
    ``5.7.module.bias``. The pool type is not in the keys (``VGG``: average, ``VGG_nobias``: max):
    ``pool=`` is required.
ResNet (``get_resnet("resnet18"/"resnet34", input_size=32)``)
    ``0.`` the stem (``Conv2d(3×3)``, BN, LIF), ``1.`` … ``4.`` the stages of BasicBlocks
    (``<s>.<b>.residual_function.{0,1,3,4}``, ``<s>.<b>.shortcut.{0,1}``, the LIF ``relu`` after the
    addition), then ``AdaptiveAvgPool2d``, ``Flatten`` and the ``Linear`` ``7.module.weight``.
    Strides as the public ``_make_layer``: 2 for the first block of every stage but the first.

Neurons and input as :mod:`eventsim.checkpoints.aoi` (snncutoff's LIF); the image is fed every
step (``input_encoding="analog"``).
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

from .. import network as nw
from .common import KeyReader, fold_batchnorm, infer_input_shape, module_groups
from .resnet import ResNetBuilder, conv_bn, need_input_shape
from .torchfile import CheckpointError

__all__ = ["detect_snncutoff_image", "load_snncutoff_image"]

LAYOUT = "snncutoff image model"
_PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_SEQ = re.compile(rf"(\d+)\.(\d+)\.{_PARAM}")
_RES = re.compile(rf"(\d+)\.(\d+)\.(residual_function|shortcut)\.(\d+)\.{_PARAM}")
_HEAD = re.compile(r"(\d+)\.(weight|bias)")


def detect_snncutoff_image(raw_keys: Sequence[str], state: dict, wrapped: bool = True) -> bool:
    """snncutoff's wrapped form (a ``.module.`` in the keys) of its VGG or ResNet (with
    ``wrapped=False`` also the plain form, for ``format="aoi"``)."""
    if wrapped and not any(".module." in k for k in raw_keys):
        return False
    if not all(_SEQ.fullmatch(k) or _RES.fullmatch(k) or _HEAD.fullmatch(k) for k in state):
        return False
    return any(len(v.shape) == 4 for v in state.values())


def load_snncutoff_image(state: dict, source: str, neuron: Callable[[str], nw.Layer], *,
                         input_shape: Sequence[int] | None, pool: str | None, bn_eps: float,
                         strict: bool, meta: dict) -> nw.Network:
    keys = KeyReader(state, source, LAYOUT)
    if any(_RES.fullmatch(k) for k in state):
        net = _resnet(state, keys, source, neuron, input_shape, bn_eps)
        arch = "resnet"
    else:
        net, arch = _vgg(state, keys, source, neuron, input_shape, pool, bn_eps), "vgg"
    if strict:
        keys.finish()
    meta = {**meta, "input_encoding": "analog", "architecture": arch}
    if arch == "vgg":
        meta["pool"] = pool
    try:
        return nw.Network(net[0], net[1], metadata=meta)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def _resnet(state, keys, source, neuron, input_shape, bn_eps):
    blocks: dict[tuple[int, int], set[str]] = {}
    for k in state:
        m = _RES.fullmatch(k)
        if m:
            blocks.setdefault((int(m.group(1)), int(m.group(2))), set()).add(f"{m.group(3)}.{m.group(4)}")
    for (s, b), parts in sorted(blocks.items()):
        if any(p.startswith("residual_function.") and int(p.split(".")[1]) > 4 for p in parts):
            raise CheckpointError(f"{source}: bottleneck residual block at '{s}.{b}' (ResNet-50 and deeper) is not "
                                  f"supported; the {LAYOUT} importer reads BasicBlock ResNets (resnet18, resnet34)")
    if "0.0.weight" not in state:
        raise CheckpointError(f"{source}: a snncutoff ResNet starts with the stem convolution '0.0.module.weight'; "
                              "not found")
    stem = state["0.0.weight"]
    if tuple(stem.shape[2:]) != (3, 3):
        raise CheckpointError(f"{source}: the ImageNet stem at '0.0' (a {tuple(stem.shape[2:])} stride-2 convolution "
                              "followed by max pooling, input_size=224) is not supported; the CIFAR/Tiny-ImageNet "
                              "stem (3×3) is")
    shape = need_input_shape(input_shape, source, "snncutoff", int(stem.shape[1]), "(3, 32, 32) for CIFAR-10/100")
    net = ResNetBuilder(source)
    net.add(conv_bn(keys, "0.0", "0.1", bn_eps, 1), neuron("0.2"))
    stages = sorted({s for s, _ in blocks})
    for si, s in enumerate(stages):
        for bi, b in enumerate(sorted(b for t, b in blocks if t == s)):
            where, parts = f"{s}.{b}", blocks[(s, b)]
            stride = 2 if si > 0 and bi == 0 else 1
            if stride != 1 and "shortcut.0" not in parts:
                raise CheckpointError(f"{source}: block {where!r} starts a stage (stride 2) but has no shortcut "
                                      f"convolution ('{where}.shortcut.0.module.weight')")
            rf = f"{where}.residual_function"
            residual = [conv_bn(keys, f"{rf}.0", f"{rf}.1", bn_eps, stride), neuron(f"{rf}.2"),
                        conv_bn(keys, f"{rf}.3", f"{rf}.4", bn_eps, 1)]
            shortcut = [conv_bn(keys, f"{where}.shortcut.0", f"{where}.shortcut.1", bn_eps, stride)] \
                if "shortcut.0" in parts else []
            net.block(where, residual, shortcut, neuron(f"{where}.relu"))
    heads = sorted({int(m.group(1)) for k in state if (m := _HEAD.fullmatch(k))})
    if len(heads) != 1:
        raise CheckpointError(f"{source}: expected one classifier Linear ('<i>.module.weight') after the stages, "
                              f"found {len(heads)}")
    fc = str(heads[0])
    w = keys.take(f"{fc}.weight", ndim=2)
    net.head(shape, w, keys.optional(f"{fc}.bias", (w.shape[0],)), "sum", pool_name=f"{int(fc) - 2}",
             fc_name=fc)
    return shape, net.layers


def _vgg(state, keys, source, neuron, input_shape, pool, bn_eps):
    groups = list(module_groups(state).items())
    convs = [m for m, p in groups if "weight" in p and len(state[f"{m}.weight"].shape) == 4]
    if pool is None:
        raise CheckpointError(f"{source}: the snncutoff VGG keys do not record whether its pools average or take the "
                              "maximum; pass pool='avg' (VGG, VGG11/13/16/19) or pool='max' (VGG_nobias)")
    pool_cls = nw.AvgPool2d if pool == "avg" else nw.MaxPool2d
    layers: list[nw.Layer] = []
    pending = None
    flat = False

    def emit(spiking: bool) -> None:
        nonlocal pending
        if pending is None:
            return
        name, w, b = pending
        c, i = name.split(".")
        if w.ndim == 4:
            layers.append(nw.Conv2d(w, b, padding=((w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2), name=name))
            layers.append(neuron(f"{c}.{int(i) + 2}"))
        else:
            layers.append(nw.Linear(w, b, name=name))
            if spiking:
                layers.append(neuron(f"{c}.{int(i) + 1}"))
        pending = None

    last_conv_container = None
    for n, (module, params) in enumerate(groups):
        c, i = module.split(".")
        if "running_mean" in params:
            if pending is None:
                raise CheckpointError(f"{source}: BatchNorm {module!r} does not follow a conv or linear layer")
            name, w, b = pending
            ch = w.shape[0]
            w, b = fold_batchnorm(w, b, keys.take(f"{module}.running_mean", (ch,)),
                                  keys.take(f"{module}.running_var", (ch,)), keys.optional(f"{module}.weight", (ch,)),
                                  keys.optional(f"{module}.bias", (ch,)), bn_eps)
            pending = (name, w, b)
            continue
        w = keys.take(f"{module}.weight")
        if w.ndim not in (2, 4):
            raise CheckpointError(f"{source}: key '{module}.weight' has shape {w.shape}; expected a conv or linear "
                                  "weight")
        b = keys.optional(f"{module}.bias", (w.shape[0],))
        emit(spiking=True)
        if last_conv_container is not None and c != last_conv_container:
            layers.append(pool_cls(2, name=f"{last_conv_container}.pool"))
            last_conv_container = None
        if w.ndim == 4:
            if flat:
                raise CheckpointError(f"{source}: convolution {module!r} after a Linear layer")
            last_conv_container = c
        elif not flat:
            layers.append(nw.Flatten(name=f"{c}.0"))
            flat = True
        pending = (module, w, b)
    if pending is None or pending[1].ndim != 2:
        raise CheckpointError(f"{source}: the {LAYOUT} VGG ends with a Linear classifier; the last weight is "
                              f"{convs[-1] if convs else 'missing'}")
    emit(spiking=False)
    layers.append(nw.Readout(mode="sum", name="readout"))
    shape = tuple(input_shape) if input_shape is not None else infer_input_shape(
        layers, layers[0].in_channels, source)
    return shape, layers
