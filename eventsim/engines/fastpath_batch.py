"""Fast path of the asynchronous engine in batch mode (``simultaneous="batch"``): the driver of the
kernel :mod:`eventsim.kernels.fastpath_batch` generates per network topology.

:func:`eventsim.engines.fastpath.unsupported` decides (with
:func:`~eventsim.engines.fastpath.batch_unsupported_layers` for a batch call);
:func:`run_fast_batch` runs the kernel over the input chunks (event arrays or count frames, both as
``(t_k, flat position, count)`` per step) and builds the result as the general path does: the same
rows, counters, rasters, spike times and readout, bit for bit.

Covered: the network kinds of the continuous fast path (Conv2d, Linear, Sum/Avg/MaxPool2d,
Flatten, Add, Branch, IF, LIF with per-step leak or ``tau_s``, a Readout) with zero delays, plus
biases: a population fed a constant current takes it as one charge per step. Everything else of
batch mode (synaptic delays, refractory periods, per-step gain/bias tables, sinabs's
``multi_spike``/``v_min``, analog input, ``record="membrane"``, ``pause_us``/``resume``) runs on the
general path.
"""
from __future__ import annotations

from itertools import chain

import numpy as np

from ..result import SimulationResult
from .async_compile import _constant_currents

__all__ = ["run_fast_batch"]


def run_fast_batch(network, comp, cache: dict, chunks, record, snap_t, snap_b, t0: float, t_stop: float,
                   dt_us: float, steps: int, convention: str, info: dict) -> SimulationResult:
    """Run the generated batch kernel over the input chunks; the result as the general path's."""
    from .fastpath import _aligned, _source, kernel_module, kernel_result
    key = ("fastpath_batch", id(comp), "spikes" in record, "spike_times" in record)
    if key not in cache:
        source, _, spec = _source(network, comp, record, cache, batch=True)
        prm = np.concatenate([np.concatenate([p["theta"], p["amp"], p["leak"]]) for p in spec.pops]) \
            if spec.pops else np.zeros(1)
        W = comp.fields["W"] if comp.fields["W"].size else np.zeros(1)
        D = comp.fields["D"] if comp.fields["D"].size else np.zeros(1, np.int64)
        currents, y_const, _ = _constant_currents(network, None)
        cache[key] = (kernel_module(source), spec, np.ascontiguousarray(prm), _aligned(W), np.ascontiguousarray(D),
                      currents, y_const)
    mod, spec, prm, W, D, currents, y_const = cache[key]
    N, L, n_out = spec.n_neurons, spec.n_layers, spec.n_out
    K = snap_t.size + snap_b.size
    V = _aligned(np.zeros(max(mod.V_SIZE, 1)))
    S = np.zeros(max(mod.S_SIZE, 1))
    I = np.zeros(max(mod.I_SIZE, 1), np.int64)
    U = np.zeros(max(2 * N, 1), np.uint8)   # touched flags, then spike flags of the step
    for pop in spec.pops:
        C, n, off = pop["C"], pop["C"] * pop["H"] * pop["W"], pop["off"]
        V[off:off + n] = np.tile(np.broadcast_to(np.atleast_1d(network.layers[pop["layer"]].v_init), (C,)), n // C)
        if pop["drive"]:   # (C, H·W) -> channels innermost
            V[mod.C_OFF + off:mod.C_OFF + off + n] = currents[pop["layer"]].T.ravel()
    I[mod.I_LS:mod.I_LS + N] = -1
    I[mod.I_MPK:mod.I_MPK + spec.n_windows] = -1
    I[mod.I_NSTEPS] = steps
    S[mod.S_T0], S[mod.S_DT] = t0, float(dt_us)
    if n_out and y_const is not None:
        S[mod.S_YC:mod.S_YC + n_out] = y_const
    RT, RK = np.zeros(K), np.zeros(K, np.int64)
    RC, RY = np.zeros((3, K, L), np.int64), np.zeros((K, max(n_out, 0)))
    RAST = np.zeros((K, N) if spec.record_raster else (0, 1), np.int64)
    size = 2 * (N + 1) if spec.record_times else 0
    LT, LN = np.empty(size), np.empty((size, 2), np.int64)
    snap_t = np.ascontiguousarray(snap_t, np.float64)
    snap_b = np.ascontiguousarray(snap_b, np.int64)
    state = (V, S, I, U, prm, W, D, RT, RK, RC, RY, RAST)
    mod.start(*state, LT, LN, snap_t, snap_b)
    e = (np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))
    for ev_t, ev_pos, ev_cnt in chain(chunks, [e]):
        I[mod.I_INPUT] = 0
        final = ev_t is e[0]
        while not mod.run(ev_t, ev_pos, ev_cnt, final, t_stop, *state, LT, LN, snap_t, snap_b):
            n = int(I[mod.I_LOG])   # the spike-time log cannot hold a step's spikes: double it
            grow = max(LT.size, N + 64)
            LT = np.concatenate([LT[:n], np.empty(LT.size + grow)])
            LN = np.concatenate([LN[:n], np.empty((LN.shape[0] + grow, 2), np.int64)])
    rows = int(I[mod.I_ROW])
    info.update(queue_high_water=int(I[mod.I_HWM]),
                snapshot_synops_unreached=snap_b[int(I[mod.I_SNAPB]):].tolist(), path="fast")
    m = int(I[mod.I_LOG])
    return kernel_result(network, spec, RT[:rows], RK[:rows], RC[:, :rows], RY[:rows], RAST[:rows], LT[:m], LN[:m],
                         convention, dt_us, info)

