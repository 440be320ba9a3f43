"""Malicious or broken checkpoints are refused with a clear error, and nothing in them runs.

Payloads are built two ways: with ``torch.save`` of objects whose ``__reduce__`` calls a function
(and ``torch.load(weights_only=False)`` is used once to prove the payload is live), and as hand-
assembled pickle opcodes in a hand-built zip, independent of torch.
"""
from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile

import numpy as np
import pytest

import eventsim as es
from eventsim.checkpoints import (CheckpointError, UnsafeCheckpointError, describe_checkpoint, read_checkpoint,
                                  read_state_dict)

EXECUTED: list = []


def _mark(tag):
    EXECUTED.append(tag)
    return tag


class CallsMark:
    def __reduce__(self):
        return (_mark, ("payload ran",))


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(autouse=True)
def _clear_marks():
    EXECUTED.clear()
    yield
    EXECUTED.clear()


# ----------------------------------------------------------------------------- hand-built pickles


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    if -2**31 <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(key: str, numel: int, size: tuple, stride: tuple, storage="FloatStorage") -> bytes:
    pid = _tuple(_str("storage"), _global("torch", storage), _str(key), _str("cpu"), _int(numel))
    hooks = _global("collections", "OrderedDict") + b")R"
    args = _tuple(pid + b"Q", _int(0), _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89", hooks)
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _dict(**items: bytes) -> bytes:
    return b"}(" + b"".join(_str(k) + v for k, v in items.items()) + b"u"


def _write_zip(path, pkl: bytes, members: dict | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02" + pkl + b".")
        zf.writestr("archive/byteorder", b"little")
        for key, data in (members or {}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", b"3\n")
    return path


def test_hand_built_checkpoint_reads():
    """The assembler above writes what torch writes: a readable 2x3 tensor (control case)."""
    buf = io.BytesIO()
    _write_zip(buf, _dict(w=_tensor("0", 6, (2, 3), (3, 1))), {"0": np.arange(6, dtype="<f4").tobytes()})
    path = _save_bytes(buf)
    np.testing.assert_array_equal(read_state_dict(path)["w"], np.arange(6.0).reshape(2, 3))


_TMP = {}


def _save_bytes(buf: io.BytesIO):
    path = _TMP["dir"] / f"f{len(_TMP)}.pt"
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(autouse=True)
def _tmpdir(tmp_path):
    _TMP.clear()
    _TMP["dir"] = tmp_path


@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                                         ("builtins", "exec"), ("subprocess", "Popen"),
                                         ("torch", "load"), ("torch._utils", "_rebuild_qtensor"),
                                         ("numpy", "load"), ("argparse", "Namespace"),
                                         ("collections", "defaultdict"), ("__builtin__", "getattr")])
def test_global_outside_allow_list_is_refused(tmp_path, module, name):
    pkl = _dict(x=_global(module, name) + _tuple(_str("echo hi")) + b"R")
    path = _write_zip(tmp_path / "evil.pt", pkl)
    with pytest.raises(UnsafeCheckpointError, match=rf"refused to load global '{module}\.{name}'.*nothing"):
        read_checkpoint(path)


def test_refused_numpy_dtype_and_codec(tmp_path):
    scalar = _global("numpy._core.multiarray", "scalar")
    pkl = _dict(x=scalar + _tuple(_global("numpy", "dtype") + _tuple(_str("O8"), b"\x89", b"\x88") + b"R",
                                  _str("abc")) + b"R")
    with pytest.raises(UnsafeCheckpointError, match=r"NumPy dtype 'O8'"):
        read_checkpoint(_write_zip(tmp_path / "a.pt", pkl))
    pkl = _dict(x=_global("_codecs", "encode") + _tuple(_str("abc"), _str("rot13")) + b"R")
    with pytest.raises(UnsafeCheckpointError, match=r"'rot13'"):
        read_checkpoint(_write_zip(tmp_path / "b.pt", pkl))


def test_tensor_larger_than_its_storage_is_refused(tmp_path):
    members = {"0": np.zeros(6, "<f4").tobytes()}
    path = _write_zip(tmp_path / "big.pt", _dict(w=_tensor("0", 6, (100, 100), (100, 1))), members)
    for read in (read_checkpoint, lambda p: read_checkpoint(p, load_data=False), describe_checkpoint):
        with pytest.raises(CheckpointError, match=r"shape \(100, 100\).*needs 40000 bytes.*storage '0' holds 24"):
            read(path)
    # a view reaching past the end through its strides or offset
    path = _write_zip(tmp_path / "stride.pt", _dict(w=_tensor("0", 6, (2, 3), (4, 1))), members)
    with pytest.raises(CheckpointError, match=r"needs 28 bytes"):
        read_checkpoint(path)


def test_storage_declared_larger_than_archive_member_is_refused(tmp_path):
    """A huge declared storage is compared with the member's size before anything is allocated."""
    members = {"0": np.zeros(6, "<f4").tobytes()}
    pkl = _dict(w=_tensor("0", 10**12, (10**6, 10**6), (10**6, 1)))
    with pytest.raises(CheckpointError, match=r"member 'archive/data/0' has 24 bytes.*4000000000000"):
        read_checkpoint(_write_zip(tmp_path / "huge.pt", pkl, members))
    pkl = _dict(w=_tensor("1", 6, (6,), (1,)))
    with pytest.raises(CheckpointError, match=r"no member 'archive/data/1'"):
        read_checkpoint(_write_zip(tmp_path / "missing.pt", pkl, members))
    pkl = _dict(w=_tensor("../../etc/passwd", 6, (6,), (1,)))
    with pytest.raises(CheckpointError, match=r"not a plain name"):
        read_checkpoint(_write_zip(tmp_path / "path.pt", pkl, members))


def test_unsupported_storage_type_is_refused(tmp_path):
    pkl = _dict(w=_tensor("0", 2, (2,), (1,), storage="ComplexFloatStorage"))
    with pytest.raises(CheckpointError, match=r"holds complex64 elements; that dtype is not supported"):
        read_checkpoint(_write_zip(tmp_path / "c.pt", pkl, {"0": bytes(16)}))


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"hello world" * 10)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(CheckpointError, match="without data.pkl"):
        read_checkpoint(tmp_path / "other.zip")
    with tarfile.open(tmp_path / "old.tar", "w") as tf:
        info = tarfile.TarInfo("sys_info")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(CheckpointError, match="tar-format checkpoint"):
        read_checkpoint(tmp_path / "old.tar")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "absent.pt")


# ----------------------------------------------------------------------------- with torch.save


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("legacy", [False, True])
def test_reduce_payload_is_refused_and_never_runs(tmp_path, legacy):
    marker = tmp_path / "shell-ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "extra": CallsMark(), "shell": RunsShell(marker)}, path,
               _use_new_zipfile_serialization=not legacy)
    for attempt in (read_checkpoint, read_state_dict, describe_checkpoint, es.load,
                    lambda p: read_checkpoint(p, load_data=False)):
        with pytest.raises(UnsafeCheckpointError, match=r"refused to load global '.*_mark'"):
            attempt(path)
    assert EXECUTED == [] and not marker.exists()

    # the same file does run its payload under an unrestricted unpickler: the test is meaningful
    torch.load(path, weights_only=False)
    assert EXECUTED == ["payload ran"] and marker.exists()


def test_shell_payload_names_os_system(tmp_path):
    marker = tmp_path / "shell-ran"
    torch.save({"w": torch.ones(2), "x": RunsShell(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"'(posix|os|nt)\.system'"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_whole_pickled_module_is_refused(tmp_path):
    torch.save(torch.nn.Linear(3, 2), tmp_path / "module.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"'torch\.nn\.modules\.linear\.Linear'.*save model\.state_dict"):
        read_checkpoint(tmp_path / "module.pt")


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.98])
def test_truncated_file_is_refused(tmp_path, legacy, keep):
    path = tmp_path / "full.pt"
    torch.save({"a": torch.arange(5000.0), "b": torch.ones(300, dtype=torch.int64)}, path,
               _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"truncated|corrupt|ends"):
        read_checkpoint(cut)


def test_zip_member_size_disagreeing_with_pickle_is_refused(tmp_path):
    """Rewrite a real torch zip so that a storage member is shorter than the pickle declares."""
    path = tmp_path / "real.pt"
    torch.save({"w": torch.arange(12.0)}, path)
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:16] if info.filename.endswith("data/0") else data)
    with pytest.raises(CheckpointError, match=r"has 16 bytes, but the pickle declares 12 x float32 = 48"):
        read_checkpoint(bad)
