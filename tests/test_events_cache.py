"""HDF5 event cache, tonic adapter and the dataset recipes."""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from eventsim import events as E
from eventsim.events.cache import EventCache

ROOT = Path(__file__).resolve().parents[1]


def _random_sample(rng, n, t_max=10_000, size=(34, 34)):
    return E.make_events(np.sort(rng.integers(0, t_max, n)), rng.integers(0, size[0], n),
                         rng.integers(0, size[1], n), rng.integers(0, 2, n))


def _fields_equal(a, b):
    return all(np.array_equal(a[k].astype(np.int64), b[k].astype(np.int64)) for k in ("t", "x", "y", "p"))


def test_roundtrip_random_access_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    train = [(_random_sample(rng, n), n % 3, f"s{n}") for n in (5, 0, 40, 17)]
    test = [(_random_sample(rng, 9), 2)]
    path = E.build_cache(tmp_path / "c.h5", {"train": train, "test": test}, sensor_size=(34, 34, 2),
                         classes=["a", "b", "c"], provenance={"source": "unit test"}, chunk_events=8, progress=False)
    with E.open_cache(path, "train") as c:
        assert len(c) == 4 and c.sensor_size == (34, 34) and c.classes == ["a", "b", "c"]
        assert c.provenance == {"source": "unit test"} and c.names == ["s5", "s0", "s40", "s17"]
        for i in (2, 0, 3, 1, -1):  # random order, negative index
            ev, label = c[i]
            assert _fields_equal(ev, train[i][0]) and label == train[i][1]
        assert c.n_events(2) == 40
        with pytest.raises(IndexError, match="out of range"):
            c[4]
    c2 = E.open_cache(path, "test")
    assert _fields_equal(c2[0][0], test[0][0]) and c2.names == ["0"]
    with pytest.raises(ValueError, match="no split 'val'"):
        E.open_cache(path, "val")


def test_pickled_cache_reopens(tmp_path):
    import pickle
    rng = np.random.default_rng(1)
    s = [(_random_sample(rng, 7), 1)]
    path = E.build_cache(tmp_path / "c.h5", {"test": s}, sensor_size=(34, 34), progress=False)
    c = E.open_cache(path)
    c[0]
    c3 = pickle.loads(pickle.dumps(c))
    assert _fields_equal(c3[0][0], s[0][0])


def test_write_is_atomic_and_validates(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "c.h5"
    E.build_cache(path, {"test": [(_random_sample(rng, 3), 0)]}, sensor_size=(34, 34), progress=False)
    before = path.read_bytes()

    def broken():
        yield _random_sample(rng, 3), 0
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError, match="source died"):
        E.build_cache(path, {"test": broken()}, sensor_size=(34, 34), progress=False)
    bad = E.make_events([0, 1], [0, 40], [0, 0], [1, 1])
    with pytest.raises(ValueError, match=r"split 'test' sample 1 \(1\): x = 40 at event 1"):
        E.build_cache(path, {"test": [(_random_sample(rng, 3), 0), (bad, 1)]}, sensor_size=(34, 34), progress=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5"]  # no temp file left behind
    assert (path.stat().st_mode & 0o777) != 0o600


def test_same_input_same_bytes(tmp_path):
    def samples():
        rng = np.random.default_rng(5)
        return [(_random_sample(rng, 50), i % 10) for i in range(6)]
    a = E.build_cache(tmp_path / "a.h5", {"train": samples()}, sensor_size=(34, 34), progress=False)
    b = E.build_cache(tmp_path / "b.h5", {"train": samples()}, sensor_size=(34, 34), progress=False)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_window_streaming_matches_naive_and_bounded_reads(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    long = _random_sample(rng, 3000, t_max=1_000_000)
    path = E.build_cache(tmp_path / "c.h5", {"rec": [(long, 0), (_random_sample(rng, 4), 1)]}, sensor_size=(34, 34),
                         chunk_events=256, progress=False)
    c = E.open_cache(path)
    reads = []
    orig = EventCache._read

    def spy(self, lo, hi):
        reads.append(hi - lo)
        return orig(self, lo, hi)

    monkeypatch.setattr(EventCache, "_read", spy)
    window = 37_000
    got = list(c.iter_windows(0, window, block_events=100))
    assert max(reads) <= 100
    t0 = int(long["t"][0])
    n_windows = (int(long["t"][-1]) - t0) // window + 1
    assert [w[0] for w in got] == [t0 + k * window for k in range(n_windows)]
    for k, (start, ev) in enumerate(got):
        ref = long[(long["t"] >= start) & (long["t"] < start + window)]
        assert _fields_equal(ev, ref)
    later = list(c.iter_windows(0, 100_000, t_start_us=500_000, block_events=64))
    assert later[0][0] == 500_000 and sum(len(e) for _, e in later) == int(np.sum(long["t"] >= 500_000))


def test_not_a_cache(tmp_path):
    import h5py
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.attrs["format"] = "other"
    with pytest.raises(ValueError, match="not an eventsim event cache"):
        E.open_cache(tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError):
        E.open_cache(tmp_path / "missing.h5")


# ----------------------------------------------------------------------------- tonic


def _tonic_layout(nmnist_dir, tmp_path, n_per_split=3):
    """A partial tonic NMNIST folder of symlinks to the shared files (nothing is copied)."""
    test = E.LocalNMNIST(nmnist_dir, "test")
    root = tmp_path / "tonic"
    for path, label in list(zip(test.files, test.labels))[:n_per_split]:
        dest = root / "NMNIST" / "Test" / str(label) / (path.stem + ".bin")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path, dest)
    return root, test


@pytest.mark.realdata
def test_tonic_partial_nmnist_without_download(nmnist_dir, tmp_path):
    root, local = _tonic_layout(nmnist_dir, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"files not found under .*NMNIST.*never downloads.*partial=True"):
        E.load_tonic_dataset("nmnist", root, train=False)
    ds = E.load_tonic_dataset("NMNIST", root, partial=True, train=False)
    assert len(ds) == 3
    ev, target = ds[0]
    ours = E.from_tonic(ev, ds.sensor_size)  # tonic's x,y,t,p int64 array accepted as is
    idx = [i for i, f in enumerate(local.files) if f.stem == Path(ds.data[0]).stem][0]
    assert _fields_equal(ours, local[idx][0]) and target == local.labels[idx]
    # a tonic dataset goes straight into the cache; a tonic transform output is accepted too
    path = E.build_cache(tmp_path / "t.h5", {"test": ds}, sensor_size=ds.sensor_size, progress=False)
    assert _fields_equal(E.open_cache(path)[0][0], ours)
    import tonic.transforms as T
    assert E.from_tonic(T.Downsample(spatial_factor=0.5)(ev)).dtype == E.EVENT_DTYPE
    adapted = E.TonicAdapter(ds)
    assert adapted.sensor_size == (34, 34) and _fields_equal(adapted[0][0], ours)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        E.load_tonic_dataset("DVSGesture", tmp_path / "empty", train=False)
    with pytest.raises(ValueError, match="tonic has no dataset"):
        E.load_tonic_dataset("NoSuchSet", root)


@pytest.mark.realdata
def test_local_nmnist_layouts(nmnist_dir, tmp_path):
    root, _ = _tonic_layout(nmnist_dir, tmp_path, n_per_split=4)
    ds = E.LocalNMNIST(root, "test")  # tonic layout, no labels.csv
    assert len(ds) == 4 and ds.sensor_size == (34, 34, 2)
    with pytest.raises(FileNotFoundError, match="no train files.*never downloads"):
        E.LocalNMNIST(root, "train")
    with pytest.raises(ValueError, match="split must be"):
        E.LocalNMNIST(root, "val")


# ----------------------------------------------------------------------------- recipes


def _run_recipe(name, argv):
    spec = importlib.util.spec_from_file_location(name, ROOT / "datasets" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


@pytest.mark.realdata
def test_nmnist_recipe_on_shared_data(nmnist_dir, tmp_path):
    out = tmp_path / "nmnist.h5"
    assert _run_recipe("make_nmnist", ["--root", str(nmnist_dir), "--out", str(out), "--no-progress"]) == 0
    train, test = E.open_cache(out, "train"), E.open_cache(out, "test")
    assert (len(train), len(test)) == (1000, 100)
    assert test.names[0] == "test/60001.bs2" and test.labels[0] == 7  # labels.csv row 1
    for c, i in ((test, 0), (train, 999)):
        raw = np.fromfile(nmnist_dir / c.names[i], dtype=np.uint8).reshape(-1, 5)
        ev = c[i][0]
        assert ev["x"].tolist() == raw[:, 0].tolist() and ev["y"].tolist() == raw[:, 1].tolist()
    assert test.provenance["dataset"] == "N-MNIST"
    assert _run_recipe("make_nmnist", ["--root", str(tmp_path / "none"), "--out", str(out)]) == 2


@pytest.mark.realdata
def test_other_recipes_on_local_folders(shared_data, tmp_path):
    ncars = tmp_path / "ncars"
    for split, cls, f in (("train", "cars", "obj_004397_td.dat"), ("test", "background", "tonic_sample_ncars.dat")):
        (ncars / f"n-cars_{split}" / cls).mkdir(parents=True)
        os.symlink(shared_data / "ncars" / f, ncars / f"n-cars_{split}" / cls / f)
    out = tmp_path / "ncars.h5"
    assert _run_recipe("make_ncars", ["--root", str(ncars), "--out", str(out), "--no-progress"]) == 0
    assert E.open_cache(out, "train").labels.tolist() == [1] and E.open_cache(out, "test").labels.tolist() == [0]

    cifar = tmp_path / "cifar"
    for cls in ("airplane", "truck"):
        (cifar / cls).mkdir(parents=True)
        os.symlink(shared_data / "aedat2-dvs128" / "alex_walking_again.aedat", cifar / cls / "0.aedat")
    out = tmp_path / "cifar.h5"
    assert _run_recipe("make_cifar10dvs", ["--root", str(cifar), "--out", str(out), "--test-per-class", "1",
                                           "--no-progress"]) == 2  # train split would be empty
    assert _run_recipe("make_cifar10dvs", ["--root", str(cifar), "--out", str(out), "--test-per-class", "0",
                                           "--no-progress"]) == 2  # test split would be empty
    for cls in ("airplane", "truck"):
        os.symlink(shared_data / "aedat2-dvs128" / "alex_walking_again.aedat", cifar / cls / "1.aedat")
    assert _run_recipe("make_cifar10dvs", ["--root", str(cifar), "--out", str(out), "--test-per-class", "1",
                                           "--no-progress"]) == 0
    c = E.open_cache(out, "test")
    assert c.labels.tolist() == [0, 9] and c.n_events(0) == 19182 and c.classes[9] == "truck"


def test_dvsgesture_recipe_on_fake_tonic_folder(tmp_path):
    rng = np.random.default_rng(4)
    root = tmp_path / "tonic"
    for folder, label in (("ibmGestureTrain", 3), ("ibmGestureTest", 5)):
        d = root / "DVSGesture" / folder / "user01_led"
        d.mkdir(parents=True)
        n = 50
        arr = np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                        np.sort(rng.integers(0, 5000, n))], axis=1).astype(np.int64)  # x, y, p, t (ms)
        np.save(d / f"{label}.npy", arr)
    out = tmp_path / "g.h5"
    assert _run_recipe("make_dvsgesture", ["--root", str(root), "--out", str(out), "--no-progress"]) == 2
    assert _run_recipe("make_dvsgesture", ["--root", str(root), "--out", str(out), "--partial", "--no-progress"]) == 0
    test = E.open_cache(out, "test")
    ev, label = test[0]
    assert label == 5 and len(ev) == 50 and ev["t"].max() % 1000 == 0  # tonic converts ms to µs


def test_describe_cache_for_inspect(tmp_path):
    rng = np.random.default_rng(6)
    samples = [(_random_sample(rng, n), lab) for n, lab in ((4, 0), (6, 2), (3, 2))]
    path = E.build_cache(tmp_path / "c.h5", {"train": samples, "test": samples[:1]}, sensor_size=(34, 34),
                         classes=["a", "b", "c"], progress=False)
    info = E.describe_recording(path)
    assert info["format"] == "eventsim-cache" and info["n_events"] == 13 + 4
    assert info["splits"]["train"] == {"n_samples": 3, "n_events": 13, "n_per_label": [1, 0, 2]}
    text = E.format_recording(info)
    assert "split train   3 samples, 13 events" in text and "a, b, c" in text
