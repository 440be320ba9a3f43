"""sinabs semantics: eventsim reproduces sinabs's own simulation of sinabs-exported NIR files.

Each network is the sinabs twin of a peer net (``benchmarks/peers``: the shipped N-MNIST conv net,
its pruned copy, the conv net with sum pooling, the MLP), ending in a spiking layer as sinabs
classifiers do, exported by ``sinabs.nir.to_nir`` to a ``.nir`` file. sinabs runs that file with
``sinabs.nir.from_nir`` (IAF with MultiSpike, subtract reset, ``min_v_mem = −θ``); eventsim loads it
with ``convention="sinabs"``. On 20 real N-MNIST test recordings at sinabs's 1 ms bins every spiking
layer agrees spike for spike at every step, in the stepped engine and (on a subset) in the
asynchronous engine's batch mode; predictions by output spike counts are compared too.

Skips when sinabs is absent (``bash benchmarks/peers/install_peers.sh``; CI installs it).
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import eventsim as es

pytest.importorskip("sinabs", exc_type=ImportError)
pytest.importorskip("nir")

from conftest import require_shared_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

from peerkit.sinabs_nir import SinabsRun, export_nir  # noqa: E402
pytestmark = [pytest.mark.realdata, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")]

N_RECORDINGS = 20
DT_US = 1000
CASES = ("pool_sum", "conv", "conv_pruned", "mlp")


@pytest.fixture(scope="module")
def recordings():
    from eventsim.engines.inputs import events_to_steps
    from eventsim.events import LocalNMNIST
    data = LocalNMNIST(require_shared_data("nmnist"), "test")
    out = []
    for i in range(N_RECORDINGS):
        events, label = data[i]
        steps = int(events["t"][-1] // DT_US) + 1
        out.append((events, int(label), steps, events_to_steps(events, (2, 34, 34), DT_US, steps)))
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from peerkit.cases import build_cases
    folder = tmp_path_factory.mktemp("sinabs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {case.name: export_nir(case.network, folder / f"{case.name}.nir") for case in build_cases(CASES)}


def test_convention_sets_sinabs_neurons(exported):
    net = es.load(exported["pool_sum"], format="nir", convention="sinabs")
    pops = [layer for layer in net.layers if isinstance(layer, es.NeuronSpec)]
    assert len(pops) == 3 and not net.has_readout
    for pop in pops:
        assert pop.multi_spike and pop.compare == ">=" and pop.reset == "subtract"
        assert np.all(pop.v_min == -pop.threshold)                  # IAFSqueeze(min_v_mem=-v_threshold)
    assert all(l.bias is None or not np.any(l.bias) for l in net.layers if l.synaptic)   # sinabs exports zeros
    # the zero biases are no current: the async engine runs the file with no step at all
    plain = es.load(exported["pool_sum"], format="nir", reset="subtract")
    events = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    events["t"] = [10, 20, 30]
    es.simulate(plain, events, engine="async")


@pytest.mark.parametrize("case", CASES)
def test_spike_for_spike_with_sinabs(case, exported, recordings):
    net = es.load(exported[case], format="nir", convention="sinabs")
    run = SinabsRun(exported[case])
    pops = [layer.name for layer in net.layers if isinstance(layer, es.NeuronSpec)]
    totals = dict.fromkeys(pops, 0)
    multi = 0
    agree = 0
    for events, label, steps, frames in recordings:
        theirs = run(frames)
        assert sorted(theirs) == sorted(pops)
        res = es.simulate(net, events, engine="stepped", dt_us=DT_US, steps=steps, record="spikes")
        for name in pops:
            ours = res.rasters[name]
            np.testing.assert_array_equal(ours, theirs[name].reshape(ours.shape), err_msg=f"{case} layer {name}")
            totals[name] += int(ours.sum())
            multi += int((ours > 1).sum())
        counts = theirs[pops[-1]].reshape(steps, -1).sum(axis=0)
        want = int(np.argmax(counts)) if counts.max() > 0 else -1
        assert res.prediction == want
        agree += int(want == label)
    assert all(v > 0 for v in totals.values()), totals
    assert multi > 0                 # MultiSpike was exercised: several spikes in one step
    if case != "conv_pruned":
        # trained with a summing readout at 10 ms bins; still far above chance (10 %) when spiking
        assert agree >= 0.5 * N_RECORDINGS, f"{case}: {agree}/{N_RECORDINGS} correct by output spike counts"


def test_async_batch_equals_sinabs(exported, recordings):
    net = es.load(exported["pool_sum"], format="nir", convention="sinabs")
    run = SinabsRun(exported["pool_sum"])
    for events, _, steps, frames in recordings[:5]:
        theirs = run(frames)
        res = es.simulate(net, events, engine="async", simultaneous="batch", dt_us=DT_US,
                          t_stop_us=steps * DT_US, record="spikes")
        for name, ours in res.rasters.items():
            np.testing.assert_array_equal(ours, theirs[name].reshape(ours.shape), err_msg=name)


def test_fast_path_on_the_exported_file(exported, recordings, monkeypatch):
    """sinabs's own export of a network ending in spikes, loaded without sinabs's floor (continuous
    time refuses it), on real recordings in continuous time: the compiled fast path equals the
    general path spike for spike (its output layer has no paths: those spikes are never queued)."""
    net = es.load(exported["conv"], format="nir", reset="subtract")
    out = net.layers[-1].name
    total = 0
    for events, _, steps, _ in recordings[:3]:
        runs = {}
        for mode in ("1", "0"):
            monkeypatch.setenv("EVENTSIM_FASTPATH", mode)
            runs[mode] = es.simulate(net, events, engine="async", dt_us=DT_US, t_stop_us=steps * DT_US,
                                     record=("spikes", "spike_times"))
        fast, general = runs["1"], runs["0"]
        assert fast.info["path"] == "fast" and general.info["path"] == "general"
        for attr in ("times_us", "spikes_per_row", "synops_per_row", "logits"):
            np.testing.assert_array_equal(getattr(fast, attr), getattr(general, attr), err_msg=attr)
        for name, rec in general.info["spike_times"].items():
            np.testing.assert_array_equal(fast.info["spike_times"][name], rec, err_msg=name)
        total += int(fast.spikes_per_layer[out])
    assert total > 0


def test_floor_and_multi_spike_matter(exported, recordings):
    """Without sinabs's floor or MultiSpike the spikes differ: both options are exercised."""
    net = es.load(exported["pool_sum"], format="nir", convention="sinabs")
    no_floor = es.Network(net.input_shape, [replace(l, v_min=None) if isinstance(l, es.NeuronSpec) else l
                                            for l in net.layers])
    single = es.Network(net.input_shape, [replace(l, multi_spike=False) if isinstance(l, es.NeuronSpec) else l
                                          for l in net.layers])
    events, _, steps, _ = recordings[0]
    ref = es.simulate(net, events, dt_us=DT_US, steps=steps, record="spikes").rasters
    for variant in (no_floor, single):
        other = es.simulate(variant, events, dt_us=DT_US, steps=steps, record="spikes").rasters
        assert any(not np.array_equal(ref[k], other[k]) for k in ref)


def test_continuous_time_refuses_the_floor(exported):
    net = es.load(exported["pool_sum"], format="nir", convention="sinabs")
    events = np.zeros(1, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    with pytest.raises(ValueError, match="v_min.*simultaneous='batch'"):
        es.simulate(net, events, engine="async", dt_us=DT_US)
