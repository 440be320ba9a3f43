"""A plain-text summary of a checkpoint for ``eventsim inspect`` (reads no tensor data)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .common import read_tree, split_state_dict
from .registry import LAYOUTS
from .torchfile import CheckpointError, TensorInfo, file_kind

__all__ = ["describe_checkpoint"]

_MAX_ROWS = 60


def _short(value: Any, width: int = 70) -> str:
    if isinstance(value, TensorInfo):
        return f"tensor {value.dtype} {value.shape}"
    if isinstance(value, dict):
        inner = sum(isinstance(v, TensorInfo) for v in value.values())
        return f"dict with {len(value)} entries" + (f" ({inner} tensors)" if inner else "")
    if isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list, tuple, TensorInfo)) for v in value):
        return f"{type(value).__name__} of {len(value)} items"
    if isinstance(value, (float, np.floating)):
        text = f"{float(value):.6g}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_short(v, 12) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def describe_checkpoint(path: str | os.PathLike) -> str:
    """Describe a ``torch.save`` file: layout, extra entries and every tensor's key, dtype and shape.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        Several lines, e.g.::

            model.pth: PyTorch checkpoint, zip format, 412,345 bytes
            layout: diet — DIET-SNN checkpoint (nitin-rathi/DIET-SNN): ...
            entries: accuracy = 0.67, epoch = 3, timesteps = 8, ...
            state dict: 9 tensors, 34,176 numbers
              module.features.0.weight   float32  (8, 2, 3, 3)

    Raises
    ------
    UnsafeCheckpointError, CheckpointError
        As :func:`~eventsim.checkpoints.read_checkpoint`.
    """
    path = Path(path)
    tree = read_tree(path)
    with open(path, "rb") as fh:
        kind = file_kind(fh.read(512))
    lines = [f"{path.name}: PyTorch checkpoint, {kind} format, {path.stat().st_size:,} bytes"]
    hits = [name for name, layout in LAYOUTS.items() if layout.detect(tree)]
    if len(hits) == 1:
        lines.append(f"layout: {hits[0]} — {LAYOUTS[hits[0]].description}")
    elif hits:
        lines.append(f"layout: ambiguous, matches {hits}; load with format=")
    else:
        lines.append(f"layout: none of {sorted(LAYOUTS)} recognised; read_state_dict() still reads the tensors")
    try:
        state, extras = split_state_dict(tree, path.name)
    except CheckpointError as exc:
        lines.append(f"no state dict: {str(exc).split(': ', 1)[-1]}")
        return "\n".join(lines)
    if extras:
        lines.append("entries: " + ", ".join(f"{k} = {_short(v)}" for k, v in extras.items()))
    numbers = sum(v.numel for v in state.values())
    lines.append(f"state dict: {len(state)} tensors, {numbers:,} numbers")
    width = max(len(k) for k in state)
    for i, (key, info) in enumerate(state.items()):
        if i == _MAX_ROWS:
            lines.append(f"  … and {len(state) - _MAX_ROWS} more")
            break
        lines.append(f"  {key:<{width}}  {info.dtype:<8}  {info.shape}")
    return "\n".join(lines)
