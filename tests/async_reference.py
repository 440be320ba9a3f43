"""A slow, obviously-correct reference for ``engine="async"`` in continuous time.

Plain Python with :mod:`heapq`, written from the semantics in the engine's docstring, sharing
no code with it:

* every input event is its own instant; a spike's effect on each target is found by walking the
  layers from its source with direct loops over every output position (conv, pools, linear);
  flatten and add leave flat indices unchanged;
* membranes are kept explicitly as ``(v, t_last)``: ``v(t) = v + r·(t − t_last)`` (IF) or
  ``v∞ + (v − v∞)·e^{−(t − t_last)/τ}`` (LIF, ``τ = −Δt/ln λ``, ``v∞ = r·τ``), with
  ``r = C/Δt`` for a constant current ``C`` per step (biases, from a dense forward pass);
* after all impulses of one delivery, touched neurons fire while above threshold (one spike per
  crossing; zero reset and refractory periods stop at one), then the next crossing under the
  drive is predicted and queued with a version number;
* queue entries are ``(t, layer, phase, neuron, aux)`` — phase 0 prediction/wake-up, 2 + g
  delivery of delay group ``g`` (delays sorted, group 0 = no delay) — and input events come first
  at equal times, in ascending flat position;
* synops are counted when an event reaches a weighted layer: the number of existing synapses from
  its position (all, or non-zero weights), found by brute force.

Supported: event input, Conv2d, Linear (biases, delays), Sum/Avg/MaxPool2d, Flatten, Add, IF and
LIF without per-step gain/bias, Readout(mode="sum").

Also here, for the test modules that compare against it: :func:`continuous_network` (a Hypothesis
strategy for random networks of that kind) and :func:`random_events`.
"""
from __future__ import annotations

import heapq
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import strategies as st

import eventsim as es


def _conv_targets(layer, in_shape, out_shape, pos):
    """[(flat output index, weight)] reached from flat input position ``pos``, by brute force."""
    c_in, h, w = in_shape
    c_out, oh, ow = out_shape
    ci, rem = divmod(pos, h * w)
    y, x = divmod(rem, w)
    cin_g = c_in // layer.groups
    cout_g = c_out // layer.groups
    g = ci // cin_g
    kh, kw = layer.weight.shape[2:]
    out = []
    for co in range(g * cout_g, (g + 1) * cout_g):
        for oy in range(oh):
            for ox in range(ow):
                ky = y - (oy * layer.stride[0] - layer.padding[0])
                kx = x - (ox * layer.stride[1] - layer.padding[1])
                if 0 <= ky < kh and 0 <= kx < kw:
                    out.append(((co * oh + oy) * ow + ox, float(layer.weight[co, ci - g * cin_g, ky, kx])))
    return out


def _pool_windows(layer, in_shape, out_shape, pos):
    c, h, w = in_shape
    _, oh, ow = out_shape
    ch, rem = divmod(pos, h * w)
    y, x = divmod(rem, w)
    kh, kw = layer.kernel_size
    out = []
    for oy in range(oh):
        for ox in range(ow):
            y0 = oy * layer.stride[0] - layer.padding[0]
            x0 = ox * layer.stride[1] - layer.padding[1]
            if y0 <= y < y0 + kh and x0 <= x < x0 + kw:
                out.append((ch * oh + oy) * ow + ox)
    return out


def _dense_forward(network, x):
    """Constant current into each population / the readout for input ``x`` (zeros: biases only)."""
    outs, currents = [], {}
    x0 = np.asarray(x, dtype=np.float64)
    for i, layer in enumerate(network.layers):
        if isinstance(layer, es.Branch):
            x = x0 if layer.source == -1 else outs[layer.source]
        in_shape, shape = network.input_shape_of(i), network.shapes[i]
        flat = np.asarray(x, dtype=np.float64).ravel()
        if isinstance(layer, (es.Conv2d, es.Linear)):
            y = np.zeros(int(np.prod(shape)))
            if layer.bias is not None:
                y += np.repeat(layer.bias, y.size // layer.bias.size)
            for pos in np.flatnonzero(flat):
                targets = (_conv_targets(layer, in_shape, shape, pos) if isinstance(layer, es.Conv2d)
                           else [(o, layer.weight[o, pos]) for o in range(shape[0])])
                for q, wq in targets:
                    y[q] += flat[pos] * wq
        elif isinstance(layer, (es.SumPool2d, es.AvgPool2d, es.MaxPool2d)):
            y = np.zeros(int(np.prod(shape)))
            area = layer.kernel_size[0] * layer.kernel_size[1]
            for pos in np.flatnonzero(flat):
                for q in _pool_windows(layer, in_shape, shape, pos):
                    y[q] += flat[pos] / area if isinstance(layer, es.AvgPool2d) else flat[pos]
        elif isinstance(layer, es.Add):
            src = np.zeros(flat.size) if layer.source == -1 else outs[layer.source]
            y = flat + np.asarray(src).ravel()
        elif isinstance(layer, (es.NeuronSpec, es.Readout)):
            currents[i] = flat.copy()
            y = np.zeros(flat.size)
        else:
            y = flat
        outs.append(y)
        x = y
    return currents


@dataclass
class Population:
    layer: int
    shape: tuple
    theta: np.ndarray
    amp: np.ndarray
    tau: np.ndarray          # µs per neuron (inf for IF)
    lif: bool
    ge: bool
    zero: bool
    refr: float
    rate: np.ndarray         # drive per µs
    v: np.ndarray
    t_last: np.ndarray
    version: np.ndarray = None
    frozen_until: np.ndarray = None

    def __post_init__(self):
        self.version = np.zeros(self.v.size, np.int64)
        self.frozen_until = np.full(self.v.size, -np.inf)

    def leaky(self, n):
        return self.lif and math.isfinite(self.tau[n])

    def vinf(self, n):
        return self.rate[n] * self.tau[n]

    def value(self, n, t):
        if self.frozen_until[n] != -np.inf:
            return self.v[n]
        if not self.leaky(n):
            return self.v[n] + self.rate[n] * (t - self.t_last[n])
        vi = self.vinf(n)
        return vi + (self.v[n] - vi) * math.exp(-(t - self.t_last[n]) / self.tau[n])

    def set(self, n, t, value):
        self.v[n], self.t_last[n] = value, t

    def above(self, n, t):
        u = self.value(n, t)
        return u >= self.theta[n] if self.ge else u > self.theta[n]

    def predict(self, n, t):
        v, th = self.value(n, t), self.theta[n]
        if not self.leaky(n):
            r = self.rate[n]
            return t + (th - v) / r if r > 0 else math.inf
        vi = self.vinf(n)   # t + τ·ln((v∞ − v)/(v∞ − θ))
        return t + self.tau[n] * math.log1p((th - v) / (vi - th)) if vi > th else math.inf


@dataclass
class ReferenceResult:
    spike_times: dict = field(default_factory=dict)   # layer name -> sorted [(t, flat neuron)]
    spikes: dict = field(default_factory=dict)        # layer name -> count
    synops: dict = field(default_factory=dict)        # layer name -> count
    logits: np.ndarray = None


def reference_simulate(network: es.Network, events: np.ndarray, dt_us: float, t_stop_us: float,
                       convention: str = "all") -> ReferenceResult:
    """Continuous-time simulation of ``network`` on ``events`` (t, x, y, p) up to ``t_stop_us``."""
    layers = network.layers
    L = len(layers)
    # who reads layer i's output: the next layer (unless it is a Branch, which reads its source),
    # and every Add / Branch naming i
    consumers = {i: ([i + 1] if i + 1 < L and not isinstance(layers[i + 1], es.Branch) else [])
                 + [j for j, l in enumerate(layers) if isinstance(l, (es.Add, es.Branch)) and l.source == i]
                 for i in range(-1, L)}
    const = _dense_forward(network, np.zeros(network.input_shape))
    pops = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, es.NeuronSpec):
            shape = network.shapes[i]
            c, per = shape[0], int(np.prod(shape)) // shape[0]
            chan = lambda v: np.repeat(np.broadcast_to(np.atleast_1d(np.asarray(v, float)), (c,)), per)  # noqa: E731
            theta = chan(layer.threshold)
            amp = theta.copy() if layer.spike_amplitude == "threshold" else chan(layer.spike_amplitude)
            lif = isinstance(layer, es.LIF)
            if lif and layer.tau_s is not None:
                tau = chan(layer.tau_s * 1e6)
            elif lif:
                lam = chan(layer.leak)
                tau = np.array([-dt_us / math.log(x) if x < 1 else math.inf for x in lam])
            else:
                tau = np.full(c * per, math.inf)
            pops[i] = Population(i, shape, theta, amp, tau, lif, layer.compare == ">=", layer.reset == "zero",
                                 float(layer.refractory_us), const[i] / dt_us, chan(layer.v_init).astype(float),
                                 np.zeros(c * per))
    readout = L - 1 if isinstance(layers[-1], es.Readout) else None
    y = np.zeros(int(np.prod(network.output_shape))) if readout is not None else np.zeros(0)
    y_rate = const[readout] / dt_us if readout is not None else y
    res = ReferenceResult(spike_times={layers[i].name: [] for i in pops},
                          spikes={l.name: 0 for l in layers}, synops={l.name: 0 for l in layers})

    def degree(j, pos):
        layer = layers[j]
        if isinstance(layer, es.Linear):
            col = layer.weight[:, pos]
            return col.size if convention == "all" else int(np.count_nonzero(col))
        return sum(1 for _, w in _conv_targets(layer, network.input_shape_of(j), network.shapes[j], pos)
                   if convention == "all" or w != 0)

    def walk(i, items, delay, out):
        """Carry [(pos, value, count)] from layer ``i``'s output; collect per delay:
        [(target layer, flat pos, charge)] and synops per layer."""
        for j in consumers[i]:
            layer = layers[j]
            if isinstance(layer, (es.NeuronSpec, es.Readout)):
                out.setdefault(delay, ([], {}))[0].extend((j, pos, val) for pos, val, _ in items)
                continue
            in_shape, shape = network.input_shape_of(j), network.shapes[j]
            d = delay + getattr(layer, "delay_us", 0.0)
            new = []
            if isinstance(layer, (es.Conv2d, es.Linear)):
                syn = out.setdefault(d, ([], {}))[1]
                for pos, val, cnt in items:
                    syn[layer.name] = syn.get(layer.name, 0) + cnt * degree(j, pos)
                    targets = (_conv_targets(layer, in_shape, shape, pos) if isinstance(layer, es.Conv2d)
                               else [(o, float(layer.weight[o, pos])) for o in range(shape[0])])
                    new.extend((q, val * wq, 0) for q, wq in targets)
            elif isinstance(layer, (es.SumPool2d, es.AvgPool2d, es.MaxPool2d)):
                area = layer.kernel_size[0] * layer.kernel_size[1]
                for pos, val, cnt in items:
                    v_out = val / float(area) if isinstance(layer, es.AvgPool2d) else val
                    n_out = 1 if isinstance(layer, es.MaxPool2d) else cnt
                    new.extend((q, v_out, n_out) for q in _pool_windows(layer, in_shape, shape, pos))
            else:
                new = items
            walk(j, new, d, out)
        return out

    heap, seq = [], [0]

    def push(entry, payload=None):
        seq[0] += 1
        heapq.heappush(heap, entry + (seq[0], payload))

    def emit(i, n, count, t):
        pop = pops[i]
        res.spikes[layers[i].name] += count
        res.spike_times[layers[i].name].extend([(t, n)] * count)
        groups = walk(i, [(n, float(pop.amp[n]), 1)], 0.0, {})
        for g, d in enumerate(sorted({0.0} | set(groups))):
            if d in groups and t + d <= t_stop_us:
                push((t + d, i, 2 + g, n, count), groups[d])

    def check(i, n, t):
        pop = pops[i]
        if pop.frozen_until[n] != -np.inf:
            return
        spikes = 0
        while pop.above(n, t):
            v = pop.value(n, t)
            pop.set(n, t, 0.0 if pop.zero else v - pop.theta[n])
            spikes += 1
            if pop.refr > 0:
                pop.v[n], pop.frozen_until[n] = pop.value(n, t), t + pop.refr
                if t + pop.refr <= t_stop_us:
                    push((t + pop.refr, i, 0, n, -1))
                break
            if pop.zero:
                break
        if spikes:
            emit(i, n, spikes, t)
        if pop.frozen_until[n] == -np.inf and np.any(pop.rate != 0):
            pop.version[n] += 1
            ts = pop.predict(n, t)
            if ts <= t_stop_us:
                push((ts, i, 0, n, int(pop.version[n])))

    def release(i, n):
        pop = pops[i]
        t_end = pop.frozen_until[n]
        pop.frozen_until[n] = -np.inf
        pop.set(n, t_end, pop.v[n])

    def apply(group, t):
        charges, syn = group
        for name, count in syn.items():
            res.synops[name] += count
        touched = []
        for j, pos, val in charges:
            if j == readout:
                y[pos] += val
                continue
            pop = pops[j]
            if val == 0.0 and pop.refr == 0 and np.any(pop.rate != 0) and (
                    not pop.lif or np.all(np.isfinite(pop.tau))):
                # a zero charge into a driven IF/LIF changes nothing (the engine's driven sinks):
                # re-anchoring v at t and re-predicting would move its crossing by rounding alone,
                # and a neuron identical to its neighbours would no longer cross with them
                continue
            if pop.frozen_until[pos] != -np.inf:
                if t < pop.frozen_until[pos]:
                    continue
                release(j, pos)
            pop.set(pos, t, pop.value(pos, t) + val)
            touched.append((j, pos))
        for j, pos in dict.fromkeys(touched):
            check(j, pos, t)

    for i, pop in pops.items():
        for n in range(pop.v.size):
            check(i, n, 0.0)
    c_in, h, w = network.input_shape
    ev = sorted((int(e["t"]), ((int(e["p"]) if c_in == 2 else 0) * h + int(e["y"])) * w + int(e["x"]))
                for e in events)
    k = 0
    while True:
        t_in = ev[k][0] if k < len(ev) else math.inf
        t_q = heap[0][0] if heap else math.inf
        t = min(t_in, t_q)
        if t > t_stop_us:
            break
        if t_in <= t_q:
            pos = ev[k][1]
            k += 1
            groups = walk(-1, [(pos, 1.0, 1)], 0.0, {})
            for g, d in enumerate(sorted({0.0} | set(groups))):
                if d in groups:
                    if d == 0.0:
                        apply(groups[d], t)
                    elif t + d <= t_stop_us:
                        push((t + d, -1, 2 + g, pos, 1), groups[d])
            continue
        t, i, phase, n, aux, _, payload = heapq.heappop(heap)
        if phase >= 2:
            for _ in range(aux):
                apply(payload, t)
            continue
        pop = pops[i]
        if aux < 0:
            if pop.frozen_until[n] != -np.inf and pop.frozen_until[n] <= t:
                release(i, n)
                check(i, n, t)
        elif pop.version[n] == aux and pop.frozen_until[n] == -np.inf:
            pop.set(n, t, 0.0)
            emit(i, n, 1, t)
            if pop.refr > 0:
                pop.frozen_until[n] = t + pop.refr
                if t + pop.refr <= t_stop_us:
                    push((t + pop.refr, i, 0, n, -1))
            else:
                check(i, n, t)
    if readout is not None:
        y = y + y_rate * t_stop_us
    res.logits = y
    for name in res.spike_times:
        res.spike_times[name].sort()
    return res


@st.composite
def continuous_network(draw):
    """Random conv/pool/linear/Add networks with drive, delays, refractory periods and every reset
    and comparison. Weights are multiples of 1/8 so IF arithmetic is exact in any order; LIF
    thresholds are not dyadic, so no sum of weights lands exactly on one."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dy = lambda *shape: rng.integers(-8, 9, shape) / 8.0  # noqa: E731
    pops = []

    def neuron(c):
        lif = draw(st.booleans())
        kw = dict(compare=draw(st.sampled_from([">", ">="])), reset=draw(st.sampled_from(["subtract", "zero"])),
                  refractory_us=draw(st.sampled_from([0.0, 0.0, 250.0, 1500.0])))
        if lif:   # a LIF spike of amplitude θ would bring sums of exactly θ back: keep amplitudes dyadic
            kw.update(threshold=draw(st.sampled_from([0.7333, 1.1111, np.linspace(0.61, 1.37, c)])),
                      v_init=draw(st.sampled_from([0.0, 0.3333])), spike_amplitude=draw(st.sampled_from([1.0, 0.75])))
            leak = draw(st.sampled_from(["tau", 0.8, 0.97, "per-channel"]))
            if leak == "tau":
                return es.LIF(tau_s=0.003, **kw)
            return es.LIF(leak=np.linspace(0.7, 1.0, c) if leak == "per-channel" else leak, **kw)
        kw.update(threshold=draw(st.sampled_from([0.5, 1.0, np.arange(1, c + 1) / 4.0])),
                  v_init=draw(st.sampled_from([0.0, 0.25, 1.5])), spike_amplitude=draw(st.sampled_from([1.0, "threshold"])))
        return es.IF(**kw)

    def bias(c):
        return dy(c) / 4 if draw(st.booleans()) else None

    c1, k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    layers = [es.Conv2d(dy(c1, 2, k, k), stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, k // 2)),
                        bias=bias(c1), delay_us=draw(st.sampled_from([0.0, 300.0]))), neuron(c1)]
    pops.append(1)
    shape = es.Network((2, 4, 4), layers).output_shape
    pool = draw(st.sampled_from([None, es.SumPool2d, es.AvgPool2d, es.MaxPool2d]))
    if pool is not None and min(shape[1:]) >= 2:
        layers.append(pool(2))
        shape = es.Network((2, 4, 4), layers).output_shape
    layers += [es.Flatten(), es.Linear(dy(4, int(np.prod(shape))), bias=bias(4),
                                       delay_us=draw(st.sampled_from([0.0, 0.0, 700.0]))), neuron(4)]
    residual = draw(st.sampled_from([None, "identity", "projection"]))
    if residual == "identity":   # a residual branch around a linear layer
        src = len(layers) - 1
        layers += [es.Linear(dy(4, 4)), es.Add(source=src), neuron(4)]
    elif residual == "projection":   # both paths hold a layer (a ResNet's downsampling shortcut)
        src = len(layers) - 1
        layers += [es.Linear(dy(4, 4)), neuron(4), es.Linear(dy(4, 4)), es.Branch(source=src),
                   es.Linear(dy(4, 4), bias=bias(4)), es.Add(source=len(layers) + 2), neuron(4)]
    layers += [es.Linear(dy(3, 4), bias=bias(3)), es.Readout()]
    return es.Network((2, 4, 4), layers)


def random_events(n: int, input_shape: tuple, t_max_us: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random events (sorted by t, integer µs in ``[0, t_max_us)``) for a
    ``(C, H, W)`` input; with ``C == 1`` every polarity is 0."""
    c, h, w = input_shape
    ev = np.zeros(n, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"] = np.sort(rng.integers(0, max(t_max_us, 1), n))
    ev["x"], ev["y"] = rng.integers(0, w, n), rng.integers(0, h, n)
    ev["p"] = rng.integers(0, c, n)
    return ev


@pytest.fixture(scope="session", autouse=True)
def warm_async():
    """Compile the kernels once per session (Numba caches them in build/numba-cache); a test module
    uses it by importing it (autouse)."""
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((1, 4))), es.IF(), es.Linear(np.ones((1, 1))),
                                 es.Readout()])
    ev = random_events(20, (1, 2, 2), 3000, np.random.default_rng(0))
    for mode in ("none", "batch"):
        es.simulate(net, ev, engine="async", dt_us=1000.0, simultaneous=mode)


def assert_matches_reference(network: es.Network, res, ref: ReferenceResult) -> None:
    """The engine's result ``res`` (run with ``record="spike_times"``) against the reference ``ref``:
    the same neurons spike in the same order, at identical times in all-IF networks and within 1e-9
    relative once a LIF is involved; identical spike and synop counts per layer."""
    exact = not any(isinstance(layer, es.LIF) for layer in network.layers)
    for name, expected in ref.spike_times.items():
        got = [(float(t), int(i)) for t, i in res.spike_times[name]]
        assert [i for _, i in got] == [i for _, i in expected], name
        if exact:
            assert got == expected, name
        else:
            np.testing.assert_allclose([t for t, _ in got], [t for t, _ in expected], rtol=1e-9, atol=1e-9)
    assert res.spikes_per_layer == ref.spikes
    assert res.synops_per_layer == ref.synops


def cuba_fine_grid(inputs, t_stop_us, tau_us, tau_syn_us, theta, grid_us=0.01, q=1.0, coupling=1.0,
                   reset="subtract"):
    """Spike times of one current-based LIF (``di/dt = −i/τ_syn``, an input ``w`` adds ``q·w/τ_syn``;
    ``dv/dt = −v/τ + coupling·i``; ``reset`` subtract or zero) with each step taken by the matrix
    exponential of the 2×2 linear system (``scipy.linalg.expm``: independent of the closed form in
    :mod:`eventsim.kernels.async_cuba`). A grid step that ends above θ is bisected (matrix
    exponentials of partial steps) to 1e-9 µs, and the reset applied there. ``inputs``: sorted
    ``(t_us, w)`` on the grid. NIR's CubaLIF is ``coupling = R/τ``, ``q = w_in`` (times 1e6 when its
    Dirac inputs are per second and the grid in µs)."""
    from scipy.linalg import expm
    a = 0.0 if np.isinf(tau_us) else 1.0 / tau_us
    gen = np.array([[-a, coupling], [0.0, -1.0 / tau_syn_us]])
    step = expm(gen * grid_us)   # state (v, i)
    state = np.zeros(2)
    spikes, j, t = [], 0, 0.0
    while t <= t_stop_us + 1e-9:
        while j < len(inputs) and inputs[j][0] <= t + 1e-9:
            state[1] += q * inputs[j][1] / tau_syn_us
            j += 1
        new = step @ state
        if new[0] > theta:
            lo, hi = 0.0, grid_us
            while hi - lo > 1e-9:
                mid = 0.5 * (lo + hi)
                if (expm(gen * mid) @ state)[0] > theta:
                    hi = mid
                else:
                    lo = mid
            if t + hi <= t_stop_us:
                spikes.append(t + hi)
            state = expm(gen * hi) @ state
            state[0] = 0.0 if reset == "zero" else state[0] - theta
            state = expm(gen * (grid_us - hi)) @ state   # (a second crossing in one step is not sought)
        else:
            state = new
        t = round(t + grid_us, 9)
    return np.array(spikes)


def cuba_network_reference(w1, pop1, w2, pop2, inputs, t_stop_us, rec=None, rec_delay_us=None, grid_us=2.0):
    """Event-driven reference for ``input → Linear(w1) → CubaLIF → [Recurrent(rec)] → Linear(w2) → CubaLIF``
    in continuous time (both populations ``(τ_us, τ_syn_us, θ)``, tau form: an input ``x`` adds
    ``x/τ_syn`` to ``i``; subtract reset). Every population advances by matrix exponentials
    (``scipy.linalg.expm``) in grid steps; a step that ends above θ in some neuron is bisected per
    neuron to 1e-9 µs, the earliest crossing fires first (its spike reaches the next population at
    once, its feedback ``rec_delay_us`` later) and the step restarts from there. ``inputs``: sorted
    ``(t_us, input index)``. Returns the spike times ``[(t, neuron), ...]`` of both populations."""
    import heapq

    from scipy.linalg import expm

    pops = []
    for tau, tau_syn, theta in (pop1, pop2):
        gen = np.array([[-1.0 / tau, 1.0], [0.0, -1.0 / tau_syn]])
        pops.append(dict(gen=gen, tau_syn=tau_syn, theta=theta, n=None, step=expm(gen * grid_us)))
    pops[0]["n"], pops[1]["n"] = w1.shape[0], w2.shape[0]
    state = [np.zeros((2, p["n"])) for p in pops]          # rows v, i
    spikes = ([], [])
    queue = [(float(t), 0, int(j)) for t, j in inputs]     # (t, kind 0 input / 1 feedback, index)
    heapq.heapify(queue)

    def propagator(p, h):
        return p["step"] if h == grid_us else expm(p["gen"] * h)

    def advance(h):
        for p, s in zip(pops, state):
            s[:] = propagator(p, h) @ s

    def fire(k, j, t):
        p, s = pops[k], state[k]
        while s[0, j] > p["theta"]:
            s[0, j] -= p["theta"]
            spikes[k].append((t, j))
            if k == 0:
                state[1][1] += w2[:, j] / pops[1]["tau_syn"]
                if rec is not None and t + rec_delay_us <= t_stop_us:
                    heapq.heappush(queue, (t + rec_delay_us, 1, j))
        if k == 0:
            for j2 in range(pops[1]["n"]):
                fire(1, j2, t)

    t = 0.0
    while t < t_stop_us:
        t_event = min(queue[0][0], t_stop_us) if queue else t_stop_us
        while t < t_event - 1e-12:
            h = min(grid_us, t_event - t)
            best = None
            for k, (p, s) in enumerate(zip(pops, state)):
                end = propagator(p, h) @ s
                for j in np.flatnonzero(end[0] > p["theta"]):
                    lo, hi = 0.0, h
                    while hi - lo > 1e-9:
                        mid = 0.5 * (lo + hi)
                        if (expm(p["gen"] * mid) @ s[:, j])[0] > p["theta"]:
                            hi = mid
                        else:
                            lo = mid
                    if best is None or hi < best[0]:
                        best = (hi, k, j)
            if best is None:
                advance(h)
                t += h
                continue
            advance(best[0])
            t += best[0]
            fire(best[1], best[2], t)
        t = t_event
        while queue and queue[0][0] <= t + 1e-12:
            _, kind, j = heapq.heappop(queue)
            if kind == 0:
                state[0][1] += w1[:, j] / pops[0]["tau_syn"]
            else:
                state[0][1] += rec[:, j] / pops[0]["tau_syn"]
        if t >= t_stop_us:
            break
    return spikes


def without_delays_and_refractory(net: es.Network) -> es.Network:
    """The same network, biases kept, without synaptic delays and refractory periods (the fast
    paths leave those to the general path)."""
    layers = []
    for layer in net.layers:
        if layer.synaptic:
            layer = dataclasses.replace(layer, delay_us=0.0)
        elif isinstance(layer, es.NeuronSpec):
            layer = dataclasses.replace(layer, refractory_us=0.0)
        layers.append(layer)
    return es.Network(net.input_shape, layers)
