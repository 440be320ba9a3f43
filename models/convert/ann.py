"""A plain ReLU CNN for ANN→SNN conversion, saved in eventsim's ``"ann"`` checkpoint layout.

The layout is ``torch.save({"state_dict": seq.state_dict(), "architecture": architecture_of(seq),
"input_shape": [C, H, W]})``: an ``nn.Sequential`` plus one dict per module describing what the keys
cannot (strides, paddings, pool sizes, clip values). See ``eventsim/checkpoints/convert.py``.

Run ``python models/convert/ann.py`` to train the small N-MNIST CNN (about a minute) and write
``models/convert/checkpoints/ann_nmnist.pt``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "seeds"))
import nmnist_data  # noqa: E402
from seedlib import accuracy, cross_entropy, fit  # noqa: E402

CHECKPOINT = HERE / "checkpoints" / "ann_nmnist.pt"
INPUT_SHAPE = (2, 34, 34)


def architecture_of(seq: nn.Sequential) -> list[dict]:
    """One dict per module of ``seq`` in the ``"ann"`` layout."""
    arch = []
    for m in seq:
        if isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.dilation != (1, 1):
                raise ValueError("only plain convolutions (groups=1, dilation=1) convert")
            arch.append({"type": "Conv2d", "stride": list(m.stride), "padding": list(m.padding)})
        elif isinstance(m, nn.Linear):
            arch.append({"type": "Linear"})
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            arch.append({"type": type(m).__name__, "eps": float(m.eps)})
        elif isinstance(m, nn.ReLU6):
            arch.append({"type": "ReLU6"})
        elif isinstance(m, nn.ReLU):
            arch.append({"type": "ReLU"})
        elif isinstance(m, nn.Hardtanh) and m.min_val == 0:
            arch.append({"type": "Clip", "max": float(m.max_val)})
        elif isinstance(m, nn.AvgPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else list(m.kernel_size)
            s = m.stride if isinstance(m.stride, int) else list(m.stride)
            if m.padding not in (0, (0, 0)) or m.ceil_mode:
                raise ValueError("AvgPool2d with padding or ceil_mode does not convert")
            arch.append({"type": "AvgPool2d", "kernel_size": k, "stride": s})
        elif isinstance(m, nn.Flatten):
            arch.append({"type": "Flatten"})
        elif isinstance(m, nn.Dropout):
            arch.append({"type": "Dropout"})
        else:
            raise ValueError(f"{type(m).__name__} has no entry in the 'ann' layout")
    return arch


def save_ann(seq: nn.Sequential, path, input_shape=INPUT_SHAPE) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": seq.state_dict(), "architecture": architecture_of(seq),
                "input_shape": list(input_shape)}, path)


def build(activation=nn.ReLU) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), activation(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), activation(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 64), activation(), nn.Dropout(0.1), nn.Linear(64, 10))


def load_reference(path=CHECKPOINT, dtype=torch.float64) -> nn.Sequential:
    model = build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    return model.to(dtype).eval()


def train(epochs: int = 3, n_train: int = 600, seed: int = 0) -> None:
    torch.manual_seed(seed)
    x, y = nmnist_data.images(nmnist_data.load_samples(split="train", n=n_train))
    xt, yt = nmnist_data.images(nmnist_data.load_samples(split="test", n=100))
    model = build()

    def loss_of(m, xb, yb):
        out = m(xb)
        return out, cross_entropy(out, yb)

    fit(model, x, y, loss_of, epochs=epochs, lr=3e-3, seed=seed)
    model.eval()
    print(f"ANN test accuracy on 100 samples: {accuracy(model, xt, yt):.2f}")
    save_ann(model, CHECKPOINT)
    print(f"wrote {CHECKPOINT} ({CHECKPOINT.stat().st_size} bytes)")


if __name__ == "__main__":
    train()
