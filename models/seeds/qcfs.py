"""QCFS reference model (Bu et al., "Optimal ANN-SNN conversion for high-accuracy and
ultra-low-latency spiking neural networks", ICLR 2022) in the key layout of
github.com/putshua/ANN_SNN_QCFS (``layer<k>.<i>.thresh``).

Written from the paper's equations and the public layout (not copied):

* ANN mode (``T = 0``): quantisation-clip-floor-shift activation
  ``λ · clip(floor(x·L/λ + ½)/L, 0, 1)`` with a trained clip ``λ`` (``thresh``) per layer;
* SNN mode (``T > 0``, the public code's IF module): the input repeated ``T`` times through the
  same modules, BatchNorm applied per step; each activation becomes an IF neuron with membrane
  starting at ``θ/2`` (``θ = λ``), ``m ← m + x_t``, spike of amplitude ``θ`` where ``m − θ ≥ 0``,
  ``m ← m − spike``;
* saved like the public ``main_train.py``: ``torch.save(model.state_dict(), ...)``.

Run ``python models/seeds/qcfs.py`` to train the ANN briefly and write
``models/seeds/checkpoints/qcfs_nmnist.pth``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nmnist_data  # noqa: E402
from seedlib import Triangle, accuracy, cross_entropy, fit  # noqa: E402

L_LEVELS = 4
TIMESTEPS = 16
CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "qcfs_nmnist.pth"


class _Floor(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.floor()

    @staticmethod
    def backward(ctx, grad):
        return grad


class QCFS(nn.Module):
    """QCFS activation (``T = 0``) or its IF neuron (``T > 0``, input merged as ``(T·B, ...)``)."""

    def __init__(self, thresh: float = 2.0, levels: int = L_LEVELS, v_init: float = 0.5):
        super().__init__()
        self.thresh = nn.Parameter(torch.tensor([float(thresh)]))
        self.levels = levels
        self.T = 0
        self.v_init = v_init
        self.spikes = None

    def forward(self, x):
        if self.T == 0:
            y = torch.clamp(x / self.thresh, 0, 1)
            return _Floor.apply(y * self.levels + 0.5) / self.levels * self.thresh
        theta = self.thresh.data
        seq = x.view((self.T, x.shape[0] // self.T) + tuple(x.shape[1:]))
        mem = self.v_init * theta
        out = []
        for t in range(self.T):
            mem = mem + seq[t]
            spike = Triangle.apply(mem - theta, True) * theta
            mem = mem - spike
            out.append(spike)
        out = torch.stack(out)
        self.spikes = (out / theta).detach()
        return out.flatten(0, 1)


def block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), QCFS(), nn.Dropout(dropout),
                         nn.AvgPool2d(2, 2))


class QcfsVGG(nn.Module):
    """Two VGG blocks and a two-layer classifier, the public code's module structure in small."""

    def __init__(self, in_channels=2, widths=(8, 16), image_size=34, hidden=64, labels=10, dropout=0.1):
        super().__init__()
        self.layer1 = block(in_channels, widths[0], dropout)
        self.layer2 = block(widths[0], widths[1], dropout)
        size = image_size // 4
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[1] * size * size, hidden), QCFS(),
                                        nn.Dropout(dropout), nn.Linear(hidden, labels))

    def set_T(self, T: int, v_init: float = 0.5) -> None:
        for m in self.modules():
            if isinstance(m, QCFS):
                m.T, m.v_init = T, v_init

    def forward(self, x):
        return self.classifier(self.layer2(self.layer1(x)))

    def simulate(self, x, T: int, v_init: float = 0.5):
        """SNN mode: ``(logits (T, B, labels) summed over steps, {IF module name: spikes (T, B, ...)})``."""
        self.set_T(T, v_init)
        try:
            seq = x.unsqueeze(0).repeat((T,) + (1,) * x.dim()).flatten(0, 1)
            out = self(seq).view((T, x.shape[0], -1))
            spikes = {name: m.spikes for name, m in self.named_modules() if isinstance(m, QCFS)}
        finally:
            self.set_T(0)
        return out.cumsum(0), spikes


def load_reference(path=CHECKPOINT, dtype=torch.float64) -> QcfsVGG:
    model = QcfsVGG()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(dtype).eval()


def train(epochs: int = 4, n_train: int = 600, seed: int = 0) -> None:
    torch.manual_seed(seed)
    x, y = nmnist_data.images(nmnist_data.load_samples(split="train", n=n_train))
    xt, yt = nmnist_data.images(nmnist_data.load_samples(split="test", n=100))
    model = QcfsVGG()

    def loss_of(m, xb, yb):
        out = m(xb)
        return out, cross_entropy(out, yb)

    fit(model, x, y, loss_of, epochs=epochs, lr=3e-3, seed=seed)
    model.eval()
    print(f"ANN test accuracy on 100 samples: {accuracy(model, xt, yt):.2f}")
    print(f"SNN (T={TIMESTEPS}) test accuracy: {accuracy(lambda xb: model.simulate(xb, TIMESTEPS)[0][-1], xt, yt):.2f}")
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), CHECKPOINT)
    print(f"wrote {CHECKPOINT} ({CHECKPOINT.stat().st_size} bytes)")


if __name__ == "__main__":
    train()
