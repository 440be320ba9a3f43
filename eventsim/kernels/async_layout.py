"""Layout of the flat buffers shared by the asynchronous engine's kernels and its driver.

Numba passes a tuple by value, flattening every array in it into ~7 machine arguments at each
call site, so a NamedTuple of 50 arrays makes every kernel call, and its compilation, slow. The
compiled network is therefore two flat arrays and the state seven:

``net.ni`` (int64)
    A header (slots ``H_*``): settings, sizes and the offsets of the tables that follow — per
    population ``pi[p, P_*]`` (``N_PI`` columns), ``l_pop[layer]`` (population of a layer, -1),
    ``g_pop[g]`` (population of a neuron), ``src[s, 0|1]`` (first delay group and group count of
    source ``s``: 0 = input, 1 + p = population p), ``grp[gi, G_*]``, ``path[q, Q_*]``, ``path_ops``,
    ``op[o, O_*]`` (``N_OP`` columns), out-degrees ``D``, ``mac[i, 0|1]`` (layer, dense MACs) and
    the synop budgets of snapshot rows; and the offsets of the state's blocks in ``si``/``sf``.
``net.nf`` (float64)
    ``dt`` (slot ``F_DT``), then ``pf[p, PF_*]``, per-channel rows ``cf[C_*, c]`` (θ, amplitude,
    λ per step, τ in µs, 1/τ), per-step gain/bias tables ``tab[0|1, i]``, delay per group, weights
    ``W`` and the constant ``1.0``. Nothing in it depends on the run, so the driver builds it once
    per compiled network (the weights are not copied at each call).
``st.si`` (int64), ``st.sf`` (float64), ``st.su`` (uint8)
    Cursors ``K_*`` at ``si[0:16]`` and ``T_*`` (current time, readout time, ``t_start``,
    ``t_stop``) at ``sf[0:4]``; the snapshot times (``sf``); per-neuron rows (``N_*``:
    ``sf`` membrane/time/refractory end/constant current/drive/batch accumulator; ``si``
    version/last batch step/touched list/candidate list; ``su`` touched and candidate flags); per
    population (``S_*``), per channel (``CS_*``), readout (``Y_*``), max-pool windows, counters
    of the open row (``R_*``), the output rows, scratch buffers (events between ops; the taps
    ``(base, first channel, weight offset)`` of one event at the last op) and, when recorded, rasters
    (``si``) and membranes (``sf``).
``st.ht``, ``st.hk``
    The event heap (:mod:`eventsim.kernels.async_queue`), allocated once at ``queue_limit``
    entries; memory pages are committed only when first touched.
``st.lt``, ``st.lj``
    Spike-time log: time, and ``(neuron, count)``; grown by the driver between calls.

The accessors below are inlined at Numba level (``inline="always"``): called with a constant
column they would otherwise be compiled once per constant (Numba specialises on literals).
"""
import numpy as np
from numba import njit

from ..config import ASYNC_JIT  # noqa: F401  (re-exported: the kernels import it from here)

# ----------------------------------------------------------------------------- net.ni header slots
(H_BATCH, H_STEPS, H_NTIMERS, H_RASTER, H_TIMES, H_MEM, H_NOUT, H_OUTLAYER, H_OUTMEAN, H_YDENSE, H_NPOP,
 H_N, H_CT, H_L, H_K, H_B, H_M,
 H_PI, H_LPOP, H_GPOP, H_SRC, H_GRP, H_PATH, H_PATHOPS, H_OP, H_D, H_MAC, H_NMAC, H_SNAPB, H_NSNAPB,
 H_PF, H_CF, H_TAB, H_GDELAY, H_W, H_ONE, H_SF_SNAPT, H_NSNAPT,
 H_SI_NI, H_SI_PN, H_SI_MP, H_SI_ROW, H_SI_OCNT, H_SI_OKIND, H_SI_BP, H_SI_BC, H_SI_RAST,
 H_SF_NF, H_SF_PS, H_SF_CS, H_SF_YF, H_SF_MP, H_SF_OT, H_SF_OLOG, H_SF_BV, H_SF_MEM, H_SI_TAPS,
 H_YLEAKY, H_YCF, H_F32) = range(60)
N_HEADER = 60
#: H_F32: ``dtype="float32"`` (1): membranes, weights, thresholds and the per-event arithmetic are
#: float32 values held in the float64 buffers, every result rounded to float32 (see :func:`real`)
# readout constants (H_YCF: rows of n_out in net.nf, used when H_YLEAKY: 1 LI, 2 CubaLI): λ per step,
# 1/τ (µs⁻¹), and for CubaLI α, g per step, 1/τ_syn (µs⁻¹), q/τ_syn and q (see eventsim.neurons)
YC_LEAK, YC_ITAU, YC_SLEAK, YC_SGAIN, YC_ITAUS, YC_GSYN, YC_QSYN = range(7)
N_YC = 7
# net.nf fixed slot (net.nf is the same for every run of a compiled network: t_start, t_stop and
# the snapshot times are state, T_START, T_STOP and the H_SF_SNAPT row)
F_DT = 0
# pi columns (per population)
(P_LAYER, P_OFF, P_N, P_C, P_H, P_W, P_COFF, P_MODEL, P_GE, P_ZERO, P_IFIRST, P_DRIVE, P_GAIN, P_BIAS, P_TAB,
 P_UNIFORM, P_SINK, P_CHECKPH) = range(18)
#: sinabs step options of a population (batch mode): 0 none, STEPX_FLOOR a floor v_min only,
#: STEPX_MULTI several spikes per step (and the floor, -inf where there is none)
P_STEPX = 18
N_PI = 19
STEPX_FLOOR, STEPX_MULTI = 1, 2
#: P_MODEL of a current-based LIF (0 IF, 1 LIF): see eventsim.kernels.async_cuba
MODEL_CUBA = 2
#: P_SINK: how a spike's charge reaches a population (kernels.async_fanout.sink). The fast sinks
#: need no drive, gain or refractory period (SINK_IF, SINK_LIF: v += a·w, q += a·w·s) or a drive
#: only (SINK_DRIVEN_IF, SINK_DRIVEN_LIF); SINK_GENERAL takes kernels.async_neuron.impulse
SINK_IF, SINK_LIF, SINK_GENERAL, SINK_DRIVEN_IF, SINK_DRIVEN_LIF = 1, 2, 3, 4, 5
# pf columns (per population)
PF_REFR, PF_ITMAX = range(2)
N_PF = 2
# cf rows (per channel)
C_THETA, C_AMP, C_LEAK, C_TAU, C_ITAU = range(5)
# current-based synapse (zero for other models): α and g per step, 1/τ_syn (µs⁻¹), the impulse gain
# q/τ_syn and q (see eventsim.neurons)
C_SLEAK, C_SGAIN, C_ITAUS, C_GSYN, C_QSYN = range(5, 10)
C_VMIN = 10     # membrane floor per channel (-inf: none)
N_CF = 11
# grp, path, op columns
G_PATH0, G_PATH1, G_STEPS = range(3)
Q_TARGET, Q_OP0, Q_NOPS = range(3)
(O_KIND, O_MODE, O_LAYER, O_INC, O_INH, O_INW, O_OUTC, O_OUTH, O_OUTW, O_KH, O_KW, O_SH, O_SW, O_PH, O_PW,
 O_GROUPS, O_WOFF, O_DOFF, O_MOFF) = range(19)
N_OP = 19
#: O_KIND of an op (one per weighted or pooling layer)
OP_POOL, OP_CONV, OP_LINEAR = 0, 1, 2
#: O_MODE of a pooling op (the mode of kernels.layers.pool2d and engines.forward.POOL_MODE)
POOL_SUM, POOL_AVG, POOL_MAX = 0, 1, 2
#: H_YLEAKY: the readout accumulates (0), or leaks as NIR LI (1) or CubaLI (2)
YLEAKY_NONE, YLEAKY_LI, YLEAKY_CUBA = 0, 1, 2

# ----------------------------------------------------------------------------- state rows
N_V, N_TL, N_RU, N_CST, N_DR, N_ACC, N_PT, N_SYN = range(8)    # sf, per neuron (N_SYN: synaptic current)
N_NF = 8
N_VER, N_LS, N_TCH, N_CAND, N_PV = range(5)             # si, per neuron
N_NI = 5
U_TOUCHED, U_CAND = range(2)                            # su, per neuron
S_CHECKT, S_T0, S_SCALET = range(3)                     # sf, per population
N_PS = 3
S_TCHN, S_PEND = range(2)                               # si, per population
CS_SC, CS_THS, CS_GNOW, CS_BNOW = range(4)              # sf, per channel
Y_Y, Y_ACC, Y_CST, Y_RATE, Y_SYN = range(5)            # sf, readout (Y_SYN: CubaLI synaptic current)
R_SP, R_SYN, R_MAC, R_UPD = range(4)                    # si, counters per layer (open row, output rows)
# si[0:16] cursors
K_HEAP, K_ROW, K_SNAPT, K_SNAPB, K_LOG, K_CAND, K_SYN, K_TIMER, K_STEP, K_PEND, K_INPUT, K_HWM, K_GARBAGE, K_YSTEP = range(14)
N_ISCAL = 16
# sf[0:4] cursors
T_CUR, T_YT, T_START, T_STOP = range(4)
N_FSCAL = 4


@njit(inline="always", **ASYNC_JIT)
def real(net, x):
    """``x`` rounded to the network's real type: to float32 when ``H_F32`` (the value stays a
    float64 that is exactly a float32), else unchanged. The operands of the rounded operations are
    float32 values, so computing in float64 and rounding once gives float32 arithmetic bit for bit
    (the product of two float32 is exact in float64; a float64 sum rounded to float32 is the
    float32 sum: 53 >= 2·24 + 2)."""
    if net.ni[H_F32]:
        return np.float64(np.float32(x))
    return x


@njit(inline="always", **ASYNC_JIT)
def _u(i):
    """A table index, never negative, as ``np.uint64``: Numba then emits no negative-index
    wrap-around (a compare and a select) before the load."""
    return np.uint64(i)


@njit(inline="always", **ASYNC_JIT)
def pget(net, p, col):
    """Column ``col`` of population ``p`` (``pi``)."""
    return net.ni[_u(net.ni[H_PI] + p * N_PI + col)]


@njit(inline="always", **ASYNC_JIT)
def pfget(net, p, col):
    """Float column ``col`` of population ``p`` (``pf``)."""
    return net.nf[_u(net.ni[H_PF] + p * N_PF + col)]


@njit(inline="always", **ASYNC_JIT)
def cget(net, row, c):
    """Per-channel constant ``cf[row, c]``."""
    return net.nf[_u(net.ni[H_CF] + row * net.ni[H_CT] + c)]


@njit(inline="always", **ASYNC_JIT)
def opget(net, o, col):
    """Column ``col`` of op ``o``."""
    return net.ni[_u(net.ni[H_OP] + o * N_OP + col)]


@njit(inline="always", **ASYNC_JIT)
def nfo(net, row):
    """Offset in ``st.sf`` of per-neuron float row ``row``."""
    return net.ni[H_SF_NF] + row * net.ni[H_N]


@njit(inline="always", **ASYNC_JIT)
def nio(net, row):
    """Offset in ``st.si`` of per-neuron int row ``row``."""
    return net.ni[H_SI_NI] + row * net.ni[H_N]


@njit(inline="always", **ASYNC_JIT)
def pso(net, row):
    """Offset in ``st.sf`` of per-population float row ``row``."""
    return net.ni[H_SF_PS] + row * net.ni[H_NPOP]


@njit(inline="always", **ASYNC_JIT)
def pno(net, row):
    """Offset in ``st.si`` of per-population int row ``row``."""
    return net.ni[H_SI_PN] + row * net.ni[H_NPOP]


@njit(inline="always", **ASYNC_JIT)
def cso(net, row):
    """Offset in ``st.sf`` of per-channel state row ``row``."""
    return net.ni[H_SF_CS] + row * net.ni[H_CT]


@njit(inline="always", **ASYNC_JIT)
def yo(net, row):
    """Offset in ``st.sf`` of readout row ``row``."""
    return net.ni[H_SF_YF] + row * net.ni[H_NOUT]


@njit(inline="always", **ASYNC_JIT)
def ro(net, row):
    """Offset in ``st.si`` of the open row's counter ``row`` (one per layer)."""
    return net.ni[H_SI_ROW] + row * net.ni[H_L]
