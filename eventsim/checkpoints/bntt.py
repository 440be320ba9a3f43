"""BNTT checkpoints (Kim & Panda 2021, "Revisiting batch normalization for training low-latency
deep spiking neural networks from scratch"; public code:
github.com/Intelligent-Computing-Lab-Yale/BNTT-Batch-Normalization-Through-Time).

Layout
------
``train.py`` saves ``{"global_step", "state_dict": model.state_dict(), "accuracy"}`` of
``SNN_VGG9_BNTT``/``SNN_VGG11_BNTT``: ``conv<n>.weight`` (3×3, padding 1, no bias), one
``BatchNorm`` per time step ``bntt<n>.<t>.{weight, running_mean, running_var}`` (``eps=1e-4``, bias
removed), ``fc1.weight`` with ``bntt_fc.<t>.*``, and the output ``fc2.weight``. Average pooling
sits after the convs listed in ``pool_after`` (VGG9: 2, 4, 7; VGG11: 1, 2, 4, 6, 8 — VGG11's last
pool is adaptive, equal to ``AvgPool2d(2)`` for 32×32 images); keys do not record it. The leak
(``--leak_mem``) is not saved either: pass ``leak=``, or keep ``_leak<λ>`` in the file name as
``train.py`` does (``..._leak0.99_bestmodel.pth.tar``).

Dynamics
--------
Per step ``t``: ``u ← λ·u + BN_t(W·s_in)``, ``BN_t(x) = γ_t·(x − μ_t)/√(σ²_t + ε)``, folded into a
per-step gain and bias (``step_gain``/``step_bias``); spike ``s = u > θ`` (``u/θ − 1 > 0``, θ = 1);
``u ← u − θ·s``; ``u₀ = 0``. Input: Poisson spikes (:func:`~eventsim.checkpoints.poisson_encode`).
The output layer accumulates ``W·s`` and the prediction uses the mean over T (``Readout("mean")``).

Early exit
----------
BNTT's exit rule reads the BatchNorm scales γ themselves, which folding into ``step_gain`` loses
(γ/√(σ²+ε) mixes in the running variance). The importer keeps, per step ``t``, the mean of
``γ_t`` over channels averaged over every per-step BatchNorm layer (``bntt<n>``, ``bntt_fc``…;
γ = 1 where a BatchNorm has no ``weight``) in ``metadata["bn_gamma_mean"]`` (a list of T
floats); the ``fixed-exit`` cutoff policy (:func:`eventsim.cutoff.bn_gain_per_step`) uses it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import network as nw
from .common import KeyReader, infer_input_shape, read_tree, split_state_dict, strip_prefix, unsupported_feature
from .torchfile import CheckpointError

__all__ = ["load_bntt", "detect_bntt", "POOL_AFTER"]

LAYOUT = "BNTT"
#: Default ``pool_after`` by number of convolutions (the public VGG9 and VGG11).
POOL_AFTER = {7: (2, 4, 7), 8: (1, 2, 4, 6, 8)}
_CONV = re.compile(r"conv(\d+)\.weight")
_FC = re.compile(r"fc(\d+)\.weight")
_BN = re.compile(r"(bntt\d*|bntt_fc\d*)\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)")
_LEAK_IN_NAME = re.compile(r"_leak([0-9]*\.?[0-9]+)")


def detect_bntt(tree: Any) -> bool:
    """True for ``conv<n>``/``fc<n>`` weights with per-step ``bntt<n>.<t>`` BatchNorms."""
    try:
        state = strip_prefix(split_state_dict(tree)[0])
    except CheckpointError:
        return False
    return ("conv1.weight" in state and "bntt1.0.running_mean" in state
            and all(_CONV.fullmatch(k) or _FC.fullmatch(k) or _BN.fullmatch(k) for k in state))


def _numbers(state: dict, pattern: re.Pattern) -> list[int]:
    return sorted(int(m.group(1)) for k in state if (m := pattern.fullmatch(k)))


def _step_norm(keys: KeyReader, prefix: str, channels: int, eps: float,
               source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fold ``prefix.<t>`` BatchNorms into ``(T, C)`` gains and biases; also the mean of γ over
    channels per step, ``(T,)`` (γ = 1 when the BatchNorm has no ``weight``)."""
    steps = sorted({int(m.group(2)) for k in keys.state if (m := _BN.fullmatch(k)) and m.group(1) == prefix})
    if not steps:
        raise CheckpointError(f"{source}: missing key '{prefix}.0.running_mean' ({channels},) for the {LAYOUT} layout")
    if steps != list(range(len(steps))):
        raise CheckpointError(f"{source}: {prefix} has BatchNorms for steps {steps}; expected 0..{len(steps) - 1}")
    gains, biases, gamma_mean = [], [], []
    for t in steps:
        mean = keys.take(f"{prefix}.{t}.running_mean", (channels,))
        var = keys.take(f"{prefix}.{t}.running_var", (channels,))
        gamma = keys.optional(f"{prefix}.{t}.weight", (channels,))
        beta = keys.optional(f"{prefix}.{t}.bias", (channels,))
        gain = (gamma if gamma is not None else 1.0) * (1.0 / np.sqrt(var + eps))
        gains.append(gain)
        biases.append(-mean * gain + (beta if beta is not None else 0.0))
        gamma_mean.append(float(np.mean(gamma, dtype=np.float64)) if gamma is not None else 1.0)
    return np.stack(gains), np.stack(biases), np.array(gamma_mean)


def _infer_pools(state: dict, convs: list[int], input_shape: Sequence[int] | None, source: str) -> tuple:
    """The one set of convs followed by AvgPool2d(2) that makes fc1's width fit ``input_shape``."""
    hint = ("the pooling positions are not stored; pass pool_after=(conv numbers followed by AvgPool2d(2))")
    if input_shape is None:
        raise CheckpointError(f"{source}: {len(convs)} convolutions and no input_shape; {hint}")
    c, h, w = (int(v) for v in input_shape)
    sizes = [tuple(state[f"conv{n}.weight"].shape) for n in convs]
    fits = []
    for mask in range(1 << len(convs)):
        hh, ww = h, w
        for k, (_, _, kh, kw) in enumerate(sizes):
            hh, ww = hh + 2 * ((kh - 1) // 2) - kh + 1, ww + 2 * ((kw - 1) // 2) - kw + 1
            if mask >> k & 1:
                hh, ww = hh // 2, ww // 2
        if min(hh, ww) >= 1 and sizes[-1][0] * hh * ww == state["fc1.weight"].shape[1]:
            fits.append(tuple(n for k, n in enumerate(convs) if mask >> k & 1))
    if len(fits) != 1:
        raise CheckpointError(f"{source}: {len(fits)} pooling placements fit input_shape={tuple(input_shape)} "
                              f"({fits[:4]}); {hint}")
    return fits[0]


def load_bntt(path: str | os.PathLike, *, leak: float | None = None, input_shape: Sequence[int] | None = None,
              pool_after: Sequence[int] | None = None, threshold: float = 1.0, bn_eps: float = 1e-4,
              strict: bool = True) -> nw.Network:
    """Import a BNTT checkpoint as an eventsim Network with per-step BatchNorm gains.

    Parameters
    ----------
    path : str or path-like
        The ``.pth.tar`` written by BNTT's ``train.py`` (or a bare state dict).
    leak : float, optional
        Membrane leak λ per step (``--leak_mem``, 0.95–0.99); read from ``_leak<λ>`` in the file name
        when not given.
    input_shape : (C, H, W), optional
        Inferred from ``fc1`` when only one square size fits.
    pool_after : sequence of int, optional
        Conv numbers followed by ``AvgPool2d(2)``; defaults to :data:`POOL_AFTER` for 7 or 8 convs,
        otherwise to the one placement that makes ``fc1``'s width fit ``input_shape``.
    threshold : float, default 1.0
    bn_eps : float, default 1e-4
    strict : bool, default True
        Raise on keys the layout does not use.

    Returns
    -------
    Network
        ``conv<n>`` → ``conv<n>.spike`` (LIF with ``step_gain``/``step_bias`` of shape ``(T, C)``)
        [→ ``pool<n>``] …, ``flatten``, ``fc1`` → ``fc1.spike``, …, last fc → ``readout`` (mean).
        ``metadata["timesteps"]`` is T, the number of per-step BatchNorms;
        ``metadata["bn_gamma_mean"]`` the per-step mean BatchNorm scale γ (over channels, then
        over the per-step BatchNorm layers), which the ``fixed-exit`` cutoff reads.
    """
    source = str(path)
    state, extras = split_state_dict(read_tree(path, load_data=True), source)
    state = strip_prefix(state)
    feature = unsupported_feature(state, LAYOUT)
    if feature:
        raise CheckpointError(f"{source}: {feature}; it reads the public SNN_VGG9_BNTT / SNN_VGG11_BNTT")
    keys = KeyReader(state, source, LAYOUT)
    if leak is None:
        match = _LEAK_IN_NAME.search(Path(source).name)
        if match is None:
            raise CheckpointError(f"{source}: BNTT checkpoints do not store the membrane leak; pass leak= "
                                  "(the --leak_mem used in training, e.g. 0.95 or 0.99)")
        leak = float(match.group(1).rstrip("."))
    convs, fcs = _numbers(state, _CONV), _numbers(state, _FC)
    if not convs or convs != list(range(1, len(convs) + 1)) or len(fcs) < 2 or fcs != list(range(1, len(fcs) + 1)):
        raise CheckpointError(f"{source}: expected conv1..convN and fc1..fcM (M >= 2) weights for the {LAYOUT} "
                              f"layout; found convs {convs}, fcs {fcs}")
    if pool_after is None:
        if len(convs) in POOL_AFTER:
            pool_after = POOL_AFTER[len(convs)]
        else:
            pool_after = _infer_pools(state, convs, input_shape, source)
    pools = {int(p) for p in pool_after}
    if not pools <= set(convs):
        raise CheckpointError(f"pool_after={tuple(pool_after)}: conv numbers must lie in 1..{len(convs)}")

    layers: list[nw.Layer] = []
    steps = None
    gammas: list[np.ndarray] = []          # per BatchNorm layer: mean γ over channels, per step

    def spiking(prefix: str, bn: str, channels: int) -> nw.LIF:
        nonlocal steps
        gain, bias, gamma = _step_norm(keys, bn, channels, bn_eps, source)
        if steps is not None and gain.shape[0] != steps:
            raise CheckpointError(f"{source}: {bn} has {gain.shape[0]} per-step BatchNorms, other layers {steps}")
        steps = gain.shape[0]
        gammas.append(gamma)
        return nw.LIF(leak=leak, threshold=threshold, compare=">", reset="subtract", v_init=0.0,
                      step_gain=gain, step_bias=bias, name=f"{prefix}.spike")

    for n in convs:
        w = keys.take(f"conv{n}.weight", ndim=4)
        layers += [nw.Conv2d(w, keys.optional(f"conv{n}.bias", (w.shape[0],)),
                             padding=((w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2), name=f"conv{n}"),
                   spiking(f"conv{n}", f"bntt{n}", w.shape[0])]
        if n in pools:
            layers.append(nw.AvgPool2d(2, name=f"pool{n}"))
    layers.append(nw.Flatten(name="flatten"))
    for n in fcs:
        w = keys.take(f"fc{n}.weight", ndim=2)
        layers.append(nw.Linear(w, keys.optional(f"fc{n}.bias", (w.shape[0],)), name=f"fc{n}"))
        if n != fcs[-1]:
            bn = "bntt_fc" if n == 1 and "bntt_fc.0.running_mean" in state else f"bntt_fc{n}"
            layers.append(spiking(f"fc{n}", bn, w.shape[0]))
    layers.append(nw.Readout(mode="mean", name="readout"))
    if strict:
        keys.finish()
    shape = tuple(input_shape) if input_shape is not None else infer_input_shape(layers, layers[0].in_channels, source)
    meta = {"format": "bntt", "source": Path(source).name, "timesteps": int(steps), "leak": leak,
            "input_encoding": "poisson", "poisson_rescale": 2.0,
            "bn_gamma_mean": [float(g) for g in np.mean(gammas, axis=0)]}
    try:
        return nw.Network(shape, layers, metadata=meta)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
