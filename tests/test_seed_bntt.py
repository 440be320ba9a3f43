"""BNTT: the shipped checkpoint (per-step BatchNorm folded into step_gain/step_bias) matches the
PyTorch reference (models/seeds/bntt.py, float64) spike for spike on Poisson-coded N-MNIST."""
from __future__ import annotations

import re
import shutil
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventsim as es
from eventsim.checkpoints import CheckpointError, load_bntt, poisson_encode

import bntt
import compare
import nmnist_data

N_SAMPLES = 50
SHAPE = (2, 34, 34)


@pytest.fixture(scope="module")
def spikes_in(nmnist_dir):
    x, labels = nmnist_data.images(nmnist_data.load_samples(nmnist_dir, "test", N_SAMPLES))
    return bntt.encode(x, seeds=range(1000, 1000 + N_SAMPLES)), labels


@pytest.mark.realdata
def test_bntt_spikes_and_logits_match_pytorch(spikes_in):
    s, _ = spikes_in
    net = es.load(bntt.CHECKPOINT, input_shape=SHAPE)   # format from keys, leak from the file name
    assert net.metadata["format"] == "bntt" and net.metadata["leak"] == bntt.LEAK
    assert net.metadata["timesteps"] == bntt.TIMESTEPS
    model = bntt.load_reference()
    with torch.no_grad():
        out, rec = model(torch.as_tensor(s, dtype=torch.float64).transpose(0, 1), record=True)
    assert set(rec["spikes"]) == {"conv1.spike", "conv2.spike", "fc1.spike"}
    assert all(v.sum() > 0 for v in rec["spikes"].values())
    result = compare.compare(net, s, rec["spikes"], rec["logits"].numpy(), input_kind="events")
    assert result.mismatches == [], result.summary()
    assert result.max_logit_diff <= 1e-9 * max(1.0, result.max_logit_scale), result.summary()
    assert result.same_predictions
    np.testing.assert_allclose(rec["logits"][-1].numpy(), out.numpy(), rtol=1e-12)  # mean over T


def test_bntt_step_norm_folding():
    net = load_bntt(bntt.CHECKPOINT, input_shape=SHAPE)
    state = torch.load(bntt.CHECKPOINT, map_location="cpu", weights_only=False)["state_dict"]
    lif = next(layer for layer in net.layers if layer.name == "conv2.spike")
    assert lif.step_gain.shape == (bntt.TIMESTEPS, 32) and float(lif.leak) == bntt.LEAK
    for t in (0, 7):
        bn = torch.nn.BatchNorm2d(32, eps=1e-4).double().eval()
        bn.load_state_dict({k.split(".", 2)[2]: v for k, v in state.items() if k.startswith(f"bntt2.{t}.")},
                           strict=False)
        bn.bias.data.zero_()
        x = torch.randn(5, 32, 1, 1, dtype=torch.float64)
        want = bn(x).detach().numpy()[:, :, 0, 0]
        got = x.numpy()[:, :, 0, 0] * lif.step_gain[t] + lif.step_bias[t]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert net.layers[-1].mode == "mean"


def torch_gamma_mean(state: dict, steps: int) -> np.ndarray:
    """Per step: mean of γ over channels of each per-step BatchNorm, then over those BatchNorms --
    straight from the torch tensors, with a BatchNorm module to read γ (its ``weight``)."""
    prefixes = sorted({k.split(".")[0] for k in state if k.startswith("bntt") and k.endswith(".running_mean")})
    per_layer = []
    for prefix in prefixes:
        rows = []
        for t in range(steps):
            c = state[f"{prefix}.{t}.running_mean"].numel()
            bn = torch.nn.BatchNorm1d(c, eps=1e-4).double()
            bn.load_state_dict({k.split(".", 2)[2]: v for k, v in state.items() if k.startswith(f"{prefix}.{t}.")},
                               strict=False)
            rows.append(bn.weight.detach().mean().item())
        per_layer.append(rows)
    assert len(per_layer) == 3                               # bntt1, bntt2, bntt_fc
    return torch.tensor(per_layer, dtype=torch.float64).mean(dim=0).numpy()


def test_bntt_gamma_mean_metadata_and_fixed_exit(tmp_path):
    """The importer keeps BNTT's γ per step (which folding into step_gain loses) and ``fixed-exit``
    reads it rather than the folded gain γ/√(σ²+ε)."""
    from eventsim.cutoff import Trace, bn_gain_per_step, make_policy
    net = load_bntt(bntt.CHECKPOINT, input_shape=SHAPE)
    state = torch.load(bntt.CHECKPOINT, map_location="cpu", weights_only=False)["state_dict"]
    want = torch_gamma_mean(state, bntt.TIMESTEPS)
    got = net.metadata["bn_gamma_mean"]
    assert isinstance(got, list) and len(got) == bntt.TIMESTEPS
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(bn_gain_per_step(net), want, rtol=1e-12)
    folded = np.mean([np.abs(layer.step_gain).mean(axis=1) for layer in net.layers
                      if getattr(layer, "step_gain", None) is not None], axis=0)
    assert not np.allclose(folded, want, rtol=1e-3)           # the folded gain is a different number
    # a threshold between two steps' γ exits at the first step below it
    step = int(np.argmin(want))
    trace = Trace(np.arange(1.0, bntt.TIMESTEPS + 1), np.zeros((bntt.TIMESTEPS, 10)), np.zeros(bntt.TIMESTEPS))
    threshold = float(want[step]) + 1e-9
    first_below = int(np.flatnonzero(want < threshold)[0])
    assert make_policy("fixed-exit", threshold=threshold, network=net).select(trace) == first_below

    # BatchNorms without affine weights (γ = 1): the metadata says 1 at every step
    plain = OrderedDict((k, v) for k, v in state.items() if not re.fullmatch(r"bntt\w*\.\d+\.weight", k))
    torch.save({"state_dict": plain}, tmp_path / "plain_leak0.95.pth.tar")
    np.testing.assert_array_equal(load_bntt(tmp_path / "plain_leak0.95.pth.tar", input_shape=SHAPE)
                                  .metadata["bn_gamma_mean"], np.ones(bntt.TIMESTEPS))


def test_bntt_leak_and_structure_errors(tmp_path):
    anonymous = tmp_path / "model_bestmodel.pth.tar"
    shutil.copy(bntt.CHECKPOINT, anonymous)
    with pytest.raises(CheckpointError, match="pass leak="):
        load_bntt(anonymous, input_shape=SHAPE)
    assert load_bntt(anonymous, leak=0.95, input_shape=SHAPE) == load_bntt(bntt.CHECKPOINT, input_shape=SHAPE)
    with pytest.raises(CheckpointError, match=r"2 convolutions and no input_shape.*pool_after"):
        load_bntt(anonymous, leak=0.95)

    ckpt = torch.load(bntt.CHECKPOINT, map_location="cpu", weights_only=False)
    state = OrderedDict((k, v) for k, v in ckpt["state_dict"].items() if not k.startswith("bntt2.9."))
    torch.save({"state_dict": state}, tmp_path / "short_leak0.95.pth.tar")
    with pytest.raises(CheckpointError, match="bntt2 has 9 per-step BatchNorms, other layers 10"):
        load_bntt(tmp_path / "short_leak0.95.pth.tar", input_shape=SHAPE)

    state = OrderedDict(ckpt["state_dict"])
    del state["bntt_fc.3.running_mean"]
    torch.save({"state_dict": state}, tmp_path / "hole_leak0.95.pth.tar")
    with pytest.raises(CheckpointError, match=r"missing key 'bntt_fc\.3\.running_mean' of shape \(64,\)"):
        load_bntt(tmp_path / "hole_leak0.95.pth.tar", input_shape=SHAPE)

    state = OrderedDict(ckpt["state_dict"])
    state["conv1.bias_extra"] = torch.zeros(16)
    torch.save({"state_dict": state}, tmp_path / "extra_leak0.95.pth.tar")
    with pytest.raises(CheckpointError, match=r"unknown key.*conv1\.bias_extra \(16,\)"):
        load_bntt(tmp_path / "extra_leak0.95.pth.tar", input_shape=SHAPE)


def test_poisson_encode_is_seeded_rate_code():
    image = np.array([[[0.0, 0.5], [1.0, -1.0]]])
    a = poisson_encode(image, steps=4000, seed=7, rescale=2.0)
    assert a.dtype == np.int8 and a.shape == (4000, 1, 2, 2)
    assert np.array_equal(a, poisson_encode(image, steps=4000, seed=7, rescale=2.0))
    assert not np.array_equal(a, poisson_encode(image, steps=4000, seed=8, rescale=2.0))
    rate = a.mean(axis=0)[0]
    # spike probability |x| / rescale, sign of x (BNTT's PoissonGen with rescale_fac=2)
    np.testing.assert_allclose(rate, [[0.0, 0.25], [0.5, -0.5]], atol=0.03)
    assert set(np.unique(a[:, 0, 1, 1])) <= {-1, 0}
    with pytest.raises(ValueError, match="NaN"):
        poisson_encode(np.array([np.nan]), 3, seed=0)
