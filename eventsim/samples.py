"""One sample: simulate a recording on the evaluation grid and keep its trace.

A :class:`SampleTrace` holds the readout and every counter at each point of the grid, so that
cutoff policies and anytime curves need no second simulation. A recording longer than a time
window is simulated window by window (:func:`start_sample`, then :func:`continue_sample` until a
trace comes back), the engine state carried from one window to the next: what a Dask worker does
with one task per window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .events.validate import time_decrease_error
from .network import Network

__all__ = ["SampleTrace", "Continuation", "start_sample", "continue_sample", "trace_sample",
           "DEFAULT_DT_US", "DEFAULT_WINDOW_US", "ABSOLUTE_TIME_US"]

#: default evaluation grid (and step length), µs
DEFAULT_DT_US = 10_000.0


@dataclass
class SampleTrace:
    """Everything recorded for one sample on the evaluation grid (cumulative values per row)."""

    index: int
    label: int
    times_us: np.ndarray
    logits: np.ndarray
    synops: np.ndarray
    macs: np.ndarray
    spikes: np.ndarray
    spikes_per_layer: np.ndarray  # (K, L) increments
    n_events: int
    duration_us: int
    #: (K,) decoded prediction per row (-1: undecided), see :mod:`eventsim.decoding`
    predictions: np.ndarray | None = None

    def padded(self, rows: int, dt_us: float) -> "SampleTrace":
        """Extend to ``rows`` rows by holding the final state (the recording is over)."""
        k = len(self.times_us)
        if k >= rows:
            return self
        extra = rows - k
        hold = lambda a: np.concatenate([a, np.repeat(a[-1:], extra, axis=0)])
        times = np.concatenate([self.times_us, self.times_us[-1] + dt_us * np.arange(1, extra + 1)])
        return SampleTrace(self.index, self.label, times, hold(self.logits), hold(self.synops), hold(self.macs),
                           hold(self.spikes),
                           np.concatenate([self.spikes_per_layer, np.zeros((extra, self.spikes_per_layer.shape[1]),
                                                                           np.int64)]),
                           self.n_events, self.duration_us,
                           None if self.predictions is None else hold(self.predictions))


#: recordings whose first timestamp lies beyond this (e.g. AEDAT 4's wall-clock µs) are timed from
#: their first event; others (N-MNIST, the demo set) from timestamp 0, as their datasets define
ABSOLUTE_TIME_US = 10_000_000


#: On Dask, recordings longer than this are simulated as a chain of windows (state carried across).
#: Each window costs ~15–30 ms of CPU in Dask's task and transfer machinery (measured on 2 cores,
#: for 0.2–1 MB of state): windows should cost several times that to simulate.
DEFAULT_WINDOW_US = 2_000_000


@dataclass
class Continuation:
    """A sample paused between two time windows: what one window task hands to the next.

    ``state`` is the engine's :class:`~eventsim.engines.state.EngineState` at ``state.t_us``; the
    next window covers ``[state.t_us, state.t_us + window_steps·dt_us)`` of the recording (shifted
    by ``shift_us``, see :data:`ABSOLUTE_TIME_US`).
    """

    index: int
    label: int
    engine: str
    options: dict
    window_steps: int
    steps: int
    dt_us: float
    times_us: np.ndarray
    shift_us: int
    n_events: int
    duration_us: int
    state: Any = field(repr=False)
    decode: str = "auto"


def _shifted(events: np.ndarray) -> tuple[np.ndarray, int]:
    if len(events) and int(events["t"][0]) > ABSOLUTE_TIME_US:
        shift = int(events["t"][0])
        events = events.copy()
        events["t"] -= shift
        return events, shift
    return events, 0


def _engine_options(enc: Any, engine: str, convention: str) -> dict:
    if engine == "stepped":
        return dict(dt_us=enc.dt_us, steps=enc.steps, synop_convention=convention, input_kind=enc.input_kind)
    grid = enc.dt_us * np.arange(1, enc.steps + 1)
    span = dict(t_stop_us=float(grid[-1])) if enc.input_kind == "events" and enc.inputs.dtype.names \
        else dict(steps=enc.steps)
    # a data set loop: the compiled per-network kernel pays for itself (and is cached on disk)
    return dict(dt_us=enc.dt_us, snapshot_times_us=grid, synop_convention=convention, input_kind=enc.input_kind,
                fast_path=True, **span)


def _window(events: np.ndarray, t_from: float, t_to: float | None) -> np.ndarray:
    t = events["t"]
    lo = int(np.searchsorted(t, t_from, "left"))
    hi = len(events) if t_to is None else int(np.searchsorted(t, t_to, "left"))
    return events[lo:hi]


def _to_trace(res: Any, times_us: np.ndarray, index: int, label: int, n_events: int, duration_us: int) -> SampleTrace:
    if res.logits.shape[1] == 0:
        raise ValueError("the network has no output to evaluate (neither a Readout nor a spiking last layer)")
    if len(res.times_us) != len(times_us):
        raise RuntimeError(f"engine returned {len(res.times_us)} rows for a grid of {len(times_us)}")
    return SampleTrace(index=index, label=int(label), times_us=np.asarray(times_us, float),
                       logits=np.asarray(res.logits, float), synops=res.cumulative("synops"),
                       macs=res.cumulative("macs"), spikes=res.cumulative("spikes"),
                       spikes_per_layer=np.asarray(res.spikes_per_row, np.int64), n_events=n_events,
                       duration_us=duration_us, predictions=res.predictions)


def start_sample(network: Network, events: np.ndarray, label: int, index: int = 0, engine: str = "stepped",
                 dt_us: float = DEFAULT_DT_US, steps: int | None = None, synop_convention: str = "all",
                 seed: int = 0, window_us: float | None = None, decode: str = "auto") -> "SampleTrace | Continuation":
    """Simulate a sample whole, or only its first window when it is longer than ``window_us``.

    Only event input (the ``events`` encoding) on a whole-µs grid is split; a split sample returns a
    :class:`Continuation` for :func:`continue_sample`.
    """
    from .encodings import encode
    from .engines import simulate
    t = np.asarray(events["t"], dtype=np.int64)
    n_events, duration_us = int(len(t)), int(t[-1] - t[0]) if len(t) else 0
    events, shift = _shifted(events)
    enc = encode(network, events, index, steps, dt_us, seed)
    options = _engine_options(enc, engine, synop_convention)
    window_steps = int(math.ceil(window_us / enc.dt_us)) if window_us else 0
    if not (0 < window_steps < enc.steps and enc.input_kind == "events" and getattr(enc.inputs.dtype, "names", None)
            and float(enc.dt_us).is_integer()):
        res = simulate(network, enc.inputs, engine=engine, decode=decode, **options)
        return _to_trace(res, enc.times_us, index, label, n_events, duration_us)
    t_in = np.asarray(enc.inputs["t"])
    decreasing = np.flatnonzero(np.diff(t_in) < 0)
    if decreasing.size:
        i = int(decreasing[0]) + 1
        raise time_decrease_error(f"event {i}", t_in[i], t_in[i - 1])
    pause = window_steps * enc.dt_us
    state = simulate(network, _window(enc.inputs, 0, pause), engine=engine, pause_us=pause, decode=decode, **options)
    return Continuation(index, int(label), engine, options, window_steps, enc.steps, enc.dt_us, enc.times_us, shift,
                        n_events, duration_us, state, decode)


def continue_sample(network: Network, events: np.ndarray, cont: Continuation) -> "SampleTrace | Continuation":
    """Simulate the next window of a split sample (``events``: the whole recording, as read)."""
    from .engines import simulate
    events = events.copy() if cont.shift_us else events
    if cont.shift_us:
        events["t"] -= cont.shift_us
    t_from = cont.state.t_us
    t_to = t_from + cont.window_steps * cont.dt_us
    if t_to >= cont.steps * cont.dt_us:       # the last window
        res = simulate(network, _window(events, t_from, None), engine=cont.engine, resume=cont.state,
                       decode=cont.decode)
        return _to_trace(res, cont.times_us, cont.index, cont.label, cont.n_events, cont.duration_us)
    state = simulate(network, _window(events, t_from, t_to), engine=cont.engine, resume=cont.state, pause_us=t_to,
                     decode=cont.decode)
    return replace(cont, state=state)


def trace_sample(network: Network, events: np.ndarray, label: int, index: int = 0, engine: str = "stepped",
                 dt_us: float = DEFAULT_DT_US, steps: int | None = None, synop_convention: str = "all",
                 seed: int = 0, window_us: float | None = None, decode: str = "auto") -> SampleTrace:
    """Simulate one sample and keep its readout and counters on the evaluation grid.

    With ``window_us`` a longer recording is simulated window by window, the engine state carried
    from one to the next (what Dask workers do); the trace is identical either way.
    """
    out = start_sample(network, events, label, index, engine, dt_us, steps, synop_convention, seed, window_us, decode)
    while isinstance(out, Continuation):
        out = continue_sample(network, events, out)
    return out
