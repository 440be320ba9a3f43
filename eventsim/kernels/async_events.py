"""Event handling of the asynchronous engine: queue pushes, spike emission, threshold checks.

Batch mode (``simultaneous="batch"``) advances each touched neuron by whole steps with the
stepped engine's arithmetic (:func:`eventsim.kernels.neuron.neuron_step`): ``m`` idle steps are
``m`` multiplications ``v ← λ·v`` (an idle step cannot spike unless a wake-up was queued), then
one ``neuron_step`` with the step's accumulated current ``I·g_k + b_k``. After the update, a
neuron that would spike at the next step with no input (residual ``v > θ`` after a subtract
reset, fire-then-integrate, ``v_init > θ``) queues a wake-up for that step.

The heap ``st.queue`` is allocated once at ``queue_limit`` entries (pages are committed only
when first used, so memory follows the queue's high-water mark ``st.cur.heap_high``). When it is full,
stale predictions (version ≠ the neuron's) are dropped; if none can be dropped the run stops
with an error.
"""
import math

import numpy as np
from numba import njit

from .async_layout import (ASYNC_JIT, CS_BNOW, CS_GNOW, CS_SC, CS_THS, C_ITAU, C_LEAK, C_QSYN, C_SGAIN,
                           C_SLEAK, C_TAU, C_THETA, C_VMIN, F_DT, G_PATH0, G_PATH1, G_STEPS, N_ACC, N_CAND,
                           N_CST, N_DR, N_LS, N_PT, N_PV, N_RU, N_SYN, N_TCH, N_TL, N_V, N_VER, R_SP, R_UPD,
                           SINK_DRIVEN_IF, SINK_DRIVEN_LIF, SINK_IF, SINK_LIF, STEPX_MULTI, S_PEND, S_TCHN,
                           U_CAND, U_TOUCHED, YC_ITAU, YC_ITAUS, YC_LEAK, YC_QSYN, YC_SGAIN, YC_SLEAK,
                           YLEAKY_CUBA, Y_ACC, Y_CST, Y_RATE, Y_SYN, Y_Y, cget, cso, grp_get, layer_pop,
                           neuron_pop, nfo, nio, pno, real, ro, src_groups, yc, yo)
from .async_neuron import above, cuba_advance, fire, freeze, is_cuba, predict, release, set_value, value_at
from .async_queue import AUX_WAKE, PHASE_DELIVER, PHASE_WAKE, heap_push, heapify, unpack
from .async_cuba import evolve
from .neuron import neuron_step, neuron_step_multi


# ----------------------------------------------------------------------------- indices and queue


@njit(inline="always", **ASYNC_JIT)
def to_local(net, p, n):
    """Flat ``(C, H, W)`` index ``n`` of population ``p`` -> channels-innermost local index."""
    hw = net.pop[p].height * net.pop[p].width
    c = n // hw
    return (n - c * hw) * net.pop[p].channels + c


@njit(inline="always", **ASYNC_JIT)
def to_flat(net, p, jl):
    """Channels-innermost local index -> flat ``(C, H, W)`` index."""
    C = net.pop[p].channels
    return (jl % C) * net.pop[p].height * net.pop[p].width + jl // C


@njit(inline="always", **ASYNC_JIT)
def step_time(net, st, k):
    """Batch-mode time of step ``k``: ``t_start + (k + 1)·dt`` (the end of the step's bin)."""
    return st.cur.t_start + (k + 1) * net.nf[F_DT]


@njit(**ASYNC_JIT)
def _compact(net, st):
    """Drop superseded predictions (version ≠ the neuron's pending one) and re-heapify."""
    q = st.queue
    size = st.cur.heap_size
    o_pv = nio(net, N_PV)
    w = 0
    for i in range(size):
        keep = True
        layer, phase, neuron = unpack(q[i].key)
        if phase == PHASE_WAKE and q[i].aux >= 0:   # a prediction (a version number)
            p = layer_pop(net, layer)
            keep = st.si[o_pv + net.pop[p].offset + to_local(net, p, neuron)] == q[i].aux
        if keep:
            q[w].t, q[w].key, q[w].aux = q[i].t, q[i].key, q[i].aux
            w += 1
    heapify(q, w)
    st.cur.heap_size = w
    st.cur.garbage = 0
    return w < size


@njit(**ASYNC_JIT)
def push(net, st, t, layer, phase, neuron, aux):
    """Push a queue entry; superseded predictions are dropped when they make up half the heap,
    or when it is full (then, if none can be dropped, the run stops with an error)."""
    cur = st.cur
    size = cur.heap_size
    garbage = cur.garbage
    if size >= st.queue.shape[0] or (garbage > 4096 and 2 * garbage > size):
        if not _compact(net, st) and size >= st.queue.shape[0]:
            raise ValueError("event queue overflow: more pending events than queue_limit; "
                             "raise queue_limit= or look for runaway spiking")
        size = cur.heap_size
    cur.heap_size = heap_push(st.queue, size, t, layer, phase, neuron, aux)
    cur.heap_high = max(cur.heap_high, size + 1)


@njit(**ASYNC_JIT)
def predict_and_queue(net, st, p, g, c, t):
    """Queue neuron ``g``'s next crossing under its drive — unless an earlier prediction is already
    pending: that one will then pop first, see that the neuron changed and predict again. Only
    crossings that move earlier cost a queue entry (lazy deletion by version number)."""
    o_ver = nio(net, N_VER) + g
    st.si[o_ver] += 1
    ts = max(predict(net, st, p, g, c, t), t)
    o_pt = nfo(net, N_PT) + g
    if ts <= st.cur.t_stop and ts < st.sf[o_pt]:
        if st.sf[o_pt] != np.inf:
            st.cur.garbage += 1
        st.sf[o_pt] = ts
        st.si[nio(net, N_PV) + g] = st.si[o_ver]
        push(net, st, ts, net.pop[p].layer, np.int64(PHASE_WAKE), to_flat(net, p, g - net.pop[p].offset),
             st.si[o_ver])


# ----------------------------------------------------------------------------- spikes


@njit(**ASYNC_JIT)
def emit(net, st, p, jl, count, t, k):
    """Record ``count`` spikes of neuron ``jl`` of population ``p`` at ``t`` and queue their delivery."""
    h, cur, si = net.h, st.cur, st.si
    layer = net.pop[p].layer
    g = net.pop[p].offset + jl
    si[ro(net, R_SP) + layer] += count
    if h.rec_raster and cur.row < h.n_rows:
        si[h.si_raster + cur.row * h.n_neurons + g] += count
    if h.rec_times:
        i = cur.log_size
        st.log[i].t = t
        st.log[i].neuron = g
        st.log[i].count = count
        cur.log_size = i + 1
    queue_groups(net, st, p + 1, np.int64(0), layer, to_flat(net, p, jl), count, t, k)


@njit(inline="always", **ASYNC_JIT)
def queue_groups(net, st, s, first, layer, n, count, t, k):
    """Queue the delivery of ``count`` events of source ``s`` (0: input, 1 + p: population p) at
    flat position ``n`` along each of its delay groups from the ``first``-th on, at ``t`` plus the
    group's delay (batch mode: whole steps after step ``k``); deliveries after ``t_stop`` are dropped."""
    g0, n_groups = src_groups(net, s)
    for gi in range(g0 + first, g0 + n_groups):
        if grp_get(net, gi, G_PATH1) == grp_get(net, gi, G_PATH0):
            continue
        if net.h.batch:
            td = step_time(net, st, k + grp_get(net, gi, G_STEPS))
        else:
            td = t + net.nf[net.h.nf_grp_delay + gi]
        if td <= st.cur.t_stop:
            push(net, st, td, layer, PHASE_DELIVER + gi - g0, n, count)


@njit(**ASYNC_JIT)
def check_continuous(net, st, p, g, t):
    """Fire neuron ``g`` while it is above threshold, then queue its next predicted crossing."""
    if st.sf[nfo(net, N_RU) + g] != -np.inf:
        return
    jl = g - net.pop[p].offset
    c = net.pop[p].channel0 + jl % net.pop[p].channels
    layer = net.pop[p].layer
    refr = net.pop[p].refractory_us
    n_sp = 0
    frozen = False
    while above(net, st, p, g, c, t):
        fire(net, st, p, g, c, t)
        n_sp += 1
        if refr > 0.0:
            tw = freeze(net, st, p, g, c, t)
            frozen = True
            if tw <= st.cur.t_stop:
                push(net, st, tw, layer, np.int64(PHASE_WAKE), to_flat(net, p, jl), np.int64(AUX_WAKE))
            break
        if net.pop[p].reset_zero:
            break
        if n_sp >= 1048576:
            raise ValueError("a neuron crossed its threshold more than 2**20 times at one instant; "
                             "check the weights and thresholds (a subtract reset removes only θ per spike)")
    if n_sp:
        emit(net, st, p, jl, n_sp, t, np.int64(0))
    if (net.pop[p].drive or is_cuba(net, p)) and not frozen:   # a synaptic current charges on
        predict_and_queue(net, st, p, g, c, t)


@njit(inline="always", **ASYNC_JIT)
def process_candidates(net, st, t):
    """Test every neuron listed as a threshold candidate by the last delivery. Plain IF/LIF
    (kinds 1, 2) fire and reset here, and a driven IF/LIF (kinds 4, 5) that stays below θ only
    needs its crossing re-predicted, with the arithmetic of :func:`~eventsim.kernels.async_neuron.fire`
    and :func:`~eventsim.kernels.async_neuron.predict`; anything else takes the general path."""
    sf, si = st.sf, st.si
    o_c = nio(net, N_CAND)
    o_u = U_CAND * net.h.n_neurons
    o_v, o_tl, o_dr, o_pt = nfo(net, N_V), nfo(net, N_TL), nfo(net, N_DR), nfo(net, N_PT)
    o_ver, o_pv = nio(net, N_VER), nio(net, N_PV)
    p, lo, hi = np.int64(-1), np.int64(0), np.int64(0)
    for i in range(st.cur.n_cand):
        g = si[o_c + i]
        st.su[o_u + g] = 0
        if g < lo or g >= hi:   # candidates come in runs of one population: skip the table lookup
            p = neuron_pop(net, g)
            lo = net.pop[p].offset
            hi = lo + net.pop[p].neurons
        kind = net.pop[p].sink
        if kind == SINK_DRIVEN_IF or kind == SINK_DRIVEN_LIF:   # IF / LIF with a drive only
            jl = g - net.pop[p].offset
            c = net.pop[p].channel0 + jl % net.pop[p].channels
            th = cget(net, C_THETA, c)
            r = sf[o_dr + g]
            if kind == SINK_DRIVEN_IF:   # the sink just set t₁ = t
                u, lim = sf[o_v + g], th
            else:           # q against (θ − v∞)·s; the sink refreshed s at t
                s_c = sf[cso(net, CS_SC) + c]
                u, lim = sf[o_v + g], (th - r) * s_c
            if not (u >= lim if net.pop[p].compare_ge else u > lim):
                si[o_ver + g] += 1
                ts = np.inf   # as predict(): IF t₁ + (θ − v)/r, LIF t + τ·ln(1 + (θ − v)/(v∞ − θ))
                if kind == SINK_DRIVEN_IF and r > 0.0:
                    ts = max(sf[o_tl + g] + (th - u) / r, t)
                elif kind == SINK_DRIVEN_LIF and r > th:
                    ts = max(t + cget(net, C_TAU, c) * math.log1p((th - (u / s_c + r)) / (r - th)), t)
                if ts != np.inf:
                    if ts <= st.cur.t_stop and ts < sf[o_pt + g]:
                        if sf[o_pt + g] != np.inf:
                            st.cur.garbage += 1
                        sf[o_pt + g] = ts
                        si[o_pv + g] = si[o_ver + g]
                        push(net, st, ts, net.pop[p].layer, np.int64(PHASE_WAKE), to_flat(net, p, jl),
                             si[o_ver + g])
                continue
        elif kind == SINK_IF or kind == SINK_LIF:   # plain IF / LIF: fire while above θ (as fire() does), no drive
            jl = g - net.pop[p].offset
            c = net.pop[p].channel0 + jl % net.pop[p].channels
            th = cget(net, C_THETA, c)
            scale = sf[cso(net, CS_SC) + c] if kind == SINK_LIF else 1.0   # s, refreshed at t by the sink
            lim = sf[cso(net, CS_THS) + c] if kind == SINK_LIF else th
            ge = net.pop[p].compare_ge
            u = sf[o_v + g]
            n_sp = 0
            while u >= lim if ge else u > lim:
                n_sp += 1
                if net.pop[p].reset_zero:
                    u = 0.0
                    sf[o_tl + g] = t
                    break
                u = real(net, u - th) if kind == SINK_IF else real(net, u - real(net, th * scale))
                if n_sp >= 1048576:
                    raise ValueError("a neuron crossed its threshold more than 2**20 times at one instant; "
                                     "check the weights and thresholds (a subtract reset removes only θ per spike)")
            sf[o_v + g] = u
            if n_sp:
                emit(net, st, p, jl, np.int64(n_sp), t, np.int64(0))
            continue
        check_continuous(net, st, p, g, t)
    st.cur.n_cand = 0


@njit(inline="always", **ASYNC_JIT)
def wake_continuous(net, st, p, n, aux, t):
    """A predicted crossing (``aux`` = version) or the end of a refractory period (``aux = -1``)."""
    jl = to_local(net, p, n)
    g = net.pop[p].offset + jl
    c = net.pop[p].channel0 + jl % net.pop[p].channels
    ru = st.sf[nfo(net, N_RU) + g]
    if aux < 0:
        if ru != -np.inf and ru <= t:
            release(net, st, p, g, c, ru)
            check_continuous(net, st, p, g, t)
        return
    if st.si[nio(net, N_PV) + g] != aux:   # superseded by an earlier prediction
        st.cur.garbage = max(st.cur.garbage - 1, 0)
        return
    st.sf[nfo(net, N_PT) + g] = np.inf
    if ru != -np.inf:
        return
    if st.si[nio(net, N_VER) + g] != aux:  # the neuron changed since: predict again from its state
        predict_and_queue(net, st, p, g, c, t)
        return
    if is_cuba(net, p):   # the bracketed search stopped where the same evaluation is above θ
        check_continuous(net, st, p, g, t)
        return
    # the drive carried v exactly to θ: spike, and reset to 0 (= θ − θ for a subtract reset)
    set_value(net, st, p, g, c, t, 0.0)
    st.si[ro(net, R_UPD) + net.pop[p].layer] += 1
    emit(net, st, p, jl, np.int64(1), t, np.int64(0))
    if net.pop[p].refractory_us > 0.0:
        tw = freeze(net, st, p, g, c, t)
        if tw <= st.cur.t_stop:
            push(net, st, tw, net.pop[p].layer, np.int64(PHASE_WAKE), n, np.int64(AUX_WAKE))
        return
    check_continuous(net, st, p, g, t)


# ----------------------------------------------------------------------------- batch mode


@njit(**ASYNC_JIT)
def catch_up(v, lam, idle):
    """``idle`` leak-only steps with the stepped engine's arithmetic (``v ← λ·v`` each)."""
    if lam != 1.0:
        for _ in range(idle):
            if v == 0.0:
                break
            v = lam * v
    return v


@njit(inline="always", **ASYNC_JIT)
def first_free_step(net, st, ru):
    """First batch step whose time is at or after the end ``ru`` of a refractory period."""
    return int(np.ceil((ru - st.cur.t_start) / net.nf[F_DT] - 1e-9)) - 1


@njit(inline="always", **ASYNC_JIT)
def check_batch(net, st, p, t, k):
    """Advance every touched neuron of population ``p`` to step ``k`` and emit its spikes."""
    sf, si = st.sf, st.si
    off = net.pop[p].offset
    C = net.pop[p].channels
    c0 = net.pop[p].channel0
    layer = net.pop[p].layer
    tab = net.h.nf_tab + 2 * (net.pop[p].table + k * C)  # (gain, bias) pairs of step k
    ifirst, zero, ge = net.pop[p].integrate_first, net.pop[p].reset_zero, net.pop[p].compare_ge
    gain, bias, drive = net.pop[p].gain, net.pop[p].bias, net.pop[p].drive
    refr = net.pop[p].refractory_us
    stepx = net.pop[p].step_extra
    cuba = is_cuba(net, p)
    o_syn = nfo(net, N_SYN) + off
    o_v, o_ru, o_acc = nfo(net, N_V) + off, nfo(net, N_RU) + off, nfo(net, N_ACC) + off
    o_ls, o_tch = nio(net, N_LS) + off, nio(net, N_TCH) + off
    o_u = U_TOUCHED * net.h.n_neurons + off
    o_n = pno(net, S_TCHN) + p
    for i in range(si[o_n]):
        jl = si[o_tch + i]
        c = c0 + jl % C
        st.su[o_u + jl] = 0
        current = sf[o_acc + jl]
        sf[o_acc + jl] = 0.0
        last = si[o_ls + jl]
        if sf[o_ru + jl] != -np.inf:
            if t < sf[o_ru + jl]:
                si[o_ls + jl] = k
                continue
            last = max(last, first_free_step(net, st, sf[o_ru + jl]) - 1)
            sf[o_ru + jl] = -np.inf
        lam = cget(net, C_LEAK, c)
        theta = cget(net, C_THETA, c)
        v = catch_up(sf[o_v + jl], lam, k - last - 1)
        if gain:
            current = current * net.nf[tab + 2 * (jl % C)]
        if bias:
            current = current + net.nf[tab + 2 * (jl % C) + 1]
        i_syn = 0.0
        if cuba:   # i ← α·i + g·I, the membrane's input (kernels.neuron.synapse_step)
            i_syn = cget(net, C_SLEAK, c) * sf[o_syn + jl] + cget(net, C_SGAIN, c) * current
            sf[o_syn + jl] = i_syn
            current = i_syn
        if stepx:    # sinabs's MultiSpike and min_v_mem
            v, n_sp = neuron_step_multi(v, current, lam, theta, ifirst, zero, ge, stepx == STEPX_MULTI,
                                        cget(net, C_VMIN, c))
            s = n_sp > 0
        else:
            v, s = neuron_step(v, current, lam, theta, ifirst, zero, ge)
            n_sp = 1
        sf[o_v + jl] = v
        si[o_ls + jl] = k
        si[ro(net, R_UPD) + layer] += 1
        k_next = k + 1
        if s:
            emit(net, st, p, jl, np.int64(n_sp), t, k)
            if refr > 0.0:
                sf[o_ru + jl] = t + refr
                k_next = max(k_next, first_free_step(net, st, t + refr))
        if not drive and k_next < net.h.steps:
            if stepx:
                _, n0 = neuron_step_multi(v, 0.0, lam, theta, ifirst, zero, ge, stepx == STEPX_MULTI,
                                          cget(net, C_VMIN, c))
                s0 = n0 > 0
            else:
                _, s0 = neuron_step(v, 0.0, lam, theta, ifirst, zero, ge)
            if s0 or i_syn != 0.0:   # a synaptic current keeps charging: step it every step
                push(net, st, step_time(net, st, k_next), layer, np.int64(PHASE_WAKE), to_flat(net, p, jl),
                     np.int64(AUX_WAKE))
    si[o_n] = 0


@njit(**ASYNC_JIT)
def push_checks(net, st, t):
    """Queue the batch threshold check of every population touched at ``t``."""
    o_pend = pno(net, S_PEND)
    for i in range(st.cur.n_pend):
        p = st.si[o_pend + i]
        push(net, st, t, net.pop[p].layer, net.pop[p].check_phase, np.int64(0), np.int64(0))   # neuron, aux unused
    st.cur.n_pend = 0


# ----------------------------------------------------------------------------- drive and rows


@njit(**ASYNC_JIT)
def readout_to(net, st, t):
    """Integrate the readout's constant input up to ``t`` (continuous mode); a leaky readout
    (:class:`~eventsim.neurons.LI`) decays exactly: ``Y ← Y·e^{−Δ/τ} + r·τ·(1 − e^{−Δ/τ})``."""
    if not net.h.batch and t > st.cur.t_y:
        o_y, o_r = yo(net, Y_Y), yo(net, Y_RATE)
        span = t - st.cur.t_y
        n_out = net.h.n_out
        for o in range(n_out):
            itau = yc(net, YC_ITAU, o) if net.h.y_leaky else 0.0
            if net.h.y_leaky == YLEAKY_CUBA:   # CubaLI: the two-exponential evolution of a CubaLIF
                o_s = yo(net, Y_SYN) + o
                y, i_syn = evolve(st.sf[o_y + o], st.sf[o_s], st.sf[o_r + o] * yc(net, YC_QSYN, o),
                                  itau, yc(net, YC_ITAUS, o), span)
                st.sf[o_y + o] = y
                st.sf[o_s] = i_syn
            elif itau == 0.0:
                st.sf[o_y + o] += st.sf[o_r + o] * span
            else:
                decay = math.exp(-span * itau)
                st.sf[o_y + o] = st.sf[o_y + o] * decay - st.sf[o_r + o] * math.expm1(-span * itau) / itau
        st.cur.t_y = t


@njit(inline="always", **ASYNC_JIT)
def readout_step_value(net, st, o):
    """Batch mode: the readout after the open step, ``Y + I`` (leaky: ``λ·Y + I`` once per step)."""
    y, acc = st.sf[yo(net, Y_Y) + o], st.sf[yo(net, Y_ACC) + o]
    if net.h.y_leaky and st.cur.timer > st.cur.y_step:
        return yc(net, YC_LEAK, o) * y + readout_synapse(net, st, o, acc)
    return y + acc


@njit(inline="always", **ASYNC_JIT)
def readout_synapse(net, st, o, acc):
    """Batch mode: a CubaLI's synaptic current after the open step, ``α·i + g·I`` (else ``I``)."""
    if net.h.y_leaky != YLEAKY_CUBA:
        return acc
    return yc(net, YC_SLEAK, o) * st.sf[yo(net, Y_SYN) + o] + yc(net, YC_SGAIN, o) * acc


@njit(**ASYNC_JIT)
def flush_readout(net, st):
    """Batch mode: a step is over, the readout takes its input (a leaky one decays once per step)."""
    for o in range(net.h.n_out):
        if net.h.y_leaky == YLEAKY_CUBA and st.cur.timer > st.cur.y_step:
            i_syn = readout_synapse(net, st, o, st.sf[yo(net, Y_ACC) + o])
            st.sf[yo(net, Y_Y) + o] = yc(net, YC_LEAK, o) * st.sf[yo(net, Y_Y) + o] + i_syn
            st.sf[yo(net, Y_SYN) + o] = i_syn
        else:
            st.sf[yo(net, Y_Y) + o] = readout_step_value(net, st, o)
        st.sf[yo(net, Y_ACC) + o] = 0.0
    st.cur.y_step = st.cur.timer


@njit(**ASYNC_JIT)
def set_drive(net, st, t, rebase):
    """Continuous mode: recompute every drive from the constant current ``C``, gain and bias.

    Rate ``r = (g·C + b)/Δt`` per µs (the per-step charge spread evenly over the step); a LIF
    stores ``v∞ = r·τ``. With ``rebase`` the membranes keep their value at ``t`` and every driven
    neuron is re-checked and its next crossing re-predicted.
    """
    sf = st.sf
    readout_to(net, st, t)
    dt = net.nf[F_DT]
    o_rate, o_cst = yo(net, Y_RATE), yo(net, Y_CST)
    for o in range(net.h.n_out):
        sf[o_rate + o] = sf[o_cst + o] / dt if dt > 0 else 0.0
    o_g, o_b = cso(net, CS_GNOW), cso(net, CS_BNOW)
    for p in range(net.h.n_pop):
        if not net.pop[p].drive:
            continue
        off = net.pop[p].offset
        C = net.pop[p].channels
        gain = net.pop[p].gain
        for jl in range(net.pop[p].neurons):
            g = off + jl
            c = net.pop[p].channel0 + jl % C
            cur = sf[nfo(net, N_CST) + g]
            if gain:
                cur = cur * sf[o_g + c]
            rate = (cur + sf[o_b + c]) / dt
            if is_cuba(net, p):   # the synaptic current's asymptote; the state moves on under the old one
                if rebase:
                    cuba_advance(net, st, g, c, t)
                sf[nfo(net, N_DR) + g] = rate * cget(net, C_QSYN, c)
                if rebase:
                    check_continuous(net, st, p, g, t)
                continue
            new = rate * cget(net, C_TAU, c) if cget(net, C_ITAU, c) != 0.0 else rate
            if rebase and sf[nfo(net, N_RU) + g] == -np.inf:
                v = value_at(net, st, p, g, c, t)
                sf[nfo(net, N_DR) + g] = new
                set_value(net, st, p, g, c, t, v)
                check_continuous(net, st, p, g, t)
            else:
                sf[nfo(net, N_DR) + g] = new


@njit(**ASYNC_JIT)
def record_row(net, st, t, kind):
    """Close the open row at ``t`` (``kind``: ``ROW_TIME`` or ``ROW_BUDGET``): readout, counters
    (then zeroed) and membranes."""
    h, cur, si, sf = net.h, st.cur, st.si, st.sf
    r = cur.row
    if r >= h.n_rows:
        return
    readout_to(net, st, t)
    sf[h.sf_out_t + r] = t
    si[h.si_out_kind + r] = kind
    batch = h.batch
    if batch:
        n_steps = float(cur.timer)
    else:
        n_steps = (t - cur.t_start) / net.nf[F_DT] if net.nf[F_DT] > 0 else 0.0
    n_out = h.n_out
    o_y, o_acc = yo(net, Y_Y), yo(net, Y_ACC)
    for o in range(n_out):
        y = readout_step_value(net, st, o) if batch else sf[o_y + o] + sf[o_acc + o]
        if h.out_mean:
            y = y / n_steps if n_steps > 0 else 0.0
        sf[h.sf_out_logits + r * n_out + o] = y
    L, K = h.n_layers, h.n_rows
    for i in range(4):   # the counters R_SP, R_SYN, R_MAC, R_UPD
        for layer in range(L):
            si[h.si_out_counts + (i * K + r) * L + layer] = si[ro(net, i) + layer]
            si[ro(net, i) + layer] = 0
    if h.rec_membrane:
        N = h.n_neurons
        o_mem = h.sf_membrane + r * N
        for p in range(h.n_pop):
            pop = net.pop[p]
            for jl in range(pop.neurons):
                g = pop.offset + jl
                c = pop.channel0 + jl % pop.channels
                if not batch:
                    sf[o_mem + g] = value_at(net, st, p, g, c, t)
                    continue
                last = si[nio(net, N_LS) + g]
                ru = sf[nfo(net, N_RU) + g]
                if ru != -np.inf:
                    if t < ru:
                        sf[o_mem + g] = sf[nfo(net, N_V) + g]
                        continue
                    last = max(last, first_free_step(net, st, ru) - 1)
                sf[o_mem + g] = catch_up(sf[nfo(net, N_V) + g], cget(net, C_LEAK, c), cur.timer - 1 - last)
    cur.row = r + 1
