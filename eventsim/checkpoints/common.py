"""Shared pieces of the checkpoint importers: finding the state dict, consuming keys with shape
checks, folding BatchNorm, and inferring an input size the checkpoint does not record.

Every importer reads its keys through :class:`KeyReader`, so a missing key names itself and the
shape it should have, a key of the wrong shape names both shapes, and keys that no importer rule
used are listed by name when the import finishes.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .torchfile import CheckpointError, TensorInfo, read_checkpoint

__all__ = ["read_tree", "split_state_dict", "read_state_dict", "KeyReader", "fold_batchnorm",
           "infer_input_shape", "strip_prefix", "module_groups", "unsupported_feature"]

#: Keys of a checkpoint dict that may hold the state dict, tried in this order.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "state")

_TREE_CACHE: "OrderedDict[tuple, Any]" = OrderedDict()


def read_tree(path: str | os.PathLike, load_data: bool = False) -> Any:
    """:func:`~eventsim.checkpoints.torchfile.read_checkpoint`, memoised for ``load_data=False``
    (format detection asks several importers about the same file)."""
    path = Path(path)
    if load_data:
        return read_checkpoint(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _TREE_CACHE:
        _TREE_CACHE[key] = read_checkpoint(path, load_data=False)
        while len(_TREE_CACHE) > 8:
            _TREE_CACHE.popitem(last=False)
    return _TREE_CACHE[key]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, (np.ndarray, TensorInfo))


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and _is_tensor(v) for k, v in obj.items())


def split_state_dict(obj: Any, source: str = "checkpoint") -> tuple[dict, dict]:
    """Return ``(state_dict, extras)`` from what ``torch.save`` stored.

    A mapping whose values are all tensors is the state dict itself; otherwise the first of
    :data:`STATE_DICT_KEYS` holding one is, and the other entries are ``extras`` (epoch,
    accuracy, thresholds, ...). Raises :class:`CheckpointError` naming the top-level keys otherwise.
    """
    if _is_state_dict(obj):
        return dict(obj), {}
    if isinstance(obj, Mapping):
        for name in STATE_DICT_KEYS:
            if _is_state_dict(obj.get(name)):
                return dict(obj[name]), {k: v for k, v in obj.items() if k != name}
        keys = [str(k) for k in obj][:20]
        raise CheckpointError(f"{source}: no state dict found; top-level keys are {keys}; expected tensors "
                              f"directly or under one of {list(STATE_DICT_KEYS)}")
    raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not a state dict")


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the state dict of a ``torch.save`` file as ``{key: numpy array}``, without torch.

    Parameters
    ----------
    path : str or path-like
        A checkpoint holding a state dict directly, or a dict with the state dict under
        ``"state_dict"`` (or ``"model_state_dict"``, ``"model"``, ``"net"``, ``"state"``).

    Returns
    -------
    dict of str to numpy.ndarray
        In the file's key order.

    Raises
    ------
    UnsafeCheckpointError, CheckpointError (both ValueError)
        See :func:`~eventsim.checkpoints.torchfile.read_checkpoint`.
    """
    return split_state_dict(read_checkpoint(path), str(path))[0]


def strip_prefix(state: Mapping[str, Any], prefix: str = "module.") -> dict:
    """Remove ``prefix`` (``nn.DataParallel``'s ``module.``) when every key carries it."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


#: Key patterns of architectures that the importers recognise but do not support: (regex on a key,
#: feature description; the regex's first group is the module path named in the message).
UNSUPPORTED = (
    (re.compile(r"(.*\.downsample)\.\d+\.weight"), "residual shortcut"),
    (re.compile(r"(.*\.shortcut)\.\d+\.(?:module\.)?weight"), "residual shortcut"),
    (re.compile(r"(.*\.residual_function)\.\d+\.(?:module\.)?weight"), "residual block"),
    (re.compile(r"(.*)\.weight_ih_l\d+"), "recurrent layer (LSTM/GRU/RNN)"),
    (re.compile(r"(.*)\.in_proj_weight"), "self-attention layer"),
    (re.compile(r"(.*)\.(?:attn|attention)\..*weight"), "self-attention layer"),
)


def unsupported_feature(keys: Iterable[str], layout: str | None = None) -> str | None:
    """A sentence naming the first recognised-but-unsupported feature in ``keys`` and where it is
    (``"residual shortcut at 'layer1.0.downsample'"``), or None."""
    for key in keys:
        for pattern, feature in UNSUPPORTED:
            m = pattern.fullmatch(key)
            if m:
                where = m.group(1)
                return f"{feature} at {where!r}" + (f" is not part of the {layout} layout" if layout else "")
    return None


def module_groups(keys: Iterable[str]) -> "OrderedDict[str, list[str]]":
    """Group parameter names by module path, in first-appearance order:
    ``"features.0.weight"`` -> ``{"features.0": ["weight"]}``."""
    groups: "OrderedDict[str, list[str]]" = OrderedDict()
    for key in keys:
        mod, _, param = key.rpartition(".")
        groups.setdefault(mod, []).append(param)
    return groups


class KeyReader:
    """Consume a state dict key by key with shape checks; report what is missing or left over.

    Parameters
    ----------
    state : mapping of str to array
    source : str
        File name (or other label) used in messages.
    layout : str
        Layout name used in messages (e.g. ``"DIET-SNN"``).
    ignore : sequence of regex
        Keys matching any of these are never reported as unknown (e.g. ``num_batches_tracked``).
    """

    def __init__(self, state: Mapping[str, Any], source: str, layout: str,
                 ignore: Sequence[str] = (r"(^|\.)num_batches_tracked$",)) -> None:
        self.state = dict(state)
        self.source = source
        self.layout = layout
        self.used: set[str] = set()
        self._ignore = [re.compile(p) for p in ignore]

    def __contains__(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str, shape: Sequence[int | None] | None = None, ndim: int | None = None) -> np.ndarray:
        """Return ``state[key]`` as float64, checking its shape (``None`` entries match any size)."""
        if key not in self.state:
            want = f" of shape {tuple(shape)}" if shape is not None else ""
            raise CheckpointError(f"{self.source}: missing key {key!r}{want} for the {self.layout} layout")
        value = self.state[key]
        got = tuple(value.shape)
        if ndim is not None and len(got) != ndim:
            raise CheckpointError(f"{self.source}: key {key!r} has shape {got}, expected a {ndim}-D tensor "
                                  f"for the {self.layout} layout")
        if shape is not None and (len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got))):
            want = tuple("any" if s is None else s for s in shape)
            raise CheckpointError(f"{self.source}: key {key!r} has shape {got}, expected {want}")
        self.used.add(key)
        if isinstance(value, TensorInfo):
            raise CheckpointError(f"{self.source}: key {key!r} was read without data; use load_data=True")
        if value.dtype.kind not in "fiub":
            raise CheckpointError(f"{self.source}: key {key!r} has dtype {value.dtype}, expected a number type")
        return np.asarray(value, dtype=np.float64)

    def scalar(self, key: str) -> float:
        """A one-element tensor (shape ``()`` or ``(1,)``) as a float."""
        if key in self.state and tuple(self.state[key].shape) not in ((), (1,)):
            raise CheckpointError(f"{self.source}: key {key!r} has shape {tuple(self.state[key].shape)}, "
                                  "expected a single number (shape () or (1,))")
        return float(self.take(key).reshape(-1)[0]) if key in self.state else float(self.take(key, ()))

    def optional(self, key: str, shape: Sequence[int | None] | None = None) -> np.ndarray | None:
        return self.take(key, shape) if key in self.state else None

    def unused(self) -> list[str]:
        return [k for k in self.state if k not in self.used and not any(p.search(k) for p in self._ignore)]

    def finish(self) -> None:
        """Raise CheckpointError naming every key that was not used (and is not ignorable)."""
        left = self.unused()
        if left:
            shown = ", ".join(f"{k} {tuple(self.state[k].shape)}" for k in left[:12])
            more = f" and {len(left) - 12} more" if len(left) > 12 else ""
            raise CheckpointError(f"{self.source}: {len(left)} unknown key(s) for the {self.layout} layout: "
                                  f"{shown}{more}. Is this the right format=?")


def fold_batchnorm(weight: np.ndarray, bias: np.ndarray | None, mean: np.ndarray, var: np.ndarray,
                   gamma: np.ndarray | None, beta: np.ndarray | None, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode BatchNorm that follows a Conv2d/Linear into its weight and bias.

    ``BN(Wx + b) = γ·(Wx + b − μ)/√(σ² + ε) + β = W'x + b'`` with ``W' = W·g``, ``g = γ/√(σ² + ε)``
    per output channel and ``b' = (b − μ)·g + β``. ``gamma``/``beta`` None mean 1 and 0.
    """
    scale = 1.0 / np.sqrt(var + eps)
    if gamma is not None:
        scale = gamma * scale
    shape = (-1,) + (1,) * (weight.ndim - 1)
    w = weight * scale.reshape(shape)
    b = ((bias if bias is not None else 0.0) - mean) * scale
    if beta is not None:
        b = b + beta
    return w, b


def infer_input_shape(layers: Sequence[Any], channels: int, source: str, max_size: int = 1024) -> tuple[int, int, int]:
    """Find the one square input size ``(channels, H, H)`` that the layer stack accepts.

    Flatten→Linear fixes the number of features after the convolutions and pools; with strides
    and flooring pools several sizes often fit, and then the caller must say: the error lists
    them and asks for ``input_shape=``.
    """
    fits = []
    for h in range(1, max_size + 1):
        shape: tuple = (channels, h, h)
        try:
            for layer in layers:
                shape = tuple(layer.output_shape(shape))
        except ValueError:
            continue
        fits.append(h)
        if len(fits) > 8:
            break
    if len(fits) == 1:
        return (channels, fits[0], fits[0])
    if not fits:
        raise CheckpointError(f"{source}: no square input size up to {max_size} fits the layer shapes; "
                              "pass input_shape=(C, H, W)")
    sizes = ", ".join(str(h) for h in fits[:8]) + ("…" if len(fits) > 8 else "")
    raise CheckpointError(f"{source}: the checkpoint does not record the input size and several fit "
                          f"(square sizes {sizes}); pass input_shape=({channels}, H, W)")
