"""Shared helpers of the claim benchmarks (``benchmarks/claims/*.py``).

Each benchmark reproduces one method's central claim on the 100 real N-MNIST test recordings
with eventsim's exact counts, from the checkpoint shipped in ``models/claims/checkpoints/``
(``--retrain`` trains it again first with ``models/claims/train_<method>.py``, which needs torch),
prints a markdown table, and writes ``benchmarks/results/claims_<name>.json`` and
``docs/figures/claims_<name>.png``. Without ``--retrain`` nothing here imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

CLAIMS_MODELS = ROOT / "models" / "claims"
CHECKPOINTS = CLAIMS_MODELS / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "docs" / "figures"
INPUT_SHAPE = (2, 34, 34)


def default_data() -> Path:
    """``$EVENTSIM_SHARED_DATA/nmnist`` or ``../shared/data/nmnist`` beside the checkout."""
    base = os.environ.get("EVENTSIM_SHARED_DATA")
    return (Path(base) if base else ROOT.parent / "shared" / "data") / "nmnist"


def parser(description: str) -> argparse.ArgumentParser:
    """The common flags: ``--data``, ``--retrain``, ``--threads`` (for retraining), ``--out-json``,
    ``--figure`` (``--no-write`` prints only)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=str(default_data()), help="N-MNIST folder with labels.csv")
    p.add_argument("--retrain", action="store_true", help="train the model again first (needs torch; minutes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads when retraining")
    p.add_argument("--no-write", action="store_true", help="print the table only; write no JSON or figure")
    return p


def retrain(method: str, data: str, threads: int) -> None:
    """Run ``models/claims/train_<method>.py``'s ``train`` (rewrites the checkpoint, its .json and card)."""
    if str(CLAIMS_MODELS) not in sys.path:
        sys.path.insert(0, str(CLAIMS_MODELS))
    module = importlib.import_module(f"train_{method}")
    module.train(data, threads=threads)


def sidecar(checkpoint: Path) -> dict:
    """The training record ``<checkpoint>.json`` written next to a claims checkpoint."""
    path = Path(str(checkpoint) + ".json")
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run with --retrain (or python models/claims/train_*.py)")
    return json.loads(path.read_text())


def checkpoint_path(pattern: str) -> Path:
    """The one checkpoint in ``models/claims/checkpoints`` matching ``pattern`` (glob)."""
    found = sorted(p for p in CHECKPOINTS.glob(pattern) if p.suffix not in (".json", ".md"))
    if len(found) != 1:
        raise SystemExit(f"expected one checkpoint matching {pattern!r} in {CHECKPOINTS}, found {found}")
    return found[0]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    return value


def write_json(name: str, result: dict) -> Path:
    """Write ``benchmarks/results/claims_<name>.json`` atomically (non-finite numbers as null)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"claims_{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_plain(result), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def save_figure(fig, name: str) -> Path:
    """Save ``fig`` as ``docs/figures/claims_<name>.png`` (atomically) and close it."""
    import matplotlib.pyplot as plt
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"claims_{name}.png"
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A markdown table; ``align`` is one character per column, ``l`` or ``r`` (default: first
    column left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def count_images(dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 2, 34, 34)`` normalised event-count images (``eventsim.encodings.count_image``) and labels."""
    from eventsim.encodings import count_image
    images, labels = [], []
    for i in range(len(dataset)):
        events, label = dataset[i][:2]
        images.append(count_image(events, INPUT_SHAPE))
        labels.append(label)
    return np.stack(images), np.asarray(labels)


def numpy_forward(network, x: np.ndarray, activation) -> np.ndarray:
    """The ANN that an imported network was converted from, in NumPy (float64): every weighted
    layer as a dense conv/linear with its (BatchNorm-folded) bias, pools and Flatten as routing,
    each spiking population replaced by ``activation(h, layer)``; returns the readout's input.

    Parameters
    ----------
    network : eventsim.Network
    x : (N, C, H, W) array
    activation : callable ``(h, neuron_layer) -> h``
    """
    from numpy.lib.stride_tricks import sliding_window_view

    import eventsim as es
    h = np.asarray(x, dtype=np.float64)
    for layer in network.layers:
        if isinstance(layer, es.Conv2d):
            (ph, pw), (sh, sw) = layer.padding, layer.stride
            kh, kw = layer.weight.shape[2:]
            win = sliding_window_view(np.pad(h, ((0, 0), (0, 0), (ph, ph), (pw, pw))), (kh, kw), axis=(2, 3))
            h = np.tensordot(win[:, :, ::sh, ::sw], layer.weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
            if layer.bias is not None:
                h = h + layer.bias[:, None, None]
        elif isinstance(layer, es.Linear):
            h = h @ layer.weight.T + (layer.bias if layer.bias is not None else 0.0)
        elif isinstance(layer, es.AvgPool2d):
            (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
            h = sliding_window_view(h, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].mean(axis=(4, 5))
        elif isinstance(layer, es.Flatten):
            h = h.reshape(len(h), -1)
        elif isinstance(layer, (es.IF, es.LIF)):
            h = activation(h, layer)
        elif isinstance(layer, es.Readout):
            return h
        else:
            raise ValueError(f"numpy_forward: {type(layer).__name__} is not supported")
    return h


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"
