"""Fast path of the asynchronous engine: a kernel generated and compiled per network topology.

:func:`eventsim.engines.asynchronous.simulate_async` calls :func:`unsupported` once it has
validated a call; when that returns None the call runs here, else on the general path, and
``result.info["path"]`` says which (``"fast"`` or ``"general"``; ``info["fast_path_unsupported"]``
gives the reason of a fallback). ``EVENTSIM_FASTPATH=0`` turns the fast path off, ``=1`` uses it
for every supported call; by default (``auto``) a Network object's first calls run on the
general path until its kernel is worth compiling (:data:`AUTO_CALLS`), unless it is compiled
already (in this process, or on disk from an earlier one).

Covered: continuous time (``simultaneous="none"``) on event arrays (or an iterable of event
chunks), feed-forward and DAG networks (``Add``, ``Branch``) of Conv2d, Linear, Sum/Avg/MaxPool2d,
Flatten, IF and LIF (exact continuous-time leak) and a Readout (with a bias: a constant rate), with
zero delays; constant currents into IF and LIF populations (layer biases: predicted threshold
crossings in a heap, see :mod:`eventsim.kernels.fastpath_drive`); snapshot rows at times and at
synop budgets, per-layer counters, ``record="spikes"`` and ``"spike_times"``;
``pause_us``/``resume`` (windows: the kernel's ``pause`` ends a window, :func:`save_state` saves
its arrays); ``dtype="float64"`` or ``"float32"`` (float32 membranes V and weights W; the
generated source differs, so does its hash). Batch mode (``simultaneous="batch"``) has its own
generated kernel (:mod:`eventsim.engines.fastpath_batch`, :mod:`eventsim.kernels.fastpath_batch`)
for the same layers, on event arrays or count frames, with biases into populations as charges per
step. Everything else — analog array inputs (and count frames in continuous time), delays,
refractory periods, per-step gain/bias, biases that are currents per second,
``record="membrane"``, and any neuron kind or field this module does not know — runs on the
general path.

Windows. A paused run's ``EngineState.data`` holds the kernel's state arrays (plain NumPy, see
:data:`STATE_ARRAYS`), ``path="fast"``, the generated module's name and a digest of the
parameter arrays; the general path's states say ``path="general"``. A resumed call continues on
the path that paused it; a fast-path state that the fast path cannot continue (turned off, another
kernel, other weights) is a ValueError, never a silent restart.

Cache. The generator (:mod:`eventsim.kernels.fastpath_gen`) writes a self-contained module (it
imports nothing from eventsim) into :func:`kernel_dir`; its file name is the SHA-256 of its own
text, of the generator's and this module's source and of the Numba version. Numba's on-disk cache
(``cache=True``) is keyed by that file, so compiled code of an older generator can never be
loaded: an edit changes the name. A file whose text does not match its name is rewritten.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from fractions import Fraction
from itertools import chain
from dataclasses import fields
from pathlib import Path

import numba
import numpy as np

from .. import counting
from ..kernels import async_layout as A
from ..kernels import fastpath_batch as batch_gen
from ..kernels import fastpath_drive, fastpath_gen, fastpath_layers, fastpath_text
from ..network import IF, LIF, Add, AvgPool2d, Branch, Conv2d, Flatten, Linear, MaxPool2d, Readout, SumPool2d
from .._io import atomic_write_text
from ..result import SimulationResult
from .async_compile import _classify, _compile, _constant_currents, as_float32, check_dtype

__all__ = ["unsupported", "kernel_dir", "kernel_module", "kernel_source", "source_hash", "run_fast"]

#: IR fields the fast path knows, per layer class (any other class or field: general path)
_KNOWN = {
    Conv2d: {"weight", "bias", "stride", "padding", "groups", "delay_us", "name"},
    Linear: {"weight", "bias", "delay_us", "name"},
    SumPool2d: {"kernel_size", "stride", "padding", "name"},
    AvgPool2d: {"kernel_size", "stride", "padding", "name"},
    MaxPool2d: {"kernel_size", "stride", "padding", "name"},
    Flatten: {"name"}, Add: {"source", "name"}, Branch: {"source", "name"},
    Readout: {"mode", "name"},
    IF: {"threshold", "compare", "reset", "v_init", "order", "spike_amplitude", "step_gain", "step_bias",
         "refractory_us", "multi_spike", "v_min", "name"},
}
_KNOWN[LIF] = _KNOWN[IF] | {"leak", "tau_s"}
_MODULES: dict = {}
#: Numba-level inlining of the generated per-layer functions into ``flush``/``run`` ("always"): each
#: separately compiled function costs its own typing, CPython wrapper and LLVM pass (measured: the
#: shipped model compiles in about half the CPU time inlined)
INLINE = os.environ.get("EVENTSIM_FASTPATH_INLINE", "always")


#: automatic choice (``EVENTSIM_FASTPATH`` unset or ``auto``): the first calls on a Network object run
#: on the general path, unless its kernel is already compiled (this process or on disk) or the
#: input is large; from the AUTO_CALLS-th call on (a dataset loop) the kernel is compiled and used
AUTO_CALLS = 3
AUTO_EVENTS = 1_000_000


def unsupported(network, comp, batch: bool, frames, record, cache: dict, n_events: int,
                prefer: bool | None = None) -> str | None:
    """Why this call does not run on the fast path (None: it does).

    ``EVENTSIM_FASTPATH=0`` never uses it, ``=1`` whenever the call is supported; otherwise the
    caller's ``prefer`` (``simulate(..., fast_path=)``: True whenever supported, False never) or,
    when that is None, the automatic choice of :data:`AUTO_CALLS`."""
    mode = os.environ.get("EVENTSIM_FASTPATH", "auto")
    if mode not in ("0", "1") and prefer is not None:
        mode = "1" if prefer else "0"
    if mode == "0":
        return "disabled (EVENTSIM_FASTPATH=0 or fast_path=False)"
    if frames is not None:
        return "array input (frames)"
    if "membrane" in record:
        return "record='membrane'"
    if "fastpath_layers" not in comp.fields:   # per compiled network, once
        comp.fields["fastpath_layers"] = (batch_unsupported_layers if batch else _unsupported_layers)(
            network, comp)
    why = comp.fields["fastpath_layers"]
    if why is not None or mode == "1":
        return why
    name = _source(network, comp, record, cache, batch)[1]
    if name in _MODULES or (kernel_dir() / f"{name}.py").exists():
        return None
    calls = cache["fastpath_calls"] = cache.get("fastpath_calls", 0) + 1
    if calls >= AUTO_CALLS or n_events >= AUTO_EVENTS:
        return None
    return (f"auto: this network's kernel is not compiled yet (call {calls}); it is compiled on the "
            f"{AUTO_CALLS}rd call or for {AUTO_EVENTS:,} events or more (EVENTSIM_FASTPATH=1: always)")


def unknown_layer(network, mode: str = "") -> str | None:
    """The first layer neither generated kernel knows (a class or field missing from
    :data:`_KNOWN`, a synaptic delay, sinabs's step options), as a reason; None when there is none.
    ``mode`` is appended to the delay's reason (" (batch mode)")."""
    for layer in network.layers:
        known = _KNOWN.get(type(layer))
        if known is None:
            return f"{layer.name}: layer kind {type(layer).__name__}"
        extra = {f.name for f in fields(layer)} - known
        if extra:
            return f"{layer.name}: unknown fields {sorted(extra)}"
        if getattr(layer, "delay_us", 0.0):
            return f"{layer.name}: synaptic delay{mode}"
        if getattr(layer, "multi_spike", False) or getattr(layer, "v_min", None) is not None:
            return f"{layer.name}: sinabs step options (multi_spike, v_min)"
    return None


def _unsupported_layers(network, comp) -> str | None:
    why = unknown_layer(network)
    if why is not None:
        return why
    pi = comp.fields["pi"]
    for p, i in enumerate(comp.pops):
        spec = network.layers[i]
        if not (pi[p, A.P_SINK] in _SINKS or _mixed(comp, p, spec)) or spec.step_bias is not None:
            why = ("refractory period" if spec.refractory_us else "per-step gain" if spec.step_gain is not None
                   else "per-step bias" if spec.step_bias is not None else f"neuron model {int(pi[p, A.P_MODEL])}")
            return f"{spec.name}: {why}"
    return None


def batch_unsupported_layers(network, comp) -> str | None:
    """Why a batch-mode call of this compiled network is not covered by the batch kernel (None: it is)."""
    why = unknown_layer(network, " (batch mode)")
    if why is not None:
        return why
    pi = comp.fields["pi"]
    for p, i in enumerate(comp.pops):
        spec = network.layers[i]
        if spec.refractory_us:
            return f"{spec.name}: refractory period"
        if pi[p, A.P_GAIN] or pi[p, A.P_BIAS]:
            return f"{spec.name}: per-step gain/bias"
        if pi[p, A.P_MODEL] == A.MODEL_CUBA or pi[p, A.P_STEPX]:
            return f"{spec.name}: neuron model"
    if comp.analog_macs:
        return "a weighted layer fed a constant input (dense MACs per step)"
    return None


def batch_fields(spec, network, comp) -> None:
    """Add what the batch generator needs to a continuous :class:`~eventsim.kernels.fastpath_gen.FastSpec`:
    per population the per-step leak λ, the integrate/fire order and whether it takes a constant
    charge per step; the number of max-pool windows; whether the readout has a constant input."""
    pi, cf = comp.fields["pi"], comp.fields["cf"]
    for p, pop in enumerate(spec.pops):
        c0 = int(pi[p, A.P_COFF])
        pop.update(leak=cf[A.C_LEAK, c0:c0 + pop["C"]].copy(), ifirst=bool(pi[p, A.P_IFIRST]),
                   drive=bool(pi[p, A.P_DRIVE]))
    spec.n_windows = comp.n_windows
    spec.y_const = bool(network.has_readout and np.any(_constant_currents(network, None)[1] != 0.0))
    spec.batch = True


#: population kinds the generator knows: IF and LIF, without or with a constant current (a drive)
_SINKS = (A.SINK_IF, A.SINK_LIF, A.SINK_DRIVEN_IF, A.SINK_DRIVEN_LIF)


def _mixed(comp, p: int, spec) -> bool:
    """A driven LIF with an infinite τ on some channel (leak 1): the general path's generic sink,
    IF arithmetic on those channels and LIF arithmetic on the others."""
    pi = comp.fields["pi"]
    return (pi[p, A.P_SINK] == A.SINK_GENERAL and pi[p, A.P_MODEL] == 1 and bool(pi[p, A.P_DRIVE])
            and not pi[p, A.P_GAIN] and not spec.refractory_us)


def _drives(network, comp, dt_us: float) -> dict:
    """Per driven population (layer index): its drive per neuron, channels innermost, with the
    general path's arithmetic (``async_events.set_drive``: rate ``r = (C + b)/Δt`` per µs, b the
    per-step bias, 0 here; a LIF keeps ``v∞ = r·τ``)."""
    currents = _constant_currents(network, None)[0]
    f = comp.fields
    pi, cf, dt = f["pi"], f["cf"], float(dt_us)
    out = {}
    for p, i in enumerate(comp.pops):
        if not pi[p, A.P_DRIVE]:
            continue
        C, n = int(pi[p, A.P_C]), int(pi[p, A.P_N])
        c0 = int(pi[p, A.P_COFF])
        rate = (np.asarray(currents[i], np.float64).T.ravel() + 0.0) / dt
        leaky = np.tile(cf[A.C_ITAU, c0:c0 + C] != 0.0, n // C)   # else the IF form: the rate itself
        rate[leaky] = rate[leaky] * np.tile(cf[A.C_TAU, c0:c0 + C], n // C)[leaky]
        out[i] = rate
    return out


def _spec(network, comp, record) -> fastpath_gen.FastSpec:
    f = comp.fields
    pi, cf = f["pi"], f["cf"]
    pops = []
    for p, i in enumerate(comp.pops):
        c0, C = int(pi[p, A.P_COFF]), int(pi[p, A.P_C])
        kind = int(pi[p, A.P_SINK])
        mixed = _mixed(comp, p, network.layers[i])
        pops.append(dict(layer=i, name=network.layers[i].name, C=C, H=int(pi[p, A.P_H]), W=int(pi[p, A.P_W]),
                         off=int(pi[p, A.P_OFF]), lif=kind in (A.SINK_LIF, A.SINK_DRIVEN_LIF) or mixed, mixed=mixed,
                         ge=bool(pi[p, A.P_GE]), zero=bool(pi[p, A.P_ZERO]), reset=network.layers[i].reset,
                         theta=cf[A.C_THETA, c0:c0 + C].copy(), amp=cf[A.C_AMP, c0:c0 + C].copy(),
                         itau=cf[A.C_ITAU, c0:c0 + C].copy(), drive=bool(pi[p, A.P_DRIVE]),
                         tau=cf[A.C_TAU, c0:c0 + C].copy()))
    n_neurons = 0   # each population's state starts on a 64-byte boundary (V and W are 64-byte aligned)
    for pop in pops:
        pop["off"] = n_neurons
        n_neurons += -(-pop["C"] * pop["H"] * pop["W"] // 8) * 8
    sources = []
    src, grp, path, path_ops, ops = f["src"], f["grp"], f["path"], f["path_ops"], f["op"]
    for s in range(src.shape[0]):
        paths = []
        for gi in range(src[s, 0], src[s, 0] + src[s, 1]):
            for q in range(grp[gi, A.G_PATH0], grp[gi, A.G_PATH1]):
                tp, o0, n_ops = (int(x) for x in path[q])
                paths.append((tp, [ops[path_ops[o0 + k]] for k in range(n_ops)]))
        sources.append(paths)
    # the weighted layers whose out-degree table is dense (every tap a synapse: the default
    # convention, or no zero weight): their kernels count an event's synops from its taps
    dense = set()
    for r in ops:
        if int(r[A.O_KIND]) in (A.OP_CONV, A.OP_LINEAR):
            j = int(r[A.O_LAYER])
            shape = network.input_shape_of(j)
            full = counting.out_degree(network.layers[j], shape, "all").ravel()
            if np.array_equal(f["D"][int(r[A.O_DOFF]):int(r[A.O_DOFF]) + full.size], full):
                dense.add(j)
    has_out = network.has_readout
    summary = f"input {network.input_shape}; " + ", ".join(
        f"{layer.name} {network.shapes[k]}" for k, layer in enumerate(network.layers))
    return fastpath_gen.FastSpec(
        pops=pops, sources=sources, n_layers=len(network.layers), n_neurons=n_neurons,
        n_out=int(np.prod(network.output_shape)) if has_out else 0, out_layer=len(network.layers) - 1, dense=dense,
        out_mean=has_out and network.layers[-1].mode == "mean", record_raster="spikes" in record,
        record_times="spike_times" in record, summary=summary, inline=INLINE,
        f32=comp.fields.get("dtype") == "float32")


def kernel_dir() -> Path:
    """Where generated modules live: ``$EVENTSIM_FASTPATH_DIR``, else ``$NUMBA_CACHE_DIR/eventsim-fastpath``,
    else ``~/.cache/eventsim/fastpath``."""
    if os.environ.get("EVENTSIM_FASTPATH_DIR"):
        return Path(os.environ["EVENTSIM_FASTPATH_DIR"])
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / "eventsim-fastpath"
    return Path.home() / ".cache" / "eventsim" / "fastpath"


def _own_source() -> str:
    """The source text the generated code depends on: the generators and their drivers."""
    modules = (fastpath_text, fastpath_gen, fastpath_layers, fastpath_drive, batch_gen, sys.modules[__name__])
    # the batch driver by its file (it imports this module, not the other way round)
    return "".join(inspect.getsource(m) for m in modules) + Path(__file__).with_name("fastpath_batch.py").read_text()


def source_hash(source: str) -> str:
    """Name of the module holding ``source``: a hash of it, of the generator and of Numba's version."""
    h = hashlib.sha256()
    for part in (source, _own_source(), numba.__version__, np.__version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def kernel_module(source: str):
    """Import (writing it first if needed) the generated module of ``source``."""
    name = "eventsim_fp_" + source_hash(source)
    mod = _MODULES.get(name)
    if mod is not None:
        return mod
    folder = kernel_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        atomic_write_text(path, source)     # another process may be importing it
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod   # Numba's cache finds the module's globals by name when it loads
    spec.loader.exec_module(mod)
    _MODULES[name] = mod
    return mod


def _source(network, comp, record, cache: dict, batch: bool = False):
    """``(source, module name, spec)`` of this network's kernel (generated once per network and record;
    ``batch``: the batch-mode kernel, :mod:`eventsim.kernels.fastpath_batch`)."""
    # per compiled network (one per dt_us and synop convention: leaks and out-degrees depend on them)
    key = ("fastpath_source", id(comp), "spikes" in record, "spike_times" in record, batch)
    if key not in cache:
        spec = _spec(network, comp, record)
        if batch:
            batch_fields(spec, network, comp)
        source = batch_gen.generate_batch(spec) if batch else fastpath_gen.generate(spec)
        cache[key] = (source, "eventsim_fp_" + source_hash(source), spec)
    return cache[key]


def _prepared(network, comp, record, cache: dict, dt_us):
    key = ("fastpath", id(comp), "spikes" in record, "spike_times" in record)
    entry = cache.get(key)
    if entry is None:
        source, _, spec = _source(network, comp, record, cache)
        drives = _drives(network, comp, dt_us) if any(p["drive"] for p in spec.pops) else {}
        # the generator's PRM layout: theta, amp, 1/tau of every population, then tau and the
        # drive per neuron of each driven one
        prm = np.concatenate([np.concatenate([p["theta"], p["amp"], p["itau"]]) for p in spec.pops] +
                             [np.concatenate([p["tau"], drives[p["layer"]]]) for p in spec.pops if p["drive"]]) \
            if spec.pops else np.zeros(1)
        W = comp.fields["W"] if comp.fields["W"].size else np.zeros(1)
        D = comp.fields["D"] if comp.fields["D"].size else np.zeros(1, np.int64)
        mod = kernel_module(source)
        dtype = np.float32 if spec.f32 else np.float64
        v0 = np.zeros(max(spec.n_neurons, 1), dtype)     # v_init (rounded to V's type), channels innermost
        for pop in spec.pops:
            C, n = pop["C"], pop["C"] * pop["H"] * pop["W"]
            v0[pop["off"]:pop["off"] + n] = np.tile(
                np.broadcast_to(np.atleast_1d(network.layers[pop["layer"]].v_init), (C,)), n // C)
        # the kernel's ``start`` fires the neurons at or above θ at t_start and sets up driven
        # populations; with neither (v_init = 0 < θ: the usual case) it only sets the current
        # instant, and is not called (nor compiled: about a second of a cold compile)
        fires = mod.TIMERS or bool(np.any(v0 != 0)) or any(bool(np.any(~(p["theta"] > 0))) for p in spec.pops)
        entry = cache[key] = (mod, spec, np.ascontiguousarray(prm), _aligned(W, dtype), np.ascontiguousarray(D),
                              v0, [], fires, _bound_and_room(spec, W))
    return entry


def _bound_and_room(spec, W: np.ndarray):
    """:func:`readout_bound` and the room it leaves with the outputs at 0 (a fresh run's)."""
    bound = readout_bound(spec, W)
    return None if bound is None else (*bound, _room(*bound, np.zeros(spec.n_out)))


def _bits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of nonzero finite float64 values: the exponent of each one's lowest set bit, and its
    significant bits (0.75 = 3·2⁻²: -2 and 2)."""
    m, e = np.frexp(np.abs(x))
    mant = np.ldexp(m, 53).astype(np.int64)                     # the 53-bit significand, exactly
    tz = np.log2((mant & -mant).astype(np.float64)).astype(np.int64)   # a power of two: exact
    return e - 53 + tz, 53 - tz


def readout_bound(spec, W: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """When the readout's float64 sums are exact, in any order: per output, ``(T, M)``: its sums
    are exact while their magnitude stays below ``T``, and one unit from a feeder
    (``fastpath_layers.readout_feeders``) adds at most ``M`` to it. None when there is no such
    bound (a product that rounds, a subnormal, no feeders).

    A unit adds ``v·w`` to each output: ``v`` the feeder's amplitude after the pooling divisions,
    ``w`` a weight of the last Linear (1 without one). When every such product is exact (the
    significant bits of ``v`` and ``w`` fit in 53) and a multiple of ``2^lo``, every partial sum
    is a multiple of ``2^lo``, and exact while its magnitude is below ``T = 2^(53+lo)``; the
    same value then in any order. ``M`` is the largest ``|v·w|`` times the windows a unit
    reaches, rounded up. :func:`_room` and the kernel's ``rearm`` turn ``T``, ``M`` and the
    outputs into a number of units. Weights trained in float32 (24 significant bits) give ``T`` of
    2^11 to 2^25 and ``M`` of 0.06 to 0.4 on the shipped model and the networks of
    ``benchmarks/peers``: room for 13,000 to 10⁸ spikes at outputs 0."""
    feeders = fastpath_layers.readout_feeders(spec)
    if not feeders or getattr(spec, "f32", False):
        return None
    n_out = spec.n_out
    lo = [None] * n_out                      # per output: the lowest bit any contribution can have
    top = [Fraction(0)] * n_out              # per output: the most one unit can add to |y|
    for p, paths in feeders.items():
        unit = [Fraction(0)] * n_out
        for ops in paths:
            v, fan = np.unique(np.abs(spec.pops[p]["amp"].astype(np.float64))), 1
            for r in ops:
                if int(r[A.O_KIND]) != A.OP_POOL:
                    continue
                kh, kw, sh, sw = (int(r[x]) for x in (A.O_KH, A.O_KW, A.O_SH, A.O_SW))
                if int(r[A.O_MODE]) == A.POOL_AVG:   # the kernel's a / (kh·kw), op by op (rounded or not)
                    v = v / float(kh * kw)
                fan *= -(-kh // sh) * -(-kw // sw)   # the windows holding one position
            if ops and int(ops[-1][A.O_KIND]) == A.OP_LINEAR:
                r = ops[-1]
                n_in = int(r[A.O_INC]) * int(r[A.O_INH]) * int(r[A.O_INW])
                w = np.asarray(W[int(r[A.O_WOFF]):int(r[A.O_WOFF]) + n_in * n_out], np.float64).reshape(n_in, n_out)
            else:
                w = np.ones((1, n_out))
            v = v[v != 0]
            if not v.size:
                continue
            if not np.all(np.isfinite(v)) or not np.all(np.isfinite(w)):
                return None
            v_lo, v_bits = _bits(v)
            for o in range(n_out):
                col = np.abs(w[:, o])
                col = col[col != 0]
                if not col.size:
                    continue
                w_lo, w_bits = _bits(col)
                if int(v_bits.max()) + int(w_bits.max()) > 53 or float(v.min()) * float(col.min()) < np.finfo(np.float64).tiny:
                    return None
                low = int(v_lo.min()) + int(w_lo.min())
                lo[o] = low if lo[o] is None else min(lo[o], low)
                unit[o] += fan * Fraction(float(v.max())) * Fraction(float(col.max()))
        top = [max(x, y) for x, y in zip(top, unit)]
    T, M = np.zeros(n_out), np.zeros(n_out)
    for o in range(n_out):
        if top[o] > 0:
            T[o] = np.ldexp(1.0, 53 + lo[o]) if 53 + lo[o] < 1023 else np.inf
            M[o] = float(top[o])
            if Fraction(M[o]) < top[o]:      # rounded down: the next float above
                M[o] = np.nextafter(M[o], np.inf)
    return (T, M) if np.any(M > 0) else None


def _room(T: np.ndarray, M: np.ndarray, Y: np.ndarray) -> int:
    """The kernel's ``rearm`` (the same float64 steps): the spikes the readout's feeders may still
    deliver at once with the outputs at ``Y``; 0 when under ``ROOM_MIN``."""
    used = M > 0
    room = min(2.0 ** 62, float(np.min((T[used] - np.abs(Y[used])) / M[used])))
    room = room * (1.0 - 2.0 ** -40) - 1.0
    return int(room) if room >= fastpath_gen.ROOM_MIN else 0


def _arm(mod, S: np.ndarray, I: np.ndarray, room: int) -> None:
    """Start a fresh run's at-once delivery with ``room`` spikes (:func:`_room` at outputs 0)."""
    I[mod.I_NOW], I[mod.I_RDL], I[mod.I_RDH] = room > 0, I[mod.I_RDU] + room, I[mod.I_RDU] + room // 2


def _take_state(mod, v0: np.ndarray, pool: list):
    """Fresh state arrays ``(V, S, I, U)`` for one run: V = v_init, the rest zero. Arrays of earlier
    runs are reused (``pool``; :func:`run_fast` returns them): a new 100 kB array costs its page
    faults at every call, more than the simulation of a short recording. Each run takes its own set
    (``list.pop`` is atomic), so concurrent runs on one network never share state."""
    try:
        V, S, I, U = pool.pop()
    except IndexError:
        return (_aligned(v0, v0.dtype), np.zeros(mod.S_SIZE), np.zeros(mod.I_SIZE, np.int64),
                np.zeros(v0.size, np.uint8))
    V[:] = v0
    S.fill(0.0)
    c0, c1 = mod.I_CAND, mod.I_CAND + mod.N_NEURONS   # candidate lists: only their counts (I_CN) are read
    I[:c0] = 0
    I[c1:] = 0
    U.fill(0)
    return V, S, I, U


def _aligned(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """A copy of the 1-d array ``a`` whose data starts on a 64-byte boundary (a cache line: the
    kernel's vector taps then touch whole lines)."""
    buf = np.zeros(a.size + 64 // np.dtype(dtype).itemsize, dtype)
    k = (-buf.ctypes.data % 64) // buf.itemsize
    out = buf[k:k + a.size]
    out[:] = a
    return out


#: the empty chunk of a run's last kernel call (``final``: the last instant and the rows after it)
_NO_EVENTS = (np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))


def run_fast(network, comp, cache: dict, chunks, record, snap_t, snap_b, t0: float, t_stop: float,
             dt_us, readout_current, convention: str, info: dict, pause_us: float | None = None,
             resume: dict | None = None, again=None) -> SimulationResult | dict:
    """Run the generated kernel over the event chunks and build the result as the general path does.

    ``pause_us``: stop there (a window's end) and return the saved state (:func:`save_state`)
    instead of a result; ``resume``: a saved state (``EngineState.data``) to continue from.
    ``again``: a function giving the chunks anew (an input in memory): the readout may then take
    its feeders' spikes at once (:func:`readout_bound`), since the rare call that passes the bound
    within one instant can run again, queued."""
    mod, spec, prm, W, D, v0, pool, fires, bound = _prepared(network, comp, record, cache, dt_us)
    N, L, n_out = spec.n_neurons, spec.n_layers, spec.n_out
    K = snap_t.size + snap_b.size
    V, S, I, U = _take_state(mod, v0, pool)
    RT, RK = np.zeros(K), np.zeros(K, np.int64)
    RC, RY = np.zeros((3, K, L), np.int64), np.zeros((K, max(n_out, 0)))
    RAST = np.zeros((K, N) if spec.record_raster else (0, 1), np.int64)
    size = 2 * (N + 1) if spec.record_times else 0
    LT, LN = np.empty(size), np.empty((size, 2), np.int64)
    snap_t = np.ascontiguousarray(snap_t, np.float64)
    snap_b = np.ascontiguousarray(snap_b, np.int64)
    state = (V, S, I, U, prm, W, D, RT, RK, RC, RY, RAST)
    if resume is None:     # V holds v_init (_take_state)
        for p, pop in enumerate(spec.pops):
            if pop["lif"]:
                S[getattr(mod, f"S_LT0_{p}")] = t0
                S[getattr(mod, f"S_LAT_{p}")] = -np.inf
        S[mod.S_YT], S[mod.S_T0], S[mod.S_DT] = t0, t0, float(dt_us or 0.0)
        if mod.TIMERS:
            S[mod.S_TSTOP] = t_stop
        if n_out and readout_current is not None and dt_us:
            S[mod.S_RATE:mod.S_RATE + n_out] = readout_current / float(dt_us)
        I[mod.I_IR] = I[mod.I_FP] = I[mod.I_FR] = -1
        if fires:
            mod.start(t0, *state, LT, LN, snap_t, snap_b)
        else:
            S[mod.S_TCUR] = t0
    else:
        LT, LN = _restore(resume, mod, _digest(comp, cache, prm, W, D), state, LT, LN)
    if getattr(spec, "feeders", None):   # the readout's sums exact: its feeders' spikes reach it at once (no synop budgets)
        I[mod.I_RDX] = 0
        if (bound is None or again is None or snap_b.size
                or (readout_current is not None and np.any(readout_current))):
            I[mod.I_NOW] = 0   # (a mid-instant synop budget would see the order; so would a rate)
        elif resume is None:
            S[mod.S_RDT:mod.S_RDT + n_out], S[mod.S_RDM:mod.S_RDM + n_out], room = bound
            _arm(mod, S, I, room)
        # (resumed: the saved state's own, so that the windows take the unwindowed run's steps)
        info["readout_at_once"] = bool(I[mod.I_NOW])
    for ev_t, ev_pos, ev_cnt in chain(chunks, [] if pause_us is not None else [_NO_EVENTS]):
        I[mod.I_INPUT] = 0
        final = ev_t is _NO_EVENTS[0]
        while not mod.run(ev_t, ev_pos, ev_cnt, final, t_stop, *state, LT, LN, snap_t, snap_b):
            LT, LN = _grown(LT, LN, int(I[mod.I_LOG]))
    if pause_us is not None:
        while not mod.pause(float(pause_us), *state, LT, LN, snap_t, snap_b):
            LT, LN = _grown(LT, LN, int(I[mod.I_LOG]))
    if getattr(spec, "feeders", None) and I[mod.I_RDX]:   # one instant passed the bound: its sums may have rounded
        pool.append((V, S, I, U))
        return run_fast(network, comp, cache, again(), record, snap_t, snap_b, t0, t_stop, dt_us, readout_current,
                        convention, info, pause_us=pause_us, resume=resume)
    if pause_us is not None:
        saved = save_state(mod, _digest(comp, cache, prm, W, D), state, LT, LN, N)   # copies
        pool.append((V, S, I, U))
        return saved
    rows = int(I[mod.I_ROW])
    info.update(queue_high_water=int(I[mod.I_HWM]),
                snapshot_synops_unreached=snap_b[int(I[mod.I_SNAPB]):].tolist(), path="fast")
    m = int(I[mod.I_LOG])
    pool.append((V, S, I, U))    # nothing below reads the state
    return kernel_result(network, spec, RT[:rows], RK[:rows], RC[:, :rows], RY[:rows], RAST[:rows], LT[:m], LN[:m],
                         convention, dt_us, info)


def kernel_result(network, spec, RT, RK, RC, RY, RAST, LT, LN, convention: str, dt_us, info: dict) -> SimulationResult:
    """A generated kernel's rows ``RT``/``RK``/``RC``/``RY``, rasters ``RAST`` (neurons channels
    innermost) and spike-time log ``LT``/``LN`` (time; neuron, count) as the general path's result:
    rasters and spike times in (C, H, W) order, the output population's spikes in emission order.
    The row arrays are the caller's, allocated for this one run: the result keeps them, uncopied."""
    rows, L = RT.shape[0], spec.n_layers
    info["row_kind"] = RK
    rasters, times = {}, {}
    for pop in spec.pops:
        name, shape = pop["name"], network.shapes[pop["layer"]]
        C, H, Wd, off = pop["C"], pop["H"], pop["W"], pop["off"]
        n = C * H * Wd
        if spec.record_raster:
            rasters[name] = RAST[:, off:off + n].reshape(rows, H, Wd, C).transpose(0, 3, 1, 2).reshape(
                (rows,) + shape)
        if spec.record_times:
            sel = np.flatnonzero((LN[:, 0] >= off) & (LN[:, 0] < off + n))
            sel = np.repeat(sel, LN[sel, 1])
            chw = np.arange(n).reshape(C, H, Wd).transpose(1, 2, 0).ravel()
            rec = np.empty(sel.size, dtype=[("t_us", np.float64), ("neuron", np.int64)])
            rec["t_us"], rec["neuron"] = LT[sel], chw[LN[sel, 0] - off]
            times[name] = np.sort(rec, order=("t_us", "neuron"))
            if pop["layer"] == L - 1:     # the output population, in emission order (decoding)
                info["output_spikes"] = (rec["t_us"].copy(), rec["neuron"].copy())
    if spec.record_times:
        info["spike_times"] = times
    return SimulationResult(
        engine="async", layer_names=tuple([layer.name for layer in network.layers]), times_us=RT,
        logits=RY, spikes_per_row=RC[0], synops_per_row=RC[1],
        macs_per_row=np.zeros((rows, L), np.int64), neuron_updates_per_row=RC[2],
        synop_convention=convention, dt_us=float(dt_us) if dt_us else None, rasters=rasters, membranes={},
        info=info)


def _grown(LT, LN, n: int):
    """The spike-time log (nearly full: ``n`` entries used) with room for 64 more than twice as many."""
    return (np.concatenate([LT[:n], np.empty(LT.size + 64)]),
            np.concatenate([LN[:n], np.empty((LN.shape[0] + 64, 2), np.int64)]))


def _digest(comp, cache: dict, prm, W, D) -> str:
    """SHA-256 of the kernel's parameter arrays (thresholds, amplitudes, time constants, weights,
    out-degrees): a saved state records it, so that a state is never continued with other weights."""
    key = ("fastpath_digest", id(comp))
    if key not in cache:
        h = hashlib.sha256()
        for a in (prm, W, D):
            h.update(np.ascontiguousarray(a).tobytes())
        cache[key] = h.hexdigest()[:24]
    return cache[key]


#: the arrays of a fast-path state (EngineState.data of a run paused on the fast path), besides
#: ``k`` (the pause's step index), ``path`` ("fast"), ``kernel`` (module name) and ``params`` (digest)
STATE_ARRAYS = ("V", "S", "I", "U", "RT", "RK", "RC", "RY", "RAST", "LT", "LN")


def save_state(mod, digest: str, state, LT, LN, N: int) -> dict:
    """The kernel's state arrays as plain NumPy arrays (picklable: Dask sends them between workers),
    minus the rows not taken yet and the unused tail of the spike-time log; ``kernel`` and ``params``
    name the generated module and the parameters they belong to."""
    V, S, I, U, _, _, _, RT, RK, RC, RY, RAST = state
    rows, log = int(I[mod.I_ROW]), int(I[mod.I_LOG])
    open_row = min(rows + 1, RAST.shape[0])    # the raster's open row already counts spikes
    s_end, i_end = _heap_ends(mod, int(I[mod.I_HN]) if mod.TIMERS else 0, S.size, I.size)
    return dict(path="fast", kernel=mod.__name__, params=digest, V=V[:max(N, 1)].copy(), S=S[:s_end].copy(),
                I=I[:i_end].copy(), U=U.copy(), RT=RT[:rows].copy(), RK=RK[:rows].copy(), RC=RC[:, :rows].copy(),
                RY=RY[:rows].copy(), RAST=RAST[:open_row].copy(), LT=LT[:log].copy(), LN=LN[:log].copy())


def _heap_ends(mod, n: int, s_size: int, i_size: int) -> tuple[int, int]:
    """Saved lengths of S and I: without the crossing heap's unused capacity (the heap is the last
    section of both) when the kernel has one."""
    return (mod.S_HT + n, mod.I_HK + 3 * n) if mod.TIMERS else (s_size, i_size)


def _restore(data: dict, mod, digest: str, state, LT, LN):
    """Load a saved fast-path state into fresh arrays of the same kernel; returns the spike-time
    log ``(LT, LN)`` (at least twice the saved length). A state of another kernel (another
    topology, thresholds, record options or eventsim version) or of other weights is refused."""
    if data.get("path") != "fast":
        raise ValueError("resume=: this state was paused on the asynchronous engine's general path; "
                         "it continues there only")
    if data.get("kernel") != mod.__name__:
        raise ValueError(f"resume=: the state was paused by fast-path kernel {data.get('kernel')!r}, but this call "
                         f"runs {mod.__name__!r} (the network's topology or thresholds, the record options or "
                         "eventsim's version differ)")
    if data.get("params") != digest:
        raise ValueError("resume=: the state was paused on a network with other weights or neuron parameters")
    missing = [name for name in STATE_ARRAYS if name not in data]
    if missing:
        raise ValueError(f"resume=: the saved fast-path state lacks {missing}")
    V, S, I, U, _, _, _, RT, RK, RC, RY, RAST = state
    saved_i = np.asarray(data["I"])
    fits = saved_i.ndim == 1 and saved_i.size > max(mod.I_ROW, mod.I_HN if mod.TIMERS else 0)
    rows = int(saved_i[mod.I_ROW]) if fits else -1
    s_end, i_end = _heap_ends(mod, int(saved_i[mod.I_HN]) if fits and mod.TIMERS else 0, S.size, I.size)
    for name, dst, src in (("V", V, data["V"]), ("S", S[:s_end], data["S"]), ("I", I[:i_end], saved_i),
                           ("U", U, data["U"]),
                           ("RT", RT[:rows], data["RT"]), ("RK", RK[:rows], data["RK"]),
                           ("RC", RC[:, :rows], data["RC"]), ("RY", RY[:rows], data["RY"]),
                           ("RAST", RAST[:data["RAST"].shape[0]], data["RAST"])):
        if rows < 0 or dst.shape != np.shape(src) or dst.dtype != np.asarray(src).dtype:
            raise ValueError(f"resume=: the saved array {name} does not fit this network and these options")
        dst[...] = src
    log = data["LT"].shape[0]
    if LT.shape[0]:
        size = max(LT.shape[0], 2 * log)
        LT, LN = np.empty(size), np.empty((size, 2), np.int64)
        LT[:log], LN[:log] = data["LT"], data["LN"]
    elif log:
        raise ValueError("resume=: the saved state has spike times, but this run does not record them")
    return LT, LN


def kernel_source(network, record=(), dt_us: float | None = None, simultaneous: str = "none",
                  dtype: str = "float64") -> str:
    """The generated kernel module's source text for ``network`` (event input; continuous time, or
    the step grid with ``simultaneous="batch"`` and ``dt_us``; ``dtype`` as in
    :func:`~eventsim.engines.asynchronous.simulate_async`), to read or save; raises ValueError when
    the network is not covered by the fast path."""
    record = (record,) if isinstance(record, str) else tuple(record)
    batch = simultaneous == "batch"
    if batch and dt_us is None:
        raise ValueError("simultaneous='batch' runs on a step grid: pass dt_us=")
    comp = _compile(network, _classify(network, True), True, "all", dt_us, batch)
    if check_dtype(dtype) == "float32":
        if batch:
            raise ValueError("dtype='float32' runs in continuous time only (simultaneous='none')")
        comp = as_float32(comp)
    why = (batch_unsupported_layers if batch else _unsupported_layers)(network, comp)
    if why is not None:
        raise ValueError(f"the fast path does not cover this network: {why}")
    spec = _spec(network, comp, record)
    if batch:
        batch_fields(spec, network, comp)
        return batch_gen.generate_batch(spec)
    return fastpath_gen.generate(spec)
