"""Shared helpers of the claim-reproduction training scripts (``models/claims/train_*.py``).

The four scripts train one small N-MNIST model each, in the key layout of the method whose
central claim ``benchmarks/claims/`` reproduces, on the 1000 training recordings of
``../shared/data/nmnist`` (or ``$EVENTSIM_SHARED_DATA/nmnist``), and evaluate the PyTorch model on
the 100 test recordings. Each writes, next to its checkpoint,

* ``<checkpoint>.json``: the training settings and the PyTorch model's own test results
  (accuracy and per-sample predictions, float64 forward pass) — the independent facts that
  ``tests/test_claims.py`` compares eventsim's simulation with;
* ``<checkpoint>.md``: the model card, filled from the same numbers.

The PyTorch reference modules come from ``models/seeds`` (written from the papers' equations in
each method's checkpoint layout); the recordings are never copied into the repository.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHECKPOINTS = HERE / "checkpoints"
SEEDS = ROOT / "models" / "seeds"
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache"))
if str(SEEDS) not in sys.path:
    sys.path.insert(0, str(SEEDS))

import torch  # noqa: E402

import nmnist_data  # noqa: E402  (models/seeds)

N_TRAIN = 1000
N_TEST = 100


def setup_torch(threads: int = 1, seed: int = 0) -> None:
    """Deterministic single-machine settings: ``threads`` intra-op threads, global torch seed.

    Parameters
    ----------
    threads : int
        ``torch.set_num_threads``; the shared 2-core machine wants 1 or 2.
    seed : int
        Seed of ``torch.manual_seed`` (weight initialisation, dropout masks).
    """
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The N-MNIST folder: ``root`` if given, else ``$EVENTSIM_SHARED_DATA/nmnist`` or ``../shared/data/nmnist``."""
    return Path(root) if root is not None else nmnist_data.default_root()


def load_split(split: str, root: str | os.PathLike | None = None) -> list[tuple[np.ndarray, int]]:
    """All recordings of ``split`` (1000 train or 100 test) as ``(events, label)`` in file order."""
    return nmnist_data.load_samples(data_root(root), split, N_TRAIN if split == "train" else N_TEST)


def mean_duration_us(samples: Sequence[tuple[np.ndarray, int]]) -> float:
    """Mean recording span ``t_last + 1`` µs (the window the frame encoding splits into T bins)."""
    return float(np.mean([int(ev["t"][-1]) + 1 for ev, _ in samples]))


def predictions(logits: np.ndarray) -> list[int]:
    """Argmax per sample of ``logits`` (N, classes) as plain ints."""
    return [int(v) for v in np.argmax(np.asarray(logits), axis=-1)]


def accuracy_of(preds: Sequence[int], labels: Sequence[int]) -> float:
    """Fraction of ``preds`` equal to ``labels``."""
    return float(np.mean(np.asarray(preds) == np.asarray(labels)))


def batched(fn: Callable[[torch.Tensor], torch.Tensor], inputs: np.ndarray, batch: int = 50,
            dtype=torch.float64) -> np.ndarray:
    """Apply ``fn`` to ``inputs`` in batches along axis 0, without gradients, in ``dtype``; the
    results are concatenated along axis 0, so ``fn`` must return batch-major arrays (wrap a
    time-major ``(T, B, ...)`` output in ``.transpose(0, 1)``)."""
    outs = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            outs.append(fn(torch.as_tensor(inputs[start:start + batch], dtype=dtype)).numpy())
    return np.concatenate(outs)


def file_size(path: Path) -> int:
    return Path(path).stat().st_size


def write_sidecar(checkpoint: Path, info: dict[str, Any]) -> Path:
    """Write ``<checkpoint>.json`` (training settings and PyTorch results), sorted keys, atomically."""
    path = Path(str(checkpoint) + ".json")
    info = {**info, "checkpoint": Path(checkpoint).name, "bytes": file_size(checkpoint),
            "torch": torch.__version__, "python": platform.python_version()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def read_sidecar(checkpoint: Path) -> dict:
    """The ``<checkpoint>.json`` written by :func:`write_sidecar`."""
    return json.loads(Path(str(checkpoint) + ".json").read_text())


def write_card(checkpoint: Path, text: str) -> Path:
    """Write the model card ``<checkpoint>.md``."""
    path = Path(str(checkpoint) + ".md")
    path.write_text(text.rstrip() + "\n")
    return path


def publish(checkpoint: Path, info: dict[str, Any], card: Callable[[dict], str]) -> dict:
    """Write the sidecar ``<checkpoint>.json`` and the card ``<checkpoint>.md`` rendered from it
    (so the card shows exactly what the sidecar holds); returns the sidecar's contents."""
    write_sidecar(checkpoint, info)
    info = read_sidecar(checkpoint)
    write_card(checkpoint, card(info))
    return info


def arg_parser(doc: str, epochs: int | None = None):
    """The options every training script takes: ``--data``, ``--threads``, ``--seed`` (and
    ``--epochs`` with its default, when given)."""
    import argparse
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data", default=None, help="N-MNIST folder (default ../shared/data/nmnist)")
    if epochs is not None:
        p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p


class Timer:
    """Wall-clock seconds since construction (``Timer().s``)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def s(self) -> float:
        return time.perf_counter() - self.t0


def shift_augment(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each sample of ``x`` (B, ..., H, W) by a random integer offset in
    ``[-max_shift, max_shift]`` on both axes, zero-filled (N-MNIST digits drift within the
    34×34 field; this is the only augmentation used)."""
    if max_shift <= 0:
        return x
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0], 2), generator=gen)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, ..., yd, xd] = x[i, ..., ys, xs]
    return out


def train_loop(model: torch.nn.Module, inputs: np.ndarray, labels: np.ndarray,
               loss_of: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
               *, epochs: int, lr: float, batch: int = 32, seed: int = 0, optimizer: str = "adam",
               weight_decay: float = 0.0, max_shift: int = 0, after_step: Callable | None = None,
               params: Sequence[torch.nn.Parameter] | Sequence[dict] | None = None) -> list[dict]:
    """Mini-batch training with a cosine learning-rate schedule.

    Parameters
    ----------
    model : torch.nn.Module
    inputs, labels : numpy arrays, ``inputs`` (N, ...) float32-convertible, ``labels`` (N,)
    loss_of : ``loss_of(model, x, y) -> (output (B, classes), loss)``
    epochs, lr, batch, seed : the usual; ``seed`` orders the batches and draws the shifts
    optimizer : ``"adam"`` or ``"sgd"`` (momentum 0.9)
    weight_decay : L2 penalty passed to the optimizer
    max_shift : random translation in pixels applied to each batch (:func:`shift_augment`)
    after_step : called with the model after every optimiser step (e.g. to clamp parameters)
    params : parameters to optimise, or parameter groups (dicts with ``"params"`` and per-group
        options such as ``"weight_decay"``); default: all of ``model``

    Returns
    -------
    list of dict
        Per epoch: ``loss``, ``train_accuracy`` (on the augmented batches), ``seconds``.
    """
    gen = torch.Generator().manual_seed(seed)
    params = list(model.parameters()) if params is None else list(params)
    opt = (torch.optim.Adam(params, lr=lr, weight_decay=weight_decay) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay))
    steps_per_epoch = (len(inputs) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    x_all = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    log = []
    for epoch in range(epochs):
        timer = Timer()
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            xb = shift_augment(x_all[idx], max_shift, gen)
            out, loss = loss_of(model, xb, y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if after_step is not None:
                after_step(model)
            total += len(idx)
            correct += int((out.argmax(-1) == y_all[idx]).sum())
            loss_sum += float(loss.detach()) * len(idx)
        log.append({"epoch": epoch + 1, "loss": loss_sum / total, "train_accuracy": correct / total,
                    "seconds": round(timer.s, 1)})
        print(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.3f}, train accuracy {correct / total:.3f} "
              f"({timer.s:.0f} s)", flush=True)
    model.eval()
    return log


def card_header(name: str, method: str, layout: str) -> str:
    return (f"# Model card: `{name}` ({method})\n\n"
            f"- **Method / layout**: {layout}\n")


DATA_LINE = ("- **Data**: the 1000 training recordings of `../shared/data/nmnist` (MNIST train #1–1000) for "
             "training, its 100 test recordings (MNIST test #1–100) for every number below; N-MNIST, "
             "CC BY-SA 4.0 per the data's SOURCE.md. A 100-sample accuracy has a standard error of about "
             "±3 points.\n")
