"""``.safetensors`` weight files load wherever a ``torch.save`` state dict does (read with safetensors'
NumPy API, never torch), give the same networks, carry recorded options in their metadata, and a
damaged file gets a clear error."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

safetensors_numpy = pytest.importorskip("safetensors.numpy")
torch = pytest.importorskip("torch")

import eventsim as es  # noqa: E402
from eventsim.checkpoints import CheckpointError, describe_checkpoint, read_state_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models" / "seeds"))
import qcfs  # noqa: E402
import qcfs_resnet  # noqa: E402


def to_safetensors(pth: Path, out: Path, metadata=None) -> Path:
    state = torch.load(pth, map_location="cpu", weights_only=True)
    safetensors_numpy.save_file({k: v.numpy() for k, v in state.items()}, str(out), metadata=metadata)
    return out


def test_same_network_as_the_pth(tmp_path):
    model = qcfs_resnet.randomise(qcfs_resnet.resnet20(width=0.25))
    torch.save(model.state_dict(), tmp_path / "r20.pth")
    st = to_safetensors(tmp_path / "r20.pth", tmp_path / "r20.safetensors")
    a = es.load(tmp_path / "r20.pth", input_shape=(3, 32, 32))
    b = es.load(st, input_shape=(3, 32, 32))             # format detected from the keys, as for .pth
    assert a.layers == b.layers and b.metadata["format"] == "qcfs"
    raw = read_state_dict(st)
    assert sorted(raw) == sorted(model.state_dict()) and raw["fc.weight"].dtype == np.float32
    assert "safetensors format" in describe_checkpoint(st) and "layout: qcfs" in describe_checkpoint(st)


def test_metadata_records_options(tmp_path):
    plain = to_safetensors(qcfs.CHECKPOINT, tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match=r"pass pool='avg'.*pool='max'"):
        es.load(plain, input_shape=(2, 34, 34))
    recorded = to_safetensors(qcfs.CHECKPOINT, tmp_path / "rec.safetensors", metadata={"pool": "avg"})
    assert es.load(recorded, input_shape=(2, 34, 34)) == es.load(qcfs.CHECKPOINT, input_shape=(2, 34, 34), pool="avg")


def test_reads_without_torch(tmp_path):
    st = to_safetensors(qcfs.CHECKPOINT, tmp_path / "q.safetensors")
    code = ("import sys; sys.modules['torch'] = None; import eventsim as es; "
            f"net = es.load({str(st)!r}, input_shape=(2, 34, 34), pool='avg'); print(len(net.layers))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(es.load(qcfs.CHECKPOINT, input_shape=(2, 34, 34), pool="avg").layers)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) - 100], r"damaged safetensors file: tensor .*\(truncated or inconsistent\)"),
    (lambda b: b[:8] + b"{not json" + b[17:], r"damaged safetensors file: its JSON header does not parse"),
    (lambda b: (10 ** 6).to_bytes(8, "little") + b[8:],
     r"damaged safetensors file: header length 1000000 does not fit"),
])
def test_damaged_files(tmp_path, damage, message):
    st = to_safetensors(qcfs.CHECKPOINT, tmp_path / "good.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(damage(st.read_bytes()))
    with pytest.raises(CheckpointError, match=message):
        es.load(bad, format="qcfs", input_shape=(2, 34, 34), pool="avg")
    with pytest.raises(ValueError):
        es.load(bad)


def test_every_resnet_layout(tmp_path):
    """snncutoff's and DIET-SNN's ResNets: the same network from .safetensors as from .pth (DIET's
    thresholds are keys of the state dict; the checkpoint dict's other entries are not tensors)."""
    import diet_resnet
    import snncutoff_image
    model = snncutoff_image.resnet18(2, width=0.0625)
    torch.save(model.state_dict(), tmp_path / "s.pth")
    diet = diet_resnet.DietResNet(diet_resnet.CONFIGS["resnet12"], width=0.0625)
    torch.save(diet.state_dict(), tmp_path / "d.pth")
    for name in ("s", "d"):
        st = to_safetensors(tmp_path / f"{name}.pth", tmp_path / f"{name}.safetensors")
        a = es.load(tmp_path / f"{name}.pth", input_shape=(3, 32, 32))
        b = es.load(st, input_shape=(3, 32, 32))
        assert a.layers == b.layers and a.metadata["format"] == b.metadata["format"] == {"s": "aoi", "d": "diet"}[name]


def test_random_byte_damage_is_an_error_or_a_network(tmp_path):
    """Bytes overwritten or the file cut anywhere: a ValueError, or (damage inside tensor data) a network."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    good = to_safetensors(qcfs.CHECKPOINT, tmp_path / "good.safetensors").read_bytes()
    bad = tmp_path / "bad.safetensors"

    @settings(max_examples=40, deadline=None, database=None)
    @given(st.integers(0, len(good) - 1), st.binary(min_size=1, max_size=8), st.booleans())
    def run(pos, junk, cut):
        bad.write_bytes(good[:pos] if cut else good[:pos] + junk + good[pos + len(junk):])
        try:
            net = es.load(bad, format="qcfs", input_shape=(2, 34, 34), pool="avg")
        except ValueError:
            return
        assert len(net.layers) > 0
    run()


def test_cli_inspect(tmp_path, capsys):
    from eventsim.cli import main
    st = to_safetensors(qcfs.CHECKPOINT, tmp_path / "q.safetensors", metadata={"pool": "avg"})
    assert main(["inspect", str(st), "--model-option", "input_shape=[2,34,34]"]) == 0
    out = capsys.readouterr().out
    assert "safetensors format" in out and "layout: qcfs" in out and "entries: pool = 'avg'" in out
    assert "layer2.pool" in out        # imported as a network
