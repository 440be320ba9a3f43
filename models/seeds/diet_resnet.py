"""DIET-SNN ResNet reference (github.com/nitin-rathi/DIET-SNN ``self_models/resnet_spiking.py``,
``RESNET_SNN_STDB``), written from the public code's semantics (not copied):

* ``pre_process``: three ``Conv2d(3×3, bias=False)`` (3→64→64→64) each followed by ReLU (its spikes), the
  first two by Dropout, then ``AvgPool2d(2)``; ``layer1`` … ``layer4`` of BasicBlocks
  (``residual = Sequential(Conv2d(stride), ReLU, Dropout, Conv2d)``, ``identity = Sequential(Conv2d(1×1,
  stride))`` where the shape changes), widths 64, 128, 256, 512, stride 2 for the first block of layers 2–4;
  ``classifier = Sequential(Linear(512·2·2, labels, bias=False))``; per spiking layer a threshold
  ``threshold.t<n>`` and leak ``leak.l<n>`` (n = 0, 3, 6, then 9, 10, 11, … two per block);
* one step: ``u ← λu + I``; ``mem_thr = u/θ − 1``; ``u ← u − θ·(mem_thr > 0)``; spike ``mem_thr > 0``; a
  block's second neuron integrates ``conv₃(s₁) + identity(s_in)`` (``s_in`` itself without identity
  conv); the classifier accumulates ``Σ_t W·s``; the image is fed every step;
* saved like ``snn.py``: ``torch.save({"state_dict": nn.DataParallel(model).state_dict(), "thresholds": …,
  "leak": …, "timesteps": T, "accuracy": …, "epoch": …, "optimizer": …, "activation": "Linear"})``.

``blocks`` (public: resnet12 ``[1, 1, 1, 1]``, resnet20 ``[2, 2, 2, 2]``, resnet34 ``[3, 4, 6, 3]``)
and ``width`` (scales the channel counts) select the size.
"""
from __future__ import annotations

import torch
import torch.nn as nn

CONFIGS = {"resnet12": [1, 1, 1, 1], "resnet20": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.ReLU(),
                                      nn.Dropout(0.2), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False))
        self.identity = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.identity = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False))


class DietResNet(nn.Module):
    def __init__(self, blocks, width: float = 1.0, labels: int = 10, image_size: int = 32, threshold=1.0, leak=1.0):
        super().__init__()
        w = [max(1, int(c * width)) for c in (64, 128, 256, 512)]
        self.pre_process = nn.Sequential(
            nn.Conv2d(3, w[0], 3, padding=1, bias=False), nn.ReLU(), nn.Dropout(0.2),
            nn.Conv2d(w[0], w[0], 3, padding=1, bias=False), nn.ReLU(), nn.Dropout(0.2),
            nn.Conv2d(w[0], w[0], 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2))
        c, size = w[0], image_size // 2
        for k, (n, width_k) in enumerate(zip(blocks, w)):
            layers = []
            for b in range(n):
                stride = 2 if k > 0 and b == 0 else 1
                layers.append(BasicBlock(c, width_k, stride))
                size = (size - 1) // stride + 1
                c = width_k
            setattr(self, f"layer{k + 1}", nn.Sequential(*layers))
        self.n_layers = len(blocks)
        self.classifier = nn.Sequential(nn.Linear(c * size * size, labels, bias=False))
        thr, lk = {}, {}
        for n in self.sites():
            thr[f"t{n}"] = nn.Parameter(torch.tensor(float(threshold)))
            lk[f"l{n}"] = nn.Parameter(torch.tensor(float(leak)))
        self.threshold, self.leak = nn.ParameterDict(thr), nn.ParameterDict(lk)

    def blocks(self):
        for k in range(self.n_layers):
            for b, block in enumerate(getattr(self, f"layer{k + 1}")):
                yield f"layer{k + 1}.{b}", block

    def sites(self) -> list[int]:
        return [0, 3, 6] + list(range(9, 9 + 2 * sum(1 for _ in self.blocks())))

    def forward(self, x, timesteps: int):
        """``(running sums of the output (T, B, labels), {spiking layer name: spikes (T, B, ...)})``."""
        mem, out, logits, spikes = {}, 0.0, [], {}

        def lif(n, current, name):
            theta, lam = self.threshold[f"t{n}"], self.leak[f"l{n}"]
            u = lam * mem.get(n, torch.zeros_like(current)) + current
            mem_thr = u / theta - 1.0
            mem[n] = u - theta * (mem_thr > 0).to(u.dtype)
            s = (mem_thr > 0).to(u.dtype)
            spikes.setdefault(name, []).append(s)
            return s

        for _ in range(timesteps):
            s = x
            for i in (0, 3, 6):                   # dropout is the identity in evaluation
                s = lif(i, self.pre_process[i](s), f"pre_process.{i + 1}")
            s = self.pre_process[8](s)
            pos = 9
            for name, block in self.blocks():
                s1 = lif(pos, block.residual[0](s), f"{name}.residual.1")
                shortcut = block.identity(s) if len(block.identity) else s
                s = lif(pos + 1, block.residual[3](s1) + shortcut, f"{name}.out")
                pos += 2
            out = out + self.classifier[0](s.reshape(s.shape[0], -1))
            logits.append(out)
        return torch.stack(logits), {k: torch.stack(v) for k, v in spikes.items()}


def save_like_snn_py(model: DietResNet, path, timesteps: int) -> None:
    parallel = nn.DataParallel(model)
    state = {"accuracy": 0.5, "epoch": 1, "state_dict": parallel.state_dict(), "optimizer": {"lr": 1e-4},
             "thresholds": [float(model.threshold[f"t{n}"].detach()) for n in model.sites()], "timesteps": timesteps,
             "leak": [float(model.leak[f"l{n}"].detach()) for n in model.sites()], "activation": "Linear"}
    torch.save(state, path)


def randomise(model: DietResNet, seed: int = 0) -> DietResNet:
    """Thresholds and leaks as after DIET training (θ ~ 0.3–0.6, λ ~ 0.8–1) so an untrained model spikes."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.threshold.values():
            p.fill_(0.3 + 0.3 * float(torch.rand(1, generator=gen)))
        for p in model.leak.values():
            p.fill_(0.8 + 0.2 * float(torch.rand(1, generator=gen)))
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(2.0)
    return model
