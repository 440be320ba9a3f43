"""ANN→SNN conversion (format "ann"): the NumPy ANN forward equals PyTorch's, thresholds equal the
clip values or PyTorch's percentiles, IF spike counts follow the closed form for constant input,
and the converted shipped CNN predicts like its ANN on real N-MNIST."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import eventsim as es
from eventsim.checkpoints import CheckpointError, ann_forward, convert_ann, load_ann, read_state_dict
from eventsim.checkpoints.convert import parse_architecture

ROOT = Path(__file__).resolve().parents[1]
import ann
import nmnist_data

SHAPE = (2, 12, 12)


def _random_cnn(activation, seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    seq = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), activation(), nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), activation(),
        nn.Flatten(), nn.Linear(6 * 3 * 3, 16), nn.BatchNorm1d(16), activation(), nn.Dropout(0.2), nn.Linear(16, 5))
    for m in seq:
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return seq.double().eval()


def _activations(seq, x):
    outs, h = [], torch.as_tensor(x)
    with torch.no_grad():
        for m in seq:
            h = m(h)
            outs.append(h.numpy())
    return outs


@pytest.fixture(scope="module")
def calib():
    return np.random.default_rng(1).uniform(0, 1, (40,) + SHAPE)


def test_numpy_ann_forward_equals_pytorch(tmp_path, calib):
    seq = _random_cnn(nn.ReLU)
    ann.save_ann(seq, tmp_path / "a.pt", SHAPE)
    ckpt = torch.load(tmp_path / "a.pt", weights_only=True)
    stages = parse_architecture(read_state_dict(tmp_path / "a.pt"), ckpt["architecture"])
    got = ann_forward(stages, calib)
    want = _activations(seq, calib)
    # stages drop BatchNorm (folded) and Dropout; compare at the modules that remain
    kept = [i for i, m in enumerate(seq) if not isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout))]
    assert [s.index for s in stages] == kept
    bn = (nn.BatchNorm2d, nn.BatchNorm1d)
    for s, g in zip(stages, got):
        # a folded conv/linear must equal PyTorch's output after the BatchNorm that follows it
        i = s.index + 1 if s.index + 1 < len(seq) and isinstance(seq[s.index + 1], bn) else s.index
        np.testing.assert_allclose(g, want[i], rtol=1e-10, atol=1e-12)


def test_percentile_thresholds_equal_torch_quantiles(tmp_path, calib):
    seq = _random_cnn(nn.ReLU)
    ann.save_ann(seq, tmp_path / "a.pt", SHAPE)
    with pytest.raises(CheckpointError, match="pass calibration="):
        es.load(tmp_path / "a.pt")
    net = es.load(tmp_path / "a.pt", calibration=calib, percentile=99.0)     # format "ann" detected
    acts = _activations(seq, calib)
    relus = [i for i, m in enumerate(seq) if isinstance(m, nn.ReLU)]
    want = [float(torch.quantile(torch.as_tensor(acts[i][acts[i] > 0]), 0.99)) for i in relus]
    np.testing.assert_allclose(net.metadata["thresholds"], want, rtol=1e-12)
    neurons = [layer for layer in net.layers if isinstance(layer, es.IF)]
    assert [n.name for n in neurons] == [str(i) for i in relus]
    for n, theta in zip(neurons, want):
        assert float(n.threshold) == pytest.approx(theta, rel=1e-12) and float(n.v_init) == pytest.approx(theta / 2)
        assert n.compare == ">=" and n.reset == "subtract" and n.spike_amplitude == "threshold"


def test_clip_values_become_thresholds_and_counts_follow_closed_form(tmp_path):
    seq = _random_cnn(lambda: nn.Hardtanh(0.0, 0.75))
    ann.save_ann(seq, tmp_path / "clip.pt", SHAPE)
    net = load_ann(tmp_path / "clip.pt")
    assert net.metadata["thresholds"] == [0.75, 0.75, 0.75] and net.metadata["threshold_source"] == ["clip"] * 3
    x = np.random.default_rng(2).uniform(0, 1, SHAPE)
    steps = 20
    res = es.simulate(net, x, steps=steps, input_kind="analog", record="spikes")
    with torch.no_grad():
        current = seq[1](seq[0](torch.as_tensor(x[None])))[0].numpy()   # first layer's constant input
    # IF, v0 = θ/2, fire at v >= θ, subtract: n = clip(floor(T·I/θ + 1/2), 0, T)
    q = steps * current / 0.75 + 0.5
    want = np.clip(np.floor(q), 0, steps)
    got = res.rasters["2"].sum(axis=0)
    clear = np.abs(q - np.round(q)) > 1e-9
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(got[clear], want[clear])


def test_unit_threshold_rescaling_gives_the_same_spikes(tmp_path, calib):
    seq = _random_cnn(nn.ReLU)
    ann.save_ann(seq, tmp_path / "a.pt", SHAPE)
    plain = load_ann(tmp_path / "a.pt", calibration=calib)
    unit = load_ann(tmp_path / "a.pt", calibration=calib, unit_threshold=True)
    assert all(float(n.threshold) == 1.0 for n in unit.layers if isinstance(n, es.IF))
    for x in calib[:5]:
        a = es.simulate(plain, x, steps=30, input_kind="analog", record="spikes")
        b = es.simulate(unit, x, steps=30, input_kind="analog", record="spikes")
        for name in a.rasters:
            assert np.array_equal(a.rasters[name], b.rasters[name])
        np.testing.assert_allclose(a.logits, b.logits, rtol=1e-9, atol=1e-9)


def test_architecture_errors_name_the_problem(tmp_path):
    seq = _random_cnn(nn.ReLU)
    state = {k: v.numpy() for k, v in seq.state_dict().items()}
    arch = ann.architecture_of(seq)
    with pytest.raises(CheckpointError, match=r"missing key '0\.weight'"):
        convert_ann({k: v for k, v in state.items() if k != "0.weight"}, arch, SHAPE, calibration=np.ones((1,) + SHAPE))
    with pytest.raises(CheckpointError, match=r"unknown key.*extra\.weight"):
        convert_ann({**state, "extra.weight": np.ones(2)}, arch, SHAPE, calibration=np.ones((1,) + SHAPE))
    with pytest.raises(CheckpointError, match=r"architecture\[3\].*'type' must be one of"):
        convert_ann(state, arch[:3] + [{"type": "MaxPool2d"}] + arch[4:], SHAPE)
    with pytest.raises(CheckpointError, match="last layer must be a Linear without activation"):
        convert_ann(state, arch + [{"type": "ReLU"}], SHAPE, calibration=np.ones((1,) + SHAPE))
    with pytest.raises(CheckpointError, match=r"calibration: shape \(3, 2, 5, 5\)"):
        convert_ann(state, arch, SHAPE, calibration=np.ones((3, 2, 5, 5)))


@pytest.mark.realdata
def test_converted_cnn_predicts_like_its_ann_on_nmnist(nmnist_dir):
    calib, _ = nmnist_data.images(nmnist_data.load_samples(nmnist_dir, "train", 100))
    x, _ = nmnist_data.images(nmnist_data.load_samples(nmnist_dir, "test", 50))
    net = es.load(ann.CHECKPOINT, calibration=calib, percentile=99.9)
    with torch.no_grad():
        ann_pred = ann.load_reference()(torch.as_tensor(x)).argmax(1).numpy()
    snn_pred = np.array([es.simulate(net, xi, steps=64, input_kind="analog").prediction for xi in x])
    assert np.mean(snn_pred == ann_pred) >= 0.9   # measured: 50/50 at T = 64
