"""Source generator of the asynchronous engine's fast path: one Numba kernel per network topology.

:func:`generate` writes the Python source of a self-contained module for one compiled network
(see :mod:`eventsim.engines.fastpath` for when it is used). Shapes, offsets, strides and scalar
thresholds are written in as constants, so Numba compiles straight-line index arithmetic instead
of the general path's table lookups. The module imports nothing from eventsim: every helper it
uses is emitted into it, so its source text is all that its compiled code depends on (the file
name is a hash of that text and of this generator, see :mod:`eventsim.engines.fastpath`).

The emitted module holds, in this order and each with a docstring:

* the layout of the state arrays ``I`` (int64 cursors, counters, worklists), ``S`` (float64
  scalars, LIF time scales, readout) and ``U`` (uint8 candidate flags), as named constants;
* per population ``p``: ``refresh_p`` (LIF only: the scaled-time factor ``s = e^{(t−t₀)/τ}``),
  ``emit_p`` (count, record and queue spikes) and ``fire_p`` (threshold test of the candidates
  of the last delivery, reset);
* per op of a path (Conv2d, Linear, pooling, identity for Flatten/Add): one function that scatters
  one event into the next op or into its target (a population or the readout); a Conv2d or Linear
  into a population does each tap (one input position onto the channels of one output position) as
  one vector operation, ``tap_<population>_<width>`` (made by ``make_tap``, an llvmlite intrinsic:
  load, multiply, add, store, compare with θ, lane mask), and walks the set bits of the mask;
* per population with a constant current (a *driven* one, a layer bias): ``queue_p``,
  ``check_p``, ``fire_p`` and ``wake_p`` (predicted threshold crossings, the general path's
  ``predict_and_queue``, ``check_continuous``, ``process_candidates`` and ``wake_continuous``),
  over a heap of crossings (``heap_push``, ``heap_pop``) keyed (time, population, flat index);
* per source (0: the input, 1 + p: population p): ``deliver_s`` (one unit event along every path
  of that source, then the threshold tests);
* ``record_row``, ``budgets``, ``flush`` (the spikes of one instant, layer by layer, in flat-index
  order: the general path's queue order) and the entry points ``start``, ``run`` and ``pause``
  (the end of a window of a paused run: the state arrays are then saved as they are).

The arithmetic is the general path's, operation for operation (see
:mod:`eventsim.kernels.async_fanout`, :mod:`eventsim.kernels.async_events`): ``v += a·w`` (IF),
``q += (a·w)·s`` tested against ``θ·s`` (LIF in scaled time), ``fastmath`` off; a driven IF
``v ← v + r·(t − t₁) + a·w``, a driven LIF ``q += (a·w)·s`` against ``(θ − v∞)·s``. With driven
populations, ``run`` merges the input with the crossing heap (``advance``): every instant of
crossings alone is its own instant, and at one time the crossings of a population come after the
input events and before that population's spikes (the general path's queue key).

``dtype="float32"`` (``FastSpec.f32``): ``V`` and ``W`` are float32 arrays, the taps are
``<n x float>`` vectors, and every constant and value read from a float64 array (``S``, ``PRM``)
in the per-event arithmetic is converted with ``np.float32`` (a float32 array element times a
float64 scalar would be float64 in Numba); the float64 values converted are float32 values
already, so the conversion is exact. The readout sums ``a·w`` in float64 (``S``). Driven
populations (constant currents) run in float64 only.
"""
from __future__ import annotations

import numpy as np

from .async_layout import (O_GROUPS, O_INC, O_INH, O_INW, O_KH, O_KIND, O_KW, O_LAYER, O_MODE, O_OUTC, O_OUTH,
                           O_OUTW, O_PH, O_PW, O_SH, O_SW, O_WOFF, O_DOFF)
from .fastpath_text import STATE, _f, _r, _theta, _Writer, conv_window  # noqa: F401  (shared with the other generators)

__all__ = ["FastSpec", "generate"]

_POOL_NAMES = {0: "sum", 1: "average", 2: "spike-max"}


class FastSpec:
    """Everything the generator needs, gathered by :mod:`eventsim.engines.fastpath`.

    ``pops``: per population a dict (layer, name, C, H, W, off, lif, ge, zero, theta, amp, itau);
    ``sources``: per source a list of paths ``(target, [op rows])`` (target ``len(pops)`` = readout);
    ``n_layers``, ``n_out``, ``out_mean``, ``n_neurons``; ``record_raster``, ``record_times``;
    ``f32`` (optional, default False): ``dtype="float32"``.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)


#: LIF renormalisation exponent, float64 and float32 (as eventsim.kernels.async_neuron)
_RENORM = {False: 200.0, True: 60.0}




def generate(spec: FastSpec) -> str:
    """The kernel module's source text for ``spec``."""
    w = _Writer()
    P = len(spec.pops)
    L = spec.n_layers
    N = spec.n_neurons
    spec.f32 = f32 = bool(getattr(spec, "f32", False))
    for pop in spec.pops:
        pop["f32"] = f32
    # ------------------------------------------------------------------ layout
    i_off = 12
    layout_i = [("I_ROW", 0, "next output row"), ("I_SNAPT", 1, "next snapshot time"),
                ("I_SNAPB", 2, "next synop budget"), ("I_LOG", 3, "spike-time log length"),
                ("I_SYN", 4, "cumulative synops"), ("I_PEND", 5, "neurons with spikes pending delivery"),
                ("I_HWM", 6, "high-water mark of I_PEND"), ("I_INPUT", 7, "next input event of the chunk")]
    layout_i += [("I_IR", 8, "units of the current input event still to deliver (-1: none)"),
                 ("I_FP", 9, "flush: population being flushed (-1: none)"),
                 ("I_FI", 10, "flush: entry of its worklist"), ("I_FR", 11, "flush: units of that entry left (-1: none)")]
    layout_i += [("I_SP", i_off, "open row: spikes per layer"), ("I_SY", i_off + L, "open row: synops per layer"),
                 ("I_UP", i_off + 2 * L, "open row: neuron updates per layer")]
    i_off += 3 * L
    layout_i += [("I_WN", i_off, "per population: worklist length")]
    i_off += P
    layout_i += [("I_CN", i_off, "per population: candidate count")]
    i_off += P
    layout_i += [("I_WL", i_off, "worklists: flat indices of neurons that spiked at the current instant"),
                 ("I_CNT", i_off + N, "per neuron (channels innermost): spikes pending at the current instant"),
                 ("I_CAND", i_off + 2 * N, "candidate lists: local indices touched by the last delivery")]
    i_off += 3 * N
    # predicted threshold crossings of populations with a constant current (a drive): a heap of
    # (time, key = P_OFF + flat index, neuron, version) entries, lazily deleted (see fastpath_drive)
    spec.timers = any(pop.get("drive") for pop in spec.pops)
    Q = 2 * N + 64 if spec.timers else 0
    if spec.timers:
        layout_i += [("I_HN", i_off, "crossing heap: entries"),
                     ("I_VER", i_off + 1, "per neuron: version (changes with every update and prediction)"),
                     ("I_PV", i_off + 1 + N, "per neuron: version of its pending prediction"),
                     ("I_HK", i_off + 1 + 2 * N, "crossing heap: (key, neuron, version) per entry")]
        i_off += 1 + 2 * N + 3 * Q
    s_off = 4
    layout_s = [("S_TCUR", 0, "the current instant"), ("S_YT", 1, "time the readout's rate is integrated to"),
                ("S_T0", 2, "t_start"), ("S_DT", 3, "step length (0: none)")]
    lif_rows = {}
    for p, pop in enumerate(spec.pops):
        if pop["lif"]:
            lif_rows[p] = s_off
            layout_s += [(f"S_LT0_{p}", s_off, f"population {p}: reference time t0 of its scaled time"),
                         (f"S_LAT_{p}", s_off + 1, f"population {p}: time its scale factors were computed for"),
                         (f"S_SC_{p}", s_off + 2, f"population {p}: per channel s = exp((t - t0)/tau)"),
                         (f"S_THS_{p}", s_off + 2 + pop["C"], f"population {p}: per channel theta*s")]
            s_off += 2 + 2 * pop["C"]
    n_out = spec.n_out
    layout_s += [("S_Y", s_off, "readout: accumulated output"), ("S_RATE", s_off + n_out, "readout: constant rate per us")]
    s_off += 2 * n_out
    if spec.timers:
        layout_s += [("S_TSTOP", s_off, "t_stop (crossings after it are not queued)"),
                     ("S_TL", s_off + 1, "per neuron: time of its IF state v (driven IF)"),
                     ("S_PT", s_off + 1 + N, "per neuron: time of its pending prediction (inf: none)"),
                     ("S_HT", s_off + 1 + 2 * N, "crossing heap: time per entry")]
        s_off += 1 + 2 * N + Q
    w('"""Fast-path kernel of eventsim\'s asynchronous engine for one network topology.')
    w("")
    w("Generated by eventsim.kernels.fastpath_gen; do not edit (edit the generator: the file name is")
    w("a hash of this text and of the generator, so a stale copy is never loaded).")
    w("")
    w(f"Network: {spec.summary}")
    w('"""')
    w("import math")
    w("")
    w("import numpy as np")
    w("from llvmlite import ir")
    w("from numba import njit, types")
    w("from numba.core.extending import intrinsic")
    w("")
    w('# no reference counting (NRT): these kernels never allocate, and with NRT every call between them')
    w('# would increment and decrement the count of each of its array arguments')
    w('JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", _nrt=False)')
    w('# functions only the kernel calls: no CPython or C entry points to build')
    w('INTERNAL = dict(JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)')
    w(f'INLINE = {spec.inline!r}  # Numba-level inlining of the per-layer functions: one compiled unit, compiled once')
    w("")
    w(f"N_NEURONS = {N}")
    w(f"N_LAYERS = {L}")
    w(f"N_OUT = {n_out}")
    w(f"RECORD_RASTER = {bool(spec.record_raster)}")
    w(f"RECORD_TIMES = {bool(spec.record_times)}")
    w(f"DTYPE = {'float32' if f32 else 'float64'!r}  # of V (membranes) and W (weights); S, PRM and times: float64")
    w(f"TIMERS = {spec.timers}  # populations with a constant current: predicted crossings")
    w(f"HEAP_SIZE = {Q}")
    w("# int64 state I")
    for name, val, doc in layout_i:
        w(f"{name} = {val}  # {doc}")
    w(f"I_SIZE = {i_off}")
    w("# float64 state S")
    for name, val, doc in layout_s:
        w(f"{name} = {val}  # {doc}")
    w(f"S_SIZE = {s_off}")
    w("# PRM: per channel theta, amplitude, 1/tau of each population")
    prm_off = 0
    for p, pop in enumerate(spec.pops):
        w(f"PRM_{p} = {prm_off}  # population {p} ({pop['name']}): theta[{pop['C']}], amp[{pop['C']}], itau[{pop['C']}]")
        pop["prm"] = prm_off
        prm_off += 3 * pop["C"]
    for p, pop in enumerate(spec.pops):
        if pop.get("drive"):
            n = pop["C"] * pop["H"] * pop["W"]
            w(f"PRM_TAU_{p} = {prm_off}  # population {p}: tau[{pop['C']}] (LIF), then its drive per neuron "
              f"(IF: rate per us, LIF: v_inf)")
            w(f"PRM_DR_{p} = {prm_off + pop['C']}")
            prm_off += pop["C"] + n
    w(f"PRM_SIZE = {prm_off}")
    w("")
    _helpers(w)
    if spec.timers:
        from .fastpath_drive import _driven, _heap   # (it imports this module's helpers)
        _heap(w)
    for p, pop in enumerate(spec.pops):
        _population(w, p, pop)
        if pop.get("drive"):
            _driven(w, spec, p, pop)
    fns: dict = {}
    spec.taps = {}
    for s, paths in enumerate(spec.sources):
        for q, (target, ops) in enumerate(paths):
            _path(w, spec, s, q, target, ops, fns)
    for s, paths in enumerate(spec.sources):
        _deliver(w, spec, s, paths)
    _rows(w, spec)
    _flush(w, spec)
    _entry(w, spec)
    _taps(w, spec)
    return w.source()


# ----------------------------------------------------------------------------- helpers


def _helpers(w: _Writer) -> None:
    w('''
# an index cast to unsigned: Numba then emits no negative-index wraparound code (hot loops only)
U64 = np.uint64

def make_tap(n, ge, kind, f32=False):
    """An intrinsic doing one tap of n channels as vector operations (n <= 64):

        u = V[vo:vo+n] + a*W[wo:wo+n]                  (kind 'scalar', 'vector': IF)
        u = V[vo:vo+n] + (a*W[wo:wo+n])*S[so:so+n]     (kind 'lif': scaled time)
        V[vo:vo+n] = u
        return the lane mask of u > theta (u >= theta when ge), bit i for lane i

    theta: the scalar argument th ('scalar'), T[to:to+n] ('vector': per channel), S[to:to+n]
    ('lif': theta*s). Multiply and add stay separate instructions without fast-math flags (no fused
    multiply-add): bit for bit the scalar code's arithmetic. f32: V, W and a are float32
    (<n x float>); S and T stay float64 arrays of float32 values, converted exactly (fptrunc)."""
    vt = ir.VectorType(ir.FloatType() if f32 else ir.DoubleType(), n)
    dvt = ir.VectorType(ir.DoubleType(), n)
    align = 4 if f32 else 8
    lanes0 = ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n)

    def splat(builder, x):
        one = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, ir.Constant(vt, ir.Undefined), lanes0)

    def vector_at(context, builder, aryty, ary, offset, t=vt):
        data = context.make_array(aryty)(context, builder, ary).data
        return builder.bitcast(builder.gep(data, [offset]), t.as_pointer())

    def real(builder, x):   # float64 values (of float32 values, in f32 mode) as vt
        return builder.fptrunc(x, vt) if f32 else x

    def load64(context, builder, sig, args, i, j):
        return real(builder, builder.load(vector_at(context, builder, sig.args[i], args[i], args[j], dvt), align=8))

    def codegen(context, builder, sig, args):
        vp = vector_at(context, builder, sig.args[0], args[0], args[1])
        prod = builder.fmul(splat(builder, args[4]), builder.load(vector_at(context, builder, sig.args[2], args[2], args[3]), align=align))
        if kind == "lif":
            prod = builder.fmul(prod, load64(context, builder, sig, args, 5, 6))
            th = load64(context, builder, sig, args, 5, 7)
        elif kind == "vector":
            th = load64(context, builder, sig, args, 5, 6)
        else:
            th = splat(builder, builder.fptrunc(args[5], ir.FloatType()) if f32 else args[5])
        u = builder.fadd(builder.load(vp, align=align), prod)
        builder.store(u, vp, align=align)
        mask = builder.bitcast(builder.fcmp_ordered(">=" if ge else ">", u, th), ir.IntType(n))
        return builder.zext(mask, ir.IntType(64))

    i64, f64 = types.int64, types.float64
    fa = types.float32 if f32 else f64   # the type of a
    if kind == "lif":
        def typer(typingctx, V, vo, W, wo, a, S, so, to):
            return types.uint64(V, i64, W, i64, fa, S, i64, i64), codegen
    elif kind == "vector":
        def typer(typingctx, V, vo, W, wo, a, T, to):
            return types.uint64(V, i64, W, i64, fa, T, i64), codegen
    else:
        def typer(typingctx, V, vo, W, wo, a, th):
            return types.uint64(V, i64, W, i64, fa, f64), codegen
    return intrinsic(typer)


@intrinsic
def lowest_bit(typingctx, m):
    """Index of the lowest set bit of the uint64 m (m != 0)."""
    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return types.int64(types.uint64), codegen

@njit(inline="always", **INTERNAL)
def out_range(i, pad, k, stride, n_out):
    """Outputs o whose window (o*stride - pad + [0, k)) contains input i: lo <= o < hi."""
    top = i + pad
    lo = max(-((k - 1 - top) // stride), 0)
    hi = min(top // stride + 1, n_out) if top >= 0 else 0
    return lo, hi


@njit(**INTERNAL)
def sift_down(a, lo, root, end):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[U64(lo + child)] < a[U64(lo + child + 1)]:
            child += 1
        if a[U64(lo + root)] >= a[U64(lo + child)]:
            return
        a[U64(lo + root)], a[U64(lo + child)] = a[U64(lo + child)], a[U64(lo + root)]
        root = child


@njit(**INTERNAL)
def sort_range(a, lo, n):
    """Sort a[lo:lo + n] in place, without allocating: insertion sort (worklists of one instant
    are short), heap sort beyond 32 entries. Indices are unsigned (U64): no negative-index
    wraparound code in the inner loops."""
    if n > 32:
        for root in range(n // 2 - 1, -1, -1):
            sift_down(a, lo, root, n)
        for end in range(n - 1, 0, -1):
            a[U64(lo)], a[U64(lo + end)] = a[U64(lo + end)], a[U64(lo)]
            sift_down(a, lo, 0, end)
        return
    for i in range(lo + 1, lo + n):
        x = a[U64(i)]
        j = i
        while j > lo and a[U64(j - 1)] > x:
            a[U64(j)] = a[U64(j - 1)]
            j -= 1
        a[U64(j)] = x


''')


def _amp(pop, c_expr: str) -> str:
    a = pop["amp"]
    return _f(a[0]) if np.all(a == a[0]) else f"PRM[PRM_{pop['p']} + {pop['C']} + {c_expr}]"


def _population(w: _Writer, p: int, pop: dict) -> None:
    pop["p"] = p
    C, H, Wd, off, layer = pop["C"], pop["H"], pop["W"], pop["off"], pop["layer"]
    cmp = ">=" if pop["ge"] else ">"
    kind = "LIF (scaled time q = (v - v_inf)*s)" if pop["lif"] else "IF"
    w(f"# {'-' * 77} population {p}: {pop['name']}, {kind}, shape ({C}, {H}, {Wd})")
    w(f"P{p}_OFF = {off}  # first neuron in V (channels innermost: j = (y*W + x)*C + c)")
    w("")
    if pop["lif"]:
        uniform = bool(np.all(pop["itau"] == pop["itau"][0]))
        w(f'''
@njit(**INTERNAL)
def refresh_{p}(t, V, S, PRM):
    """Bring s = exp((t - t0)/tau) and theta*s of population {p} to time t; renormalise
    (q <- q*exp(-(t - t0)/tau), t0 <- t) when (t - t0)*max(1/tau) exceeds 200."""
    if S[S_LAT_{p}] == t:
        return
    t0 = S[S_LT0_{p}]
    if (t - t0) * {_f(pop["itau"].max())} > {_RENORM[pop["f32"]]}:
        for j in range({C * H * Wd}):
            V[P{p}_OFF + j] *= math.exp(-(t - t0) * PRM[PRM_{p} + {2 * C} + j % {C}])
        S[S_LT0_{p}] = t
        t0 = t
    s = {_r(pop["f32"], f"math.exp((t - t0) * PRM[PRM_{p} + {2 * C}])")}
    for c in range({C}):''')
        if not uniform:
            w(f"s = {_r(pop['f32'], f'math.exp((t - t0) * PRM[PRM_{p} + {2 * C} + c])')}", 2)
        w(f'''        S[S_SC_{p} + c] = s
        S[S_THS_{p} + c] = {_r(pop["f32"], f"PRM[PRM_{p} + c]")} * s
    S[S_LAT_{p}] = t
''')
    w(f'''
@njit(inline="always", **INTERNAL)
def emit_{p}(jl, n_sp, t, I, RAST, LT, LN):
    """Count n_sp spikes of neuron jl (local index) at t, log them and queue their delivery."""
    I[I_SP + {layer}] += n_sp
    g = P{p}_OFF + jl
    if RECORD_RASTER and I[I_ROW] < RAST.shape[0]:
        RAST[I[I_ROW], g] += n_sp
    if RECORD_TIMES:
        k = I[I_LOG]
        LT[k] = t
        LN[k, 0] = g
        LN[k, 1] = n_sp
        I[I_LOG] = k + 1
    if I[U64(I_CNT + g)] == 0:
        I[U64(I_WL + P{p}_OFF + I[I_WN + {p}])] = (jl % {C}) * {H * Wd} + jl // {C}  # flat (C, H, W) index
        I[I_WN + {p}] += 1
        I[I_PEND] += 1
        if I[I_PEND] > I[I_HWM]:
            I[I_HWM] = I[I_PEND]
    I[U64(I_CNT + g)] += n_sp
''')
    if pop.get("drive"):   # its threshold tests: _driven
        return
    w(f'''

@njit(inline=INLINE, **INTERNAL)
def fire_{p}(t, {STATE}):
    """Fire every candidate of population {p} while v {cmp} theta ({pop['reset']} reset)."""
    for i in range(I[I_CN + {p}]):
        jl = I[U64(I_CAND + P{p}_OFF + i)]
        U[U64(P{p}_OFF + jl)] = 0
        c = jl % {C}
        th = {_r(pop["f32"], _theta(pop, "c"))}''')
    if pop["lif"]:
        w(f"scale = {_r(pop['f32'], f'S[S_SC_{p} + c]')}", 2)
        w(f"lim = {_r(pop['f32'], f'S[S_THS_{p} + c]')}", 2)
    else:
        w("lim = th", 2)
    w(f'''        u = V[U64(P{p}_OFF + jl)]
        n_sp = 0
        while u {cmp} lim:
            n_sp += 1''')
    if pop["zero"]:
        w(f"u = {_r(pop['f32'], '0.0')}", 3)
        w("break", 3)
    else:
        w("u = u - th * scale" if pop["lif"] else "u = u - th", 3)
        w('''if n_sp >= 1048576:
    raise ValueError("a neuron crossed its threshold more than 2**20 times at one instant; check the weights and thresholds (a subtract reset removes only θ per spike)")''', 3)
    w(f'''        V[U64(P{p}_OFF + jl)] = u
        if n_sp:
            emit_{p}(jl, n_sp, t, I, RAST, LT, LN)
    I[I_CN + {p}] = 0
''')


# ----------------------------------------------------------------------------- ops


def _sink_lines(spec, target: int, v_idx: str, x: str, wt: str, c_expr: str, ind: int) -> list[str]:
    """Lines adding ``x·wt`` (a value times a weight expression) to neuron ``v_idx`` (local) of
    ``target``, marking candidates. The readout sums in float64 (in float32 mode too)."""
    f32 = spec.f32
    if target == len(spec.pops):
        return [f"S[S_Y + {v_idx}] += {'np.float64(' + x + ')' if f32 else x} * {wt}"]
    wt = _r(f32, wt) if wt == "1.0" else wt
    val = f"{x} * {wt}"
    pop = spec.pops[target]
    p = target
    cmp = ">=" if pop["ge"] else ">"
    out = []
    if pop.get("drive"):   # every touched neuron is a candidate: its crossing is tested or re-predicted
        lif = [f"V[P{p}_OFF + {v_idx}] += ({val}) * S[S_SC_{p} + {c_expr}]"]   # q += (a·w)·s
        if_ = [f"V[P{p}_OFF + {v_idx}] = V[P{p}_OFF + {v_idx}] + PRM[PRM_DR_{p} + {v_idx}] * "   # v ← v + r·(t − t₁) + a·w
               f"(t - S[S_TL + P{p}_OFF + {v_idx}]) + {val}",
               f"S[S_TL + P{p}_OFF + {v_idx}] = t"]
        if pop.get("mixed"):   # per channel: IF arithmetic where τ = ∞; s is refreshed only for a LIF
            # channel (the general path's generic sink: its renormalisation moments are those)
            out += [f"if PRM[PRM_{p} + {2 * pop['C']} + {c_expr}] == 0.0:"] + ["    " + x for x in if_] + \
                ["else:", f"    refresh_{p}(t, V, S, PRM)"] + ["    " + x for x in lif]
        else:
            out += lif if pop["lif"] else if_
        return out + [f"I[I_VER + P{p}_OFF + {v_idx}] += 1",
                      f"if U[P{p}_OFF + {v_idx}] == 0:",
                      f"    U[P{p}_OFF + {v_idx}] = 1",
                      f"    I[I_CAND + P{p}_OFF + I[I_CN + {p}]] = {v_idx}",
                      f"    I[I_CN + {p}] += 1"]
    if pop["lif"]:
        out.append(f"u = V[U64(P{p}_OFF + {v_idx})] + ({val}) * {_r(f32, f'S[S_SC_{p} + {c_expr}]')}")
        lim = _r(f32, f"S[S_THS_{p} + {c_expr}]")
    else:
        out.append(f"u = V[U64(P{p}_OFF + {v_idx})] + {val}")
        lim = _r(f32, _theta(pop, c_expr))
    out += [f"V[U64(P{p}_OFF + {v_idx})] = u",
            f"if u {cmp} {lim} and U[U64(P{p}_OFF + {v_idx})] == 0:",
            f"    U[U64(P{p}_OFF + {v_idx})] = 1",
            f"    I[U64(I_CAND + P{p}_OFF + I[I_CN + {p}])] = {v_idx}",
            f"    I[I_CN + {p}] += 1"]
    return out


def _channel_loop(spec, target: int, base: str, lo: str, width: int) -> list[str]:
    """Lines adding ``a·W[wb + co]`` to neurons ``base + co``, channels ``lo <= co < lo + width``, of ``target``.

    Into a population: one lane-mask tap per (up to) 64 channels (see ``make_tap`` in the emitted
    module: vector load, multiply, add, store and compare with θ; bit i of the mask is set when
    channel i crossed); the set bits are the candidates, in channel order."""
    if target == len(spec.pops):
        a = "np.float64(a)" if spec.f32 else "a"   # the readout sums in float64
        return [f"for co in range({lo}, {lo} + {width}):",
                f"    S[np.uint64(S_Y + {base} + co)] += {a} * W[np.uint64(wb + co)]"]
    pop = spec.pops[target]
    p = target
    if pop.get("drive"):   # scalar: each neuron's own drive
        return [f"for co in range({lo}, {lo} + {width}):",
                f"    j = {base} + co"] + ["    " + x for x in _sink_lines(spec, target, "j", "a", "W[wb + co]", "co", 0)]
    out = []
    for c0 in range(0, width, 64):
        n = min(64, width - c0)
        name = f"tap_{p}_{n}"
        spec.taps[name] = (p, n)
        first = f"{lo} + {c0}" if c0 else lo
        if pop["lif"]:
            args = f"a, S, S_SC_{p} + {first}, S_THS_{p} + {first}"
        elif np.all(pop["theta"] == pop["theta"][0]):
            args = f"a, {_f(pop['theta'][0])}"
        else:
            args = f"a, PRM, PRM_{p} + {first}"
        out += [f"m = {name}(V, P{p}_OFF + {base} + {first}, W, wb + {first}, {args})",
                "while m:   # the channels that crossed, lowest first",
                f"    j = {base} + {first} + lowest_bit(m)",
                "    m &= m - np.uint64(1)",
                f"    if U[U64(P{p}_OFF + j)] == 0:",
                f"        U[U64(P{p}_OFF + j)] = 1",
                f"        I[U64(I_CAND + P{p}_OFF + I[I_CN + {p}])] = j",
                f"        I[I_CN + {p}] += 1"]
    return out


def _taps(w: _Writer, spec) -> None:
    """The lane-mask taps the scatters use, one per population and width."""
    if not spec.taps:
        return
    w("")
    w("# lane-mask taps used by the scatters above (per population: comparison, threshold kind; width)")
    for name, (p, n) in sorted(spec.taps.items()):
        pop = spec.pops[p]
        kind = "'lif'" if pop["lif"] else ("'scalar'" if np.all(pop["theta"] == pop["theta"][0]) else "'vector'")
        w(f"{name} = make_tap({n}, {bool(pop['ge'])}, {kind}{', True' if spec.f32 else ''})")


def _target_layer(spec, target):
    return spec.out_layer if target == len(spec.pops) else spec.pops[target]["layer"]


def _target_dims(spec, target):
    """(C, H·W) of a target: its channel count and plane size."""
    if target == len(spec.pops):
        return spec.n_out, 1
    pop = spec.pops[target]
    return pop["C"], pop["H"] * pop["W"]


def _path(w: _Writer, spec, s: int, q: int, target: int, ops: list, fns: dict) -> None:
    """One function per op of path ``q`` of source ``s``, last op first (each calls the next)."""
    names = [f"path_{s}_{q}_op{i}" for i in range(max(len(ops), 1))]
    tlayer = _target_layer(spec, target)
    tname = "the readout" if target == len(spec.pops) else f"population {target} ({spec.pops[target]['name']})"
    # (a LIF with IF channels and a drive refreshes per neuron: _sink_lines)
    lif = target < len(spec.pops) and spec.pops[target]["lif"] and not spec.pops[target].get("mixed")
    refresh = f"refresh_{target}(t, V, S, PRM)" if lif else None
    if not ops:
        C, HW = _target_dims(spec, target)
        w(f'''
@njit(inline=INLINE, **INTERNAL)
def {names[0]}(pos, a, t, {STATE}):
    """Flatten/Add only: flat position pos maps one to one onto {tname}."""''')
        if target == len(spec.pops):
            w("j = pos", 1)
            c_expr = "0"
        else:
            w(f"c = pos // {HW}", 1)
            w(f"j = (pos - c * {HW}) * {C} + c", 1)
            c_expr = "c"
        if refresh:
            w(refresh, 1)
        for line in _sink_lines(spec, target, "j", "a", "1.0", c_expr, 1):
            w(line, 1)
        w(f"I[I_UP + {tlayer}] += 1", 1)
        return
    for i in range(len(ops) - 1, -1, -1):
        r = ops[i]
        last = i == len(ops) - 1
        nxt = None if last else names[i + 1]
        kind = int(r[O_KIND])
        layer = int(r[O_LAYER])
        Cin, H, Wd = int(r[O_INC]), int(r[O_INH]), int(r[O_INW])
        Cout, OH, OW = int(r[O_OUTC]), int(r[O_OUTH]), int(r[O_OUTW])
        kh, kw, sh, sw, ph, pw = (int(r[x]) for x in (O_KH, O_KW, O_SH, O_SW, O_PH, O_PW))
        if last:
            tC, tHW = _target_dims(spec, target)
        if kind == 1:
            G = int(r[O_GROUPS])
            cin_g, cout_g = Cin // G, Cout // G
            woff, doff = int(r[O_WOFF]), int(r[O_DOFF])
            flat = last and tC != Cout
            groups = ("    cl = ci  # one group: every output channel, constant loop bounds\n    co0 = 0" if G == 1 else
                      f"    grp = ci // {cin_g}\n    cl = ci - grp * {cin_g}\n    co0 = grp * {cout_g}")
            w(f'''
@njit(inline=INLINE, **INTERNAL)
def {names[i]}(pos, a, t, {STATE}):
    """Conv2d layer {layer}: ({Cin}, {H}, {Wd}) -> ({Cout}, {OH}, {OW}), kernel {kh}x{kw}, stride ({sh}, {sw}),
    padding ({ph}, {pw}), groups {G}; scatters one event into {'the next op' if not last else tname}."""
    d = D[U64({doff} + pos)]
    I[I_SY + {layer}] += d
    I[I_SYN] += d
{conv_window(Wd, H, groups, ph, kh, sh, OH, pw, kw, sw, OW, woff, Cout)}''')
            if not last:
                w(f"for co in range(co0, co0 + {cout_g}):", 3)
                w(f"{nxt}((co * {OH} + oy) * {OW} + ox, a * W[U64(wb + co)], t, {STATE})", 4)
            else:
                if refresh:
                    w(refresh, 3)
                w(f"n += {cout_g}", 3)
                if flat:
                    w(f"for co in range(co0, co0 + {cout_g}):", 3)
                    w(f"j = (co * {OH} + oy) * {OW} + ox", 4)
                    for line in _sink_lines(spec, target, "j", "a", "W[U64(wb + co)]", "j", 4):
                        w(line, 4)
                else:
                    w(f"base = (oy * {OW} + ox) * {Cout}", 3)
                    for line in _channel_loop(spec, target, "base", "co0", cout_g):
                        w(line, 3)
                w(f"I[I_UP + {tlayer}] += n", 1)
        elif kind == 2:
            woff, doff = int(r[O_WOFF]), int(r[O_DOFF])
            if not last:
                raise NotImplementedError("a Linear layer feeding another op")
            w(f'''
@njit(inline=INLINE, **INTERNAL)
def {names[i]}(pos, a, t, {STATE}):
    """Linear layer {layer}: {Cin * H * Wd} -> {Cout}; scatters one event into {tname}."""
    d = D[U64({doff} + pos)]
    I[I_SY + {layer}] += d
    I[I_SYN] += d
    wb = {woff} + pos * {Cout}''')
            if refresh:
                w(refresh, 1)
            for line in _channel_loop(spec, target, "0", "0", Cout):
                w(line, 1)
            w(f"I[I_UP + {tlayer}] += {Cout}", 1)
        else:
            mode = int(r[O_MODE])
            val = f"a / {_r(spec.f32, _f(float(kh * kw)))}" if mode == 1 else "a"
            w(f'''
@njit(inline=INLINE, **INTERNAL)
def {names[i]}(pos, a, t, {STATE}):
    """{_POOL_NAMES[mode].capitalize()} pooling layer {layer}: ({Cin}, {H}, {Wd}) -> ({Cout}, {OH}, {OW}), window {kh}x{kw},
    stride ({sh}, {sw}), padding ({ph}, {pw}); passes one event into {'the next op' if not last else tname}."""
    x = pos % {Wd}
    y = (pos // {Wd}) % {H}
    c = pos // {H * Wd}
    val = {val}
    oy0, oy1 = out_range(y, {ph}, {kh}, {sh}, {OH})
    ox0, ox1 = out_range(x, {pw}, {kw}, {sw}, {OW})
    n = 0
    for oy in range(oy0, oy1):
        for ox in range(ox0, ox1):
            q = (c * {OH} + oy) * {OW} + ox''')
            if not last:
                w(f"{nxt}(q, val, t, {STATE})", 3)
            else:
                flat = tC != Cin
                if refresh:
                    w(refresh, 3)
                w("n += 1", 3)
                if flat:
                    for line in _sink_lines(spec, target, "q", "val", "1.0", "q", 3):
                        w(line, 3)
                else:
                    w(f"j = (oy * {OW} + ox) * {Cin} + c", 3)
                    for line in _sink_lines(spec, target, "j", "val", "1.0", "c", 3):
                        w(line, 3)
                w(f"I[I_UP + {tlayer}] += n", 1)


def _deliver(w: _Writer, spec, s: int, paths: list) -> None:
    what = "the network input" if s == 0 else f"population {s - 1} ({spec.pops[s - 1]['name']})"
    w(f'''
@njit(inline=INLINE, **INTERNAL)
def deliver_{s}(pos, a, t, {STATE}):
    """One unit event of {what} at flat position pos with value a: every path, then the
    threshold tests of the touched populations."""''')
    targets = []
    for q, (target, _) in enumerate(paths):
        w(f"path_{s}_{q}_op0(pos, a, t, {STATE})", 1)
        if target < len(spec.pops) and target not in targets:
            targets.append(target)
    for target in targets:
        w(f"fire_{target}(t, {STATE})", 1)
    if not paths:
        w("return", 1)


def _rows(w: _Writer, spec) -> None:
    mean = "y = y / n_steps if n_steps > 0 else 0.0" if spec.out_mean else "pass"
    w(f'''
@njit(**INTERNAL)
def record_row(t, kind, {STATE}):
    """Close the open row at t (kind 0: a time, 1: a synop budget): readout, counters (then zeroed)."""
    r = I[I_ROW]
    if r >= RT.shape[0]:
        return
    if t > S[S_YT]:
        for o in range(N_OUT):
            S[S_Y + o] += S[S_RATE + o] * (t - S[S_YT])
        S[S_YT] = t
    RT[r] = t
    RK[r] = kind
    n_steps = (t - S[S_T0]) / S[S_DT] if S[S_DT] > 0 else 0.0
    for o in range(N_OUT):
        y = S[S_Y + o] + 0.0
        {mean}
        RY[r, o] = y
{_row_end()}''')


def _row_end() -> str:
    """The end of ``record_row`` (the open row's counters, then zeroed) and ``budgets``: the same in
    the continuous and the batch kernel."""
    return f'''    for layer in range(N_LAYERS):
        RC[0, r, layer] = I[I_SP + layer]
        RC[1, r, layer] = I[I_SY + layer]
        RC[2, r, layer] = I[I_UP + layer]
        I[I_SP + layer] = 0
        I[I_SY + layer] = 0
        I[I_UP + layer] = 0
    I[I_ROW] = r + 1


@njit(inline=INLINE, **INTERNAL)
def budgets(t, {STATE}):
    """A row for every synop budget the cumulative count has reached."""
    while I[I_SNAPB] < SNAP_B.shape[0] and I[I_SYN] >= SNAP_B[I[I_SNAPB]]:
        record_row(t, 1, {STATE})
        I[I_SNAPB] += 1
'''


def _flush(w: _Writer, spec) -> None:
    from .fastpath_drive import _crossings
    w(f'''
@njit(**INTERNAL)
def flush(t, {STATE}):
    """Deliver every spike of the instant t, population by population (layer order), each
    population's neurons in flat-index order, one unit at a time (the general path's queue order).

    Resumable: returns False, with its place kept in I_FP, I_FI, I_FR, when the spike-time log
    is nearly full (the driver grows it and calls again); True when done."""
    if I[I_FP] < 0:
        I[I_FP] = 0
        I[I_FI] = 0
        I[I_FR] = -1''')
    for p, pop in enumerate(spec.pops):
        hw = pop['H'] * pop['W']
        w(f'''    # population {p} ({pop['name']})
    if I[I_FP] == {p}:{_crossings(p, pop)}
        n = I[I_WN + {p}]
        fi, fr = I[I_FI], I[I_FR]   # place: worklist entry, its units left (kept in locals, stored on return)
        if fi == 0 and fr < 0:
            sort_range(I, I_WL + P{p}_OFF, n)
        while fi < n:
            pos = I[U64(I_WL + P{p}_OFF + fi)]
            c = pos // {hw}
            if fr < 0:   # take the neuron's pending spikes
                g = P{p}_OFF + (pos - c * {hw}) * {pop['C']} + c
                fr = I[U64(I_CNT + g)]
                I[U64(I_CNT + g)] = 0
                I[I_PEND] -= 1
            a = {_r(spec.f32, _amp(pop, 'c'))}
            while fr > 0:
                if RECORD_TIMES and LT.shape[0] - I[I_LOG] < N_NEURONS + 1:
                    I[I_FI], I[I_FR] = fi, fr
                    return False
                fr -= 1
                deliver_{p + 1}(pos, a, t, {STATE})
                budgets(t, {STATE})
            fr = -1
            fi += 1
        I[I_WN + {p}] = 0
        I[I_FP] = {p + 1}
        I[I_FI], I[I_FR] = 0, -1''')
    w("I[I_FP] = -1", 1)
    w("return True", 1)


def _entry(w: _Writer, spec) -> None:
    w(f'''
@njit(**JIT)
def start(t0, {STATE}):
    """State at t_start (V holds v_init): a neuron already above threshold fires at t_start;
    its spikes are delivered after the input events of t_start."""
    S[S_TCUR] = t0''')
    for p, pop in enumerate(spec.pops):   # driven: t1 = t0, no prediction pending, LIF q = v_init − v∞
        if pop.get("drive"):
            w(f"for jl in range({pop['C'] * pop['H'] * pop['W']}):", 1)
            w(f"S[S_TL + P{p}_OFF + jl] = t0", 2)
            w(f"S[S_PT + P{p}_OFF + jl] = np.inf", 2)
            if pop.get("mixed"):
                w(f"if PRM[PRM_{p} + {2 * pop['C']} + jl % {pop['C']}] != 0.0:", 2)
                w(f"V[P{p}_OFF + jl] -= PRM[PRM_DR_{p} + jl]", 3)
            elif pop["lif"]:
                w(f"V[P{p}_OFF + jl] -= PRM[PRM_DR_{p} + jl]", 2)
    for p, pop in enumerate(spec.pops):
        cmp = ">=" if pop["ge"] else ">"
        if pop.get("drive"):   # every neuron: fire if above θ, then predict its crossing
            w(f"for jl in range({pop['C'] * pop['H'] * pop['W']}):", 1)
            w(f"check_{p}(jl, t0, {STATE})", 2)
            continue
        w(f"for jl in range({pop['C'] * pop['H'] * pop['W']}):", 1)
        w(f"c = jl % {pop['C']}", 2)
        w(f"if V[P{p}_OFF + jl] >= {_theta(pop, 'c')}:", 2)
        if pop["lif"]:
            w(f"refresh_{p}(t0, V, S, PRM)", 3)
        w(f"if V[P{p}_OFF + jl] {cmp} {_theta(pop, 'c')} and U[P{p}_OFF + jl] == 0:", 3)
        w(f"U[P{p}_OFF + jl] = 1", 4)
        w(f"I[I_CAND + P{p}_OFF + I[I_CN + {p}]] = jl", 4)
        w(f"I[I_CN + {p}] += 1", 4)
        w(f"fire_{p}(t0, {STATE})", 1)
    if not spec.pops:
        w("return", 1)
    if spec.timers:
        from .fastpath_drive import _run_timers
        _run_timers(w, spec)
        return
    w(f'''

@njit(**JIT)
def run(ev_t, ev_pos, ev_cnt, final, t_stop, {STATE}):
    """Input events from I[I_INPUT] on (sorted by time, then position; whole instants) and
    everything they cause.

    An instant's spikes are delivered when the next instant begins (or, when ``final``, at the
    end); snapshot rows are taken after everything at their time. Returns False when it stopped
    because the spike-time log is nearly full (the driver grows it and calls again)."""
    i, ir = I[I_INPUT], I[I_IR]   # place: input event, its units left (kept in locals, stored on return)
    while i < ev_t.shape[0]:
        t = ev_t[i]
        if t != S[S_TCUR]:
            # flush (a call with every state array) only when spikes are pending or a flush was cut short
            if (I[I_PEND] > 0 or I[I_FP] >= 0) and not flush(S[S_TCUR], {STATE}):
                I[I_INPUT], I[I_IR] = i, ir
                return False
            while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] < t:
                record_row(SNAP_T[I[I_SNAPT]], 0, {STATE})
                I[I_SNAPT] += 1
            S[S_TCUR] = t
        if ir < 0:
            ir = ev_cnt[i]
        while ir > 0:
            if RECORD_TIMES and LT.shape[0] - I[I_LOG] < N_NEURONS + 1:
                I[I_INPUT], I[I_IR] = i, ir
                return False
            ir -= 1
            deliver_0(ev_pos[i], {_r(spec.f32, '1.0')}, t, {STATE})
            budgets(t, {STATE})
        ir = -1
        i += 1
    I[I_INPUT], I[I_IR] = i, ir
    if final:
        if not flush(S[S_TCUR], {STATE}):
            return False
        while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] <= t_stop:
            record_row(SNAP_T[I[I_SNAPT]], 0, {STATE})
            I[I_SNAPT] += 1
    return True


@njit(**JIT)
def pause(t_pause, {STATE}):
    """End a window at t_pause (after a ``run`` over its events, all before t_pause): deliver the
    spikes of the last instant and take the snapshot rows before t_pause. What is at t_pause
    belongs to the next window, which starts from this state (the general path's pause). Returns
    False when the spike-time log is nearly full (the driver grows it and calls again)."""
    if (I[I_PEND] > 0 or I[I_FP] >= 0) and not flush(S[S_TCUR], {STATE}):
        return False
    while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] < t_pause:
        record_row(SNAP_T[I[I_SNAPT]], 0, {STATE})
        I[I_SNAPT] += 1
    return True
''')
