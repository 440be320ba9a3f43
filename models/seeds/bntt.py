"""BNTT reference model (Kim & Panda 2021, "Revisiting batch normalization for training
low-latency deep spiking neural networks from scratch") in the key layout of
github.com/Intelligent-Computing-Lab-Yale/BNTT-Batch-Normalization-Through-Time.

Written from the paper and the public layout (not copied):

* ``conv<n>`` (3×3, padding 1, no bias) each followed by ``bntt<n>``, a ``ModuleList`` of one
  ``BatchNorm2d(eps=1e-4)`` per time step with the bias removed; ``AvgPool2d(2)``; ``fc1`` with
  ``bntt_fc``; ``fc2`` the output;
* per step: ``u ← λu + BN_t(W·s_in)``; spike where ``u/θ − 1 > 0`` (θ = 1); ``u ← u − θ·s``; the
  output layer accumulates ``fc2(s)``; the result is that sum divided by T;
* input: Poisson spikes ``s = (2u ≤ |x|)·sign(x)`` of the image, generated outside the model with an
  explicit seed (:func:`eventsim.checkpoints.poisson_encode` with ``rescale=2``) so that PyTorch and
  eventsim see the same spikes;
* saved like ``train.py``: ``{"global_step", "state_dict", "accuracy"}`` in a file named
  ``..._timestep<T>_..._leak<λ>_bestmodel.pth.tar``.

Run ``python models/seeds/bntt.py`` to train briefly and write the checkpoint.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nmnist_data  # noqa: E402
from seedlib import SpikeGT, accuracy, fit  # noqa: E402

from eventsim.checkpoints import poisson_encode  # noqa: E402

TIMESTEPS = 10
LEAK = 0.95
CHECKPOINT = (Path(__file__).resolve().parent / "checkpoints"
              / f"bntt_nmnist_timestep{TIMESTEPS}_leak{LEAK}_bestmodel.pth.tar")


def _bntt(kind, channels: int, steps: int) -> nn.ModuleList:
    norms = nn.ModuleList([kind(channels, eps=1e-4, momentum=0.1, affine=True) for _ in range(steps)])
    for bn in norms:
        bn.bias = None          # BNTT keeps the scale and drops the learnable shift
    return norms


class BnttNet(nn.Module):
    """Two conv layers and two fully connected layers with BatchNorm through time."""

    def __init__(self, steps=TIMESTEPS, leak=LEAK, widths=(16, 32), hidden=64, labels=10, image_size=34):
        super().__init__()
        self.steps, self.leak = steps, leak
        self.conv1 = nn.Conv2d(2, widths[0], 3, padding=1, bias=False)
        self.bntt1 = _bntt(nn.BatchNorm2d, widths[0], steps)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3, padding=1, bias=False)
        self.bntt2 = _bntt(nn.BatchNorm2d, widths[1], steps)
        self.pool2 = nn.AvgPool2d(2)
        size = image_size // 4
        self.fc1 = nn.Linear(widths[1] * size * size, hidden, bias=False)
        self.bntt_fc = _bntt(nn.BatchNorm1d, hidden, steps)
        self.fc2 = nn.Linear(hidden, labels, bias=False)
        self.threshold = 1.0
        for m in (self.conv1, self.conv2, self.fc1, self.fc2):
            nn.init.xavier_uniform_(m.weight, gain=2)

    def forward(self, spikes_in, record: bool = False):
        """``spikes_in`` (T, B, C, H, W) -> output ``(B, labels)`` (mean over T) and, with ``record``,
        ``{"logits": running means (T, B, labels), "spikes": {name: (T, B, ...)}}``."""
        layers = [("conv1", self.conv1, self.bntt1, self.pool1), ("conv2", self.conv2, self.bntt2, self.pool2)]
        mem = {}
        out_mem = 0.0
        logits, spikes = [], {}
        for t in range(self.steps):
            s = spikes_in[t]
            for name, syn, norms, pool in layers + [("fc1", self.fc1, self.bntt_fc, None)]:
                if name == "fc1":
                    s = s.reshape(s.shape[0], -1)
                current = norms[t](syn(s))
                u = self.leak * mem.get(name, torch.zeros_like(current)) + current
                mem_thr = u / self.threshold - 1.0
                s = SpikeGT.apply(mem_thr)
                mem[name] = u - self.threshold * (mem_thr > 0).to(u.dtype)
                if record:
                    spikes.setdefault(f"{name}.spike", []).append(s.detach())
                if pool is not None:
                    s = pool(s)
            out_mem = out_mem + self.fc2(s)
            if record:
                logits.append((out_mem / (t + 1)).detach())
        out = out_mem / self.steps
        if not record:
            return out
        return out, {"logits": torch.stack(logits), "spikes": {k: torch.stack(v) for k, v in spikes.items()}}


def encode(images: np.ndarray, seeds) -> np.ndarray:
    """Poisson spikes ``(N, T, C, H, W)`` int8 for images ``(N, C, H, W)``, one seed per image."""
    return np.stack([poisson_encode(img, TIMESTEPS, seed=int(s), rescale=2.0) for img, s in zip(images, seeds)])


def load_reference(path=CHECKPOINT, dtype=torch.float64) -> BnttNet:
    model = BnttNet()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["state_dict"])
    return model.to(dtype).eval()


def train(epochs: int = 4, n_train: int = 600, seed: int = 0) -> None:
    torch.manual_seed(seed)
    x, y = nmnist_data.images(nmnist_data.load_samples(split="train", n=n_train))
    xt, yt = nmnist_data.images(nmnist_data.load_samples(split="test", n=100))
    model = BnttNet()
    gen = torch.Generator().manual_seed(seed)

    def loss_of(m, xb, yb):
        u = torch.rand((TIMESTEPS,) + tuple(xb.shape), generator=gen)
        out = m(((u * 2.0) <= xb.abs()).float() * xb.sign())
        return out, F.cross_entropy(out, yb)

    fit(model, x, y, loss_of, epochs=epochs, lr=3e-3, seed=seed)
    model.eval()
    spikes = encode(xt, range(len(xt))).astype(np.float32)
    acc = accuracy(lambda sb: model(sb.transpose(0, 1)), spikes, yt)
    print(f"test accuracy on 100 samples: {acc:.2f}")
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": epochs, "state_dict": model.state_dict(), "accuracy": np.mean([acc * 100.0])},
               CHECKPOINT)
    print(f"wrote {CHECKPOINT} ({CHECKPOINT.stat().st_size} bytes)")


if __name__ == "__main__":
    train()
