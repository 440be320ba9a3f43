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
from .async_queue import PHASE_LATE_CHECK
from .async_fanout import deliver, touch
from .async_layout import (ASYNC_JIT, CS_BNOW, CS_GNOW, C_AMP, C_ITAU, C_LEAK, C_THETA, F_DT,
                           G_PATH0, G_PATH1, H_BATCH, H_GRP, H_LPOP, H_MAC, H_N,
                           H_NMAC, H_NOUT, H_NPOP, H_NSNAPB, H_NSNAPT, H_NTIMERS, H_SF_SNAPT, H_SNAPB, H_SRC,
                           H_TAB, H_TIMES, H_YDENSE, K_HEAP, K_INPUT, K_LOG, K_SNAPB, K_SNAPT, K_STEP, K_SYN,
                           K_TIMER, N_ACC, N_CST, N_DR, N_TL, N_V, P_BIAS, P_C, P_COFF, P_DRIVE, P_GAIN, P_GE,
                           P_H, P_IFIRST, P_LAYER, P_N, P_OFF, P_TAB, P_W, P_ZERO, R_MAC, S_SCALET, S_T0,
                           T_CUR, T_START, T_STOP, T_YT, Y_ACC, Y_CST, cget, cso, nfo, pget, pso, ro, yo)
from .async_queue import heap_pop
from .neuron import neuron_step


@njit(**ASYNC_JIT)
def start(net, st):
    """Initial state at ``t_start``; row ``N_V`` holds ``v_init`` and ``N_CST`` the first frame."""
    t = st.sf[T_START]
    sf = st.sf
    if net.ni[H_BATCH]:
        for p in range(net.ni[H_NPOP]):
            if pget(net, p, P_DRIVE):
                continue
            C = pget(net, p, P_C)
            for jl in range(pget(net, p, P_N)):
                c = pget(net, p, P_COFF) + jl % C
                _, s = neuron_step(sf[nfo(net, N_V) + pget(net, p, P_OFF) + jl], 0.0, cget(net, C_LEAK, c),
                                   cget(net, C_THETA, c), pget(net, p, P_IFIRST), pget(net, p, P_ZERO),
                                   pget(net, p, P_GE))
                if s:
                    n = (jl % C) * pget(net, p, P_H) * pget(net, p, P_W) + jl // C
                    push(net, st, step_time(net, st, 0), pget(net, p, P_LAYER), np.int64(0), n, np.int64(-1))
        return
    sf[T_YT] = t
    set_drive(net, st, t, np.int64(0))
    for p in range(net.ni[H_NPOP]):
        sf[pso(net, S_T0) + p] = t
        sf[pso(net, S_SCALET) + p] = -np.inf
        for jl in range(pget(net, p, P_N)):
            g = pget(net, p, P_OFF) + jl
            sf[nfo(net, N_TL) + g] = t
            if cget(net, C_ITAU, pget(net, p, P_COFF) + jl % pget(net, p, P_C)) != 0.0 and not is_cuba(net, p):
                sf[nfo(net, N_V) + g] -= sf[nfo(net, N_DR) + g]  # v -> q = (v − v∞)·s, s = 1 at t0
    for p in range(net.ni[H_NPOP]):   # v_init above θ fires at t_start; a drive needs a prediction
        drive = pget(net, p, P_DRIVE)
        for jl in range(pget(net, p, P_N)):
            g = pget(net, p, P_OFF) + jl
            if drive or sf[nfo(net, N_V) + g] >= cget(net, C_THETA, pget(net, p, P_COFF) + jl % pget(net, p, P_C)):
                check_continuous(net, st, p, g, t)


@njit(**ASYNC_JIT)
def rebase(net, st, t):
    """Continuous mode: the constant currents changed at ``t`` (a new analog frame)."""
    set_drive(net, st, t, np.int64(1))


@njit(inline="always", **ASYNC_JIT)
def _budgets(net, st, t):
    """Take a row for every synop budget the cumulative count has reached."""
    ni, si = net.ni, st.si
    while si[K_SNAPB] < ni[H_NSNAPB] and si[K_SYN] >= ni[ni[H_SNAPB] + si[K_SNAPB]]:
        record_row(net, st, t, np.int64(1))
        si[K_SNAPB] += 1


@njit(inline="always", **ASYNC_JIT)
def _timer(net, st, ks):
    ni, sf = net.ni, st.sf
    if ni[H_BATCH]:
        t = step_time(net, st, ks)
        st.si[K_STEP] = ks
        for p in range(ni[H_NPOP]):
            if pget(net, p, P_DRIVE):
                o = pget(net, p, P_OFF)
                for jl in range(pget(net, p, P_N)):
                    sf[nfo(net, N_ACC) + o + jl] = sf[nfo(net, N_CST) + o + jl]
                    touch(net, st, p, jl, t)
        if ni[H_YDENSE]:
            for o in range(ni[H_NOUT]):
                sf[yo(net, Y_ACC) + o] = sf[yo(net, Y_CST) + o]
        for i in range(ni[H_NMAC]):
            st.si[ro(net, R_MAC) + ni[ni[H_MAC] + 2 * i]] += ni[ni[H_MAC] + 2 * i + 1]
        push_checks(net, st, t)
        return
    k = ks + 1
    for p in range(ni[H_NPOP]):
        C = pget(net, p, P_C)
        row = ni[H_TAB] + 2 * (pget(net, p, P_TAB) + k * C)
        for c in range(C):
            if pget(net, p, P_GAIN):
                sf[cso(net, CS_GNOW) + pget(net, p, P_COFF) + c] = net.nf[row + 2 * c]
            if pget(net, p, P_BIAS):
                sf[cso(net, CS_BNOW) + pget(net, p, P_COFF) + c] = net.nf[row + 2 * c + 1]
    set_drive(net, st, st.sf[T_START] + k * net.nf[F_DT], np.int64(1))


@njit(inline="always", **ASYNC_JIT)
def _source_event(net, st, s, layer, n, a, count, t, group):
    """Deliver ``count`` events of source ``s`` (0: input, 1 + p: population p) at flat position ``n``.

    ``group`` is the delay group to deliver now; ``-1`` means a fresh event: deliver the zero-delay
    group and queue the delayed ones. Continuous mode delivers one unit at a time and tests the
    touched neurons after each.
    """
    ni = net.ni
    k = st.si[K_STEP]
    g0 = ni[ni[H_SRC] + 2 * s]
    now = g0 if group < 0 else g0 + group
    if group < 0:
        queue_groups(net, st, s, np.int64(1), layer, n, count, t, k)
    g_row = ni[H_GRP] + 3 * now
    if ni[g_row + G_PATH1] == ni[g_row + G_PATH0]:
        return
    batch = ni[H_BATCH]
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
    """Act on one queue entry (``phase < 0``: a fresh input event with multiplicity ``aux``)."""
    if phase == 0:
        p = net.ni[net.ni[H_LPOP] + layer]
        if net.ni[H_BATCH]:
            touch(net, st, p, to_local(net, p, n), t)
            push_checks(net, st, t)
        else:
            wake_continuous(net, st, p, n, aux, t)
    elif phase == 1 or phase == PHASE_LATE_CHECK:
        check_batch(net, st, net.ni[net.ni[H_LPOP] + layer], t, st.si[K_STEP])
    else:
        p = net.ni[net.ni[H_LPOP] + layer] if layer >= 0 else -1
        a = cget(net, C_AMP, pget(net, p, P_COFF) + n // (pget(net, p, P_H) * pget(net, p, P_W))) if p >= 0 else 1.0
        _source_event(net, st, p + 1, layer, n, a, aux, t, phase - 2 if phase > 0 else -1)


@njit(inline="always", **ASYNC_JIT)
def _timer_time(net, st, ks):
    if ks >= net.ni[H_NTIMERS]:
        return np.inf
    if net.ni[H_BATCH]:
        return step_time(net, st, ks)
    return st.sf[T_START] + (ks + 1) * net.nf[F_DT]


@njit(**ASYNC_JIT)
def run(net, st, in_t, in_pos, in_cnt, horizon, strict, final):
    """Process input events ``(in_t, in_pos, in_cnt)`` from ``si[K_INPUT]`` on, and everything
    queued, up to the horizon.

    Non-final calls stop before the first action at a time ``> horizon`` (``>= horizon`` when
    ``strict``); the final call runs to ``t_stop`` inclusive. Returns False when it stopped early
    because the spike-time log is nearly full (the caller grows it and calls again).
    """
    ni, si, sf = net.ni, st.si, st.sf
    n_in = in_t.shape[0]
    margin = ni[H_N] + 1
    while True:
        if ni[H_TIMES] and st.lt.shape[0] - si[K_LOG] < margin:
            return False
        i = si[K_INPUT]
        tq = st.ht[0] if si[K_HEAP] > 0 else np.inf
        ti = in_t[i] if i < n_in else np.inf
        ks = si[K_TIMER]
        tk = _timer_time(net, st, ks)
        tsn = sf[ni[H_SF_SNAPT] + si[K_SNAPT]] if si[K_SNAPT] < ni[H_NSNAPT] else np.inf
        t = min(min(tk, ti), min(tq, tsn))
        if t > sf[T_STOP] or t == np.inf:
            return True
        if not final and (t > horizon or (strict and t == horizon)):
            return True
        if ni[H_BATCH] and t > sf[T_CUR]:  # a batch step is over: the readout takes its input
            flush_readout(net, st)
        sf[T_CUR] = t
        if tk == t:
            _timer(net, st, ks)
            si[K_TIMER] = ks + 1
        elif ti == t or tq == t:
            if ti == t:  # input events come before queue entries of the same time
                si[K_INPUT] = i + 1
                layer, phase, n, aux = -1, -1, in_pos[i], in_cnt[i]
            else:
                _, layer, phase, n, aux, size = heap_pop(st.ht, st.hk, si[K_HEAP])
                si[K_HEAP] = size
            _queue_entry(net, st, t, layer, phase, n, aux)
        else:
            if ni[H_BATCH]:
                flush_readout(net, st)
            record_row(net, st, t, np.int64(0))
            si[K_SNAPT] += 1
