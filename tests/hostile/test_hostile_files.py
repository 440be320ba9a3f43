"""Every file of the hostile corpus (:mod:`hostile.corpus`) is refused by every entry point that
reads its kind: with a ValueError subclass whose message names the problem, without running any
code from the file (its marker never appears) and without allocating what the file declares
(tracemalloc peak per read, far below the gigabytes a bomb declares)."""
from __future__ import annotations

import gc
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

import eventsim as es
from eventsim import events as E
from eventsim.checkpoints import (CheckpointError, UnsafeCheckpointError, describe_checkpoint, read_checkpoint,
                                  read_state_dict)
from hostile import corpus, markers
from hostile.corpus import CASES, SEEDS

EXCEPTIONS = {"ValueError": ValueError, "CheckpointError": CheckpointError,
              "UnsafeCheckpointError": UnsafeCheckpointError}


def _consume_cache(path):
    with E.open_cache(path) as cache:
        for i in range(len(cache)):
            cache[i]
            list(cache.iter_windows(i, 1000, block_events=2))


def _nir_summary(path):
    from eventsim.nir import nir_summary
    return nir_summary(path)


def _load_nir(path):
    from eventsim.nir import load_nir
    return load_nir(path)


def readers(case, path):
    """``(label, callable)`` pairs: the entry points that must refuse ``case``."""
    kind, chosen = case.kind, case.readers
    if kind == "pt":
        table = {"all": [("read_checkpoint", read_checkpoint),
                         ("read_checkpoint(load_data=False)", lambda p: read_checkpoint(p, load_data=False)),
                         ("describe_checkpoint", describe_checkpoint), ("es.load", es.load)],
                 "data": [("read_checkpoint", read_checkpoint), ("read_state_dict", read_state_dict)],
                 "es.load": [("es.load", es.load)],
                 "import": [(f"es.load({layout})", lambda p, layout=layout, opts=opts: es.load(p, format=layout, **opts))
                            for layout, (_, opts, _) in SEEDS.items() if case.name.startswith(f"pt-{layout}-")]}
    elif kind == "npz":
        from eventsim.native import load_native
        table = {"all": [("es.load", es.load), ("load_native", load_native)], "es.load": [("es.load", es.load)]}
    elif kind == "nir":
        table = {"all": [("es.load", es.load), ("load_nir", _load_nir)]}
        if case.match.startswith("'/") or "nest more" in case.match or "more than one path" in case.match:
            table["all"].append(("nir_summary", _nir_summary))
    elif kind == "cache":
        table = {"all": [("open and read every sample", _consume_cache),
                         ("describe_recording", E.describe_recording)],
                 "ghost": [("open_cache(split='ghost')", lambda p: E.open_cache(p, "ghost"))]}
    else:
        table = {"all": [("read_events", E.read_events), ("describe_recording", E.describe_recording)]}
    out = [item for key in chosen for item in table[key]]
    assert out, f"no reader for {case.name}"
    return out


def _may_fail_without_reading(case, label):
    """Open-level cache errors only surface once samples are read; describe reads none."""
    return case.kind == "cache" and label == "describe_recording" and any(
        word in case.match for word in ("outside the sensor", "of the split", "timestamps decrease"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_file_is_refused(case, tmp_path):
    pytest.importorskip("nir") if case.kind == "nir" else None
    marker = tmp_path / "payload-ran"
    path = tmp_path / f"hostile{case.suffix}"
    case.build(path, str(marker))
    size = path.stat().st_size
    markers.CALLS.clear()
    exc = EXCEPTIONS[case.exc]
    for label, read in readers(case, path):
        if _may_fail_without_reading(case, label):
            continue
        gc.collect()
        tracemalloc.start()
        try:
            with pytest.raises(exc) as info:
                read(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        import re
        assert re.search(case.match, message), f"{label}: {message!r} does not match {case.match!r}"
        assert peak < case.peak_mib * 2**20, f"{label}: refusing took {peak / 2**20:.0f} MiB (file: {size} bytes)"
    assert not marker.exists() and markers.CALLS == [], "a payload ran"


# ----------------------------------------------------------------------------- the payloads are live


@pytest.mark.parametrize("module,name,args", markers.payload_calls("MARKER"),
                         ids=[f"{m}.{n}" for m, n, _ in markers.payload_calls("MARKER")])
def test_payloads_run_under_an_unrestricted_unpickler(tmp_path, module, name, args):
    """Control: the same opcodes do create the marker when unpickled without restrictions, so a
    missing marker above means the reader refused them, not that they were inert."""
    from hostile.ptfile import call, string
    marker = tmp_path / "ran"
    args = tuple(a.replace("MARKER", str(marker)) for a in args)
    pickle.loads(b"\x80\x02" + call(module, name, *map(string, args)) + b".")
    assert marker.exists()


def test_pickled_object_array_is_live(tmp_path):
    """Control for the ``.npz``/``.npy`` object-array payloads: NumPy with ``allow_pickle=True``
    runs them."""
    marker = tmp_path / "ran"
    corpus.write_native(tmp_path / "m.npz", {**corpus.good_native_members(),
                                              "L0.weight": np.array([corpus.Payload(str(marker))], dtype=object)})
    with np.load(tmp_path / "m.npz", allow_pickle=True) as data:
        data["L0.weight"]
    assert marker.exists()


def test_bombs_are_real(tmp_path):
    """Control: the zip bomb members inflate to what they declare (checked on the first MiBs and
    the CRC the archive records), and the corpus's good files load."""
    path = corpus.zip_with_member(tmp_path / "b.zip", {}, "m", 64 << 20)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("m")
        assert info.file_size == 64 << 20 and info.compress_size < 100_000
        with zf.open(info) as fh:
            total = 0
            while chunk := fh.read(1 << 22):
                assert not any(chunk)
                total += len(chunk)
        assert total == 64 << 20                              # CRC verified by zipfile at the end
    assert es.load(corpus.write_native(tmp_path / "good.npz", corpus.good_native_members())).input_shape == (3,)
    assert len(E.open_cache(corpus.good_cache(tmp_path / "good.h5"))) == 3
    pytest.importorskip("nir")
    assert es.load(corpus.good_nir(tmp_path / "good.nir")).layers[1].kind == "LIF"


def test_good_aedat4_writer_round_trips(tmp_path):
    """The AEDAT4 writer used for the bombs writes files eventsim reads back exactly."""
    import lz4.frame
    import zstandard
    first = E.make_events([1, 5, 5, 90], [0, 3, 33, 2], [1, 2, 3, 33], [1, 0, 1, 0])
    second = E.make_events([100, 250], [7, 8], [9, 10], [0, 1])
    packets = [corpus.events_packet(first), corpus.events_packet(second)]
    compress = {0: lambda b: b, 1: lz4.frame.compress, 3: zstandard.ZstdCompressor().compress}
    for code, fn in compress.items():
        path = corpus.aedat4_file(tmp_path / f"r{code}.aedat4", [fn(b) for b in packets], compression=code)
        np.testing.assert_array_equal(E.read_events(path), np.concatenate([first, second]))
        assert E.read_recording(path).sensor_size == (34, 34)
