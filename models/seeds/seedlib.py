"""Small PyTorch helpers shared by the seed reference models: spike functions with surrogate
gradients and a minimal training loop. Written for this repository from the papers' equations."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


class SpikeGT(torch.autograd.Function):
    """Heaviside ``x > 0`` forward; piecewise-linear surrogate ``0.3·max(0, 1 − |x|)`` backward
    (Bellec et al. 2018), the surrogate DIET-SNN and BNTT use."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 0.3 * torch.clamp(1.0 - x.abs(), min=0.0)


class Triangle(torch.autograd.Function):
    """Heaviside with a triangular surrogate ``max(0, 1 − |x|)`` (the ZIF of QCFS / snncutoff).
    ``ge=True`` fires on ``x >= 0`` (QCFS), otherwise on ``x > 0`` (snncutoff)."""

    @staticmethod
    def forward(ctx, x, ge: bool):
        ctx.save_for_backward(x)
        return ((x >= 0) if ge else (x > 0)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.clamp(1.0 - x.abs(), min=0.0), None


def fit(model: torch.nn.Module, inputs: np.ndarray, labels: np.ndarray, loss_of: Callable,
        epochs: int, lr: float, batch: int = 32, seed: int = 0, after_step: Callable | None = None,
        optimizer: str = "adam") -> torch.optim.Optimizer:
    """Train ``model`` for ``epochs`` passes over ``inputs`` with ``loss_of(model, x, y)``."""
    gen = torch.Generator().manual_seed(seed)
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    x_all = torch.as_tensor(inputs, dtype=torch.float32)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            out, loss = loss_of(model, x_all[idx], y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(model)
            total += len(idx)
            correct += int((out.argmax(-1) == y_all[idx]).sum())
            loss_sum += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.3f}, train accuracy {correct / total:.3f}")
    return opt


def cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y)


@torch.no_grad()
def accuracy(predict: Callable, inputs: np.ndarray, labels: np.ndarray, batch: int = 100) -> float:
    hits = 0
    for start in range(0, len(inputs), batch):
        out = predict(torch.as_tensor(inputs[start:start + batch], dtype=torch.float32))
        hits += int((out.argmax(-1).numpy() == labels[start:start + batch]).sum())
    return hits / len(inputs)
