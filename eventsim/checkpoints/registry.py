"""The checkpoint layouts, their detection by key names, and their registration as model formats.

``eventsim.load(path)`` asks every registered format whether the file is unambiguously its own.
For ``.pt`` files each layout's ``detect`` looks at the key names and shapes (read without tensor
data, memoised); a file that matches exactly one layout loads with it, a file that matches none or
several asks for ``format=``. The ``"pt"`` format itself never claims a file by content; it is the
fallback for the ``.pt``/``.pth``/``.tar``/``.ckpt`` extensions and loads with the one layout that
matches, or explains what it found.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..formats import ModelFormat, register_format
from ..network import Network
from .aoi import detect_aoi, load_aoi
from .bntt import detect_bntt, load_bntt
from .common import read_tree, split_state_dict, unsupported_feature
from .convert import detect_ann, load_ann
from .diet import detect_diet, load_diet
from .qcfs import detect_qcfs, load_qcfs
from .torchfile import CheckpointError, file_kind

__all__ = ["Layout", "LAYOUTS", "register_layout", "detect_layouts", "load_pt"]


@dataclass(frozen=True)
class Layout:
    """A checkpoint key layout: ``detect(tree)`` on a checkpoint read without data, ``load(path, **options)``."""

    name: str
    detect: Callable[[Any], bool]
    load: Callable[..., Network]
    description: str


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    """Add a layout and register it as a model format of the same name."""
    LAYOUTS[layout.name] = layout

    def sniff(path: Path, head: bytes, _layout=layout) -> bool:
        if file_kind(head) not in ("zip", "legacy", "safetensors"):
            return False
        try:
            return _layout.detect(read_tree(path))
        except CheckpointError:
            return False

    register_format(ModelFormat(layout.name, layout.load, None, sniff, (), layout.description))
    return layout


def detect_layouts(path: str | os.PathLike) -> list[str]:
    """Names of the layouts whose key pattern ``path`` matches (reads no tensor data)."""
    tree = read_tree(path)
    return [name for name, layout in LAYOUTS.items() if layout.detect(tree)]


def load_pt(path: str | os.PathLike, **options: Any) -> Network:
    """Load a ``.pt`` file with the one layout it matches; otherwise explain and ask for ``format=``."""
    hits = detect_layouts(path)
    if len(hits) == 1:
        return LAYOUTS[hits[0]].load(path, **options)
    if hits:
        raise CheckpointError(f"{path}: matches the layouts {hits}; pass format= one of them")
    tree = read_tree(path)
    try:
        state, _ = split_state_dict(tree, str(path))
        keys = list(state)
        feature = unsupported_feature(keys)
        if feature:
            raise CheckpointError(f"{path}: {feature}: recognised, but no eventsim importer reads this architecture "
                                  f"(the layouts {sorted(LAYOUTS)} read the public codes' VGGs and ResNets; see "
                                  "docs/importing.md)")
        found = f"a state dict of {len(keys)} tensors ({', '.join(keys[:6])}{', …' if len(keys) > 6 else ''})"
    except CheckpointError as exc:
        if "recognised, but" in str(exc):
            raise
        found = str(exc).split(": ", 1)[-1]
    raise CheckpointError(f"{path}: {found} in no known layout ({sorted(LAYOUTS)}); pass format= to force one "
                          "(its error will name the keys it misses), or read the raw tensors with "
                          "eventsim.checkpoints.read_state_dict()")


register_layout(Layout("diet", detect_diet, load_diet,
                       "DIET-SNN checkpoint (nitin-rathi/DIET-SNN): VGG with trained leak and threshold"))
register_layout(Layout("qcfs", detect_qcfs, load_qcfs,
                       "QCFS / optimal ANN-SNN conversion (putshua/ANN_SNN_QCFS): clip → IF, v0 = θ/2"))
register_layout(Layout("aoi", detect_aoi, load_aoi,
                       "AOI-SNN in the snncutoff layout (Dengyu-Wu/snncutoff): direct-trained LIF, DVS frames"))
register_layout(Layout("bntt", detect_bntt, load_bntt,
                       "BNTT (Intelligent-Computing-Lab-Yale/BNTT-...): BatchNorm through time, Poisson input"))
register_layout(Layout("ann", detect_ann, load_ann,
                       "plain ReLU/clip CNN state dict + architecture list, converted to IF neurons"))
register_format(ModelFormat("pt", load_pt, None, None, (".pt", ".pth", ".tar", ".ckpt", ".safetensors"),
                            "PyTorch torch.save or .safetensors file, read safely; loads with the layout its keys "
                            "match"))
