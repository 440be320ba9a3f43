"""Train the shipped N-MNIST model: a small IF conv net, direct-trained with surrogate gradients.

Usage::

    python models/nmnist/train_nmnist.py [--data ../shared/data/nmnist] [--epochs 12] [--out models/nmnist/nmnist_if.npz]

The PyTorch module below computes exactly what eventsim's stepped engine computes (events binned
into 10 ms steps as ``floor(t / dt)``, IF neurons with ``v > θ`` and subtract reset, a summing
readout), so the exported network behaves like the trained one. Trained on the 1000 training
recordings, evaluated on the 100 test recordings of ``../shared/data/nmnist``. Deterministic for a
given seed on one thread.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import eventsim as es
from eventsim.engines.inputs import events_to_steps
from eventsim.events import LocalNMNIST

HERE = Path(__file__).resolve().parent
DT_US = 10_000
STEPS = 34                       # 340 ms covers every N-MNIST recording (last event ≤ 336 ms)
THETA = 1.0


class SpikeFn(torch.autograd.Function):
    """Heaviside ``v > θ`` forward; a fast-sigmoid surrogate gradient backward."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad / (1 + 5 * u.abs()) ** 2


class NmnistIF(nn.Module):
    """conv 2→12 k5 s2 p2 → IF → conv 12→32 k3 s2 p1 → IF → flatten → linear 2592→10 → readout (sum)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 12, 5, stride=2, padding=2, bias=False)
        self.conv2 = nn.Conv2d(12, 32, 3, stride=2, padding=1, bias=False)
        self.fc = nn.Linear(32 * 9 * 9, 10, bias=False)

    def forward(self, frames):                       # frames: (B, T, 2, 34, 34) event counts
        b, t = frames.shape[:2]
        v1 = v2 = None
        out = 0
        for k in range(t):
            c1 = self.conv1(frames[:, k])
            v1 = c1 if v1 is None else v1 + c1
            s1 = SpikeFn.apply(v1 - THETA)
            v1 = v1 - THETA * s1
            c2 = self.conv2(s1)
            v2 = c2 if v2 is None else v2 + c2
            s2 = SpikeFn.apply(v2 - THETA)
            v2 = v2 - THETA * s2
            out = out + self.fc(s2.flatten(1))
        return out


def to_network(model: NmnistIF) -> es.Network:
    """The trained weights as an eventsim network (float64)."""
    w = lambda m: m.weight.detach().double().numpy()
    return es.Network((2, 34, 34), [
        es.Conv2d(w(model.conv1), stride=2, padding=2), es.IF(threshold=THETA),
        es.Conv2d(w(model.conv2), stride=2, padding=1), es.IF(threshold=THETA),
        es.Flatten(), es.Linear(w(model.fc)), es.Readout()],
        metadata={"name": "nmnist-if", "dt_us": DT_US, "steps": STEPS,
                  "trained_on": "N-MNIST 1000 training recordings (../shared/data/nmnist)",
                  "script": "models/nmnist/train_nmnist.py"})


def load_split(root: Path, split: str):
    data = LocalNMNIST(root, split)
    frames = np.stack([events_to_steps(data[i][0], (2, 34, 34), DT_US, STEPS).astype(np.uint8)
                       for i in range(len(data))])
    return torch.from_numpy(frames), torch.from_numpy(data.labels.copy())


def accuracy(model, frames, labels, batch=100):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            out = model(frames[i:i + batch].float())
            correct += int((out.argmax(1) == labels[i:i + batch]).sum())
    return correct / len(labels)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE.parents[1].parent / "shared" / "data" / "nmnist"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "nmnist_if.npz"))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    t0 = time.time()
    x_train, y_train = load_split(Path(args.data), "train")
    x_test, y_test = load_split(Path(args.data), "test")
    print(f"loaded {len(y_train)} train / {len(y_test)} test recordings in {time.time() - t0:.1f} s", file=sys.stderr)
    model = NmnistIF()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(y_train), generator=gen)
        total = 0.0
        for i in range(0, len(perm), 25):
            idx = perm[i:i + 25]
            out = model(x_train[idx].float())
            loss = F.cross_entropy(out / STEPS * 4, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        print(f"epoch {epoch + 1}: loss {total / len(perm):.3f} test acc {accuracy(model, x_test, y_test):.3f} "
              f"({time.time() - t0:.0f} s)", file=sys.stderr)
    acc_torch = accuracy(model, x_test, y_test)
    net = to_network(model)
    es.save(net, args.out)
    card = {"torch_test_accuracy": acc_torch, "epochs": args.epochs, "seed": args.seed,
            "train_samples": len(y_train), "test_samples": len(y_test)}
    Path(args.out).with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"saved {args.out}: PyTorch test accuracy {acc_torch:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
