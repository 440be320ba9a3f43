"""DIET-SNN checkpoints (Rathi & Roy 2020; public code: github.com/nitin-rathi/DIET-SNN).

Layout
------
``snn.py`` saves ``torch.save({"state_dict": model.state_dict(), "thresholds": [...], "leak": [...],
"timesteps": T, "accuracy": ..., "epoch": ..., "optimizer": ..., "activation": ...})``. The model
(``VGG_SNN_STDB``, usually inside ``nn.DataParallel``, hence the ``module.`` prefix) has

* ``features``: for each number in the VGG config a ``Conv2d(k×k, padding (k−1)/2, bias=False)``,
  ``ReLU``, ``Dropout``; an ``"A"`` in the config replaces the last ``Dropout`` by ``AvgPool2d(2)``.
  Keys ``features.<i>.weight``.
* ``classifier``: ``Linear(bias=False)``, ``ReLU``, ``Dropout``, …, ``Linear``. Keys
  ``classifier.<j>.weight``.
* per spiking layer a trained threshold and leak: ``threshold.t<n>`` and ``leak.l<n>`` (scalars;
  ``n`` = ``i`` for ``features[i]``, ``len(features) + j`` for ``classifier[j]``), or, in older
  versions, only the checkpoint's ``thresholds`` and ``leak`` lists in layer order.

The config is not stored, so pass ``cfg=`` (e.g. ``[64, "A", 128, 128, "A"]``) or a name from
:data:`VGG_CONFIGS` (``cfg="VGG5"``); without either, a config whose convolution widths match the
checkpoint is used if exactly one of :data:`VGG_CONFIGS` does. A ``"cfg"`` entry in the checkpoint
dict (an eventsim extension) is used too. ResNets (``resnet_spiking.py``: ``pre_process``/``residual``
keys) are read by :mod:`eventsim.checkpoints.diet_resnet`.

Dynamics (one step, analog image ``x`` fed every step)
------------------------------------------------------
``u ← λ·u + W·s_in``; spike ``s = u > θ`` (DIET tests ``u/θ − 1 > 0``); ``u ← u − θ·s``;
``u₀ = 0``. Spikes are average-pooled; the last Linear accumulates ``Σ_t W·s`` (a non-spiking
readout). The older code fires from the previous step's membrane (``order="fire-integrate"``):
``s = u > θ`` first, then ``u ← λ·u + W·s_in − θ·s``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import network as nw
from .common import KeyReader, infer_input_shape, read_tree, split_state_dict, strip_prefix, unsupported_feature
from .diet_resnet import detect_diet_resnet, diet_neuron, load_diet_resnet
from .torchfile import CheckpointError

__all__ = ["load_diet", "detect_diet", "VGG_CONFIGS"]

#: VGG configurations of DIET-SNN's ``vgg_spiking.py`` (``"A"`` = average pooling).
VGG_CONFIGS = {
    "VGG4": [64, "A", 128, "A"],
    "VGG5": [64, "A", 128, 128, "A"],
    "VGG9": [64, "A", 128, 256, "A", 256, 512, "A", 512, "A", 512],
    "VGG11": [64, "A", 128, 256, "A", 512, 512, "A", 512, "A", 512, 512],
    "VGG13": [64, 64, "A", 128, 128, "A", 256, 256, "A", 512, 512, 512, "A", 512],
    "VGG16": [64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512],
    "VGG19": [64, 64, "A", 128, 128, "A", 256, 256, 256, 256, "A", 512, 512, 512, 512, "A", 512, 512, 512, 512],
}

_KEY = re.compile(r"(features|classifier)\.(\d+)\.weight|threshold\.t(\d+)|leak\.l(\d+)")
LAYOUT = "DIET-SNN"


def _indexed(state: dict, part: str) -> list[int]:
    return sorted(int(m.group(2)) for k in state if (m := _KEY.fullmatch(k)) and m.group(1) == part)


def detect_diet(tree: Any) -> bool:
    """True when ``tree`` (a checkpoint read without data) has DIET-SNN's keys and thresholds."""
    try:
        state, extras = split_state_dict(tree)
    except CheckpointError:
        return False
    state = strip_prefix(state)
    if detect_diet_resnet(state):
        return any(k.startswith("threshold.t") for k in state) or "thresholds" in extras
    if not all(_KEY.fullmatch(k) for k in state):
        return False
    has_thresholds = any(k.startswith("threshold.t") for k in state) or "thresholds" in extras
    convs = [state[f"features.{i}.weight"] for i in _indexed(state, "features")]
    return has_thresholds and bool(convs) and all(len(c.shape) == 4 for c in convs) and bool(
        _indexed(state, "classifier"))


def _resolve_cfg(cfg: Any, extras: dict, conv_widths: list[int], source: str) -> list:
    cfg = extras.get("cfg") if cfg is None else cfg
    if cfg is None:
        hits = [name for name, c in VGG_CONFIGS.items() if [x for x in c if x != "A"] == conv_widths]
        if len(hits) != 1:
            raise CheckpointError(
                f"{source}: the DIET-SNN checkpoint does not record its VGG config (convolution widths "
                f"{conv_widths}); pass cfg=[...] with 'A' for each AvgPool2d, or cfg=one of {sorted(VGG_CONFIGS)}")
        cfg = VGG_CONFIGS[hits[0]]
    if isinstance(cfg, str):
        if cfg.upper() not in VGG_CONFIGS:
            raise CheckpointError(f"cfg={cfg!r}: unknown DIET-SNN config; choose one of {sorted(VGG_CONFIGS)}")
        cfg = VGG_CONFIGS[cfg.upper()]
    cfg = list(cfg)
    for item in cfg:
        if item != "A" and not (isinstance(item, (int, np.integer)) and item > 0):
            raise CheckpointError(f"cfg={cfg!r}: entries must be channel counts or 'A'")
    widths = [int(x) for x in cfg if x != "A"]
    if widths != conv_widths:
        raise CheckpointError(f"{source}: cfg={cfg!r} has convolution widths {widths} but the checkpoint has "
                              f"{conv_widths}")
    return cfg


def _per_layer(values: Any, n: int, what: str, source: str) -> list[float] | None:
    if values is None:
        return None
    if np.ndim(values) == 0:
        return [float(values)] * n
    values = [float(np.asarray(v).reshape(-1)[0]) if np.size(v) == 1 else np.nan for v in values]
    if len(values) != n or not np.all(np.isfinite(values)):
        raise CheckpointError(f"{source}: {what} has {len(values)} entries, expected {n} finite numbers "
                              "(one per spiking layer)")
    return values


def load_diet(path: str | os.PathLike, *, cfg: Any = None, input_shape: Sequence[int] | None = None,
              order: str = "integrate-fire", threshold: Any = None, leak: Any = None,
              strict: bool = True) -> nw.Network:
    """Import a DIET-SNN checkpoint as an eventsim :class:`~eventsim.network.Network`.

    Parameters
    ----------
    path : str or path-like
        ``torch.save`` file (see the module docstring for the layout).
    cfg : list or str, optional
        VGG config (channel counts and ``"A"``), or a name in :data:`VGG_CONFIGS`.
    input_shape : (C, H, W), optional
        Image shape; inferred from the first Linear's width when only one square size fits.
    order : {"integrate-fire", "fire-integrate"}
        Current code integrates then fires; older code fires from the previous membrane.
    threshold, leak : float or sequence, optional
        Override the per-layer values from the checkpoint (layer order).
    strict : bool, default True
        Raise on keys that the layout does not use.

    Returns
    -------
    Network
        ``Conv2d → LIF (→ AvgPool2d)`` …, ``Flatten``, ``Linear → LIF`` …, ``Linear → Readout("sum")``.
        Layer names follow the PyTorch modules: ``features.0`` (conv), ``features.1`` (its spikes).
        ``metadata["timesteps"]`` holds the trained number of steps when saved.
    """
    source = str(path)
    state, extras = split_state_dict(read_tree(path, load_data=True), source)
    state = strip_prefix(state)
    if detect_diet_resnet(state):
        if cfg is not None:
            raise CheckpointError(f"{source}: cfg= describes a DIET-SNN VGG, but this is a ResNet (resnet_spiking.py)")
        n = sum(1 for k in state if k.endswith(".weight") and not k.startswith("classifier."))
        n -= sum(1 for k in state if ".identity." in k)
        return load_diet_resnet(state, extras, source, input_shape=input_shape, order=order,
                                thresholds=_per_layer(threshold, n, "threshold", source),
                                leaks=_per_layer(leak, n, "leak", source), strict=strict)
    feature = unsupported_feature(state, LAYOUT)
    if feature:
        raise CheckpointError(f"{source}: {feature}; it reads vgg_spiking.py's VGGs and resnet_spiking.py's ResNets "
                              "(pre_process / layer<k>.<b>.residual / .identity keys)")
    keys = KeyReader(state, source, LAYOUT)
    feat_idx, cls_idx = _indexed(state, "features"), _indexed(state, "classifier")
    if not feat_idx or not cls_idx:
        raise CheckpointError(f"{source}: missing key 'features.<i>.weight' or 'classifier.<j>.weight' "
                              f"for the {LAYOUT} layout; found {list(state)[:8]}")
    for i in feat_idx:
        if len(state[f"features.{i}.weight"].shape) != 4:
            raise CheckpointError(f"{source}: key 'features.{i}.weight' has shape "
                                  f"{tuple(state[f'features.{i}.weight'].shape)}, expected a 4-D convolution weight")
    widths = [int(state[f"features.{i}.weight"].shape[0]) for i in feat_idx]
    cfg = _resolve_cfg(cfg, extras, widths, source)

    # feature indices implied by the config: conv, ReLU, Dropout|AvgPool per number
    convs, pools, pos = [], set(), 0
    for item in cfg:
        if item == "A":
            pools.add(pos - 1)
        else:
            convs.append(pos)
            pos += 3
    if convs != feat_idx:
        raise CheckpointError(f"{source}: cfg implies convolutions at features {convs}, but the checkpoint has "
                              f"keys for features {feat_idx}")
    n_features = pos
    spiking = [(f"features.{i}", i) for i in convs] + [(f"classifier.{j}", n_features + j) for j in cls_idx[:-1]]

    thresholds = _per_layer(threshold, len(spiking), "threshold", source)
    leaks = _per_layer(leak, len(spiking), "leak", source)
    if thresholds is None and not any(f"threshold.t{n}" in state for _, n in spiking):
        thresholds = _per_layer(extras.get("thresholds"), len(spiking), "the 'thresholds' list", source)
    if leaks is None and not any(f"leak.l{n}" in state for _, n in spiking):
        leaks = _per_layer(extras.get("leak"), len(spiking), "the 'leak' list", source)

    def neuron(k: int, n: int, name: str) -> nw.LIF:
        return diet_neuron(keys, thresholds, leaks, k, n, order, name, source)

    layers: list[nw.Layer] = []
    k = 0
    for i in convs:
        w = keys.take(f"features.{i}.weight", ndim=4)
        kh, kw = w.shape[2:]
        layers += [nw.Conv2d(w, padding=((kh - 1) // 2, (kw - 1) // 2), name=f"features.{i}"),
                   neuron(k, i, f"features.{i + 1}")]
        if i + 2 in pools:
            layers.append(nw.AvgPool2d(2, name=f"features.{i + 2}"))
        k += 1
    layers.append(nw.Flatten(name="flatten"))
    for j in cls_idx:
        layers.append(nw.Linear(keys.take(f"classifier.{j}.weight", ndim=2), name=f"classifier.{j}"))
        if j != cls_idx[-1]:
            layers.append(neuron(k, n_features + j, f"classifier.{j + 1}"))
            k += 1
    layers.append(nw.Readout(mode="sum", name="readout"))
    if strict:
        keys.finish()

    channels = layers[0].in_channels
    shape = tuple(input_shape) if input_shape is not None else infer_input_shape(layers, channels, source)
    meta = {"format": "diet", "source": Path(source).name, "order": order, "input_encoding": "analog",
            "cfg": [x if x == "A" else int(x) for x in cfg]}
    if isinstance(extras.get("timesteps"), (int, np.integer)):
        meta["timesteps"] = int(extras["timesteps"])
    try:
        return nw.Network(shape, layers, metadata=meta)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
