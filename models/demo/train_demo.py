"""Train the tiny spiking demo model on the synthetic demo set and export it to eventsim.

    python models/demo/train_demo.py [--epochs 40] [--seed 0] [--out eventsim/data/demo/model.npz]

Model (PyTorch reference, clock-driven, T = 10 steps of dt = 30 ms over [0, 300 ms)):

    input  event counts per step, (2, 34, 34)      eventsim.events.to_frames(..., n_bins=10,
                                                   t_start_us=0, t_stop_us=300_000)
    Conv2d(2 -> 16, kernel 5, stride 3, no bias)   -> (16, 10, 10)
    IF     v <- v + I; s = v > 1; v <- v - s       (subtract reset, v_init 0)
    Flatten -> Linear(1600 -> 10, no bias)
    Readout  Y_T = sum over steps of the Linear output; prediction argmax Y_T

Trained with BPTT and a fast-sigmoid surrogate gradient. torch is used only here.
``build_network`` turns the trained weights into an ``eventsim.Network`` with the same semantics
(``eventsim.simulate(net, events, engine="stepped", dt_us=30_000, steps=10)``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import eventsim as es  # noqa: E402
from eventsim.events import load_demo, to_frames  # noqa: E402

T_STEPS = 10
DT_US = 30_000
THRESHOLD = 1.0
OUT_DEFAULT = ROOT / "eventsim" / "data" / "demo" / "model.npz"


class SpikeFn(torch.autograd.Function):
    """Heaviside ``v > θ`` forward, fast-sigmoid surrogate ``1 / (1 + 10|v − θ|)²`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad / (1.0 + 10.0 * x.abs()) ** 2


class DemoSNN(nn.Module):
    """Conv2d(2, 16, 5, stride 3) → IF → Flatten → Linear(1600, 10) → summed readout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 16, kernel_size=5, stride=3, bias=False)
        self.fc = nn.Linear(16 * 10 * 10, 10, bias=False)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames`` (batch, T, 2, 34, 34) → (readout (batch, 10), hidden spike count)."""
        v = torch.zeros(frames.shape[0], 16, 10, 10, dtype=frames.dtype)
        y = torch.zeros(frames.shape[0], 10, dtype=frames.dtype)
        n_spikes = torch.zeros((), dtype=frames.dtype)
        for t in range(frames.shape[1]):
            v = v + self.conv(frames[:, t])
            s = SpikeFn.apply(v - THRESHOLD)
            v = v - THRESHOLD * s
            y = y + self.fc(s.flatten(1))
            n_spikes = n_spikes + s.sum()
        return y, n_spikes


def encode(split: str) -> tuple[np.ndarray, np.ndarray]:
    """All samples of a demo split as frames (n, T, 2, 34, 34) and labels (n,)."""
    demo = load_demo(split)
    x = np.stack([to_frames(ev, (2, 34, 34), n_bins=T_STEPS, t_start_us=0, t_stop_us=T_STEPS * DT_US)
                  for ev, _ in demo])
    return x.astype(np.float32), demo.labels.astype(np.int64)


def build_network(model: DemoSNN) -> es.Network:
    """The eventsim IR of the trained model (same weights, same step semantics)."""
    w1 = model.conv.weight.detach().double().numpy()
    w2 = model.fc.weight.detach().double().numpy()
    return es.Network(input_shape=(2, 34, 34), layers=[
        es.Conv2d(w1, stride=3, name="conv"), es.IF(threshold=THRESHOLD, reset="subtract", name="if1"),
        es.Flatten(), es.Linear(w2, name="fc"), es.Readout(name="readout")],
        metadata={"name": "eventsim-demo", "dt_us": DT_US, "steps": T_STEPS,
                  "trained_on": "eventsim demo set, train split (300 synthetic recordings)",
                  "script": "models/demo/train_demo.py"})


def accuracy(model: DemoSNN, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        out, _ = model(torch.from_numpy(x))
    return float((out.argmax(1).numpy() == y).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="train the eventsim demo SNN")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)  # torch has no per-call generator for nn.init; seeded once here
    torch.set_num_threads(2)
    start = time.time()
    x_tr, y_tr = encode("train")
    x_te, y_te = encode("test")
    model = DemoSNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), 25):
            idx = perm[i:i + 25]
            out, _ = model(xt[idx])
            loss = nn.functional.cross_entropy(out / T_STEPS, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {total / len(xt):.3f}  train acc {accuracy(model, x_tr, y_tr):.3f}  "
                  f"test acc {accuracy(model, x_te, y_te):.3f}", flush=True)
    model.eval()
    result = {"train_accuracy": accuracy(model, x_tr, y_tr), "test_accuracy": accuracy(model, x_te, y_te),
              "epochs": args.epochs, "seed": args.seed, "t_steps": T_STEPS, "dt_us": DT_US,
              "train_seconds": round(time.time() - start, 1), "torch": torch.__version__}
    net = build_network(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), Path(__file__).parent / "demo_snn.pt")  # torch reference weights
    try:
        es.save(net, args.out)
        result["saved"] = str(args.out)
    except (ImportError, AttributeError, NotImplementedError, ValueError) as exc:
        result["saved"] = f"eventsim.save unavailable ({exc}); state_dict only"
    (Path(__file__).parent / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
