"""Simulation engines and the :func:`simulate` entry point.

Engines live in a registry: name -> ``"module:function"``; each function takes
``(network, inputs, **options)`` and returns a :class:`~eventsim.result.SimulationResult`.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..network import Network

__all__ = ["simulate", "ENGINES", "register_engine"]

ENGINES: dict[str, str] = {
    "stepped": "eventsim.engines.stepped:simulate_stepped",
    "async": "eventsim.engines.asynchronous:simulate_async",
}


def register_engine(name: str, target: str) -> None:
    """Register an engine under ``name`` as ``"module:function"``."""
    ENGINES[name] = target


def simulate(network: Network, inputs: Any, engine: str = "stepped", **options: Any):
    """Run ``network`` on ``inputs`` and return a :class:`~eventsim.result.SimulationResult`.

    Parameters
    ----------
    network : Network
    inputs : event array (fields ``t`` µs, ``x``, ``y``, ``p``), an analog input of
        ``network.input_shape`` repeated every step, or an array ``(T, *input_shape)``.
    engine : ``"stepped"`` (clock-driven) or ``"async"`` (event-driven, continuous time)
    steps : int, number of steps (stepped engine)
    dt_us : step length in µs (needed for event input and for ``LIF(tau_s=...)``)
    record : ``"spikes"`` and/or ``"membrane"`` to keep full rasters
    synop_convention : ``"all"`` (every existing synapse) or ``"nonzero"`` (NeuroBench)
    input_kind : ``"auto"``, ``"analog"`` or ``"events"`` for array input

    Examples
    --------
    >>> import numpy as np, eventsim as es
    >>> net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.6]])), es.IF(threshold=1.0),
    ...                              es.Linear(np.array([[1.0]])), es.Readout()])
    >>> res = es.simulate(net, np.ones((1, 1, 1)), steps=5, input_kind="analog")
    >>> res.spikes, res.final_logits.tolist()
    (2, [2.0])
    """
    if not isinstance(network, Network):
        raise ValueError(f"simulate: expected an eventsim.Network, got {type(network).__name__}")
    target = ENGINES.get(engine)
    if target is None:
        raise ValueError(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}")
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ValueError(f"engine {engine!r} is not available in this build") from None
        raise
    return getattr(module, func_name)(network, inputs, **options)
