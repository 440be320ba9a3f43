"""Asynchronous engine: one spike at a time, in continuous time (``engine="async"``).

Spikes are events in an array-backed priority queue keyed ``(t, layer, phase, neuron)``
(:mod:`eventsim.kernels.async_queue`); each delivered spike updates only its fan-out
(:mod:`eventsim.kernels.async_fanout`) and a neuron that crosses its threshold emits a new event.

Continuous time (``simultaneous="none"``)
    Leak is exact, ``v(t) = v(t₁)·e^{−(t−t₁)/τ}``, kept in scaled time so each impulse is one
    multiply-add (:mod:`eventsim.kernels.async_neuron`). A per-step leak λ maps to
    ``τ = −Δt / ln λ``; ``LIF(tau_s=...)`` gives ``τ`` directly. Constant currents — a layer's
    bias ``b``, a BNTT per-step bias ``b_k`` and gain ``g_k``, an analog input held over its step —
    deliver the per-step charge evenly over the step, a rate ``r = (g_k·C + b_k)/Δt`` per µs; the
    next threshold crossing under ``r`` is computed in closed form and queued, and any later input
    invalidates it (lazy deletion by version number). Every event is its own instant: its whole
    fan-out is applied, then the touched neurons are tested; one above threshold fires (again,
    with a subtract reset, while it stays above: several spikes at one instant) and resets. The
    integrate/fire ``order`` of a spec does not matter in continuous time. A refractory period
    holds the membrane and drops the input. Spike max-pooling passes every spike.

Batch (``simultaneous="batch"``): the stepped engine, spike for spike
    Step ``k`` is processed at ``t_k = t_start + (k+1)·Δt`` (the end of its bin), where the
    stepped engine's row ``k`` ends. Input events of bin ``k`` are counted per pixel and arrive at
    ``t_k``; constant currents become one impulse per step (``I_k = C`` injected first, as the
    stepped engine initialises a layer's output with its bias). Within ``t_k`` all events of
    layers before a population are integrated, then the population's touched neurons take one
    :func:`~eventsim.kernels.neuron.neuron_step` with ``I·g_k + b_k`` after the idle steps' leak
    ``v ← λ·v``; a neuron that would fire at the next step without input queues a wake-up. Spike
    max-pooling passes one event per window and step. Delays must be whole steps. sinabs's
    options (``multi_spike``: ⌊u/θ⌋ spikes per step; ``v_min``: a floor after each step) take
    :func:`~eventsim.kernels.neuron.neuron_step_multi`, as in the stepped engine. In continuous
    time a subtract reset already fires ⌊u/θ⌋ times at the instant ``u`` exceeds θ, so
    ``multi_spike`` needs nothing more there; a floor is a per-step clamp and is refused.

Counting follows :mod:`eventsim.counting`. MACs: a weighted layer fed an analog input counts
its dense MACs once per step in batch mode and once per distinct analog frame in continuous
mode (the constant current is computed once). ``neuron_updates`` counts actual state updates
(impulses and crossings in continuous mode; ``neuron_step`` calls in batch mode), not dense ones.

Example
-------
A neuron with weight 0.6 on a constant input of 1 per step (Δt = 1 ms) crosses θ = 1 every
1/0.6 steps, i.e. every 1666.67 µs (the third time at ``t_stop`` = 5000 µs, included); the batch
mode fires at steps 2 and 4 like the stepped engine:

>>> import numpy as np, eventsim as es
>>> net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.6]])), es.IF(threshold=1.0),
...                              es.Linear(np.array([[1.0]])), es.Readout()])
>>> res = es.simulate(net, np.ones((1, 1, 1)), engine="async", steps=5, dt_us=1000,
...                   input_kind="analog", record="spike_times")
>>> [round(float(t), 2) for t in res.info["spike_times"]["2.IF"]["t_us"]]
[1666.67, 3333.33, 5000.0]
>>> es.simulate(net, np.ones((1, 1, 1)), engine="async", steps=5, dt_us=1000, input_kind="analog",
...             simultaneous="batch").spikes_per_row[:, 2].tolist()
[0, 1, 0, 1, 0]
"""
from __future__ import annotations

from dataclasses import replace
from itertools import chain
from math import ceil, floor
from typing import Any, Iterable, NamedTuple

import numpy as np

from .. import counting
from ..kernels import async_layout as A
from ..kernels.async_loop import rebase, run, start
from ..kernels.async_queue import ENTRY
from ..kernels.layers import count_events
from ..network import Network, NeuronSpec, Readout
from ..neurons import CubaLI
from ..result import SimulationResult
from . import fastpath, fastpath_batch
from .async_compile import (CURRENT_TIME_BASE_US, _classify, _compile, _constant_currents, _f64, _i64,
                            _net_floats, _Packer, _round32, as_float32, bias_is_current, check_dtype, records)
from .cache import cache_for
from .inputs import _integer_times, check_events, check_start, check_steps, event_positions, is_event_array, prepare_steps
from .params import check_dt, check_record
from .state import EngineState, check_pause, check_window, check_windowed, network_signature

__all__ = ["simulate_async", "SIMULTANEOUS", "RECORDABLE"]

SIMULTANEOUS = ("none", "batch")
#: most default snapshot rows (one per step) and most batch steps one call runs: beyond these a
#: stray far timestamp (absolute camera time with t_start_us=0) would exhaust memory or hang
MAX_GRID_ROWS = 1 << 22
MAX_STEPS = 1 << 31
RECORDABLE = ("spikes", "spike_times", "membrane")
#: Compiled network: the header record ``h`` (a record of a one-element array: Numba passes it by
#: reference), the population and op tables, ``ni`` (int64) and ``nf`` (float64) flat buffers, see
#: :mod:`eventsim.kernels.async_layout`.
AsyncNet = NamedTuple("AsyncNet", [(name, np.ndarray) for name in ("h", "pop", "op", "ni", "nf")])
#: Mutable state: the cursors record (of a one-element array), flat buffers, the event heap
#: (records ``ENTRY``) and the spike-time log (records ``LOG_ENTRY``).
AsyncState = NamedTuple("AsyncState", [(name, np.ndarray) for name in ("cur", "si", "sf", "su", "queue", "log")])


# ----------------------------------------------------------------------------- inputs


def _event_chunks(source, input_shape, t_start: float, t_stop: float, dt: float | None, steps: int | None,
                  batch: bool, chunk_events: int):
    """Validate event arrays (one, or an iterable of consecutive ones) and yield kernel chunks
    ``(t float64, flat position, count)``, each holding whole timestamps (whole steps in batch mode),
    sorted by time then position. Batch mode counts events per step and pixel at ``t_k``."""
    c_in, h, w = input_shape
    if not batch and is_event_array(source) and len(source) <= chunk_events:   # one chunk: one pass
        t, pos, _, _ = event_positions(source, input_shape, 0, None, t_start, t_stop, sort_ties=True)
        if t.size:
            yield t.astype(np.float64), pos, np.ones(t.size, np.int64)
        return
    pending, seen, last_t = [], 0, None
    parts = (source[i:i + chunk_events] for i in range(0, len(source), chunk_events)) if is_event_array(source) else source
    for part in chain(parts, [None]):
        if part is not None:
            if not is_event_array(part):
                raise ValueError(f"event chunk {type(part).__name__} has no fields t, x, y, p")
            if batch:
                t, c, y, x = check_events(part, input_shape, seen, last_t)
                seen += t.size
                if t.size:
                    last_t = t[-1]
                grp = np.floor((t - t_start) / dt).astype(np.int64)
                keep = (grp >= 0) & (grp < steps)
                pending.append((grp[keep], (c[keep] * h + y[keep]) * w + x[keep]))
            else:
                grp, pos, last, _ = event_positions(part, input_shape, seen, last_t, t_start, t_stop)
                seen += len(part)
                last_t = last_t if last is None else last
                pending.append((grp, pos))
            if sum(a.size for a, _ in pending) < chunk_events:
                continue
        if not pending:
            break
        grp = np.concatenate([a for a, _ in pending])
        pos = np.concatenate([b for _, b in pending])
        cut = grp.size if part is None or not grp.size else int(np.searchsorted(grp, grp[-1], "left"))
        pending = [(grp[cut:], pos[cut:])] if cut < grp.size else []
        grp, pos = grp[:cut], pos[:cut]
        if not grp.size:
            continue
        if batch:
            keys, cnt = np.unique(grp * (c_in * h * w) + pos, return_counts=True)
            k = keys // (c_in * h * w)
            yield t_start + (k + 1) * float(dt), keys - k * (c_in * h * w), cnt.astype(np.int64)
        else:
            key = grp * (c_in * h * w) + pos   # ties at one time: ascending flat position
            if np.any(key[1:] < key[:-1]):
                order = np.argsort(key, kind="stable")
                grp, pos = grp[order], pos[order]
            yield grp.astype(np.float64), pos, np.ones(grp.size, np.int64)


def _count_chunks(frames: np.ndarray, steps: int, t_start: float, dt: float, chunk_steps: int = 256):
    """Event-count frames ``(T, *shape)`` -> kernel chunks: step ``k``'s counts arrive at ``t_k``."""
    for k0 in range(0, steps, chunk_steps):
        block = frames[k0:min(steps, k0 + chunk_steps)].reshape(-1, int(np.prod(frames.shape[1:])))
        k, pos, cnt = count_events(np.ascontiguousarray(block))
        yield t_start + (k + k0 + 1) * float(dt), pos, cnt


def _resolve_times(options: dict, events_in_memory, is_stream: bool):
    """``(steps, t_stop)`` from ``steps``, ``t_stop_us``, the input's extent and snapshot times."""
    dt, t0, steps, t_stop = options["dt_us"], options["t_start_us"], options["steps"], options["t_stop_us"]
    if steps is not None and t_stop is not None:
        raise ValueError("give at most one of steps= and t_stop_us=")
    if steps is None and t_stop is not None and options["batch"]:
        steps = int(round((t_stop - t0) / dt))
        if steps < 1 or abs(t0 + steps * dt - t_stop) > 1e-9 * max(1.0, abs(t_stop)):
            # rounding down would silently drop the events of the last, partial step
            k = max(1, int(ceil((t_stop - t0) / dt - 1e-9)))
            raise ValueError(f"simultaneous='batch' runs whole steps, but t_stop_us={t_stop!r} is not on the grid "
                             f"t_start_us + k·dt_us (dt_us={dt!r}); pass t_stop_us={t0 + k * dt:g} (or steps={k})")
    if steps is None and t_stop is None:
        if is_stream:
            raise ValueError("a stream of event chunks needs an end: pass t_stop_us= (or steps= with dt_us=)")
        ev = events_in_memory
        t_ev = float(np.asarray(ev["t"])[-1]) if ev is not None and len(ev) else None
        snaps = options["snapshot_times_us"]
        t_snap = float(np.max(snaps)) if snaps is not None and len(snaps) else None
        if dt:
            steps = max(int(floor((t_ev - t0) / dt)) + 1 if t_ev is not None else 1,
                        int(ceil((t_snap - t0) / dt - 1e-9)) if t_snap is not None else 1)
        else:
            t_stop = max([t0] + [x for x in (t_ev, t_snap) if x is not None])
    if steps is not None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        t_stop = t0 + steps * float(dt)
    if t_stop < t0:
        raise ValueError(f"t_stop_us={t_stop} is before t_start_us={t0}")
    return steps, float(t_stop)


# ----------------------------------------------------------------------------- entry point


def simulate_async(network: Network, inputs: Any, dt_us: float | None = None, simultaneous: str = "none",
                   t_stop_us: float | None = None, steps: int | None = None,
                   snapshot_times_us: Iterable[float] | None = None, snapshot_synops: Iterable[int] | None = None,
                   record: str | Iterable[str] | None = None, synop_convention: str = "all",
                   input_kind: str = "auto", t_start_us: float = 0, chunk_events: int = 65536,
                   queue_limit: int = 1 << 22, pause_us: float | None = None,
                   resume: EngineState | None = None, fast_path: bool | None = None,
                   dtype: str = "float64") -> SimulationResult | EngineState:
    """Run ``network`` event by event in continuous time. See :func:`eventsim.simulate`.

    Parameters
    ----------
    network : Network
    inputs : an event array (fields ``t`` µs, ``x``, ``y``, ``p``), an iterable of such arrays
        (consecutive chunks of one stream: memory stays O(neurons + queue + chunk)), an array
        ``(T, *input_shape)`` of event counts or analog frames on the ``dt_us`` grid, or one analog
        input of ``network.input_shape`` held for ``steps`` steps.
    dt_us : float, optional
        Step length in µs: needed for ``"batch"``, array inputs, per-step leaks, biases and
        per-step gain/bias (which are charges per step, i.e. currents ``b/Δt`` per µs).
    simultaneous : ``"none"`` (every event its own instant) or ``"batch"`` (events of one
        timestamp integrated before thresholds are checked: the stepped engine, spike for spike)
    t_stop_us, steps : end of the simulation (inclusive), ``t_start_us + steps·dt_us``. Default:
        as the stepped engine with ``dt_us`` (the bin of the last event, or ``T``); else the last event.
    snapshot_times_us : rows at these times (default: the step grid, or ``t_stop``)
    snapshot_synops : also a row the moment the cumulative synop count reaches each budget
    record : ``"spikes"`` (per-row spike counts per neuron), ``"spike_times"`` (exact times in
        ``info["spike_times"][layer]``, fields ``t_us`` and flat ``neuron``), ``"membrane"``
    synop_convention : ``"all"`` or ``"nonzero"`` (see :mod:`eventsim.counting`)
    input_kind : ``"auto"``, ``"events"`` or ``"analog"`` for array inputs
    chunk_events : events per kernel call; queue_limit : maximum pending queue entries
    fast_path : run the compiled per-network kernel (:mod:`eventsim.engines.fastpath`) where it
        covers the call: ``None`` (default) decides by itself (compile once the network is used
        repeatedly), ``True`` compiles it at once (a data set loop: :mod:`eventsim.samples` asks
        for it), ``False`` never; ``EVENTSIM_FASTPATH=0/1`` overrides. Results are identical.
    dtype : ``"float64"`` (default) or ``"float32"``: the real type of membranes, weights,
        thresholds, spike amplitudes and the per-event arithmetic (``v += a·w``; LIF ``q += (a·w)·s``
        against ``θ·s``, ``s`` rounded to float32), each result rounded to float32; times stay
        float64 (µs), counters int64, and the readout sums ``a·w`` in float64 (its weights are
        float32 values). Both paths give the same spikes bit for bit. float32 covers what the fast
        path covers (continuous time, event input, IF/LIF without refractory period, per-step
        gain/bias or bias, no delays); other calls raise ValueError.
    pause_us, resume : simulate a window of a recording and return the
        :class:`~eventsim.engines.state.EngineState` (the kernels' state arrays, copied as they
        are: membranes, queue, cursors, counters and the rows so far) / continue one (see
        :func:`eventsim.simulate`). Continuous mode stops before the first action at ``pause_us``
        (events at ``pause_us`` belong to the next window); batch mode finishes the step that ends
        at ``pause_us``.

    Returns
    -------
    SimulationResult
        ``engine="async"``; one row per snapshot, ``info["row_kind"]`` 0 (time) or 1 (synop budget).
    """
    counting.check_convention(synop_convention)
    dtype = check_dtype(dtype)
    f32 = dtype == "float32"
    if simultaneous not in SIMULTANEOUS:
        raise ValueError(f"simultaneous={simultaneous!r}: choose 'none' (continuous time) or 'batch' (step grid)")
    batch = simultaneous == "batch"
    record = check_record(record, RECORDABLE)
    check_dt(dt_us)
    if batch and dt_us is None:
        raise ValueError("simultaneous='batch' runs on a step grid: pass dt_us=")
    current_bias = bias_is_current(network)
    if current_bias:
        _check_current_bias(network, batch, inputs)
    if chunk_events < 1 or queue_limit < 16:
        raise ValueError(f"chunk_events must be >= 1 and queue_limit >= 16, got {chunk_events}, {queue_limit}")
    t_start_us, steps = check_start(t_start_us), check_steps(steps)
    if t_stop_us is not None and not np.isfinite(t_stop_us):
        raise ValueError(f"t_stop_us must be a finite time in µs, got {t_stop_us!r}")
    opts = dict(dt_us=dt_us, t_start_us=float(t_start_us), steps=steps, t_stop_us=t_stop_us,
                snapshot_times_us=snapshot_times_us, batch=batch)
    windowed = pause_us is not None or resume is not None
    if windowed:
        check_windowed(inputs, steps is not None or t_stop_us is not None, "t_stop_us= or steps=")
        k_from = int(resume.data["k"]) if resume is not None else 0
        k_to = check_pause(pause_us, t_start_us, dt_us) if pause_us is not None else None
        if k_to is not None and k_to <= k_from:
            raise ValueError(f"pause_us={pause_us!r} must lie after the resumed state's {resume.t_us:g} µs")
        check_window(inputs, float(t_start_us) + k_from * float(dt_us or 0),
                     None if k_to is None else float(t_start_us) + k_to * float(dt_us))

    frames, events, stream, is_counts = None, None, False, False
    if is_event_array(inputs):
        if np.ndim(inputs) != 1:
            raise ValueError(f"events must be a 1-D structured array (one record per event), got shape "
                             f"{np.shape(inputs)}")
        _integer_times(np.asarray(inputs["t"]))   # before the extent is read from them
        events = inputs
    elif isinstance(inputs, (np.ndarray, list, tuple, int, float)) and not (
            isinstance(inputs, (list, tuple)) and inputs and is_event_array(inputs[0])):
        if dt_us is None:
            raise ValueError("array input lies on a step grid: pass dt_us= (the step length in µs)")
        if steps is None and t_stop_us is not None:
            opts["steps"] = steps = int(floor((t_stop_us - t_start_us) / dt_us + 1e-9))
            opts["t_stop_us"] = None
        frames, is_counts, n_frames = prepare_steps(network, inputs, steps, dt_us, input_kind, t_start_us)
        opts["steps"] = n_frames
    else:
        stream = True
    event_input = frames is None or is_counts
    if event_input and (len(network.input_shape) != 3 or network.input_shape[0] not in (1, 2)):
        raise ValueError(f"events need a network input of shape (2, H, W) or (1, H, W), got {network.input_shape}")
    if frames is None and input_kind == "analog":
        raise ValueError("input_kind='analog' applies to arrays of frames, not to event arrays")

    key = ("async", event_input, synop_convention, dt_us, batch) + (("float32",) if f32 else ())
    compiled = cache_for(network)
    cached = compiled.get(key)
    if cached is None:
        kinds = _classify(network, event_input)
        comp = _compile(network, kinds, event_input, synop_convention, dt_us, batch)
        if f32:
            comp = as_float32(comp)
        # biases that are currents per second: the kernels' charge-per-step time base is 1 s
        cached = compiled[key] = (kinds, comp, _net_floats(comp, CURRENT_TIME_BASE_US if current_bias else dt_us))
    kinds, comp, (net_nf, nf_slots) = cached
    if f32:
        _check_float32(network, comp, batch, frames, current_bias)
    steps, t_stop = _resolve_times(opts, events, stream)
    if windowed and pause_us is not None and pause_us > t_stop:
        raise ValueError(f"pause_us={pause_us!r} lies after the end of the simulation, t_stop = {t_stop:g} µs")
    t0 = float(t_start_us)
    if comp.tables is not None:
        need = steps if steps is not None else int(ceil((t_stop - t0) / dt_us - 1e-9))
        if need > comp.tables:
            raise ValueError(f"per-step gain/bias covers {comp.tables} steps, but the simulation runs {need}; "
                             f"pass steps<={comp.tables} or an earlier t_stop_us")

    # ---------------------------------------------------------------- snapshot rows
    n_steps = steps if steps is not None else (int(floor((t_stop - t0) / dt_us + 1e-9)) if dt_us else 0)
    if batch and n_steps > MAX_STEPS:
        raise ValueError(f"simultaneous='batch' would run {n_steps:,} steps of {dt_us} µs (t_start_us={t0}, "
                         f"t_stop_us={t_stop}), more than {MAX_STEPS:,}; pass t_start_us= (e.g. the first "
                         "event's time) and t_stop_us= or steps= to simulate a window, or a larger dt_us")
    if snapshot_times_us is None and snapshot_synops is None and dt_us:
        n_grid = n_steps
        if n_grid > MAX_GRID_ROWS:
            raise ValueError(f"the default snapshot rows (one per step of {dt_us} µs from t_start_us={t0} to "
                             f"{t_stop} µs) would be {n_grid:,} rows, more than {MAX_GRID_ROWS:,}; events with "
                             "absolute timestamps need t_start_us= (e.g. the first event's time), or pass "
                             "snapshot_times_us= or a larger dt_us")
        snap_t = t0 + np.arange(1, n_grid + 1, dtype=np.float64) * float(dt_us)
        if not snap_t.size or snap_t[-1] < t_stop:
            snap_t = np.append(snap_t, t_stop)
    elif snapshot_times_us is None:    # one row at the end
        snap_t = np.array([t_stop])
    else:
        snap_t = np.sort(_f64(list(snapshot_times_us)))
        bad = snap_t[~np.isfinite(snap_t) | (snap_t < t0) | (snap_t > t_stop)]
        if bad.size:
            raise ValueError(f"snapshot time {bad[0]} µs lies outside the simulation [{t0}, {t_stop}] µs; "
                             "pass t_stop_us= (or steps=) to cover it")
    snap_b = np.zeros(0, np.int64) if snapshot_synops is None else np.sort(_i64(list(snapshot_synops)))
    if snap_b.size and snap_b[0] < 1:
        raise ValueError(f"snapshot_synops must be positive synop budgets, got {snap_b[0]}")

    # what a paused run hands to its continuation (EngineState.options)
    paused_options = None if pause_us is None else dict(
        dt_us=dt_us, simultaneous=simultaneous, t_stop_us=t_stop_us, steps=steps if t_stop_us is None else None,
        snapshot_times_us=None if snapshot_times_us is None else _f64(list(snapshot_times_us)),
        snapshot_synops=None if snapshot_synops is None else _i64(list(snapshot_synops)),
        record=record, synop_convention=synop_convention, input_kind=input_kind, t_start_us=t_start_us,
        chunk_events=chunk_events, queue_limit=queue_limit, fast_path=fast_path, dtype=dtype)

    # ---------------------------------------------------------------- fast path (see .fastpath)
    counts = batch and frames is not None and is_counts   # batch mode runs count frames as event chunks
    # a resumed run continues on the path that paused it (each saves its own kernel state)
    resumed_fast = resume is not None and resume.data.get("path") == "fast"
    n_events = len(inputs) if events is not None else 0
    if current_bias:
        why = "biases that are currents per second"
    elif resume is not None and not resumed_fast:
        why = "resume= of a state paused on the general path"
    elif batch and windowed:
        why = "pause_us/resume in batch mode"
    else:
        why = fastpath.unsupported(network, comp, batch, None if counts else frames, record, compiled, n_events,
                                   prefer=True if resumed_fast else fast_path)
    if resumed_fast and why is not None:
        raise ValueError(f"resume=: the state was paused on the asynchronous engine's fast path, which does not "
                         f"run this call ({why}); continue it with the fast path on (EVENTSIM_FASTPATH unset or 1, "
                         "fast_path not False)")
    if why is None:
        info = dict(simultaneous=simultaneous, input_kind="events", t_stop_us=t_stop)
        if batch:
            if counts:
                chunks = _count_chunks(frames if frames.shape[0] > 1 else
                                       np.broadcast_to(frames, (steps,) + frames.shape[1:]), steps, t0, dt_us)
            else:
                chunks = _event_chunks(inputs, network.input_shape, t0, t_stop, dt_us, steps, batch, chunk_events)
            return fastpath_batch.run_fast_batch(network, comp, compiled, chunks, record, snap_t, snap_b, t0, t_stop,
                                                 dt_us, steps, synop_convention, info)
        slot = "fastpath_readout" + ("_float32" if f32 else "")
        if slot not in compiled:   # the readout's constant current (its bias), per step
            y_const = _constant_currents(network, None)[1] if network.has_readout else None
            compiled[slot] = _round32(y_const) if f32 and y_const is not None else y_const
        y_const = compiled[slot]
        def chunks():
            return _event_chunks(inputs, network.input_shape, t0, t_stop, dt_us, steps, batch, chunk_events)
        out = fastpath.run_fast(network, comp, compiled, chunks(), record, snap_t, snap_b, t0, t_stop, dt_us, y_const,
                                synop_convention, info, pause_us=pause_us, resume=None if resume is None else resume.data,
                                again=chunks if events is not None else None)   # a stream is read once
        if pause_us is None:
            return out
        return EngineState("async", float(pause_us), paused_options, network_signature(network),
                           dict(out, k=int(round((pause_us - t0) / dt_us))))

    # ---------------------------------------------------------------- settings and state
    layers, pops, f = network.layers, comp.pops, comp.fields
    pi = f["pi"]
    has_out = network.has_readout
    n_out = int(np.prod(network.output_shape)) if has_out else 0
    macs = comp.analog_macs
    N, P, Ct, L, B, M = comp.n_neurons, len(pops), comp.n_channels, len(layers), comp.buffer, comp.n_windows
    K = snap_t.size + snap_b.size
    h = dict(
            batch=batch, steps=steps or 0, n_timers=steps if batch else max((comp.tables or 0) - 1, 0),
            rec_raster="spikes" in record, rec_times="spike_times" in record, rec_membrane="membrane" in record,
            n_out=n_out, out_layer=L - 1, out_mean=has_out and layers[-1].mode == "mean",
            y_dense=has_out and (kinds[-2][0] if L > 1 else not event_input), n_pop=P, n_neurons=N,
            n_channels=Ct, n_layers=L, n_rows=K, buffer=B, n_windows=M, n_mac=len(macs), n_snap_b=snap_b.size,
            n_snap_t=snap_t.size, f32=f32,
            y_leaky=A.YLEAKY_NONE if not has_out or type(layers[-1]) is Readout else (
                A.YLEAKY_CUBA if isinstance(layers[-1], CubaLI) else A.YLEAKY_LI), **nf_slots)
    ni = _Packer(np.int64)
    for name, key in (("ni_l_pop", "l_pop"), ("ni_g_pop", "g_pop"), ("ni_src", "src"), ("ni_grp", "grp"),
                      ("ni_path", "path"), ("ni_path_ops", "path_ops"), ("ni_deg", "D")):
        h[name] = ni.add(f[key])
    h["ni_mac"] = ni.add(np.array(list(macs.items()), np.int64).ravel())
    h["ni_snap_b"] = ni.add(snap_b)
    si, sf = _Packer(np.int64), _Packer(np.float64)
    for name, pack, size in (("si_neuron", si, A.N_NI * N), ("si_pop", si, 2 * P), ("si_pool", si, M),
                             ("si_row", si, 4 * L), ("si_out_counts", si, 4 * K * L), ("si_out_kind", si, K),
                             ("si_buf_pos", si, 2 * B), ("si_buf_cnt", si, 2 * B),
                             ("si_taps", si, 3 * max([1] + [int(r[A.O_KH] * r[A.O_KW]) for r in f["op"]])),
                             ("si_raster", si, K * N if "spikes" in record else 0),
                             ("sf_neuron", sf, A.N_NF * N), ("sf_pop", sf, A.N_PS * P), ("sf_channel", sf, 4 * Ct),
                             ("sf_readout", sf, 5 * n_out), ("sf_pool", sf, M), ("sf_out_t", sf, K),
                             ("sf_out_logits", sf, K * n_out), ("sf_buf_val", sf, 2 * B),
                             ("sf_membrane", sf, K * N if "membrane" in record else 0)):
        h[name] = pack.add(None, size)
    h["sf_snap_t"] = sf.add(snap_t)
    h = records(np.array([tuple(int(h[name]) for name in A.HEADER.names)], A.HEADER))   # the header record, fields by name
    net = AsyncNet(h=h[0], pop=f["pop"], op=f["op_table"], ni=ni.array(), nf=net_nf)
    si, sf = si.array(), sf.array()
    hd = h[0]

    def rows(buf, name, n_rows, width):
        return buf[hd[name]:hd[name] + n_rows * width].reshape(n_rows, width)

    nfr, nir, csr = rows(sf, "sf_neuron", A.N_NF, N), rows(si, "si_neuron", A.N_NI, N), rows(sf, "sf_channel", 4, Ct)
    nfr[A.N_RU] = -np.inf
    nfr[A.N_PT] = np.inf
    nir[A.N_LS] = -1
    csr[A.CS_SC] = csr[A.CS_GNOW] = 1.0
    psr = rows(sf, "sf_pop", A.N_PS, P)
    psr[A.S_CHECKT] = psr[A.S_SCALET] = -np.inf
    si[hd["si_pool"]:hd["si_pool"] + M] = -1
    cur = records(np.zeros(1, A.CURSORS))
    cur["t_now"], cur["t_y"], cur["t_start"], cur["t_stop"] = -np.inf, t0, t0, t_stop
    for p, i in enumerate(pops):
        C, o, n = pi[p, A.P_C], pi[p, A.P_OFF], pi[p, A.P_N]
        cs_p = slice(pi[p, A.P_COFF], pi[p, A.P_COFF] + C)
        nfr[A.N_V, o:o + n] = np.tile(np.broadcast_to(np.atleast_1d(layers[i].v_init), (C,)), n // C)
        if f32:
            nfr[A.N_V, o:o + n] = _round32(nfr[A.N_V, o:o + n])
        if layers[i].step_gain is not None:
            csr[A.CS_GNOW, cs_p] = np.broadcast_to(layers[i].step_gain[0], (C,))
        if layers[i].step_bias is not None:
            csr[A.CS_BNOW, cs_p] = np.broadcast_to(layers[i].step_bias[0], (C,))
    log = 2 * (N + 1) if "spike_times" in record else 0
    st = AsyncState(cur=cur[0], si=si, sf=sf, su=np.zeros(2 * N, np.uint8), queue=records(np.empty(queue_limit, ENTRY)),
                    log=records(np.empty(log, A.LOG_ENTRY)))
    yf = rows(sf, "sf_readout", 4, n_out)
    row = rows(si, "si_row", 4, L)

    def set_frame(frame):
        currents, y_const, _ = _constant_currents(network, frame)
        for p, i in enumerate(pops):
            nfr[A.N_CST, pi[p, A.P_OFF]:pi[p, A.P_OFF] + pi[p, A.P_N]] = currents[i].T.ravel()
        if has_out:
            yf[A.Y_CST] = _round32(y_const) if f32 else y_const
        if not batch:
            for layer, count in macs.items():
                row[A.R_MAC, layer] += count

    def call(*args):
        nonlocal st
        while not run(net, st, *args):  # the spike-time log is nearly full: double it
            n = int(st.cur["log_size"])
            grown = records(np.empty(n + st.log.size, A.LOG_ENTRY))   # (np.concatenate promotes record fields slowly)
            grown[:n] = st.log[:n]
            st = st._replace(log=grown)

    # ---------------------------------------------------------------- run
    analog = frames is not None and not is_counts
    empty = (np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))
    if resume is None:
        set_frame(frames[0] if analog else None)
        start(net, st)
    else:
        st = _restore(st, resume.data)
    if analog:
        for k in range(1, min(frames.shape[0], steps)):
            if np.array_equal(frames[k], frames[k - 1]):
                continue
            tb = t0 + (k + (1 if batch else 0)) * float(dt_us)
            call(*empty, tb, True, False)
            set_frame(frames[k])
            if not batch:
                rebase(net, st, tb)
    elif event_input:
        if frames is not None:
            counts = frames if frames.shape[0] > 1 else np.broadcast_to(frames, (steps,) + frames.shape[1:])
            chunks = _count_chunks(counts, steps, t0, dt_us)
        else:
            chunks = _event_chunks(inputs, network.input_shape, t0, t_stop, dt_us, steps, batch, chunk_events)
        for chunk in chunks:
            st.cur["input"] = 0
            call(*chunk, float(chunk[0][-1]), False, False)
    st.cur["input"] = 0
    if pause_us is not None:
        call(*empty, float(pause_us), not batch, False)
        return EngineState("async", float(pause_us), paused_options, network_signature(network),
                           _save(st, int(round((pause_us - t0) / dt_us))))
    call(*empty, t_stop, False, True)
    info = dict(simultaneous=simultaneous, input_kind="events" if event_input else "analog", t_stop_us=t_stop,
                queue_high_water=int(st.cur["heap_high"]),
                snapshot_synops_unreached=snap_b[int(st.cur["next_snap_b"]):].tolist(),
                path="general", fast_path_unsupported=why)
    res = _result(network, net, st, comp, record, synop_convention, info)
    return replace(res, dt_us=dt_us) if current_bias else res


def _check_float32(network: Network, comp, batch: bool, frames, current_bias: bool) -> None:
    """What ``dtype="float32"`` does not cover: anything the fast path does not (same coverage,
    so that both paths give the same float32 spikes)."""
    if batch:
        why = "simultaneous='batch'"
    elif frames is not None:
        why = "array input (frames)"
    elif current_bias:
        why = "biases that are currents per second"
    else:   # the layers the fast path knows, and only the plain sinks (v += a·w, q += a·w·s)
        if "float32_layers" not in comp.fields:   # per compiled network, once
            why = fastpath._unsupported_layers(network, comp)
            sinks = comp.fields["pi"][:, A.P_SINK]
            if why is None and np.any((sinks != A.SINK_IF) & (sinks != A.SINK_LIF)):
                why = "a population with a drive, gain or refractory period"
            comp.fields["float32_layers"] = why
        why = comp.fields["float32_layers"]
    if why:
        raise ValueError(f"dtype='float32' covers continuous time (simultaneous='none') on event input with IF/LIF "
                         f"populations without refractory period, per-step gain/bias, bias or delay; this call "
                         f"has {why}: use dtype='float64'")


def _check_current_bias(network: Network, batch: bool, inputs: Any) -> None:
    """What a network whose biases are currents per second (``bias_is_current``) cannot do."""
    why = None
    if batch:
        why = "simultaneous='batch' runs on a step grid, where a bias is a charge per step"
    elif network.has_readout and network.layers[-1].mode == "mean":
        why = "a mean Readout averages over steps"
    elif any(isinstance(l, NeuronSpec) and l.step_count is not None for l in network.layers):
        why = "per-step gain/bias tables count steps"
    elif not is_event_array(inputs) and isinstance(inputs, (np.ndarray, list, tuple, int, float)):
        why = "array input is a charge per step"
    if why:
        raise ValueError(f"this network's biases are currents per second (a NIR graph loaded with convention "
                         f"'exact' and no dt_us), but {why}; load the file with dt_us= to make them charges "
                         "per step")


def _save(st: AsyncState, k: int) -> dict:
    """The state arrays as they are (the lead's kernels own their layout), minus the unused tails of
    the queue (entries ``[0, heap_size)`` are the heap) and of the spike-time log."""
    heap, log = int(st.cur["heap_size"]), int(st.cur["log_size"])
    return dict(path="general", k=k, cur=np.array([st.cur], A.CURSORS), si=st.si.copy(), sf=st.sf.copy(), su=st.su.copy(),
                queue=np.array(st.queue[:heap]), log=np.array(st.log[:log]))   # plain arrays


def _restore(st: AsyncState, data: dict) -> AsyncState:
    """A fresh state (the same network and options) loaded with a saved one; the queue keeps its
    ``queue_limit`` capacity, the spike-time log at least its initial size."""
    if "cur" not in data or data["cur"].shape != (1,) or data["cur"].dtype != A.CURSORS:
        raise ValueError("resume=: the saved state does not fit this network and these options")
    for name in A.CURSORS.names:
        st.cur[name] = data["cur"][0][name]
    for name in ("si", "sf", "su"):
        if getattr(st, name).shape != data[name].shape:
            raise ValueError("resume=: the saved state does not fit this network and these options")
        getattr(st, name)[:] = data[name]
    heap, log = data["queue"].shape[0], data["log"].shape[0]
    if heap > st.queue.shape[0]:
        raise ValueError(f"resume=: the saved queue holds {heap} entries, more than queue_limit")
    st.queue[:heap] = data["queue"]
    if st.log.shape[0]:
        log_ = records(np.empty(max(st.log.shape[0], 2 * log), A.LOG_ENTRY))
        log_[:log] = data["log"]
        st = st._replace(log=log_)
    return st


def _result(network, net, st, comp, record, convention, info) -> SimulationResult:
    h, si, sf = net.h, st.si, st.sf
    K, L, N, n_out = int(st.cur["row"]), int(h["n_layers"]), int(h["n_neurons"]), int(h["n_out"])
    Kmax = int(h["n_rows"])
    pi = comp.fields["pi"]
    counts = si[h["si_out_counts"]:h["si_out_counts"] + 4 * Kmax * L].reshape(4, Kmax, L)[:, :K].copy()
    rast = si[h["si_raster"]:h["si_raster"] + Kmax * N].reshape(Kmax, N) if "spikes" in record else None
    mem = sf[h["sf_membrane"]:h["sf_membrane"] + Kmax * N].reshape(Kmax, N) if "membrane" in record else None
    rasters, membranes, times = {}, {}, {}
    m = int(st.cur["log_size"])
    for p, i in enumerate(comp.pops):
        name, shape = network.layers[i].name, network.shapes[i]
        C, H, W, off, n = (int(pi[p, c]) for c in (A.P_C, A.P_H, A.P_W, A.P_OFF, A.P_N))
        for arr, out in ((rast, rasters), (mem, membranes)):
            if arr is not None:
                out[name] = arr[:K, off:off + n].reshape(K, H, W, C).transpose(0, 3, 1, 2).reshape((K,) + shape)
        if "spike_times" in record:
            g = st.log["neuron"][:m]
            sel = np.flatnonzero((g >= off) & (g < off + n))
            sel = np.repeat(sel, st.log["count"][sel])
            chw = np.arange(n).reshape(C, H, W).transpose(1, 2, 0).ravel()  # local index -> flat (C, H, W)
            rec = np.empty(sel.size, dtype=[("t_us", np.float64), ("neuron", np.int64)])
            rec["t_us"], rec["neuron"] = st.log["t"][sel], chw[st.log["neuron"][sel] - off]
            times[name] = np.sort(rec, order=("t_us", "neuron"))
            if i == len(network.layers) - 1:     # the output population, in emission order (decoding)
                info["output_spikes"] = (rec["t_us"].copy(), rec["neuron"].copy())
    info["row_kind"] = si[h["si_out_kind"]:h["si_out_kind"] + K].copy()
    if "spike_times" in record:
        info["spike_times"] = times
    logits = sf[h["sf_out_logits"]:h["sf_out_logits"] + Kmax * n_out].reshape(Kmax, n_out)[:K].copy()
    return SimulationResult(
        engine="async", layer_names=tuple(layer.name for layer in network.layers),
        times_us=sf[h["sf_out_t"]:h["sf_out_t"] + K].copy(), logits=logits, spikes_per_row=counts[A.R_SP],
        synops_per_row=counts[A.R_SYN], macs_per_row=counts[A.R_MAC], neuron_updates_per_row=counts[A.R_UPD],
        synop_convention=convention, dt_us=float(net.nf[A.F_DT]) or None, rasters=rasters, membranes=membranes,
        info=info)
