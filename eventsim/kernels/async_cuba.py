"""Continuous-time arithmetic of a current-based LIF (:class:`~eventsim.neurons.CubaLIF`) in the
asynchronous engine: exact evolution between inputs and the next threshold crossing.

Between inputs, with ``a = 1/τ`` (0: no membrane leak), ``b = 1/τ_syn`` (µs⁻¹) and a constant
drive that holds the synaptic current's asymptote at ``i∞``::

    i(s) = i∞ + (i₀ − i∞)·e^{−b·s}
    v(s) = v₀·e^{−a·s} + i∞·E(s) + (i₀ − i∞)·K(s)
    E(s) = (1 − e^{−a·s})/a          (s when a = 0)
    K(s) = (e^{−b·s} − e^{−a·s})/(a − b)   (s·e^{−a·s} when a = b)

``v`` is a constant plus two exponentials, so ``v'(s) = −a·v + i`` vanishes at most once: on
``[s₀, s₁]`` its maximum is at an end or at that one stationary point, computed in closed form
(:func:`stationary`). :func:`crossing` bounds the maximum this way before it searches, so it
cannot miss a crossing, and then bisects on an interval where ``v`` is monotone (a unique
crossing). The search works in absolute time and returns the first representable time at which
the same evaluation says ``v ≥ θ`` (``> θ``): the engine re-evaluates exactly there and fires.
"""
import math

import numpy as np
from numba import njit

from ..config import ASYNC_JIT


@njit(inline="always", **ASYNC_JIT)
def evolve(v0, i0, iinf, a, b, s):
    """``(v(s), i(s))`` after ``s ≥ 0`` µs (see the module docstring)."""
    eb = math.exp(-b * s)
    ea = math.exp(-a * s)
    if a == 0.0:
        e_term = s
    else:
        e_term = -math.expm1(-a * s) / a
    if a == b:
        k_term = s * ea
    else:
        k_term = (eb - ea) / (a - b)
    return v0 * ea + iinf * e_term + (i0 - iinf) * k_term, iinf + (i0 - iinf) * eb


@njit(inline="always", **ASYNC_JIT)
def stationary(v0, i0, iinf, a, b):
    """The one ``s > 0`` where ``v'(s) = 0`` (``inf`` if none). ``v' = −a·v + i`` written as
    ``A·e^{−a·s} + B·e^{−b·s} + C``."""
    d = i0 - iinf
    if a == 0.0:                                   # v' = i∞ + d·e^{−b·s}
        if d == 0.0 or -iinf / d <= 0.0 or -iinf / d >= 1.0:
            return np.inf
        return -math.log(-iinf / d) / b
    if a == b:                                     # v' = e^{−a·s}·(B0 + d − a·d·s) with B0 = −a·v0 + i∞
        if d == 0.0:
            return np.inf
        s = (i0 - a * v0) / (a * d)
        return s if s > 0.0 else np.inf
    # v = c + A·e^{−a·s} + B·e^{−b·s}:  c = i∞/a, B = d/(a − b), A = v0 − c − B
    c = iinf / a
    B = d / (a - b)
    A = v0 - c - B
    if A == 0.0 or B == 0.0:
        return np.inf
    ratio = -(b * B) / (a * A)                     # e^{(b − a)·s} = −b·B/(a·A)
    if ratio <= 0.0:
        return np.inf
    s = math.log(ratio) / (b - a)
    return s if s > 0.0 else np.inf


@njit(inline="always", **ASYNC_JIT)
def _hit(v, theta, ge):
    return v >= theta if ge else v > theta


@njit(**ASYNC_JIT)
def crossing(v0, i0, iinf, a, b, t0, t_from, t_end, theta, ge):
    """First time ``t`` in ``(t_from, t_end]`` at which ``v(t − t0)`` crosses ``θ`` (``inf`` if none),
    from the state ``(v0, i0)`` at ``t0 ≤ t_from``; ``v(t_from − t0)`` must be below θ."""
    if not t_end > t_from:
        return np.inf
    s_st = stationary(v0, i0, iinf, a, b)
    t_st = t0 + s_st
    # the maximum over [t_from, t_end] is at an end or at the stationary point: bound it first
    lo = t_from
    hi = np.inf
    if t_from < t_st < t_end:
        v_st, _ = evolve(v0, i0, iinf, a, b, t_st - t0)
        if _hit(v_st, theta, ge):
            hi = t_st          # v rises monotonically from below θ to above it on [t_from, t_st]
        else:
            lo = t_st          # below θ up to t_st; monotone from there on
    if hi == np.inf:
        v_end, _ = evolve(v0, i0, iinf, a, b, t_end - t0)
        if not _hit(v_end, theta, ge):
            return np.inf
        hi = t_end
    for _ in range(200):       # bisection on a monotone piece: lo below θ, hi at or above
        mid = lo + 0.5 * (hi - lo)
        if mid <= lo or mid >= hi:
            break
        v_mid, _ = evolve(v0, i0, iinf, a, b, mid - t0)
        if _hit(v_mid, theta, ge):
            hi = mid
        else:
            lo = mid
    return hi
