"""Round trips eventsim → NIR → eventsim (property-style, Hypothesis).

* With eventsim's metadata the network comes back *equal* (every field of every layer), for
  every supported layer type and every convention.
* Through NIR's standard fields alone (metadata ignored, as another tool would see the file)
  the network comes back with the same parameters up to float rounding and, for networks NIR can
  express, gives identical spikes and readout in the stepped engine.
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.network import Add, IF, LIF, NeuronSpec

nir = pytest.importorskip("nir")

from eventsim.nir import from_nir_graph, load_nir, save_nir, to_nir_graph  # noqa: E402
from eventsim.nir.exporter import NIRExportWarning  # noqa: E402

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CONVENTIONS = [("exact", 1000.0), ("euler", 500.0), ("snntorch", None), ("sinabs", 1000.0)]


# ----------------------------------------------------------------------------- network strategy


@st.composite
def neurons(draw, rng, channels: int, nir_only: bool, reset: str):
    """An IF or LIF spec; with ``nir_only`` only what NIR's standard fields express."""
    per_channel = draw(st.booleans())
    theta = rng.uniform(0.5, 1.5, channels) if per_channel else float(rng.uniform(0.5, 1.5))
    kw = dict(threshold=theta, reset=reset)
    if not nir_only:
        kw.update(compare=draw(st.sampled_from([">", ">="])),
                  order=draw(st.sampled_from(["integrate-fire", "fire-integrate"])),
                  v_init=draw(st.sampled_from([0.0, float(rng.uniform(0, 0.5))])),
                  refractory_us=draw(st.sampled_from([0.0, 2000.0])))
        if draw(st.booleans()):
            kw["step_bias"] = rng.normal(0, 0.1, (20, channels))
        if draw(st.booleans()):
            kw["step_gain"] = rng.uniform(0.5, 1.5, (20, 1))
    kw["spike_amplitude"] = draw(st.sampled_from([1.0, 0.5, "threshold"]))
    kind = draw(st.sampled_from(["IF", "LIF-leak", "LIF-tau"]))
    if kind == "IF":
        return IF(**kw)
    if kind == "LIF-tau":
        return LIF(tau_s=float(rng.uniform(0.002, 0.05)), **kw)
    leak = rng.uniform(0.5, 0.99, channels) if draw(st.booleans()) else float(rng.uniform(0.5, 0.99))
    return LIF(leak=leak, **kw)


@st.composite
def networks(draw, nir_only: bool = False):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    reset = draw(st.sampled_from(["zero", "subtract"]))
    layers: list = []
    neuron = lambda c: draw(neurons(rng, c, nir_only, reset))  # noqa: E731
    delay = lambda: 0.0 if nir_only else draw(st.sampled_from([0.0, 0.0, 1500.0]))  # noqa: E731
    if draw(st.booleans()):
        c, hw = draw(st.integers(1, 2)), draw(st.integers(4, 6))
        shape = (c, hw, hw)
        for _ in range(draw(st.integers(1, 2))):
            out = draw(st.sampled_from([2, 4]))
            groups = draw(st.sampled_from([1, c])) if out % c == 0 else 1
            k = draw(st.sampled_from([1, 3]))
            bias = rng.normal(0, 0.2, out) if draw(st.booleans()) else None
            layers += [es.Conv2d(rng.normal(0, 0.8, (out, c // groups, k, k)), bias, padding=k // 2,
                                 stride=draw(st.sampled_from([1, 1, 2])), groups=groups,
                                 delay_us=delay()), neuron(out)]
            c = out
            if draw(st.booleans()):   # residual block: conv keeps the shape, Add the block input
                src = len(layers) - 1
                layers += [es.Conv2d(rng.normal(0, 0.5, (c, c, 3, 3)), padding=1), Add(source=src),
                           neuron(c)]
        if draw(st.booleans()) and min(es.Network(shape, layers).output_shape[1:]) >= 2:
            pool = draw(st.sampled_from([es.SumPool2d, es.AvgPool2d]))
            layers.append(pool(2))
        layers.append(es.Flatten())
        n = None
    else:
        n = draw(st.integers(3, 8))
        shape = (n,)
    net = es.Network(shape, layers) if layers else None
    n = net.output_shape[0] if net else n
    for _ in range(draw(st.integers(1, 2))):
        out = draw(st.integers(2, 6))
        bias = rng.normal(0, 0.2, out) if draw(st.booleans()) else None
        layers += [es.Linear(rng.normal(0, 1.0, (out, n)), bias, delay_us=delay()), neuron(out)]
        n = out
        if draw(st.booleans()):
            src = len(layers) - 1
            layers += [es.Linear(rng.normal(0, 0.5, (n, n))), Add(source=src), neuron(n)]
    if draw(st.booleans()):
        bias = rng.normal(0, 0.2, 3) if draw(st.booleans()) else None
        mode = "sum" if nir_only else draw(st.sampled_from(["sum", "mean"]))
        layers += [es.Linear(rng.normal(0, 1.0, (3, n)), bias), es.Readout(mode=mode)]
    return es.Network(shape, layers)


def _save_load(net, path, **save_kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        save_nir(net, path, **save_kw)


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("conv", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
@SETTINGS
@given(net=networks())
def test_roundtrip_with_metadata_is_exact(net, conv, tmp_path):
    name, dt_us = conv
    path = tmp_path / "net.nir"
    _save_load(net, path, convention=name, dt_us=dt_us)
    back = es.load(path)          # convention and dt_us are read from the file
    assert back == net
    assert [l.name for l in back.layers] == [l.name for l in net.layers]
    assert back.shapes == net.shapes


@pytest.mark.parametrize("conv", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
@SETTINGS
@given(net=networks(nir_only=True))
def test_roundtrip_through_standard_nir_fields_gives_identical_spikes(net, conv, tmp_path):
    name, dt_us = conv
    path = tmp_path / "net.nir"
    _save_load(net, path, convention=name, dt_us=dt_us)
    reset = "subtract" if any(getattr(l, "reset", "") == "subtract" for l in net.layers) else "auto"
    back = load_nir(path, use_metadata=False, convention=name, dt_us=dt_us, reset=reset)
    if name == "sinabs":   # the file as sinabs's from_nir simulates it: MultiSpike, subtract, IF floor −θ
        net = es.Network(net.input_shape, [
            replace(l, multi_spike=True, compare=">=", reset="subtract",
                    v_min=-l.threshold if type(l) is es.IF else None) if isinstance(l, NeuronSpec) else l
            for l in net.layers])
    assert [type(l) for l in back.layers] == [type(l) for l in net.layers]
    assert back.shapes == net.shapes
    dt = dt_us or 100.0       # a per-step leak is tied to the step it was exported at
    for a, b in zip(net.layers, back.layers):
        if isinstance(a, NeuronSpec):
            assert np.allclose(b.threshold, a.threshold, rtol=1e-12)
            assert a.reset == b.reset
            assert np.allclose(b.leak_per_step(dt), a.leak_per_step(dt), rtol=1e-12)
    rng = np.random.default_rng(7)
    x = (rng.random((15,) + net.input_shape) < 0.4).astype(np.int64)
    ra = es.simulate(net, x, dt_us=dt, record="spikes")
    rb = es.simulate(back, x, dt_us=dt, record="spikes")
    for layer in net.layers:
        if isinstance(layer, NeuronSpec):
            np.testing.assert_array_equal(rb.rasters[layer.name], ra.rasters[layer.name])
    np.testing.assert_allclose(rb.logits, ra.logits, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(net=networks())
def test_in_memory_graph_roundtrip(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        graph = to_nir_graph(net, dt_us=1000.0)
    assert isinstance(graph, nir.NIRGraph)
    assert from_nir_graph(graph) == net


# ----------------------------------------------------------------------------- one case per node


def _neuron_net(neuron):
    return es.Network((3,), [es.Linear(np.eye(3)), neuron])


@pytest.mark.parametrize("net", [
    pytest.param(es.Network((2, 5, 5), [es.Conv2d(np.ones((3, 2, 3, 3)), np.arange(3.0), stride=2, padding=1)]), id="Conv2d"),
    pytest.param(es.Network((4, 5, 5), [es.Conv2d(np.ones((4, 2, 1, 1)), groups=2)]), id="Conv2d-groups"),
    pytest.param(es.Network((3,), [es.Linear(np.ones((2, 3)))]), id="Linear"),
    pytest.param(es.Network((3,), [es.Linear(np.ones((2, 3)), np.ones(2))]), id="Affine"),
    pytest.param(es.Network((3,), [es.Linear(np.ones((2, 3)), delay_us=250.0)]), id="Delay"),
    pytest.param(es.Network((1, 4, 4), [es.SumPool2d(2)]), id="SumPool2d"),
    pytest.param(es.Network((1, 5, 5), [es.AvgPool2d(3, stride=2, padding=1)]), id="AvgPool2d"),
    pytest.param(es.Network((2, 2, 2), [es.Flatten()]), id="Flatten"),
    pytest.param(_neuron_net(IF(threshold=0.7, reset="zero")), id="IF"),
    pytest.param(_neuron_net(LIF(tau_s=0.01, threshold=[1.0, 2.0, 3.0], reset="zero")), id="LIF-tau"),
    pytest.param(_neuron_net(LIF(leak=[0.9, 0.8, 0.7], reset="zero")), id="LIF-leak"),
    pytest.param(_neuron_net(LIF(leak=1.0, reset="zero")), id="LIF-no-leak"),
    pytest.param(_neuron_net(IF(spike_amplitude=2.5, reset="zero")), id="Scale-amplitude"),
    pytest.param(es.Network((3,), [es.Linear(np.eye(3)), IF(reset="zero"), es.Linear(np.eye(3)),
                                   Add(source=1), Add(source=-1), IF(reset="zero")]), id="Add"),
    pytest.param(es.Network((3,), [es.Linear(np.ones((2, 3)), np.ones(2)), es.Readout()]), id="I-readout"),
])
@pytest.mark.parametrize("conv", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
def test_each_node_roundtrips(net, conv, tmp_path):
    path = tmp_path / "n.nir"
    save_nir(net, path, convention=conv[0], dt_us=conv[1])
    assert es.load(path) == net
    if conv[0] == "exact":                       # NIR's fields alone give the same values
        back = load_nir(path, use_metadata=False, dt_us=1000.0)
        for a, b in zip(net.layers, back.layers):
            no_leak = isinstance(a, LIF) and np.all(a.leak_per_step(1000.0) == 1.0)
            assert type(b) is (IF if no_leak else type(a))
            for attr in ("weight", "threshold", "kernel_size", "stride", "padding", "delay_us"):
                if hasattr(a, attr):
                    np.testing.assert_allclose(np.asarray(getattr(b, attr), float),
                                               np.asarray(getattr(a, attr), float), rtol=1e-12)


def test_export_names_the_properties_nir_cannot_hold(tmp_path):
    net = _neuron_net(IF(threshold=1.0, reset="subtract", v_init=0.5, compare=">="))
    with pytest.warns(NIRExportWarning, match=r"1\.IF: reset='subtract'.*v_init=.*compare='>='"):
        save_nir(net, tmp_path / "a.nir")
    with pytest.raises(ValueError, match="strict=True.*1.IF: reset='subtract'"):
        save_nir(net, tmp_path / "b.nir", strict=True)
    assert not (tmp_path / "b.nir").exists()
    assert es.load(tmp_path / "a.nir") == net
