"""The torch-free reader returns what ``torch.load`` returns, for every supported dtype, for views
that share a storage (transposes, slices, strides, offsets, expands), in zip and legacy files."""
from __future__ import annotations

import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

import eventsim as es  # noqa: E402
from eventsim.checkpoints import (CheckpointError, TensorInfo, describe_checkpoint, read_checkpoint,  # noqa: E402
                                  read_state_dict)

DTYPES = [torch.float16, torch.float32, torch.float64, torch.bfloat16, torch.int8, torch.int16, torch.int32,
          torch.int64, torch.uint8, torch.bool]


def _expected(t: "torch.Tensor") -> np.ndarray:
    t = t.detach()
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


def _assert_same(got, want, where="root"):
    if isinstance(want, torch.Tensor):
        exp = _expected(want)
        assert isinstance(got, np.ndarray), where
        assert got.dtype == exp.dtype and got.shape == exp.shape, (where, got.dtype, exp.dtype, got.shape, exp.shape)
        assert np.array_equal(got, exp, equal_nan=True), where
        assert got.flags.c_contiguous and got.flags.owndata
    elif isinstance(want, dict):
        assert type(got) is type(want) and list(got) == list(want), where
        for k in want:
            _assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want and type(got) is type(want), (where, got, want)


def _rich_checkpoint():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    sd = OrderedDict()
    for dt in DTYPES:
        name = str(dt).split(".")[1]
        src = torch.randint(-100, 100, (3, 4), generator=gen) if not dt.is_floating_point else torch.randn(3, 4, generator=gen)
        sd[name] = src.to(dt) if dt != torch.bool else src > 0
        sd[name + ".t"] = sd[name].t()                    # same storage, transposed
    sd.update({"base": base, "t": base.t(), "slice": base[1:4, 2:6], "step": base[::2, ::3], "row": base[3],
               "elem": base[2, 5], "col": base[:, 4], "expand": torch.ones(3, 1).expand(3, 5),
               "empty": torch.zeros(0, 4), "scalar": torch.tensor(2.5),
               "param": torch.nn.Parameter(torch.randn(2, 2, generator=gen)),
               "frozen": torch.nn.Parameter(torch.randn(2, generator=gen), requires_grad=False),
               "num_batches_tracked": torch.tensor(7)})
    return {"state_dict": sd, "epoch": 3, "accuracy": np.float64(91.25), "count": np.int64(4), "lr": 0.1,
            "flags": [True, None, "text"], "nested": {"t": (base[0], base[:, 0])}, "shape": torch.Size([2, 3]),
            "raw": b"\x00\xffbytes", "tags": {"a", "b"}}


@pytest.mark.parametrize("legacy", [False, True])
def test_matches_torch_load(tmp_path, legacy):
    obj = _rich_checkpoint()
    path = tmp_path / "rich.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    want = torch.load(path, weights_only=False)
    got = read_checkpoint(path)
    shape = got.pop("shape")
    assert shape == tuple(want.pop("shape"))
    _assert_same(got, want)


@pytest.mark.parametrize("legacy", [False, True])
def test_lazy_read_reports_shapes_without_data(tmp_path, legacy):
    torch.save(_rich_checkpoint(), tmp_path / "rich.pt", _use_new_zipfile_serialization=not legacy)
    lazy = read_checkpoint(tmp_path / "rich.pt", load_data=False)["state_dict"]
    assert isinstance(lazy["t"], TensorInfo) and lazy["t"].shape == (7, 5) and lazy["t"].stride == (1, 7)
    assert lazy["slice"].offset == 9 and lazy["bfloat16"].dtype == "bfloat16"


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_random_views_of_a_shared_storage(tmp_path_factory, data):
    ndim = data.draw(st.integers(1, 4))
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    base = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape)
    views = {"base": base}
    for i in range(3):
        v = base.permute(*data.draw(st.permutations(range(ndim))))
        index = []
        for n in v.shape:
            start = data.draw(st.integers(0, n - 1))
            stop = data.draw(st.integers(start + 1, n))
            index.append(slice(start, stop, data.draw(st.integers(1, 3))))
        views[f"v{i}"] = v[tuple(index)]
    path = tmp_path_factory.mktemp("views") / "v.pt"
    legacy = data.draw(st.booleans())
    torch.save(views, path, _use_new_zipfile_serialization=not legacy)
    _assert_same(read_checkpoint(path), torch.load(path, weights_only=True))


def test_big_endian_archive(tmp_path):
    """A zip whose ``byteorder`` says big holds byte-swapped storages; values stay the same."""
    src = tmp_path / "little.pt"
    sd = {"f": torch.randn(3, 2, dtype=torch.float64), "i": torch.arange(-3, 3, dtype=torch.int32),
          "h": torch.randn(4).half(), "b": torch.randn(4).bfloat16(), "u": torch.arange(5, dtype=torch.uint8)}
    torch.save(sd, src)
    sizes = {"0": 8, "1": 4, "2": 2, "3": 2, "4": 1}
    big = tmp_path / "big.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            key = info.filename.rsplit("/", 1)[-1]
            if info.filename.endswith("byteorder"):
                data = b"big"
            elif "/data/" in info.filename and key in sizes:
                data = np.frombuffer(data, f"u{sizes[key]}").byteswap().tobytes()
            zout.writestr(info.filename, data)
    got = read_state_dict(big)
    for k, v in sd.items():
        assert np.array_equal(got[k], _expected(v)), k
        assert got[k].dtype.isnative


@pytest.mark.parametrize("dtype", [torch.complex64, torch.uint16])
def test_unsupported_dtypes_are_refused_by_name(tmp_path, dtype):
    torch.save({"w": torch.zeros(3, dtype=dtype)}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=r"(complex|uint16)"):
        read_checkpoint(tmp_path / "c.pt")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_is_refused(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "ts.pt")
    with pytest.raises(CheckpointError, match="TorchScript"):
        read_checkpoint(tmp_path / "ts.pt")


def test_read_state_dict_finds_the_tensors(tmp_path):
    sd = OrderedDict([("module.a.weight", torch.ones(2, 3)), ("module.a.bias", torch.zeros(2))])
    torch.save(sd, tmp_path / "bare.pt")
    torch.save({"epoch": 1, "state_dict": sd}, tmp_path / "wrapped.pt")
    for name in ("bare.pt", "wrapped.pt"):
        got = read_state_dict(tmp_path / name)
        assert list(got) == list(sd) and got["module.a.weight"].shape == (2, 3)
    torch.save({"epoch": 1, "weights": [torch.ones(1)]}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"no state dict found; top-level keys are \['epoch', 'weights'\]"):
        read_state_dict(tmp_path / "odd.pt")


def test_unknown_layout_via_eventsim_load(tmp_path):
    torch.save(OrderedDict([("encoder.weight", torch.ones(2, 3))]), tmp_path / "generic.pt")
    with pytest.raises(CheckpointError, match=r"1 tensors \(encoder\.weight\) in no known layout"):
        es.load(tmp_path / "generic.pt")
    text = describe_checkpoint(tmp_path / "generic.pt")
    assert "layout: none of" in text and "encoder.weight" in text and "(2, 3)" in text
    with pytest.raises(CheckpointError, match=r"missing key 'features\.<i>\.weight'"):
        es.load(tmp_path / "generic.pt", format="diet")


def test_ambiguous_layout_asks_for_format(tmp_path):
    """A file that satisfies two layouts' key patterns is not guessed."""
    sd = OrderedDict([("layer1.0.weight", torch.ones(4, 2, 3, 3)), ("layer1.2.thresh", torch.ones(1)),
                      ("1.weight", torch.ones(10, 4))])
    torch.save({"state_dict": sd, "architecture": [{"type": "Conv2d"}], "input_shape": [2, 8, 8]},
               tmp_path / "both.pt")
    assert sorted(es.checkpoints.detect_layouts(tmp_path / "both.pt")) == ["ann", "qcfs"]
    with pytest.raises(ValueError, match=r"pass format="):
        es.load(tmp_path / "both.pt")
