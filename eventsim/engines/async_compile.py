"""The asynchronous engine's view of a network, built once per network and settings: which
layers carry spikes or constant currents (:func:`_classify`), the constant currents themselves
(:func:`_constant_currents`), and the packed tables its kernels read (:func:`_compile`: populations,
per-channel parameters, ops, paths and delay groups; the layout is
:mod:`eventsim.kernels.async_layout`). The general path (:mod:`~eventsim.engines.asynchronous`)
and the fast path (:mod:`~eventsim.engines.fastpath`) both start from these tables.
"""
from __future__ import annotations

from math import ceil
from typing import NamedTuple

import numba
import numpy as np

from .. import counting
from ..kernels import async_layout as A
from ..kernels.async_queue import MAX_LAYERS, MAX_PHASES, PHASE_LATE_CHECK
from ..network import LIF, Add, Branch, Conv2d, Flatten, Linear, MaxPool2d, Network, NeuronSpec, Readout
from ..neurons import Recurrent
from .forward import POOL_MODE, pool_forward, weighted_forward
from .model_tables import readout_rows as _readout_rows, synapse_rows as _synapse_rows
from .params import membrane_floor, neuron_params

#: a network whose biases are currents per second (NIR ``exact`` without dt_us) runs them as a
#: charge per this many µs
CURRENT_TIME_BASE_US = 1e6


class _Packer:
    """Concatenates arrays of one dtype after a header, remembering each one's offset."""

    def __init__(self, dtype, header: int = 0):
        self.dtype, self.parts, self.size = dtype, [np.zeros(header, dtype)], header

    def add(self, values, size: int | None = None) -> int:
        arr = np.zeros(size, self.dtype) if size is not None else np.ascontiguousarray(values, self.dtype).ravel()
        self.parts.append(arr)
        self.size += arr.size
        return self.size - arr.size

    def array(self) -> np.ndarray:
        return np.concatenate(self.parts)


def records(a: np.ndarray) -> np.ndarray:
    """A structured array as the kernels take it. Interpreted (``NUMBA_DISABLE_JIT=1``), a
    ``np.recarray`` view, whose records allow the kernels' attribute syntax (``net.pop[p].offset``,
    ``st.cur.t_now = t``) in plain Python; compiled, the array itself (Numba reads fields by name
    either way, and dispatches a plain array faster than a subclass)."""
    return a.view(np.recarray) if numba.config.DISABLE_JIT else a


def _net_floats(comp: "_Compiled", dt_us: float | None) -> tuple[np.ndarray, dict]:
    """``net.nf`` (see :mod:`eventsim.kernels.async_layout`) and the header fields (``nf_*``) of its tables.
    Nothing in it depends on the run, so it is built once per compiled network and shared by
    every call (the kernels never write it): the weights are not copied per sample. It stays
    writeable: Numba dispatches read-only arrays through its slow typing path."""
    nf = _Packer(np.float64)
    nf.add([dt_us or 0.0])
    f = comp.fields
    slots = {name: nf.add(f[key]) for name, key in (("nf_cf", "cf"), ("nf_tab", "tab"),
                                                     ("nf_grp_delay", "grp_delay"), ("nf_w", "W"))}
    slots["nf_one"] = nf.add([1.0])
    slots["nf_ycf"] = nf.add(f["ycf"])
    return nf.array(), slots


def _i64(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.int64).reshape(-1))


def _f64(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


# ----------------------------------------------------------------------------- network analysis


def _classify(network: Network, event_input: bool) -> list[tuple[bool, str | None]]:
    """Per layer output ``(has_constant_part, event_kind)``, event kind ``"spike"`` (unit events
    from the input or a population), ``"current"`` (weighted events) or None. Raises for
    topologies the event-driven engine cannot run exactly."""
    inp = (not event_input, "spike" if event_input else None)
    out: list[tuple[bool, str | None]] = []
    for i, layer in enumerate(network.layers):
        const, ev = inp
        if isinstance(layer, (Conv2d, Linear, MaxPool2d)):
            if ev == "current" or (const and ev is not None):
                what = "the weighted output of another layer" if ev == "current" else "spikes mixed with a constant current"
                raise ValueError(
                    f"{layer.name}: engine='async' needs spikes or a constant input here, but it receives {what}; "
                    "put a neuron population in between, or use engine='stepped'")
        if isinstance(layer, (Conv2d, Linear)):
            inp = (const or _has_bias(layer), "current" if ev else None)
        elif isinstance(layer, Branch):
            inp = (not event_input, "spike" if event_input else None) if layer.source == -1 else out[layer.source]
        elif isinstance(layer, Add):
            s_const, s_ev = (not event_input, "spike" if event_input else None) if layer.source == -1 else out[layer.source]
            kinds = {k for k in (ev, s_ev) if k}
            inp = (const or s_const, "current" if "current" in kinds else ("spike" if kinds else None))
        elif isinstance(layer, NeuronSpec):
            inp = (False, "spike")
        elif isinstance(layer, Readout):
            inp = (False, None)
        out.append(inp)
    return out


def _has_bias(layer) -> bool:
    """A bias that is not all zero: an all-zero bias is no current (and needs no ``dt_us``)."""
    return layer.bias is not None and bool(np.any(layer.bias))


def bias_is_current(network: Network) -> bool:
    """True for a network whose biases are currents per second, not charges per step (a NIR graph
    loaded under a continuous convention such as ``"exact"`` without ``dt_us``)."""
    return bool(network.metadata.get("bias_is_current")) and any(
        _has_bias(layer) for layer in network.layers if isinstance(layer, (Conv2d, Linear)))


def _constant_currents(network: Network, frame: np.ndarray | None):
    """Constant (spike-free) input current of every population and of the readout for one analog
    frame (``None``: event input, biases only), with the stepped engine's arithmetic. Returns
    ``({layer index: (C, H·W) current}, readout current, [weighted layers fed an analog input])``."""
    x = None if frame is None else np.asarray(frame, dtype=np.float64)
    outs, pops, analog = [], {}, []
    readout = None
    for i, layer in enumerate(network.layers):
        shape = network.shapes[i]
        if isinstance(layer, (Conv2d, Linear)):
            if x is None and not _has_bias(layer):
                out = None
            else:
                if x is not None:
                    analog.append(i)
                out = weighted_forward(layer, x, shape, bias=_has_bias(layer))
            x = out
        elif type(layer) in POOL_MODE and x is not None:
            x, _ = pool_forward(layer, x, None, shape)
        elif isinstance(layer, Flatten) and x is not None:
            x = x.reshape(shape)
        elif isinstance(layer, Branch):
            x = (None if frame is None else np.asarray(frame, np.float64)) if layer.source == -1 else outs[layer.source]
        elif isinstance(layer, Add):
            src = (None if frame is None else np.asarray(frame, np.float64)) if layer.source == -1 else outs[layer.source]
            x = x if src is None else (src if x is None else x + src)
        elif isinstance(layer, NeuronSpec):
            c = shape[0]
            pops[i] = np.zeros((c, int(np.prod(shape)) // c)) if x is None else np.asarray(x, np.float64).reshape(c, -1)
            x = None
        elif isinstance(layer, Recurrent):   # its bias is a constant current into the population before
            if layer.bias is not None:
                pops[i - 1] = pops[i - 1] + layer.bias.reshape(pops[i - 1].shape)
            x = None
        elif isinstance(layer, Readout):
            readout = np.zeros(int(np.prod(shape))) if x is None else np.asarray(x, np.float64).ravel()
        outs.append(x)
    return pops, readout, analog


def _population_params(spec: NeuronSpec, channels: int, dt_us: float | None, batch: bool):
    """Per-channel θ, amplitude, λ (per step), τ (µs) and v_init; the continuous model (MODEL_IF, MODEL_LIF)."""
    lif = isinstance(spec, LIF)
    tau_s = getattr(spec, "tau_s", None)
    params = neuron_params(spec, channels, dt_us if (dt_us or not lif or tau_s is None) else 1.0)
    if not lif:
        return params, np.full(channels, np.inf), A.MODEL_IF
    if tau_s is not None:
        return params, np.full(channels, tau_s * 1e6), A.MODEL_LIF
    if dt_us is None:
        raise ValueError(f"{spec.name}: a per-step leak needs a step length to become a time constant "
                         "(τ = −Δt / ln λ); pass dt_us=, or give the LIF as tau_s=")
    lam = params.leak
    if np.all(lam == 1.0):
        return params, np.full(channels, np.inf), A.MODEL_IF
    with np.errstate(divide="ignore"):
        tau = np.where(lam == 1.0, np.inf, -dt_us / np.log(lam))   # λ = 1: no leak, IF arithmetic
    return params, tau, A.MODEL_LIF


class _Compiled(NamedTuple):
    fields: dict          # tables that depend on the network only (``pop``, ``op_table``: the kernels' records)
    pops: list            # layer index of each population
    n_neurons: int
    n_channels: int
    n_windows: int
    buffer: int
    tables: int | None    # steps covered by per-step gain/bias tables (None: no tables)
    analog_macs: dict     # layer index -> dense MACs, for weighted layers fed an analog input


def _compile(network: Network, kinds, event_input: bool, convention: str, dt_us: float | None,
             batch: bool) -> _Compiled:
    """Populations, channels, ops, paths and delay groups as the packed arrays of :class:`AsyncNet`."""
    layers = network.layers
    L = len(layers)
    pops = [i for i, layer in enumerate(layers) if isinstance(layer, NeuronSpec)]
    P = len(pops)
    pop_of = {layer: p for p, layer in enumerate(pops)}
    pi, pf, cf, tab, off, coff, tab_off, tables = np.zeros((P, A.N_PI), np.int64), np.zeros((P, A.N_PF)), [], [], 0, 0, 0, None
    for p, i in enumerate(pops):
        spec, shape = layers[i], network.shapes[i]
        if len(shape) not in (1, 3):
            raise ValueError(f"{spec.name}: population shape {shape} is neither (C,) nor (C, H, W)")
        C = shape[0]
        H, W = (shape[1], shape[2]) if len(shape) == 3 else (1, 1)
        params, tau, model = _population_params(spec, C, dt_us, batch)
        src_i = network.input_of(i)
        rec = layers[i + 1] if i + 1 < L and isinstance(layers[i + 1], Recurrent) else None
        drive = bool(kinds[src_i][0] if src_i >= 0 else not event_input) or spec.step_bias is not None \
            or (rec is not None and rec.bias is not None)
        syn_rows = _synapse_rows(spec, C, dt_us, batch)
        if syn_rows is not None:
            model = A.MODEL_CUBA
        if drive and not batch and not dt_us and not bias_is_current(network):
            raise ValueError(f"{spec.name}: a constant current (bias or analog input) is a charge per step; "
                             "pass dt_us= to turn it into a current per µs")
        S = spec.step_count
        if S is not None:
            tables = S if tables is None else min(tables, S)
            g = np.ones((S, C)) if spec.step_gain is None else np.broadcast_to(spec.step_gain, (S, C))
            b = np.zeros((S, C)) if spec.step_bias is None else np.broadcast_to(spec.step_bias, (S, C))
            tab.append(np.stack([np.ravel(g), np.ravel(b)], axis=1).ravel())  # (gain, bias) pairs
        inv_tau = np.where(np.isinf(tau), 0.0, 1.0 / np.where(np.isinf(tau), 1.0, tau))
        gain = spec.step_gain is not None
        refr = float(spec.refractory_us)
        plain = not gain and refr == 0.0
        if not plain or model == A.MODEL_CUBA:   # the general sink (kernels.async_neuron, async_cuba)
            kind = A.SINK_GENERAL
        elif not drive:
            kind = A.SINK_IF if model == A.MODEL_IF else A.SINK_LIF
        elif model == A.MODEL_IF:
            kind = A.SINK_DRIVEN_IF
        else:
            kind = A.SINK_DRIVEN_LIF if np.all(np.isfinite(tau)) else A.SINK_GENERAL
        for col, val in ((A.P_LAYER, i), (A.P_OFF, off), (A.P_N, C * H * W), (A.P_C, C), (A.P_H, H), (A.P_W, W),
                         (A.P_COFF, coff), (A.P_MODEL, model), (A.P_GE, params.compare_ge),
                         (A.P_ZERO, params.reset_zero), (A.P_IFIRST, params.integrate_first), (A.P_DRIVE, drive),
                         (A.P_GAIN, gain), (A.P_BIAS, spec.step_bias is not None), (A.P_TAB, tab_off),
                         (A.P_UNIFORM, np.all(tau == tau[0])), (A.P_SINK, kind),
                         (A.P_CHECKPH, PHASE_LATE_CHECK if rec is not None else 1)):
            pi[p, col] = int(val)
        pf[p, A.PF_REFR], pf[p, A.PF_ITMAX] = refr, float(inv_tau.max())
        if not batch and (spec.v_min is not None or (spec.multi_spike and params.reset_zero)):
            what = "a membrane floor v_min (a per-step clamp)" if spec.v_min is not None else \
                "multi_spike with reset='zero' (several spikes, then 0, in one step)"
            raise ValueError(f"{spec.name}: {what} is a step semantics: run it with engine='stepped' or "
                             "engine='async' with simultaneous='batch' and dt_us=")
        pi[p, A.P_STEPX] = (A.STEPX_MULTI if spec.multi_spike else
                            (A.STEPX_FLOOR if spec.v_min is not None else 0)) if batch else 0
        floor = membrane_floor(spec, C)
        cf.append(np.concatenate([np.stack([params.threshold, params.amplitude, params.leak, tau, inv_tau]),
                                  syn_rows if syn_rows is not None else np.zeros((5, C)), floor[None]]))
        tab_off += S * C if S is not None else 0
        off += C * H * W
        coff += C
    pop = records(np.zeros(P, A.POP))   # the kernels' records: the columns P_* by name, and pf
    for col, name in enumerate(A.POP.names[:A.N_PI]):
        pop[name] = pi[:, col]
    pop["refractory_us"], pop["itau_max"] = pf[:, A.PF_REFR], pf[:, A.PF_ITMAX]
    f = dict(pi=pi, pf=pf, pop=pop, cf=np.ascontiguousarray(np.concatenate(cf, axis=1)) if cf else np.zeros((A.N_CF, 0)),
             tab=_f64(np.concatenate(tab)) if tab else _f64([]),
             l_pop=_i64([pop_of.get(i, -1) for i in range(L)]), g_pop=_i64(np.repeat(np.arange(P), pi[:, A.P_N])),
             ycf=_readout_rows(network, dt_us, batch))

    # ---------------------------------------------------------------- ops (one per layer) and paths
    op_of: dict[int, int] = {}
    op_rows, Wl, Dl, woff, doff, moff = [], [], [], 0, 0, 0

    def op(j: int) -> int:
        nonlocal woff, doff, moff
        if j in op_of:
            return op_of[j]
        layer, in_shape, out_shape = layers[j], network.input_shape_of(j), network.shapes[j]
        row = np.zeros(A.N_OP, np.int64)
        row[[A.O_INC, A.O_INH, A.O_INW]] = (tuple(in_shape) + (1, 1))[:3]
        row[[A.O_OUTC, A.O_OUTH, A.O_OUTW]] = (tuple(out_shape) + (1, 1))[:3]
        row[[A.O_LAYER, A.O_KH, A.O_KW, A.O_SH, A.O_SW, A.O_GROUPS]] = (j, 1, 1, 1, 1, 1)
        if layer.synaptic:
            row[[A.O_KIND, A.O_WOFF, A.O_DOFF]] = (A.OP_CONV if isinstance(layer, Conv2d) else A.OP_LINEAR, woff, doff)
            if isinstance(layer, Conv2d):
                row[[A.O_KH, A.O_KW, A.O_SH, A.O_SW, A.O_PH, A.O_PW, A.O_GROUPS]] = (
                    *layer.weight.shape[2:], *layer.stride, *layer.padding, layer.groups)
                w = layer.weight.transpose(1, 2, 3, 0)
            else:
                w = layer.weight.T
            Wl.append(np.ascontiguousarray(w).ravel())
            Dl.append(counting.out_degree(layer, in_shape, convention).ravel())
            woff += Wl[-1].size
            doff += Dl[-1].size
        else:
            row[[A.O_KH, A.O_KW, A.O_SH, A.O_SW, A.O_PH, A.O_PW, A.O_MODE, A.O_MOFF]] = (
                *layer.kernel_size, *layer.stride, *layer.padding, POOL_MODE[type(layer)], moff)
            if isinstance(layer, MaxPool2d):
                moff += int(np.prod(out_shape))
        op_rows.append(row)
        op_of[j] = len(op_rows) - 1
        return op_of[j]

    consumers = {i: network.consumers(i) for i in range(-1, L)}

    def walk(i: int, chain: list, delay: float, found: list) -> None:
        for j in consumers[i]:
            layer = layers[j]
            if isinstance(layer, (NeuronSpec, Readout)):
                found.append((pop_of.get(j, P), list(chain), delay))
            elif isinstance(layer, Recurrent):   # the spikes pass on; the feedback is its own path
                walk(j, chain, delay, found)
            elif layer.synaptic or type(layer) in POOL_MODE:
                walk(j, chain + [op(j)], delay + float(getattr(layer, "delay_us", 0.0)), found)
            else:
                walk(j, chain, delay, found)

    if L > MAX_LAYERS:
        raise ValueError(f"engine='async' supports up to {MAX_LAYERS} layers, the network has {L}")
    src, grp, gdelay, path, path_ops, buffer = [], [], [], [], [], 1
    for source in ([-1] if event_input else [None]) + pops:
        found: list = []
        if source is not None:
            walk(source, [], 0.0, found)
            if source >= 0 and source + 1 < L and isinstance(layers[source + 1], Recurrent):
                rec = layers[source + 1]
                d = rec.delay_us if rec.delay_us is not None else dt_us
                if d is None:
                    raise ValueError(f"{rec.name}: the feedback of a recurrent layer arrives one step later; "
                                     "pass dt_us= (or give the layer delay_us=)")
                found.append((pop_of[source], [op(source + 1)], float(d)))
        delays = sorted({0.0} | {d for _, _, d in found})
        if len(delays) > MAX_PHASES - 3:
            raise ValueError(f"a source reaches {len(delays)} different synaptic delays; engine='async' "
                             f"supports {MAX_PHASES - 3}")
        src.append((len(grp), len(delays)))
        for d in delays:
            if batch and d and abs(d / dt_us - round(d / dt_us)) > 1e-9:
                raise ValueError(f"a synaptic delay of {d} µs is not a whole number of steps of dt_us={dt_us}; "
                                 "simultaneous='batch' runs on the step grid")
            start = len(path)
            for tp, ops_on_path, dd in found:
                if dd == d:
                    path.append((tp, len(path_ops), len(ops_on_path)))
                    path_ops.extend(ops_on_path)
                    size = 1
                    for o in ops_on_path[:-1]:
                        r = op_rows[o]
                        fan = ceil(r[A.O_KH] / r[A.O_SH]) * ceil(r[A.O_KW] / r[A.O_SW])
                        size *= {A.OP_POOL: fan, A.OP_CONV: fan * (r[A.O_OUTC] // r[A.O_GROUPS]),
                                 A.OP_LINEAR: r[A.O_OUTC]}[int(r[A.O_KIND])]
                    buffer = max(buffer, size)
            grp.append((start, len(path), int(round(d / dt_us)) if dt_us else 0))
            gdelay.append(d)
    f.update(src=np.array(src, np.int64).reshape(-1, 2), grp=np.array(grp, np.int64).reshape(-1, 3),
             grp_delay=_f64(gdelay), path=np.array(path, np.int64).reshape(-1, 3), path_ops=_i64(path_ops),
             op=np.array(op_rows, np.int64).reshape(-1, A.N_OP), W=_f64(np.concatenate(Wl)) if Wl else _f64([]),
             D=_i64(np.concatenate(Dl)) if Dl else _i64([]), one=_f64([1.0]))
    f["op_table"] = records(np.ascontiguousarray(f["op"]).view(A.OP).reshape(-1))   # the same rows, fields by name
    analog_macs = {}
    for i, layer in enumerate(layers):
        src_i = network.input_of(i)
        if layer.synaptic and (kinds[src_i][0] if src_i >= 0 else not event_input):
            analog_macs[i] = int(counting.out_degree(layer, network.input_shape_of(i), convention).sum())
    return _Compiled(f, pops, int(off), int(coff), int(moff), int(buffer), tables, analog_macs)


#: values of ``simulate(..., engine="async", dtype=)``: the real type of membranes, weights,
#: thresholds and the per-event arithmetic (times stay float64, counters int64)
DTYPES = ("float64", "float32")


def check_dtype(dtype) -> str:
    """``"float64"`` or ``"float32"`` from a name or NumPy type (``None``: the default); ValueError
    naming the choices otherwise."""
    if dtype is None or (isinstance(dtype, str) and dtype in DTYPES):   # the common spellings, cheaply
        return dtype or "float64"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: the asynchronous engine computes in one of {list(DTYPES)} "
                         "(default 'float64')")
    return name


def _round32(a: np.ndarray) -> np.ndarray:
    """``a`` rounded to float32 values, kept as float64 (exactly representable)."""
    return np.asarray(a, np.float64).astype(np.float32).astype(np.float64)


def as_float32(comp: _Compiled) -> _Compiled:
    """The compiled network for ``dtype="float32"``: weights, thresholds and spike amplitudes rounded
    to float32 values (stored as float64; the kernels keep every result a float32 value), and
    ``fields["dtype"] = "float32"``."""
    f = dict(comp.fields)
    cf = f["cf"].copy()
    cf[A.C_THETA] = _round32(cf[A.C_THETA])
    cf[A.C_AMP] = _round32(cf[A.C_AMP])
    f.update(cf=cf, W=_round32(f["W"]), dtype="float32")
    return comp._replace(fields=f)
