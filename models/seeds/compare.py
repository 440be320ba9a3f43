"""Compare an imported network run by eventsim's stepped engine with a PyTorch reference run.

``compare(net, inputs, ref_spikes, ref_logits, **simulate_options)`` simulates every sample and
returns a :class:`Comparison`: which (sample, layer) rasters differ, the largest logit difference and
both predictions. Used by ``tests/test_seed_*.py`` and by the model cards' float32 notes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import eventsim as es


@dataclass
class Comparison:
    samples: int = 0
    layers: tuple = ()
    spikes: int = 0
    mismatches: list = field(default_factory=list)      # (sample, layer, differing entries)
    max_logit_diff: float = 0.0
    max_logit_scale: float = 0.0
    predictions: list = field(default_factory=list)     # (eventsim, torch) per sample

    @property
    def same_predictions(self) -> bool:
        return all(a == b for a, b in self.predictions)

    def summary(self) -> str:
        return (f"{self.samples} samples, layers {list(self.layers)}, {self.spikes} spikes, "
                f"{len(self.mismatches)} differing rasters, max |Δlogit| {self.max_logit_diff:.3g} "
                f"(logits up to {self.max_logit_scale:.3g}), predictions equal: {self.same_predictions}")


def compare(net: es.Network, inputs, ref_spikes: dict, ref_logits: np.ndarray, **options) -> Comparison:
    """``inputs[b]`` is fed to ``es.simulate(net, inputs[b], record="spikes", **options)``;
    ``ref_spikes[name]`` is ``(T, B, ...)`` and ``ref_logits`` ``(T, B, classes)`` from PyTorch."""
    result = Comparison(samples=len(inputs), layers=tuple(sorted(ref_spikes)))
    for b in range(len(inputs)):
        res = es.simulate(net, inputs[b], record="spikes", **options)
        if set(res.rasters) != set(ref_spikes):
            raise AssertionError(f"spiking layers differ: eventsim {sorted(res.rasters)}, torch {sorted(ref_spikes)}")
        for name, ref in ref_spikes.items():
            want = np.asarray(ref[:, b])
            got = res.rasters[name]
            result.spikes += int(want.sum())
            if got.shape != want.shape or not np.array_equal(got, want):
                result.mismatches.append((b, name, int(np.sum(got != want)) if got.shape == want.shape else -1))
        want_logits = np.asarray(ref_logits[:, b], dtype=np.float64)
        result.max_logit_diff = max(result.max_logit_diff, float(np.max(np.abs(res.logits - want_logits))))
        result.max_logit_scale = max(result.max_logit_scale, float(np.max(np.abs(want_logits))))
        result.predictions.append((res.prediction, int(np.argmax(want_logits[-1]))))
    return result


def main(n_samples: int = 50) -> None:
    """Print the float64 and float32 comparison of all four seed models on N-MNIST test samples."""
    import sys
    from pathlib import Path

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import aoi
    import bntt
    import diet
    import nmnist_data
    import qcfs

    samples = nmnist_data.load_samples(split="test", n=n_samples)
    images, _ = nmnist_data.images(samples)
    frames, _ = nmnist_data.frames(samples, aoi.TIMESTEPS)
    poisson = bntt.encode(images, seeds=range(1000, 1000 + n_samples))
    shape = (2, 34, 34)
    for dtype in (torch.float64, torch.float32):
        with torch.no_grad():
            model, steps = diet.load_reference(dtype=dtype)
            _, rec = model(torch.as_tensor(images, dtype=dtype), steps, record=True)
            net = es.load(diet.CHECKPOINT, cfg=diet.CFG, input_shape=shape)
            runs = {"diet": (net, images, rec["spikes"], rec["logits"], dict(steps=steps, input_kind="analog"))}
            model = qcfs.load_reference(dtype=dtype)
            logits, spikes = model.simulate(torch.as_tensor(images, dtype=dtype), qcfs.TIMESTEPS)
            runs["qcfs"] = (es.load(qcfs.CHECKPOINT, input_shape=shape, pool="avg"), images, spikes, logits,
                            dict(steps=qcfs.TIMESTEPS, input_kind="analog"))
            logits, spikes = aoi.run(aoi.load_reference(dtype=dtype), torch.as_tensor(frames, dtype=dtype))
            runs["aoi"] = (es.load(aoi.CHECKPOINT, input_shape=shape, pool="avg"), frames, spikes, logits,
                           dict(input_kind="events"))
            _, rec = bntt.load_reference(dtype=dtype)(torch.as_tensor(poisson, dtype=dtype).transpose(0, 1),
                                                      record=True)
            runs["bntt"] = (es.load(bntt.CHECKPOINT, input_shape=shape), poisson, rec["spikes"], rec["logits"],
                            dict(input_kind="events"))
        for name, (net, inputs, spikes, logits, options) in runs.items():
            result = compare(net, inputs, {k: v.double().numpy() for k, v in spikes.items()},
                             logits.double().numpy(), **options)
            print(f"{name:5s} torch {str(dtype).split('.')[1]}: {result.summary()}")


if __name__ == "__main__":
    main()
