"""Train the four non-shipped networks of the peer comparison (writes ``weights.npz`` beside this file).

Usage::

    python benchmarks/peers/train_peer_nets.py [--epochs 8] [--seed 0]

Each network (``pool_avg``, ``pool_max``, ``pool_sum``, ``mlp``; see ``peerkit/cases.py``) is
trained with surrogate gradients (BPTT, fast-sigmoid surrogate, Adam 2e-3, cosine schedule, batch
25) on the 1000 training recordings of ``../shared/data/nmnist`` binned into 34 steps of 10 ms, with
the neuron eventsim runs: IF, θ = 1, spike when ``v > θ``, subtract reset, summed linear readout.
Every weight tensor carries a fixed random mask that zeroes half of its entries, so the trained
networks have exact zeros and the ``"all"`` and ``"nonzero"`` synop conventions differ. Weights
are stored as float32 (exactly representable in the float64 that every simulator then uses).
One CPU thread, deterministic for a seed; about 12 minutes for all four.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peerkit.data import STEPS, load_frames, nmnist_root  # noqa: E402

WEIGHTS = HERE / "weights.npz"
THETA = 1.0


class _Spike(torch.autograd.Function):
    """Heaviside ``u > 0`` forward, fast-sigmoid derivative ``1 / (1 + 5|u|)²`` backward."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad / (1.0 + 5.0 * u.abs()) ** 2


def _pool(kind: str):
    if kind == "avg":
        return lambda s: F.avg_pool2d(s, 2)
    if kind == "max":
        return lambda s: F.max_pool2d(s, 2)
    return lambda s: F.avg_pool2d(s, 2, divisor_override=1)     # sum pooling


class MaskedIFNet(torch.nn.Module):
    """Weighted layers with fixed 0/1 masks, IF populations after all but the last; summed readout.

    ``spec`` is a list of ``("conv", out, in, k, padding)``, ``("linear", out, in)``,
    ``("pool", kind)`` and ``("flatten",)`` entries; an IF population follows every weighted layer
    except the last.
    """

    def __init__(self, spec, seed: int):
        super().__init__()
        self.spec = spec
        rng = np.random.default_rng(seed)
        self.weights = torch.nn.ParameterList()
        self.masks = []
        for item in spec:
            if item[0] in ("conv", "linear"):
                shape = (item[1], item[2], item[3], item[3]) if item[0] == "conv" else (item[1], item[2])
                fan_in = int(np.prod(shape[1:]))
                w = torch.empty(shape).uniform_(-1, 1) * (3.0 / fan_in) ** 0.5
                mask = np.zeros(int(np.prod(shape)), dtype=np.float32)
                mask[rng.permutation(mask.size)[: mask.size // 2]] = 1.0
                self.weights.append(torch.nn.Parameter(w))
                self.masks.append(torch.from_numpy(mask.reshape(shape)))

    def forward(self, frames):                     # (B, T, 2, 34, 34) event counts
        n_weighted = len(self.masks)
        v = [None] * n_weighted
        out = 0
        for k in range(frames.shape[1]):
            x = frames[:, k]
            j = 0
            for item in self.spec:
                if item[0] in ("conv", "linear"):
                    w = self.weights[j] * self.masks[j]
                    x = F.conv2d(x, w, padding=item[4]) if item[0] == "conv" else F.linear(x, w)
                    if j < n_weighted - 1:
                        v[j] = x if v[j] is None else v[j] + x
                        x = _Spike.apply(v[j] - THETA)
                        v[j] = v[j] - THETA * x
                    j += 1
                elif item[0] == "pool":
                    x = _pool(item[1])(x)
                else:
                    x = x.flatten(1)
            out = out + x
        return out

    def exported(self) -> list[np.ndarray]:
        """Masked weights as float32 arrays, in layer order."""
        return [(w * m).detach().numpy().astype(np.float32) for w, m in zip(self.weights, self.masks)]


def specs() -> dict:
    """The architectures of ``peerkit.cases`` (weights only; neurons are implied)."""
    pool = lambda kind: [("conv", 8, 2, 3, 1), ("pool", kind), ("conv", 16, 8, 3, 1), ("pool", kind),
                         ("flatten",), ("linear", 10, 1024)]
    return {"pool_avg": pool("avg"), "pool_max": pool("max"), "pool_sum": pool("sum"),
            "mlp": [("flatten",), ("linear", 64, 2312), ("linear", 10, 64)]}


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x.float()).argmax(1) == y).float().mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="train only these networks")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    tr, ytr = load_frames(10_000, nmnist_root(), "train")
    te, yte = load_frames(10_000, nmnist_root(), "test")
    x_tr, y_tr = torch.from_numpy(np.stack(tr).astype(np.float32)), torch.from_numpy(ytr)
    x_te, y_te = torch.from_numpy(np.stack(te).astype(np.float32)), torch.from_numpy(yte)
    stored = dict(np.load(WEIGHTS)) if WEIGHTS.exists() else {}
    card = json.loads(WEIGHTS.with_suffix(".json").read_text()) if WEIGHTS.with_suffix(".json").exists() else {}
    for name, spec in specs().items():
        if args.only and name not in args.only:
            continue
        torch.manual_seed(args.seed)
        model = MaskedIFNet(spec, args.seed)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
        gen = torch.Generator().manual_seed(args.seed)
        for epoch in range(args.epochs):
            perm = torch.randperm(len(y_tr), generator=gen)
            for i in range(0, len(perm), 25):
                idx = perm[i:i + 25]
                loss = F.cross_entropy(model(x_tr[idx]) / STEPS * 4, y_tr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
            print(f"{name} epoch {epoch + 1}: test acc {_accuracy(model, x_te, y_te):.2f} "
                  f"({time.time() - t0:.0f} s)", file=sys.stderr)
        for j, w in enumerate(model.exported()):
            stored[f"{name}/{j}"] = w
        card[name] = {"torch_test_accuracy": round(_accuracy(model, x_te, y_te), 4), "epochs": args.epochs,
                      "seed": args.seed, "zero_fraction": 0.5, "train_samples": len(y_tr)}
    np.savez_compressed(WEIGHTS, **stored)
    WEIGHTS.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size / 1e3:.0f} kB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
