"""The asynchronous engine's documented tie order, and its scaled-time arithmetic over a 4-hour
stream.

Tie order (``eventsim/engines/asynchronous.py``, ``kernels/async_queue.py``, ``kernels/async_loop.py``):
at one time, input events are processed in ascending flat position ``(c·H + y)·W + x`` — not in
the order of the array — and queue entries in the order ``(layer, phase, neuron, aux)``; every
event is its own instant (its fan-out is applied, then the touched neurons fire). The tests make
each rule observable in a hand-computed case (an excitatory and an inhibitory impulse at the same
instant make a neuron fire only when the excitatory one is processed first; a 1 µs shift on
either side is the control), and compare tie-heavy random streams with the heapq reference
(``tests/async_reference.py``), which implements the documented order without sharing code.

Long streams: a LIF membrane kept in scaled time ``q = v·e^{(t−t₀)/τ}`` is renormalised whenever
``(t − t₀)/τ`` passes 200; over 4 hours with τ = 1 ms that is tens of thousands of
renormalisations. The same input pattern placed at t ≈ 0 and at t ≈ 4 h must give the same spikes
(shifted) and the same membranes, and the membrane after a long periodic train must equal the
closed form. eventsim state is float64 only (``eventsim/config.py``); there is no float32 mode.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es
from async_reference import assert_matches_reference, continuous_network, random_events, reference_simulate
from eventsim.config import FLOAT

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])


def events(rows):
    """``[(t, x, y, p), ...]`` in the given order (not sorted by position)."""
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, row in enumerate(rows):
        ev[i] = row
    return ev


def one_neuron(weights, threshold=1.0):
    """(2, 1, 2) input -> Flatten -> Linear(1 x 4) -> IF -> Linear -> Readout."""
    return es.Network((2, 1, 2), [es.Flatten(), es.Linear(np.array([weights], float)),
                                  es.IF(threshold=threshold), es.Linear(np.ones((1, 1))), es.Readout()])


def spikes(res, layer):
    return res.info["spike_times"][layer]["t_us"].tolist()


# flat position of (p, y, x) for input (2, 1, 2): p·2 + x
@pytest.mark.parametrize("weights,fires", [([-1.0, 0, 0, 1.5], False), ([1.5, 0, 0, -1.0], True)],
                         ids=["inhibition-first", "excitation-first"])
@pytest.mark.parametrize("array_order", ["ascending", "descending"])
def test_input_ties_follow_flat_position(weights, fires, array_order):
    """Two input events at t = 500 at flat positions 0 and 3: position 0 is processed first,
    whatever their order in the array. Excitation first: 1.5 > θ fires, then −1; inhibition
    first: −1 then +1.5 = 0.5, no spike."""
    rows = [(500, 0, 0, 0), (500, 1, 0, 1)]
    ev = events(rows if array_order == "ascending" else rows[::-1])
    res = es.simulate(one_neuron(weights), ev, engine="async", t_stop_us=1000, record="spike_times")
    assert spikes(res, "2.IF") == ([500.0] if fires else [])


@pytest.mark.parametrize("w_out,fires", [([-1.0, 1.5], False), ([1.5, -1.0], True)],
                         ids=["neuron0-inhibits", "neuron0-excites"])
def test_queue_ties_follow_neuron_index(w_out, fires):
    """Two hidden neurons fire at the same instant, wired crosswise (input 0 -> neuron 1, input 1 ->
    neuron 0), so neuron 1 fires first (input position 0 is processed first) and its spike is
    queued first; the spikes still reach the output neuron in ascending neuron index, not in the
    order they were queued: neuron 0's weight first."""
    net = es.Network((1, 1, 2), [es.Flatten(), es.Linear(np.array([[0.0, 2.0], [2.0, 0.0]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([w_out])), es.IF(threshold=1.0),
                                 es.Linear(np.ones((1, 1))), es.Readout()])
    ev = events([(700, 1, 0, 0), (700, 0, 0, 0)])
    res = es.simulate(net, ev, engine="async", t_stop_us=1000, record="spike_times")
    assert spikes(res, "2.IF") == [700.0, 700.0]
    assert sorted(res.info["spike_times"]["2.IF"]["neuron"].tolist()) == [0, 1]
    assert spikes(res, "4.IF") == ([700.0] if fires else [])


def driven_if(w_in, delay_us=0.0):
    """(1, 1, 1) input -> Linear(w_in) -> IF (θ = 1, ``>=``, subtract) -> Linear(delay, bias 0.5)
    -> IF (θ = 1, ``>=``) -> Linear -> Readout, Δt = 1024 µs: layer 4's bias drives it at
    r = 0.5/1024 per µs, so from rest it crosses θ = 1 at exactly t = 2048 µs (all dyadic)."""
    return es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[w_in]])),
                                  es.IF(threshold=1.0, compare=">="),
                                  es.Linear(np.array([[-0.5]]), bias=np.array([0.5]), delay_us=delay_us),
                                  es.IF(threshold=1.0, compare=">="), es.Linear(np.ones((1, 1))), es.Readout()])


@pytest.mark.parametrize("t_in,expected", [(2048, [3072.0]), (2047, [3072.0]), (2049, [2048.0])],
                         ids=["tie", "just-before", "just-after"])
def test_input_event_precedes_a_predicted_crossing_at_the_same_time(t_in, expected):
    """An IF driven by a bias at r = 0.5/1024 µs⁻¹ predicts its crossing at t = 2048 (a queue entry); an
    input event of weight −0.5 at exactly 2048 is processed first (input events precede every queue
    entry of their time): v = 1 − 0.5, the prediction is stale, the neuron next crosses at
    2048 + 0.5/r = 3072. Had the prediction been processed first it would fire at 2048 (and next at
    2048 + 1.5/r = 5120 > t_stop). Controls: 1 µs before, the same as the tie; 1 µs after, 2048."""
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[-0.5]]), bias=np.array([0.5])),
                                 es.IF(threshold=1.0, compare=">="), es.Linear(np.ones((1, 1))), es.Readout()])
    res = es.simulate(net, events([(t_in, 0, 0, 0)]), engine="async", dt_us=1024, t_stop_us=4000,
                      record="spike_times")
    assert spikes(res, "2.IF") == expected
    ref = reference_simulate(net, events([(t_in, 0, 0, 0)]), 1024.0, 4000.0)
    assert [t for t, _ in ref.spike_times["2.IF"]] == expected


@pytest.mark.parametrize("delay_us,expected", [(1948.0, [3072.0]), (1949.0, [2048.0])], ids=["tie", "after"])
def test_lower_layer_entries_precede_higher_layer_entries(delay_us, expected):
    """An input at t = 100 makes layer 2 fire once; its spike reaches layer 4 (weight −0.5) through a
    delay of 1948 µs, at t = 2048, when layer 4's own predicted crossing is due. Queue entries sort
    by layer first: the delivery (layer 2) precedes the prediction (layer 4), so layer 4 sits at
    0.5 and next crosses at 3072; with the delivery 1 µs later, layer 4 fires at 2048."""
    res = es.simulate(driven_if(1.0, delay_us), events([(100, 0, 0, 0)]), engine="async", dt_us=1024,
                      t_stop_us=4000, record="spike_times")
    assert spikes(res, "2.IF") == [100.0]
    assert spikes(res, "4.IF") == expected


@pytest.mark.parametrize("threshold,fires", [(0.75, True), (1.25, False)])
def test_fresh_input_precedes_a_delayed_input_event(threshold, fires):
    """(1, 1, 2) input; neuron 0 gets pixel 0 directly (an Add skip) and pixel 1 through a linear
    layer with weight −0.5 and a delay of 1948 µs. Pixel 1 at t = 100 and pixel 0 at t = 2048: the
    delayed event (a queue entry of the input layer) and the fresh one tie at 2048; the fresh one
    comes first: v = 1 > θ = 0.75 fires, then −0.5. The other order (−0.5 + 1 = 0.5) would not
    fire; with θ = 1.25 neither does."""
    net = es.Network((1, 1, 2), [es.Flatten(), es.Linear(np.array([[0.0, -0.5], [0.0, 0.0]]), delay_us=1948),
                                 es.Add(source=0), es.IF(threshold=threshold), es.Linear(np.ones((1, 2))),
                                 es.Readout()])
    ev = events([(100, 1, 0, 0), (2048, 0, 0, 0)])
    res = es.simulate(net, ev, engine="async", t_stop_us=4000, record="spike_times")
    log = res.info["spike_times"]["3.IF"]
    assert log["t_us"][log["neuron"] == 0].tolist() == ([2048.0] if fires else [])
    ref = reference_simulate(net, ev, 1000.0, 4000.0)
    assert [t for t, n in ref.spike_times["3.IF"] if n == 0] == ([2048.0] if fires else [])


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(1, 150))
def test_tie_heavy_streams_match_reference(net, seed, n):
    """Events on a 100 µs grid (every timestamp shared by several events) and delays of 300 and
    700 µs (delayed deliveries tie with fresh inputs and with each other): the engine and the
    heapq reference, which implements the documented order independently, agree spike for spike."""
    rng = np.random.default_rng(seed)
    ev = random_events(n, (2, 4, 4), 40, rng)
    ev["t"] *= 100
    res = es.simulate(net, ev, engine="async", dt_us=1000.0, t_stop_us=5000, record="spike_times")
    ref = reference_simulate(net, ev, 1000.0, 5000.0)
    assert_matches_reference(net, res, ref)


def test_many_simultaneous_events_are_deterministic():
    """10 000 events at one timestamp on a conv net: identical spike logs in two runs and for a
    shuffled copy of the array (the order is fixed by position, not by the array)."""
    rng = np.random.default_rng(4)
    net = es.Network((2, 8, 8), [es.Conv2d(rng.normal(0, 0.7, (4, 2, 3, 3)), padding=1), es.IF(threshold=0.8),
                                 es.SumPool2d(2), es.Flatten(), es.Linear(rng.normal(0, 0.5, (3, 64))),
                                 es.IF(threshold=0.6), es.Linear(np.ones((2, 3))), es.Readout()])
    ev = np.zeros(10_000, EVENT_DTYPE)
    ev["t"] = 1234
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 8, ev.size), rng.integers(0, 8, ev.size), rng.integers(0, 2, ev.size)
    runs = [es.simulate(net, e, engine="async", t_stop_us=2000, record="spike_times")
            for e in (ev, ev, ev[rng.permutation(ev.size)])]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.logits, runs[0].logits)
        for name, log in runs[0].info["spike_times"].items():
            np.testing.assert_array_equal(other.info["spike_times"][name], log)


# ----------------------------------------------------------------------------- 4-hour streams

HOUR_US = 3600 * 10**6


def lif_net(tau_s, w=0.4, threshold=1.0):
    """(1, 1, 2) input -> Linear(2 -> 2) -> LIF (per-channel τ) -> Linear -> Readout."""
    return es.Network((1, 1, 2), [es.Flatten(), es.Linear(np.array([[w, 0.0], [0.0, w]])),
                                  es.LIF(tau_s=tau_s, threshold=threshold), es.Linear(np.ones((1, 2))),
                                  es.Readout()])


def burst(t0, period_us=200, n=40, x=0):
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = t0 + np.arange(n) * period_us
    ev["x"] = x
    return ev


@pytest.mark.parametrize("tau_s", [0.001, 0.02])
def test_four_hour_stream_is_time_translation_invariant(tau_s):
    """The same burst at t = 0 and at t = 4 h (+ 1 µs, so t/τ is not a round number), separated by
    a sparse train (one event every 10 s): the burst's spikes are the same, shifted, and so are
    the membranes sampled 50 µs after each burst's last event. With τ = 1 ms the population is
    renormalised ~70 000 times in between."""
    late = 4 * HOUR_US + 1
    sparse = np.zeros((late - 100_000) // 10**7, EVENT_DTYPE)
    sparse["t"] = 100_000 + np.arange(sparse.size) * 10**7
    sparse["x"] = 1                                       # the other neuron keeps the queue busy
    ev = np.concatenate([burst(0), sparse, burst(late)])
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"][-1] > 2**33
    end = float(late + 39 * 200 + 50)
    probe = [float(39 * 200 + 50), end]
    res = es.simulate(lif_net(tau_s), ev, engine="async", t_stop_us=end, snapshot_times_us=probe,
                      record=("spike_times", "membrane"))
    log = res.info["spike_times"]["2.LIF"]
    first = log["t_us"][(log["neuron"] == 0) & (log["t_us"] < 10**6)]
    last = log["t_us"][(log["neuron"] == 0) & (log["t_us"] >= late)]
    assert first.size > 5
    np.testing.assert_array_equal(last - late, first)     # integer event times: exact
    mem = res.membranes["2.LIF"][:, 0]
    assert np.all(np.isfinite(res.membranes["2.LIF"]))
    np.testing.assert_allclose(mem[1], mem[0], rtol=1e-12, atol=1e-15)


def test_four_hour_periodic_train_matches_closed_form():
    """One impulse w every 0.5 s for 4 hours into a LIF that never fires (θ high, τ = 20 ms, so the
    population is renormalised every 8 impulses): after the last impulse v = w·(1 − d^n)/(1 − d),
    d = e^{−P/τ}, and the readout has seen no spike."""
    tau_s, w, period = 0.02, 0.3, 500_000
    times = np.arange(0, 4 * HOUR_US, period)
    ev = np.zeros(times.size, EVENT_DTYPE)
    ev["t"] = times
    last = float(times[-1])
    res = es.simulate(lif_net(tau_s, w=w, threshold=50.0), ev, engine="async", t_stop_us=last,
                      snapshot_times_us=[last], record="membrane")
    d = math.exp(-period * 1e-6 / tau_s)
    np.testing.assert_allclose(res.membranes["2.LIF"][0, 0], w * (1 - d ** times.size) / (1 - d), rtol=1e-12)
    assert res.spikes == 0 and np.all(res.logits == 0)


def test_membrane_snapshot_that_triggers_renormalisation():
    """9 impulses every 0.5 s (τ = 20 ms): the last one lands exactly on (t − t₀)/τ = 200, so the
    renormalisation happens at the snapshot 1 ms later, which must still read v·e^{−1 ms/τ}."""
    tau_s, w = 0.02, 0.3
    ev = np.zeros(9, EVENT_DTYPE)
    ev["t"] = np.arange(9) * 500_000
    last = float(ev["t"][-1])
    res = es.simulate(lif_net(tau_s, w=w, threshold=50.0), ev, engine="async", t_stop_us=last + 1000,
                      snapshot_times_us=[last, last + 1000], record="membrane")
    d = math.exp(-500_000e-6 / tau_s)
    v_last = w * (1 - d ** 9) / (1 - d)                   # closed form (d = e^-25 still matters at 1e-12)
    np.testing.assert_allclose(res.membranes["2.LIF"][:, 0], [v_last, v_last * math.exp(-1e-3 / tau_s)],
                               rtol=1e-12)


def test_state_is_float64_only():
    """There is no float32 mode: kernels and state use float64 (eventsim.config.FLOAT)."""
    assert FLOAT is np.float64
    net = lif_net(0.01)
    res = es.simulate(net, burst(0), engine="async", t_stop_us=10_000.0, record="membrane")
    assert res.membranes["2.LIF"].dtype == np.float64 and res.logits.dtype == np.float64
