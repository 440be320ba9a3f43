"""Fan-out of one event along its projection paths, by index arithmetic.

A *path* leads from a source (the network input or a spiking population) to a target population
or the readout through a short list of ops: pooling windows (sum, average, spike max), at most one
weighted layer (Conv2d or Linear), Flatten and Add (identity on the flat index). Positions travel
as flat indices in the ``(C, H, W)`` order of the layer they are in; target state is stored with
channels innermost (``j = (y·W + x)·C + c``) so that a conv tap touches ``C`` consecutive
neurons and ``C`` consecutive weights (stored ``(C_in/G, kh, kw, C_out)``).

An event arriving at the input of a weighted layer at position ``i`` with multiplicity ``n`` counts
``n·d_i`` synops (``d`` = out-degree, see :mod:`eventsim.counting`). Every op but the last writes
its outputs into a scratch buffer; the last integrates directly into the target (:func:`sink`).

Sinks: batch mode adds to the per-step accumulator and lists the neuron as touched; continuous
mode applies the impulse and lists the neuron as a threshold candidate when it may have crossed
(always, when the population has a drive, a gain or a refractory period).
"""
import numpy as np
from numba import njit

from .async_layout import (ASYNC_JIT, CS_SC, CS_THS, C_THETA, G_PATH0, G_PATH1, N_ACC, N_CAND, N_DR, N_TCH,
                           N_TL, N_V, N_VER, OP_CONV, OP_POOL, POOL_AVG, POOL_MAX, Q_NOPS, Q_OP0,
                           Q_TARGET, R_SYN, R_UPD, SINK_DRIVEN_IF, SINK_DRIVEN_LIF, SINK_IF, SINK_LIF,
                           S_CHECKT, S_PEND, S_TCHN, U_CAND, U_TOUCHED, YC_GSYN, YLEAKY_CUBA, Y_ACC, Y_SYN,
                           Y_Y, cso, grp_get, nfo, nio, path_get, pno, pso, real, ro, yo)
from .async_events import readout_to
from .async_neuron import impulse, lif_refresh


@njit(**ASYNC_JIT)
def touch(net, st, p, jl, t):
    """List neuron ``jl`` (local index) of population ``p`` for the batch threshold check at ``t``."""
    si = st.si
    g = net.pop[p].offset + jl
    u = U_TOUCHED * net.h.n_neurons + g
    if st.su[u] == 0:
        st.su[u] = 1
        o_n = pno(net, S_TCHN) + p
        si[nio(net, N_TCH) + net.pop[p].offset + si[o_n]] = jl
        si[o_n] += 1
    pending(net, st, p, t)


@njit(inline="always", **ASYNC_JIT)
def pending(net, st, p, t):
    """Note that population ``p`` needs a batch threshold check at ``t`` (once per time)."""
    o_check = pso(net, S_CHECKT) + p
    if st.sf[o_check] != t:
        st.sf[o_check] = t
        st.si[pno(net, S_PEND) + st.cur.n_pend] = p
        st.cur.n_pend += 1


@njit(inline="always", **ASYNC_JIT)
def tap(net, st, i, base, c0, wb):
    """Record tap ``i`` of the current event: neurons ``base + c``, channels ``c0 ≤ c < c0 + width``,
    weights ``nf[wb + c]``."""
    o = net.h.si_taps + 3 * i
    st.si[o] = base
    st.si[o + 1] = c0
    st.si[o + 2] = wb
    return i + 1


@njit(**ASYNC_JIT)
def sink(net, st, tp, n_taps, width, a, t):
    """Integrate ``a·w`` into target ``tp`` (a population, or the number of populations for the
    readout) along the ``n_taps`` taps of one event (see :func:`tap`), ``width`` channels each.

    Population kinds (``pop.sink``): ``SINK_IF`` and ``SINK_LIF`` without drive, gain or refractory
    period (``v += a·w``, ``q += a·w·s``, tested against θ or θ·s); ``SINK_DRIVEN_IF`` and
    ``SINK_DRIVEN_LIF`` with a drive only; ``SINK_GENERAL`` anything else (:func:`~eventsim.kernels.async_neuron.impulse`). One call per event keeps
    Numba's per-call cost (it passes the state tuple by value) off the per-synapse path.

    The per-synapse loops index with ``np.uint64`` (offsets here are never negative): a signed
    index makes Numba emit a negative-index wrap-around on every access, which costs ~20 % of
    the run time on a DVS128-scale network (``benchmarks/bench_async.py``).
    """
    h, nf, sf, si, su = net.h, net.nf, st.sf, st.si, st.su
    o_taps = h.si_taps
    batch = h.batch
    if tp == h.n_pop:
        if not batch and h.y_leaky:
            readout_to(net, st, t)
        o_y = yo(net, Y_ACC if batch else Y_Y)
        if not batch and h.y_leaky == YLEAKY_CUBA:   # CubaLI: into its synaptic current, i += a·w·q/τ_syn
            o_y = yo(net, Y_SYN)
            o_g = h.nf_ycf + YC_GSYN * h.n_out   # the row ycf[YC_GSYN]
            for i in range(n_taps):
                base, c0, wb = si[o_taps + 3 * i], si[o_taps + 3 * i + 1], si[o_taps + 3 * i + 2]
                for c in range(c0, c0 + width):
                    sf[o_y + base + c] += a * nf[wb + c] * nf[o_g + base + c]
            si[ro(net, R_UPD) + h.out_layer] += n_taps * width
            return
        for i in range(n_taps):
            base, c0, wb = si[o_taps + 3 * i], si[o_taps + 3 * i + 1], si[o_taps + 3 * i + 2]
            for c in range(c0, c0 + width):
                sf[o_y + base + c] += a * nf[wb + c]
        si[ro(net, R_UPD) + h.out_layer] += n_taps * width
        return
    N = h.n_neurons
    p_off = net.pop[tp].offset
    if batch:
        o_list = nio(net, N_TCH) + p_off
        o_n = pno(net, S_TCHN) + tp
        for i in range(n_taps):
            base, c0, wb = si[o_taps + 3 * i], si[o_taps + 3 * i + 1], si[o_taps + 3 * i + 2]
            o_acc = nfo(net, N_ACC) + p_off + base
            o_flag = U_TOUCHED * N + p_off + base
            for c in range(c0, c0 + width):
                sf[np.uint64(o_acc + c)] += a * nf[np.uint64(wb + c)]
                if su[o_flag + c] == 0:
                    su[o_flag + c] = 1
                    si[o_list + si[o_n]] = base + c
                    si[o_n] += 1
        pending(net, st, tp, t)
        return
    coff = net.pop[tp].channel0
    kind = net.pop[tp].sink
    ge = net.pop[tp].compare_ge
    o_cand = nio(net, N_CAND)
    n_upd = n_taps * width
    if kind == SINK_LIF or kind == SINK_DRIVEN_LIF:
        lif_refresh(net, st, tp, t)
    o_s = cso(net, CS_SC) + coff
    o_ths = cso(net, CS_THS) + coff
    o_th = h.nf_cf + C_THETA * h.n_channels + coff   # the row cf[C_THETA]
    for i in range(n_taps):
        base, c0, wb = si[o_taps + 3 * i], si[o_taps + 3 * i + 1], si[o_taps + 3 * i + 2]
        off = p_off + base
        o_v = nfo(net, N_V) + off
        o_flag = U_CAND * N + off
        if kind == SINK_IF or kind == SINK_LIF:
            # IF: v += a·w, tested against θ; LIF: q += a·w·s, tested against θ·s. The update loop
            # vectorises (no branch, unsigned indices) and ORs ``u >= limit`` (a superset of both
            # comparisons); only when some neuron reached its limit does the candidate loop run.
            o_lim = o_th if kind == SINK_IF else o_ths
            hit = False
            if h.f32:   # dtype="float32": the same operations, each result rounded to float32
                for c in range(c0, c0 + width):
                    iv = np.uint64(o_v + c)
                    x = real(net, a * nf[np.uint64(wb + c)])
                    if kind == SINK_LIF:
                        x = real(net, x * sf[np.uint64(o_s + c)])
                    u = real(net, sf[iv] + x)
                    sf[iv] = u
                    hit |= u >= (nf[np.uint64(o_lim + c)] if kind == SINK_IF else sf[np.uint64(o_lim + c)])
            elif kind == SINK_IF:
                for c in range(c0, c0 + width):
                    iv = np.uint64(o_v + c)
                    u = sf[iv] + a * nf[np.uint64(wb + c)]
                    sf[iv] = u
                    hit |= u >= nf[np.uint64(o_lim + c)]
            else:
                for c in range(c0, c0 + width):
                    iv = np.uint64(o_v + c)
                    u = sf[iv] + (a * nf[np.uint64(wb + c)]) * sf[np.uint64(o_s + c)]
                    sf[iv] = u
                    hit |= u >= sf[np.uint64(o_lim + c)]
            if hit:
                lims = nf if kind == SINK_IF else sf
                for c in range(c0, c0 + width):
                    u = sf[np.uint64(o_v + c)]
                    th = lims[np.uint64(o_lim + c)]
                    if (u >= th if ge else u > th) and su[o_flag + c] == 0:
                        su[o_flag + c] = 1
                        si[o_cand + st.cur.n_cand] = off + c
                        st.cur.n_cand += 1
        elif kind == SINK_DRIVEN_IF or kind == SINK_DRIVEN_LIF:  # driven IF: v ← v + r·(t − t₁) + a·w; driven LIF: q += a·w·s
            o_tl, o_dr, o_ver = nfo(net, N_TL) + off, nfo(net, N_DR) + off, nio(net, N_VER) + off
            for c in range(c0, c0 + width):
                ch = a * nf[wb + c]
                if ch == 0.0:   # changes nothing: no re-anchoring, no re-prediction (rounding alone
                    continue    # would move the crossing of a neuron identical to its neighbours)
                if kind == SINK_DRIVEN_IF:
                    sf[o_v + c] = sf[o_v + c] + sf[o_dr + c] * (t - sf[o_tl + c]) + ch
                    sf[o_tl + c] = t
                else:
                    sf[o_v + c] += ch * sf[o_s + c]
                si[o_ver + c] += 1
                if su[o_flag + c] == 0:
                    su[o_flag + c] = 1
                    si[o_cand + st.cur.n_cand] = off + c
                    st.cur.n_cand += 1
        else:
            for c in range(c0, c0 + width):
                if impulse(net, st, tp, off + c, coff + c, a * nf[wb + c], t):
                    if su[o_flag + c] == 0:
                        su[o_flag + c] = 1
                        si[o_cand + st.cur.n_cand] = off + c
                        st.cur.n_cand += 1
                else:
                    n_upd -= 1
    si[ro(net, R_UPD) + net.pop[tp].layer] += n_upd


@njit(inline="always", **ASYNC_JIT)
def _flat_target(net, tp, channels):
    """True when target ``tp`` is 1-D while the op feeding it has ``channels`` channels (H·W > 1)."""
    if tp == net.h.n_pop:
        return net.h.n_out != channels
    return net.pop[tp].channels != channels


@njit(inline="always", **ASYNC_JIT)
def _count(net, st, o, pos, cnt):
    n = cnt * net.ni[net.h.ni_deg + net.op[o].d_off + pos]
    st.si[ro(net, R_SYN) + net.op[o].layer] += n
    st.cur.synops += n


@njit(inline="always", **ASYNC_JIT)
def _buffer(net, st, bo, nb, q, v, n):
    """Append ``(q, v, n)`` to scratch buffer ``bo``; returns the new length."""
    i = bo * net.h.buffer + nb
    st.si[net.h.si_buf_pos + i] = q
    st.sf[net.h.sf_buf_val + i] = v
    st.si[net.h.si_buf_cnt + i] = n
    return nb + 1


@njit(inline="always", **ASYNC_JIT)
def _out_range(i, pad, k, stride, n_out):
    """Outputs ``o`` whose window (``o·stride − pad + [0, k)``) contains input ``i``: ``lo ≤ o < hi``."""
    top = i + pad
    lo = max(-((k - 1 - top) // stride), 0)   # ceil((top − k + 1) / stride), at least 0
    hi = min(top // stride + 1, n_out) if top >= 0 else 0
    return lo, hi


@njit(**ASYNC_JIT)
def _pool(net, st, o, pos, a, cnt, t, k, tp, bo, nb):
    """Route an event through pooling op ``o``: into target ``tp``, or (``tp < 0``) to buffer ``bo``.

    Spike max-pool in batch mode passes one event per window and step, with the window's largest
    value (a later, larger value passes its difference with multiplicity 0)."""
    C, H, W = net.op[o].in_c, net.op[o].in_h, net.op[o].in_w
    OH, OW = net.op[o].out_h, net.op[o].out_w
    kh, kw, sh, sw = net.op[o].kh, net.op[o].kw, net.op[o].sh, net.op[o].sw
    ph, pw = net.op[o].ph, net.op[o].pw
    mode = net.op[o].mode
    x = pos % W
    y = (pos // W) % H
    c = pos // (W * H)
    val = real(net, a / float(kh * kw)) if mode == POOL_AVG else a
    flat = tp >= 0 and _flat_target(net, tp, C)
    n_taps = 0
    oy0, oy1 = _out_range(y, ph, kh, sh, OH)
    ox0, ox1 = _out_range(x, pw, kw, sw, OW)
    for oy in range(oy0, oy1):
        for ox in range(ox0, ox1):
            v_out = val
            n_out = cnt
            q = (c * OH + oy) * OW + ox
            if mode == POOL_MAX:
                n_out = 1
                if net.h.batch:
                    i_step = net.h.si_pool + net.op[o].m_off + q
                    i_best = net.h.sf_pool + net.op[o].m_off + q
                    if st.si[i_step] != k:
                        st.si[i_step] = k
                        st.sf[i_best] = a
                    elif a > st.sf[i_best]:
                        v_out = a - st.sf[i_best]
                        st.sf[i_best] = a
                        n_out = 0
                    else:
                        continue
            if tp < 0:
                nb = _buffer(net, st, bo, nb, q, v_out, n_out)
            else:
                ch = q if flat else c
                base = 0 if flat else (oy * OW + ox) * C
                if v_out != val:   # a max-pool correction carries its own value: deliver it alone
                    if n_taps:
                        sink(net, st, tp, n_taps, np.int64(1), val, t)
                        n_taps = 0
                    sink(net, st, tp, tap(net, st, np.int64(0), base, ch, net.h.nf_one - ch), np.int64(1), v_out, t)
                else:
                    n_taps = tap(net, st, n_taps, base, ch, net.h.nf_one - ch)
    if n_taps:
        sink(net, st, tp, n_taps, np.int64(1), val, t)
    return nb


@njit(**ASYNC_JIT)
def _conv(net, st, o, pos, a, cnt, t, tp, bo, nb):
    """Scatter an event through conv op ``o``: into target ``tp``, or (``tp < 0``) to buffer ``bo``."""
    _count(net, st, o, pos, cnt)
    H, W = net.op[o].in_h, net.op[o].in_w
    Cout, OH, OW = net.op[o].out_c, net.op[o].out_h, net.op[o].out_w
    kh, kw, sh, sw = net.op[o].kh, net.op[o].kw, net.op[o].sh, net.op[o].sw
    ph, pw = net.op[o].ph, net.op[o].pw
    cin_g = net.op[o].in_c // net.op[o].groups
    cout_g = Cout // net.op[o].groups
    x = pos % W
    y = (pos // W) % H
    ci = pos // (W * H)
    grp = ci // cin_g
    cl = ci - grp * cin_g
    co0 = grp * cout_g
    woff = net.h.nf_w + net.op[o].w_off
    flat = tp >= 0 and _flat_target(net, tp, Cout)
    n_taps = 0
    oy0, oy1 = _out_range(y, ph, kh, sh, OH)
    ox0, ox1 = _out_range(x, pw, kw, sw, OW)
    for oy in range(oy0, oy1):
        ky = y + ph - oy * sh
        for ox in range(ox0, ox1):
            wb = woff + ((cl * kh + ky) * kw + (x + pw - ox * sw)) * Cout
            if tp < 0:
                for co in range(co0, co0 + cout_g):
                    nb = _buffer(net, st, bo, nb, (co * OH + oy) * OW + ox, real(net, a * net.nf[wb + co]),
                                     np.int64(0))
            elif flat:  # a flattened target is not channels-innermost: one tap per channel
                for co in range(co0, co0 + cout_g):
                    q = (co * OH + oy) * OW + ox
                    sink(net, st, tp, tap(net, st, np.int64(0), np.int64(0), q, wb + co - q), np.int64(1), a, t)
            else:
                n_taps = tap(net, st, n_taps, (oy * OW + ox) * Cout, co0, wb)
    if n_taps:
        sink(net, st, tp, n_taps, cout_g, a, t)
    return nb


@njit(**ASYNC_JIT)
def _linear(net, st, o, pos, a, cnt, t, tp, bo, nb):
    _count(net, st, o, pos, cnt)
    n_out = net.op[o].out_c
    wb = net.h.nf_w + net.op[o].w_off + pos * n_out
    if tp >= 0:
        sink(net, st, tp, tap(net, st, np.int64(0), np.int64(0), np.int64(0), wb), n_out, a, t)
        return nb
    for co in range(n_out):
        nb = _buffer(net, st, bo, nb, co, real(net, a * net.nf[wb + co]), np.int64(0))
    return nb


@njit(inline="always", **ASYNC_JIT)
def _identity(net, st, pos, a, t, tp):
    """Flatten / Add only: the flat position maps one to one onto the target."""
    if tp == net.h.n_pop:
        base, c = pos, np.int64(0)
    else:
        C, HW = net.pop[tp].channels, net.pop[tp].height * net.pop[tp].width
        c = pos // HW
        base = (pos - c * HW) * C
    sink(net, st, tp, tap(net, st, np.int64(0), base, c, net.h.nf_one - c), np.int64(1), a, t)


@njit(inline="always", **ASYNC_JIT)
def _apply(net, st, o, pos, a, cnt, t, k, tp, bo, nb):
    """Op ``o`` (``-1``: identity) on one event, into target ``tp`` or (``tp < 0``) buffer ``bo``."""
    if o < 0:
        _identity(net, st, pos, a, t, tp)
        return nb
    kind = net.op[o].kind
    if kind == OP_POOL:
        return _pool(net, st, o, pos, a, cnt, t, k, tp, bo, nb)
    if kind == OP_CONV:
        return _conv(net, st, o, pos, a, cnt, t, tp, bo, nb)
    return _linear(net, st, o, pos, a, cnt, t, tp, bo, nb)


@njit(inline="always", **ASYNC_JIT)
def deliver(net, st, grp, pos, a, cnt, t, k):
    """Carry one event (flat position ``pos``, value ``a``, multiplicity ``cnt``) along every path
    of delay group ``grp``. A path's ops are ``path_ops[Q_OP0 : Q_OP0 + Q_NOPS]`` (one op per layer,
    shared by the paths through that layer)."""
    h = net.h
    B = h.buffer
    o_p, o_v, o_c = h.si_buf_pos, h.sf_buf_val, h.si_buf_cnt
    for q in range(grp_get(net, grp, G_PATH0), grp_get(net, grp, G_PATH1)):
        tp = path_get(net, q, Q_TARGET)
        o0 = h.ni_path_ops + path_get(net, q, Q_OP0)
        n_ops = path_get(net, q, Q_NOPS)
        st.si[o_p] = pos
        st.sf[o_v] = a
        st.si[o_c] = cnt
        n = 1
        src = 0
        for i in range(max(n_ops, 1)):
            o = net.ni[o0 + i] if n_ops else -1
            target = tp if i == max(n_ops, 1) - 1 else -1
            nb = 0
            for e in range(n):
                j = src * B + e
                nb = _apply(net, st, o, st.si[o_p + j], st.sf[o_v + j], st.si[o_c + j], t, k, target, 1 - src, nb)
            n = nb
            src = 1 - src
