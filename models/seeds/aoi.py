"""AOI-SNN reference model (Wu et al. 2023, "Optimising event-driven spiking neural network with
regularisation and cutoff") in the key layout of github.com/Dengyu-Wu/snncutoff.

Written from the paper and the public layout (not copied):

* a small ``VGGANN``-like net: conv units ``fwd = Sequential(Conv2d, BatchNorm2d, Dropout)`` plus an
  activation ``relu``; the first conv is the 4×4 stride-4 down-scaling layer; ``AvgPool2d(2)``
  between units; ``Flatten``; a ``Linear`` classifier;
* snncutoff's SNN form: every Conv2d/Linear/pool/Flatten wrapped so that a ``(T, B, ...)`` sequence
  is merged to ``(T·B, ...)`` for it (the wrapper holds it as ``.module``), the activations are LIF
  layers, and the whole is ``Sequential(features, classifier, output wrapper)``: keys
  ``0.<i>.fwd.0.module.weight``, ``0.<i>.fwd.1.running_mean``, ``1.module.weight``;
* LIF (snncutoff, ``reset_mode="hard"``): ``v = v_prev + x_t``; ``s = v − 1 > 0``; ``v ← v·(1 − s)``;
  ``v_prev = 0.5·v``;
* input: event-count frames in T equal bins; output ``(T, B, classes)``, accumulated over steps
  by the cutoff;
* saved like snncutoff's ``training.py``: ``torch.save(model.state_dict(), ...)``.

Run ``python models/seeds/aoi.py`` to train briefly (BPTT, triangular surrogate) and write
``models/seeds/checkpoints/aoi_nmnist.pth``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nmnist_data  # noqa: E402
from seedlib import Triangle, accuracy, fit  # noqa: E402

TIMESTEPS = 8
CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "aoi_nmnist.pth"


class Pre(nn.Module):
    """snncutoff's pre-wrapper: merge a ``(T, B, ...)`` sequence to ``(T·B, ...)``, then apply ``module``."""

    def __init__(self, module: nn.Module | None, T: int):
        super().__init__()
        self.module, self.T = module, T

    def forward(self, x):
        x = x.flatten(0, 1)
        return x if self.module is None else self.module(x)


class Post(nn.Module):
    """snncutoff's post-wrapper: apply ``module`` to a merged batch, then split it to ``(T, B, ...)``."""

    def __init__(self, module: nn.Module | None, T: int):
        super().__init__()
        self.module, self.T = module, T

    def forward(self, x):
        if self.module is not None:
            x = self.module(x)
        return x.view((self.T, x.shape[0] // self.T) + tuple(x.shape[1:]))


class LIFLayer(nn.Module):
    """snncutoff's LIF over a merged ``(T·B, ...)`` input; returns spikes ``(T, B, ...)``."""

    def __init__(self, T: int, tau: float = 0.5, vthr: float = 1.0):
        super().__init__()
        self.T, self.tau, self.vthr = T, tau, vthr
        self.spikes = None

    def forward(self, x):
        x = x.view((self.T, x.shape[0] // self.T) + tuple(x.shape[1:]))
        vmem_prev, out = 0.0, []
        for t in range(self.T):
            vmem = vmem_prev + x[t]
            spike = Triangle.apply(vmem - self.vthr, False)
            vmem = vmem * (1 - spike)
            vmem_prev = vmem * self.tau
            out.append(spike)
        out = torch.stack(out)
        self.spikes = out.detach()
        return out


class ConvUnit(nn.Module):
    def __init__(self, c_in, c_out, k, s, p, T):
        super().__init__()
        self.fwd = nn.Sequential(Pre(nn.Conv2d(c_in, c_out, k, s, p), T), nn.BatchNorm2d(c_out), nn.Dropout(0.0))
        self.relu = LIFLayer(T)

    def forward(self, x):
        return self.relu(self.fwd(x))


def build(T: int = TIMESTEPS, widths=(16, 32, 32), labels: int = 10) -> nn.Sequential:
    """``Sequential(features, classifier, output)`` with snncutoff's module names."""
    a, b, c = widths
    features = nn.Sequential(
        ConvUnit(2, a, 4, 4, 0, T),                      # 34 -> 8, the down-scaling layer
        ConvUnit(a, b, 3, 1, 1, T),
        Post(Pre(nn.AvgPool2d(2), T), T),                # 8 -> 4
        ConvUnit(b, c, 3, 1, 1, T),
        Post(Pre(nn.AvgPool2d(2), T), T),                # 4 -> 2
        Post(Pre(nn.Flatten(1, -1), T), T),
    )
    classifier = Pre(nn.Linear(c * 2 * 2, labels), T)
    return nn.Sequential(features, classifier, Post(None, T))


def run(model: nn.Sequential, frames: torch.Tensor):
    """``frames`` (B, T, 2, H, W) -> (accumulated logits (T, B, classes), {LIF name: spikes (T, B, ...)})."""
    out = model(frames.transpose(0, 1).contiguous())
    spikes = {name: m.spikes for name, m in model.named_modules() if isinstance(m, LIFLayer)}
    return out.cumsum(0), spikes


def load_reference(path=CHECKPOINT, dtype=torch.float64) -> nn.Sequential:
    model = build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(dtype).eval()


def train(epochs: int = 8, n_train: int = 600, seed: int = 0) -> None:
    torch.manual_seed(seed)
    x, y = nmnist_data.frames(nmnist_data.load_samples(split="train", n=n_train), TIMESTEPS)
    xt, yt = nmnist_data.frames(nmnist_data.load_samples(split="test", n=100), TIMESTEPS)
    model = build()

    def loss_of(m, xb, yb):
        out = m(xb.transpose(0, 1).contiguous())        # (T, B, classes)
        return out.mean(0), F.cross_entropy(out.mean(0), yb)

    fit(model, x.astype("float32"), y, loss_of, epochs=epochs, lr=3e-3, seed=seed)
    model.eval()
    acc = accuracy(lambda xb: run(model, xb)[0][-1], xt.astype("float32"), yt)
    print(f"test accuracy on 100 samples: {acc:.2f}")
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), CHECKPOINT)
    print(f"wrote {CHECKPOINT} ({CHECKPOINT.stat().st_size} bytes)")


if __name__ == "__main__":
    train()
