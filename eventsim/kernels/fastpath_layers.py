"""Per-layer emission of the asynchronous engine's fast path (:mod:`eventsim.kernels.fastpath_gen`):
one function per layer kind.

* :func:`_population`: a neuron population's ``refresh_p`` (LIF only), ``emit_p``, ``fire_one_p``
  and ``fire_p``;
* :func:`_path`: one emitted function per op of a path from a source to its target — Conv2d (one
  vector tap per input position and output position, :func:`_channel_loop`; its taps' masks
  recorded, their crossings taken after the last tap, :func:`_hit_loop`), Linear, pooling (sum,
  average, spike-max), identity (Flatten, Add) — ending in the target's update (:func:`_sink_lines`:
  an IF or LIF neuron, or the readout). A crossing fires at once on the paths of
  :func:`direct_paths`, else it becomes a candidate for ``fire_p``;
* :func:`_taps`: the ``tap_<population>_<width>`` intrinsics the scatters use and the readout's
  ``acc_<width>`` vector adds.
"""
from __future__ import annotations

import numpy as np

from .async_layout import (O_GROUPS, O_INC, O_INH, O_INW, O_KH, O_KIND, O_KW, O_LAYER, O_MODE, O_OUTC, O_OUTH,
                           O_OUTW, O_PH, O_PW, O_SH, O_SW, O_WOFF, O_DOFF)
from .fastpath_text import STATE, _f, _r, _theta, _Writer, conv_window, pool_window

__all__ = ["_amp", "_population", "_path", "_taps", "_POOL_NAMES", "direct_paths", "max_hits", "readout_feeders"]

_POOL_NAMES = {0: "sum", 1: "average", 2: "spike-max"}

#: LIF renormalisation exponent, float64 and float32 (as eventsim.kernels.async_neuron)
_RENORM = {False: 200.0, True: 60.0}


# ----------------------------------------------------------------------------- populations


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
    counting = f'''    I[I_SP + {layer}] += n_sp
    g = P{p}_OFF + jl
    if RECORD_RASTER and I[I_ROW] < RAST.shape[0]:
        RAST[I[I_ROW], g] += n_sp
    if RECORD_TIMES:
        k = I[I_LOG]
        LT[k] = t
        LN[k, 0] = g
        LN[k, 1] = n_sp
        I[I_LOG] = k + 1'''
    if pop.get("now"):   # its spikes may reach the readout at once (fire_one_p)
        # a function of its own, not inlined by Numba (LLVM still may): a second inlined copy of the
        # readout's path in run costs Numba 0.6 s of the shipped model's compile
        w(f'''
@njit(**INTERNAL)
def now_{p}(jl, n_sp, c, t, {STATE}):
    """Count n_sp spikes of neuron jl (local index) at t, log them and deliver them into the
    readout at once (its sums are exact: their order cannot show)."""
{counting}
    pos = np.int64(U64(jl) % U64({C}) * U64({H * Wd}) + U64(jl) // U64({C}))   # its flat (C, H, W) index
    a = {_r(pop["f32"], _amp(pop, "c"))}
    for _ in range(n_sp):
        deliver_{p + 1}(pos, a, t, {STATE})
    if I[I_RDU] > I[I_RDL]:   # past the bound within one instant: the driver runs the call again, queued
        I[I_RDX] = 1
''')
    w(f'''
@njit(inline="always", **INTERNAL)
def emit_{p}(jl, n_sp, t, I, RAST, LT, LN):
    """Count n_sp spikes of neuron jl (local index) at t, log them and queue their delivery."""
{counting}''')
    if pop.get("sink"):   # no paths (a network ending in spikes): its spikes reach nothing, never queued
        w("    # no paths: its spikes are counted and logged, never queued\n")
    else:
        w(f'''    pos = U64(jl) % U64({C}) * U64({H * Wd}) + U64(jl) // U64({C})   # its flat (C, H, W) index
    word = pos >> U64(6)
    bit = np.int64(1) << np.int64(pos & U64(63))
    if I[U64(I_BM_{p}) + word] & bit == 0:   # its first spikes of the instant: its bit stands for one unit
        I[U64(I_BM_{p}) + word] |= bit
        I[U64(I_BS_{p}) + (pos >> U64(12))] |= np.int64(1) << np.int64(word & U64(63))
        I[I_PEND] += 1
        if I[I_PEND] > I[I_HWM]:
            I[I_HWM] = I[I_PEND]
        n_sp -= 1
    if n_sp:   # the units beyond the first (rare): counted in I_CNT, flagged in I_BX
        I[U64(I_CNT + P{p}_OFF) + pos] += n_sp
        I[U64(I_BX_{p}) + word] |= bit
''')
    if pop.get("drive"):   # its threshold tests: _driven
        return
    w(f'''

@njit(inline="always", **INTERNAL)
def fire_one_{p}(jl, t, {STATE}):
    """Fire neuron jl (local index) of population {p} while v {cmp} theta ({pop['reset']} reset)."""
    c = np.int64(U64(jl) % U64({C}))
    th = {_r(pop["f32"], _theta(pop, "c"))}''')
    if pop["lif"]:
        w(f"scale = {_r(pop['f32'], f'S[S_SC_{p} + c]')}", 1)
        w(f"lim = {_r(pop['f32'], f'S[S_THS_{p} + c]')}", 1)
    else:
        w("lim = th", 1)
    w(f'''    u = V[U64(P{p}_OFF + jl)]
    n_sp = 0
    while u {cmp} lim:
        n_sp += 1''')
    if pop["zero"]:
        w(f"u = {_r(pop['f32'], '0.0')}", 2)
        w("break", 2)
    else:
        w("u = u - th * scale" if pop["lif"] else "u = u - th", 2)
        w('''if n_sp >= 1048576:
    raise ValueError("a neuron crossed its threshold more than 2**20 times at one instant; check the weights and thresholds (a subtract reset removes only θ per spike)")''', 2)
    if pop.get("now"):
        spikes = f'''    if n_sp and I[I_NOW]:   # into the readout at once: its sums are exact, so their order cannot show
        now_{p}(jl, n_sp, c, t, {STATE})
    elif n_sp:'''
    else:
        spikes = "    if n_sp:"
    w(f'''    V[U64(P{p}_OFF + jl)] = u
{spikes}
        emit_{p}(jl, n_sp, t, I, RAST, LT, LN)


@njit(inline=INLINE, **INTERNAL)
def fire_{p}(t, {STATE}):
    """Fire every candidate of population {p} (the neurons an event's paths touched, once each)."""
    for i in range(I[I_CN + {p}]):
        jl = I[U64(I_CAND + P{p}_OFF + i)]
        U[U64(P{p}_OFF + jl)] = 0
        fire_one_{p}(jl, t, {STATE})
    I[I_CN + {p}] = 0
''')


# ----------------------------------------------------------------------------- ops


def _sink_lines(spec, target: int, v_idx: str, x: str, wt: str, c_expr: str, ind: int,
                direct: bool = False) -> list[str]:
    """Lines adding ``x·wt`` (a value times a weight expression) to neuron ``v_idx`` (local) of
    ``target``, marking candidates (``direct``: firing it now, see :func:`direct_paths`). The
    readout sums in float64 (in float32 mode too)."""
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
        tail = [f"I[I_VER + P{p}_OFF + {v_idx}] += 1",
                f"if U[P{p}_OFF + {v_idx}] == 0:",
                f"    U[P{p}_OFF + {v_idx}] = 1",
                f"    I[I_CAND + P{p}_OFF + I[I_CN + {p}]] = {v_idx}",
                f"    I[I_CN + {p}] += 1"]
        if pop.get("mixed"):   # per channel: IF arithmetic where τ = ∞; s is refreshed only for a LIF
            # channel (the general path's generic sink: its renormalisation moments are those)
            return out + [f"if PRM[PRM_{p} + {2 * pop['C']} + {c_expr}] == 0.0:"] + ["    " + x for x in if_] + \
                ["else:", f"    refresh_{p}(t, V, S, PRM)"] + ["    " + x for x in lif] + tail
        # a zero charge changes nothing (the general path's driven sinks): no re-anchoring, no
        # re-prediction, so that rounding alone never moves a crossing
        return [f"if {val} != 0.0:"] + ["    " + x for x in (lif if pop["lif"] else if_) + tail]
    if pop["lif"]:
        out.append(f"u = V[U64(P{p}_OFF + {v_idx})] + ({val}) * {_r(f32, f'S[S_SC_{p} + {c_expr}]')}")
        lim = _r(f32, f"S[S_THS_{p} + {c_expr}]")
    else:
        out.append(f"u = V[U64(P{p}_OFF + {v_idx})] + {val}")
        lim = _r(f32, _theta(pop, c_expr))
    if direct:
        return out + [f"V[U64(P{p}_OFF + {v_idx})] = u",
                      f"if u {cmp} {lim}:",
                      f"    fire_one_{p}({v_idx}, t, {STATE})"]
    out += [f"V[U64(P{p}_OFF + {v_idx})] = u",
            f"if u {cmp} {lim} and U[U64(P{p}_OFF + {v_idx})] == 0:",
            f"    U[U64(P{p}_OFF + {v_idx})] = 1",
            f"    I[U64(I_CAND + P{p}_OFF + I[I_CN + {p}])] = {v_idx}",
            f"    I[I_CN + {p}] += 1"]
    return out


def _channel_loop(spec, target: int, base: str, lo: str, width: int, direct: bool = False,
                  hits: str = "") -> list[str]:
    """Lines adding ``a·W[wb + co]`` to neurons ``base + co``, channels ``lo <= co < lo + width``, of ``target``.

    Into a population: one lane-mask tap per (up to) 64 channels (see ``make_tap`` in the emitted
    module: vector load, multiply, add, store and compare with θ; bit i of the mask is set when
    channel i crossed); the set bits are the candidates, in channel order (``direct``: they fire now).
    ``hits`` (``"bits"`` or ``"count"``, see :func:`_recorded_taps`): each mask is recorded instead,
    for :func:`_hit_loop` after the last tap of the event."""
    if target == len(spec.pops):   # the readout (float64): one vector add per (up to) 64 outputs
        out = []
        for c0 in range(0, width, 64):
            n = min(64, width - c0)
            spec.taps[f"acc_{n}"] = (None, n)
            first = f"{lo} + {c0}" if c0 else lo
            out.append(f"acc_{n}(S, S_Y + {base} + {first}, W, wb + {first}, a)")
        return out
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
        out.append(f"m = {name}(V, P{p}_OFF + {base} + {first}, W, wb + {first}, {args})")
        if hits == "bits":   # no branch per tap: entry kt of I_HIT, and bit kt of hit when some channel crossed
            out += ["I[U64(I_HIT + 2 * kt)] = np.int64(m)",
                    f"I[U64(I_HIT + 2 * kt + 1)] = {base} + {first}",
                    "hit |= np.int64(m != 0) << kt",
                    "kt += 1"]
        elif hits:   # (more than 64 taps) entry nh, overwritten by the next tap unless some channel crossed
            out += ["I[U64(I_HIT + 2 * nh)] = np.int64(m)",
                    f"I[U64(I_HIT + 2 * nh + 1)] = {base} + {first}",
                    "nh += m != 0"]
        else:
            out += ["while m:   # the channels that crossed, lowest first",
                    f"    j = {base} + {first} + lowest_bit(m)",
                    "    m &= m - np.uint64(1)"] + ["    " + x for x in _crossed(p, "j", direct)]
    return out


def _crossed(p: int, j: str, direct: bool) -> list[str]:
    """Lines for neuron ``j`` of population ``p`` that crossed: it fires now (``direct``), or it
    becomes a candidate (once per event)."""
    if direct:
        return [f"fire_one_{p}({j}, t, {STATE})"]
    return [f"if U[U64(P{p}_OFF + {j})] == 0:",
            f"    U[U64(P{p}_OFF + {j})] = 1",
            f"    I[U64(I_CAND + P{p}_OFF + I[I_CN + {p}])] = {j}",
            f"    I[I_CN + {p}] += 1"]


def _hit_loop(p: int, direct: bool, hits: str) -> list[str]:
    """Lines taking the crossings of the masks an event's taps recorded (``_channel_loop(hits=...)``),
    in tap order, each mask's lowest channel first. Deferring them past the taps changes nothing: a
    neuron is tested after its charges of the event either way. It spares a mispredicted branch per
    tap (whether any channel crossed), which cost more than the taps' arithmetic.

    ``"bits"``: each tap has its own entry, and bit k of ``hit`` says that tap k had a crossing, so
    that no store waits for the masks before it. ``"count"`` (more than 64 taps): the entries of the
    taps with a crossing are packed, which chains each tap's store to the compare of the tap before
    (measured 1.12x slower on the pooled networks of ``benchmarks/peers``)."""
    take = (["while hit:",
             "    k = lowest_bit(U64(hit))",
             "    hit &= hit - 1"] if hits == "bits" else ["for k in range(nh):"])
    return take + [
            "    m = U64(I[U64(I_HIT + 2 * k)])",
            "    jb = I[U64(I_HIT + 2 * k + 1)]",
            "    while m:",
            "        j = jb + lowest_bit(m)",
            "        m &= m - np.uint64(1)"] + ["        " + x for x in _crossed(p, "j", direct)]


def _recorded_taps(spec, target: int, r) -> int:
    """Taps of one event of the Conv2d op ``r`` into population ``target`` whose masks are recorded
    in I_HIT (see :func:`_hit_loop`), at most: 0 for the readout or a driven population."""
    if target >= len(spec.pops) or spec.pops[target].get("drive") or int(r[O_KIND]) != 1:
        return 0
    return int(r[O_KH]) * int(r[O_KW]) * -(-(int(r[O_OUTC]) // int(r[O_GROUPS])) // 64)


def max_hits(spec) -> int:
    """Entries of the emitted I_HIT scratch: two per tap of the largest Conv2d scatter into a population."""
    most = 0
    for paths in spec.sources:
        for target, ops in paths:
            if ops:
                most = max(most, _recorded_taps(spec, target, ops[-1]))
    return 2 * most


def _taps(w: _Writer, spec) -> None:
    """The lane-mask taps the scatters use, one per population and width, and the readout's adds."""
    if not spec.taps:
        return
    w("")
    w("# lane-mask taps used by the scatters above (per population: comparison, threshold kind; width)")
    w("# and vector adds into the readout (acc_<width>)")
    for name, (p, n) in sorted(spec.taps.items()):
        if p is None:
            w(f"{name} = make_acc({n}{', True' if spec.f32 else ''})")
            continue
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


def direct_paths(spec) -> set:
    """The paths ``(source, q)`` whose crossings fire at once, without a candidate list.

    A neuron must fire after all of an event's charges have arrived; the candidate list defers
    its test to the end of the event. That is needless when the event reaches each neuron of the
    target at most once: the only path from its source into that population (not one with a
    drive), whose ops before the last map an input to at most one output (pooling windows that do
    not overlap: kernel <= stride). A Conv2d, Linear or pooling op as the last one charges each of
    its outputs once."""
    out = set()
    for s, paths in enumerate(spec.sources):
        targets = [target for target, _ in paths]
        for q, (target, ops) in enumerate(paths):
            if target == len(spec.pops) or spec.pops[target].get("drive") or targets.count(target) > 1:
                continue
            if all(int(r[O_KIND]) not in (1, 2) and int(r[O_KH]) <= int(r[O_SH]) and int(r[O_KW]) <= int(r[O_SW])
                   for r in ops[:-1]):
                out.add((s, q))
    return out


def readout_feeders(spec) -> dict:
    """The populations whose spikes may reach the readout at once, when they fire, instead of at
    the end of their instant in flat-index order: ``{p: [ops of each path]}``, or ``{}``.

    The queue's order fixes the rounding of the readout's float64 sums. When every sum is exact
    (the driver's bound, ``engines.fastpath.readout_bound``) the order cannot show, and the
    queue, its bitmaps and its flush are work for nothing. That needs every path into the readout
    to come from a population whose paths all end there, through pooling ops and at most one
    weighted op, a Linear as the last (a weight times the pooled amplitude: exact products whose
    bits the driver can bound). float64 only, no driven population."""
    n_pops = len(spec.pops)
    if spec.f32 or any(pop.get("drive") for pop in spec.pops) or not spec.n_out:
        return {}
    out = {}
    for s, paths in enumerate(spec.sources):
        into = [ops for target, ops in paths if target == n_pops]
        if not into:
            continue
        if s == 0 or len(into) != len(paths):   # the input itself, or a population feeding others too
            return {}
        for ops in into:
            if any(int(r[O_KIND]) == 1 for r in ops) or any(int(r[O_KIND]) == 2 for r in ops[:-1]):
                return {}
        out[s - 1] = into
    return out


def _synop_adds(layer: int, count) -> list[str]:
    """Statements adding an event's ``count`` synops (an expression) to its layer's row counter
    and to the run's cumulative count (the synop budgets read it)."""
    return [f"I[I_SY + {layer}] += {count}", f"I[I_SYN] += {count}"]


def _table_synops(layer: int, doff: int) -> list[str]:
    """:func:`_synop_adds` of the event's out-degree, read from the table ``D`` (a layer that is not
    dense: some taps are not synapses under the convention)."""
    return [f"d = D[U64({doff} + pos)]", *_synop_adds(layer, "d")]


def _indented(lines: list[str]) -> str:
    """Statements as the first lines of a function body."""
    return "".join(f"    {line}\n" for line in lines)


def _path(w: _Writer, spec, s: int, q: int, target: int, ops: list, fns: dict) -> None:
    """One function per op of path ``q`` of source ``s``, last op first (each calls the next)."""
    direct = (s, q) in spec.direct
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
            w(f"c = np.int64(U64(pos) // U64({HW}))", 1)
            w(f"j = (pos - c * {HW}) * {C} + c", 1)
            c_expr = "c"
        if refresh:
            w(refresh, 1)
        for line in _sink_lines(spec, target, "j", "a", "1.0", c_expr, 1, direct):
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
            # the taps into a population record their masks: their crossings come after the last tap
            taps = _recorded_taps(spec, target, r) if last and not flat else 0
            hits = "" if not taps else "bits" if taps <= 64 else "count"
            init = {"": "", "bits": "    kt, hit = 0, 0   # taps recorded in I_HIT; bit kt of hit: tap kt had a crossing",
                    "count": "    nh = 0   # taps with a crossing, recorded in I_HIT"}[hits]
            groups = ("    cl = ci  # one group: every output channel, constant loop bounds\n    co0 = 0" if G == 1 else
                      f"    grp = ci // {cin_g}\n    cl = ci - grp * {cin_g}\n    co0 = grp * {cout_g}")
            decoded = i > 0 and int(ops[i - 1][O_KIND]) not in (1, 2)   # after a pooling op: (ci, y, x) passed
            # synops: the out-degree table D, or (dense: D equals the taps' count) n after the taps
            counted = last and layer in spec.dense
            synops = "" if counted else _indented(_table_synops(layer, doff))
            w(f'''
@njit(inline=INLINE, **INTERNAL)
def {names[i]}(pos, {"ci, y, x, " if decoded else ""}a, t, {STATE}):
    """Conv2d layer {layer}: ({Cin}, {H}, {Wd}) -> ({Cout}, {OH}, {OW}), kernel {kh}x{kw}, stride ({sh}, {sw}),
    padding ({ph}, {pw}), groups {G}; scatters one event into {'the next op' if not last else tname}."""
{synops}{conv_window(Wd, H, groups, ph, kh, sh, OH, pw, kw, sw, OW, woff, Cout, init=init, decoded=decoded)}''')
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
                    for line in _sink_lines(spec, target, "j", "a", "W[U64(wb + co)]", "j", 4, direct):
                        w(line, 4)
                else:
                    w(f"base = (oy * {OW} + ox) * {Cout}", 3)
                    for line in _channel_loop(spec, target, "base", "co0", cout_g, direct, hits):
                        w(line, 3)
                    for line in _hit_loop(target, direct, hits) if hits else ():
                        w(line, 1)
                w(f"I[I_UP + {tlayer}] += n", 1)
                if counted:   # every tap's synapses exist: the event's synops are its updates
                    for line in _synop_adds(layer, "n"):
                        w(line, 1)
        elif kind == 2:
            woff, doff = int(r[O_WOFF]), int(r[O_DOFF])
            if not last:
                raise NotImplementedError("a Linear layer feeding another op")
            synops = ([f"# dense: every input has {Cout} synapses", *_synop_adds(layer, Cout)]
                      if layer in spec.dense else _table_synops(layer, doff))
            w(f'''
@njit(inline=INLINE, **INTERNAL)
def {names[i]}(pos, a, t, {STATE}):
    """Linear layer {layer}: {Cin * H * Wd} -> {Cout}; scatters one event into {tname}."""
{_indented(synops)}    wb = {woff} + pos * {Cout}''')
            if refresh:
                w(refresh, 1)
            for line in _channel_loop(spec, target, "0", "0", Cout, direct):
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
{pool_window(H, Wd, val, ph, kh, sh, OH, pw, kw, sw, OW)}''')
            if not last:   # a Conv2d next takes the window's (c, oy, ox) too: no second decode of q
                nxt_args = "q, c, oy, ox" if int(ops[i + 1][O_KIND]) == 1 else "q"
                w(f"{nxt}({nxt_args}, val, t, {STATE})", 3)
            else:
                flat = tC != Cin
                if refresh:
                    w(refresh, 3)
                w("n += 1", 3)
                if flat:
                    for line in _sink_lines(spec, target, "q", "val", "1.0", "q", 3, direct):
                        w(line, 3)
                else:
                    w(f"j = (oy * {OW} + ox) * {Cin} + c", 3)
                    for line in _sink_lines(spec, target, "j", "val", "1.0", "c", 3, direct):
                        w(line, 3)
                w(f"I[I_UP + {tlayer}] += n", 1)
