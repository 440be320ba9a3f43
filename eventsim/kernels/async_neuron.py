"""Continuous-time neuron arithmetic of the asynchronous engine (``simultaneous="none"``).

Between input impulses a membrane follows a constant drive exactly:

* IF:  ``v(t) = v(t₁) + r·(t − t₁)`` with drive ``r`` (per µs). State: ``v`` and ``t₁`` per neuron.
* LIF: ``dv/dt = −v/τ + r``, so ``v(t) = v∞ + (v(t₁) − v∞)·e^{−(t−t₁)/τ}`` with ``v∞ = r·τ``.
  The state is kept in *scaled time*, ``q = (v − v∞)·s(t)`` with ``s(t) = e^{(t−t₀)/τ}``
  and ``t₀`` a per-population reference time: ``q`` is constant between impulses, an impulse
  ``a`` costs one multiply-add (``q += a·s``) and the threshold test ``v > θ`` is
  ``q > (θ − v∞)·s``. When ``(t − t₀)/τ`` exceeds :data:`RENORM_EXPONENT` every ``q`` of the
  population is multiplied by ``e^{−(t−t₀)/τ}`` and ``t₀ ← t``, so ``s`` never exceeds
  ``e^{RENORM_EXPONENT}`` (about 7e86) and nothing overflows however long the stream.

A neuron with drive is checked for its next threshold crossing after every change:
IF ``t* = t + (θ − v)/r`` (``r > 0``); LIF ``t* = t + τ·ln((v∞ − v)/(v∞ − θ))`` (``v∞ > θ``),
computed as ``τ·log1p((θ − v)/(v∞ − θ))``. The arithmetic is chosen per channel: a channel with
``τ = ∞`` (IF, or a LIF channel whose leak is exactly 1) uses the IF form.

Row ``N_V`` holds ``v`` (IF), ``q`` (LIF) or, while the neuron is refractory (row ``N_RU`` > −∞),
the frozen membrane value; ``N_TL`` the IF update time; ``N_DR`` the drive (IF ``r``, LIF ``v∞``).
``g`` is a global neuron index, ``c`` a global channel index.
"""
import math

import numpy as np
from numba import njit

from .async_cuba import crossing, evolve
from .async_layout import (ASYNC_JIT, CS_GNOW, CS_SC, CS_THS, C_GSYN, C_ITAU, C_ITAUS, C_TAU, C_THETA,
                           MODEL_CUBA, N_DR, N_RU, N_SYN, N_TL, N_V, N_VER, S_SCALET, S_T0, cget, cso, nfo,
                           nio, pso, real)

#: renormalise a LIF population when ``(t − t₀)/τ`` exceeds this (``e^200 ≈ 7e86``)
RENORM_EXPONENT = 200.0
#: the same for ``dtype="float32"`` (``e^60 ≈ 1e26``: float32 ends at 3.4e38)
RENORM_EXPONENT_F32 = 60.0


# ----------------------------------------------------------------------------- current-based LIF
# Row N_V holds v and N_SYN the synaptic current i at time N_TL; N_DR the drive's i∞
# (see eventsim.kernels.async_cuba). The state is advanced explicitly at each change.


@njit(inline="always", **ASYNC_JIT)
def is_cuba(net, p):
    return net.pop[p].model == MODEL_CUBA


@njit(inline="always", **ASYNC_JIT)
def cuba_state(net, st, g, c, t):
    """``(v, i)`` of current-based neuron ``g`` at ``t`` (state unchanged)."""
    sf = st.sf
    s = t - sf[nfo(net, N_TL) + g]
    v0, i0 = sf[nfo(net, N_V) + g], sf[nfo(net, N_SYN) + g]
    if s == 0.0:
        return v0, i0
    return evolve(v0, i0, sf[nfo(net, N_DR) + g], cget(net, C_ITAU, c), cget(net, C_ITAUS, c), s)


@njit(inline="always", **ASYNC_JIT)
def cuba_advance(net, st, g, c, t):
    """Write neuron ``g``'s state at ``t``."""
    v, i = cuba_state(net, st, g, c, t)
    st.sf[nfo(net, N_V) + g] = v
    st.sf[nfo(net, N_SYN) + g] = i
    st.sf[nfo(net, N_TL) + g] = t


@njit(**ASYNC_JIT)
def cuba_predict(net, st, p, g, c, t):
    """Next crossing after ``t`` (before ``t_stop``) from the stored state: bracketed search."""
    sf = st.sf
    return crossing(sf[nfo(net, N_V) + g], sf[nfo(net, N_SYN) + g], sf[nfo(net, N_DR) + g],
                    cget(net, C_ITAU, c), cget(net, C_ITAUS, c), sf[nfo(net, N_TL) + g], t, st.cur.t_stop,
                    cget(net, C_THETA, c), net.pop[p].compare_ge)


@njit(**ASYNC_JIT)
def lif_refresh(net, st, p, t):
    """Bring population ``p``'s per-channel ``s = e^{(t−t₀)/τ}`` and ``θ·s`` to time ``t``,
    renormalising first (``q ← q·e^{−(t−t₀)/τ}``, ``t₀ ← t``) when the exponent would pass
    :data:`RENORM_EXPONENT`."""
    sf = st.sf
    o_scale = pso(net, S_SCALET) + p
    if sf[o_scale] == t:
        return
    c0 = net.pop[p].channel0
    C = net.pop[p].channels
    o_t0 = pso(net, S_T0) + p
    t0 = sf[o_t0]
    if (t - t0) * net.pop[p].itau_max > (RENORM_EXPONENT_F32 if net.h.f32 else RENORM_EXPONENT):
        o_v = nfo(net, N_V) + net.pop[p].offset
        o_ru = nfo(net, N_RU) + net.pop[p].offset
        for j in range(net.pop[p].neurons):
            if sf[o_ru + j] == -np.inf:
                sf[o_v + j] = real(net, sf[o_v + j] * math.exp(-(t - t0) * cget(net, C_ITAU, c0 + j % C)))
        sf[o_t0] = t
        t0 = t
    o_sc = cso(net, CS_SC)
    o_ths = cso(net, CS_THS)
    s = real(net, math.exp((t - t0) * cget(net, C_ITAU, c0)))
    uniform = net.pop[p].uniform_tau
    for c in range(c0, c0 + C):
        if not uniform:
            s = real(net, math.exp((t - t0) * cget(net, C_ITAU, c)))
        sf[o_sc + c] = s
        sf[o_ths + c] = real(net, cget(net, C_THETA, c) * s)
    sf[o_scale] = t


@njit(**ASYNC_JIT)
def value_at(net, st, p, g, c, t):
    """Membrane ``v(t)`` of neuron ``g`` of population ``p``."""
    sf = st.sf
    v = sf[nfo(net, N_V) + g]
    if sf[nfo(net, N_RU) + g] != -np.inf:
        return v
    if is_cuba(net, p):
        return cuba_state(net, st, g, c, t)[0]
    if cget(net, C_ITAU, c) == 0.0:
        return v + sf[nfo(net, N_DR) + g] * (t - sf[nfo(net, N_TL) + g])
    lif_refresh(net, st, p, t)   # may renormalise q: read it afterwards
    return sf[nfo(net, N_V) + g] / sf[cso(net, CS_SC) + c] + sf[nfo(net, N_DR) + g]


@njit(**ASYNC_JIT)
def set_value(net, st, p, g, c, t, value):
    """Set the membrane of a non-refractory neuron to ``value`` at time ``t``."""
    sf = st.sf
    if is_cuba(net, p):
        cuba_advance(net, st, g, c, t)
        sf[nfo(net, N_V) + g] = value
    elif cget(net, C_ITAU, c) == 0.0:
        sf[nfo(net, N_V) + g] = value
        sf[nfo(net, N_TL) + g] = t
    else:
        lif_refresh(net, st, p, t)
        sf[nfo(net, N_V) + g] = (value - sf[nfo(net, N_DR) + g]) * sf[cso(net, CS_SC) + c]


@njit(inline="always", **ASYNC_JIT)
def above(net, st, p, g, c, t):
    """Threshold test ``v(t) > θ`` (``>=`` when the population compares with ``>=``)."""
    sf = st.sf
    if is_cuba(net, p):
        u = cuba_state(net, st, g, c, t)[0]
        lim = cget(net, C_THETA, c)
    elif cget(net, C_ITAU, c) == 0.0:
        u = sf[nfo(net, N_V) + g] + sf[nfo(net, N_DR) + g] * (t - sf[nfo(net, N_TL) + g])
        lim = cget(net, C_THETA, c)
    else:
        lif_refresh(net, st, p, t)
        u = sf[nfo(net, N_V) + g]
        lim = real(net, (cget(net, C_THETA, c) - sf[nfo(net, N_DR) + g]) * sf[cso(net, CS_SC) + c])
    if net.pop[p].compare_ge:
        return u >= lim
    return u > lim


@njit(**ASYNC_JIT)
def release(net, st, p, g, c, t):
    """End the refractory period of neuron ``g`` at time ``t``: the frozen value resumes."""
    frozen = st.sf[nfo(net, N_V) + g]
    st.sf[nfo(net, N_RU) + g] = -np.inf
    set_value(net, st, p, g, c, t, frozen)
    st.si[nio(net, N_VER) + g] += 1


@njit(**ASYNC_JIT)
def impulse(net, st, p, g, c, x, t):
    """Add charge ``x`` to neuron ``g`` at ``t`` (times the current per-step gain).

    A refractory neuron drops the impulse; one whose refractory period has ended is released
    first. Returns True when the impulse was integrated.
    """
    sf = st.sf
    ru = sf[nfo(net, N_RU) + g]
    if ru != -np.inf:
        if t < ru:
            return False
        release(net, st, p, g, c, ru)
    if net.pop[p].gain:
        x = x * sf[cso(net, CS_GNOW) + c]
    o_v = nfo(net, N_V) + g
    if is_cuba(net, p):   # into the synaptic current: i += x·q/τ_syn
        cuba_advance(net, st, g, c, t)
        sf[nfo(net, N_SYN) + g] += x * cget(net, C_GSYN, c)
    elif cget(net, C_ITAU, c) == 0.0:
        if net.pop[p].drive:
            o_tl = nfo(net, N_TL) + g
            sf[o_v] = sf[o_v] + sf[nfo(net, N_DR) + g] * (t - sf[o_tl])
            sf[o_tl] = t
        sf[o_v] += x
    else:
        lif_refresh(net, st, p, t)
        sf[o_v] += x * sf[cso(net, CS_SC) + c]
    st.si[nio(net, N_VER) + g] += 1
    return True


@njit(inline="always", **ASYNC_JIT)
def fire(net, st, p, g, c, t):
    """Apply one reset after a spike at ``t`` (subtract ``θ`` or set to 0)."""
    sf = st.sf
    o_v = nfo(net, N_V) + g
    if net.pop[p].reset_zero:
        set_value(net, st, p, g, c, t, 0.0)
    elif is_cuba(net, p):
        cuba_advance(net, st, g, c, t)
        sf[o_v] -= cget(net, C_THETA, c)
    elif cget(net, C_ITAU, c) == 0.0:
        o_tl = nfo(net, N_TL) + g
        sf[o_v] = real(net, sf[o_v] + sf[nfo(net, N_DR) + g] * (t - sf[o_tl]) - cget(net, C_THETA, c))
        sf[o_tl] = t
    else:
        lif_refresh(net, st, p, t)
        sf[o_v] = real(net, sf[o_v] - real(net, cget(net, C_THETA, c) * sf[cso(net, CS_SC) + c]))


@njit(**ASYNC_JIT)
def freeze(net, st, p, g, c, t):
    """Start a refractory period at ``t`` and return its end; the membrane is held at its value."""
    st.sf[nfo(net, N_V) + g] = value_at(net, st, p, g, c, t)
    end = t + net.pop[p].refractory_us
    st.sf[nfo(net, N_RU) + g] = end
    st.si[nio(net, N_VER) + g] += 1
    return end


@njit(**ASYNC_JIT)
def predict(net, st, p, g, c, t):
    """Time of the next threshold crossing under the constant drive alone (``inf`` if none)."""
    sf = st.sf
    if is_cuba(net, p):
        return cuba_predict(net, st, p, g, c, t)
    theta = cget(net, C_THETA, c)
    dr = sf[nfo(net, N_DR) + g]
    if cget(net, C_ITAU, c) == 0.0:  # from the stored (v, t₁): the same value whenever it is asked
        if dr <= 0.0:
            return np.inf
        return sf[nfo(net, N_TL) + g] + (theta - sf[nfo(net, N_V) + g]) / dr
    if not dr > theta:
        return np.inf
    lif_refresh(net, st, p, t)
    v = sf[nfo(net, N_V) + g] / sf[cso(net, CS_SC) + c] + dr
    return t + cget(net, C_TAU, c) * math.log1p((theta - v) / (dr - theta))
