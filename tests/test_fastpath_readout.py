"""The fast path's readout taking its feeders' spikes at once (``fastpath.readout_bound``): with
exact float64 sums the order of an instant's spikes cannot show, so the queue is skipped. Checked
against the general path (which always queues) on real recordings, with the bound hand-computed,
with the at-once delivery ended mid-run, and with a pass of the bound inside one instant (the
call runs again, queued)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import eventsim as es
from eventsim.engines import fastpath
from eventsim.engines.cache import cache_for

from test_fastpath import assert_same, both  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _entry(net):
    """The network's prepared fast-path entry (module, spec, ..., state pool, fires, bound)."""
    return next(v for k, v in cache_for(net).items() if isinstance(k, tuple) and k[0] == "fastpath")


def _pooled(readout_w: np.ndarray) -> es.Network:
    """(2, 4, 4) -> Conv2d 3x3 -> IF (2, 4, 4) -> average pool 2x2 -> Flatten -> Linear -> Readout."""
    conv = np.full((2, 2, 3, 3), 0.375)
    return es.Network((2, 4, 4), [es.Conv2d(conv, padding=1), es.IF(threshold=1.0), es.AvgPool2d(2),
                                  es.Flatten(), es.Linear(readout_w), es.Readout()])


def test_bits_hand_computed():
    lo, bits = fastpath._bits(np.array([0.75, 1.0, 3 * 2.0 ** -30, 1 / 3, -6.0]))
    # 0.75 = 3·2^-2; 1 = 1·2^0; 3·2^-30; 1/3 has 53 significant bits, the lowest at 2^-54; 6 = 3·2^1
    assert lo.tolist() == [-2, 0, -30, -54, 1]
    assert bits.tolist() == [2, 1, 2, 53, 2]


def test_bound_hand_computed():
    """v = 1/4 (amplitude 1 over a 2x2 average): lowest bit 2^-2. Output 0's weights 0.5, -0.75, 0.25
    (lowest bit 2^-2): sums exact below 2^(53-4) = 2^49, a unit adds at most 0.25·0.75. Output 1's
    1.0 and 0.5: below 2^(53-3), at most 0.25."""
    w = np.zeros((2, 8))
    w[0, :3] = [0.5, -0.75, 0.25]
    w[1, :2] = [1.0, 0.5]
    net = _pooled(w)
    es.simulate(net, _events(3), engine="async", fast_path=True)
    T, M, room = _entry(net)[-1]
    assert T.tolist() == [2.0 ** 49, 2.0 ** 50] and room == int((2.0 ** 49 / 0.1875) * (1 - 2.0 ** -40) - 1)
    assert M.tolist() == [0.1875, 0.25]


def test_bound_refused_when_a_product_may_round():
    """No bound when a product's significant bits may pass 53: weights of 53 bits (1/3) times 1/4
    (counted as 1 bit: 54). A 3x3 average passes v = fl(1/9) on: 0x1C71C71C71C71C·2^-56, 51 bits,
    its lowest 2^-54; times 0.5 (2^-1) exact: T = 2^(53-55), M = fl(1/9)·0.5, room for 4 units,
    under the 4,096 the at-once delivery needs."""
    net = _pooled(np.full((2, 8), 1 / 3))
    res = es.simulate(net, _events(30), engine="async", fast_path=True)
    assert _entry(net)[-1] is None and res.info["readout_at_once"] is False
    conv = np.full((2, 2, 3, 3), 0.375)
    net9 = es.Network((2, 6, 6), [es.Conv2d(conv, padding=1), es.IF(), es.AvgPool2d(3), es.Flatten(),
                                  es.Linear(np.full((2, 8), 0.5)), es.Readout()])
    res = es.simulate(net9, _events(30, (2, 6, 6)), engine="async", fast_path=True)
    T, M, room = _entry(net9)[-1]
    assert T.tolist() == [2.0 ** -2] * 2 and M.tolist() == [(1.0 / 9.0) * 0.5] * 2 and room == 0
    assert res.info["readout_at_once"] is False


def _events(n: int, shape=(2, 4, 4), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=[("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
    ev["t"] = np.sort(rng.integers(0, 5000, n))
    ev["x"] = rng.integers(0, shape[2], n)
    ev["y"] = rng.integers(0, shape[1], n)
    ev["p"] = rng.integers(0, shape[0], n)
    return ev


def _recordings(nmnist_dir, n: int):
    files = sorted((nmnist_dir / "test").glob("*.bs2"))[:n]
    assert files
    return [es.read_events(f) for f in files]


@pytest.mark.realdata
@pytest.mark.parametrize("case", ["shipped", "pool_avg"])
def test_at_once_equals_general_on_recordings(nmnist_dir, case):
    """Weights trained in float32: the bound holds, the readout takes its feeders' spikes at once,
    and every observable equals the general path's (which queues them), bit for bit; with a synop
    budget (a row inside an instant could see the order) the fast path queues them too."""
    if case == "shipped":
        net = es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz")
    else:
        from peerkit.cases import build_cases
        net = build_cases([case])[0].network
    for ev in _recordings(nmnist_dir, 3):
        fast, general = both(net, ev, record=("spike_times", "spikes"), dt_us=10_000)
        assert fast.info["readout_at_once"] is True
        assert_same(fast, general)
        fast, general = both(net, ev, dt_us=10_000, snapshot_synops=[200_000])
        assert fast.info["readout_at_once"] is False
        assert_same(fast, general)


@pytest.mark.realdata
def test_at_once_ends_when_the_room_runs_out(nmnist_dir, monkeypatch):
    """A smaller T is a valid bound too. With T = 4,000·M (room for 4,000 units) and the room
    measured again after 100 units, it is then under 4,096 units: the at-once delivery ends and the
    rest of the recording queues. Everything still equals the general path."""
    net = es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz")

    def soon(mod, S, I, room):
        T, M = (S[getattr(mod, k):getattr(mod, k) + mod.N_OUT] for k in ("S_RDT", "S_RDM"))
        T[:] = np.minimum(T, M * 4000.0)
        I[mod.I_NOW], I[mod.I_RDL], I[mod.I_RDH] = 1, I[mod.I_RDU] + 3999, I[mod.I_RDU] + 100
    monkeypatch.setattr(fastpath, "_arm", soon)
    ev = _recordings(nmnist_dir, 1)[0]
    fast, general = both(net, ev, dt_us=10_000)
    assert fast.info["readout_at_once"] is True
    mod, I = _entry(net)[0], _entry(net)[6][-1][2]
    assert I[mod.I_NOW] == 0 and I[mod.I_RDU] > 100 and I[mod.I_RDX] == 0
    assert_same(fast, general)


@pytest.mark.realdata
def test_a_pass_within_an_instant_runs_the_call_again(nmnist_dir, monkeypatch):
    """Room for no unit at all (I_RDL = I_RDU, no measurement before): the first spike into the
    readout passes it, the kernel flags it, and the driver runs the call again with the readout
    queued; the result equals the general path's."""
    net = es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz")

    def no_room(mod, S, I, room):
        I[mod.I_NOW], I[mod.I_RDL], I[mod.I_RDH] = 1, I[mod.I_RDU], 2 ** 62
    monkeypatch.setattr(fastpath, "_arm", no_room)
    calls = []
    real_run = fastpath.run_fast

    def counted(*a, **k):
        calls.append(k.get("again"))
        return real_run(*a, **k)
    monkeypatch.setattr(fastpath, "run_fast", counted)
    ev = _recordings(nmnist_dir, 1)[0]
    fast, general = both(net, ev, dt_us=10_000)
    assert len(calls) == 2 and calls[0] is not None and calls[1] is None
    assert fast.info["readout_at_once"] is False
    assert_same(fast, general)


def test_a_stream_queues():
    """Chunks of a stream are read once (no second run possible): the readout queues."""
    w = np.zeros((2, 8))
    w[:, :4] = 0.5
    net = _pooled(w)
    ev = _events(40)
    res = es.simulate(net, [ev[:20], ev[20:]], engine="async", fast_path=True, t_stop_us=6000)
    assert res.info["path"] == "fast" and res.info["readout_at_once"] is False
    whole = es.simulate(net, ev, engine="async", fast_path=True, t_stop_us=6000)
    assert whole.info["readout_at_once"] is True
    np.testing.assert_array_equal(res.logits, whole.logits)


@pytest.mark.realdata
def test_the_bound_is_what_makes_it_exact(nmnist_dir, monkeypatch):
    """The order does show where the sums round: the shipped model with its readout's weights
    given full 53-bit significands (a relative change of 1e-9) has no bound, and forcing the
    at-once delivery on it anyway changes the logits against the general path's queue order."""
    import dataclasses
    net = es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz")
    layers = list(net.layers)
    k = max(i for i, layer in enumerate(layers) if isinstance(layer, es.Linear))
    w = np.asarray(layers[k].weight) * (1 + np.random.default_rng(0).uniform(-1e-9, 1e-9, layers[k].weight.shape))
    layers[k] = dataclasses.replace(layers[k], weight=w)
    net = es.Network(net.input_shape, layers)
    real = fastpath.readout_bound
    bounds = []

    def forced(spec, W):
        bounds.append(real(spec, W))
        return np.full(spec.n_out, np.inf), np.full(spec.n_out, 1e-300)
    monkeypatch.setattr(fastpath, "readout_bound", forced)
    differ = 0
    for ev in _recordings(nmnist_dir, 2):
        fast, general = both(net, ev, dt_us=10_000)
        assert fast.info["readout_at_once"] is True
        assert fast.spikes_per_layer == general.spikes_per_layer
        differ += not np.array_equal(fast.logits, general.logits)
    assert bounds == [None] and differ == 2


@pytest.mark.realdata
@pytest.mark.parametrize("room", ["measured", "ended"])
def test_windows_take_the_unwindowed_steps(nmnist_dir, monkeypatch, room):
    """Windows (the state pickled between calls, as Dask sends it) carry the room and its next
    measurement, so a windowed run delivers at once exactly where the unwindowed one does: the same
    queue high-water mark, every observable equal to both paths' windowed and unwindowed results;
    also with the room measured again after 100 spikes and ended there."""
    from test_fastpath_windows import check_all_equal
    net = es.load(ROOT / "models" / "nmnist" / "nmnist_if.npz")
    if room == "ended":
        def soon(mod, S, I, room):
            T, M = (S[getattr(mod, k):getattr(mod, k) + mod.N_OUT] for k in ("S_RDT", "S_RDM"))
            T[:] = np.minimum(T, M * 4000.0)
            I[mod.I_NOW], I[mod.I_RDL], I[mod.I_RDH] = 1, I[mod.I_RDU] + 3999, I[mod.I_RDU] + 100
        monkeypatch.setattr(fastpath, "_arm", soon)
    for ev in _recordings(nmnist_dir, 2):
        t_stop = float(np.ceil((ev["t"][-1] + 1) / 10_000) * 10_000)
        split, states = check_all_equal(net, ev, [30_000, 100_000, 150_000], dt_us=10_000, t_stop_us=t_stop,
                                        record=("spike_times", "spikes"))
        I = states[0].data["I"]
        mod = _entry(net)[0]
        assert I[mod.I_RDU] > 0 and split.info["readout_at_once"] is (room == "measured")
