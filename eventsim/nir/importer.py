"""NIR graph → eventsim :class:`~eventsim.network.Network` (see :mod:`eventsim.nir`).

Steps: collect the nodes (as dicts, via ``node.to_dict()``); fold ``Scale`` and ``Delay`` into a
neighbouring layer; order the DAG as eventsim's layer list with :func:`eventsim.graph.plan` (a
path that starts again from an earlier node is a :class:`~eventsim.network.Branch`, every further
input of a node an :class:`~eventsim.network.Add`, so both paths of a merge may hold layers); map each node through
:data:`MAPPERS`; rescale biases and readout gains for the convention; finally restore exact
eventsim values from node metadata where they agree with what NIR says.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from .. import network as nw
from .. import neurons as nn
from ..graph import plan
from .conventions import as_numbers, compress, get_convention, per_channel
from .graph import (ROUTING, UNSUPPORTED, WEIGHTED, Ctx as _Ctx, Node as _Node, adjacency,
                    array_field, collect, ends, fold, recurrent_edges, resolve_input_shape, topological)

__all__ = ["from_nir_graph", "MAPPERS", "UNSUPPORTED", "RESETS"]

RESETS = ("auto", "zero", "v_reset", "subtract")


def from_nir_graph(graph, *, convention=None, dt_us: float | None = None, reset: str = "auto",
                   input_shape=None, use_metadata: bool = True, legacy_reset: bool = False,
                   missing_reset=frozenset()) -> nw.Network:
    """Convert a ``nir.NIRGraph`` to an eventsim :class:`~eventsim.network.Network`.

    Parameters
    ----------
    graph : nir.NIRGraph
    convention : discretisation convention (``"exact"`` by default, or the one recorded by
        eventsim's exporter); see :mod:`~eventsim.nir.conventions`.
    dt_us : step length in µs (needed by ``"euler"``, by per-channel τ and by ``Delay`` under
        ``"sinabs"``; under ``"exact"`` a non-zero bias without it stays a current per second,
        which only the asynchronous engine's continuous time runs).
    reset : ``"auto"`` (NIR ≥ 1.0.6: reset to ``v_reset``, which must be 0; a file written before
        1.0.6 without ``v_reset`` subtracts θ), ``"zero"``/``"v_reset"``, or ``"subtract"``
        (for exporters that write ``v_reset = 0`` for subtractive neurons: snnTorch, sinabs).
    input_shape : overrides the shape of the graph's ``Input`` node.
    use_metadata : restore exact eventsim values stored by eventsim's exporter.
    legacy_reset, missing_reset : set by the file reader: the file predates NIR 1.0.6, and the
        neuron nodes that had no ``v_reset`` field.
    """
    if reset not in RESETS:
        raise ValueError(f"reset={reset!r}: choose one of {RESETS}")
    nodes, edges, gmeta = collect(graph, use_metadata)
    conv = get_convention(convention or gmeta.get("convention") or "exact")
    if dt_us is None:
        dt_us = gmeta.get("dt_us") if (convention is None or convention == gmeta.get("convention")) else None
        dt_us = conv.default_dt_us if dt_us is None else dt_us
    if dt_us is not None and not (float(dt_us) > 0 and np.isfinite(float(dt_us))):
        raise ValueError(f"dt_us must be a positive number of µs, got {dt_us!r}")
    dt_us = None if dt_us is None else float(dt_us)
    pred, succ = adjacency(nodes, edges)
    ctx = _Ctx(conv, dt_us, conv.step(dt_us), reset, legacy_reset, frozenset(missing_reset),
               nodes, pred, succ)
    in_name, out_name = ends(ctx)
    shape = resolve_input_shape(ctx, nodes[in_name], input_shape)
    recurrent_edges(ctx)
    order = topological(ctx)
    fold(ctx, order)
    order = [n for n in order if n in nodes]
    sink = out_name if out_name is not None else _sink(ctx, order)
    ctx.index[in_name] = -1
    rank = _rank(gmeta, order)
    steps = plan(ctx.pred, in_name, sink, rank=rank, describe=lambda n: nodes[n].where())
    extra_names: dict[str, list] = {}
    for step in steps:
        node = nodes[step.node]
        if step.kind == "branch":
            i = ctx.index[step.source]
            shape = ctx.input_shape if i == -1 else ctx.shapes[i]
            _emit(ctx, nw.Branch(source=i, name=_saved_name(node, "branch")), shape)
            continue
        if step.kind == "add":
            names = extra_names.setdefault(node.name, list(node.es.get("adds") or []))
            _add(ctx, node, step.source, names.pop(0) if names else None, shape)
            continue
        if node.name == out_name:
            break
        mapper = MAPPERS.get(node.type)
        if mapper is None:
            raise ValueError(_unsupported(node))
        if node.type in READOUTS and node.name != sink and ctx.succ[node.name] != [out_name]:
            raise ValueError(f"{node.where()}: a non-spiking integrator is supported only as the "
                             "network's readout, right before the Output (IR addition needed: a "
                             "hidden non-spiking layer)")
        layer = mapper(ctx, node, shape)
        try:
            out = tuple(layer.output_shape(shape))
        except ValueError as exc:
            raise ValueError(f"{node.where()}: {exc}") from None
        _emit(ctx, layer, out, node.es)
        ctx.index[node.name] = len(ctx.layers) - 1
        shape = out
        if node.name in ctx.recurrent:
            _append_recurrent(ctx, node, shape)
    if out_name is not None:
        out = nodes[out_name]
        recorded = out.f.get("shape")
        if recorded is not None:
            recorded = as_numbers(recorded, out.where("shape"))
        if recorded is not None and np.size(recorded) and np.prod(recorded) != int(np.prod(shape)):
            shown = [int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v) for v in recorded.reshape(-1)]
            raise ValueError(f"{out.where('shape')}: {shown}, but the layers "
                             f"before it produce {list(ctx.nir_shape(shape))}")
    layers = [_restore(ctx, i, layer) for i, layer in enumerate(ctx.layers)]
    meta = {"format": "nir", "convention": conv.name, "dt_us": dt_us}
    if conv.continuous and dt_us is None and any(
            getattr(layer, "bias", None) is not None and np.any(layer.bias) for layer in layers):
        meta["bias_is_current"] = True   # biases per second: engine='async' in continuous time
    meta.update(gmeta.get("metadata") or {})
    meta["format"] = "nir"
    if ctx.lifted:
        meta["nir_input_shape"] = list(ctx.nir_shape(ctx.input_shape))
    try:
        return nw.Network(ctx.input_shape, layers, metadata=meta)
    except ValueError as exc:
        raise ValueError(f"NIR graph does not form a valid eventsim network: {exc}") from None


def _sink(ctx: _Ctx, order: list[str]) -> str:
    """The one node without successors of a graph that has no Output node."""
    sinks = [n for n in order if not ctx.succ[n]]
    if len(sinks) != 1:
        raise ValueError(f"graph has no Output node and {len(sinks)} nodes without successors {sinks}; "
                         "add an Output node")
    return sinks[0]


def _rank(gmeta: dict, order: list[str]):
    """Tie-break for the linearisation: the layer order eventsim recorded when it wrote the file,
    else the graph's topological order."""
    saved = gmeta.get("order") if isinstance(gmeta.get("order"), list) else []
    pos = {n: i for i, n in enumerate(order)}
    first = {n: i for i, n in enumerate(saved) if n in pos}
    return lambda n: (first.get(n, len(first)), pos[n])


def _saved_name(node: _Node, key: str):
    name = node.es.get(key)
    return name if isinstance(name, str) else None


def _emit(ctx: _Ctx, layer: nw.Layer, shape: tuple, meta: dict | None = None) -> None:
    ctx.layers.append(layer)
    ctx.shapes.append(tuple(shape))
    ctx.metas[len(ctx.layers) - 1] = meta or {}


def _add(ctx: _Ctx, node: _Node, src: str, name, shape: tuple) -> None:
    i = ctx.index[src]
    other = ctx.input_shape if i == -1 else ctx.shapes[i]
    if tuple(other) != tuple(shape):
        raise ValueError(f"{node.where()}: merges {src!r} of shape {ctx.nir_shape(other)} with "
                         f"shape {ctx.nir_shape(shape)}; merged inputs must have equal shapes")
    _emit(ctx, nw.Add(source=i, name=name), shape)


READOUTS = ("I", "LI", "CubaLI")


def _append_recurrent(ctx: _Ctx, node: _Node, shape: tuple) -> None:
    """The cycle ``node → rec → node`` as a :class:`~eventsim.neurons.Recurrent` after the population;
    its bias is a current into the population, converted as the population's other biases."""
    rec = ctx.recurrent[node.name]
    w = array_field(rec, "weight", ndim=2)
    bias = None if rec.type == "Linear" else array_field(rec, "bias")
    if bias is not None and np.any(bias):
        ratio = ctx.ratios.get(node.name)
        if ratio is None:
            ctx.need_dt(rec, f"converting the bias of {rec.name!r} (a current) to charge per step")
        bias = bias * np.broadcast_to(np.asarray(ratio, dtype=np.float64), bias.shape)
    try:
        layer = nn.Recurrent(w, bias, name=rec.name)
        out = tuple(layer.output_shape(shape))
    except ValueError as exc:
        raise ValueError(f"{rec.where()}: {exc}") from None
    ctx.layers.append(layer)
    ctx.shapes.append(out)
    ctx.index[node.name] = len(ctx.layers) - 1
    ctx.metas[len(ctx.layers) - 1] = rec.es


def _unsupported(node: _Node) -> str:
    why = UNSUPPORTED.get(node.type)
    if why is None:
        return (f"{node.where()}: unknown NIR node type; eventsim maps "
                f"{sorted(set(MAPPERS) | {'Input', 'Output', 'Scale', 'Delay'})}")
    return f"{node.where()}: not supported by eventsim: {why}"


# ----------------------------------------------------------------------------- node mappers


def _pair(node: _Node, fld: str, default=None) -> tuple[int, int]:
    raw = node.f.get(fld, default)
    if raw is None:
        raise ValueError(f"{node.where(fld)}: missing")
    arr = np.atleast_1d(np.asarray(raw)).reshape(-1)
    if arr.size not in (1, 2) or arr.dtype.kind not in "iuf" or np.any(arr != np.round(arr)):
        raise ValueError(f"{node.where(fld)}: expected an int or a pair of ints, got {raw!r}")
    return (int(arr[0]), int(arr[-1]))


def _delay_us(ctx: _Ctx, node: _Node) -> float:
    if node.delay is None:
        return 0.0
    d = node.delay
    if d.size > 1 and np.any(d != d.flat[0]):
        raise ValueError(f"{node.where()}: the Delay after it varies per neuron; eventsim has one "
                         "delay per layer (IR addition needed: per-neuron delays)")
    d = float(d.flat[0])
    if d < 0:
        raise ValueError(f"{node.where()}: negative delay {d}")
    if ctx.conv.tau_unit == "steps":
        if ctx.dt_us is None:
            ctx.need_dt(node, "a Delay counted in steps")
        return d * ctx.dt_us
    return d * 1e6




def _map_linear(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    w = array_field(node, "weight", ndim=2)
    try:
        bias = None if node.type == "Linear" else array_field(node, "bias")
        return nw.Linear(w, bias, delay_us=_delay_us(ctx, node), name=node.name)
    except ValueError as exc:
        raise ValueError(f"{node.where()}: {exc}") from None


def _padding(ctx: _Ctx, node: _Node, kernel: tuple[int, int]) -> tuple[int, int]:
    raw = node.f.get("padding")
    if isinstance(raw, (str, bytes)):
        raw = raw.decode() if isinstance(raw, bytes) else raw
        if raw == "valid":
            return (0, 0)
        if raw == "same" and all(k % 2 for k in kernel):
            return (kernel[0] // 2, kernel[1] // 2)
        raise ValueError(f"{node.where('padding')}: {raw!r} with kernel {kernel} needs asymmetric "
                         "padding, which eventsim's Conv2d does not have")
    return _pair(node, "padding")


def _map_conv(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    one_d = node.type == "Conv1d"
    if one_d != ctx.lifted:
        raise ValueError(f"{node.where()}: mixes 1-D and 2-D convolutions/pooling; eventsim runs "
                         "Conv1d as a Conv2d over (channels, 1, length) only in all-1-D graphs")
    w = array_field(node, "weight", ndim=3 if one_d else 4)
    if one_d:
        w = w[:, :, None, :]
    dil = _pair(node, "dilation", 1)
    if dil != (1, 1):
        raise ValueError(f"{node.where('dilation')}: {dil}; eventsim's Conv2d has no dilation "
                         "(IR addition needed: Conv2d.dilation)")
    stride, kernel = _pair(node, "stride", 1), tuple(w.shape[2:])
    padding = _padding(ctx, node, kernel[1:] * 2 if one_d else kernel)
    if one_d:
        stride, padding = (1, stride[1]), (0, padding[1])
    groups = np.asarray(node.f.get("groups", 1))
    if groups.size != 1 or groups.dtype.kind not in "iu":
        raise ValueError(f"{node.where('groups')}: expected an int, got {node.f.get('groups')!r}")
    try:
        return nw.Conv2d(w, array_field(node, "bias"), stride=stride, padding=padding, groups=int(groups),
                         delay_us=_delay_us(ctx, node), name=node.name)
    except ValueError as exc:
        raise ValueError(f"{node.where()}: {exc}") from None


def _map_pool(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    if ctx.lifted:
        raise ValueError(f"{node.where()}: 2-D pooling in a graph with Conv1d has no eventsim form")
    cls = nw.SumPool2d if node.type == "SumPool2d" else nw.AvgPool2d
    try:
        return cls(_pair(node, "kernel_size"), stride=_pair(node, "stride"),
                   padding=_pair(node, "padding", 0), name=node.name)
    except ValueError as exc:
        raise ValueError(f"{node.where()}: {exc}") from None


def _map_flatten(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    nir_shape = ctx.nir_shape(shape)
    nd = len(nir_shape)
    start, end = (int(np.asarray(node.f.get(k, d))) for k, d in (("start_dim", 1), ("end_dim", -1)))
    recorded = node.f.get("input_type")
    batched = recorded is not None and np.size(recorded) == nd + 1
    if batched:           # the exporter counted a batch axis (sinabs, older nirtorch)
        start, end = start - 1, (end - 1 if end > 0 else end)
    start, end = start % nd if nd else 0, end % nd if nd else 0
    if nd > 1 and not (start == 0 and end == nd - 1):
        raise ValueError(f"{node.where()}: start_dim={node.f.get('start_dim')}, end_dim="
                         f"{node.f.get('end_dim')} over shape {nir_shape} keeps several axes; "
                         "eventsim's Flatten flattens everything to 1-D")
    return nw.Flatten(name=node.name)


def _reset(ctx: _Ctx, node: _Node, shape: tuple) -> str:
    if ctx.reset == "subtract":
        return "subtract"
    if node.name in ctx.missing_reset or node.f.get("v_reset") is None:
        return "subtract" if (ctx.reset == "auto" and ctx.legacy) else "zero"
    v_reset = per_channel(node.f["v_reset"], shape, node.where("v_reset"), ctx.nir_shape(shape))
    if np.any(v_reset != 0):
        raise ValueError(f"{node.where('v_reset')}: {v_reset.tolist()}; eventsim resets to 0 or "
                         "subtracts θ (IR addition needed: a reset potential), or load with "
                         "reset='subtract' if the exporter meant subtraction")
    return "zero"


def _param(ctx: _Ctx, node: _Node, fld: str, shape: tuple, positive: bool = False) -> np.ndarray:
    if node.f.get(fld) is None:
        raise ValueError(f"{node.where(fld)}: missing")
    value = per_channel(node.f[fld], shape, node.where(fld), ctx.nir_shape(shape))
    if positive and np.any(value <= 0):
        raise ValueError(f"{node.where(fld)}: must be > 0, got {value.tolist()}")
    return value


def _map_neuron(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    conv, dt = ctx.conv, ctx.dt
    theta = _param(ctx, node, "v_threshold", shape, positive=True)
    r = _param(ctx, node, "r", shape, positive=True)
    if dt is None and not conv.continuous:
        ctx.need_dt(node, f"convention {conv.name!r}")
    kwargs: dict[str, Any] = {"reset": _reset(ctx, node, shape), "name": node.name}
    if node.type == "LIF":
        tau = _param(ctx, node, "tau", shape, positive=True)
        v_leak = _param(ctx, node, "v_leak", shape)
        if np.any(v_leak != 0):
            raise ValueError(f"{node.where('v_leak')}: {v_leak.tolist()}; eventsim neurons rest at 0 "
                             "(IR addition needed: a resting potential)")
        k = np.asarray(conv.spike_gain(tau, dt), dtype=np.float64)
        ratio = None if dt is None else conv.const_gain(tau, dt) / k
        if conv.continuous and tau.ndim == 0:
            kwargs["tau_s"] = float(tau)
        else:
            lam = np.asarray(conv.leak(tau, ctx.need_dt(node, "a per-channel τ")), dtype=np.float64)
            if np.any(lam <= 0) or np.any(lam > 1):
                raise ValueError(f"{node.where('tau')}: τ = {tau.tolist()} gives a leak per step "
                                 f"{lam.tolist()} outside (0, 1] at dt_us={ctx.dt_us}; use a shorter "
                                 "step or convention='exact'")
            kwargs["leak"] = compress(lam)
        cls = nw.LIF
    else:
        k = np.asarray(conv.if_spike_gain(dt), dtype=np.float64)
        ratio = None if dt is None else conv.if_const_gain(dt) / k
        cls = nw.IF
    theta_u = compress(np.broadcast_to(theta / _snap(r * k), np.broadcast(theta, r, k).shape))
    kwargs["threshold"] = theta_u
    if node.amplitude is not None:
        kwargs["spike_amplitude"] = _amplitude(ctx, node, shape, theta_u)
    _rescale_inputs(ctx, node, None if ratio is None else compress(np.asarray(ratio)), None)
    if conv.neuron_options is not None and not isinstance(node.es.get("fields"), dict):
        # the exporter's own neuron semantics (sinabs); a file eventsim wrote restores its own values
        kwargs.update(conv.neuron_options(node.type, theta_u, ctx.reset))
    ctx.ratios[node.name] = None if ratio is None else compress(np.asarray(ratio))
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(f"{node.where()}: {exc}") from None


def _amplitude(ctx: _Ctx, node: _Node, shape: tuple, theta_u: np.ndarray):
    amp = node.amplitude
    if amp.size == 1 or np.all(amp == amp.flat[0]):
        if float(amp.flat[0]) <= 0:
            raise ValueError(f"{node.where()}: the Scale after it ({float(amp.flat[0])}) must be > 0")
        value = float(amp.flat[0])
        if np.allclose(value, theta_u, rtol=1e-9, atol=0) and \
                (node.es.get("fields") or {}).get("spike_amplitude") == "threshold":
            return "threshold"
        return value
    per = per_channel(amp, shape, node.where() + " Scale after it", ctx.nir_shape(shape))
    if np.allclose(per, theta_u, rtol=1e-9, atol=0):
        return "threshold"
    raise ValueError(f"{node.where()}: the Scale after it varies per channel; eventsim's spike "
                     "amplitude is one number or the threshold (IR addition needed)")


def _map_readout(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    conv, dt = ctx.conv, ctx.dt
    r = _param(ctx, node, "r", shape, positive=True)
    if dt is None and not conv.continuous:
        ctx.need_dt(node, f"convention {conv.name!r}")
    k = conv.if_spike_gain(dt)
    ratio = None if dt is None else conv.if_const_gain(dt) / k
    _rescale_inputs(ctx, node, ratio, compress(_snap(r * k)))
    return nw.Readout(name=node.name)


def _snap(gain) -> np.ndarray:
    """Input gains within 1e-12 of 1 are exactly 1: exporters write ``r = 1/k``, and ``r·k`` comes
    back with a rounding error that must not perturb weights or thresholds."""
    gain = np.asarray(gain, dtype=np.float64)
    return np.where(np.abs(gain - 1.0) <= 1e-12, 1.0, gain)


def _rescale_inputs(ctx: _Ctx, node: _Node, ratio, gain) -> None:
    """Convert the biases feeding ``node`` to charge per step (× ``ratio``) and fold an input gain
    into the weighted layer before it."""
    preds = ctx.pred[node.name]
    unit_gain = gain is None or np.all(gain == 1.0)
    if not unit_gain:
        p = preds[0] if len(preds) == 1 else None
        if p is None or ctx.nodes[p].type not in WEIGHTED or ctx.succ[p] != [node.name]:
            raise ValueError(f"{node.where('r')}: an input gain r·k = {np.asarray(gain).tolist()} ≠ 1 can "
                             "only be folded into a weighted layer feeding this node alone (IR "
                             "addition needed: Readout.gain)")
    for p in preds:
        path, q = [p], p
        while ctx.nodes[q].type in ROUTING and len(ctx.pred[q]) == 1:
            q = ctx.pred[q][0]
            path.append(q)
        if ctx.nodes[q].type not in WEIGHTED:
            continue
        i = ctx.index[q]
        layer = ctx.layers[i]
        has_bias = layer.bias is not None and np.any(layer.bias)
        if not has_bias and unit_gain:
            continue
        if has_bias and ratio is None and not ctx.conv.continuous:
            ctx.need_dt(node, f"converting the bias of {q!r} (a current) to charge per step")
        # a continuous convention without dt_us keeps the bias a current (per second, in the
        # population's units, as NIR defines it): from_nir_graph marks the network "bias_is_current"
        factor = np.ones(()) if ratio is None or not has_bias else np.asarray(ratio)
        exclusive = all(ctx.succ[a] == [b] for a, b in zip(path[1:], path[:-1])) and ctx.succ[p] == [node.name]
        if has_bias and np.any(factor != 1.0) and not (exclusive and (q == p or factor.ndim == 0)):
            raise ValueError(f"{node.where()}: the bias of {q!r} also reaches other layers, so it cannot "
                             f"be converted for this population under convention {ctx.conv.name!r}; "
                             "try convention='euler'")
        bias = None if layer.bias is None else layer.bias * (factor if unit_gain else factor * gain)
        weight = layer.weight if unit_gain else layer.weight * np.reshape(gain, (-1,) + (1,) * (layer.weight.ndim - 1))
        ctx.layers[i] = replace(layer, weight=weight, bias=bias)


def _cuba_params(ctx: _Ctx, node: _Node, shape: tuple, tau_field: str) -> tuple[dict, np.ndarray, Any]:
    """Membrane and synapse of a CubaLIF/CubaLI/LI node under the convention: IR keyword arguments,
    the gain ``K`` (eventsim's state is ``v / K``, so that an input enters with its weight) and the
    bias ratio (charge per step per unit of NIR current).

    * continuous conventions (``exact``): ``K = R·w_in/τ_mem`` with the synapse in tau form
      (``tau_syn_s``, ``tau_s``); per-channel τ take the per-step form with ``K·(1 − α)``;
    * the others: ``α, λ = leak(τ_syn), leak(τ_mem)``, ``K = R·k(τ_mem)·w_in·k(τ_syn)``.
    """
    conv, dt = ctx.conv, ctx.dt
    r = _param(ctx, node, "r", shape, positive=True)
    tau_m = _param(ctx, node, tau_field, shape, positive=True)
    v_leak = _param(ctx, node, "v_leak", shape) if node.f.get("v_leak") is not None else np.zeros(())
    if np.any(v_leak != 0):
        raise ValueError(f"{node.where('v_leak')}: {v_leak.tolist()}; eventsim neurons rest at 0 "
                         "(IR addition needed: a resting potential)")
    if dt is None and not conv.continuous:
        ctx.need_dt(node, f"convention {conv.name!r}")
    cuba = node.type in ("CubaLIF", "CubaLI")
    tau_s = _param(ctx, node, "tau_syn", shape, positive=True) if cuba else None
    w_in = (_param(ctx, node, "w_in", shape, positive=True) if node.f.get("w_in") is not None
            else np.ones(())) if cuba else np.ones(())
    kw: dict[str, Any] = {}
    if conv.continuous:
        gain = r * w_in / tau_m if cuba else r / tau_m
        ratio = dt if cuba else (None if dt is None else conv.const_gain(tau_m, dt) * tau_m)
        if tau_m.ndim == 0 and (tau_s is None or tau_s.ndim == 0):
            kw["tau_s"] = float(tau_m)
            if cuba:
                kw["tau_syn_s"] = float(tau_s)
            return kw, gain, ratio
        step = ctx.need_dt(node, "a per-channel τ")
        kw["leak"] = compress(np.asarray(conv.leak(tau_m, step), dtype=np.float64))
        if cuba:
            alpha = np.asarray(conv.leak(tau_s, step), dtype=np.float64)
            kw["syn_leak"] = compress(alpha)
            gain = gain * (1.0 - alpha)
            ratio = step / (1.0 - alpha)
        return kw, gain, ratio
    lam = np.asarray(conv.leak(tau_m, dt), dtype=np.float64)
    gain = r * np.asarray(conv.spike_gain(tau_m, dt), dtype=np.float64)
    ratio = np.asarray(conv.const_gain(tau_m, dt), dtype=np.float64) / np.asarray(conv.spike_gain(tau_m, dt))
    if cuba:
        alpha = np.asarray(conv.leak(tau_s, dt), dtype=np.float64)
        if np.any(alpha <= 0) or np.any(alpha >= 1):
            raise ValueError(f"{node.where('tau_syn')}: τ_syn = {tau_s.tolist()} gives a synaptic leak per "
                             f"step {alpha.tolist()} outside (0, 1) at dt_us={ctx.dt_us}")
        kw["syn_leak"] = compress(alpha)
        k_s = np.asarray(conv.spike_gain(tau_s, dt), dtype=np.float64)
        gain = gain * w_in * k_s
        ratio = np.asarray(conv.const_gain(tau_s, dt), dtype=np.float64) / k_s
    if np.any(lam <= 0) or np.any(lam > 1):
        raise ValueError(f"{node.where(tau_field)}: τ = {tau_m.tolist()} gives a leak per step "
                         f"{lam.tolist()} outside (0, 1] at dt_us={ctx.dt_us}; use a shorter step or "
                         "convention='exact'")
    kw["leak"] = compress(lam)
    return kw, gain, compress(ratio)


def _map_cuba_lif(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    theta = _param(ctx, node, "v_threshold", shape, positive=True)
    kw, gain, ratio = _cuba_params(ctx, node, shape, "tau_mem")
    theta_u = compress(np.broadcast_to(theta / _snap(gain), np.broadcast(theta, gain).shape))
    kw.update(threshold=theta_u, reset=_reset(ctx, node, shape), name=node.name)
    if node.amplitude is not None:
        kw["spike_amplitude"] = _amplitude(ctx, node, shape, theta_u)
    _rescale_inputs(ctx, node, ratio, None)
    ctx.ratios[node.name] = ratio
    try:
        return nn.CubaLIF(**kw)
    except ValueError as exc:
        raise ValueError(f"{node.where()}: {exc}") from None


def _map_leaky_readout(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    kw, gain, ratio = _cuba_params(ctx, node, shape, "tau_mem" if node.type == "CubaLI" else "tau")
    _rescale_inputs(ctx, node, ratio, compress(_snap(gain)))
    try:
        return (nn.CubaLI if node.type == "CubaLI" else nn.LI)(name=node.name, **kw)
    except ValueError as exc:
        raise ValueError(f"{node.where()}: {exc}") from None


def _map_threshold(ctx: _Ctx, node: _Node, shape: tuple) -> nw.Layer:
    theta = _param(ctx, node, "threshold", shape, positive=True)
    kw: dict[str, Any] = {"threshold": theta, "name": node.name}
    if node.amplitude is not None:
        kw["spike_amplitude"] = _amplitude(ctx, node, shape, theta)
    return nn.Threshold(**kw)


MAPPERS: dict[str, Callable[[_Ctx, _Node, tuple], nw.Layer]] = {
    "Affine": _map_linear, "Linear": _map_linear, "Conv2d": _map_conv, "Conv1d": _map_conv,
    "SumPool2d": _map_pool, "AvgPool2d": _map_pool, "Flatten": _map_flatten,
    "IF": _map_neuron, "LIF": _map_neuron, "I": _map_readout,
    "CubaLIF": _map_cuba_lif, "LI": _map_leaky_readout, "CubaLI": _map_leaky_readout, "Threshold": _map_threshold,
}


# ----------------------------------------------------------------------------- exact restore


def _close(a, b) -> bool:
    try:
        return np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                           rtol=1e-9, atol=1e-12)
    except (TypeError, ValueError):
        return False


_NOT_IN_NIR = ("v_init", "compare", "order", "step_gain", "step_bias", "refractory_us", "mode", "multi_spike",
               "v_min")


def _restore(ctx: _Ctx, i: int, layer: nw.Layer) -> nw.Layer:
    """Apply the exact eventsim values kept in node metadata where NIR agrees with them."""
    es = ctx.metas.get(i) or {}
    saved = es.get("fields")
    if not isinstance(saved, dict) or es.get("layer") not in (type(layer).__name__, "LIF"):
        return layer
    kw = {}
    if isinstance(saved.get("name"), str):
        kw["name"] = saved["name"]
    for name in ("bias", "threshold", "delay_us"):
        if name in saved and hasattr(layer, name):
            ours, theirs = getattr(layer, name), saved[name]
            if theirs is None and (ours is None or not np.any(ours)):
                kw[name] = None
            elif theirs is not None and ours is not None and _close(ours, theirs):
                kw[name] = theirs
    if isinstance(layer, (nw.NeuronSpec, nw.Readout)):
        kw.update({k: saved[k] for k in _NOT_IN_NIR if k in saved and hasattr(layer, k)})
    if isinstance(layer, nw.NeuronSpec):
        if saved.get("reset") == "subtract" and ctx.reset == "auto" and layer.reset == "zero":
            kw["reset"] = "subtract"
        amp = saved.get("spike_amplitude")
        if isinstance(amp, (int, float)) and not isinstance(layer.spike_amplitude, str) \
                and _close(layer.spike_amplitude, amp):
            kw["spike_amplitude"] = float(amp)
        leak_kw = None if isinstance(layer, nn.CubaLIF) else _restore_leak(ctx, layer, saved)
        if leak_kw is not None:
            fields_now = {k: getattr(layer, k) for k in layer.__dataclass_fields__ if k in
                          nw.NeuronSpec.__dataclass_fields__ and layer.__dataclass_fields__[k].init}
            fields_now.update(kw)
            fields_now.update(leak_kw)
            return nw.LIF(**fields_now)
    return replace(layer, **kw) if kw else layer


def _restore_leak(ctx: _Ctx, layer: nw.NeuronSpec, saved: dict) -> dict | None:
    """The original ``leak``/``tau_s`` of a LIF when consistent with what NIR says, else None."""
    leak, tau_s = saved.get("leak"), saved.get("tau_s")
    if isinstance(layer, nw.IF) and leak is not None and np.all(np.asarray(leak) == 1.0):
        return {"leak": leak, "tau_s": None}
    if not isinstance(layer, nw.LIF):
        return None
    ours = layer.leak if layer.leak is not None else (
        None if ctx.dt_us is None else np.exp(-ctx.dt_us * 1e-6 / layer.tau_s))
    if tau_s is not None and layer.tau_s is not None and _close(layer.tau_s, tau_s):
        return {"leak": None, "tau_s": float(tau_s)}
    if tau_s is not None and ours is not None and ctx.dt_us is not None and \
            _close(ours, np.exp(-ctx.dt_us * 1e-6 / tau_s)):
        return {"leak": None, "tau_s": float(tau_s)}
    if leak is not None and ours is not None and _close(ours, leak):
        return {"leak": leak, "tau_s": None}
    return None
