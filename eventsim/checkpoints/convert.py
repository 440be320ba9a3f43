"""ANN → SNN conversion of plain ReLU / clipped-ReLU CNNs (format ``"ann"``).

Checkpoint
----------
``torch.save({"state_dict": seq.state_dict(), "architecture": [...], "input_shape": [C, H, W]})`` of
an ``nn.Sequential``; ``architecture[i]`` describes ``seq[i]`` as a dict with a ``"type"``:

======================  =====================================  ====================
type                    fields (defaults)                      keys in state dict
======================  =====================================  ====================
``Conv2d``              ``stride`` (1), ``padding`` (0)        ``i.weight``, ``i.bias``
``Linear``                                                     ``i.weight``, ``i.bias``
``BatchNorm2d/1d``      ``eps`` (1e-5)                         ``i.weight/bias/running_mean/running_var``
``ReLU``                                                       –
``ReLU6`` / ``Clip``    ``max`` (6 for ReLU6)                  ``i.max`` optional (trained clip)
``AvgPool2d``           ``kernel_size``, ``stride`` (=kernel)  –
``Flatten``, ``Dropout``                                       –
======================  =====================================  ====================

``models/convert/ann.py`` writes this from any such ``nn.Sequential``.

Conversion
----------
BatchNorm is folded into the layer before it. Each activation becomes an IF population with
threshold θ: the clip value for ``ReLU6``/``Clip``, otherwise the ``percentile``-th percentile of the
layer's positive ReLU outputs on ``calibration`` inputs (data-based normalisation, Rueckauer et al.
2017), computed by a NumPy forward pass of the ANN (:func:`ann_forward`). Neurons start at
``v₀ = v_init·θ`` (θ/2 by default), fire when ``v ≥ θ`` and reset by subtraction; spikes carry
amplitude θ, so the next layer's weights stay as trained (``unit_threshold=True`` instead rescales
weights so that every θ is 1 and spikes are 1). With constant input current ``I``, an IF neuron then
spikes ``clip(floor(T·I/θ + ½), 0, T)`` times in ``T`` steps: the rate approximates ``clip(I, 0, θ)/θ``.
The last Linear becomes the readout.

Example
-------
>>> import eventsim as es
>>> net = es.load("ann.pt", format="ann", calibration=images)      # doctest: +SKIP
>>> es.simulate(net, images[0], steps=32, input_kind="analog").prediction   # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import network as nw
from .common import KeyReader, fold_batchnorm, read_tree, split_state_dict
from .torchfile import CheckpointError

__all__ = ["convert_ann", "load_ann", "detect_ann", "ann_forward", "parse_architecture"]

_TYPES = {"Conv2d", "Linear", "BatchNorm2d", "BatchNorm1d", "ReLU", "ReLU6", "Clip", "AvgPool2d", "Flatten",
          "Dropout"}


@dataclass
class _Stage:
    """One step of the ANN: a weighted layer (BN folded) or a routing op, plus an optional clip."""

    kind: str                     # "conv", "linear", "avgpool", "flatten", "act"
    index: int
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    kernel: tuple = (2, 2)
    clip: float | None = None     # for "act": the clip value, None for a plain ReLU


def _pair(value: Any, what: str, minimum: int = 0) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a pair."""
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        a, b = items
    except (TypeError, ValueError):
        a = b = None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in (a, b)):
        raise CheckpointError(f"{what}: expected an int or a pair of ints >= {minimum}, got {value!r}")
    return (int(a), int(b))


def _number(value: Any, what: str) -> float:
    """A finite real number from an architecture entry."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise CheckpointError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def parse_architecture(state: Mapping[str, np.ndarray], architecture: Sequence[Mapping], source: str = "ann",
                       strict: bool = True) -> list[_Stage]:
    """Turn a state dict plus its architecture list into stages with BatchNorm folded."""
    if not isinstance(architecture, (list, tuple)) or not architecture:
        raise CheckpointError(f"{source}: architecture must be a non-empty list of dicts with a 'type'")
    keys = KeyReader(state, source, "ann")
    stages: list[_Stage] = []
    for i, entry in enumerate(architecture):
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        if not isinstance(kind, str) or kind not in _TYPES:
            raise CheckpointError(f"{source}: architecture[{i}] = {entry!r}; 'type' must be one of {sorted(_TYPES)}")
        if kind in ("Conv2d", "Linear"):
            w = keys.take(f"{i}.weight", ndim=4 if kind == "Conv2d" else 2)
            b = keys.optional(f"{i}.bias", (w.shape[0],))
            stages.append(_Stage("conv" if kind == "Conv2d" else "linear", i, w, b if b is not None else np.zeros(w.shape[0]),
                                 stride=_pair(entry.get("stride", 1), f"architecture[{i}].stride", 1),
                                 padding=_pair(entry.get("padding", 0), f"architecture[{i}].padding")))
        elif kind.startswith("BatchNorm"):
            prev = stages[-1] if stages else None
            if prev is None or prev.kind not in ("conv", "linear"):
                raise CheckpointError(f"{source}: architecture[{i}] {kind} must follow a Conv2d or Linear")
            c = prev.weight.shape[0]
            prev.weight, prev.bias = fold_batchnorm(
                prev.weight, prev.bias, keys.take(f"{i}.running_mean", (c,)), keys.take(f"{i}.running_var", (c,)),
                keys.optional(f"{i}.weight", (c,)), keys.optional(f"{i}.bias", (c,)),
                _number(entry.get("eps", 1e-5), f"architecture[{i}].eps"))
        elif kind in ("ReLU", "ReLU6", "Clip"):
            clip = None
            if kind != "ReLU":
                clip = keys.scalar(f"{i}.max") if f"{i}.max" in keys else entry.get("max", 6.0 if kind == "ReLU6" else None)
                if clip is None or not _number(clip, f"{source}: architecture[{i}].max") > 0:
                    raise CheckpointError(f"{source}: architecture[{i}] {kind} needs a positive 'max' (or key '{i}.max')")
                clip = float(clip)
            stages.append(_Stage("act", i, clip=clip))
        elif kind == "AvgPool2d":
            k = _pair(entry.get("kernel_size", 2), f"architecture[{i}].kernel_size", 1)
            stages.append(_Stage("avgpool", i, kernel=k,
                                 stride=_pair(entry.get("stride") or k, f"architecture[{i}].stride", 1)))
        elif kind == "Flatten":
            stages.append(_Stage("flatten", i))
    if strict:
        keys.finish()
    weighted = [s for s in stages if s.kind in ("conv", "linear")]
    if not weighted or stages[-1] is not weighted[-1] or weighted[-1].kind != "linear":
        raise CheckpointError(f"{source}: the last layer must be a Linear without activation (it becomes the readout)")
    return stages


def ann_forward(stages: Sequence[_Stage], x: np.ndarray) -> list[np.ndarray]:
    """NumPy forward pass of the ANN (float64) on a batch ``x`` (N, *input_shape).

    Returns the output of every stage (ReLU outputs unclipped for ``ReLU``, clipped for clips).
    """
    out, h = [], np.asarray(x, dtype=np.float64)
    for s in stages:
        if s.kind == "conv":
            (ph, pw), (sh, sw) = s.padding, s.stride
            kh, kw = s.weight.shape[2:]
            xp = np.pad(h, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
            win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
            h = np.tensordot(win, s.weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + s.bias[:, None, None]
        elif s.kind == "linear":
            h = h @ s.weight.T + s.bias
        elif s.kind == "act":
            h = np.maximum(h, 0.0) if s.clip is None else np.clip(h, 0.0, s.clip)
        elif s.kind == "avgpool":
            (kh, kw), (sh, sw) = s.kernel, s.stride
            h = sliding_window_view(h, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].mean(axis=(4, 5))
        elif s.kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        out.append(h)
    return out


def convert_ann(state: Mapping[str, np.ndarray], architecture: Sequence[Mapping], input_shape: Sequence[int], *,
                calibration: np.ndarray | None = None, percentile: float = 99.9, v_init: float = 0.5,
                unit_threshold: bool = False, readout: str = "sum", source: str = "ann",
                strict: bool = True) -> nw.Network:
    """Convert a ReLU/clip CNN (state dict + architecture list) into an IF network.

    Parameters
    ----------
    state : mapping of str to array
        ``nn.Sequential`` state dict (``"<index>.weight"`` …).
    architecture : list of dict
        One entry per Sequential index (see the module docstring).
    input_shape : (C, H, W) or (features,)
    calibration : array (N, *input_shape), optional
        Inputs for data-based thresholds; needed when a plain ``ReLU`` is present.
    percentile : float, default 99.9
        Percentile (0–100] of the positive ReLU outputs used as θ.
    v_init : float, default 0.5
        Initial membrane as a fraction of θ.
    unit_threshold : bool, default False
        Rescale weights so that all thresholds and spike amplitudes are 1.
    readout : {"sum", "mean"}
    source : str
        Label for error messages.
    strict : bool
        Raise on unused state dict keys.

    Returns
    -------
    Network
        ``metadata["thresholds"]`` lists θ per IF layer, ``metadata["threshold_source"]`` how each was set.
    """
    stages = parse_architecture(state, architecture, source, strict)
    if not (isinstance(input_shape, (list, tuple)) and input_shape and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in input_shape)):
        raise CheckpointError(f"{source}: input_shape {input_shape!r} is not a list of positive ints; "
                              "pass input_shape=(C, H, W)")
    input_shape = tuple(int(s) for s in input_shape)
    acts = [s for s in stages if s.kind == "act"]
    thresholds: dict[int, float] = {s.index: s.clip for s in acts if s.clip is not None}
    how = {s.index: "clip" for s in acts if s.clip is not None}
    if len(thresholds) < len(acts):
        calib = check_calibration(calibration, input_shape, percentile, f"{source}: plain ReLU layers")
        for s, a in zip(stages, ann_forward(stages, calib)):
            if s.kind == "act" and s.clip is None:
                positive = a[a > 0]
                if positive.size == 0:
                    raise CheckpointError(f"{source}: ReLU at architecture[{s.index}] is never active on the "
                                          "calibration data; cannot set its threshold")
                thresholds[s.index] = float(np.percentile(positive, percentile))
                how[s.index] = f"p{percentile:g}"

    layers: list[nw.Layer] = []
    amp_in = 1.0       # amplitude of the spikes (or 1 for the analog input) entering the next weighted layer
    pending = None
    for s in stages:
        if s.kind in ("conv", "linear"):
            pending = s
            continue
        if s.kind == "act":
            theta = thresholds[s.index]
            scale = amp_in / theta if unit_threshold else 1.0
            bias_scale = 1.0 / theta if unit_threshold else 1.0
            layers.append(_synaptic(pending, scale, bias_scale))
            pending = None
            if unit_threshold:
                layers.append(nw.IF(threshold=1.0, compare=">=", reset="subtract", v_init=v_init, name=str(s.index)))
                amp_in = theta
            else:
                layers.append(nw.IF(threshold=theta, compare=">=", reset="subtract", v_init=v_init * theta,
                                    spike_amplitude="threshold", name=str(s.index)))
        elif s.kind == "avgpool":
            if pending is not None:
                raise CheckpointError(f"{source}: AvgPool2d at architecture[{s.index}] follows a weighted layer "
                                      "without activation; only the output layer may lack one")
            layers.append(nw.AvgPool2d(s.kernel, stride=s.stride, name=str(s.index)))
        elif s.kind == "flatten":
            layers.append(nw.Flatten(name=str(s.index)))
    layers.append(_synaptic(pending, amp_in if unit_threshold else 1.0, 1.0))
    layers.append(nw.Readout(mode=readout, name="readout"))
    meta = {"format": "ann", "source": source, "input_encoding": "analog", "v_init_fraction": v_init,
            "thresholds": [thresholds[s.index] for s in acts], "threshold_source": [how[s.index] for s in acts],
            "unit_threshold": unit_threshold}
    try:
        return nw.Network(input_shape, layers, metadata=meta)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def _synaptic(s: _Stage, scale: float, bias_scale: float) -> nw.Layer:
    if s.kind == "conv":
        return nw.Conv2d(s.weight * scale, s.bias * bias_scale, stride=s.stride, padding=s.padding, name=str(s.index))
    return nw.Linear(s.weight * scale, s.bias * bias_scale, name=str(s.index))


def detect_ann(tree: Any) -> bool:
    """True for a dict with an ``architecture`` list (of dicts with ``type``) and a state dict."""
    if not isinstance(tree, Mapping) or not isinstance(tree.get("architecture"), (list, tuple)):
        return False
    try:
        split_state_dict(tree)
    except CheckpointError:
        return False
    return all(isinstance(e, Mapping) and "type" in e for e in tree["architecture"])


def load_ann(path: str | os.PathLike, *, architecture: Sequence[Mapping] | None = None,
             input_shape: Sequence[int] | None = None, **options: Any) -> nw.Network:
    """Read an ``"ann"`` checkpoint and :func:`convert_ann` it. ``architecture``/``input_shape``
    override (or supply) the file's entries; other options go to :func:`convert_ann`."""
    source = str(path)
    tree = read_tree(path, load_data=True)
    state, extras = split_state_dict(tree, source)
    architecture = architecture if architecture is not None else extras.get("architecture")
    input_shape = input_shape if input_shape is not None else extras.get("input_shape")
    if architecture is None or input_shape is None:
        raise CheckpointError(f"{source}: an 'ann' checkpoint needs 'architecture' and 'input_shape' entries "
                              "(or pass architecture= and input_shape=)")
    net = convert_ann(state, architecture, input_shape, source=Path(source).name, **options)
    return net


def check_calibration(calibration: Any, input_shape: tuple, percentile: float, who: str) -> np.ndarray:
    """Calibration inputs ``(N, *input_shape)`` as float64, for the percentile thresholds of plain
    ReLUs (``who`` names them in the error when ``calibration`` is missing)."""
    shape = ", ".join(map(str, input_shape))
    if calibration is None:
        raise CheckpointError(f"{who} need data-based thresholds: pass calibration= (an array of inputs of "
                              f"shape (N, {shape}))")
    calib = np.asarray(calibration, dtype=np.float64)
    if calib.shape[1:] != tuple(input_shape) or calib.shape[0] < 1:
        raise CheckpointError(f"calibration: shape {calib.shape}, expected (N, {shape})")
    if not 0 < percentile <= 100:
        raise CheckpointError(f"percentile={percentile}: must lie in (0, 100]")
    return calib
