"""The asynchronous engine's fast path (a kernel generated per topology) against the general path
and the plain-Python heapq reference (``tests/async_reference.py``), spike for spike and count
for count; its on-disk cache; and its fallbacks.

The general path is forced with ``EVENTSIM_FASTPATH=0``; ``info["path"]`` says which one ran.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.engines import fastpath

from async_reference import (assert_matches_reference, continuous_network, random_events,  # noqa: E402,F401
                             reference_simulate, warm_async)

DT = 1000.0


def fast_eligible(net: es.Network) -> es.Network:
    """The same network without delays and refractory periods (the fast path leaves them to the
    general one) and without biases into a population (tested with them in test_fastpath_currents)."""
    layers = []
    for i, layer in enumerate(net.layers):
        if layer.synaptic:
            feeds_readout = isinstance(net.layers[-1], es.Readout) and all(
                not isinstance(l, es.NeuronSpec) for l in net.layers[i + 1:])
            layer = dataclasses.replace(layer, delay_us=0.0, bias=layer.bias if feeds_readout else None)
        elif isinstance(layer, es.NeuronSpec):
            layer = dataclasses.replace(layer, refractory_us=0.0)
        layers.append(layer)
    return es.Network(net.input_shape, layers)


@contextlib.contextmanager
def path_mode(mode: str):
    """EVENTSIM_FASTPATH=mode inside the block ("1": fast path whenever supported, "0": never)."""
    old = os.environ.get("EVENTSIM_FASTPATH")
    os.environ["EVENTSIM_FASTPATH"] = mode
    try:
        yield
    finally:
        if old is None:
            del os.environ["EVENTSIM_FASTPATH"]
        else:
            os.environ["EVENTSIM_FASTPATH"] = old


def both(net, events, **kw):
    """(fast, general) results of one call."""
    with path_mode("1"):
        fast = es.simulate(net, events, engine="async", **kw)
    with path_mode("0"):
        general = es.simulate(net, events, engine="async", **kw)
    assert fast.info["path"] == "fast", fast.info.get("fast_path_unsupported")
    assert general.info["path"] == "general"
    return fast, general


def assert_same(fast, general) -> None:
    """Every observable equal, bit for bit."""
    for attr in ("times_us", "logits", "spikes_per_row", "synops_per_row", "macs_per_row", "neuron_updates_per_row"):
        a, b = getattr(fast, attr), getattr(general, attr)
        assert a.shape == b.shape and np.array_equal(a, b), attr
    np.testing.assert_array_equal(fast.info["row_kind"], general.info["row_kind"])
    assert fast.info["snapshot_synops_unreached"] == general.info["snapshot_synops_unreached"]
    assert fast.rasters.keys() == general.rasters.keys()
    for name in general.rasters:
        np.testing.assert_array_equal(fast.rasters[name], general.rasters[name])
    if "spike_times" in general.info:
        for name, rec in general.info["spike_times"].items():
            np.testing.assert_array_equal(fast.info["spike_times"][name], rec)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=continuous_network(), seed=st.integers(0, 10_000), n=st.integers(0, 120),
       budgets=st.lists(st.integers(1, 400), max_size=3))
def test_fast_equals_general_equals_reference(net, seed, n, budgets):
    net = fast_eligible(net)
    events = random_events(n, (2, 4, 4), 4000, np.random.default_rng(seed))
    kw = dict(dt_us=DT, t_stop_us=5000, record=("spike_times", "spikes"), snapshot_synops=budgets or None)
    fast, general = both(net, events, **kw)
    assert_same(fast, general)
    ref = reference_simulate(net, events, DT, 5000.0)
    assert_matches_reference(net, fast, ref)
    np.testing.assert_allclose(fast.final_logits, ref.logits, rtol=1e-9, atol=1e-9)


def _dyadic(rng, *shape):
    return rng.integers(-8, 9, shape) / 8.0


@pytest.mark.parametrize("downsample", [True, False])
def test_dag_resnet_block(downsample):
    """A ResNet block with a projection shortcut (Branch + Add) or an identity one."""
    rng = np.random.default_rng(3)
    c1, c2, stride = 3, (5 if downsample else 3), (2 if downsample else 1)
    layers = [es.Conv2d(_dyadic(rng, c1, 2, 3, 3), padding=1), es.IF(threshold=0.75),
              es.Conv2d(_dyadic(rng, c2, c1, 3, 3), stride=stride, padding=1), es.IF(threshold=1.0),
              es.Conv2d(_dyadic(rng, c2, c2, 3, 3), padding=1)]
    layers += ([es.Branch(source=1), es.Conv2d(_dyadic(rng, c2, c1, 1, 1), stride=2), es.Add(source=4)]
               if downsample else [es.Add(source=1)])
    n = c2 * (4 if downsample else 8) ** 2
    layers += [es.IF(threshold=0.5), es.Flatten(), es.Linear(_dyadic(rng, 4, n), bias=_dyadic(rng, 4)), es.Readout()]
    net = es.Network((2, 8, 8), layers)
    events = random_events(600, (2, 8, 8), 8000, rng)
    fast, general = both(net, events, dt_us=1000, t_stop_us=10_000, record="spike_times",
                         snapshot_synops=[500, 5000])
    assert_same(fast, general)
    assert_matches_reference(net, fast, reference_simulate(net, events, 1000.0, 10_000.0))
    assert fast.spikes_per_layer[net.layers[-4].name] > 0


def test_lif_renormalisation_chunks_and_log_growth():
    """A LIF with τ = 20 µs over 20 ms renormalises its scaled time ~5 times; the input comes in
    chunks of 7 events (resumed kernel calls); hundreds of spikes grow the spike-time log; mean
    readout, snapshot times between events, budgets."""
    rng = np.random.default_rng(5)
    net = es.Network((2, 6, 6), [
        es.Conv2d(rng.normal(0.3, 0.3, (4, 2, 3, 3)), padding=1), es.LIF(tau_s=2e-5, threshold=0.4),
        es.AvgPool2d(2), es.Conv2d(rng.normal(0.4, 0.3, (3, 4, 2, 2))),
        es.LIF(leak=np.array([0.5, 0.9, 1.0]), threshold=0.3, reset="zero", compare=">="),
        es.MaxPool2d(2), es.Flatten(), es.Linear(rng.normal(0, 1, (2, 3))), es.Readout(mode="mean")])
    events = random_events(3000, (2, 6, 6), 20_000, rng)
    chunks = [events[i:i + 7] for i in range(0, len(events), 7)]
    kw = dict(dt_us=500.0, t_stop_us=20_000, record=("spike_times", "spikes"),
              snapshot_times_us=[0.0, 3333.3, 10_000, 20_000], snapshot_synops=[100, 20_000])
    with path_mode("1"):
        fast = es.simulate(net, iter(chunks), engine="async", **kw)
    with path_mode("0"):
        general = es.simulate(net, events, engine="async", **kw)
    assert fast.info["path"] == "fast" and general.info["path"] == "general"
    assert_same(fast, general)
    assert fast.spikes_per_layer["1.LIF"] > 500 and fast.spikes_per_layer["4.LIF"] > 0


def test_one_network_several_step_lengths_and_conventions():
    """A per-step leak becomes τ = −Δt/ln λ and out-degrees depend on the synop convention: one
    Network object called with other dt_us / conventions gets its own kernel tables."""
    rng = np.random.default_rng(9)
    w = rng.normal(0.3, 0.4, (3, 2, 3, 3)) * (rng.random((3, 2, 3, 3)) > 0.3)
    net = es.Network((2, 5, 5), [es.Conv2d(w, padding=1), es.LIF(leak=0.9, threshold=0.5), es.Flatten(),
                                 es.Linear(rng.normal(0, 1, (2, 75))), es.Readout()])
    events = random_events(400, (2, 5, 5), 6000, rng)
    seen = set()
    for dt, conv in ((1000.0, "all"), (100.0, "all"), (1000.0, "nonzero")):
        fast, general = both(net, events, dt_us=dt, synop_convention=conv, record="spike_times")
        assert_same(fast, general)
        seen.add((fast.spikes, fast.synops))
    assert len(seen) == 3


@pytest.mark.parametrize("case", ["no population", "ends in a population", "input merged, window"])
def test_edge_topologies(case):
    """No population (a readout with a bias, mean mode); a last population nobody reads (per-channel
    θ, amplitude θ); the input itself merged by an Add, spike max-pooling, a window with t_start."""
    ev = random_events(200, (2, 4, 4), 5000, np.random.default_rng(0))
    kw = dict(dt_us=1000.0, record=("spikes", "spike_times"))
    if case == "no population":
        net = es.Network((2, 4, 4), [es.Flatten(), es.Linear(np.ones((3, 32)) * 0.1, bias=np.ones(3)),
                                     es.Readout(mode="mean")])
    elif case == "ends in a population":
        net = es.Network((2, 4, 4), [es.Conv2d(np.ones((2, 2, 3, 3)) * 0.3),
                                     es.IF(spike_amplitude="threshold", threshold=np.array([0.5, 1.0]))])
    else:
        net = es.Network((2, 4, 4), [es.Conv2d(np.ones((2, 2, 1, 1)) * 0.3), es.Add(source=-1), es.IF(compare=">="),
                                     es.MaxPool2d(2), es.Flatten(), es.Linear(np.ones((2, 8))), es.Readout()])
        kw.update(t_start_us=1000, t_stop_us=4500, snapshot_times_us=[1000, 2500.5, 4500])
    fast, general = both(net, ev, **kw)
    assert_same(fast, general)


def test_large_populations_wide_and_overlapping_scatters():
    """What the small Hypothesis networks do not reach: populations of more than 4,096 neurons
    (several summary words of the pending-spike bitmaps the flush reads in flat order), a Conv2d
    of 72 channels (two lane-mask taps per position, one partial), crossings that fire at once
    (max pooling 2x2 then a conv: each neuron charged once per event) next to an overlapping
    average pooling (3x3, stride 2) before a conv, whose neurons take several charges per event
    and are tested once, after the last (candidate lists)."""
    rng = np.random.default_rng(3)
    net = es.Network((2, 34, 34), [
        es.Conv2d(_dyadic(rng, 8, 2, 3, 3) + 0.25, padding=1), es.IF(threshold=1.0), es.MaxPool2d(2),
        es.Conv2d(_dyadic(rng, 72, 8, 3, 3) / 2 + 0.0625, padding=1), es.IF(threshold=1.0),
        es.AvgPool2d(3, stride=2), es.Conv2d(_dyadic(rng, 4, 72, 3, 3) / 4), es.IF(threshold=0.5, compare=">="),
        es.Flatten(), es.Linear(_dyadic(rng, 10, 144)), es.Readout()])
    events = random_events(3000, (2, 34, 34), 20_000, np.random.default_rng(4))
    fast, general = both(net, events, record=("spike_times", "spikes"), snapshot_synops=[200_000], dt_us=2000)
    assert_same(fast, general)
    counts = fast.spikes_per_layer
    assert counts["1.IF"] > 1000 and counts["4.IF"] > 1000 and counts["7.IF"] > 10, counts
    # the kernel that ran: populations 0 and 1 fire at once, population 2 through its candidates
    src = fastpath.kernel_source(net)
    deliver = {s: re.search(rf"def deliver_{s}\(.*?\n\n", src, re.S).group(0) for s in range(3)}
    assert "fire_" not in deliver[0] + deliver[1] and "fire_2(t, " in deliver[2]
    assert "fire_one_1(j, t" in src and "I_CAND + P2_OFF + I[I_CN + 2]" in src
    # each tap its own I_HIT entry (<= 64 taps): the three convs, two taps per position of the 72-channel one
    assert src.count("hit |= np.int64(m != 0) << kt") == 4


def test_pooling_windows_with_gaps_and_padding():
    """Pooling windows with gaps between them (kernel < stride: the rows and columns in a gap reach
    no window), padding, and windows cut at the edge, into a conv and into the readout (the
    Hypothesis networks pool 2x2 with stride 2 only). Every observable identical to the general path."""
    rng = np.random.default_rng(11)
    net = es.Network((2, 14, 14), [
        es.Conv2d(_dyadic(rng, 4, 2, 3, 3) + 0.25, padding=1), es.IF(threshold=1.0),
        es.MaxPool2d(2, stride=3, padding=1),
        es.Conv2d(_dyadic(rng, 3, 4, 3, 3) / 2 + 0.25, padding=1), es.IF(threshold=0.5),
        es.AvgPool2d((1, 2), stride=(2, 3)), es.Flatten(), es.Linear(_dyadic(rng, 3, 18)), es.Readout()])
    assert net.shapes[2] == (4, 5, 5) and net.shapes[5] == (3, 3, 2)
    events = random_events(2000, (2, 14, 14), 10_000, np.random.default_rng(12))
    fast, general = both(net, events, record=("spike_times", "spikes"), snapshot_synops=[5_000], dt_us=1000)
    assert_same(fast, general)
    assert fast.spikes_per_layer["1.IF"] > 100 and fast.spikes_per_layer["4.IF"] > 20, fast.spikes_per_layer


def test_dense_layers_count_synops_from_their_taps():
    """A weighted layer whose every tap is a synapse (the default synop convention) counts an
    event's synops from the taps it walks, without the out-degree table; with ``"nonzero"`` and
    zero weights the kernel reads the table (test_one_network_several_step_lengths_and_conventions
    checks both counts against the general path)."""
    rng = np.random.default_rng(13)
    net = es.Network((2, 6, 6), [es.Conv2d(_dyadic(rng, 3, 2, 3, 3), padding=1), es.IF(), es.Flatten(),
                                 es.Linear(_dyadic(rng, 2, 108)), es.Readout()])
    src = fastpath.kernel_source(net)
    assert "D[" not in src and "I[I_SY + 0] += n" in src and "I[I_SY + 3] += 2" in src
    events = random_events(300, (2, 6, 6), 5000, rng)
    fast, general = both(net, events, snapshot_synops=[50, 400])
    assert_same(fast, general)
    # hand count: an event reaches (valid rows x valid columns) x 3 outputs of the 3x3 conv of
    # padding 1, where a border row or column of the 6x6 input has 2 valid outputs, the others 3
    valid = np.array([2, 3, 3, 3, 3, 2])
    assert fast.synops_per_layer["0.Conv2d"] == int((valid[events["y"]] * valid[events["x"]] * 3).sum())
    assert fast.synops_per_layer["3.Linear"] == 2 * fast.spikes_per_layer["1.IF"]


def test_conv_of_more_taps_than_hit_bits():
    """A Conv2d event of 75 taps (5x5 positions, 130 channels: three lane-mask taps each) has more
    taps than the 64 bits that say which recorded tap had a crossing: its kernel packs the entries
    of the taps with a crossing instead. Every observable identical."""
    rng = np.random.default_rng(5)
    net = es.Network((2, 10, 10), [
        es.Conv2d(_dyadic(rng, 130, 2, 5, 5) / 2 + 0.125, padding=2), es.IF(threshold=1.0),
        es.Flatten(), es.Linear(_dyadic(rng, 10, 13000) / 8), es.Readout()])
    events = random_events(600, (2, 10, 10), 20_000, np.random.default_rng(6))
    fast, general = both(net, events, record=("spike_times", "spikes"), snapshot_synops=[300_000], dt_us=2000)
    assert_same(fast, general)
    assert fast.spikes_per_layer["1.IF"] > 1000, fast.spikes_per_layer
    src = fastpath.kernel_source(net)
    assert "nh += m != 0" in src and "hit |=" not in src


def test_several_units_pending_for_one_neuron_at_one_instant():
    """Hand-computed: two input events at t = 10 µs charge one IF neuron (θ = 1, subtract reset)
    by 3 (two crossings: 3 → 2 → 1) and then by 1 (one more). Its bit in the pending bitmap stands
    for the first unit; the two others are counted beside it, and all three reach the readout (0.5
    each) when the instant ends. At t = 20 µs one more crossing: logit 4 × 0.5 = 2."""
    net = es.Network((1, 1, 2), [es.Flatten(), es.Linear(np.array([[3.0, 1.0]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([[0.5]])), es.Readout()])
    events = np.array([(10, 0, 0, 0), (10, 1, 0, 0), (20, 1, 0, 0)],
                      dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
    fast, general = both(net, events, record=("spike_times", "spikes"), snapshot_times_us=[10, 15, 20])
    assert_same(fast, general)
    assert fast.logits[:, 0].tolist() == [1.5, 1.5, 2.0]
    assert fast.spike_times["2.IF"]["t_us"].tolist() == [10, 10, 10, 20]


def test_network_ending_in_spikes():
    """The last population has no paths (the output is its spikes, as a sinabs export): its spikes
    are counted, logged and rastered, and never queued for a delivery that would reach nothing."""
    rng = np.random.default_rng(8)
    net = es.Network((2, 4, 4), [es.Conv2d(_dyadic(rng, 3, 2, 3, 3), padding=1), es.IF(threshold=0.5),
                                 es.Flatten(), es.Linear(_dyadic(rng, 4, 48)), es.IF(threshold=0.75)])
    events = random_events(400, (2, 4, 4), 4000, np.random.default_rng(9))
    fast, general = both(net, events, dt_us=DT, record=("spike_times", "spikes"))
    assert_same(fast, general)
    assert fast.spikes_per_layer["4.IF"] > 10, fast.spikes_per_layer
    src = fastpath.kernel_source(net)
    emit0, emit1 = (src.split(f"def emit_{p}(")[1].split(f"def fire_one_{p}(")[0] for p in (0, 1))
    assert "I_BM_0" in emit0 and "I_BM_1" not in emit1 and "I_CNT" not in emit1   # the sink's spikes never queue


def test_v_init_above_threshold_fires_at_start():
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.eye(4) * 0.5), es.IF(threshold=1.0, v_init=2.5),
                                 es.Linear(np.ones((1, 4))), es.Readout()])
    events = random_events(5, (1, 2, 2), 3000, np.random.default_rng(0))
    fast, general = both(net, events, dt_us=DT, record="spike_times")
    assert_same(fast, general)
    assert fast.spikes_per_layer["2.IF"] >= 8   # 2 spikes per neuron at t = 0


@pytest.mark.realdata
def test_nmnist_recordings_shipped_model(nmnist_dir):
    """The shipped N-MNIST model on real recordings: every observable identical."""
    net = es.load(Path(__file__).resolve().parents[1] / "models" / "nmnist" / "nmnist_if.npz")
    files = sorted((nmnist_dir / "test").glob("*.bs2"))[:4]
    assert files
    for f in files:
        events = es.read_events(f)
        fast, general = both(net, events, record=("spike_times", "spikes"),
                             snapshot_synops=[100_000, 400_000], dt_us=10_000)
        assert_same(fast, general)
        assert fast.spikes > 1000


@pytest.mark.realdata
@pytest.mark.parametrize("case", ["pool_max", "pool_avg"])
def test_nmnist_recordings_pooled_networks(nmnist_dir, case):
    """The trained pooled networks of ``benchmarks/peers`` on real recordings: 9,248 neurons in the
    first population (three summary words of its pending-spike bitmap), tens of thousands of spikes
    per recording, pooling into a conv and into the readout; every observable identical."""
    from peerkit.cases import build_cases
    net = build_cases([case])[0].network
    files = sorted((nmnist_dir / "test").glob("*.bs2"))[4:6]
    assert files
    for f in files:
        events = es.read_events(f)
        fast, general = both(net, events, record=("spike_times", "spikes"), snapshot_synops=[500_000], dt_us=10_000)
        assert_same(fast, general)
        assert fast.spikes > 10_000


# ----------------------------------------------------------------------------- fallbacks


@pytest.mark.parametrize("change, reason", [
    (dict(record="membrane"), "membrane"),
    (dict(simultaneous="batch", record="membrane"), "membrane"),
])
def test_fallback_options(change, reason):
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((1, 4))), es.IF(), es.Readout()])
    ev = random_events(10, (1, 2, 2), 3000, np.random.default_rng(0))
    res = es.simulate(net, ev, engine="async", dt_us=DT, **change)
    assert res.info["path"] == "general" and reason in res.info["fast_path_unsupported"]


@dataclasses.dataclass(frozen=True, eq=False)
class _NewKind(es.IF):
    """A neuron kind the fast path does not know (as other helpers add them)."""

    adaptation: float = 0.5   # a field no engine knows yet
    kind = "NewKind"


@pytest.mark.parametrize("layer, reason", [
    (es.IF(refractory_us=100.0), "refractory"),
    (es.IF(step_gain=np.ones(3)), "gain"),
    (_NewKind(), "NewKind"),
])
def test_fallback_layers(layer, reason):
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((1, 4))), layer, es.Readout()])
    ev = random_events(10, (1, 2, 2), 2000, np.random.default_rng(0))
    res = es.simulate(net, ev, engine="async", dt_us=DT)
    assert res.info["path"] == "general" and reason in res.info["fast_path_unsupported"]


def test_fallback_delay():
    """(A bias into a population runs on the fast path: tests/test_fastpath_currents.py.)"""
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((1, 4)), delay_us=100.0), es.IF(), es.Readout()])
    res = es.simulate(net, random_events(10, (1, 2, 2), 2000, np.random.default_rng(0)), engine="async", dt_us=DT)
    assert res.info["path"] == "general" and "delay" in res.info["fast_path_unsupported"]


# ----------------------------------------------------------------------------- the on-disk cache


def _tiny():
    return es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.ones((2, 4))), es.IF(threshold=0.5),
                                  es.Linear(np.ones((1, 2))), es.Readout()])


def test_cache_key_follows_generator_source(monkeypatch, tmp_path):
    """An edit of the generator (or driver) gives a new module name, so Numba's per-file cache of
    the old one can never run; a file whose text does not match its name is rewritten."""
    monkeypatch.setenv("EVENTSIM_FASTPATH_DIR", str(tmp_path))
    monkeypatch.setenv("EVENTSIM_FASTPATH", "1")
    ev = random_events(30, (1, 2, 2), 3000, np.random.default_rng(1))
    res = es.simulate(_tiny(), ev, engine="async", dt_us=DT)
    assert res.info["path"] == "fast"
    (first,) = tmp_path.glob("eventsim_fp_*.py")
    source = first.read_text()
    assert first.stem == "eventsim_fp_" + fastpath.source_hash(source)
    own = fastpath._own_source()
    monkeypatch.setattr(fastpath, "_own_source", lambda: own + "\n# an edited kernel\n")
    assert fastpath.source_hash(source) != first.stem[len("eventsim_fp_"):]
    monkeypatch.setattr(fastpath, "_MODULES", {})
    fresh = es.simulate(_tiny(), ev, engine="async", dt_us=DT)   # a new Network object: generated again
    names = sorted(p.stem for p in tmp_path.glob("eventsim_fp_*.py"))
    assert len(names) == 2 and first.stem in names
    assert_same(fresh, res)
    # a corrupted file is replaced by the generated text
    monkeypatch.setattr(fastpath, "_own_source", lambda: own)
    monkeypatch.setattr(fastpath, "_MODULES", {})
    first.write_text(source.replace("u > 0.5", "u > 9.0"))
    again = es.simulate(_tiny(), ev, engine="async", dt_us=DT)
    assert first.read_text() == source
    assert_same(again, res)


def test_automatic_choice(monkeypatch, tmp_path):
    """By default a Network object's first calls run on the general path, the AUTO_CALLS-th on the
    fast path (then every call); a kernel already on disk is used at once; results agree."""
    monkeypatch.setenv("EVENTSIM_FASTPATH_DIR", str(tmp_path))
    monkeypatch.delenv("EVENTSIM_FASTPATH", raising=False)
    monkeypatch.setattr(fastpath, "_MODULES", {})   # nothing compiled in this process either
    ev = random_events(40, (1, 2, 2), 3000, np.random.default_rng(2))
    net = _tiny()
    paths = [es.simulate(net, ev, engine="async", dt_us=DT) for _ in range(fastpath.AUTO_CALLS + 1)]
    assert [r.info["path"] for r in paths] == ["general"] * (fastpath.AUTO_CALLS - 1) + ["fast", "fast"]
    assert "auto" in paths[0].info["fast_path_unsupported"]
    assert_same(paths[-1], paths[0])
    assert es.simulate(_tiny(), ev, engine="async", dt_us=DT).info["path"] == "fast"   # on disk now


def test_generated_source_is_readable():
    """One function per layer kind, each with a docstring naming its layer."""
    from eventsim.kernels import fastpath_gen
    net = es.Network((2, 6, 6), [es.Conv2d(np.ones((3, 2, 3, 3)), padding=1), es.IF(), es.SumPool2d(2),
                                 es.Flatten(), es.Linear(np.ones((4, 27))), es.LIF(tau_s=0.01), es.Readout()])
    from eventsim.engines.async_compile import _classify, _compile
    comp = _compile(net, _classify(net, True), True, "all", 1000.0, False)
    src = fastpath_gen.generate(fastpath._spec(net, comp, ()))
    assert "Conv2d layer 0: (2, 6, 6) -> (3, 6, 6)" in src
    assert "Sum pooling layer 2" in src and "Linear layer 4: 27 -> 4" in src
    assert "def refresh_1" in src and "def fire_0" in src
    compile(src, "generated", "exec")


def test_fast_path_option_and_dataset_loops_use_it():
    """simulate(fast_path=True) compiles and uses the kernel on the first call, False never; the
    evaluation loop (eventsim.samples) asks for it. The results equal the general path's."""
    from eventsim.samples import trace_sample
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(np.full((3, 4), 0.4)), es.IF(threshold=0.5),
                                 es.Linear(np.eye(3)), es.Readout()])
    ev = random_events(40, (1, 2, 2), 3000, np.random.default_rng(3))
    fast = es.simulate(net, ev, engine="async", dt_us=DT, fast_path=True)
    slow = es.simulate(net, ev, engine="async", dt_us=DT, fast_path=False)
    assert fast.info["path"] == "fast" and slow.info["path"] == "general"
    assert "fast_path=False" in slow.info["fast_path_unsupported"]
    np.testing.assert_array_equal(fast.spikes_per_row, slow.spikes_per_row)
    np.testing.assert_array_equal(fast.synops_per_row, slow.synops_per_row)
    np.testing.assert_array_equal(fast.logits, slow.logits)
    fresh = es.Network(net.input_shape, list(net.layers))   # a new object: no call history
    calls = []
    real = es.engines.asynchronous.fastpath.run_fast

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    import eventsim.engines.fastpath as fp
    fp.run_fast = spy
    try:
        trace = trace_sample(fresh, ev, 0, engine="async", dt_us=DT, steps=3)
    finally:
        fp.run_fast = real
    assert calls == [1]
    np.testing.assert_array_equal(trace.logits, slow.logits)
