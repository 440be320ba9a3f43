"""Output decoding (eventsim.decoding): spike counts, first spike, membrane, readout.

Checked against hand-computed cases and a plain NumPy time-stepped reference of an IF network,
in both engines, at every row and snapshot (``.at``), and through the cutoff policies.
"""
from __future__ import annotations

import numpy as np
import pytest

import eventsim as es
from eventsim.decoding import decode_counts, decode_first_spike, decode_membrane, resolve_decode


def _events(rows):
    ev = np.zeros(len(rows), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    for i, (t, x, y, p) in enumerate(rows):
        ev[i] = (t, x, y, p)
    return ev


def _random_events(rng, n, size, t_max):
    ev = np.zeros(n, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"] = np.sort(rng.integers(0, t_max, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n)
    return ev


def _spiking_net(rng, size=6, n_out=4):
    return es.Network((2, size, size), [
        es.Conv2d(rng.uniform(-0.1, 0.5, (3, 2, 3, 3)), padding=1), es.IF(threshold=1.0),
        es.SumPool2d(2), es.Flatten(),
        es.Linear(rng.uniform(-0.2, 0.6, (n_out, 3 * (size // 2) ** 2))), es.IF(threshold=2.0)])


def _numpy_reference(net, ev, dt_us, steps):
    """Dense time-stepped forward in plain NumPy: per step output spike counts and membrane."""
    conv, _, pool, _, fc, out_if = net.layers
    c, h, w = net.input_shape
    frames = np.zeros((steps, c, h, w))
    for t, x, y, p in zip(ev["t"], ev["x"], ev["y"], ev["p"]):
        frames[int(t // dt_us), p, y, x] += 1
    v1 = np.zeros(net.shapes[1])
    v2 = np.zeros(net.shapes[-1])
    counts, mem = [], []
    wt = conv.weight
    for k in range(steps):
        x = np.pad(frames[k], ((0, 0), (1, 1), (1, 1)))
        cur = np.zeros(v1.shape)
        for o in range(wt.shape[0]):
            for i in range(h):
                for j in range(w):
                    cur[o, i, j] = np.sum(wt[o] * x[:, i:i + 3, j:j + 3])
        v1 += cur
        s1 = v1 > conv_theta(net.layers[1])
        v1[s1] -= 1.0
        pooled = s1.reshape(3, h // 2, 2, w // 2, 2).sum(axis=(2, 4)).astype(float)
        v2 += fc.weight @ pooled.ravel()
        s2 = v2 > 2.0
        v2[s2] -= 2.0
        counts.append(s2.astype(int))
        mem.append(v2.copy())
    return np.array(counts), np.array(mem)


def conv_theta(spec):
    return float(spec.threshold)


def test_hand_computed_rules():
    counts = np.array([[0, 0, 0], [0, 1, 1], [2, 1, 1], [2, 3, 3]])
    assert decode_counts(counts).tolist() == [-1, 1, 0, 1]          # ties: lowest index; -1 before any
    first = np.array([3.0, 2.0, 2.0])                                # 1 and 2 tie on time
    assert decode_first_spike(counts, first).tolist() == [-1, 1, 1, 1]
    counts2 = np.array([[0, 0, 1], [0, 0, 2], [0, 1, 2]])
    assert decode_first_spike(counts2, np.array([np.inf, 5.0, 5.0])).tolist() == [2, 2, 2]  # tie -> count
    assert decode_membrane(np.array([[0.5, 0.5, -1.0], [0.1, 0.2, 0.3]])).tolist() == [0, 2]


def test_hand_computed_network_both_engines():
    # two outputs fed by one pixel: weights 0.6 and 0.3, IF θ = 1; one event per ms at t = 0..3 ms
    net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.6], [0.3]])), es.IF(threshold=1.0)])
    ev = _events([(t, 0, 0, 0) for t in (0, 1000, 2000, 3000)])
    # v0: 0.6, 1.2→s(0.2), 0.8, 1.4→s(0.4); v1: 0.3, 0.6, 0.9, 1.2→s
    for engine, kw in (("stepped", {}), ("async", {"simultaneous": "batch"})):
        res = es.simulate(net, ev, engine=engine, dt_us=1000, steps=4, **kw) if engine == "stepped" else \
            es.simulate(net, ev, engine=engine, dt_us=1000, t_stop_us=4000, **kw)
        assert res.logits.tolist() == [[0, 0], [1, 0], [1, 0], [2, 1]]
        assert res.predictions.tolist() == [-1, 0, 0, 0] and res.prediction == 0
        assert res.at(t_us=500).prediction == -1 and res.at(t_us=2500).prediction == 0
        fs = es.simulate(net, ev, engine=engine, dt_us=1000, decode="first-spike",
                         **({"steps": 4} if engine == "stepped" else {"t_stop_us": 4000, **kw}))
        assert fs.predictions.tolist() == [-1, 0, 0, 0]
        mem = es.simulate(net, ev, engine=engine, dt_us=1000, decode="membrane",
                          **({"steps": 4} if engine == "stepped" else {"t_stop_us": 4000, **kw}))
        np.testing.assert_allclose(mem.logits, [[0.6, 0.3], [0.2, 0.6], [0.8, 0.9], [0.4, 0.2]], atol=1e-12)
        assert mem.predictions.tolist() == [0, 1, 1, 0]


def test_continuous_first_spike_uses_exact_times():
    # output 1 crosses first (t = 1500 µs) though output 0 ends with more spikes
    net = es.Network((2, 1, 1), [es.Flatten(), es.Linear(np.array([[0.0, 1.0], [1.0, 0.0]])),
                                 es.IF(threshold=0.9)])
    ev = _events([(1500, 0, 0, 0), (2000, 0, 0, 1), (2500, 0, 0, 1), (3000, 0, 0, 1)])
    res = es.simulate(net, ev, engine="async", decode="first-spike", snapshot_times_us=[1000, 1500, 4000])
    assert res.logits.tolist() == [[0, 0], [0, 1], [3, 1]]
    assert res.predictions.tolist() == [-1, 1, 1]
    assert res.info["first_spike_us"].tolist() == [2000.0, 1500.0]
    counts = es.simulate(net, ev, engine="async", snapshot_times_us=[1000, 1500, 4000])
    assert counts.predictions.tolist() == [-1, 1, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    net = _spiking_net(rng)
    ev = _random_events(rng, 300, 6, 20_000)
    counts, mem = _numpy_reference(net, ev, 1000, 20)
    cum = np.cumsum(counts, axis=0)
    assert cum[-1].sum() > 5
    want_counts = decode_counts(cum)
    first_step = np.where(cum[-1] > 0, np.argmax(counts > 0, axis=0), np.inf)
    want_first = []
    for k in range(20):
        fired = np.flatnonzero(cum[k] > 0)
        if not fired.size:
            want_first.append(-1)
            continue
        early = fired[first_step[fired] == first_step[fired].min()]
        want_first.append(int(early[np.argmax(cum[k, early])]))
    for engine, kw in (("stepped", dict(steps=20)), ("async", dict(t_stop_us=20_000, simultaneous="batch"))):
        res = es.simulate(net, ev, engine=engine, dt_us=1000, **kw)
        np.testing.assert_array_equal(res.logits, cum)
        assert res.predictions.tolist() == want_counts.tolist()
        for k in (0, 5, 19):
            assert res.at(step=k + 1).prediction == want_counts[k]
            np.testing.assert_array_equal(res.at(step=k + 1).logits, cum[k])
        fs = es.simulate(net, ev, engine=engine, dt_us=1000, decode="first-spike", **kw)
        assert fs.predictions.tolist() == want_first
        mres = es.simulate(net, ev, engine=engine, dt_us=1000, decode="membrane", **kw)
        np.testing.assert_allclose(mres.logits, mem, atol=1e-9)
        assert mres.predictions.tolist() == np.argmax(mem, axis=1).tolist()


def test_async_counts_match_spike_times_at_synop_budgets():
    rng = np.random.default_rng(5)
    net = _spiking_net(rng)
    ev = _random_events(rng, 400, 6, 20_000)
    res = es.simulate(net, ev, engine="async", snapshot_synops=[200, 500, 1000], record="spike_times",
                      snapshot_times_us=[5000, 10_000, 20_000])
    times = res.spike_times[net.layers[-1].name]
    last = len(net.layers) - 1
    assert np.array_equal(res.logits.sum(axis=1), np.cumsum(res.spikes_per_row[:, last]))
    for k, kind in enumerate(res.row_kind):
        if kind == 0:   # a time row: every spike at or before it
            want = np.bincount(times["neuron"][times["t_us"] <= res.times_us[k]], minlength=4)
            np.testing.assert_array_equal(res.logits[k], want)
    assert "spike_times" in res.info     # asked for: kept


def test_decode_options_and_errors():
    rng = np.random.default_rng(0)
    spiking = _spiking_net(rng)
    with_readout = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.ones((2, 1))), es.Readout()])
    assert resolve_decode(spiking, "auto") == "counts"
    assert resolve_decode(with_readout, None) == "readout"
    with pytest.raises(ValueError, match="decode='readout' needs a Readout"):
        resolve_decode(spiking, "readout")
    with pytest.raises(ValueError, match="ends in .*Readout"):
        resolve_decode(with_readout, "counts")
    with pytest.raises(ValueError, match="choose one of"):
        es.simulate(spiking, np.zeros((1, 2, 6, 6)), dt_us=1000, decode="votes")
    plain = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.ones((2, 1)))])
    res = es.simulate(plain, np.ones((1, 1, 1)), steps=2, input_kind="analog")   # no output: as before
    assert res.logits.shape == (2, 0) and res.prediction == -1
    with pytest.raises(ValueError, match="reads the last layer's spikes"):
        es.simulate(plain, np.ones((1, 1, 1)), steps=2, input_kind="analog", decode="counts")
    res = es.simulate(spiking, _random_events(rng, 50, 6, 5000), engine="async", dt_us=1000)
    assert "spike_times" not in res.info and res.info["decode"] == "counts"   # recorded for decoding only


def test_cutoff_policies_on_counts():
    from eventsim.cutoff import Trace, make_policy
    logits = np.array([[0, 0, 0], [1, 0, 0], [3, 1, 0], [9, 1, 0]], float)
    trace = Trace(np.arange(1.0, 5.0), logits, np.arange(4), predictions=np.array([-1, 0, 0, 0]))
    assert make_policy("gap", beta=1.5).select(trace) == 2
    assert make_policy("confidence", epsilon=0.01).select(trace) == 3
    assert make_policy("first-spike").select(trace) == 1
    with pytest.raises(ValueError, match="decoded predictions"):
        make_policy("first-spike").select(Trace(np.arange(1.0, 5.0), logits, np.arange(4)))


@pytest.mark.parametrize("engine", ["stepped", "async"])
@pytest.mark.parametrize("decode", ["auto", "first-spike", "membrane"])
def test_evaluate_spiking_output(engine, decode, tmp_path):
    from eventsim.evaluate import evaluate
    rng = np.random.default_rng(3)
    net = _spiking_net(rng)
    data = [(_random_events(rng, 300, 6, 30_000), int(rng.integers(0, 4))) for _ in range(4)]
    ev = evaluate(net, data, engine=engine, dt_us=1000, decode=decode, cutoff="first-spike"
                  if decode != "membrane" else "none")
    assert ev.summary["decode"] == ("counts" if decode == "auto" else decode)
    for (events, label), rec in zip(data, ev.records):
        kw = dict(steps=30) if engine == "stepped" else dict(t_stop_us=30_000, snapshot_times_us=np.arange(1, 31) * 1000.0)
        res = es.simulate(net, events, engine=engine, dt_us=1000, decode=decode, **kw)
        assert rec["prediction_final"] == res.prediction
        if decode != "membrane":   # first-spike cut: the first row with an output spike
            k = int(np.argmax(res.predictions >= 0)) if np.any(res.predictions >= 0) else res.steps - 1
            assert rec["cutoff_row"] == k and rec["prediction"] == res.predictions[k]
    # the same with recordings split into windows (engine state carried across)
    split = evaluate(net, data, engine=engine, dt_us=1000, decode=decode, window_us=7000)
    assert [r["prediction_final"] for r in split.records] == [r["prediction_final"] for r in ev.records]
    ev.write(tmp_path, figures=False)
    import json
    assert json.loads((tmp_path / "results.json").read_text())["decode"] == ev.summary["decode"]


@pytest.mark.realdata
def test_cli_evaluates_a_network_that_ends_in_spikes(tmp_path, nmnist_dir, capsys):
    """``eventsim evaluate`` on the shipped N-MNIST net with its readout replaced by a spiking layer
    (once refused: "no Readout layer") decodes by output spike counts; the predictions written
    equal those of simulate(), and results.json names the decoding."""
    import json
    from pathlib import Path
    from eventsim.cli import main
    from eventsim.events import LocalNMNIST
    root = Path(__file__).resolve().parents[1]
    shipped = es.load(root / "models" / "nmnist" / "nmnist_if.npz")
    spiking = es.Network(shipped.input_shape, list(shipped.layers[:-1]) + [es.IF(threshold=1.0, multi_spike=True,
                                                                               v_min=-1.0, compare=">=")])
    path = tmp_path / "spiking.npz"
    es.save(spiking, path)
    assert es.load(path) == spiking                       # the sinabs options survive the native format
    out = tmp_path / "out"
    args = ["evaluate", "--model", str(path), "--data", str(nmnist_dir), "--limit", "3", "--dt-us", "10000",
            "--no-progress", "--no-figures", "--out", str(out), "--decode", "first-spike", "--cutoff", "first-spike"]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads((out / "results.json").read_text())
    assert summary["decode"] == "first-spike" and summary["cutoff"]["policy"] == "first-spike"
    rows = (out / "per_sample.csv").read_text().splitlines()[1:]
    data = LocalNMNIST(nmnist_dir, "test")
    for i, line in enumerate(rows):
        events, label = data[i]
        steps = len(np.arange(10_000, int(events["t"][-1]) + 10_001, 10_000))
        res = es.simulate(spiking, events, dt_us=10_000, steps=steps, decode="first-spike")
        fields = line.split(",")
        assert int(fields[4]) == res.prediction               # prediction_final
    assert summary["accuracy_at_end"] is not None


def test_resume_with_another_decoding_is_refused():
    rng = np.random.default_rng(4)
    net = _spiking_net(rng)
    ev = _random_events(rng, 200, 6, 10_000)
    state = es.simulate(net, ev[ev["t"] < 5000], engine="async", dt_us=1000, t_stop_us=10_000, pause_us=5000)
    with pytest.raises(ValueError, match="did not record what this decoding needs"):
        es.simulate(net, ev[ev["t"] >= 5000], engine="async", resume=state, decode="membrane")
    whole = es.simulate(net, ev, engine="async", dt_us=1000, t_stop_us=10_000)
    done = es.simulate(net, ev[ev["t"] >= 5000], engine="async", resume=state)
    np.testing.assert_array_equal(done.logits, whole.logits)
    assert done.predictions.tolist() == whole.predictions.tolist()
