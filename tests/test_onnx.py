"""ONNX import (format "onnx"): CNNs exported by torch.onnx.export (both exporters) convert to IF
networks. References: PyTorch itself (the ANN's outputs and its ReLU activations through forward
hooks), the closed form of IF rates at large T, and a NumPy OR of the recorded spike raster for the
spike max-pool rule."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
nn = torch.nn

import eventsim as es  # noqa: E402
from eventsim.checkpoints import CheckpointError  # noqa: E402
from eventsim.checkpoints.onnx_convert import onnx_forward, onnx_layers  # noqa: E402
from eventsim.checkpoints.onnx_graph import read_onnx  # noqa: E402

CIFAR = (3, 32, 32)


class Block(nn.Module):
    """CIFAR ResNet BasicBlock: conv-BN-ReLU-conv-BN, + shortcut (1×1 conv + BN when downsampling), ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A small CIFAR-style ResNet: stem, three stages (the last two downsample), GAP, fc."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 12, 2)
        self.layer3 = Block(12, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        x = self.pool(x)
        return self.fc(x.view(x.size(0), -1))


def vgg(pool=nn.AvgPool2d):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), pool(2),
        nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU6(), pool(2),
        nn.Conv2d(12, 16, 3, padding=1), nn.BatchNorm2d(16), nn.Hardtanh(0.0, 2.0), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))


def _randomise(model, seed):
    """BatchNorm statistics of the data (one training-mode pass), random affine parameters: what a
    trained model has instead of the defaults."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.momentum = 1.0
            m.weight.data.uniform_(0.8, 1.4)
            m.bias.data.uniform_(0.0, 0.3)
    model.train()
    with torch.no_grad():
        model(torch.as_tensor(_images(128, seed + 200), dtype=torch.float32))
    return model.eval()


def _fit_head(model, head, seed):
    """Scale the last Linear so that the logits spread about ±1 over :func:`_images` (a random head
    on random features predicts one class for every input, which would prove nothing)."""
    feats = []
    hook = head.register_forward_hook(lambda m, i, o: feats.append(i[0].double()))
    with torch.no_grad():
        model(torch.as_tensor(_images(64, seed + 100), dtype=torch.float32))
        hook.remove()
        f = feats[0]
        mean, std = f.mean(0), f.std(0) + 1e-3
        w = torch.randn(head.out_features, head.in_features, generator=torch.Generator().manual_seed(seed))
        w = w / std / np.sqrt(head.in_features)
        head.weight.copy_(w)
        head.bias.copy_(-(w.double() @ mean).float())
    return model


def _export(model, path, dynamo=True, shape=CIFAR):
    """dynamo: True (torch's default exporter), False (the legacy TorchScript one), or "nofold"
    (legacy without constant folding: BatchNormalization nodes stay after each Conv)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand((1,) + shape),), str(path), dynamo=dynamo is True,
                          **({"do_constant_folding": False} if dynamo == "nofold" else {}))
    return path


def _images(n, seed):
    """Noise images whose channels differ in brightness from image to image."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.uniform(0, 1, (n, 3, 1, 1)) + rng.uniform(-0.3, 0.3, (n,) + CIFAR), 0, 1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    out = {}
    torch.manual_seed(0)
    resnet, net_vgg = _randomise(ResNet(), 0), _randomise(vgg(), 1)
    for name, model in (("resnet", _fit_head(resnet, resnet.fc, 0)), ("vgg", _fit_head(net_vgg, net_vgg[-1], 1))):
        for dynamo in (True, False, "nofold"):
            out[name, dynamo] = (model, _export(model, root / f"{name}-{dynamo}.onnx", dynamo))
    return out


def _ann(model, x):
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


@pytest.mark.parametrize("dynamo", [True, False, "nofold"], ids=["dynamo", "legacy", "legacy-nofold"])
@pytest.mark.parametrize("name", ["resnet", "vgg"])
def test_structure_and_numpy_forward_equal_pytorch(exported, name, dynamo):
    model, path = exported[name, dynamo]
    layers = onnx_layers(read_onnx(path))
    kinds = [type(layer).__name__ for layer in layers]
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert kinds.count("Conv2d") == convs and kinds.count("Linear") == linears   # BN folded, nothing lost
    if name == "resnet":
        # three blocks, each one Add; the two downsampling blocks put a conv on the shortcut: a Branch each
        assert kinds.count("Add") == 3 and kinds.count("Branch") == 2
        branches = [i for i, layer in enumerate(layers) if isinstance(layer, es.Branch)]
        assert all(isinstance(layers[i + 1], es.Conv2d) and layers[i + 1].weight.shape[2:] == (1, 1) for i in branches)
        assert kinds.count("Act") == 7
    else:
        assert kinds.count("Act") == 4 and kinds.count("AvgPool2d") == 3 and "Branch" not in kinds
    x = _images(8, 3)
    np.testing.assert_allclose(onnx_forward(layers, x)[-1], _ann(model, x), rtol=1e-4, atol=1e-5)


def test_thresholds_are_clip_values_and_torch_percentiles(exported):
    model, path = exported["vgg", True]
    calib = _images(30, 4)
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.double().numpy()))
             for m in model if isinstance(m, nn.ReLU)]
    _ann(model, calib)
    for h in hooks:
        h.remove()
    net = es.load(path, calibration=calib, percentile=99.0)          # format detected from the file
    want = [float(torch.quantile(torch.as_tensor(a[a > 0]), 0.99)) for a in seen]
    thetas = net.metadata["thresholds"]
    assert net.metadata["threshold_source"] == ["p99", "clip", "clip", "p99"]
    np.testing.assert_allclose([thetas[0], thetas[3]], want, rtol=1e-5)   # float32 vs float64 activations
    assert thetas[1:3] == [6.0, 2.0]
    for n, theta in zip([l for l in net.layers if isinstance(l, es.IF)], thetas):
        assert float(n.threshold) == theta and float(n.v_init) == pytest.approx(theta / 2)
        assert n.compare == ">=" and n.reset == "subtract" and n.spike_amplitude == "threshold"
    with pytest.raises(CheckpointError, match="pass calibration="):
        es.load(path)
    with pytest.raises(CheckpointError, match=r"calibration: shape \(2, 3, 16, 16\)"):
        es.load(path, calibration=np.ones((2, 3, 16, 16)))


@pytest.mark.parametrize("name,tol", [("resnet", 0.5), ("vgg", 0.8)])
def test_snn_agrees_with_ann_at_large_T(exported, name, tol):
    """The readout mean approaches the logits of the ANN whose ReLUs are clipped at the thresholds
    (error shrinking like 1/T), and so approximates PyTorch's logits.

    Why the tolerance against PyTorch: an IF neuron driven for T steps is off by about one spike,
    θ/T in rate, and each layer passes that on (the VGG's ReLU6, θ = 6 for activations below about
    1, has the coarsest steps: 6/256); and the percentile thresholds (p99.9 of the calibration
    set) clip the largest activations of other inputs, an error that does not shrink with T.
    Measured over 12 inputs at T = 256, logits spanning 2-3.5: against PyTorch ResNet 0.21, VGG
    0.41 (the tolerances are about twice that); against the clipped ANN 0.11 and 0.03 at T = 256,
    0.026 and 0.008 at T = 1024."""
    model, path = exported[name, True]
    net = es.load(path, calibration=_images(64, 5), readout="mean")
    x = _images(12, 6)
    want = _ann(model, x)
    assert len(set(want.argmax(1))) >= 4 and np.ptp(want, axis=1).mean() > 1.0   # the ANN's logits vary
    clipped = onnx_forward(list(net.layers), x)[-1]        # an IF layer is clip(x, 0, θ) in this forward
    got = {T: np.array([es.simulate(net, xi, steps=T, input_kind="analog").logits[-1] for xi in x])
           for T in (256, 1024)}
    conv = {T: np.abs(g - clipped).max() for T, g in got.items()}
    err = np.abs(got[256] - want).max()
    assert conv[256] < 0.2 and conv[1024] < conv[256] / 2, conv
    assert err < tol, err
    assert np.mean(got[256].argmax(1) == want.argmax(1)) >= 10 / 12     # measured: 12/12 for both


def test_max_pool_is_refused_by_name_or_converted_by_the_spike_rule(tmp_path):
    model = _randomise(vgg(pool=nn.MaxPool2d), 2)
    path = _export(model, tmp_path / "maxvgg.onnx")
    with pytest.raises(CheckpointError, match=r"node '[^']*' \(MaxPool\).*max_pool='spike'"):
        es.load(path, calibration=_images(4, 0))
    net = es.load(path, calibration=_images(16, 0), max_pool="spike")
    pools = [l for l in net.layers if isinstance(l, es.MaxPool2d)]
    assert len(pools) == 2 and all(p.kernel_size == (2, 2) and p.stride == (2, 2) for p in pools)
    # the rule, end to end: ReLU6 → MaxPool(2) → Linear readout; the readout sums θ·OR(window spikes)
    tiny = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU6(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)).eval()
    path = _export(tiny, tmp_path / "tiny.onnx", shape=(1, 4, 4))
    net = es.load(path, max_pool="spike")
    x = np.random.default_rng(0).uniform(0, 6, (1, 4, 4))
    res = es.simulate(net, x, steps=20, input_kind="analog", record="spikes")
    spikes = res.rasters[net.layers[1].name]                              # (T, 2, 4, 4)
    pooled = spikes.reshape(20, 2, 2, 2, 2, 2).max(axis=(3, 5)) * 6.0     # θ = 6 where any input spikes
    w, b = tiny[4].weight.detach().double().numpy(), tiny[4].bias.detach().double().numpy()
    want = (pooled.reshape(20, -1) @ w.T + b).sum(axis=0)
    np.testing.assert_allclose(res.logits[-1], want, rtol=1e-6, atol=1e-6)
    both = np.logical_and(spikes[:, :, 0::2, 0::2], spikes[:, :, 1::2, 0::2]).sum()
    assert spikes.sum() > pooled.astype(bool).sum() and both > 0      # the rule really merged coincident spikes


@pytest.mark.parametrize("module,op", [(nn.LeakyReLU(0.1), "LeakyRelu"), (nn.Sigmoid(), "Sigmoid")])
def test_unsupported_operator_names_node_and_type(tmp_path, module, op):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), module, nn.Flatten(), nn.Linear(4 * 30 * 30, 2)).eval()
    path = _export(model, tmp_path / "bad.onnx")
    with pytest.raises(CheckpointError, match=rf"node '[^']*' \({op}\): operator '{op}' is not supported"):
        es.load(path, calibration=_images(2, 0))


def test_output_must_be_a_linear_layer(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4), nn.ReLU()).eval()
    path = _export(model, tmp_path / "relu_out.onnx")
    with pytest.raises(CheckpointError, match=r"output comes from node .*\(Relu\).*becomes the readout"):
        es.load(path, calibration=_images(2, 0))


def test_shape_checks(exported, tmp_path):
    _, path = exported["vgg", False]
    with pytest.raises(CheckpointError, match=r"\(Gemm\).*input has 64 features, expected 256"):
        es.load(path, format="onnx", input_shape=(3, 16, 16), calibration=np.ones((1, 3, 16, 16)))
    with pytest.raises(CheckpointError, match=r"input shape \(3, 32\)"):
        es.load(path, input_shape=(3, 32))
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=(1, 0)), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 30, 2)).eval()
    net = es.load(_export(model, tmp_path / "asym.onnx"), calibration=_images(4, 0))
    assert net.layers[0].padding == (1, 0) and net.shapes[0] == (4, 32, 30)


def test_malformed_and_truncated_files(exported, tmp_path):
    _, path = exported["vgg", False]
    data = path.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable ONNX model.*truncated"):
        es.load(cut)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(CheckpointError, match="truncated or not ONNX"):
        es.load(junk, format="onnx")
    _, dyn = exported["vgg", True]
    if dyn.with_name(dyn.name + ".data").exists():          # the dynamo exporter keeps weights beside
        lone = tmp_path / "lone.onnx"
        lone.write_bytes(dyn.read_bytes())
        with pytest.raises(CheckpointError, match=r"stored in 'vgg-True.onnx.data', which is missing"):
            es.load(lone, calibration=_images(2, 0))


def test_docs_example_runs_and_agrees_with_pytorch(capsys):
    """The python blocks of docs/onnx.md run; the example's SNN predicts like its ANN."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "onnx.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for code in blocks:
            exec(compile(code, "docs/onnx.md", "exec"), {})
    pred, ann_pred, err = capsys.readouterr().out.split()[-3:]
    assert pred == ann_pred and float(err) < 0.2


def test_damaged_files_give_clear_errors(exported, tmp_path):
    """Flipped bytes and cuts anywhere in an exported model: it loads (weights changed) or fails with
    CheckpointError/ValueError, never another exception; a huge declared input is refused."""
    _, path = exported["resnet", False]
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    calib = _images(2, 0)
    for trial in range(60):
        d = bytearray(data)
        for i in rng.integers(0, len(d), rng.integers(1, 6)):
            d[i] = rng.integers(0, 256)
        if trial % 3 == 0:
            d = d[: rng.integers(1, len(d))]
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(bytes(d))
        try:
            es.load(bad, calibration=calib)
        except (CheckpointError, ValueError):
            pass
    with pytest.raises(CheckpointError, match=r"input .* more than the"):
        es.load(path, input_shape=(3, 1 << 15, 1 << 15))


def test_dynamic_batch_axis_and_shape_arithmetic(tmp_path):
    """The legacy exporter with a dynamic batch axis writes Shape → Gather → Unsqueeze → Concat →
    Reshape for x.view(x.size(0), -1); it is evaluated while reading and becomes a Flatten."""
    import onnx

    class ViewNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3, stride=2), nn.Linear(4 * 15 * 15, 3)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            return self.fc(x.view(x.size(0), -1))

    model = ViewNet().eval()
    path = tmp_path / "view.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 3, 32, 32),), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Shape", "Gather", "Concat"} <= ops           # what this test is about
    net = es.load(path, calibration=_images(8, 0))
    assert [type(l).__name__ for l in net.layers] == ["Conv2d", "IF", "Flatten", "Linear", "Readout"]
    x = _images(4, 1)
    np.testing.assert_allclose(onnx_forward(onnx_layers(read_onnx(path)), x)[-1], _ann(model, x), rtol=1e-4, atol=1e-5)


def test_padded_average_pool_counts_the_padding_or_is_refused(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AvgPool2d(3, stride=2, padding=1), nn.Flatten(),
                          nn.Linear(4 * 15 * 15, 3)).eval()
    path = _export(model, tmp_path / "pad.onnx")
    layers = onnx_layers(read_onnx(path))
    pool = next(l for l in layers if isinstance(l, es.AvgPool2d))
    assert pool.kernel_size == (3, 3) and pool.stride == (2, 2) and pool.padding == (1, 1)
    x = _images(3, 0)
    np.testing.assert_allclose(onnx_forward(layers, x)[-1], _ann(model, x), rtol=1e-4, atol=1e-5)
    model[2] = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    path = _export(model, tmp_path / "nocount.onnx")
    with pytest.raises(CheckpointError, match=r"\(AveragePool\): padding with count_include_pad=0"):
        es.load(path, calibration=x)


def test_missing_onnx_package_names_the_extra(exported, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'eventsim\[onnx\]'"):
        es.load(exported["vgg", False][1])
