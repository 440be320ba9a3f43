"""snncutoff's CIFAR models (github.com/Dengyu-Wu/snncutoff: ``models/VGG.py`` ``VGG``, ``models/ResNet.py``
``get_resnet``) in the form its SNN training saves, written from the public code's semantics (not copied):

* ReLUs become snncutoff's LIF layer (``v = v_prev + x_t``; spike ``v − 1 > 0``; hard reset;
  ``v_prev = 0.5·v``) over a merged ``(T·B, ...)`` input; every Conv2d/Linear/pool/Flatten is wrapped so
  that a ``(T, B, ...)`` sequence is merged for it (the wrapper holds it as ``.module``); the model's
  children go into ``Sequential(*children, output wrapper)``: keys ``0.0.module.weight``, ``5.7.module.bias``;
* ``VGG``: blocks ``layer1`` … ``layer5`` of ``Conv2d(3×3, padding 1)``, ``BatchNorm2d``, LIF, ``Dropout`` per
  width and ``AvgPool2d(2)`` (``MaxPool2d`` with ``pool="max"``, as ``VGG_nobias``), classifier ``Flatten``,
  ``Linear(512, 4096)``, LIF, ``Dropout``, ``Linear(4096, 4096)``, LIF, ``Dropout``, ``Linear``;
* ``ResNet`` (``input_size=32``): stem ``Conv2d(3, 64, 3×3, bias=False)``, BN, LIF; BasicBlocks with the
  LIF ``relu`` after ``residual_function(x) + shortcut(x)``; ``AdaptiveAvgPool2d``, ``Flatten``, ``fc``;
* input: the image repeated ``T`` times (``snncase``: ``x.unsqueeze(1).repeat(1, T, ...)``, time first);
* saved like ``scripts/training.py``: ``torch.save(model.state_dict(), path)``.

``width`` scales every channel count (``width=1`` is the published size).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aoi import LIFLayer, Post, Pre  # noqa: E402

VGG16 = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


def _w(c: int, width: float) -> int:
    return max(1, int(c * width))


def vgg16(T: int, width: float = 1.0, num_classes: int = 10, pool: str = "avg") -> nn.Sequential:
    pool_cls = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
    blocks, c = [], 3
    for widths in VGG16:
        layers = []
        for x in widths:
            x = _w(x, width)
            layers += [Pre(nn.Conv2d(c, x, 3, padding=1), T), nn.BatchNorm2d(x), LIFLayer(T), nn.Dropout(0.0)]
            c = x
        layers.append(Post(Pre(pool_cls(2, 2), T), T))
        blocks.append(nn.Sequential(*layers))
    hidden = _w(4096, width)
    classifier = nn.Sequential(Post(Pre(nn.Flatten(), T), T), Pre(nn.Linear(c, hidden), T), LIFLayer(T),
                               nn.Dropout(0.0), Pre(nn.Linear(hidden, hidden), T), LIFLayer(T), nn.Dropout(0.0),
                               Pre(nn.Linear(hidden, num_classes), T))
    return nn.Sequential(*blocks, classifier, Post(None, T))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, T: int):
        super().__init__()
        self.residual_function = nn.Sequential(
            Pre(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), T), nn.BatchNorm2d(c_out),
            LIFLayer(T), Pre(nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), T), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Sequential()
        self.shortcut_true = stride != 1 or c_in != c_out
        if self.shortcut_true:
            self.shortcut = nn.Sequential(Pre(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), T),
                                          nn.BatchNorm2d(c_out))
        self.relu = LIFLayer(T)

    def forward(self, x):                       # x: (T, B, C, H, W) spikes
        out = self.residual_function(x)
        shortcut = self.shortcut(x) if self.shortcut_true else x.flatten(0, 1)
        return self.relu(out + shortcut)


def resnet(blocks, T: int, width: float = 1.0, num_classes: int = 10) -> nn.Sequential:
    c = _w(64, width)
    children = [nn.Sequential(Pre(nn.Conv2d(3, c, 3, padding=1, bias=False), T), nn.BatchNorm2d(c), LIFLayer(T))]
    for s, (n, w) in enumerate(zip(blocks, (64, 128, 256, 512))):
        w = _w(w, width)
        layers = []
        for b in range(n):
            layers.append(BasicBlock(c, w, 2 if s > 0 and b == 0 else 1, T))
            c = w
        children.append(nn.Sequential(*layers))
    children += [Post(Pre(nn.AdaptiveAvgPool2d((1, 1)), T), T), Post(Pre(nn.Flatten(1, -1), T), T),
                 Pre(nn.Linear(c, num_classes), T), Post(None, T)]
    return nn.Sequential(*children)


def resnet18(T: int, width: float = 1.0, num_classes: int = 10) -> nn.Sequential:
    return resnet([2, 2, 2, 2], T, width, num_classes)


def resnet34(T: int, width: float = 1.0, num_classes: int = 10) -> nn.Sequential:
    return resnet([3, 4, 6, 3], T, width, num_classes)


def run(model: nn.Sequential, images: torch.Tensor, T: int):
    """``images`` (B, C, H, W) -> (accumulated logits (T, B, classes), {LIF name: spikes (T, B, ...)})."""
    x = images.unsqueeze(1).repeat(1, T, 1, 1, 1).transpose(0, 1)
    out = model(x)
    spikes = {name: m.spikes for name, m in model.named_modules() if isinstance(m, LIFLayer)}
    return out.cumsum(0), spikes


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics so that an untrained model spikes (stands in for training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.weight.copy_(0.8 + 0.8 * torch.rand(c, generator=gen))
                m.bias.copy_(0.4 + 0.4 * torch.rand(c, generator=gen))
            elif isinstance(m, nn.Linear):
                m.weight.mul_(6.0)
                m.bias.fill_(0.3)
    return model
