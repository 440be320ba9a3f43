"""Check the QCFS importer against the method's own public code, not our rewrite of it.

Instantiates ``resnet20`` from a checkout of putshua/ANN_SNN_QCFS (its ``Models`` package, as
published), randomises BatchNorm statistics and thresholds, saves the state dict as its
``main_train.py`` does (``torch.save(model.state_dict(), ...)``), imports the file with
``es.load`` and compares eventsim's stepped engine and async batch mode with the public model's
own SNN forward (``model.set_T(T)``) step by step, in float64.

    python benchmarks/public_qcfs_resnet.py --repo /path/to/ANN_SNN_QCFS [--steps 16]

The public ``Models/layer.py`` imports ``cv2`` and ``sympy`` without using them; stand-ins are
put in ``sys.modules`` so that neither has to be installed. Not part of the test suite (the
public code is not shipped here).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

import eventsim as es


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, type=Path, help="checkout of putshua/ANN_SNN_QCFS")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name in ("cv2", "sympy"):
        stand_in = types.ModuleType(name)
        stand_in.mean = stand_in.print_rcode = None
        sys.modules.setdefault(name, stand_in)
    sys.path.insert(0, str(args.repo))
    from Models.ResNet import resnet20     # the public class, as published

    torch.manual_seed(args.seed)
    model = resnet20(num_classes=10)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
        if hasattr(mod, "thresh"):
            mod.thresh.data.uniform_(0.5, 2.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet20.pth"
        torch.save(model.state_dict(), path)
        net = es.load(path, input_shape=(3, 32, 32))
    model = model.double().eval()
    model.set_T(args.steps)
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        theirs = np.cumsum(model(x.clone())[:, 0].numpy(), axis=0)       # accumulated, per step
    stepped = es.simulate(net, x[0].numpy(), steps=args.steps, input_kind="analog")
    batch = es.simulate(net, x[0].numpy(), engine="async", simultaneous="batch", dt_us=1000, steps=args.steps,
                        input_kind="analog")
    branches = sum(isinstance(layer, es.Branch) for layer in net.layers)
    d_stepped = float(np.abs(stepped.logits - theirs).max())
    d_batch = float(np.abs(batch.logits - theirs).max())
    same_spikes = bool(np.array_equal(stepped.spikes_per_row, batch.spikes_per_row))
    print(f"public QCFS resnet20 -> {len(net.layers)} layers ({branches} downsampling shortcuts), T={args.steps}")
    print(f"max |logits - public model| per step: stepped {d_stepped:.3g}, async batch {d_batch:.3g}; "
          f"batch spikes = stepped spikes: {same_spikes}; spikes {int(stepped.spikes_per_row.sum())}")
    return 0 if d_stepped < 1e-9 and d_batch < 1e-9 and same_spikes else 1


if __name__ == "__main__":
    sys.exit(main())
