"""Main loop of the asynchronous engine: merge input, queue, step timers and snapshots.

At one time ``t`` the loop acts in this order: (1) a step timer (batch: inject the step's constant
currents and dense MACs; continuous: a new per-step gain/bias takes effect), (2) input events in
ascending flat position, (3) queue entries in key order (see :mod:`eventsim.kernels.async_queue`),
(4) snapshot rows. Everything at ``t`` is therefore included in a row taken at ``t``.

Kernels are resumable: all state lives in the ``st`` arrays, so the Python driver feeds the input
in chunks, changes analog frames between calls and grows the spike-time log when :func:`run`
returns early.
"""
import numpy as np
from numba import njit

from .async_events import (check_batch, check_continuous, flush_readout, process_candidates, push, push_checks,
                           queue_groups, record_row, set_drive, step_time, to_local, wake_continuous)
from .async_neuron import is_cuba
from .async_queue import AUX_WAKE, PHASE_CHECK, PHASE_DELIVER, PHASE_INPUT, PHASE_LATE_CHECK, PHASE_WAKE
from .async_fanout import deliver, touch
from .async_layout import (ASYNC_JIT, CS_BNOW, CS_GNOW, C_AMP, C_ITAU, C_LEAK, C_THETA, F_DT, G_PATH0,
                           G_PATH1, N_ACC, N_CST, N_DR, N_TL, N_V, ROW_BUDGET, ROW_TIME, R_MAC, S_SCALET,
                           S_T0, Y_ACC, Y_CST, cget, cso, grp_get, layer_pop, nfo, pso, ro, src_groups, yo)
from .async_queue import heap_pop
from .neuron import neuron_step


@njit(**ASYNC_JIT)
def start(net, st):
    """Initial state at ``t_start``; row ``N_V`` holds ``v_init`` and ``N_CST`` the first frame."""
    t = st.cur.t_start
    sf = st.sf
    if net.h.batch:
        for p in range(net.h.n_pop):
            pop = net.pop[p]
            if pop.drive:
                continue
            C = pop.channels
            for jl in range(pop.neurons):
                c = pop.channel0 + jl % C
                _, s = neuron_step(sf[nfo(net, N_V) + pop.offset + jl], 0.0, cget(net, C_LEAK, c),
                                   cget(net, C_THETA, c), pop.integrate_first, pop.reset_zero, pop.compare_ge)
                if s:
                    n = (jl % C) * pop.height * pop.width + jl // C
                    push(net, st, step_time(net, st, 0), pop.layer, np.int64(PHASE_WAKE), n, np.int64(AUX_WAKE))
        return
    st.cur.t_y = t
    set_drive(net, st, t, np.int64(0))
    for p in range(net.h.n_pop):
        pop = net.pop[p]
        sf[pso(net, S_T0) + p] = t
        sf[pso(net, S_SCALET) + p] = -np.inf
        for jl in range(pop.neurons):
            g = pop.offset + jl
            sf[nfo(net, N_TL) + g] = t
            if cget(net, C_ITAU, pop.channel0 + jl % pop.channels) != 0.0 and not is_cuba(net, p):
                sf[nfo(net, N_V) + g] -= sf[nfo(net, N_DR) + g]  # v -> q = (v − v∞)·s, s = 1 at t0
    for p in range(net.h.n_pop):   # v_init above θ fires at t_start; a drive needs a prediction
        pop = net.pop[p]
        for jl in range(pop.neurons):
            g = pop.offset + jl
            if pop.drive or sf[nfo(net, N_V) + g] >= cget(net, C_THETA, pop.channel0 + jl % pop.channels):
                check_continuous(net, st, p, g, t)


@njit(**ASYNC_JIT)
def rebase(net, st, t):
    """Continuous mode: the constant currents changed at ``t`` (a new analog frame)."""
    set_drive(net, st, t, np.int64(1))


@njit(inline="always", **ASYNC_JIT)
def _budgets(net, st, t):
    """Take a row for every synop budget the cumulative count has reached."""
    h, cur = net.h, st.cur
    while cur.next_snap_b < h.n_snap_b and cur.synops >= net.ni[h.ni_snap_b + cur.next_snap_b]:
        record_row(net, st, t, np.int64(ROW_BUDGET))
        cur.next_snap_b += 1


@njit(inline="always", **ASYNC_JIT)
def _timer(net, st, ks):
    h, sf = net.h, st.sf
    if h.batch:
        t = step_time(net, st, ks)
        st.cur.step = ks
        for p in range(h.n_pop):
            if net.pop[p].drive:
                o = net.pop[p].offset
                for jl in range(net.pop[p].neurons):
                    sf[nfo(net, N_ACC) + o + jl] = sf[nfo(net, N_CST) + o + jl]
                    touch(net, st, p, jl, t)
        if h.y_dense:
            for o in range(h.n_out):
                sf[yo(net, Y_ACC) + o] = sf[yo(net, Y_CST) + o]
        for i in range(h.n_mac):   # (layer, dense MACs) pairs
            st.si[ro(net, R_MAC) + net.ni[h.ni_mac + 2 * i]] += net.ni[h.ni_mac + 2 * i + 1]
        push_checks(net, st, t)
        return
    k = ks + 1
    for p in range(h.n_pop):
        pop = net.pop[p]
        C = pop.channels
        row = h.nf_tab + 2 * (pop.table + k * C)   # (gain, bias) pairs of step k
        for c in range(C):
            if pop.gain:
                sf[cso(net, CS_GNOW) + pop.channel0 + c] = net.nf[row + 2 * c]
            if pop.bias:
                sf[cso(net, CS_BNOW) + pop.channel0 + c] = net.nf[row + 2 * c + 1]
    set_drive(net, st, st.cur.t_start + k * net.nf[F_DT], np.int64(1))


@njit(inline="always", **ASYNC_JIT)
def _source_event(net, st, s, layer, n, a, count, t, group):
    """Deliver ``count`` events of source ``s`` (0: input, 1 + p: population p) at flat position ``n``.

    ``group`` is the delay group to deliver now; ``-1`` means a fresh event: deliver the zero-delay
    group and queue the delayed ones. Continuous mode delivers one unit at a time and tests the
    touched neurons after each.
    """
    k = st.cur.step
    g0, _ = src_groups(net, s)
    now = g0 if group < 0 else g0 + group
    if group < 0:
        queue_groups(net, st, s, np.int64(1), layer, n, count, t, k)
    if grp_get(net, now, G_PATH1) == grp_get(net, now, G_PATH0):
        return
    batch = net.h.batch
    reps, value, mult = (1, a * count, count) if batch else (count, a, 1)
    for _ in range(reps):
        deliver(net, st, now, n, value, mult, t, k)
        if batch:
            push_checks(net, st, t)
        else:
            process_candidates(net, st, t)
        _budgets(net, st, t)


@njit(inline="always", **ASYNC_JIT)
def _queue_entry(net, st, t, layer, phase, n, aux):
    """Act on one queue entry (``PHASE_INPUT``: a fresh input event with multiplicity ``aux``)."""
    if phase == PHASE_WAKE:
        p = layer_pop(net, layer)
        if net.h.batch:
            touch(net, st, p, to_local(net, p, n), t)
            push_checks(net, st, t)
        else:
            wake_continuous(net, st, p, n, aux, t)
    elif phase == PHASE_CHECK or phase == PHASE_LATE_CHECK:
        check_batch(net, st, layer_pop(net, layer), t, st.cur.step)
    else:   # a spike of population p (the input: p = -1) along delay group phase − PHASE_DELIVER
        p = layer_pop(net, layer) if layer >= 0 else -1
        a = cget(net, C_AMP, net.pop[p].channel0 + n // (net.pop[p].height * net.pop[p].width)) if p >= 0 else 1.0
        _source_event(net, st, p + 1, layer, n, a, aux, t, phase - PHASE_DELIVER if phase > PHASE_INPUT else -1)


@njit(inline="always", **ASYNC_JIT)
def _timer_time(net, st, ks):
    if ks >= net.h.n_timers:
        return np.inf
    if net.h.batch:
        return step_time(net, st, ks)
    return st.cur.t_start + (ks + 1) * net.nf[F_DT]


@njit(**ASYNC_JIT)
def run(net, st, in_t, in_pos, in_cnt, horizon, strict, final):
    """Process input events ``(in_t, in_pos, in_cnt)`` from ``st.cur.input`` on, and everything
    queued, up to the horizon.

    Non-final calls stop before the first action at a time ``> horizon`` (``>= horizon`` when
    ``strict``); the final call runs to ``t_stop`` inclusive. Returns False when it stopped early
    because the spike-time log is nearly full (the caller grows it and calls again).
    """
    h, cur, sf = net.h, st.cur, st.sf
    n_in = in_t.shape[0]
    margin = h.n_neurons + 1
    while True:
        if h.rec_times and st.log.shape[0] - cur.log_size < margin:
            return False
        i = cur.input
        tq = st.queue[0].t if cur.heap_size > 0 else np.inf
        ti = in_t[i] if i < n_in else np.inf
        ks = cur.timer
        tk = _timer_time(net, st, ks)
        tsn = sf[h.sf_snap_t + cur.next_snap_t] if cur.next_snap_t < h.n_snap_t else np.inf
        t = min(min(tk, ti), min(tq, tsn))
        if t > cur.t_stop or t == np.inf:
            return True
        if not final and (t > horizon or (strict and t == horizon)):
            return True
        if h.batch and t > cur.t_now:  # a batch step is over: the readout takes its input
            flush_readout(net, st)
        cur.t_now = t
        if tk == t:
            _timer(net, st, ks)
            cur.timer = ks + 1
        elif ti == t or tq == t:
            if ti == t:  # input events come before queue entries of the same time
                cur.input = i + 1
                layer, phase, n, aux = -1, PHASE_INPUT, in_pos[i], in_cnt[i]
            else:
                _, layer, phase, n, aux, size = heap_pop(st.queue, cur.heap_size)
                cur.heap_size = size
            _queue_entry(net, st, t, layer, phase, n, aux)
        else:
            if h.batch:
                flush_readout(net, st)
            record_row(net, st, t, np.int64(ROW_TIME))
            cur.next_snap_t += 1
