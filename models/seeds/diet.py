"""DIET-SNN reference model (Rathi & Roy, "DIET-SNN: Direct input encoding with leakage and
threshold optimization", 2020) in the key layout of github.com/nitin-rathi/DIET-SNN.

Written from the paper's equations and the layout of the public code (not copied):

* ``features`` / ``classifier`` ``nn.Sequential`` built from a VGG config: per number a
  ``Conv2d(bias=False)``, ``ReLU`` (the spike site) and ``Dropout``; ``"A"`` swaps the last
  ``Dropout`` for ``AvgPool2d(2)``; the classifier is ``Linear(bias=False)``, ``ReLU``, ``Dropout``, …,
  ``Linear``;
* a trained threshold and leak per spiking layer, ``threshold.t<n>`` and ``leak.l<n>``;
* per step, with the analog image ``x`` fed every step: ``u ← λu + W·s_in``, spike where
  ``u/θ − 1 > 0``, ``u ← u − θ·s``; the last layer accumulates ``W·s`` without spiking.
  ``order="fire-integrate"`` reproduces the older code that fires from the previous membrane.
* saved like ``snn.py``: ``{"state_dict" (with nn.DataParallel's "module." prefix), "accuracy",
  "epoch", "optimizer", "thresholds", "timesteps", "leak", "activation"}``.

Run ``python models/seeds/diet.py`` to train the small N-MNIST model and write
``models/seeds/checkpoints/diet_nmnist.pth`` (a few minutes on 2 CPU cores).
"""
from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nmnist_data  # noqa: E402
from seedlib import SpikeGT, accuracy, cross_entropy, fit  # noqa: E402

CFG = [8, "A", 16, "A"]
HIDDEN = 32
TIMESTEPS = 8
CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "diet_nmnist.pth"


class DietVGG(nn.Module):
    """VGG-style DIET-SNN with per-layer trained threshold and leak."""

    def __init__(self, cfg=CFG, in_channels=2, image_size=34, hidden=HIDDEN, labels=10,
                 kernel_size=3, threshold=1.0, leak=1.0, dropout=0.1):
        super().__init__()
        layers, c, size = [], in_channels, image_size
        for x in cfg:
            if x == "A":
                layers.pop()
                layers.append(nn.AvgPool2d(kernel_size=2, stride=2))
                size //= 2
            else:
                layers += [nn.Conv2d(c, x, kernel_size, padding=(kernel_size - 1) // 2, bias=False),
                           nn.ReLU(inplace=True), nn.Dropout(dropout)]
                c = x
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(c * size * size, hidden, bias=False), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(hidden, labels, bias=False))
        thr, lk = {}, {}
        for n in self.spiking_indices():
            thr[f"t{n}"] = nn.Parameter(torch.tensor(float(threshold)))
            lk[f"l{n}"] = nn.Parameter(torch.tensor(float(leak)))
        self.threshold = nn.ParameterDict(thr)
        self.leak = nn.ParameterDict(lk)

    def spiking_indices(self) -> list[int]:
        n = len(self.features)
        return ([i for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d)]
                + [n + j for j, m in enumerate(self.classifier) if isinstance(m, nn.Linear)][:-1])

    def forward(self, x, timesteps=TIMESTEPS, order="integrate-fire", record=False):
        """Run ``timesteps`` steps on the analog images ``x`` (B, C, H, W).

        Returns the accumulated output ``(B, labels)`` and, with ``record``, a dict with
        ``logits`` (T, B, labels) (running sums) and ``spikes`` {module name: (T, B, ...)}.
        """
        n_feat = len(self.features)
        mem, masks = {}, {}
        out_mem = 0.0
        logits, spikes = [], {}
        for t in range(timesteps):
            s = x
            for i, m in enumerate(list(self.features) + list(self.classifier)):
                name = f"features.{i}" if i < n_feat else f"classifier.{i - n_feat}"
                if i == n_feat:
                    s = s.reshape(s.shape[0], -1)
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    current = m(s)
                    if i == n_feat + len(self.classifier) - 1:
                        out_mem = out_mem + current          # non-spiking accumulator
                        continue
                    theta, lam = self.threshold[f"t{i}"], self.leak[f"l{i}"]
                    u = mem.get(i, torch.zeros_like(current))
                    if order == "integrate-fire":
                        u = lam * u + current
                        mem_thr = u / theta - 1.0
                        u = u - theta * (mem_thr > 0).to(u.dtype)
                    else:                                      # older DIET code
                        mem_thr = u / theta - 1.0
                        u = lam * u + current - theta * (mem_thr > 0).to(u.dtype)
                    mem[i] = u
                    spike = SpikeGT.apply(mem_thr)
                elif isinstance(m, nn.ReLU):
                    s = spike
                    if record:
                        spikes.setdefault(name, []).append(s.detach())
                elif isinstance(m, nn.AvgPool2d):
                    s = m(s)
                elif isinstance(m, nn.Dropout):
                    if self.training:                          # one mask per sequence, as DIET
                        if i not in masks:
                            masks[i] = m(torch.ones_like(s))
                        s = s * masks[i]
            if record:
                logits.append(out_mem.detach().clone())
        if not record:
            return out_mem
        return out_mem, {"logits": torch.stack(logits), "spikes": {k: torch.stack(v) for k, v in spikes.items()}}


def load_reference(path=CHECKPOINT, dtype=torch.float64) -> tuple[DietVGG, int]:
    """Rebuild the reference model from a DIET-style checkpoint (with ``torch.load``)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = OrderedDict((k.removeprefix("module."), v) for k, v in ckpt["state_dict"].items())
    model = DietVGG()
    model.load_state_dict(state)
    return model.to(dtype).eval(), int(ckpt["timesteps"])


def train(epochs: int = 6, n_train: int = 600, seed: int = 0) -> None:
    torch.manual_seed(seed)
    x, y = nmnist_data.images(nmnist_data.load_samples(split="train", n=n_train))
    xt, yt = nmnist_data.images(nmnist_data.load_samples(split="test", n=100))
    model = DietVGG()

    def loss_of(m, xb, yb):
        out = m(xb) / TIMESTEPS
        return out, cross_entropy(out, yb)

    def clamp(m):
        with torch.no_grad():
            for p in m.leak.values():
                p.clamp_(0.5, 1.0)
            for p in m.threshold.values():
                p.clamp_(min=0.05)

    opt = fit(model, x, y, loss_of, epochs=epochs, lr=3e-3, seed=seed, after_step=clamp)
    model.eval()
    acc = accuracy(lambda xb: model(xb), xt, yt)
    print(f"test accuracy on 100 samples: {acc:.2f}")
    state = OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items())
    n_list = model.spiking_indices()
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"accuracy": acc, "epoch": epochs, "state_dict": state, "optimizer": opt.state_dict(),
                "thresholds": [model.threshold[f"t{n}"].item() for n in n_list], "timesteps": TIMESTEPS,
                "leak": [model.leak[f"l{n}"].item() for n in n_list], "activation": "Linear"}, CHECKPOINT)
    print(f"wrote {CHECKPOINT} ({CHECKPOINT.stat().st_size} bytes)")


if __name__ == "__main__":
    train()
