"""Simulation engines and the :func:`simulate` entry point.

Engines live in a registry: name -> ``"module:function"``; each function takes
``(network, inputs, **options)`` and returns a :class:`~eventsim.result.SimulationResult`.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

from ..decoding import decode_result, needed_records, resolve_decode
from ..network import Network
from .state import EngineState

__all__ = ["simulate", "ENGINES", "register_engine", "EngineState"]

ENGINES: dict[str, str] = {
    "stepped": "eventsim.engines.stepped:simulate_stepped",
    "async": "eventsim.engines.asynchronous:simulate_async",
}


def register_engine(name: str, target: str) -> None:
    """Register an engine under ``name`` as ``"module:function"``."""
    ENGINES[name] = target


def simulate(network: Network, inputs: Any, engine: str = "stepped", **options: Any):
    """Run ``network`` on ``inputs`` and return a :class:`~eventsim.result.SimulationResult`.

    The Other Parameters are options of the async engine only (details:
    :func:`eventsim.engines.asynchronous.simulate_async`); ``pause_us`` and ``resume`` are options of both.

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
    decode : how outputs become ``logits`` and predictions (:mod:`eventsim.decoding`): ``"auto"``
        (default: the Readout if there is one, else the output spike counts), ``"readout"``,
        ``"counts"``, ``"first-spike"`` or ``"membrane"``

    Other Parameters
    ----------------
    simultaneous : ``"none"`` (default: continuous time, every event its own instant, exact leak)
        or ``"batch"`` (with ``dt_us``: the events of one step are integrated before thresholds
        are checked, which reproduces the stepped engine spike for spike)
    t_stop_us, t_start_us : the simulated interval in µs (``t_stop_us`` inclusive); the inputs
        may also be an iterable of event chunks (a stream; memory stays bounded)
    snapshot_times_us : rows at these times, from one pass (default: the step grid, or ``t_stop``)
    snapshot_synops : also a row the moment the cumulative synop count reaches each budget
        (:attr:`SimulationResult.row_kind` tells which rows those are)
    record : also ``"spike_times"`` (exact times: :attr:`SimulationResult.spike_times`)
    chunk_events, queue_limit : events per kernel call; the maximum of pending queue entries
        (exceeding it stops the run with an error rather than growing without bound)
    dtype : ``"float64"`` (default) or ``"float32"``: the real type of membranes, weights and the
        per-event arithmetic (times stay float64); see :func:`~eventsim.engines.asynchronous.simulate_async`
    pause_us : float, optional
        Simulate only up to this time (a step boundary ``t_start_us + k·dt_us``, whole µs) and
        return an :class:`~eventsim.engines.state.EngineState` instead of a result. The inputs
        are then the events of the window ``[start, pause_us)`` only, and the run's end must be
        given up front (``steps=``, or ``t_stop_us=`` for the async engine).
    resume : EngineState, optional
        Continue a paused run (in this or another process) with the events of the next window,
        ``[state.t_us, next pause_us)`` or ``[state.t_us, end]``; the other options are the paused
        run's (omit them). The result of the last call equals that of one call on the whole
        recording, row for row; see :mod:`eventsim.engines.state`.

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
    if engine != "async" and "dtype" in options:
        from .async_compile import check_dtype
        if check_dtype(options.pop("dtype")) != "float64":
            raise ValueError(f"dtype='float32' is an option of engine='async' only; engine={engine!r} computes "
                             "in float64 (omit dtype=)")
    decode = resolve_decode(network, options.pop("decode", None))
    resume = options.get("resume")
    asked = options.get("record")
    asked = () if asked is None else ((asked,) if isinstance(asked, str) else tuple(asked))
    extra = tuple(r for r in needed_records(decode, engine) if r not in asked)
    if extra and resume is None:
        options["record"] = asked + extra
    if resume is not None:
        from .state import check_resume
        given = {k: v for k, v in options.items() if k not in ("resume", "pause_us")}
        options = {**check_resume(network, engine, given, resume), "resume": resume,
                   "pause_us": options.get("pause_us")}
    module_name, func_name = target.split(":")
    try:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ValueError(f"engine {engine!r} is not available in this build") from None
        raise
    out = getattr(module, func_name)(network, inputs, **options)
    if isinstance(out, EngineState):
        return out
    keep = asked if resume is None else tuple(r for r in (resume.options.get("record") or ()) if r not in extra)
    return decode_result(network, out, decode, keep)
