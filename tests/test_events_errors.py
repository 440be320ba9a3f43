"""Bad input: clear ValueErrors naming file, byte offset or event index; Hypothesis fuzzing of readers."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsim
from eventsim import events as E
from eventsim.events.aedat2 import decode_aedat2
from eventsim.events.aedat4 import MAGIC, decode_aedat4
from eventsim.events.nmnist import decode_nmnist
from eventsim.events.prophesee import decode_prophesee_dat

from conftest import require_shared_data

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nmnist_record(x, y, p, t):
    return bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])


def _check_valid(ev, size=None):
    assert ev.dtype == E.EVENT_DTYPE
    assert np.all(np.diff(ev["t"]) >= 0)
    assert set(np.unique(ev["p"]).tolist()) <= {0, 1}
    if size is not None and ev.size:
        assert ev["x"].max() < size[0] and ev["y"].max() < size[1]


# ----------------------------------------------------------------------------- validate_events


def test_validate_names_event_and_sort_fixes(tmp_path):
    ev = E.make_events([0, 10, 5, 20], [1, 2, 3, 4], [0, 0, 0, 0], [1, 0, 1, 1])
    with pytest.raises(ValueError, match=r"timestamps decrease at event 2: t = 5 µs after 10 µs.*sort=True"):
        E.validate_events(ev, (34, 34))
    fixed = E.validate_events(ev, (34, 34), sort=True)
    assert fixed["t"].tolist() == [0, 5, 10, 20] and fixed["x"].tolist() == [1, 3, 2, 4]
    with pytest.raises(ValueError, match=r"x = 4 at event 3 outside the sensor: expected 0 <= x < 4"):
        E.validate_events(fixed, (4, 4))
    bad_p = E.make_events([0, 1], [0, 0], [0, 0], [1, 2])
    with pytest.raises(ValueError, match="polarity at event 1 is 2"):
        E.validate_events(bad_p)
    with pytest.raises(ValueError, match="y = -1 at event 0"):
        E.validate_events(E.make_events([0], [0], [-1], [0]))


def test_validate_accepts_tonic_arrays_and_rejects_bad_dtypes():
    tonic_dtype = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", bool)])
    arr = np.array([(3, 4, 100, True), (5, 6, 200, False)], dtype=tonic_dtype)
    ev = E.validate_events(arr, (34, 34, 2))
    assert ev.dtype == E.EVENT_DTYPE and ev["t"].tolist() == [100, 200] and ev["p"].tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['p'\]"):
        E.validate_events(np.zeros(2, dtype=[("t", int), ("x", int), ("y", int)]))
    with pytest.raises(ValueError, match="plain"):
        E.validate_events(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="non-integer floats"):
        E.validate_events(np.array([(0.5, 1, 1, 1)], dtype=[("t", float), ("x", int), ("y", int), ("p", int)]))
    with pytest.raises(ValueError, match="outside the int16 range"):
        E.validate_events(np.array([(0, 70000, 1, 1)], dtype=[("t", int), ("x", int), ("y", int), ("p", int)]))
    with pytest.raises(ValueError, match="sensor_size"):
        E.validate_events(ev, (34,))


# ----------------------------------------------------------------------------- N-MNIST


def test_nmnist_errors_name_file_and_offset(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(nmnist_record(1, 1, 1, 10) + nmnist_record(2, 2, 0, 5) + nmnist_record(3, 3, 1, 20))
    with pytest.raises(ValueError, match=r"a\.bin: timestamps decrease at event 1 \(byte offset 5\)"):
        E.read_nmnist(path)
    assert E.read_nmnist(path, sort=True)["t"].tolist() == [5, 10, 20]
    path.write_bytes(nmnist_record(1, 1, 1, 10) + nmnist_record(40, 2, 0, 15))
    with pytest.raises(ValueError, match=r"x = 40 at event 1 \(byte offset 5\) outside the sensor"):
        eventsim.read_events(path)
    assert E.read_nmnist(path, sensor_size=None)["x"].tolist() == [1, 40]
    path.write_bytes(nmnist_record(1, 1, 1, 10) + b"\x00\x01")
    with pytest.raises(ValueError, match=r"truncated N-MNIST file: 7 bytes .* byte offset 5"):
        eventsim.read_events(path)


def test_nmnist_truncated_real_file(nmnist_dir, tmp_path):
    raw = (nmnist_dir / "test" / "60001.bs2").read_bytes()
    path = tmp_path / "cut.bs2"
    path.write_bytes(raw[:-3])
    with pytest.raises(ValueError, match=rf"cut\.bs2: truncated.*byte offset {len(raw) - 5}"):
        eventsim.read_events(path)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_nmnist(data):
    try:
        ev = decode_nmnist(data)
    except ValueError:
        return
    _check_valid(ev, (34, 34))
    assert ev.size * 5 == len(data)


# ----------------------------------------------------------------------------- AEDAT 2.0


def test_aedat2_errors(tmp_path):
    path = tmp_path / "a.aedat"
    path.write_bytes(b"#!AER-DATX\r\n")
    with pytest.raises(ValueError, match="malformed AEDAT version line"):
        eventsim.read_events(path)
    path.write_bytes(b"#!AER-DAT3.0\r\n" + b"\x00" * 8)        # 3.1 has its own reader (test_events_aedat3.py)
    with pytest.raises(ValueError, match="AEDAT version '3.0' is not supported"):
        eventsim.read_events(path)
    head = b"#!AER-DAT2.0\r\n"
    path.write_bytes(head + struct.pack(">II", 2, 10) + b"\x00\x00\x00")
    with pytest.raises(ValueError, match=rf"truncated AEDAT 2.0 file.*byte offset {len(head) + 8}"):
        eventsim.read_events(path)
    path.write_bytes(head + struct.pack(">IIII", 2, 10, 4, 9))
    with pytest.raises(ValueError, match=rf"timestamps decrease at event 1 \(byte offset {len(head) + 8}\)"):
        eventsim.read_events(path)
    with pytest.raises(ValueError, match="not an AEDAT file"):
        E.read_aedat2(require_shared_data("ncars", "obj_004397_td.dat"))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([b"#!AER-DAT2.0\r\n", b"#!AER-DAT2.0\r\n# AEChip: Davis346\r\n", b""]))
def test_fuzz_aedat2(body, head):
    try:
        ev = decode_aedat2(head + body)
    except ValueError:
        return
    _check_valid(ev)


# ----------------------------------------------------------------------------- AEDAT 4.0


def _aedat4_bytes():
    return require_shared_data("aedat4-dvxplorer", "sample.aedat4").read_bytes()


def test_aedat4_errors(tmp_path):
    raw = _aedat4_bytes()
    path = tmp_path / "x.aedat4"
    path.write_bytes(b"#!AER-DAT4.1\r\n" + raw[14:200])
    with pytest.raises(ValueError, match="not an AEDAT 4.0 file"):
        E.read_aedat4(path)
    path.write_bytes(raw[:1000])
    with pytest.raises(ValueError, match=r"x\.aedat4: truncated or corrupt AEDAT4 header"):
        eventsim.read_events(path)
    n = struct.unpack_from("<i", raw, 14)[0]
    first = 18 + n
    size = struct.unpack_from("<i", raw, first + 4)[0]
    path.write_bytes(raw[:first + 8 + size // 2])
    with pytest.raises(ValueError, match=rf"truncated or corrupt AEDAT4 packet at byte offset {first}"):
        eventsim.read_events(path)
    corrupt = bytearray(raw)
    corrupt[first + 8 + 20:first + 8 + 60] = bytes(40)  # inside the first LZ4 frame
    path.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match=rf"packet at byte offset {first}"):
        eventsim.read_events(path)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 945242), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_aedat4_mutations(edits):
    raw = bytearray(_aedat4_bytes())
    for pos, val in edits:
        raw[pos] = val
    try:
        ev, _ = decode_aedat4(bytes(raw), sort=False)
    except ValueError:
        return
    _check_valid(ev)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_aedat4_random(body):
    """Arbitrary bytes after the magic: valid events or a ValueError naming the source, never
    another exception (lz4 and zstandard are dependencies: an ImportError is a failure)."""
    try:
        ev, _ = decode_aedat4(MAGIC + body)
    except ValueError as exc:
        assert str(exc).startswith("<bytes>"), exc
        return
    _check_valid(ev)


# ----------------------------------------------------------------------------- Prophesee


def test_prophesee_errors(tmp_path):
    path = tmp_path / "a.dat"
    path.write_bytes(b"% Version 1\n\x00\x08")
    with pytest.raises(ValueError, match="version 1 is not supported"):
        E.read_prophesee_dat(path)
    path.write_bytes(b"% Version 2\n\x0c\x08")
    with pytest.raises(ValueError, match="unsupported Prophesee event type 12"):
        eventsim.read_events(path)
    head = b"% Version 2\n\x00\x08"
    path.write_bytes(head + struct.pack("<II", 5, 1 | (1 << 28)) + b"\x01")
    with pytest.raises(ValueError, match=rf"truncated Prophesee file.*byte offset {len(head) + 8}"):
        eventsim.read_events(path)
    path.write_bytes(head + struct.pack("<IIII", 5, 1 | (3 << 28), 6, 0))
    with pytest.raises(ValueError, match=rf"polarity at event 0 \(byte offset {len(head)}\) is 3"):
        eventsim.read_events(path)
    path.write_bytes(b"% Version 2\n% Width 10\n% Height 8\n\x00\x08" + struct.pack("<II", 5, 10))
    with pytest.raises(ValueError, match="x = 10 at event 0"):
        eventsim.read_events(path)
    with pytest.raises(ValueError, match="not a Prophesee .dat file"):
        E.read_prophesee_dat(require_shared_data("aedat2-dvs128", "alex_walking_again.aedat"))


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_prophesee(body):
    try:
        ev, _ = decode_prophesee_dat(b"% Version 2\n" + body)
    except ValueError:
        return
    _check_valid(ev)


def test_aedat4_bad_polarity_byte_names_packet(tmp_path):
    import lz4.frame
    raw = _aedat4_bytes()
    n = struct.unpack_from("<i", raw, 14)[0]
    first = 18 + n
    size = struct.unpack_from("<i", raw, first + 4)[0]
    payload = bytearray(lz4.frame.decompress(raw[first + 8:first + 8 + size]))
    r = 4 + struct.unpack_from("<I", payload, 4)[0]
    vt = r - struct.unpack_from("<i", payload, r)[0]
    fpos = r + struct.unpack_from("<H", payload, vt + 4)[0]
    vec = fpos + struct.unpack_from("<I", payload, fpos)[0]
    payload[vec + 4 + 16 * 3 + 12] = 200  # event 3's 'on' byte
    packed = lz4.frame.compress(bytes(payload))
    path = tmp_path / "p.aedat4"
    # only the first packet, and an IOHeader without data table (dataTablePosition = -1)
    hdr = bytearray(raw[18:first])
    root = struct.unpack_from("<I", hdr, 0)[0]
    vtab = root - struct.unpack_from("<i", hdr, root)[0]
    struct.pack_into("<q", hdr, root + struct.unpack_from("<H", hdr, vtab + 6)[0], -1)
    path.write_bytes(raw[:18] + bytes(hdr) + struct.pack("<ii", 0, len(packed)) + packed)
    with pytest.raises(ValueError, match=rf"polarity byte at event 3 \(event 3 of the packet at byte offset {first}\) is 200"):
        eventsim.read_events(path)
