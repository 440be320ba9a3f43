"""A plain NumPy float32 reference for ``engine="async", dtype="float32"``, sharing no code with it.

Feed-forward chains ``Flatten → (Linear → IF/LIF)* → Linear → Readout`` (no biases, delays or
refractory periods; LIF given as ``tau_s``) on event input, in continuous time, written from the
documented float32 semantics with NumPy float32 scalars (every operation on two float32 values
gives a float32):

* weights, thresholds, spike amplitudes and ``v_init`` are rounded to float32; times are float64;
* an event of value ``a`` at input ``i`` adds ``x = a·w_ji`` to every neuron ``j`` of the next
  population in index order: IF ``v ← v + x``; LIF in scaled time ``q ← q + x·s`` with
  ``s = float32(exp((t − t₀)/τ))``, tested against ``θ·s`` (float32 product); when
  ``(t − t₀)/τ > 60`` first ``q ← float32(q·exp(−(t − t₀)/τ))`` (float64 factor) and ``t₀ ← t``;
* after the delivery, the neurons that crossed fire while above threshold (subtract ``θ``, LIF
  ``θ·s``; zero reset: once, to 0);
* input events come in ``(t, flat position)`` order; the spikes of one instant are delivered when
  the next instant begins, population by population, each population's neurons in index order,
  one unit event at a time;
* the readout sums ``a·w`` in float64.
"""
from __future__ import annotations

import math

import numpy as np

import eventsim as es

F = np.float32
RENORM = 60.0


def _chan(value, n) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64), (n,)).astype(F)


def reference_float32(network: es.Network, events: np.ndarray, t_stop_us: float):
    """``(spike_times {layer name: [(t, neuron)] sorted}, spike counts {name: n}, logits float64,
    membranes at t_stop {name: float64 array})``; a LIF membrane is ``q / s(t_stop)`` (float64
    division, after bringing ``s`` to ``t_stop``, renormalising if due)."""
    layers = network.layers
    assert isinstance(layers[0], es.Flatten) and isinstance(layers[-1], es.Readout)
    stages = []
    for lin, nxt in zip(layers[1::2], layers[2::2]):
        assert isinstance(lin, es.Linear) and (lin.bias is None or isinstance(nxt, es.Readout)) and not lin.delay_us
        W = np.asarray(lin.weight, np.float64).astype(F)
        if isinstance(nxt, es.Readout):
            stages.append((W, None))
            break
        n = W.shape[0]
        lif = isinstance(nxt, es.LIF)
        assert not nxt.refractory_us and (not lif or nxt.tau_s is not None)
        th = _chan(nxt.threshold, n)
        pop = dict(name=nxt.name, lif=lif, th=th, amp=th.copy() if nxt.spike_amplitude == "threshold"
                   else _chan(nxt.spike_amplitude, n), itau=1.0 / (nxt.tau_s * 1e6) if lif else 0.0,
                   ge=nxt.compare == ">=", zero=nxt.reset == "zero", v=_chan(nxt.v_init, n), t0=0.0, at=None,
                   s=F(1.0), ths=th.copy(), pending={})
        stages.append((W, pop))
    n_out = stages[-1][0].shape[0]
    y = np.zeros(n_out)
    times = {pop["name"]: [] for _, pop in stages if pop is not None}

    def refresh(pop, t):
        if pop["at"] == t:
            return
        if (t - pop["t0"]) * pop["itau"] > RENORM:
            e = math.exp(-(t - pop["t0"]) * pop["itau"])
            pop["v"] = np.array([F(float(v) * e) for v in pop["v"]], F)
            pop["t0"] = t
        pop["s"] = F(math.exp((t - pop["t0"]) * pop["itau"]))
        pop["ths"] = np.array([th * pop["s"] for th in pop["th"]], F)
        pop["at"] = t

    def above(pop, j, u):
        lim = pop["ths"][j] if pop["lif"] else pop["th"][j]
        return u >= lim if pop["ge"] else u > lim

    def deliver(k, i, a, t):
        W, pop = stages[k]
        if pop is None:
            for j in range(n_out):
                y[j] += float(a) * float(W[j, i])
            return
        if pop["lif"]:
            refresh(pop, t)
        crossed = []
        for j in range(W.shape[0]):
            x = a * W[j, i]
            if pop["lif"]:
                x = x * pop["s"]
            u = pop["v"][j] + x
            pop["v"][j] = u
            if above(pop, j, u):
                crossed.append(j)
        for j in crossed:
            u, n_sp = pop["v"][j], 0
            while above(pop, j, u):
                n_sp += 1
                if pop["zero"]:
                    u = F(0.0)
                    break
                u = u - (pop["th"][j] * pop["s"] if pop["lif"] else pop["th"][j])
            pop["v"][j] = u
            if n_sp:
                times[pop["name"]].extend([(t, j)] * n_sp)
                pop["pending"][j] = pop["pending"].get(j, 0) + n_sp

    def flush(t):
        for k, (_, pop) in enumerate(stages):
            if pop is None:
                continue
            for j in sorted(pop["pending"]):
                for _ in range(pop["pending"][j]):
                    deliver(k + 1, j, pop["amp"][j], t)
            pop["pending"].clear()

    c, h, w = network.input_shape
    ev = sorted((float(e["t"]), ((int(e["p"]) if c == 2 else 0) * h + int(e["y"])) * w + int(e["x"]))
                for e in events if e["t"] <= t_stop_us)
    t_cur = None
    for t, i in ev:
        if t != t_cur and t_cur is not None:
            flush(t_cur)
        t_cur = t
        deliver(0, i, F(1.0), t)
    if t_cur is not None:
        flush(t_cur)
    membranes = {}
    for _, pop in stages[:-1]:
        if pop["lif"]:
            refresh(pop, float(t_stop_us))
        membranes[pop["name"]] = pop["v"].astype(np.float64) / (float(pop["s"]) if pop["lif"] else 1.0)
    return ({name: sorted(v) for name, v in times.items()}, {name: len(v) for name, v in times.items()}, y,
            membranes)
