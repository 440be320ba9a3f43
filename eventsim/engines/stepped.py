"""Clock-driven engine: the exact twin of the PyTorch reference modules.

Each step, layer by layer: weighted layers scatter their non-zero inputs into output currents
(:mod:`eventsim.kernels.layers`), neuron populations advance by :func:`~eventsim.kernels.neuron.neuron_step`,
and the readout accumulates. Alongside every value tensor travels an integer *event count*
tensor (``None`` for analog signals) so that synops are exact: ``Σ_i n_i · d_i``.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .. import counting
from ..kernels.layers import linear_scatter, weighted_events
from ..kernels.neuron import cuba_population_step, population_step, population_step_multi
from ..network import Add, Branch, Conv2d, Flatten, Linear, Network, NeuronSpec, Readout
from ..neurons import CubaLI, CubaLIF, Recurrent, readout_leak, synapse_per_step
from ..result import SimulationResult
from .cache import cache_for
from .forward import POOL_MODE, pool_forward, weighted_forward
from .inputs import check_start, check_steps, prepare_steps
from .params import check_record, membrane_floor, neuron_params
from .state import EngineState, check_pause, check_window, check_windowed, network_signature

__all__ = ["simulate_stepped", "RECORDABLE"]

RECORDABLE = ("spikes", "membrane")


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
    record = check_record(record, RECORDABLE)
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
                out = weighted_forward(layer, val, shape, wt.get(i))
                if cnt is not None:
                    synops[k, i] = weighted_events(cnt.ravel(), degree[i])
                else:
                    macs[k, i] = dense_macs[i]
                val, cnt = out, None
            elif type(layer) in POOL_MODE:
                out, out_n = pool_forward(layer, val, cnt, shape)
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
