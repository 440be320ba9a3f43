"""Parameters and option checks shared by both engines: one place for each rule, one message
for each mistake.

* :func:`neuron_params`: a neuron spec's scalar-or-per-channel parameters as per-channel arrays;
* :func:`membrane_floor`: sinabs's ``v_min`` per channel;
* :func:`check_record`, :func:`check_dt`: the ``record=`` and ``dt_us=`` options.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..network import NeuronSpec

__all__ = ["NeuronParams", "neuron_params", "membrane_floor", "check_record", "check_dt"]


@dataclass(frozen=True)
class NeuronParams:
    """Per-channel parameters of one population, as arrays ready for the kernels."""

    leak: np.ndarray
    threshold: np.ndarray
    amplitude: np.ndarray
    v_init: np.ndarray
    integrate_first: bool
    reset_zero: bool
    compare_ge: bool


def membrane_floor(spec: NeuronSpec, channels: int) -> np.ndarray:
    """``v_min`` per channel ``(channels,)``; ``-inf`` where the population has no floor."""
    if spec.v_min is None:
        return np.full(channels, -np.inf)
    return np.ascontiguousarray(np.broadcast_to(np.atleast_1d(spec.v_min).astype(np.float64), (channels,)))


def neuron_params(spec: NeuronSpec, channels: int, dt_us: float | None) -> NeuronParams:
    """Broadcast a neuron spec's scalar-or-per-channel parameters to ``(channels,)`` arrays."""
    def per_channel(value):
        return np.ascontiguousarray(np.broadcast_to(np.atleast_1d(value).astype(np.float64), (channels,)))

    theta = per_channel(spec.threshold)
    amp = theta.copy() if spec.spike_amplitude == "threshold" else per_channel(spec.spike_amplitude)
    return NeuronParams(
        leak=per_channel(spec.leak_per_step(dt_us)), threshold=theta, amplitude=amp,
        v_init=per_channel(spec.v_init), integrate_first=spec.order == "integrate-fire",
        reset_zero=spec.reset == "zero", compare_ge=spec.compare == ">=")


def check_record(record: str | Iterable[str] | None, recordable: tuple[str, ...]) -> tuple[str, ...]:
    """``record=`` as a tuple of names, each one of the engine's ``recordable``."""
    if record is None:
        return ()
    items = (record,) if isinstance(record, str) else tuple(record)
    for item in items:
        if item not in recordable:
            raise ValueError(f"record={item!r}: choose from {recordable}")
    return items


def check_dt(dt_us) -> None:
    """``dt_us`` is None or a positive, finite number of µs (a NaN step would make every LIF
    leak NaN and silently silence the network)."""
    if dt_us is not None and not (isinstance(dt_us, (int, float, np.integer, np.floating))
                                  and not isinstance(dt_us, bool) and np.isfinite(dt_us) and dt_us > 0):
        raise ValueError(f"dt_us must be a positive, finite step length in µs, got {dt_us!r}")
