"""Paused simulations: the state one engine call hands to the next (``pause_us=`` / ``resume=``).

A long recording can be simulated as a chain of time windows ``[t_0, t_1), [t_1, t_2), …`` on the
step grid: each call gets only the events of its window, runs up to the window's end and returns
an :class:`EngineState` instead of a result; the next call, possibly in another process, continues
from it. The last call (no ``pause_us``) returns the :class:`~eventsim.result.SimulationResult`,
identical to the one of a single call on the whole recording (a test).

>>> import eventsim as es                                                              # doctest: +SKIP
>>> first = es.simulate(net, ev[ev["t"] < 50_000], dt_us=1000, steps=100, pause_us=50_000)  # doctest: +SKIP
>>> res = es.simulate(net, ev[ev["t"] >= 50_000], resume=first)   # == one call on ev   # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .inputs import is_event_array

__all__ = ["EngineState", "check_resume", "check_windowed", "check_pause", "check_window", "network_signature"]


@dataclass
class EngineState:
    """Everything a paused simulation needs to continue, as plain picklable data.

    Attributes
    ----------
    engine : name of the engine that paused
    t_us : the window end: every action before it is done; the next call's events start here (µs)
    options : the first call's options (the continuation runs with the same ones)
    signature : layer names and shapes of the network (a continuation on another network is refused)
    data : engine-specific arrays (membranes, queue, cursors, counters and the rows so far)
    """

    engine: str
    t_us: float
    options: dict
    signature: tuple
    data: dict = field(repr=False)

    @property
    def nbytes(self) -> int:
        """Size of the carried arrays in bytes (what travels between workers)."""
        return int(sum(getattr(v, "nbytes", 0) for v in self.data.values()))


def network_signature(network) -> tuple:
    return tuple((layer.name, tuple(shape)) for layer, shape in zip(network.layers, network.shapes))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def check_resume(network, engine: str, options: dict, resume: EngineState) -> dict:
    """The options of a continuation: the paused run's, after checking that the caller's agree."""
    if not isinstance(resume, EngineState):
        raise ValueError(f"resume= expects the EngineState returned by a call with pause_us=, got "
                         f"{type(resume).__name__}")
    if resume.engine != engine:
        raise ValueError(f"resume=: the state comes from engine={resume.engine!r}, not {engine!r}")
    if resume.signature != network_signature(network):
        raise ValueError("resume=: the state was paused on a different network (layers or shapes differ)")
    for key, value in options.items():
        if key in resume.options and not _same(value, resume.options[key]):
            raise ValueError(f"resume=: {key}={value!r} differs from the paused run's {resume.options[key]!r}; "
                             "a continuation runs with the first call's options (omit them)")
    return dict(resume.options)


def check_windowed(inputs: Any, has_end: bool, end_options: str) -> None:
    """A paused or resumed run takes the events of one window, and needs the run's end up front."""
    if not is_event_array(inputs):
        raise ValueError("pause_us=/resume= split a recording into time windows: they need event-array input")
    if not has_end:
        raise ValueError(f"a paused run needs its end up front (the first window's events cannot tell): "
                         f"pass {end_options}")


def check_pause(pause_us: float, t_start_us: float, dt_us: float | None) -> int:
    """The step index of ``pause_us`` (a whole number of whole-µs steps after ``t_start_us``)."""
    if dt_us is None or not float(dt_us).is_integer() or not float(t_start_us).is_integer():
        raise ValueError(f"pause_us= needs whole-µs dt_us and t_start_us (so that windows and steps agree "
                         f"exactly), got dt_us={dt_us!r}, t_start_us={t_start_us!r}")
    k = (float(pause_us) - float(t_start_us)) / float(dt_us)
    if not (np.isfinite(k) and k == round(k) and k >= 1):
        raise ValueError(f"pause_us={pause_us!r} must lie on the step grid t_start_us + k·dt_us (k >= 1), "
                         f"dt_us={dt_us!r}, t_start_us={t_start_us!r}")
    return int(round(k))


def check_window(events: np.ndarray, t_from: float, t_to: float | None) -> None:
    """A window's events must lie in ``[t_from, t_to)`` (``t_to`` None: no upper end)."""
    if not len(events):
        return
    t = np.asarray(events["t"])
    lo, hi = int(t.min()), int(t.max())
    if lo < t_from or (t_to is not None and hi >= t_to):
        end = "∞" if t_to is None else f"{t_to:g}"
        raise ValueError(f"this window covers [{t_from:g}, {end}) µs but its events span {lo}..{hi} µs; pass "
                         "only the window's events, e.g. ev[(ev['t'] >= start) & (ev['t'] < pause_us)]")
