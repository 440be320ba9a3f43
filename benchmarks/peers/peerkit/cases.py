"""The networks compared with the peers, as eventsim IR.

Five networks cover what the peers' counters must agree on:

==============  =====================================================================
name            layers
==============  =====================================================================
``conv``        conv 2→12 k5 s2 p2 → IF → conv 12→32 k3 s2 p1 → IF → linear 2592→10
``conv_pruned`` the same, the 60 % smallest-magnitude weights of every layer set to 0
``pool_avg``    conv 2→8 k3 p1 → IF → avgpool 2 → conv 8→16 k3 p1 → IF → avgpool 2 → linear
``pool_max``    the same with spike max-pooling
``pool_sum``    the same with sum pooling (sinabs ``SumPool2d``)
``mlp``         flatten → linear 2312→64 → IF → linear 64→10
==============  =====================================================================

``conv`` is the shipped ``models/nmnist/nmnist_if.npz``; the other four were trained by
``benchmarks/peers/train_peer_nets.py`` (weights in ``benchmarks/peers/weights.npz``) with a fixed
random mask zeroing half of every weight tensor. So the ``"all"`` and ``"nonzero"`` synop
conventions differ on every network but ``conv``. Every network ends in a summing readout.

All neurons are IF, θ = 1, subtract reset, v₀ = 0 (what every peer's IF neuron can express).
The threshold comparison differs between peers (snnTorch: ``v > θ``; SpikingJelly and sinabs:
``v >= θ``), so :func:`with_compare` makes the eventsim twin of each peer's network.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import eventsim as es

__all__ = ["Case", "CASES", "build_cases", "with_compare", "prune", "SHIPPED_MODEL", "WEIGHTS"]

ROOT = Path(__file__).resolve().parents[3]
SHIPPED_MODEL = ROOT / "models" / "nmnist" / "nmnist_if.npz"
WEIGHTS = ROOT / "benchmarks" / "peers" / "weights.npz"
INPUT_SHAPE = (2, 34, 34)


@dataclass(frozen=True)
class Case:
    """One network of the comparison.

    Attributes
    ----------
    name : short key used in tables and JSON
    layers : human-readable architecture
    network : the eventsim network (IF neurons with ``v > θ``)
    zero_fraction : fraction of weights that are exactly 0
    """

    name: str
    layers: str
    network: es.Network
    zero_fraction: float


def prune(weight: np.ndarray, fraction: float) -> np.ndarray:
    """Set the ``fraction`` of entries with the smallest ``|w|`` to 0 (magnitude pruning).

    >>> prune(np.array([0.3, -0.1, 0.2, -0.4]), 0.5).tolist()
    [0.3, 0.0, 0.0, -0.4]
    """
    w = np.array(weight, dtype=np.float64, copy=True)
    k = int(round(fraction * w.size))
    if k:
        order = np.argsort(np.abs(w), axis=None, kind="stable")
        w.flat[order[:k]] = 0.0
    return w


def with_compare(network: es.Network, compare: str) -> es.Network:
    """The same network with every neuron population's threshold comparison set to ``compare``."""
    layers = [replace(l, compare=compare) if isinstance(l, es.NeuronSpec) else l for l in network.layers]
    return es.Network(network.input_shape, layers, metadata=dict(network.metadata))


def _shipped(fraction: float = 0.0) -> es.Network:
    net = es.load(SHIPPED_MODEL)
    layers = [replace(l, weight=prune(l.weight, fraction)) if getattr(l, "synaptic", False) and fraction else l
              for l in net.layers]
    return es.Network(net.input_shape, layers)


def _trained(name: str) -> list[np.ndarray]:
    if not WEIGHTS.exists():
        raise FileNotFoundError(f"{WEIGHTS} is missing; run python benchmarks/peers/train_peer_nets.py")
    with np.load(WEIGHTS) as stored:
        keys = sorted((k for k in stored.files if k.startswith(name + "/")), key=lambda k: int(k.split("/")[1]))
        if not keys:
            raise KeyError(f"{WEIGHTS} holds no weights for {name!r}; run train_peer_nets.py --only {name}")
        return [stored[k].astype(np.float64) for k in keys]


def _pool_net(pool: type, name: str) -> es.Network:
    w1, w2, w3 = _trained(name)
    return es.Network(INPUT_SHAPE, [
        es.Conv2d(w1, padding=1), es.IF(threshold=1.0), pool(2),
        es.Conv2d(w2, padding=1), es.IF(threshold=1.0), pool(2),
        es.Flatten(), es.Linear(w3), es.Readout()])


def _mlp() -> es.Network:
    w1, w2 = _trained("mlp")
    return es.Network(INPUT_SHAPE, [es.Flatten(), es.Linear(w1), es.IF(threshold=1.0),
                                    es.Linear(w2), es.Readout()])


def _zero_fraction(net: es.Network) -> float:
    weights = [l.weight for l in net.layers if getattr(l, "synaptic", False)]
    return sum(int(np.count_nonzero(w == 0)) for w in weights) / sum(w.size for w in weights)


def build_cases(names=None) -> list[Case]:
    """The networks of the comparison in table order (all, or those in ``names``)."""
    conv = "conv 2→12 k5 s2 p2 → IF → conv 12→32 k3 s2 p1 → IF → linear 2592→10"
    pool = "conv 2→8 k3 p1 → IF → {p}2 → conv 8→16 k3 p1 → IF → {p}2 → linear 1024→10"
    makers = {
        "conv": (conv, lambda: _shipped()),
        "conv_pruned": (conv, lambda: _shipped(0.6)),
        "pool_avg": (pool.format(p="avgpool"), lambda: _pool_net(es.AvgPool2d, "pool_avg")),
        "pool_max": (pool.format(p="maxpool"), lambda: _pool_net(es.MaxPool2d, "pool_max")),
        "pool_sum": (pool.format(p="sumpool"), lambda: _pool_net(es.SumPool2d, "pool_sum")),
        "mlp": ("linear 2312→64 → IF → linear 64→10", _mlp),
    }
    cases = []
    for name in (names or CASES):
        if name not in makers:
            raise ValueError(f"unknown case {name!r}; choose from {CASES}")
        layers, make = makers[name]
        net = make()
        cases.append(Case(name, layers, net, _zero_fraction(net)))
    return cases


#: case names in table order
CASES = ("conv", "conv_pruned", "pool_avg", "pool_max", "pool_sum", "mlp")
