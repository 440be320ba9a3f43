"""Clock-driven engine: the exact twin of the PyTorch reference modules.

Each step, layer by layer: weighted layers scatter their non-zero inputs into output currents
(:mod:`eventsim.kernels.layers`), neuron populations advance by :func:`~eventsim.kernels.neuron.neuron_step`,
and the readout accumulates. Alongside every value tensor travels an integer *event count*
tensor (``None`` for analog signals) so that synops are exact: ``Σ_i n_i · d_i``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .. import counting
from ..kernels.layers import conv2d_scatter, linear_scatter, pool2d, weighted_events
from ..kernels.neuron import cuba_population_step, population_step, population_step_multi
from ..network import (Add, AvgPool2d, Branch, Conv2d, Flatten, Linear, MaxPool2d, Network, NeuronSpec,
                       Readout, SumPool2d)
from ..neurons import CubaLI, CubaLIF, Recurrent, readout_leak, synapse_per_step
from ..result import SimulationResult
from .cache import cache_for
from .inputs import check_start, check_steps, events_to_steps, is_event_array
from .state import EngineState, check_pause, check_window, check_windowed, network_signature

__all__ = ["simulate_stepped", "prepare_steps", "neuron_params"]

_POOL_MODE = {SumPool2d: 0, AvgPool2d: 1, MaxPool2d: 2}
RECORDABLE = ("spikes", "membrane")


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


def prepare_steps(network: Network, inputs: Any, steps: int | None, dt_us: float | None,
                  input_kind: str, t_start_us: int = 0):
    """Turn user input into ``(frames, is_events, steps)``.

    * an event array (fields t, x, y, p) with ``dt_us``: event counts per step (``is_events``);
    * an array of ``network.input_shape``: an analog input repeated for ``steps`` steps;
    * an array ``(T, *input_shape)``: one input per step; integer/bool dtype means event counts,
      float means analog, unless ``input_kind`` says otherwise; with ``"auto"``, integers with negative
      values (signed spikes of a normalised image) are analog frames.

    ``frames`` is either ``(T, *input_shape)`` or ``(1, *input_shape)`` (repeated).
    """
    if input_kind not in ("auto", "analog", "events"):
        raise ValueError(f"input_kind={input_kind!r}: choose 'auto', 'analog' or 'events'")
    if dt_us is not None and not (isinstance(dt_us, (int, float, np.integer, np.floating))
                                  and np.isfinite(dt_us) and dt_us > 0):
        # a NaN step would make every LIF leak NaN and silently silence the network
        raise ValueError(f"dt_us must be a positive, finite step length in µs, got {dt_us!r}")
    shape = network.input_shape
    if is_event_array(inputs):
        if dt_us is None:
            raise ValueError("event input to the stepped engine needs a step length: pass dt_us=")
        frames = events_to_steps(inputs, shape, dt_us, steps, t_start_us).astype(np.float64)
        return frames, input_kind != "analog", frames.shape[0]
    arr = np.asarray(inputs)
    if arr.dtype.names is not None:
        raise ValueError(f"structured input with fields {arr.dtype.names}; events need fields t, x, y, p")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"inputs: expected a numeric array, got dtype {arr.dtype}")
    integral = arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)
    is_events = integral if input_kind == "auto" else input_kind == "events"
    if tuple(arr.shape) == shape:
        if steps is None:
            raise ValueError(f"a single analog input of shape {shape} is repeated each step: pass steps=")
        frames = arr[None]
    elif arr.ndim == len(shape) + 1 and tuple(arr.shape[1:]) == shape:
        frames = arr
        if steps is None:
            steps = arr.shape[0]
        elif steps > arr.shape[0]:
            raise ValueError(f"steps={steps} but the input has only {arr.shape[0]} steps")
    else:
        raise ValueError(f"inputs: shape {arr.shape}, expected {shape} (repeated) or (T, {', '.join(map(str, shape))})")
    frames = np.ascontiguousarray(frames, dtype=np.float64)
    if not np.all(np.isfinite(frames)):
        raise ValueError("inputs contain NaN or infinite values")
    if is_events and input_kind == "auto" and np.any(frames < 0):
        is_events = False           # signed spikes (poisson_encode of a normalised image): analog frames
    if is_events and (np.any(frames < 0) or np.any(frames != np.round(frames))):
        what = ("negative values: signed spikes such as poisson_encode() of a normalised image (BNTT on CIFAR) "
                "are not event counts" if np.any(frames < 0) else "non-integer values")
        raise ValueError(f"input_kind='events' needs non-negative integer event counts per step, but the input has "
                         f"{what}; pass input_kind='analog' (or 'auto') to feed it as one analog frame per step "
                         "(the same input currents; the first layer's work is then counted as dense MACs)")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return frames, is_events, int(steps)


def _weight_tables(network: Network, synop_convention: str) -> tuple[dict, dict, dict]:
    """Per synaptic layer: out-degree per input position, dense MACs, and (Linear) the transposed
    weights. Computed once per Network object and convention (:mod:`eventsim.engines.cache`)."""
    cache = cache_for(network)
    key = ("stepped", synop_convention)
    if key not in cache:
        degree, dense_macs, wt = {}, {}, {}
        for i, layer in enumerate(network.layers):
            if layer.synaptic:
                in_shape = network.input_shape_of(i)
                degree[i] = np.ascontiguousarray(counting.out_degree(layer, in_shape, synop_convention).ravel())
                dense_macs[i] = int(degree[i].sum())
                if isinstance(layer, (Linear, Recurrent)):
                    wt[i] = np.ascontiguousarray(layer.weight.T)
        cache[key] = (degree, dense_macs, wt)
    return cache[key]


def simulate_stepped(network: Network, inputs: Any, steps: int | None = None, dt_us: float | None = None,
                     record: str | Iterable[str] | None = None, synop_convention: str = "all",
                     input_kind: str = "auto", t_start_us: int = 0, pause_us: float | None = None,
                     resume: EngineState | None = None) -> SimulationResult | EngineState:
    """Run ``network`` clock-driven for ``steps`` steps. See :func:`eventsim.simulate`.

    With ``pause_us`` (a step boundary) the run stops after the steps that end by then and returns
    an :class:`~eventsim.engines.state.EngineState` (membranes, readout, step index and the rows so
    far); ``resume=`` continues it with the events of the next window (see :mod:`eventsim.engines.state`).
    """
    counting.check_convention(synop_convention)
    record = _check_record(record)
    t_start_us, steps = check_start(t_start_us), check_steps(steps)
    if float(t_start_us).is_integer():
        t_start_us = int(t_start_us)
    k0 = 0
    if pause_us is not None or resume is not None:
        check_windowed(inputs, steps is not None, "steps=")
        k0 = int(resume.data["k"]) if resume is not None else 0
        k1 = check_pause(pause_us, t_start_us, dt_us) if pause_us is not None else steps
        if not (k0 < k1 <= steps if pause_us is not None else k0 <= k1):
            raise ValueError(f"pause_us={pause_us!r} must lie after the resumed state "
                             f"({t_start_us + k0 * dt_us:g} µs) and no later than the end "
                             f"({t_start_us + steps * dt_us:g} µs)")
        t_from = t_start_us + k0 * int(dt_us)
        check_window(inputs, t_from, t_start_us + k1 * int(dt_us) if pause_us is not None else None)
        frames, is_events, _ = prepare_steps(network, inputs, k1 - k0, dt_us, input_kind, t_from)
    else:
        frames, is_events, steps = prepare_steps(network, inputs, steps, dt_us, input_kind, t_start_us)
        k1 = steps
    layers = network.layers
    n_layers = len(layers)
    if network.metadata.get("bias_is_current") and any(
            getattr(l, "bias", None) is not None and np.any(l.bias) for l in layers):
        raise ValueError("this network's biases are currents per second (a NIR graph loaded with convention "
                         "'exact' and no dt_us), which a step cannot hold: load the file with dt_us= to run it "
                         "stepped, or use engine='async' (continuous time)")

    # ------------------------------------------------------------- per-layer constants and state
    degree, dense_macs, wt = _weight_tables(network, synop_convention)
    params, state, gain_bias, floors, syn, feedback = {}, {}, {}, {}, {}, {}
    for i, layer in enumerate(layers):
        in_shape = network.input_shape_of(i)
        if isinstance(layer, NeuronSpec):
            if layer.refractory_us:
                raise ValueError(f"{layer.name}: refractory_us is supported by engine='async' only")
            n_steps = layer.step_count
            if n_steps is not None and steps > n_steps:
                raise ValueError(f"{layer.name}: per-step gain/bias covers {n_steps} steps, "
                                 f"but the simulation runs {steps}; pass steps<={n_steps}")
            c = in_shape[0]
            params[i] = neuron_params(layer, c, dt_us)
            v = np.empty((c, int(np.prod(in_shape)) // c))
            v[:] = params[i].v_init[:, None] if resume is None else resume.data[f"v{i}"]
            state[i] = v
            gain_bias[i] = (layer.step_gain, layer.step_bias)
            floors[i] = membrane_floor(layer, c)
            if isinstance(layer, CubaLIF):   # synaptic current, α and g per channel
                alpha, g = (np.ascontiguousarray(np.broadcast_to(a, (c,)), dtype=np.float64)
                            for a in synapse_per_step(layer, dt_us))
                syn[i] = (np.zeros_like(v) if resume is None else resume.data[f"i{i}"].copy(), alpha, g)
        if isinstance(layer, Recurrent):
            # feedback current waiting for the next step, and the spike counts that cause it
            # (at the first step: the bias alone, the feedback of no spikes)
            feedback[i] = (np.zeros(network.shapes[i]) if layer.bias is None else layer.bias.copy(),
                           np.zeros(network.shapes[i], np.int64)) if resume is None else (resume.data[f"fb{i}"].copy(), resume.data[f"fbn{i}"].copy())
        if getattr(layer, "delay_us", 0.0):
            raise ValueError(f"{layer.name}: delay_us is supported by engine='async' only")

    out_dim = int(np.prod(network.output_shape)) if network.has_readout else 0
    readout = np.zeros(out_dim)
    y_leak = y_syn = None
    if network.has_readout:   # leaky readouts (LI, CubaLI): per-output λ, α, g
        last = layers[-1]
        per_out = lambda a: np.ascontiguousarray(np.broadcast_to(  # noqa: E731
            np.asarray(a, np.float64).reshape((-1,) + (1,) * (len(network.output_shape) - 1)),
            network.output_shape).ravel())
        lam = readout_leak(last, dt_us)
        y_leak = per_out(lam) if np.any(lam != 1.0) or type(last) is not Readout else None
        if isinstance(last, CubaLI):
            y_syn = [np.zeros(out_dim) if resume is None else resume.data["readout_syn"].copy(),
                     *(per_out(a) for a in synapse_per_step(last, dt_us))]
    logits = np.zeros((steps, out_dim))
    spikes = np.zeros((steps, n_layers), np.int64)
    synops = np.zeros((steps, n_layers), np.int64)
    macs = np.zeros((steps, n_layers), np.int64)
    updates = np.zeros((steps, n_layers), np.int64)
    rasters = {layers[i].name: np.zeros((steps,) + network.shapes[i], np.int64 if layers[i].multi_spike else np.uint8)
               for i in params} if "spikes" in record else {}
    membranes = {layers[i].name: np.zeros((steps,) + network.shapes[i])
                 for i in params} if "membrane" in record else {}
    # the output population's counts and membrane per step, for decoding (eventsim.decoding)
    last = n_layers - 1
    out_pop = isinstance(layers[last], NeuronSpec)
    n_pop_out = int(np.prod(network.shapes[last])) if out_pop else 0
    out_counts = np.zeros((steps, n_pop_out), np.int64)
    out_membrane = np.zeros((steps, n_pop_out))
    if resume is not None and out_pop:
        out_counts[:k0], out_membrane[:k0] = resume.data["out_counts"], resume.data["out_membrane"]
    if resume is not None:
        readout[:] = resume.data["readout"]
        for name, arr in (("logits", logits), ("spikes", spikes), ("synops", synops), ("macs", macs),
                          ("updates", updates)):
            arr[:k0] = resume.data[name]
        for prefix, arrays in (("raster:", rasters), ("membrane:", membranes)):
            for name, arr in arrays.items():
                arr[:k0] = resume.data[prefix + name]

    for k in range(k0, k1):
        kf = k - k0 if frames.shape[0] > 1 else 0     # frames hold this window's steps
        val = frames[kf]
        cnt = val.astype(np.int64) if is_events else None
        outputs = []
        for i, layer in enumerate(layers):
            shape = network.shapes[i]
            if isinstance(layer, (Conv2d, Linear)):
                out = np.zeros(shape)
                if layer.bias is not None:
                    out += layer.bias.reshape((-1,) + (1,) * (len(shape) - 1))
                if isinstance(layer, Conv2d):
                    conv2d_scatter(val, layer.weight, layer.stride[0], layer.stride[1],
                                   layer.padding[0], layer.padding[1], layer.groups, out)
                else:
                    linear_scatter(val, wt[i], out)
                if cnt is not None:
                    synops[k, i] = weighted_events(cnt.ravel(), degree[i])
                else:
                    macs[k, i] = dense_macs[i]
                val, cnt = out, None
            elif type(layer) in _POOL_MODE:
                out = np.empty(shape)
                out_n = np.empty(shape, np.int64)
                src_n = cnt if cnt is not None else np.zeros(val.shape, np.int64)
                pool2d(val, src_n, layer.kernel_size[0], layer.kernel_size[1], layer.stride[0],
                       layer.stride[1], layer.padding[0], layer.padding[1], _POOL_MODE[type(layer)],
                       out, out_n)
                val, cnt = out, (out_n if cnt is not None else None)
            elif isinstance(layer, Flatten):
                val = val.reshape(shape)
                cnt = cnt.reshape(shape) if cnt is not None else None
            elif isinstance(layer, Branch):
                if layer.source == -1:
                    val = frames[kf]
                    cnt = val.astype(np.int64) if is_events else None
                else:
                    val, cnt = outputs[layer.source]
            elif isinstance(layer, Add):
                if layer.source == -1:
                    s_val = frames[kf]
                    s_cnt = s_val.astype(np.int64) if is_events else None
                else:
                    s_val, s_cnt = outputs[layer.source]
                val = val + s_val
                cnt = cnt + s_cnt if (cnt is not None and s_cnt is not None) else None
            elif isinstance(layer, NeuronSpec):
                p = params[i]
                v = state[i]
                current = np.ascontiguousarray(val, dtype=np.float64).reshape(v.shape)
                gain, bias = gain_bias[i]
                if gain is not None:
                    current = current * gain[k][:, None]
                if bias is not None:
                    current = current + bias[k][:, None]
                if i + 1 in feedback:   # a Recurrent layer after it: last step's weighted spikes
                    fb, fb_n = feedback[i + 1]
                    current = current + fb.reshape(v.shape)
                    synops[k, i + 1] = weighted_events(fb_n, degree[i + 1])
                out = np.empty(v.shape)
                out_n = np.empty(v.shape, np.int64)
                if i in syn:
                    i_syn, alpha, g = syn[i]
                    spikes[k, i] = cuba_population_step(v, i_syn, np.ascontiguousarray(current), alpha, g, p.leak,
                                                        p.threshold, p.amplitude, p.integrate_first, p.reset_zero,
                                                        p.compare_ge, out, out_n)
                elif layer.multi_spike or layer.v_min is not None:   # sinabs's MultiSpike / min_v_mem
                    spikes[k, i] = population_step_multi(v, current, p.leak, p.threshold, p.amplitude,
                                                         p.integrate_first, p.reset_zero, p.compare_ge,
                                                         layer.multi_spike, floors[i], out, out_n)
                else:
                    spikes[k, i] = population_step(v, current, p.leak, p.threshold, p.amplitude,
                                                   p.integrate_first, p.reset_zero, p.compare_ge, out, out_n)
                updates[k, i] = v.size
                val, cnt = out.reshape(shape), out_n.reshape(shape)
                if i == last:
                    out_counts[k] = out_n.ravel()
                    out_membrane[k] = v.ravel()
                if rasters:
                    rasters[layer.name][k] = out_n.reshape(shape)
                if membranes:
                    membranes[layer.name][k] = v.reshape(shape)
            elif isinstance(layer, Recurrent):   # feedback for the next step; the spikes pass on
                fb = np.zeros(shape) if layer.bias is None else layer.bias.copy()
                linear_scatter(np.ascontiguousarray(val, dtype=np.float64).ravel(), wt[i], fb)
                feedback[i] = (fb, np.ascontiguousarray(cnt).ravel().copy())
            elif isinstance(layer, Readout) and y_leak is not None:   # LI: Y ← λ·Y + I; CubaLI: through i
                inp = np.asarray(val, dtype=np.float64).ravel()
                if y_syn is not None:
                    y_syn[0] = y_syn[1] * y_syn[0] + y_syn[2] * inp
                    inp = y_syn[0]
                readout[:] = y_leak * readout + inp
                updates[k, i] = out_dim
                logits[k] = readout
                val, cnt = readout.reshape(shape), None
            elif isinstance(layer, Readout):
                readout += np.asarray(val, dtype=np.float64).ravel()
                updates[k, i] = out_dim
                logits[k] = readout / (k + 1) if layer.mode == "mean" else readout
                val, cnt = readout.reshape(shape), None
            else:  # pragma: no cover - the Network constructor admits only the types above
                raise TypeError(f"{layer.name}: unsupported layer type {type(layer).__name__}")
            outputs.append((val, cnt))

    if pause_us is not None:
        data = {"k": k1, "readout": readout.copy(), "logits": logits[:k1], "spikes": spikes[:k1],
                "synops": synops[:k1], "macs": macs[:k1], "updates": updates[:k1],
                "out_counts": out_counts[:k1], "out_membrane": out_membrane[:k1]}
        data.update({f"v{i}": v for i, v in state.items()})
        data.update({f"i{i}": s[0] for i, s in syn.items()})
        data.update({f"fb{i}": f[0] for i, f in feedback.items()})
        data.update({f"fbn{i}": f[1] for i, f in feedback.items()})
        if y_syn is not None:
            data["readout_syn"] = y_syn[0]
        data.update({"raster:" + name: arr[:k1] for name, arr in rasters.items()})
        data.update({"membrane:" + name: arr[:k1] for name, arr in membranes.items()})
        options = dict(steps=steps, dt_us=dt_us, record=record, synop_convention=synop_convention,
                       input_kind=input_kind, t_start_us=t_start_us)
        return EngineState("stepped", float(t_start_us + k1 * dt_us), options, network_signature(network), data)
    times = (np.arange(1, steps + 1, dtype=np.float64) * dt_us + t_start_us if dt_us
             else np.arange(1, steps + 1, dtype=np.float64))
    return SimulationResult(
        engine="stepped", layer_names=tuple(l.name for l in layers), times_us=times, logits=logits,
        spikes_per_row=spikes, synops_per_row=synops, macs_per_row=macs, neuron_updates_per_row=updates,
        synop_convention=synop_convention, dt_us=dt_us, rasters=rasters, membranes=membranes,
        info={"input_kind": "events" if is_events else "analog", "output_counts": out_counts,
              "output_membrane": out_membrane})


def _check_record(record) -> tuple[str, ...]:
    if record is None:
        return ()
    items = (record,) if isinstance(record, str) else tuple(record)
    for item in items:
        if item not in RECORDABLE:
            raise ValueError(f"record={item!r}: choose from {RECORDABLE}")
    return items
