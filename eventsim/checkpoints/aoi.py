"""AOI-SNN checkpoints in the snncutoff layout (Wu et al. 2023, "Optimising event-driven spiking
neural network with regularisation and cutoff"; public code: github.com/Dengyu-Wu/snncutoff).

Layout
------
Its image models (CIFAR ``VGG``, ``ResNet``; keys ``0.0.module.weight``) are read by
:mod:`eventsim.checkpoints.aoi_cifar`. For its event-camera models snncutoff saves
``torch.save(model.state_dict())`` of a VGG-like net (``VGGANN``, ``VGG_Gesture``,
``VGGSNN``): ``features`` is a ``Sequential`` of conv units ``Conv2dLayer(fwd=Sequential(Conv2d,
BatchNorm2d, Dropout), relu)`` and parameterless ``AvgPool2d(2)``/``Flatten``; an optional ``fc``
``LinearLayer`` (Linear, BatchNorm1d, Dropout, activation); a final ``Linear`` classifier. For SNN
training (``arch_conversion``) the ReLUs become LIF layers, each Conv2d/Linear/pool is wrapped in a
``PreConstrs`` (adding ``.module`` to its keys) and the model in ``Sequential(features, classifier,
PostConstrs)`` (top-level keys ``0.``, ``1.``). Both the wrapped and the plain key forms load:
``0.3.fwd.0.module.weight`` and ``features.3.fwd.0.weight`` name the same conv.

Keys do not record pools, strides or paddings. The importer reads a gap in the ``features``
indices as pooling layers, infers how many pools follow the last conv unit from the classifier's
input width, and uses ``stride 1, padding (k−1)/2`` for odd kernels, ``stride 4, padding 0`` for the
4×4 down-scaling conv of ``VGGANN`` and ``stride 4, padding 3`` for the 8×8 one of ``VGGSNN``;
``conv_geometry`` overrides these.

Dynamics (direct-trained LIF, snncutoff's ``LIF`` with ``reset_mode="hard"``)
------------------------------------------------------------------------------
``v ← τ·v + I`` with ``τ = 0.5``; spike ``s = v > 1``; ``v ← 0`` where ``s``; ``v₀ = 0``. BatchNorm is
folded into the conv. Input: event-count frames (2 polarities) in ``T`` equal time bins.
Output: the classifier's currents accumulated over steps (``Σ_t y_t``, as the cutoff uses).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import network as nw
from .common import (KeyReader, fold_batchnorm, module_groups, read_tree, split_state_dict, strip_prefix,
                     unsupported_feature)
from .aoi_cifar import detect_snncutoff_image, load_snncutoff_image
from .torchfile import CheckpointError

__all__ = ["load_aoi", "detect_aoi", "normalise_keys"]

LAYOUT = "AOI-SNN (snncutoff)"
_UNIT = re.compile(r"(.+)\.fwd\.([01])")
_BN = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
_GEOMETRY = {4: (4, 0), 8: (4, 3)}


def normalise_keys(state: Mapping[str, Any]) -> dict:
    """Strip ``module.`` (DataParallel) and drop ``module`` path components (snncutoff's
    ``PreConstrs`` wrappers): ``0.0.fwd.0.module.weight`` -> ``0.0.fwd.0.weight``."""
    out = {}
    for key, value in strip_prefix(state).items():
        out[".".join(p for p in key.split(".") if p != "module")] = value
    return out


def detect_aoi(tree: Any) -> bool:
    """True for a state dict made of snncutoff conv units (``<path>.fwd.0``) and a final Linear."""
    try:
        raw = split_state_dict(tree)[0]
    except CheckpointError:
        return False
    state = normalise_keys(raw)
    if detect_snncutoff_image(list(raw), state):
        return True
    groups = module_groups(state)
    units = [m for m in groups if _UNIT.fullmatch(m)]
    others = [m for m in groups if not _UNIT.fullmatch(m)]
    return bool(units) and len(others) == 1 and set(groups[others[0]]) <= {"weight", "bias"}


def _geometry(path: str, kernel: int, overrides: Mapping, source: str) -> tuple[int, int]:
    if path in overrides:
        return tuple(overrides[path])  # type: ignore[return-value]
    if kernel % 2:
        return (1, (kernel - 1) // 2)
    if kernel in _GEOMETRY:
        return _GEOMETRY[kernel]
    raise CheckpointError(f"{source}: conv {path!r} has a {kernel}x{kernel} kernel whose stride and padding the "
                          f"checkpoint does not record; pass conv_geometry={{'{path}': (stride, padding)}}")


def load_aoi(path: str | os.PathLike, *, input_shape: Sequence[int] | None = None, tau: float = 0.5,
             threshold: float = 1.0, reset: str = "hard", v_init: float = 0.0, pool: str | None = None,
             conv_geometry: Mapping[str, Sequence[int]] | None = None, bn_eps: float = 1e-5,
             strict: bool = True) -> nw.Network:
    """Import an AOI-SNN / snncutoff VGG checkpoint as an eventsim Network.

    Parameters
    ----------
    path : str or path-like
        ``torch.save(model.state_dict())`` (see the module docstring).
    input_shape : (C, H, W), optional
        Frame shape, e.g. ``(2, 34, 34)`` for N-MNIST. Inferred only when one square size fits.
    tau : float, default 0.5
        Multiplicative leak per step.
    threshold : float, default 1.0
    reset : {"hard", "soft"}
        ``"hard"``: to 0 (direct training); ``"soft"``: subtract θ.
    v_init : float, default 0
        Initial membrane as a fraction of θ (snncutoff's single-step soft mode uses 0.5).
    pool : {"avg", "max"}, optional
        Type of the pooling layers. The keys do not say it (``VGGANN`` and the CIFAR ``VGG`` average,
        ``VGG_Gesture`` and ``VGG_nobias`` take the maximum), so a network with pools is refused
        without ``pool=`` unless the checkpoint dict records a ``"pool"`` entry.
    conv_geometry : dict, optional
        ``{conv unit path (e.g. "0.0"): (stride, padding)}`` overriding the defaults above.
    bn_eps : float, default 1e-5
    strict : bool, default True
        Raise on keys the layout does not use.

    Returns
    -------
    Network
        Named after the PyTorch modules: ``0.0.fwd.0`` (conv + folded BN), ``0.0.relu`` (LIF),
        pools ``0.<i>``, ``readout``.
    """
    if reset not in ("hard", "soft"):
        raise ValueError(f"reset={reset!r}: choose 'hard' (to zero) or 'soft' (subtract)")
    if pool not in (None, "avg", "max"):
        raise ValueError(f"pool={pool!r}: choose 'avg' or 'max'")
    source = str(path)
    state, extras = split_state_dict(read_tree(path, load_data=True), source)
    if pool is None and extras.get("pool") in ("avg", "max"):
        pool = extras["pool"]
    raw_keys = list(state)
    state = normalise_keys(state)

    def neuron(name: str) -> nw.LIF:
        return nw.LIF(leak=tau, threshold=threshold, compare=">", reset="zero" if reset == "hard" else "subtract",
                      v_init=v_init * threshold, name=name)

    meta = {"format": "aoi", "source": Path(source).name, "tau": tau, "reset": reset}
    if detect_snncutoff_image(raw_keys, state, wrapped=False):
        return load_snncutoff_image(state, source, neuron, input_shape=input_shape, pool=pool, bn_eps=bn_eps,
                                    strict=strict, meta=meta)
    feature = unsupported_feature(state, LAYOUT)
    if feature:
        raise CheckpointError(f"{source}: {feature}; it reads snncutoff's VGGs and its CIFAR ResNet "
                              "(<stage>.<block>.residual_function / .shortcut keys)")
    keys = KeyReader(state, source, LAYOUT)
    groups = list(module_groups(state))
    overrides = dict(conv_geometry or {})
    pool_cls = nw.MaxPool2d if pool == "max" else nw.AvgPool2d   # None: decided below, once pools are found

    def unit(upath: str, ndim: int) -> list[nw.Layer]:
        w = keys.take(f"{upath}.fwd.0.weight", ndim=ndim)
        b = keys.optional(f"{upath}.fwd.0.bias", (w.shape[0],))
        bn = f"{upath}.fwd.1"
        if f"{bn}.running_mean" in keys:
            c = w.shape[0]
            w, b = fold_batchnorm(w, b, keys.take(f"{bn}.running_mean", (c,)), keys.take(f"{bn}.running_var", (c,)),
                                  keys.optional(f"{bn}.weight", (c,)), keys.optional(f"{bn}.bias", (c,)), bn_eps)
        if ndim == 4:
            stride, pad = _geometry(upath, w.shape[2], overrides, source)
            syn = nw.Conv2d(w, b, stride=stride, padding=pad, name=f"{upath}.fwd.0")
        else:
            syn = nw.Linear(w, b, name=f"{upath}.fwd.0")
        return [syn, neuron(f"{upath}.relu")]

    head: list[nw.Layer] = []   # conv units and interior pools
    tail: list[nw.Layer] = []   # Flatten, fc units, classifier, readout
    last_conv = None
    seen_units = []
    for module in groups:
        m = _UNIT.fullmatch(module)
        if m is None:
            continue
        upath = m.group(1)
        if upath in seen_units:
            continue
        seen_units.append(upath)
        conv = len(state[f"{upath}.fwd.0.weight"].shape) == 4 if f"{upath}.fwd.0.weight" in state else None
        if conv is None:
            raise CheckpointError(f"{source}: missing key '{upath}.fwd.0.weight' for the {LAYOUT} layout")
        if conv:
            if tail:
                raise CheckpointError(f"{source}: conv unit {upath!r} follows a linear layer")
            container, _, index = upath.rpartition(".")
            if last_conv is not None and index.isdigit():
                p_container, p_index = last_conv
                if p_container == container and p_index.isdigit():
                    for gap in range(int(p_index) + 1, int(index)):
                        head.append(pool_cls(2, name=f"{container}.{gap}" if container else str(gap)))
            head += unit(upath, 4)
            last_conv = (container, index)
        else:
            if not tail:
                tail.append(nw.Flatten(name="flatten"))
            tail += unit(upath, 2)
    outputs = [g for g in groups if not _UNIT.fullmatch(g)]
    if len(outputs) != 1:
        raise CheckpointError(f"{source}: expected one classifier Linear besides the conv/linear units, found "
                              f"{outputs or 'none'}; unknown keys for the {LAYOUT} layout")
    out = outputs[0]
    w = keys.take(f"{out}.weight", ndim=2)
    if not tail:
        tail.append(nw.Flatten(name="flatten"))
    tail += [nw.Linear(w, keys.optional(f"{out}.bias", (w.shape[0],)), name=out), nw.Readout(mode="sum", name="readout")]
    if strict:
        keys.finish()
    if not head:
        raise CheckpointError(f"{source}: no conv unit ('<path>.fwd.0.weight' with a 4-D weight) found")

    container = last_conv[0]
    fits = []
    sizes = [tuple(input_shape)] if input_shape is not None else [(head[0].in_channels, h, h) for h in range(1, 1025)]
    for n_pools in range(0, 7):
        pools = [pool_cls(2, name=f"{container}.tail_pool{k}") for k in range(n_pools)]
        stack = head + pools + tail
        for shape in sizes:
            s = shape
            try:
                for layer in stack:
                    s = tuple(layer.output_shape(s))
            except ValueError:
                continue
            fits.append((shape, stack))
    if len(fits) != 1:
        found = sorted({f[0] for f in fits})
        what = f"input shapes {found[:8]}{'…' if len(found) > 8 else ''}" if fits else "no input shape"
        c = head[0].in_channels
        dvs = (c, 128, 128)
        note = (f"; {dvs} fits: snncutoff trains CIFAR10-DVS and DVS128 Gesture at 128×128" if dvs in found
                else "; snncutoff trains CIFAR10-DVS and DVS128 Gesture at (2, 128, 128)")
        raise CheckpointError(f"{source}: {what} fit(s) the layer widths (trailing pools are not recorded){note}; "
                              f"pass input_shape=({c}, H, W) matching the training frames, e.g. input_shape={dvs} "
                              "for CIFAR10-DVS")
    shape, stack = fits[0]
    pools = [layer.name for layer in stack if isinstance(layer, (nw.AvgPool2d, nw.MaxPool2d))]
    if pools and pool is None:
        raise CheckpointError(f"{source}: the snncutoff keys do not record whether the pools ({', '.join(pools[:4])}) "
                              "average or take the maximum; pass pool='avg' (VGGANN, the CIFAR VGG) or pool='max' "
                              "(VGG_Gesture, VGG_nobias)")
    meta.update(input_encoding="frames", pool=pool if pools else None)
    try:
        return nw.Network(shape, stack, metadata=meta)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
