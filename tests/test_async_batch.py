"""``engine="async", simultaneous="batch"`` reproduces the stepped engine spike for spike.

The stepped engine (the twin of the PyTorch reference modules) is the independent reference here:
same spike counts per layer per step, same rasters, same synops and MACs, same membranes and
logits (float tolerance), over every neuron option, conv/pool/Add topology, input kind, random
networks (Hypothesis) and the four imported seed checkpoints.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es

from async_reference import random_events, warm_async  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
DT = 1000.0


def assert_same(net, inputs, *, membranes=True, **options):
    """Stepped vs async batch on ``inputs``: every counter, raster and membrane."""
    record = ("spikes", "membrane") if membranes else "spikes"
    a = es.simulate(net, inputs, engine="stepped", dt_us=DT, record=record, **options)
    b = es.simulate(net, inputs, engine="async", dt_us=DT, simultaneous="batch", record=record, **options)
    np.testing.assert_array_equal(b.times_us, a.times_us)
    np.testing.assert_array_equal(b.spikes_per_row, a.spikes_per_row)
    np.testing.assert_array_equal(b.synops_per_row, a.synops_per_row)
    np.testing.assert_array_equal(b.macs_per_row, a.macs_per_row)
    for name, raster in a.rasters.items():
        np.testing.assert_array_equal(b.rasters[name], raster, err_msg=name)
    for name, mem in a.membranes.items():
        np.testing.assert_allclose(b.membranes[name], mem, rtol=1e-9, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(b.logits, a.logits, rtol=1e-9, atol=1e-9)
    assert b.at(t_us=b.times_us[len(b.times_us) // 2]).spikes == a.at(t_us=a.times_us[len(a.times_us) // 2]).spikes
    return a


def _events(n=600, shape=(2, 6, 6), t_max=12_000, seed=0):
    return random_events(n, shape, t_max, np.random.default_rng(seed))


def _two_layer(make_a, make_b, rng, bias=False, scale=1.0):
    return es.Network((2, 6, 6), [
        es.Conv2d(rng.normal(0, 0.7 * scale, (4, 2, 3, 3)), bias=rng.normal(0, 0.2, 4) if bias else None, padding=1),
        make_a(4), es.SumPool2d(2), es.Flatten(), es.Linear(rng.normal(0, 0.5 * scale, (5, 36))), make_b(5),
        es.Linear(rng.normal(0, 1, (3, 5))), es.Readout()])


T_STEPS = 12
NEURONS = {
    "IF": lambda c: es.IF(threshold=1.0),
    "IF>=": lambda c: es.IF(threshold=1.0, compare=">="),
    "IF-zero": lambda c: es.IF(threshold=0.8, reset="zero"),
    "IF-fire-first": lambda c: es.IF(threshold=1.0, order="fire-integrate"),
    "IF-fire-first-zero": lambda c: es.IF(threshold=1.0, order="fire-integrate", reset="zero"),
    "LIF": lambda c: es.LIF(leak=0.8, threshold=1.0),
    "LIF-tau": lambda c: es.LIF(tau_s=0.004, threshold=0.9),
    "LIF-per-channel": lambda c: es.LIF(leak=np.linspace(0.5, 1.0, c), threshold=np.linspace(0.6, 1.4, c)),
    "LIF-zero-fire-first": lambda c: es.LIF(leak=0.9, reset="zero", order="fire-integrate", compare=">="),
    "v_init-half": lambda c: es.IF(threshold=np.linspace(0.5, 1.5, c), v_init=np.linspace(0.25, 0.75, c)),
    "v_init-above": lambda c: es.LIF(leak=0.7, threshold=1.0, v_init=np.linspace(0.5, 2.6, c)),
    "amplitude-threshold": lambda c: es.IF(threshold=np.linspace(0.5, 2.0, c), spike_amplitude="threshold"),
    "amplitude-2": lambda c: es.IF(threshold=1.0, spike_amplitude=2.0),
    "bntt-gain-bias": lambda c: es.LIF(leak=0.95, threshold=1.0,
                                       step_gain=np.linspace(0.5, 1.5, T_STEPS * c).reshape(T_STEPS, c),
                                       step_bias=np.linspace(-0.2, 0.3, T_STEPS * c).reshape(T_STEPS, c)),
    "bntt-gain-only": lambda c: es.IF(threshold=1.0, step_gain=np.linspace(2.0, 0.5, T_STEPS)),
}


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("kind", sorted(NEURONS))
def test_neuron_options_match_stepped(kind, bias):
    rng = np.random.default_rng(hash(kind) % 2**32)
    net = _two_layer(NEURONS[kind], NEURONS[kind], rng, bias=bias, scale=1.5)
    a = assert_same(net, _events(n=900, t_max=T_STEPS * 1000 - 1), steps=T_STEPS)
    assert a.spikes_per_layer["1." + net.layers[1].kind] > 20, "the test network should be active"


def test_residual_and_fire_first_spike_without_input():
    """A subtract reset leaving v > θ fires again at the next steps with no input (and
    fire-then-integrate fires from the previous membrane): wake-ups, not input, drive them."""
    for spec in (es.IF(threshold=1.0), es.IF(threshold=1.0, order="fire-integrate"),
                 es.LIF(leak=0.9, threshold=1.0)):
        net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[4.5]])), spec,
                                     es.Linear(np.array([[1.0]])), es.Readout()])
        ev = random_events(1, (1, 1, 1), 1, np.random.default_rng(0))   # one event at t = 0
        a = assert_same(net, ev, steps=8)
        assert a.spikes_per_row[:, 2].sum() >= 3 and a.spikes_per_row[1:, 2].sum() >= 2


CONV_CASES = {
    "stride-pad-groups": lambda r: [es.Conv2d(r.normal(0, .8, (4, 1, 3, 3)), stride=2, padding=1, groups=2),
                                    es.IF(threshold=0.7)],
    "grouped-rect-kernel": lambda r: [es.Conv2d(r.normal(0, .8, (6, 1, 2, 3)), stride=(1, 2), padding=(0, 1),
                                                groups=2), es.LIF(leak=0.9, threshold=0.7)],
    "maxpool-on-input": lambda r: [es.MaxPool2d(2), es.Conv2d(r.normal(0, .8, (4, 2, 3, 3)), padding=1),
                                   es.IF(threshold=0.7)],
    "overlapping-avgpool-on-spikes": lambda r: [es.Conv2d(r.normal(0, .9, (4, 2, 3, 3)), padding=1),
                                                es.IF(threshold=0.6), es.AvgPool2d(3, stride=2, padding=1),
                                                es.Conv2d(r.normal(0, 1.5, (4, 4, 2, 2))), es.IF(threshold=0.5)],
    "overlapping-sumpool": lambda r: [es.Conv2d(r.normal(0, .9, (3, 2, 3, 3)), padding=1), es.IF(threshold=0.6),
                                      es.SumPool2d(2, stride=1), es.Conv2d(r.normal(0, .5, (4, 3, 3, 3))),
                                      es.IF(threshold=0.8)],
    "maxpool-on-spikes": lambda r: [es.Conv2d(r.normal(0, .9, (4, 2, 3, 3)), padding=1),
                                    es.IF(threshold=0.6, spike_amplitude="threshold"), es.MaxPool2d(2),
                                    es.Conv2d(r.normal(0, 1.0, (4, 4, 3, 3)), padding=1), es.IF(threshold=0.5)],
    "pool-of-currents": lambda r: [es.Conv2d(r.normal(0, .9, (4, 2, 3, 3)), bias=r.normal(0, .1, 4), padding=1),
                                   es.AvgPool2d(2), es.LIF(leak=0.9, threshold=0.4)],
    "conv-into-flat-population": lambda r: [es.Conv2d(r.normal(0, .9, (3, 2, 3, 3))), es.Flatten(),
                                            es.IF(threshold=0.7)],
    "residual-add": lambda r: [es.Conv2d(r.normal(0, .9, (4, 2, 3, 3)), padding=1), es.IF(threshold=0.6),
                               es.Conv2d(r.normal(0, .6, (4, 4, 3, 3)), bias=r.normal(0, .1, 4), padding=1),
                               es.Add(source=1), es.IF(threshold=0.9)],
    "add-input-and-spikes": lambda r: [es.Conv2d(r.normal(0, .9, (2, 2, 3, 3)), padding=1), es.IF(threshold=0.6),
                                       es.Conv2d(r.normal(0, .6, (2, 2, 3, 3)), padding=1), es.Add(source=-1),
                                       es.IF(threshold=0.9), es.Add(source=1), es.IF(threshold=1.2)],
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_topologies_match_stepped(case):
    rng = np.random.default_rng(sum(map(ord, case)))
    body = CONV_CASES[case](rng)
    probe = es.Network((2, 6, 6), body)
    n_flat = int(np.prod(probe.output_shape))
    head = ([] if len(probe.output_shape) == 1 else [es.Flatten()]) + [
        es.Linear(rng.normal(0, 1, (3, n_flat))), es.Readout(mode="mean")]
    net = es.Network((2, 6, 6), body + head)
    a = assert_same(net, _events(n=700, seed=3), steps=10)
    assert a.spikes > 30
    for convention in ("all", "nonzero"):
        w = rng.normal(0, 1, (3, n_flat))
        w[:, ::2] = 0.0
        sparse = es.Network((2, 6, 6), body + head[:-2] + [es.Linear(w), es.Readout()])
        assert_same(sparse, _events(n=300, seed=4), steps=6, synop_convention=convention, membranes=False)


def test_analog_inputs_match_stepped():
    """DIET/QCFS-style analog input (held, or one frame per step), dense MACs per step."""
    rng = np.random.default_rng(5)
    net = es.Network((2, 6, 6), [
        es.Conv2d(rng.normal(0, .5, (4, 2, 3, 3)), bias=rng.normal(0, .1, 4), padding=1), es.IF(v_init=0.5),
        es.AvgPool2d(2), es.Flatten(), es.Linear(rng.normal(0, .5, (5, 36)), bias=rng.normal(0, .1, 5)),
        es.LIF(leak=0.9, threshold=0.7), es.Linear(rng.normal(0, 1, (3, 5)), bias=rng.normal(0, .1, 3)),
        es.Readout(mode="mean")])
    image = rng.random((2, 6, 6))
    a = assert_same(net, image, steps=15, input_kind="analog")
    assert a.macs_per_row[:, 0].min() > 0 and a.spikes > 50
    frames = rng.random((9, 2, 6, 6))
    frames[3] = frames[2]                                  # an unchanged frame is skipped
    assert_same(net, frames, input_kind="analog")


def test_count_frames_match_stepped():
    """AOI-style frames of event counts per step."""
    rng = np.random.default_rng(6)
    net = _two_layer(lambda c: es.IF(threshold=1.0), lambda c: es.LIF(leak=0.9), rng)
    frames = rng.poisson(0.4, (10, 2, 6, 6))
    a = assert_same(net, frames, input_kind="events")
    assert a.synops > 0 and a.spikes > 10


def test_batch_delay_is_whole_steps():
    """A 2-step synaptic delay: the second layer receives (and counts synops) two steps later."""
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[2.0]])), es.IF(),
                                 es.Linear(np.array([[2.0]]), delay_us=2 * DT), es.IF(), es.Linear(np.ones((1, 1))),
                                 es.Readout()])
    ev = random_events(1, (1, 1, 1), 1, np.random.default_rng(0))
    res = es.simulate(net, ev, engine="async", dt_us=DT, simultaneous="batch", steps=6)
    assert res.spikes_per_row[:, 2].tolist() == [1, 0, 0, 0, 0, 0]
    assert res.synops_per_row[:, 3].tolist() == [0, 0, 1, 0, 0, 0]
    assert res.spikes_per_row[:, 4].tolist() == [0, 0, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="not a whole number of steps"):
        es.simulate(es.Network(net.input_shape, [*net.layers[:3], es.Linear(np.ones((1, 1)), delay_us=1500),
                                                 *net.layers[4:]]), ev, engine="async", dt_us=DT, simultaneous="batch")


def test_batch_refractory_holds_the_membrane():
    """Refractory 2.5 steps: after a spike at step k the neuron ignores steps k+1, k+2 and resumes
    from its held membrane at k+3 (hand-computed: input 0.6 per step, θ = 1)."""
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.6]])), es.IF(refractory_us=2.5 * DT),
                                 es.Linear(np.ones((1, 1))), es.Readout()])
    res = es.simulate(net, np.ones((1, 1, 1)), engine="async", dt_us=DT, simultaneous="batch", steps=10,
                      input_kind="analog", record="membrane")
    # v: .6, 1.2→spike .2, hold, hold, .8, 1.4→spike .4, hold, hold, 1.0, 1.6→spike .6
    assert res.spikes_per_row[:, 2].tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    np.testing.assert_allclose(res.membranes["2.IF"][:, 0], [.6, .2, .2, .2, .8, .4, .4, .4, 1.0, .6], atol=1e-12)


@st.composite
def random_network(draw):
    """Small random conv/linear networks over every neuron option the stepped engine has."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def neuron(c):
        kw = dict(threshold=draw(st.sampled_from([0.5, 1.0, np.linspace(0.5, 1.5, c)])),
                  compare=draw(st.sampled_from([">", ">="])), reset=draw(st.sampled_from(["subtract", "zero"])),
                  order=draw(st.sampled_from(["integrate-fire", "fire-integrate"])),
                  v_init=draw(st.sampled_from([0.0, 0.5, 1.2])),
                  spike_amplitude=draw(st.sampled_from([1.0, "threshold"])))
        if draw(st.booleans()):
            return es.LIF(leak=draw(st.sampled_from([0.5, 0.9, np.linspace(0.6, 1.0, c)])), **kw)
        return es.IF(**kw)

    c1 = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    layers = [es.Conv2d(rng.normal(0, 1, (c1, 2, k, k)), stride=draw(st.integers(1, 2)),
                        padding=draw(st.integers(0, k // 2)),
                        bias=rng.normal(0, .2, c1) if draw(st.booleans()) else None), neuron(c1)]
    pool = draw(st.sampled_from([None, es.SumPool2d, es.AvgPool2d, es.MaxPool2d]))
    shape = es.Network((2, 5, 5), layers).output_shape
    if pool is not None and min(shape[1:]) >= 2:
        layers.append(pool(2))
    shape = es.Network((2, 5, 5), layers).output_shape
    layers += [es.Flatten(), es.Linear(rng.normal(0, 1, (4, int(np.prod(shape)))),
                                       bias=rng.normal(0, .2, 4) if draw(st.booleans()) else None), neuron(4),
               es.Linear(rng.normal(0, 1, (3, 4))), es.Readout(mode=draw(st.sampled_from(["sum", "mean"])))]
    return es.Network((2, 5, 5), layers)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=random_network(), seed=st.integers(0, 1000), n=st.integers(0, 300))
def test_random_networks_match_stepped(net, seed, n):
    assert_same(net, random_events(n, (2, 5, 5), 8000, np.random.default_rng(seed)), steps=8)


SEEDS = ROOT / "models" / "seeds" / "checkpoints"
SEED_CASES = {   # file, load options, input kind, steps (as in tests/test_seed_*.py)
    "diet": ("diet_nmnist.pth", dict(format="diet", cfg=[8, "A", 16, "A"], input_shape=(2, 34, 34)), "analog"),
    "qcfs": ("qcfs_nmnist.pth", dict(format="qcfs", input_shape=(2, 34, 34), pool="avg"), "analog"),
    "aoi": ("aoi_nmnist.pth", dict(format="aoi", input_shape=(2, 34, 34), pool="avg"), "events"),
    "bntt": ("bntt_nmnist_timestep10_leak0.95_bestmodel.pth.tar",
             dict(format="bntt", pool_after=(1, 2), input_shape=(2, 34, 34)), "events"),
}


@pytest.mark.realdata
@pytest.mark.parametrize("seed", sorted(SEED_CASES))
def test_seed_models_match_stepped(seed, nmnist_dir):
    name, options, kind = SEED_CASES[seed]
    assert (SEEDS / name).is_file(), f"shipped seed checkpoint {name} is missing (models/seeds/{seed}.py builds it)"
    net = es.load(SEEDS / name, **options)
    steps = int(net.metadata.get("timesteps") or 10)
    files = sorted((nmnist_dir / "test").glob("*.bs2"))[:2]
    for path in files:
        events = es.read_events(path)
        if kind == "analog":   # DIET/QCFS: the count image, fed every step
            x = np.zeros((2, 34, 34))
            np.add.at(x, (events["p"].astype(int), events["y"].astype(int), events["x"].astype(int)), 1.0)
            x /= max(x.max(), 1.0)
            a = assert_same(net, x, steps=steps, input_kind="analog", membranes=False)
        else:                  # AOI/BNTT: events binned into the steps
            dt = (int(events["t"][-1]) + 1) / steps
            a = es.simulate(net, events, dt_us=dt, steps=steps, record="spikes")
            b = es.simulate(net, events, engine="async", simultaneous="batch", dt_us=dt, steps=steps,
                            record="spikes")
            for layer_name, raster in a.rasters.items():
                np.testing.assert_array_equal(b.rasters[layer_name], raster, err_msg=layer_name)
            np.testing.assert_array_equal(b.synops_per_row, a.synops_per_row)
            np.testing.assert_allclose(b.logits, a.logits, rtol=1e-9, atol=1e-9)
        assert a.spikes > 0
