"""Minimal reproducing cases: one spike pattern per counting rule, counted by every tool.

Each case is a network of a few neurons and a one-step input chosen so that one counting rule
decides the result. Run ``python benchmarks/peers/repro_counts.py`` to print the table.

=================  ==========================================  =================================
case               input                                       rule it isolates
=================  ==========================================  =================================
``multi_event``    2 events in one pixel in one bin            NeuroBench binarises (1 op per
                   (corner of a 3×3 input, conv k3 p1)         synapse); SpikingJelly counts 0
``avgpool_merge``  2 spikes in one 2×2 average-pool window     NeuroBench: 1 op (one non-zero
                   → linear                                    pooled value); SpikingJelly: 0
``sumpool_merge``  the same with sum pooling                   as ``avgpool_merge``
``maxpool_merge``  the same with spike max-pooling             everyone: 1 event per window
``padding_zeros``  1 spike at a corner, conv k3 p1 with zeros  padding never counts; zero
                                                               weights count only under "all"
``binary_weights`` ``multi_event`` with weights 0/1            SpikingJelly takes a 0/1 weight
``binary_weights_1`` ``padding_zeros`` with weights 0/1        tensor for the spikes (see below)
=================  ==========================================  =================================

All weights are 0.6 (or 0) except in the two ``binary_weights`` cases: SpikingJelly's
``SynOpCounter`` tests *both* operands of a convolution or matmul for being binary, so a 0/1
weight tensor changes its rule: binary input and weights count ``Σ x·[w ≠ 0]`` (non-zero
weights only), a non-binary input with 0/1 weights counts ``nnz(w) × output positions``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import eventsim as es

from .cases import with_compare
from .ours import run_eventsim

__all__ = ["ReproCase", "repro_cases", "count_all"]


@dataclass(frozen=True)
class ReproCase:
    """A tiny network, a one-step input and the weighted layer whose count the case is about."""

    name: str
    input_desc: str
    network: es.Network
    frames: np.ndarray
    layer: str


def _corner_conv_weight(value: float = 0.6) -> np.ndarray:
    w = np.full((2, 1, 3, 3), value)
    w[0, 0, 1, 1] = 0.0        # a tap the corner pixel reaches (centre of the kernel)
    w[1, 0, 2, 2] = 0.0        # another one
    w[0, 0, 0, 0] = 0.0        # a tap the corner pixel never reaches (it would need padding)
    return w


def _pool_case(name: str, pool: type) -> ReproCase:
    net = es.Network((1, 2, 2), [es.Conv2d(np.full((1, 1, 1, 1), 2.0)), es.IF(threshold=1.0), pool(2),
                                 es.Flatten(), es.Linear(np.full((1, 1), 0.6)), es.Readout()])
    frames = np.zeros((1, 1, 2, 2), dtype=np.int64)
    frames[0, 0, 0, 0] = frames[0, 0, 1, 1] = 1
    return ReproCase(name, f"2 spikes in one 2×2 {pool.__name__} window", net, frames, "4.Linear")


def repro_cases() -> list[ReproCase]:
    """The cases of the module docstring, in table order."""
    conv = lambda value=0.6: es.Network((1, 3, 3), [
        es.Conv2d(_corner_conv_weight(value), padding=1), es.IF(threshold=1.0),
        es.Flatten(), es.Linear(np.full((1, 18), 0.6)), es.Readout()])
    multi = np.zeros((1, 1, 3, 3), dtype=np.int64)
    multi[0, 0, 0, 0] = 2
    single = np.zeros((1, 1, 3, 3), dtype=np.int64)
    single[0, 0, 0, 0] = 1
    return [
        ReproCase("multi_event", "2 events at pixel (0, 0) in one bin; conv 1→2 k3 p1", conv(), multi, "0.Conv2d"),
        _pool_case("avgpool_merge", es.AvgPool2d),
        _pool_case("sumpool_merge", es.SumPool2d),
        _pool_case("maxpool_merge", es.MaxPool2d),
        ReproCase("padding_zeros", "1 event at pixel (0, 0); conv 1→2 k3 p1, 3 zero weights", conv(), single,
                  "0.Conv2d"),
        ReproCase("binary_weights", "as multi_event, all weights 0 or 1", conv(1.0), multi, "0.Conv2d"),
        ReproCase("binary_weights_1", "as padding_zeros, all weights 0 or 1", conv(1.0), single, "0.Conv2d"),
    ]


def count_all(case: ReproCase, peers: dict) -> dict:
    """The count of ``case.layer`` in eventsim (both conventions) and in every peer module of ``peers``."""
    from .compare import CONVENTION
    row = {"case": case.name, "input": case.input_desc, "layer": case.layer,
           "eventsim_all": run_eventsim(case.network, case.frames, "all").synops[case.layer],
           "eventsim_nonzero": run_eventsim(case.network, case.frames, "nonzero").synops[case.layer],
           "eventsim_nonzero_binarised": run_eventsim(case.network, np.minimum(case.frames, 1),
                                                      "nonzero").synops[case.layer]}
    for name, module in peers.items():
        model = module.build(with_compare(case.network, module.COMPARE))
        run = module.simulate(model, case.frames)
        row[name] = int(run.synops[case.layer])
        row[f"{name}_convention"] = CONVENTION[name]
    return row
