"""Generator of the fast path's populations with a constant current (layer biases): predicted
threshold crossings (see :mod:`eventsim.kernels.fastpath_gen`, which calls these while it writes a
kernel module, and :mod:`eventsim.engines.fastpath`).

A *driven* population keeps the general path's state and arithmetic (:mod:`eventsim.kernels.async_neuron`,
:mod:`eventsim.kernels.async_events`): IF ``(v, t₁)`` with ``v(t) = v + r·(t − t₁)``; LIF
``q = (v − v∞)·s`` tested against ``(θ − v∞)·s``. Every neuron a delivery touches is tested; one
below θ has its next crossing predicted (IF ``t₁ + (θ − v)/r``, LIF ``t + τ·log1p((θ − v)/(v∞ − θ))``)
and queued, with a version number, in a heap keyed (time, population, flat index) held in the
state arrays ``S`` (times) and ``I`` (keys); a prediction is stale once the neuron changed (lazy
deletion), and only predictions that move earlier are pushed. ``run`` then merges the input with
the heap (``advance``): every instant of crossings alone is its own instant, and at one time a
population's crossings come after the input events and before that population's spikes of that
instant (the general path's queue key: time, layer, phase 0 before 2).
"""
from __future__ import annotations

from .fastpath_text import STATE, _theta, _Writer

__all__ = ["_heap", "_driven", "_crossings", "_run_timers"]


def _heap(w: _Writer) -> None:
    """The crossing heap (S_HT, I_HK): entries ordered by (time, key), key = P_OFF + flat index, so
    that crossings of one time pop population by population, each in flat-index order."""
    w('''
@njit(inline="always", **INTERNAL)
def heap_less(S, I, a, b):
    ta = S[S_HT + a]
    tb = S[S_HT + b]
    return ta < tb or (ta == tb and I[I_HK + 3 * a] < I[I_HK + 3 * b])


@njit(inline="always", **INTERNAL)
def heap_move(S, I, src, dst):
    S[S_HT + dst] = S[S_HT + src]
    for k in range(3):
        I[I_HK + 3 * dst + k] = I[I_HK + 3 * src + k]


@njit(**INTERNAL)
def heap_swap(S, I, a, b):
    S[S_HT + a], S[S_HT + b] = S[S_HT + b], S[S_HT + a]
    for k in range(3):
        I[I_HK + 3 * a + k], I[I_HK + 3 * b + k] = I[I_HK + 3 * b + k], I[I_HK + 3 * a + k]


@njit(**INTERNAL)
def heap_down(S, I, k, n):
    while True:
        m = 2 * k + 1
        if m >= n:
            return
        if m + 1 < n and heap_less(S, I, m + 1, m):
            m += 1
        if not heap_less(S, I, m, k):
            return
        heap_swap(S, I, k, m)
        k = m


@njit(**INTERNAL)
def heap_push(S, I, t, key, g, ver):
    """Queue a crossing of neuron g (version ver) at t. When the heap is full the superseded
    entries (version not the neuron's pending one: all but at most one per neuron) are dropped
    first, so HEAP_SIZE = 2·N + 64 always leaves room."""
    n = I[I_HN]
    if n >= HEAP_SIZE:
        kept = 0
        for i in range(n):
            if I[I_PV + I[I_HK + 3 * i + 1]] == I[I_HK + 3 * i + 2]:
                heap_move(S, I, i, kept)
                kept += 1
        n = kept
        for k in range(n // 2 - 1, -1, -1):
            heap_down(S, I, k, n)
    S[S_HT + n] = t
    I[I_HK + 3 * n] = key
    I[I_HK + 3 * n + 1] = g
    I[I_HK + 3 * n + 2] = ver
    k = n
    while k > 0:
        parent = (k - 1) // 2
        if not heap_less(S, I, k, parent):
            break
        heap_swap(S, I, k, parent)
        k = parent
    I[I_HN] = n + 1


@njit(**INTERNAL)
def heap_pop(S, I):
    """Remove the first entry."""
    n = I[I_HN] - 1
    I[I_HN] = n
    if n > 0:
        heap_move(S, I, n, 0)
        heap_down(S, I, 0, n)
''')


def _indent(text: str, n: int) -> str:
    return "\n".join("    " * n + line for line in text.split("\n"))


def _driven(w: _Writer, spec, p: int, pop: dict) -> None:
    """Threshold tests of a population with a constant current (the general path's driven sinks,
    ``async_events.process_candidates``, ``check_continuous``, ``predict_and_queue`` and
    ``wake_continuous``, operation for operation). IF: ``v(t) = v + r·(t − t₁)``, next crossing
    ``t₁ + (θ − v)/r``; LIF: ``q = (v − v∞)·s`` against ``(θ − v∞)·s``, next crossing
    ``t + τ·log1p((θ − v)/(v∞ − θ))``."""
    C, H, Wd = pop["C"], pop["H"], pop["W"]
    zero, layer = pop["zero"], pop["layer"]
    cmp = ">=" if pop["ge"] else ">"
    th = _theta(pop, "c")
    refresh = f"refresh_{p}(t, V, S, PRM)"
    key = f"P{p}_OFF + (jl % {C}) * {H * Wd} + jl // {C}"
    lif = dict(
        predict=f"""if not dr > th:
    ts = np.inf
else:
    {refresh}
    v = V[g] / S[S_SC_{p} + c] + dr
    ts = t + PRM[PRM_TAU_{p} + c] * math.log1p((th - v) / (dr - th))""",
        above=f"""{refresh}
u = V[g]
lim = (th - dr) * S[S_SC_{p} + c]""",
        to_zero=f"""{refresh}
V[g] = (0.0 - dr) * S[S_SC_{p} + c]""",
        subtract=f"""{refresh}
V[g] -= th * S[S_SC_{p} + c]""",
        test="""u = V[g]
lim = (th - r) * s_c""",
        below=f"""if r > th:
    ts = max(t + PRM[PRM_TAU_{p} + c] * math.log1p((th - (u / s_c + r)) / (r - th)), t)""")
    if_ = dict(
        predict="""if dr <= 0.0:
    ts = np.inf
else:   # from the stored (v, t1): the same value whenever it is asked
    ts = S[S_TL + g] + (th - V[g]) / dr""",
        above="""u = V[g] + dr * (t - S[S_TL + g])
lim = th""",
        to_zero="""V[g] = 0.0
S[S_TL + g] = t""",
        subtract="""V[g] = V[g] + dr * (t - S[S_TL + g]) - th
S[S_TL + g] = t""",
        test="""u = V[g]   # the scatter just set t1 = t
lim = th""",
        below="""if r > 0.0:
    ts = max(S[S_TL + g] + (th - u) / r, t)""")
    if pop.get("mixed"):   # per channel: the IF form where τ = ∞ (1/τ = 0), as the general path's generic sink
        form = {k: f"if PRM[PRM_{p} + {2 * C} + c] == 0.0:\n{_indent(if_[k], 1)}\nelse:\n{_indent(lif[k], 1)}"
                for k in lif}
    else:
        form = lif if pop["lif"] else if_
    predict, above, to_zero, subtract, below = (form[k] for k in ("predict", "above", "to_zero", "subtract", "below"))
    # s of the channel, refreshed at t by the scatter (read by the LIF form only)
    test = (f"s_c = S[S_SC_{p} + c]\n" if pop["lif"] else "") + form["test"]
    w(f'''
@njit(**INTERNAL)
def queue_{p}(jl, t, {STATE}):
    """Predict neuron jl's next crossing under its drive alone and queue it, unless an earlier
    prediction is pending (that one pops first, sees the neuron changed and predicts again)."""
    g = P{p}_OFF + jl
    c = jl % {C}
    th = {th}
    dr = PRM[PRM_DR_{p} + jl]
    I[I_VER + g] += 1
{_indent(predict, 1)}
    ts = max(ts, t)
    if ts <= S[S_TSTOP] and ts < S[S_PT + g]:
        S[S_PT + g] = ts
        I[I_PV + g] = I[I_VER + g]
        heap_push(S, I, ts, {key}, g, I[I_VER + g])


@njit(**INTERNAL)
def check_{p}(jl, t, {STATE}):
    """Fire neuron jl while it is above threshold ({pop['reset']} reset), then queue its next crossing."""
    g = P{p}_OFF + jl
    c = jl % {C}
    th = {th}
    dr = PRM[PRM_DR_{p} + jl]
    n_sp = 0
    while True:
{_indent(above, 2)}
        if not u {cmp} lim:
            break
{_indent(to_zero if zero else subtract, 2)}
        n_sp += 1''')
    if zero:
        w("break", 2)
    else:
        w('''if n_sp >= 1048576:
    raise ValueError("a neuron crossed its threshold more than 2**20 times at one instant; check the weights and thresholds (a subtract reset removes only θ per spike)")''', 2)
    w(f'''    if n_sp:
        emit_{p}(jl, n_sp, t, I, RAST, LT, LN)
    queue_{p}(jl, t, {STATE})


@njit(inline=INLINE, **INTERNAL)
def fire_{p}(t, {STATE}):
    """Test every candidate of population {p} (every neuron the last delivery touched): one above
    threshold fires (check_{p}); one below has its crossing re-predicted."""
    for i in range(I[I_CN + {p}]):
        jl = I[I_CAND + P{p}_OFF + i]
        U[P{p}_OFF + jl] = 0
        g = P{p}_OFF + jl
        c = jl % {C}
        th = {th}
        r = PRM[PRM_DR_{p} + jl]
{_indent(test, 2)}
        if not u {cmp} lim:
            I[I_VER + g] += 1
            ts = np.inf
{_indent(below, 3)}
            if ts != np.inf and ts <= S[S_TSTOP] and ts < S[S_PT + g]:
                S[S_PT + g] = ts
                I[I_PV + g] = I[I_VER + g]
                heap_push(S, I, ts, {key}, g, I[I_VER + g])
            continue
        check_{p}(jl, t, {STATE})
    I[I_CN + {p}] = 0


@njit(**INTERNAL)
def wake_{p}(g, ver, t, {STATE}):
    """A predicted crossing of neuron g, queued at version ver: dropped when superseded; predicted
    again when the neuron changed since; else the drive carried v exactly to θ: spike, reset to 0."""
    if I[I_PV + g] != ver:
        return
    S[S_PT + g] = np.inf
    jl = g - P{p}_OFF
    if I[I_VER + g] != ver:
        queue_{p}(jl, t, {STATE})
        return
    c = jl % {C}
    th = {th}
    dr = PRM[PRM_DR_{p} + jl]
{_indent(to_zero, 1)}
    I[I_UP + {layer}] += 1
    emit_{p}(jl, 1, t, I, RAST, LT, LN)
    check_{p}(jl, t, {STATE})
''')


def _crossings(p: int, pop: dict) -> str:
    """Flush lines of a driven population: its predicted crossings at t, in flat-index order, before
    its spikes of t are delivered (the general path's queue key: time, layer, phase 0 before 2)."""
    if not pop.get("drive"):
        return ""
    n = pop["C"] * pop["H"] * pop["W"]
    return f"""
        if I[I_FI] < 0:   # crossings of t first (their spikes join the pending ones)
            while I[I_HN] > 0 and S[S_HT] == t and I[I_HK] < P{p}_OFF + {n}:
                if RECORD_TIMES and LT.shape[0] - I[I_LOG] < N_NEURONS + 1:
                    return False
                g = I[I_HK + 1]
                ver = I[I_HK + 2]
                heap_pop(S, I)
                wake_{p}(g, ver, t, {STATE})"""


def _run_timers(w: _Writer, spec) -> None:
    """``run`` and ``pause`` of a kernel with predicted crossings: between input instants, every
    instant of queued crossings is its own instant (the general path's merge of input and queue)."""
    w(f'''

@njit(**INTERNAL)
def advance(t_next, {STATE}):
    """Finish the instant S_TCUR, then every instant of queued crossings before t_next (its
    crossings and all they cause), each after the snapshot rows before it; then the rows before
    t_next. Returns False when the spike-time log is nearly full (resumable)."""
    while True:
        if I[I_PEND] > 0 or I[I_FP] >= 0 or (I[I_HN] > 0 and S[S_HT] == S[S_TCUR]):
            if not flush(S[S_TCUR], {STATE}):
                return False
        tq = S[S_HT] if I[I_HN] > 0 else np.inf
        if tq >= t_next:
            break
        while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] < tq:
            record_row(SNAP_T[I[I_SNAPT]], np.int64(0), {STATE})
            I[I_SNAPT] += 1
        S[S_TCUR] = tq
    while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] < t_next:
        record_row(SNAP_T[I[I_SNAPT]], np.int64(0), {STATE})
        I[I_SNAPT] += 1
    return True


@njit(**JIT)
def run(ev_t, ev_pos, ev_cnt, final, t_stop, {STATE}):
    """Input events from I[I_INPUT] on (sorted by time, then position; whole instants), the
    queued crossings between them and everything they cause.

    An instant's spikes are delivered when the next instant begins (or, when ``final``, at the
    end): a non-final call leaves the last instant open (the next chunk may continue it, or begin
    before a queued crossing). Returns False when it stopped because the spike-time log is nearly
    full (the driver grows it and calls again)."""
    while True:
        i = I[I_INPUT]
        if i >= ev_t.shape[0]:
            if not final:
                return True
            if not advance(np.inf, {STATE}):
                return False
            break
        t = ev_t[i]
        if t != S[S_TCUR]:
            if not advance(t, {STATE}):
                return False
            S[S_TCUR] = t
        if I[I_IR] < 0:
            I[I_IR] = ev_cnt[i]
        while I[I_IR] > 0:
            if RECORD_TIMES and LT.shape[0] - I[I_LOG] < N_NEURONS + 1:
                return False
            I[I_IR] -= 1
            deliver_0(ev_pos[i], 1.0, t, {STATE})
            budgets(t, {STATE})
        I[I_IR] = -1
        I[I_INPUT] = i + 1
    while I[I_SNAPT] < SNAP_T.shape[0] and SNAP_T[I[I_SNAPT]] <= t_stop:
        record_row(SNAP_T[I[I_SNAPT]], np.int64(0), {STATE})
        I[I_SNAPT] += 1
    return True


@njit(**JIT)
def pause(t_pause, {STATE}):
    """End a window at t_pause (after a ``run`` over its events, all before t_pause): everything
    before t_pause, queued crossings included, and the snapshot rows before it. What is at
    t_pause belongs to the next window (the general path's pause). Returns False when the
    spike-time log is nearly full (the driver grows it and calls again)."""
    return advance(t_pause, {STATE})
''')
