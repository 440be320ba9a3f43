"""Layout of the compiled network and state shared by the asynchronous engine's kernels and driver.

Numba passes a tuple by value, flattening every array in it into ~7 machine arguments (its
data pointer, size, shape, strides...) at each call of a kernel that is not inlined, and a record
into one (a pointer): each array more in ``net`` or ``st`` made the general path ~2-4 % slower
(N-MNIST). So the compiled network is one record, two tables of records and two flat buffers, and
the state one record, two tables of records and three flat buffers (as many machine arguments as
the flat layout of two buffers and seven arrays that came before):

* single records (the header ``net.h``, the cursors ``st.cur``) are NumPy record scalars, passed
  by reference (the kernels' writes to ``st.cur`` land in the driver's array);
* tables of records (``net.pop``, ``net.op``, ``st.queue``, ``st.log``) are NumPy structured
  arrays: a field is read by name at a fixed byte offset (``net.pop[p].channels`` where a flat
  layout reads ``ni[ni[H_PI] + p·N_PI + P_C]``);
* the rest are flat int64/float64 buffers holding several tables each, at the offsets the header
  names (``net.h.ni_grp``, ``net.h.sf_neuron``...).

``net.h`` (:data:`HEADER`, one record)
    Settings and sizes (``batch``, ``n_pop``, ``n_neurons``, ``n_rows``...) and the offsets of the
    tables inside the flat buffers: ``ni_*`` in ``net.ni``, ``nf_*`` in ``net.nf``, ``si_*`` in
    ``st.si`` and ``sf_*`` in ``st.sf``.
``net.pop[p]`` (:data:`POP`)
    One record per spiking population: its layer, first neuron, shape, neuron model, how a spike
    reaches it (``sink``: ``SINK_*``), refractory period...
``net.op[o]`` (:data:`OP`)
    One record per weighted or pooling layer on a path: ``kind`` (``OP_*``), shapes, kernel,
    stride, padding, and the offsets of its weights (``w_off``), out-degrees and max-pool windows.
``net.ni`` (int64)
    ``l_pop[layer]`` (population of a layer, -1), ``g_pop[g]`` (population of a neuron),
    ``src[s, 0|1]`` (first delay group and group count of source ``s``: 0 = input, 1 + p =
    population p), ``grp[gi, G_*]``, ``path[q, Q_*]``, ``path_ops``, out-degrees ``D``,
    ``mac[i, 0|1]`` (layer, dense MACs) and the synop budgets of snapshot rows.
``net.nf`` (float64)
    ``dt`` (slot ``F_DT``), per-channel rows ``cf[C_*, c]`` (θ, amplitude, λ per step, τ in µs,
    1/τ...), per-step gain/bias tables ``tab[0|1, i]``, delay per group, weights ``W``, the
    constant ``1.0`` and the readout's constants ``ycf[YC_*, o]``. Nothing in ``net.nf``, ``pop``
    and ``op`` depends on the run, so the driver builds them once per compiled network (the weights
    are not copied at each call).
``st.cur`` (:data:`CURSORS`, one record)
    The cursors: heap size, open row, next snapshot time and budget, log size, the candidate and
    pending counts, synops so far, the next step timer, the current time ``t_now``, ``t_start``,
    ``t_stop``...
``st.si`` (int64), ``st.sf`` (float64), ``st.su`` (uint8)
    The snapshot times (``sf``); per-neuron rows (``N_*``: ``sf`` membrane/time/refractory
    end/constant current/drive/batch accumulator; ``si`` version/last batch step/touched
    list/candidate list; ``su`` touched and candidate flags); per population (``S_*``), per
    channel (``CS_*``), readout (``Y_*``), max-pool windows, counters of the open row (``R_*``),
    the output rows, scratch buffers (events between ops; the taps ``(base, first channel,
    weight offset)`` of one event at the last op) and, when recorded, rasters (``si``) and
    membranes (``sf``). The accessors below (:func:`nfo`, :func:`cso`...) give a row's offset.
``st.queue[i]`` (:data:`eventsim.kernels.async_queue.ENTRY`)
    The event heap (:mod:`eventsim.kernels.async_queue`): ``t``, packed ``key``, ``aux``;
    allocated once at ``queue_limit`` entries (memory pages are committed only when first touched).
``st.log[i]`` (:data:`LOG_ENTRY`)
    Spike-time log (``record="spike_times"``): ``t``, global ``neuron``, ``count``; grown by the
    driver between calls.

The accessors below are inlined at Numba level (``inline="always"``): called with a constant
column they would otherwise be compiled once per constant (Numba specialises on literals).
"""
import numpy as np
from numba import njit

from ..config import ASYNC_JIT  # noqa: F401  (re-exported: the kernels import it from here)


def _record(fields) -> np.dtype:
    """A structured dtype marked aligned (every field is 8 bytes: the layout is the same), so that
    Numba types its records as aligned."""
    return np.dtype(fields, align=True)


#: ``net.h``: settings, sizes and table offsets (``ni_*``: in ``net.ni``, ``nf_*``: in ``net.nf``,
#: ``si_*``/``sf_*``: in ``st.si``/``st.sf``)
HEADER = _record([(name, np.int64) for name in (
    "batch",          # 1: simultaneous="batch" (step grid), 0: continuous time
    "steps",          # batch steps (0: none)
    "n_timers",       # step timers: batch steps, or continuous per-step gain/bias changes
    "rec_raster", "rec_times", "rec_membrane",   # what is recorded: spikes per row, spike times, membranes
    "n_out", "out_layer", "out_mean", "y_dense",  # readout size, its layer, mean readout, dense readout input
    "y_leaky",        # YLEAKY_*: the readout accumulates or leaks
    "f32",            # dtype="float32" (1): membranes, weights, thresholds and the per-event arithmetic
                      # are float32 values held in the float64 buffers, each result rounded (see real())
    "n_pop", "n_neurons", "n_channels", "n_layers", "n_rows", "buffer", "n_windows", "n_mac", "n_snap_b",
    "n_snap_t",
    "ni_l_pop", "ni_g_pop", "ni_src", "ni_grp", "ni_path", "ni_path_ops", "ni_deg", "ni_mac", "ni_snap_b",
    "nf_cf", "nf_tab", "nf_grp_delay", "nf_w", "nf_one", "nf_ycf",
    "si_neuron", "si_pop", "si_pool", "si_row", "si_out_counts", "si_out_kind", "si_buf_pos", "si_buf_cnt",
    "si_taps", "si_raster",
    "sf_neuron", "sf_pop", "sf_channel", "sf_readout", "sf_pool", "sf_out_t", "sf_out_logits", "sf_buf_val",
    "sf_membrane", "sf_snap_t")])
#: ``net.pop[p]``: one spiking population (a ``NeuronSpec`` layer); neurons ``offset ≤ g < offset + neurons``
#: stored channels innermost, channels ``channel0 ≤ c < channel0 + channels`` of the ``cf`` rows
POP = _record([(name, np.int64) for name in (
    "layer", "offset", "neurons", "channels", "height", "width", "channel0",
    "model",            # 0 IF, 1 LIF, MODEL_CUBA
    "compare_ge", "reset_zero", "integrate_first",
    "drive",            # a constant current (bias, analog input, per-step bias) drives it
    "gain", "bias",     # per-step gain / bias tables (at ``table`` in the nf tab rows)
    "table", "uniform_tau",
    "sink",             # SINK_*: how a spike's charge reaches it
    "check_phase",      # queue phase of its batch threshold check (1, or PHASE_LATE_CHECK)
    "step_extra")]      # batch mode: 0, STEPX_FLOOR or STEPX_MULTI
    + [("refractory_us", np.float64), ("itau_max", np.float64)])   # largest 1/τ of its channels
#: ``net.op[o]``: one weighted or pooling layer on a path (the columns ``O_*`` of ``fields["op"]``, in order)
OP = _record([(name, np.int64) for name in (
    "kind", "mode", "layer", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kh", "kw", "sh", "sw", "ph", "pw",
    "groups", "w_off", "d_off", "m_off")])
#: ``st.cur``: the cursors of a run
CURSORS = _record([(name, np.int64) for name in (
    "heap_size",        # entries in the event heap
    "row",              # the open snapshot row
    "next_snap_t", "next_snap_b",   # next snapshot time / synop budget
    "log_size",         # entries in the spike-time log
    "n_cand",           # threshold candidates listed by the last delivery (continuous)
    "synops",           # cumulative synops (for the budgets)
    "timer",            # next step timer
    "step",             # batch step being processed
    "n_pend",           # populations pending a batch threshold check
    "input",            # next input event of the current chunk
    "heap_high",        # high-water mark of the heap
    "garbage",          # superseded predictions in the heap
    "y_step")]          # batch: the timer at the readout's last step
    + [("t_now", np.float64), ("t_y", np.float64), ("t_start", np.float64), ("t_stop", np.float64)])

#: ``st.log[i]``: the spike-time log (record="spike_times"): ``count`` spikes of global neuron
#: ``neuron`` at time ``t`` (µs)
LOG_ENTRY = _record([("t", np.float64), ("neuron", np.int64), ("count", np.int64)])

# readout constants (nf_ycf: rows of n_out in net.nf, used when y_leaky: 1 LI, 2 CubaLI): λ per step,
# 1/τ (µs⁻¹), and for CubaLI α, g per step, 1/τ_syn (µs⁻¹), q/τ_syn and q (see eventsim.neurons)
YC_LEAK, YC_ITAU, YC_SLEAK, YC_SGAIN, YC_ITAUS, YC_GSYN, YC_QSYN = range(7)
N_YC = 7
# net.nf fixed slot (net.nf is the same for every run of a compiled network: t_start, t_stop and
# the snapshot times are state: cursors t_start, t_stop and the sf_snap_t row)
F_DT = 0
# pi columns (per population)
(P_LAYER, P_OFF, P_N, P_C, P_H, P_W, P_COFF, P_MODEL, P_GE, P_ZERO, P_IFIRST, P_DRIVE, P_GAIN, P_BIAS, P_TAB,
 P_UNIFORM, P_SINK, P_CHECKPH) = range(18)
#: sinabs step options of a population (batch mode): 0 none, STEPX_FLOOR a floor v_min only,
#: STEPX_MULTI several spikes per step (and the floor, -inf where there is none)
P_STEPX = 18
N_PI = 19
STEPX_NONE, STEPX_FLOOR, STEPX_MULTI = 0, 1, 2
#: P_MODEL (``pop.model``): IF, LIF, current-based LIF (see eventsim.kernels.async_cuba)
MODEL_IF, MODEL_LIF, MODEL_CUBA = 0, 1, 2
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
#: header y_leaky: the readout accumulates (0), or leaks as NIR LI (1) or CubaLI (2)
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
#: kind of a snapshot row (``info["row_kind"]``): at a time, or at a synop budget
ROW_TIME, ROW_BUDGET = 0, 1


@njit(inline="always", **ASYNC_JIT)
def real(net, x):
    """``x`` rounded to the network's real type: to float32 when ``net.h.f32`` (the value stays a
    float64 that is exactly a float32), else unchanged. The operands of the rounded operations are
    float32 values, so computing in float64 and rounding once gives float32 arithmetic bit for bit
    (the product of two float32 is exact in float64; a float64 sum rounded to float32 is the
    float32 sum: 53 >= 2·24 + 2)."""
    if net.h.f32:
        return np.float64(np.float32(x))
    return x


@njit(inline="always", **ASYNC_JIT)
def _u(i):
    """A table index, never negative, as ``np.uint64``: Numba then emits no negative-index
    wrap-around (a compare and a select) before the load."""
    return np.uint64(i)


@njit(inline="always", **ASYNC_JIT)
def cget(net, row, c):
    """Per-channel constant ``cf[row, c]``."""
    h = net.h
    return net.nf[_u(h.nf_cf + row * h.n_channels + c)]


@njit(inline="always", **ASYNC_JIT)
def src_groups(net, s):
    """``(first delay group, group count)`` of source ``s`` (0: input, 1 + p: population p)."""
    o = net.h.ni_src + 2 * s
    return net.ni[o], net.ni[o + 1]


@njit(inline="always", **ASYNC_JIT)
def grp_get(net, gi, col):
    """Column ``col`` (``G_*``) of delay group ``gi``."""
    return net.ni[net.h.ni_grp + 3 * gi + col]


@njit(inline="always", **ASYNC_JIT)
def path_get(net, q, col):
    """Column ``col`` (``Q_*``) of path ``q``."""
    return net.ni[net.h.ni_path + 3 * q + col]


@njit(inline="always", **ASYNC_JIT)
def layer_pop(net, layer):
    """Population of layer ``layer`` (-1: none)."""
    return net.ni[net.h.ni_l_pop + layer]


@njit(inline="always", **ASYNC_JIT)
def neuron_pop(net, g):
    """Population of global neuron ``g``."""
    return net.ni[net.h.ni_g_pop + g]


@njit(inline="always", **ASYNC_JIT)
def nfo(net, row):
    """Offset in ``st.sf`` of per-neuron float row ``row`` (``N_V``...)."""
    h = net.h
    return h.sf_neuron + row * h.n_neurons


@njit(inline="always", **ASYNC_JIT)
def nio(net, row):
    """Offset in ``st.si`` of per-neuron int row ``row`` (``N_VER``...)."""
    h = net.h
    return h.si_neuron + row * h.n_neurons


@njit(inline="always", **ASYNC_JIT)
def pso(net, row):
    """Offset in ``st.sf`` of per-population float row ``row`` (``S_*``)."""
    h = net.h
    return h.sf_pop + row * h.n_pop


@njit(inline="always", **ASYNC_JIT)
def pno(net, row):
    """Offset in ``st.si`` of per-population int row ``row`` (``S_TCHN``, ``S_PEND``)."""
    h = net.h
    return h.si_pop + row * h.n_pop


@njit(inline="always", **ASYNC_JIT)
def cso(net, row):
    """Offset in ``st.sf`` of per-channel state row ``row`` (``CS_*``)."""
    h = net.h
    return h.sf_channel + row * h.n_channels


@njit(inline="always", **ASYNC_JIT)
def yo(net, row):
    """Offset in ``st.sf`` of readout row ``row`` (``Y_*``)."""
    h = net.h
    return h.sf_readout + row * h.n_out


@njit(inline="always", **ASYNC_JIT)
def yc(net, row, o):
    """Readout constant ``ycf[row, o]`` (``YC_*``)."""
    h = net.h
    return net.nf[h.nf_ycf + row * h.n_out + o]


@njit(inline="always", **ASYNC_JIT)
def ro(net, row):
    """Offset in ``st.si`` of the open row's counter ``row`` (``R_*``, one per layer)."""
    h = net.h
    return h.si_row + row * h.n_layers
