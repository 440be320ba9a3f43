"""The neuron update shared by both engines (one copy of the arithmetic).

``neuron_step(v, current, leak, theta, integrate_first, reset_zero, compare_ge)`` advances one
membrane by one step and returns ``(v_new, spiked)``:

* integrate-then-fire: ``u = λ·v + I``; ``s = u > θ`` (``>=`` if ``compare_ge``);
  ``u ← u − θ`` (subtract) or ``u ← 0`` (zero) where ``s``.
* fire-then-integrate: ``s = v > θ``; ``u = λ·v + I − θ·s`` (subtract) or ``λ·v·(1−s) + I`` (zero).

``neuron_step_multi(..., v_min)`` is the same step with sinabs's options: ``n = ⌊u/θ⌋`` spikes
(``u > 0``; ``>``: an exact multiple ``m·θ`` gives ``m − 1``), reset by ``n·θ`` (or to 0), then the
floor ``u ← max(u, v_min)`` (``v_min = −inf``: none). ``multi = False`` keeps one spike per step.
"""
from numba import njit

from ..config import JIT


@njit(inline="always", **JIT)
def crossed(u, theta, compare_ge):
    if compare_ge:
        return u >= theta
    return u > theta


@njit(inline="always", **JIT)
def neuron_step(v, current, leak, theta, integrate_first, reset_zero, compare_ge):
    if integrate_first:
        u = leak * v + current
        s = crossed(u, theta, compare_ge)
        if s:
            if reset_zero:
                u = 0.0
            else:
                u = u - theta
        return u, s
    s = crossed(v, theta, compare_ge)
    if s:
        if reset_zero:
            return current, s
        return leak * v + current - theta, s
    return leak * v + current, s


@njit(**JIT)
def population_step(v, current, leak, theta, amplitude, integrate_first, reset_zero, compare_ge,
                    out_value, out_count):
    """Advance a population ``v[C, M]`` by one step with input ``current[C, M]``.

    ``leak``, ``theta``, ``amplitude`` are per channel ``(C,)``. Writes the spike amplitude into
    ``out_value`` and 1/0 into ``out_count``; returns the number of spikes.
    """
    n_spikes = 0
    C, M = v.shape
    for c in range(C):
        lam = leak[c]
        th = theta[c]
        amp = amplitude[c]
        for m in range(M):
            u, s = neuron_step(v[c, m], current[c, m], lam, th, integrate_first, reset_zero, compare_ge)
            v[c, m] = u
            if s:
                out_value[c, m] = amp
                out_count[c, m] = 1
                n_spikes += 1
            else:
                out_value[c, m] = 0.0
                out_count[c, m] = 0
    return n_spikes


@njit(inline="always", **JIT)
def spike_count(u, theta, compare_ge):
    """``⌊u/θ⌋`` spikes for ``u > 0`` as sinabs's ``MultiSpike`` (``trunc(u/θ)``); with ``>``
    an exact multiple of θ gives one fewer."""
    if u <= 0.0:
        return 0
    n = int(u / theta)
    if not compare_ge and n > 0 and u == n * theta:
        n -= 1
    return n


@njit(inline="always", **JIT)
def neuron_step_multi(v, current, leak, theta, integrate_first, reset_zero, compare_ge, multi, v_min):
    """One step with several spikes per step (``multi``) and a membrane floor ``v_min``;
    returns ``(v_new, n_spikes)``."""
    if integrate_first:
        u = leak * v + current
        n = spike_count(u, theta, compare_ge) if multi else (1 if crossed(u, theta, compare_ge) else 0)
        if n:
            u = 0.0 if reset_zero else u - n * theta
    else:
        n = spike_count(v, theta, compare_ge) if multi else (1 if crossed(v, theta, compare_ge) else 0)
        if n and reset_zero:
            u = current
        else:
            u = leak * v + current - n * theta
    if u < v_min:
        u = v_min
    return u, n


@njit(**JIT)
def population_step_multi(v, current, leak, theta, amplitude, integrate_first, reset_zero, compare_ge,
                          multi, v_min, out_value, out_count):
    """:func:`population_step` with sinabs's options: ``multi`` (several spikes per step) and the
    per-channel floor ``v_min`` ``(C,)`` (``-inf``: none). Writes ``n·amplitude`` and ``n``."""
    n_spikes = 0
    C, M = v.shape
    for c in range(C):
        lam = leak[c]
        th = theta[c]
        amp = amplitude[c]
        floor = v_min[c]
        for m in range(M):
            u, n = neuron_step_multi(v[c, m], current[c, m], lam, th, integrate_first, reset_zero, compare_ge,
                                     multi, floor)
            v[c, m] = u
            out_value[c, m] = amp * n
            out_count[c, m] = n
            n_spikes += n
    return n_spikes


# ----------------------------------------------------------------------------- current-based synapse


@njit(inline="always", **JIT)
def synapse_step(i_syn, current, alpha, gain):
    """Current-based synapse, one step: ``i ← α·i + g·I`` (see :mod:`eventsim.neurons`)."""
    return alpha * i_syn + gain * current


@njit(**JIT)
def cuba_population_step(v, i_syn, current, alpha, syn_gain, leak, theta, amplitude, integrate_first,
                         reset_zero, compare_ge, out_value, out_count):
    """:func:`population_step` for a :class:`~eventsim.neurons.CubaLIF` population: the synaptic
    current ``i_syn[C, M]`` takes the step's input first (``α``, ``g`` per channel), then the
    membrane takes ``i_syn`` as its input through :func:`neuron_step`."""
    n_spikes = 0
    C, M = v.shape
    for c in range(C):
        for m in range(M):
            i_new = synapse_step(i_syn[c, m], current[c, m], alpha[c], syn_gain[c])
            i_syn[c, m] = i_new
            u, s = neuron_step(v[c, m], i_new, leak[c], theta[c], integrate_first, reset_zero, compare_ge)
            v[c, m] = u
            if s:
                out_value[c, m] = amplitude[c]
                out_count[c, m] = 1
                n_spikes += 1
            else:
                out_value[c, m] = 0.0
                out_count[c, m] = 0
    return n_spikes
