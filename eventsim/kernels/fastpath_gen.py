"""Source generator of the asynchronous engine's fast path: one Numba kernel per network topology.

:func:`generate` writes the Python source of a self-contained module for one compiled network
(see :mod:`eventsim.engines.fastpath` for when it is used). Shapes, offsets, strides and scalar
thresholds are written in as constants, so Numba compiles straight-line index arithmetic instead
of the general path's table lookups. The module imports nothing from eventsim: every helper it
uses is emitted into it, so its source text is all that its compiled code depends on (the file
name is a hash of that text and of this generator, see :mod:`eventsim.engines.fastpath`).
This module writes the layout, the delivery, the rows and the entry points; the per-layer parts
(one function per layer kind) come from :mod:`eventsim.kernels.fastpath_layers`, the helpers every
module starts with from :mod:`eventsim.kernels.fastpath_text`, the constant currents from
:mod:`eventsim.kernels.fastpath_drive`.

The emitted module holds, in this order and each with a docstring:

* the layout of the state arrays ``I`` (int64 cursors, counters, pending-spike bitmaps), ``S`` (float64
  scalars, LIF time scales, readout) and ``U`` (uint8 candidate flags), as named constants;
* per population ``p``: ``refresh_p`` (LIF only: the scaled-time factor ``s = e^{(t−t₀)/τ}``),
  ``emit_p`` (count, record and mark spikes pending: a bit per flat index), ``fire_one_p``
  (threshold test and reset of one neuron) and ``fire_p`` (``fire_one_p`` for the candidates of
  the last delivery, on the paths that need them: see ``fastpath_layers.direct_paths``); a
  readout feeder (``fastpath_layers.readout_feeders``) also has ``now_p``, through which its
  ``fire_one_p`` delivers into the readout at once while ``I_NOW`` is set;
* per op of a path (Conv2d, Linear, pooling, identity for Flatten/Add): one function that scatters
  one event into the next op or into its target (a population or the readout); a Conv2d or Linear
  into a population does each tap (one input position onto the channels of one output position) as
  one vector operation, ``tap_<population>_<width>`` (made by ``make_tap``, an llvmlite intrinsic:
  load, multiply, add, store, compare with θ, lane mask); a Conv2d records the masks of its taps
  (``I_HIT``, an entry per tap) and walks their set bits after the last one, a Linear walks them
  at once; a Conv2d or Linear into the readout adds to its outputs with one vector add, ``acc_<width>``
  (``make_acc``), bit for bit the scalar loop;
* per population with a constant current (a *driven* one, a layer bias): ``queue_p``,
  ``check_p``, ``fire_p`` and ``wake_p`` (predicted threshold crossings, the general path's
  ``predict_and_queue``, ``check_continuous``, ``process_candidates`` and ``wake_continuous``),
  over a heap of crossings (``heap_push``, ``heap_pop``) keyed (time, population, flat index);
* per source (0: the input, 1 + p: population p): ``deliver_s`` (one unit event along every path
  of that source, then the threshold tests);
* ``rearm`` (with readout feeders): the room the readout's exact sums have left, in spikes (see
  ``engines.fastpath.readout_bound``);
* ``record_row``, ``budgets``, ``flush`` (the spikes of one instant, layer by layer, in flat-index
  order: the general path's queue order; it reads the pending bitmaps word by word) and the entry
  points ``start`` (called only when a neuron can fire at t_start or a population is driven),
  ``run`` (without driven populations it has flush's lines inline, at its one place: a call
  passes every state array as arguments, which at each instant cost more than 10 % of a pooled
  network's time) and ``pause`` (the end of a window of a paused run: the state arrays are then
  saved as they are).

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

import textwrap

from .fastpath_layers import _amp, _path, _population, _taps, direct_paths, max_hits, readout_feeders
from .fastpath_text import STATE, _helpers, _r, _theta, _Writer

__all__ = ["FastSpec", "generate"]


class FastSpec:
    """Everything the generator needs, gathered by :mod:`eventsim.engines.fastpath`.

    ``pops``: per population a dict (layer, name, C, H, W, off, lif, ge, zero, theta, amp, itau);
    ``sources``: per source a list of paths ``(target, [op rows])`` (target ``len(pops)`` = readout);
    ``n_layers``, ``n_out``, ``out_mean``, ``n_neurons``; ``record_raster``, ``record_times``;
    ``f32`` (optional, default False): ``dtype="float32"``.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)






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
                 ("I_FI", 10, "flush: flat index of the neuron being delivered (-1: none yet)"),
                 ("I_FR", 11, "flush: units of that neuron left (-1: none)")]
    layout_i += [("I_SP", i_off, "open row: spikes per layer"), ("I_SY", i_off + L, "open row: synops per layer"),
                 ("I_UP", i_off + 2 * L, "open row: neuron updates per layer")]
    i_off += 3 * L
    layout_i += [("I_CN", i_off, "per population: candidate count")]
    i_off += P
    layout_i += [("I_CNT", i_off, "per neuron (flat (C, H, W) index): units pending beyond the first (see I_BX)"),
                 ("I_CAND", i_off + N, "candidate lists: local indices touched by the last delivery")]
    i_off += 2 * N
    # per population, the neurons with spikes pending at the current instant as a bitmap by flat
    # (C, H, W) index, and a bitmap of its nonzero words: the flush takes them in flat order without
    # sorting (bit k of word i: index 64*i + k). A bit stands for one unit; the rare neuron with more
    # (several spikes at one instant) also has its bit in I_BX and the rest counted in I_CNT, so the
    # common case touches only the bitmaps, which stay in the L1 cache
    for p, pop in enumerate(spec.pops):
        words = -(-pop["C"] * pop["H"] * pop["W"] // 64)
        pop["summary_words"] = -(-words // 64)
        layout_i += [(f"I_BM_{p}", i_off, f"population {p}: pending neurons, one bit per flat index"),
                     (f"I_BX_{p}", i_off + words, f"population {p}: those with units beyond the first"),
                     (f"I_BS_{p}", i_off + 2 * words, f"population {p}: nonzero words of I_BM, one bit per word")]
        i_off += 2 * words + pop["summary_words"]
    layout_i += [("I_HIT", i_off, "scratch of a Conv2d scatter: (mask, first neuron) of its taps")]
    i_off += max_hits(spec)
    # populations whose spikes may reach the readout when they fire (readout_feeders): set per call
    spec.feeders = readout_feeders(spec)
    if spec.feeders:
        layout_i += [("I_NOW", i_off, "1: the readout's sums are exact, its feeders' spikes reach it at once"),
                     ("I_RDU", i_off + 1, "units delivered into the readout so far (all runs of the state)"),
                     ("I_RDH", i_off + 2, "at the next instant past this, the room left is measured again (rearm)"),
                     ("I_RDL", i_off + 3, "the sums stay exact while I_RDU is at most this"),
                     ("I_RDX", i_off + 4, "1: I_RDL passed within an instant (the driver runs the call again)")]
        i_off += 5
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
    if spec.feeders:
        layout_s += [("S_RDT", s_off, "readout: per output, 2^(53+lo): its sums are exact below it"),
                     ("S_RDM", s_off + n_out, "readout: per output, the most a unit adds to its magnitude")]
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
    _helpers(w, sort=False)
    if spec.timers:
        from .fastpath_drive import _driven, _heap   # (it imports this module's helpers)
        _heap(w)
    for p, pop in enumerate(spec.pops):
        pop["sink"] = not spec.sources[p + 1]   # no paths: its spikes are counted, never delivered
        pop["now"] = p in spec.feeders
        _population(w, p, pop)
        if pop.get("drive"):
            _driven(w, spec, p, pop)
    fns: dict = {}
    spec.taps = {}
    spec.direct = direct_paths(spec)
    for s, paths in enumerate(spec.sources):
        for q, (target, ops) in enumerate(paths):
            _path(w, spec, s, q, target, ops, fns)
    for s, paths in enumerate(spec.sources):
        _deliver(w, spec, s, paths)
    _rows(w, spec)
    _rearm(w, spec)
    _flush(w, spec)
    _entry(w, spec)
    _taps(w, spec)
    return w.source()


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
        if target < len(spec.pops) and target not in targets and (s, q) not in spec.direct:
            targets.append(target)
    for target in targets:
        w(f"fire_{target}(t, {STATE})", 1)
    if s - 1 in spec.feeders:   # its units into the readout so far (the bound on its exact sums)
        w("I[I_RDU] += 1", 1)
    if not paths:
        w("return", 1)


def _rows(w: _Writer, spec) -> None:
    mean = "y = y / n_steps if n_steps > 0 else 0.0" if spec.out_mean else "pass"
    w(f'''
@njit(**INTERNAL)
def record_row(t, kind, {STATE}):
    """Close the open row at t (kind 0: a time, 1: a synop budget): readout, counters (then zeroed).
    Its callers pass kind as np.int64: a literal 0 or 1 would compile it twice."""
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
        record_row(t, np.int64(1), {STATE})
        I[I_SNAPB] += 1
'''


def _flush(w: _Writer, spec) -> None:
    w(f'''
@njit(**INTERNAL)
def flush(t, {STATE}):
    """Deliver every spike of the instant t, population by population (layer order), each
    population's neurons in flat-index order, one unit at a time (the general path's queue order).

    Resumable: returns False, with its place kept in I_FP, I_FI, I_FR, when the spike-time log
    is nearly full (the driver grows it and calls again); True when done. ``run`` (without
    driven populations) has these lines inline: a call passes every state array, a thousand
    bytes of arguments, at each instant."""''')
    w(_flush_lines(spec), 1)
    w("return True", 1)


def _run_stops(lines: str) -> str:
    """``flush``'s lines as ``run`` has them: each ``return False`` stores run's place first."""
    out = []
    for line in lines.split("\n"):
        if line.strip() == "return False":
            out.append(line.replace("return False", "I[I_INPUT], I[I_IR] = i, ir"))
        out.append(line)
    return "\n".join(out)


def _flush_lines(spec) -> str:
    """The lines of ``flush`` (unindented), ending when every spike of the instant t is delivered."""
    from .fastpath_drive import _crossings
    out = _Writer()
    out('''if I[I_FP] < 0:
    I[I_FP] = 0
    I[I_FI] = -1
    I[I_FR] = -1''')
    for p, pop in enumerate(spec.pops):
        hw = pop['H'] * pop['W']
        crossings = _crossings(p, pop).replace("\n    ", "\n")   # its lines one level up: unindented here
        out(f'''# population {p} ({pop['name']})
if I[I_FP] == {p}:{crossings}
    pos, fr = I[I_FI], I[I_FR]   # place: a resumed neuron and its units left (kept in locals, stored on return)
    s, sw, wi, wd = 0, 0, 0, 0   # cursor: next summary word, the bits left of the one before it and of word wi
    while True:
        if fr < 0:   # take the pending neuron of lowest flat index (words and summary words cleared as read)
            while wd == 0 and (sw != 0 or s < {pop["summary_words"]}):
                if sw == 0:
                    sw = I[U64(I_BS_{p} + s)]
                    I[U64(I_BS_{p} + s)] = 0
                    s += 1
                    continue
                wi = (s - 1) * 64 + lowest_bit(U64(sw))
                sw &= sw - 1
                wd = I[U64(I_BM_{p} + wi)]
                I[U64(I_BM_{p} + wi)] = 0
            if wd == 0:
                break
            b = lowest_bit(U64(wd))
            pos = wi * 64 + b
            wd &= wd - 1
            fr = 1
            if (I[U64(I_BX_{p} + wi)] >> b) & 1:   # more units than one: the rest from I_CNT
                fr += I[U64(I_CNT + P{p}_OFF + pos)]
                I[U64(I_CNT + P{p}_OFF + pos)] = 0
                I[U64(I_BX_{p} + wi)] &= ~(np.int64(1) << b)
            I[I_PEND] -= 1
        c = np.int64(U64(pos) // U64({hw}))
        a = {_r(spec.f32, _amp(pop, 'c'))}
        while fr > 0:
            if RECORD_TIMES and LT.shape[0] - I[I_LOG] < N_NEURONS + 1:
                if s > 0:   # the neurons not taken yet go back: the rest of word wi, and the summary bits
                    I[U64(I_BM_{p} + wi)] = wd
                    I[U64(I_BS_{p} + s - 1)] = sw | (np.int64(wd != 0) << np.int64(wi & 63))
                I[I_FI], I[I_FR] = pos, fr
                return False
            fr -= 1
            deliver_{p + 1}(pos, a, t, {STATE})
            budgets(t, {STATE})
        fr = -1
    I[I_FP] = {p + 1}
    I[I_FI], I[I_FR] = -1, -1''')
    out("I[I_FP] = -1")
    return out.source().rstrip("\n")


def _now_ends(spec) -> str:
    """``run``'s lines (at the start of an instant) that measure the room of the readout's exact
    sums again once half of it is used (``rearm``, which ends the at-once delivery when little is
    left): an instant's own spikes always have the other half."""
    if not spec.feeders:
        return ""
    return """
            if I[I_NOW] and I[I_RDU] > I[I_RDH]:
                rearm(S, I)"""


def _rearm(w: _Writer, spec) -> None:
    if not spec.feeders:
        return
    w(f'''

@njit(**INTERNAL)
def rearm(S, I):
    """Measure the room the readout's exact sums have left, from its outputs now (the driver's
    ``arm``, the same float64 steps): the units its feeders may still deliver before a sum could
    round. The at-once delivery ends, for the rest of the run, when the room is under
    {ROOM_MIN} units. Half the room is used before it is measured again (at an instant's start),
    so that an instant's own units have the other half."""
    room = 2.0 ** 62
    for o in range(N_OUT):
        if S[S_RDM + o] > 0.0:
            room = min(room, (S[S_RDT + o] - abs(S[S_Y + o])) / S[S_RDM + o])
    room = room * (1.0 - 2.0 ** -40) - 1.0   # below the float quotient: the room in whole units, at most
    if room < {ROOM_MIN}:
        I[I_NOW] = 0
        return
    k = np.int64(room)
    I[I_RDL] = I[I_RDU] + k
    I[I_RDH] = I[I_RDU] + k // 2
''')


#: the least room (units) for which the readout's feeders deliver into it at once (see ``rearm``)
ROOM_MIN = 4096


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
    flush_lines = textwrap.indent(_run_stops(_flush_lines(spec)), " " * 16)
    w(f'''

@njit(**JIT)
def run(ev_t, ev_pos, ev_cnt, final, t_stop, {STATE}):
    """Input events from I[I_INPUT] on (sorted by time, then position; whole instants) and
    everything they cause.

    An instant's spikes are delivered when the next instant begins (or, when ``final``, at the
    end); snapshot rows are taken after everything at their time. Returns False when it stopped
    because the spike-time log is nearly full (the driver grows it and calls again)."""
    i, ir = I[I_INPUT], I[I_IR]   # place: input event, its units left (kept in locals, stored on return)
    while i < ev_t.shape[0] or final:
        end = i >= ev_t.shape[0]   # (final) after the last event: its instant, then the rows up to t_stop
        te = S[S_TCUR] if end else ev_t[i]
        if end or te != S[S_TCUR]:
            if I[I_PEND] > 0 or I[I_FP] >= 0:   # the instant S_TCUR is over: flush's lines deliver its spikes
                t = S[S_TCUR]
{flush_lines}
            if end:
                while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] <= t_stop:
                    record_row(SNAP_T[I[I_SNAPT]], np.int64(0), {STATE})
                    I[I_SNAPT] += 1
                break
            while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] < te:
                record_row(SNAP_T[I[I_SNAPT]], np.int64(0), {STATE})
                I[I_SNAPT] += 1{_now_ends(spec)}
            S[S_TCUR] = te
        if ir < 0:
            ir = ev_cnt[i]
        while ir > 0:
            if RECORD_TIMES and LT.shape[0] - I[I_LOG] < N_NEURONS + 1:
                I[I_INPUT], I[I_IR] = i, ir
                return False
            ir -= 1
            deliver_0(ev_pos[i], {_r(spec.f32, '1.0')}, te, {STATE})
            budgets(te, {STATE})
        ir = -1
        i += 1
    I[I_INPUT], I[I_IR] = i, ir
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
        record_row(SNAP_T[I[I_SNAPT]], np.int64(0), {STATE})
        I[I_SNAPT] += 1
    return True
''')
