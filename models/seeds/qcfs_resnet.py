"""QCFS ResNet reference models in the key layouts of github.com/putshua/ANN_SNN_QCFS (new code:
``<module>.thresh``, the block's clip named ``act``) and github.com/putshua/SNN_conversion_QCFS (old code:
``<module>.up``, named ``relu``).

Written from the public code's semantics (not copied):

* ``BasicBlock``: ``residual_function = Sequential(Conv2d(3×3, stride, bias=False), BatchNorm2d, clip,
  Conv2d(3×3, bias=False), BatchNorm2d)``; ``shortcut = Sequential(Conv2d(1×1, stride, bias=False),
  BatchNorm2d)`` where the stride is not 1 or the width changes, else empty (identity); the block
  returns ``clip(residual_function(x) + shortcut(x))``;
* ``resnet18``/``resnet34``: stem ``conv1 = Sequential(Conv2d(3, 64, 3×3), BN, clip)``, stages
  ``conv2_x`` … ``conv5_x`` of widths 64, 128, 256, 512 ([2, 2, 2, 2] / [3, 4, 6, 3] blocks, stride 1
  for the first stage and 2 for the others), ``AdaptiveAvgPool2d((1, 1))``, ``fc``; ``resnet20``: the
  CIFAR form with widths 16, 32, 64 and [3, 3, 3] blocks. ``width=`` scales the widths (tests use
  small ones for speed; ``width=1`` is the published size);
* SNN mode: the image repeated ``T`` times as a merged ``(T·B, ...)`` batch; each clip is an IF neuron
  with membrane starting at ``θ/2``, ``m ← m + x_t``, spike ``θ`` where ``m − θ ≥ 0``, ``m ← m − spike``;
* saved like ``main_train.py``: ``torch.save(model.state_dict(), path)``.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class Clip(nn.Module):
    """QCFS activation (``T = 0``) / IF neuron (``T > 0``); its clip is a parameter named ``param``."""

    def __init__(self, thresh: float = 8.0, levels: int = 8, param: str = "thresh"):
        super().__init__()
        self.param = param
        self.register_parameter(param, nn.Parameter(torch.tensor([float(thresh)])))
        self.levels, self.T, self.v_init, self.spikes = levels, 0, 0.5, None

    def forward(self, x):
        lam = getattr(self, self.param)
        if self.T == 0:
            return torch.floor(torch.clamp(x / lam, 0, 1) * self.levels + 0.5) / self.levels * lam
        theta = lam.data
        seq = x.view((self.T, x.shape[0] // self.T) + tuple(x.shape[1:]))
        mem, out = self.v_init * theta, []
        for t in range(self.T):
            mem = mem + seq[t]
            spike = (mem - theta >= 0).to(x.dtype) * theta
            mem = mem - spike
            out.append(spike)
        out = torch.stack(out)
        self.spikes = (out / theta).detach()
        return out.flatten(0, 1)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, param: str, site: str):
        super().__init__()
        self.residual_function = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            Clip(param=param), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        self.site = site
        setattr(self, site, Clip(param=param))

    def forward(self, x):
        return getattr(self, self.site)(self.residual_function(x) + self.shortcut(x))


class QcfsResNet(nn.Module):
    """``blocks`` per stage, stage ``widths``; ``old=True`` gives the old repository's names."""

    def __init__(self, blocks, widths, num_classes: int = 10, in_channels: int = 3, old: bool = False):
        super().__init__()
        param, site = ("up", "relu") if old else ("thresh", "act")
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                   nn.BatchNorm2d(widths[0]), Clip(param=param))
        c = widths[0]
        for s, (n, w) in enumerate(zip(blocks, widths)):
            layers = []
            for b in range(n):
                layers.append(BasicBlock(c, w, 2 if s > 0 and b == 0 else 1, param, site))
                c = w
            setattr(self, f"conv{s + 2}_x", nn.Sequential(*layers))
        self.n_stages = len(blocks)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        for s in range(self.n_stages):
            out = getattr(self, f"conv{s + 2}_x")(out)
        return self.fc(self.avg_pool(out).flatten(1))

    def simulate(self, x, T: int, v_init: float = 0.5):
        return simulate(self, x, T, v_init)


def simulate(model: nn.Module, x, T: int, v_init: float = 0.5):
    """SNN mode: ``(logits (T, B, classes) summed over steps, {clip name: spikes (T, B, ...)})``."""
    clips = [m for m in model.modules() if isinstance(m, Clip)]
    for m in clips:
        m.T, m.v_init = T, v_init
    try:
        out = model(x.unsqueeze(0).repeat((T,) + (1,) * x.dim()).flatten(0, 1)).view((T, x.shape[0], -1))
        spikes = {name: m.spikes for name, m in model.named_modules() if isinstance(m, Clip)}
    finally:
        for m in clips:
            m.T = 0
    return out.cumsum(0), spikes


class VGGwoBN(nn.Module):
    """The new code's ``vgg16_wobn`` in small: blocks ``Conv2d(3×3, padding 1)``, clip, ``Dropout`` per width,
    closed by ``MaxPool2d(2)``; classifier ``Flatten``, ``Linear``, clip, ``Dropout``, ``Linear``."""

    def __init__(self, cfg=((8,), (16,)), in_channels: int = 3, image_size: int = 32, hidden: int = 32,
                 num_classes: int = 10):
        super().__init__()
        c = in_channels
        for k, widths in enumerate(cfg):
            layers = []
            for w in widths:
                layers += [nn.Conv2d(c, w, 3, padding=1), Clip(), nn.Dropout(0.0)]
                c = w
            layers.append(nn.MaxPool2d(2, 2))
            setattr(self, f"layer{k + 1}", nn.Sequential(*layers))
        self.n_blocks = len(cfg)
        size = image_size // 2 ** len(cfg)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c * size * size, hidden), Clip(), nn.Dropout(0.0),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x):
        for k in range(self.n_blocks):
            x = getattr(self, f"layer{k + 1}")(x)
        return self.classifier(x)

    def simulate(self, x, T: int, v_init: float = 0.5):
        return simulate(self, x, T, v_init)


def resnet18(num_classes=10, width=1.0, old=False):
    return QcfsResNet([2, 2, 2, 2], [max(1, int(c * width)) for c in (64, 128, 256, 512)], num_classes, old=old)


def resnet20(num_classes=10, width=1.0, old=False):
    return QcfsResNet([3, 3, 3], [max(1, int(c * width)) for c in (16, 32, 64)], num_classes, old=old)


def resnet34(num_classes=10, width=1.0, old=False):
    return QcfsResNet([3, 4, 6, 3], [max(1, int(c * width)) for c in (64, 128, 256, 512)], num_classes, old=old)


def randomise(model: nn.Module, seed: int = 0, thresh: float = 1.0) -> nn.Module:
    """Give BatchNorm non-trivial running statistics and affine parameters and every clip ``thresh``,
    so that an untrained model spikes at unit-scale rates (stands in for training in the tests)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=gen))
                m.bias.copy_(0.3 * torch.rand(c, generator=gen))
            elif isinstance(m, Clip):
                getattr(m, m.param).fill_(thresh * (0.8 + 0.4 * float(torch.rand(1, generator=gen))))
    return model
