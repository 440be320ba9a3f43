"""NIR in continuous time and NIR round trips of the four seed models.

* A LIF read from NIR with the ``exact`` convention is ``LIF(tau_s=τ)``: the asynchronous engine
  runs it with no time step at all, and its spike times equal the closed-form solution of NIR's
  ODE ``τ·dv/dt = −v + R·Σ w·δ(t − t_k)`` (jumps ``R·w/τ``, exponential decay in between).
* The DIET-SNN, QCFS, AOI and BNTT seed checkpoints survive eventsim → NIR → eventsim: equal with
  eventsim's metadata and, where NIR's standard fields suffice, identical spikes without it.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import eventsim as es

nir = pytest.importorskip("nir")

from eventsim.nir import from_nir_graph, load_nir, save_nir  # noqa: E402
from eventsim.nir.exporter import NIRExportWarning  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "models" / "seeds" / "checkpoints"


def _events(times_us):
    ev = np.zeros(len(times_us), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"] = times_us
    return ev


@pytest.mark.parametrize("tau,r,w,theta", [(0.005, 0.005, 0.6, 1.0), (0.002, 0.004, 0.3, 1.1)])
def test_exact_lif_runs_in_continuous_time(tau, r, w, theta):
    f = lambda x: np.array([float(x)])  # noqa: E731
    g = nir.NIRGraph(nodes={
        "in": nir.Input(np.array([1, 1, 1])), "flat": nir.Flatten({"input": np.array([1, 1, 1])}, 0, -1),
        "fc": nir.Linear(np.array([[w]])),
        "lif": nir.LIF(tau=f(tau), r=f(r), v_leak=f(0), v_threshold=f(theta), v_reset=f(0)),
        "out": nir.Output(np.array([1]))},
        edges=[("in", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False)
    net = from_nir_graph(g)
    assert net.layers[2].tau_s == tau                  # continuous form, no step length anywhere
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.integers(50, 4000, 300))     # irregular µs, no grid
    res = es.simulate(net, _events(times), engine="async", record="spike_times")
    v, last, expected = 0.0, 0, []
    for t in times:                                    # closed form between impulses
        v = v * np.exp(-(t - last) * 1e-6 / tau) + r / tau * w
        last = t
        if v > theta:
            expected.append(t)
            v = 0.0                                    # v_reset
    got = res.info["spike_times"]["lif"]["t_us"]
    assert len(expected) > 20
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


SEED_CASES = {
    "diet": ("diet_nmnist.pth", dict(format="diet", cfg=[8, "A", 16, "A"], input_shape=(2, 34, 34))),
    "qcfs": ("qcfs_nmnist.pth", dict(format="qcfs", input_shape=(2, 34, 34), pool="avg")),
    "aoi": ("aoi_nmnist.pth", dict(format="aoi", input_shape=(2, 34, 34), pool="avg")),
    "bntt": ("bntt_nmnist_timestep10_leak0.95_bestmodel.pth.tar",
             dict(format="bntt", pool_after=(1, 2), input_shape=(2, 34, 34))),
}


def _nir_expressible(net) -> bool:
    return all(np.all(l.v_init == 0) and l.compare == ">" and l.order == "integrate-fire"
               and l.step_gain is None and l.step_bias is None and l.refractory_us == 0
               for l in net.layers if isinstance(l, es.NeuronSpec))


@pytest.mark.parametrize("seed", sorted(SEED_CASES))
def test_seed_models_roundtrip(tmp_path, seed):
    name, options = SEED_CASES[seed]
    assert (SEEDS / name).is_file(), f"shipped seed checkpoint {name} is missing (models/seeds/{seed}.py builds it)"
    net = es.load(SEEDS / name, **options)
    path = tmp_path / f"{seed}.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        save_nir(net, path, dt_us=1000.0)
    back = es.load(path)
    assert back == net
    x = (np.random.default_rng(0).random((4,) + net.input_shape) < 0.2).astype(np.int64)
    ra = es.simulate(net, x, dt_us=1000.0, record="spikes")
    rb = es.simulate(back, x, dt_us=1000.0, record="spikes")
    for layer in net.layers:
        if isinstance(layer, es.NeuronSpec):
            np.testing.assert_array_equal(rb.rasters[layer.name], ra.rasters[layer.name])
    np.testing.assert_array_equal(rb.logits, ra.logits)
    if _nir_expressible(net):           # the standard NIR fields alone carry the model
        resets = {l.reset for l in net.layers if isinstance(l, es.NeuronSpec)}
        plain = load_nir(path, use_metadata=False, dt_us=1000.0,
                         reset="subtract" if resets == {"subtract"} else "auto")
        rc = es.simulate(plain, x, dt_us=1000.0, record="spikes")
        for layer in net.layers:
            if isinstance(layer, es.NeuronSpec):
                np.testing.assert_array_equal(rc.rasters[layer.name], ra.rasters[layer.name])
        np.testing.assert_allclose(rc.logits, ra.logits, rtol=1e-9, atol=1e-9)
