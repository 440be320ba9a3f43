"""eventsim's counts against the peers' own simulators and meters, on real N-MNIST recordings.

Every assertion compares eventsim with a peer's output on the same network, weights and input:

* NeuroBench's ``SynapticOperations`` (on snnTorch) equals eventsim ``synop_convention="nonzero"``;
* sinabs's synops hooks and SpikingJelly's ``SynOpCounter`` equal eventsim ``"all"``;
* every peer's spike rasters and predictions equal eventsim's;
* where a peer's convention differs (it binarises, or skips non-binary inputs), the peer's count
  equals its rule (``benchmarks/peers/peerkit/explain.py``) applied to its own spikes, and the
  minimal reproducing cases (``peerkit/repro.py``) behave as ``benchmarks/peers/REPORT.md`` states.

Each peer test skips when that peer is not installed (``bash benchmarks/peers/install_peers.sh``).
Five recordings per network keep the module under a minute.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared_data

ROOT = Path(__file__).resolve().parents[1]

from peerkit import explain
from peerkit.cases import build_cases, with_compare
from peerkit.data import as_mode, load_frames
from peerkit.ours import run_eventsim

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
N_SAMPLES = 5


def _peer(adapter: str, *packages: str):
    """The peer adapter ``peerkit.<adapter>``; skip when the peer is missing or does not import."""
    for package in packages:
        pytest.importorskip(package, exc_type=ImportError)
    import importlib
    module = importlib.import_module(f"peerkit.{adapter}")
    status = module.status()
    if not status.available:
        pytest.skip(f"{status.name}: {status.reason}")
    return module


def _neurobench():
    return _peer("peer_neurobench", "snntorch", "neurobench")


def _spikingjelly():
    return _peer("peer_spikingjelly", "spikingjelly")


def _sinabs():
    return _peer("peer_sinabs", "sinabs")


@pytest.fixture(scope="module")
def recordings():
    require_shared_data("nmnist")
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return load_frames(N_SAMPLES)


@pytest.fixture(scope="module")
def cases():
    return {case.name: case for case in build_cases()}


def _run_both(peer, case, frames, mode, convention):
    """(peer run, eventsim run of the peer's twin network under ``convention``) per recording."""
    net = with_compare(case.network, peer.COMPARE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peer.build(net)
        for x in frames:
            x = as_mode(x, mode)
            yield net, x, peer.simulate(model, x), run_eventsim(net, x, convention)


def _assert_same_spikes(theirs, ours):
    assert set(theirs.rasters) == set(ours.rasters)
    for name, raster in ours.rasters.items():
        np.testing.assert_array_equal(theirs.rasters[name], raster, err_msg=name)
    assert theirs.prediction == ours.prediction


@pytest.mark.parametrize("name", ["conv_pruned", "pool_max", "mlp"])
def test_neurobench_synops_equal_eventsim_nonzero(recordings, cases, name):
    """NeuroBench's non-zero-weight synops (and activation sparsity) == eventsim "nonzero", binary input."""
    peer = _neurobench()
    frames, _ = recordings
    for net, x, theirs, ours in _run_both(peer, cases[name], frames, "binary", "nonzero"):
        _assert_same_spikes(theirs, ours)
        assert theirs.synops == ours.synops
        assert theirs.extra["synops_total"] == sum(ours.synops.values())
        assert theirs.extra["effective_macs"] == 0            # every layer input was binary
        neurons = sum(r[0].size for r in ours.rasters.values()) * x.shape[0]
        spikes = sum(ours.spikes.values())
        assert theirs.extra["activation_sparsity"] == (neurons - spikes) / neurons


@pytest.mark.parametrize("name", ["conv", "pool_avg", "pool_sum", "mlp"])
def test_sinabs_synops_equal_eventsim_all(recordings, cases, name):
    """sinabs's synops hooks == eventsim "all" on event-count input, average and sum pooling included."""
    peer = _sinabs()
    frames, _ = recordings
    for _, x, theirs, ours in _run_both(peer, cases[name], frames, "counts", "all"):
        _assert_same_spikes(theirs, ours)
        assert theirs.synops == ours.synops
        assert theirs.extra["synops_total"] == sum(ours.synops.values())


@pytest.mark.parametrize("name", ["conv_pruned", "pool_max", "mlp"])
def test_spikingjelly_synops_equal_eventsim_all(recordings, cases, name):
    """SpikingJelly's SynOpCounter == eventsim "all" where its inputs are binary."""
    peer = _spikingjelly()
    frames, _ = recordings
    for _, _, theirs, ours in _run_both(peer, cases[name], frames, "binary", "all"):
        _assert_same_spikes(theirs, ours)
        assert theirs.synops == ours.synops
        assert theirs.extra["synops_total"] == sum(ours.synops.values())


@pytest.mark.parametrize("name", ["conv", "pool_avg"])
def test_peer_differences_are_their_conventions(recordings, cases, name):
    """On event-count input and after average pooling the peers' counts differ from eventsim's
    only by their documented rules, applied to their own spikes."""
    frames, _ = recordings
    nb, sj = _neurobench(), _spikingjelly()
    for net, x, theirs, ours in _run_both(nb, cases[name], frames, "counts", "nonzero"):
        _assert_same_spikes(theirs, ours)
        assert theirs.synops == explain.neurobench_convention(net, x, theirs.rasters)
        # the first layer sees the recording: NeuroBench counts it as if each pixel fired once per bin
        first = net.layers[0].name
        assert theirs.synops[first] == run_eventsim(net, np.minimum(x, 1), "nonzero").synops[first]
        assert theirs.extra["effective_macs"] > 0             # non-binary calls are booked as MACs
    for net, x, theirs, ours in _run_both(sj, cases[name], frames, "counts", "all"):
        _assert_same_spikes(theirs, ours)
        assert theirs.synops == explain.spikingjelly_convention(net, x, theirs.rasters)
        assert theirs.synops[net.layers[0].name] == 0         # event counts > 1: not binary, not counted


def test_minimal_reproducing_cases():
    """The tiny cases of REPORT.md: each peer's count against eventsim's, per counting rule."""
    from peerkit.repro import count_all, repro_cases
    peers = {"NeuroBench": _neurobench(), "SpikingJelly": _spikingjelly(), "sinabs": _sinabs()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = {case.name: (case, count_all(case, peers)) for case in repro_cases()}
    for name, (case, row) in rows.items():
        assert row["sinabs"] == row["eventsim_all"], name                  # sinabs: eventsim "all" always
    for name in ("multi_event", "padding_zeros", "maxpool_merge"):
        assert rows[name][1]["NeuroBench"] == rows[name][1]["eventsim_nonzero_binarised"], name
    for name in ("padding_zeros", "maxpool_merge"):
        row = rows[name][1]
        assert row["NeuroBench"] == row["eventsim_nonzero"] and row["SpikingJelly"] == row["eventsim_all"], name
    assert rows["padding_zeros"][1]["eventsim_all"] > rows["padding_zeros"][1]["eventsim_nonzero"]
    for name in ("avgpool_merge", "sumpool_merge"):
        case, row = rows[name]
        nb = _neurobench()
        run = nb.simulate(nb.build(with_compare(case.network, nb.COMPARE)), case.frames)
        rule = explain.neurobench_convention(with_compare(case.network, nb.COMPARE), case.frames, run.rasters)
        assert row["NeuroBench"] == rule[case.layer] < row["eventsim_nonzero"], name
        assert row["SpikingJelly"] == 0 < row["eventsim_all"], name        # pooled values are not binary
    assert rows["multi_event"][1]["SpikingJelly"] == 0 < rows["multi_event"][1]["eventsim_all"]
