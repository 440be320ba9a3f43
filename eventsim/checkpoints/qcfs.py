"""QCFS / "optimal conversion" checkpoints (Bu et al., ICLR 2022; public code:
github.com/putshua/ANN_SNN_QCFS and the older github.com/putshua/SNN_conversion_QCFS).

Layout
------
``torch.save(model.state_dict())`` of a VGG whose blocks ``layer1`` … ``layerN`` are
``nn.Sequential`` of ``Conv2d(3×3, padding 1)``, ``BatchNorm2d``, the QCFS activation, ``Dropout``,
…, ending in a 2×2 pool (``AvgPool2d`` in ``vgg16``, ``MaxPool2d`` in ``vgg16_wobn``: pass ``pool=``), and a
``classifier`` ``Flatten``, ``Linear``, QCFS, ``Dropout``, …, ``Linear``. The QCFS activation
``clip(floor(x·L/λ + ½)/L, 0, 1)·λ`` stores its trained clip λ as ``<module>.thresh`` (new code) or
``<module>.up`` (old code), shape ``(1,)``. ResNets (``residual_function``/``shortcut`` keys) are read by
:mod:`eventsim.checkpoints.qcfs_resnet`.

Conversion (what the SNN mode of the public code computes)
----------------------------------------------------------
BatchNorm is folded into the preceding layer's weight and bias; every QCFS activation becomes an
IF population with ``θ = λ``, initial membrane ``v₀ = θ/2`` (the paper's key point; ``v_init=0``
for comparison), firing when ``v ≥ θ``, reset by subtraction, emitting spikes of amplitude ``θ``.
The analog image is fed every step and the output layer's currents are summed over steps
(``readout="mean"`` averages them, as the public ``val()`` does; the prediction is the same).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from .. import network as nw
from .common import (KeyReader, fold_batchnorm, infer_input_shape, module_groups, read_tree, split_state_dict,
                     strip_prefix, unsupported_feature)
from .qcfs_resnet import is_qcfs_resnet, load_qcfs_resnet
from .torchfile import CheckpointError

__all__ = ["load_qcfs", "detect_qcfs"]

LAYOUT = "QCFS"
_BN = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
_BLOCK = re.compile(r"layer\d+")


def _kind(params: list[str], state: dict, module: str) -> str | None:
    names = set(params)
    if names in ({"thresh"}, {"up"}):
        return "clip"
    if {"running_mean", "running_var"} <= names <= _BN:
        return "bn"
    if names in ({"weight"}, {"weight", "bias"}):
        ndim = len(state[f"{module}.weight"].shape)
        return {4: "conv", 2: "linear"}.get(ndim)
    return None


def detect_qcfs(tree: Any) -> bool:
    """True when every module of the state dict is a conv, BatchNorm, linear or QCFS clip, and
    there is at least one clip (``.thresh``/``.up``)."""
    try:
        state = strip_prefix(split_state_dict(tree)[0])
    except CheckpointError:
        return False
    kinds = [_kind(p, state, m) for m, p in module_groups(state).items()]
    return "clip" in kinds and None not in kinds and "conv" in kinds


def _block_order(groups: list) -> list:
    """``layer1``, ``layer2``, … (by number) before the other top-level modules (the classifier), each
    in its given order: the public VGG's order, whatever order the file kept (a .safetensors file
    sorts its keys by name)."""
    def rank(item):
        top = item[0].split(".")[0]
        return (0, int(top[5:])) if _BLOCK.fullmatch(top) else (1, 0)
    return sorted(groups, key=rank)


def _resolve_pool(pool: str | None, extras: dict, state: dict, source: str) -> str:
    """``pool=`` if given, else the checkpoint's ``"pool"`` entry, else ``"avg"`` for the old code's
    ``.up`` clips (it swaps MaxPool2d for AvgPool2d before training); otherwise ask."""
    recorded = extras.get("pool")
    if pool is None and isinstance(recorded, str):
        pool = recorded
    if pool is None and any(k.endswith(".up") for k in state):
        pool = "avg"
    if pool is None:
        if not any(_BLOCK.fullmatch(k.split(".")[0]) for k in state):
            return "avg"   # no layer<k> blocks: no pools to type
        raise CheckpointError(f"{source}: the QCFS VGG keys do not record whether its pools average or take the "
                              "maximum; pass pool='avg' (the public vgg16, with BatchNorm) or pool='max' (the public "
                              "vgg16_wobn)")
    if pool not in ("avg", "max"):
        raise CheckpointError(f"pool={pool!r}: choose 'avg' or 'max'")
    return pool


def load_qcfs(path: str | os.PathLike, *, input_shape: Sequence[int] | None = None, v_init: float = 0.5,
              readout: str = "sum", bn_eps: float = 1e-5, pool_after_blocks: bool = True,
              pool: str | None = None, strict: bool = True) -> nw.Network:
    """Import a QCFS checkpoint and convert it to an IF network.

    Parameters
    ----------
    path : str or path-like
        ``torch.save(model.state_dict())`` of a QCFS VGG (see the module docstring).
    input_shape : (C, H, W), optional
        Image shape; inferred from the first Linear's width when only one square size fits.
    v_init : float, default 0.5
        Initial membrane as a fraction of θ: 0.5 gives the method's ``θ/2``; 0 starts empty.
    readout : {"sum", "mean"}
        Output currents summed over steps, or their running mean.
    bn_eps : float, default 1e-5
        BatchNorm epsilon (PyTorch's default, used by the public code).
    pool_after_blocks : bool, default True
        Insert a 2×2 pool at the end of each ``layer<k>`` block, as in the public VGG.
    pool : {"avg", "max"}, optional
        Type of those pools. The keys do not say it for the new code (``.thresh``): its ``vgg16`` uses
        ``AvgPool2d``, its ``vgg16_wobn`` ``MaxPool2d``; without ``pool=`` (or a ``"pool"`` entry in the
        checkpoint dict) such a VGG is refused with a message naming both. The old code (``.up``)
        replaces every ``MaxPool2d`` by ``AvgPool2d`` before training, so ``.up`` checkpoints use
        ``"avg"``. ResNets pool globally by averaging and never ask.
    strict : bool, default True
        Raise on keys the layout does not use.

    Returns
    -------
    Network
        Layer names follow the PyTorch modules (``layer1.0`` conv with BN ``layer1.1`` folded in,
        ``layer1.2`` its IF population, ``layer1.pool``, ``classifier.1`` …, ``readout``).
    """
    source = str(path)
    tree = read_tree(path, load_data=True)
    state, extras = split_state_dict(tree, source)
    state = strip_prefix(state)
    if is_qcfs_resnet(state):
        return load_qcfs_resnet(state, source, input_shape=input_shape, v_init=v_init, readout=readout,
                                bn_eps=bn_eps, strict=strict)
    feature = unsupported_feature(state, LAYOUT)
    if feature:
        raise CheckpointError(f"{source}: {feature}; it reads the public VGGs and ResNets (resnet18/20/34 with "
                              "residual_function/shortcut keys)")
    pool = _resolve_pool(pool, extras, state, source) if pool_after_blocks else None
    keys = KeyReader(state, source, LAYOUT)
    groups = _block_order(list(module_groups(state).items()))
    layers: list[nw.Layer] = []
    pending = None  # (module, kind, weight, bias) of a conv/linear not yet emitted
    flat = False

    def block(module: str) -> str:
        return module.split(".")[0]

    def emit(before: str | None = None) -> None:
        nonlocal pending
        if pending is not None:
            name, kind, w, b = pending
            if before is not None:
                raise CheckpointError(f"{source}: no QCFS clip (a '<module>.thresh' or '.up' key) between {name!r} "
                                      f"and {before!r}; missing key for the {LAYOUT} layout")
            layers.append(nw.Conv2d(w, b, padding=((w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2), name=name)
                          if kind == "conv" else nw.Linear(w, b, name=name))
            pending = None

    for n, (module, params) in enumerate(groups):
        kind = _kind(params, state, module)
        if kind is None:
            raise CheckpointError(f"{source}: module {module!r} with parameters {params} is not a conv, "
                                  f"BatchNorm, linear or QCFS clip; unknown keys for the {LAYOUT} layout")
        if kind in ("conv", "linear"):
            emit(before=module)
            if kind == "linear" and not flat:
                layers.append(nw.Flatten(name="flatten"))
                flat = True
            if kind == "conv" and flat:
                raise CheckpointError(f"{source}: convolution {module!r} after a Linear layer")
            w = keys.take(f"{module}.weight", ndim=4 if kind == "conv" else 2)
            b = keys.optional(f"{module}.bias", (w.shape[0],))
            pending = (module, kind, w, b)
        elif kind == "bn":
            if pending is None:
                raise CheckpointError(f"{source}: BatchNorm {module!r} does not follow a conv or linear layer")
            name, pkind, w, b = pending
            c = w.shape[0]
            w, b = fold_batchnorm(w, b, keys.take(f"{module}.running_mean", (c,)),
                                  keys.take(f"{module}.running_var", (c,)), keys.optional(f"{module}.weight", (c,)),
                                  keys.optional(f"{module}.bias", (c,)), bn_eps)
            pending = (name, pkind, w, b)
        else:
            if pending is None:
                raise CheckpointError(f"{source}: QCFS clip {module!r} does not follow a conv or linear layer")
            emit()  # the conv/linear (BN folded) that this clip follows
            param = "thresh" if "thresh" in params else "up"
            theta = keys.scalar(f"{module}.{param}")
            try:
                layers.append(nw.IF(threshold=theta, compare=">=", reset="subtract", v_init=v_init * theta,
                                    spike_amplitude="threshold", name=module))
            except ValueError as exc:
                raise CheckpointError(f"{source}: {module}.{param}: {exc}") from None
        nxt = groups[n + 1][0] if n + 1 < len(groups) else ""
        if (pool_after_blocks and _BLOCK.fullmatch(block(module)) and block(nxt) != block(module)):
            emit(before=f"{block(module)}.pool")
            layers.append((nw.AvgPool2d if pool == "avg" else nw.MaxPool2d)(2, name=f"{block(module)}.pool"))
    if pending is None or pending[1] != "linear":
        raise CheckpointError(f"{source}: the {LAYOUT} layout ends with a Linear output layer without a clip; "
                              f"the last module is {groups[-1][0]!r}")
    emit()
    layers.append(nw.Readout(mode=readout, name="readout"))
    if strict:
        keys.finish()
    if input_shape is None and not isinstance(layers[0], nw.Conv2d):
        raise CheckpointError(f"{source}: pass input_shape= (the network starts with a Linear layer)")
    shape = tuple(input_shape) if input_shape is not None else infer_input_shape(
        layers, layers[0].in_channels, source)
    meta = {"format": "qcfs", "source": Path(source).name, "input_encoding": "analog", "v_init_fraction": v_init,
            "pool": pool}
    try:
        return nw.Network(shape, layers, metadata=meta)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
