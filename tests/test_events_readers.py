"""Readers on the real files of ../shared/data, checked against independent decoders.

Each reference decoder below is a plain per-record ``struct`` loop written from the byte layout in
the folder's SOURCE.md, not from the reader; where tonic or expelliarmus read a file, they are a
second reference.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

import eventsim
from eventsim import events as E

from conftest import require_shared_data

pytestmark = pytest.mark.realdata


def _fields(ev):
    return [ev[k].astype(np.int64).tolist() for k in ("t", "x", "y", "p")]


# ----------------------------------------------------------------------------- N-MNIST


def _decode_nmnist_by_hand(raw: bytes):
    t, x, y, p = [], [], [], []
    for i in range(0, len(raw), 5):
        b0, b1, b2, b3, b4 = raw[i:i + 5]
        x.append(b0)
        y.append(b1)
        p.append(b2 >> 7)
        t.append(((b2 & 0x7F) << 16) | (b3 << 8) | b4)
    return [t, x, y, p]


@pytest.mark.parametrize("name", ["test/60001.bs2", "train/1.bs2", "train/1000.bs2", "extra/tonic_sample_nmnist.bin"])
def test_nmnist_matches_hand_decoder_and_tonic(nmnist_dir, name):
    import tonic.io
    path = nmnist_dir / name
    ev = E.read_nmnist(path)
    assert ev.dtype == E.EVENT_DTYPE
    assert _fields(ev) == _decode_nmnist_by_hand(path.read_bytes())
    ref = tonic.io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    assert [ref[k].tolist() for k in ("t", "x", "y", "p")] == _fields(ev)
    if name.startswith("extra"):
        assert ev.size == 4325  # SOURCE.md


def test_read_events_dispatches_nmnist(nmnist_dir):
    path = nmnist_dir / "test" / "60001.bs2"
    assert np.array_equal(eventsim.read_events(path), E.read_nmnist(path))
    assert E.detect_format(path) == "nmnist"


# ----------------------------------------------------------------------------- AEDAT 2.0


def _decode_dvs128_by_hand(raw: bytes):
    pos = 0
    while raw[pos:pos + 1] == b"#":
        pos = raw.index(b"\n", pos) + 1
    t, x, y, p = [], [], [], []
    for i in range(pos, len(raw), 8):
        addr, ts = struct.unpack(">II", raw[i:i + 8])
        t.append(ts)
        x.append((addr >> 1) & 0x7F)
        y.append((addr >> 8) & 0x7F)
        p.append(1 - (addr & 1))
    return pos, [t, x, y, p]


def test_aedat2_dvs128_matches_hand_decoder_and_source_md():
    path = require_shared_data("aedat2-dvs128", "alex_walking_again.aedat")
    raw = path.read_bytes()
    start, ref = _decode_dvs128_by_hand(raw)
    head = E.read_aedat2_header(path)
    assert head["data_start"] == start == 4612 and head["n_header_lines"] == 84
    assert head["layout"] == "dvs128" and head["sensor_size"] == (128, 128)
    ev = eventsim.read_events(path)
    assert _fields(ev) == ref
    # SOURCE.md: 19,182 events over 6.887 s, timestamps 41,306,606 to 48,193,156, x and y 0..127
    assert ev.size == 19182
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (41_306_606, 48_193_156)
    assert ev["x"].min() == 0 and ev["x"].max() == 127 and ev["y"].min() == 0 and ev["y"].max() == 127


def test_aedat2_dvs128_agrees_with_tonic_raw_events():
    import tonic.io
    path = require_shared_data("aedat2-dvs128", "alex_walking_again.aedat")
    version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    ev = E.read_aedat2(path)
    assert np.array_equal(ev["t"], raw["timeStamp"].astype(np.int64))
    assert np.array_equal(ev["x"], (raw["address"] >> 1) & 0x7F)
    flipped = E.read_aedat2(path, flip_x=True)  # jAER's display orientation
    assert np.array_equal(flipped["x"], 127 - ev["x"])


def test_aedat2_header_only_davis_file_gives_zero_events():
    path = require_shared_data("aedat2-davis346-header", "sample_aedat_header.aedat")
    head = E.read_aedat2_header(path)
    assert head["version"] == 2.0
    assert head["chip"] == "eu.seebetter.ini.chips.davis.Davis346red"
    assert head["sensor_size"] == (346, 260) and head["layout"] == "davis"
    assert head["creation_time_ms"] == 1695355587880
    # the file is 599 bytes of header ending in '\n'; tonic reports 598 because it steps back one
    # byte after reading past the end
    assert head["data_start"] == path.stat().st_size == 599
    ev = eventsim.read_events(path)
    assert ev.size == 0 and ev.dtype == E.EVENT_DTYPE
    info = E.describe_recording(path)
    assert info["n_events"] == 0 and info["sensor_size"] == [346, 260]
    assert "no events" in E.format_recording(info)


def test_aedat2_davis_layout_on_hand_built_records(tmp_path):
    # jAER DAVIS address: y bits 22-30, x bits 12-21, polarity bit 11, bit 10 external, bit 31 APS
    def addr(x, y, pol, ext=0, aps=0):
        return (aps << 31) | (y << 22) | (x << 12) | (pol << 11) | (ext << 10)
    recs = [(addr(345, 259, 1), 10), (addr(3, 4, 0), 11), (addr(5, 6, 1, ext=1), 12), (addr(7, 8, 1, aps=1), 13),
            (addr(0, 0, 0), 14)]
    header = b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.Davis346red\r\n"
    path = tmp_path / "davis.aedat"
    path.write_bytes(header + b"".join(struct.pack(">II", a, t) for a, t in recs))
    ev = eventsim.read_events(path)
    assert _fields(ev) == [[10, 11, 14], [345, 3, 0], [259, 4, 0], [1, 0, 0]]


# ----------------------------------------------------------------------------- AEDAT 4.0


def _decode_aedat4_by_hand(raw: bytes):
    """Plain decoder of SOURCE.md's layout: fixed field positions read through the vtables."""
    import lz4.frame
    n = struct.unpack_from("<i", raw, 14)[0]
    hdr = raw[18:18 + n]
    root = struct.unpack_from("<I", hdr, 0)[0]
    vt = root - struct.unpack_from("<i", hdr, root)[0]
    f1 = struct.unpack_from("<H", hdr, vt + 6)[0]
    table_pos = struct.unpack_from("<q", hdr, root + f1)[0]
    pos, out = 18 + n, [[], [], [], []]
    while pos < table_pos:
        sid, size = struct.unpack_from("<ii", raw, pos)
        payload = lz4.frame.decompress(raw[pos + 8:pos + 8 + size])
        pos += 8 + size
        if sid != 0:
            continue
        assert payload[8:12] == b"EVTS"
        r = 4 + struct.unpack_from("<I", payload, 4)[0]
        vtab = r - struct.unpack_from("<i", payload, r)[0]
        fpos = r + struct.unpack_from("<H", payload, vtab + 4)[0]
        vec = fpos + struct.unpack_from("<I", payload, fpos)[0]
        count = struct.unpack_from("<I", payload, vec)[0]
        for k in range(count):
            t, x, y, on = struct.unpack_from("<qhhB", payload, vec + 4 + 16 * k)
            for lst, v in zip(out, (t, x, y, on)):
                lst.append(v)
    return out


def test_aedat4_matches_hand_decoder_and_source_md():
    path = require_shared_data("aedat4-dvxplorer", "sample.aedat4")
    ev = eventsim.read_events(path)
    assert _fields(ev) == _decode_aedat4_by_hand(path.read_bytes())
    # SOURCE.md: 111,954 events (ON 55,023 / OFF 56,931), t 1605537493718345..1605537494308262, 320x240
    assert ev.size == 111_954 and int(ev["p"].sum()) == 55_023
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (1605537493718345, 1605537494308262)
    rec = E.read_recording(path)
    assert rec.sensor_size == (320, 240) and rec.meta["compression"] == "lz4"
    assert rec.meta["data_table_position"] == 945243
    assert rec.meta["streams"][0]["ts_offset"] == 1605507430438338
    assert rec.meta["streams"][2]["type"] == "IMUS"


def test_aedat4_zstd_and_uncompressed_repack(tmp_path):
    """Repack the real file's event packets with ZSTD / no compression; same events come back."""
    import zstandard
    import lz4.frame
    path = require_shared_data("aedat4-dvxplorer", "sample.aedat4")
    raw = path.read_bytes()
    ref = eventsim.read_events(path)
    n = struct.unpack_from("<i", raw, 14)[0]
    hdr = bytearray(raw[18:18 + n])
    root = struct.unpack_from("<I", hdr, 0)[0]
    vt = root - struct.unpack_from("<i", hdr, root)[0]
    comp_pos = root + struct.unpack_from("<H", hdr, vt + 4)[0]
    table_pos = root + struct.unpack_from("<H", hdr, vt + 6)[0]
    end = struct.unpack_from("<q", hdr, table_pos)[0]
    for code, pack in ((3, zstandard.ZstdCompressor().compress), (0, lambda b: b)):
        h = bytearray(hdr)
        struct.pack_into("<i", h, comp_pos, code)
        struct.pack_into("<q", h, table_pos, -1)  # no data table
        body, pos = [], 18 + n
        while pos < end:
            sid, size = struct.unpack_from("<ii", raw, pos)
            payload = pack(lz4.frame.decompress(raw[pos + 8:pos + 8 + size]))
            body.append(struct.pack("<ii", sid, len(payload)) + payload)
            pos += 8 + size
        out = tmp_path / f"repack{code}.aedat4"
        out.write_bytes(raw[:18] + bytes(h) + b"".join(body))
        assert np.array_equal(eventsim.read_events(out), ref)


# ----------------------------------------------------------------------------- Prophesee .dat


def _decode_dat_by_hand(raw: bytes):
    pos = 0
    while raw[pos:pos + 1] == b"%":
        pos = raw.index(b"\n", pos) + 1
    assert raw[pos] == 0 and raw[pos + 1] == 8
    out = [[], [], [], []]
    for i in range(pos + 2, len(raw), 8):
        t, w = struct.unpack("<II", raw[i:i + 8])
        for lst, v in zip(out, (t, w & 0x3FFF, (w >> 14) & 0x3FFF, (w >> 28) & 0xF)):
            lst.append(v)
    return out


def test_prophesee_dat_matches_reference_npy_and_hand_decoder():
    path = require_shared_data("ncars", "obj_004397_td.dat")
    ev = eventsim.read_events(path)
    ref = np.load(path.with_name("obj_004397_td.expected_events.npy"))
    assert [ref[k].astype(np.int64).tolist() for k in ("t", "x", "y", "p")] == _fields(ev)
    assert _fields(ev) == _decode_dat_by_hand(path.read_bytes())
    assert ev.size == 4407 and int(ev["t"][-1]) == 99_937


def test_prophesee_dat_tonic_sample_agrees_with_expelliarmus():
    path = require_shared_data("ncars", "tonic_sample_ncars.dat")
    ev = E.read_prophesee_dat(path, sensor_size=(120, 100))
    assert _fields(ev) == _decode_dat_by_hand(path.read_bytes())
    # SOURCE.md: 2009 events; x 0-77, y 0-41; t 0-99,952 µs
    assert ev.size == 2009 and ev["x"].max() == 77 and ev["y"].max() == 41 and int(ev["t"][-1]) == 99_952
    expelliarmus = pytest.importorskip("expelliarmus")
    ref = expelliarmus.Wizard(encoding="dat").read(str(path))
    assert [ref[k].astype(np.int64).tolist() for k in ("t", "x", "y", "p")] == _fields(ev)


# ----------------------------------------------------------------------------- inspect


def test_describe_recording_numbers(nmnist_dir):
    path = nmnist_dir / "test" / "60001.bs2"
    recs = _decode_nmnist_by_hand(path.read_bytes())
    info = E.describe_recording(path)
    t = recs[0]
    assert info["n_events"] == len(t) and info["sensor_size"] == [34, 34] and info["format"] == "nmnist"
    assert info["duration_s"] == pytest.approx((t[-1] - t[0]) / 1e6)
    assert info["rate_ev_per_s"] == pytest.approx(len(t) / ((t[-1] - t[0]) / 1e6))
    assert info["n_on"] == sum(recs[3]) and info["n_on"] + info["n_off"] == len(t)
    text = E.format_recording(info)
    assert "34 x 34" in text and f"{len(t):,}" in text and "% ON" in text


def test_read_events_unknown_format_is_clear(tmp_path):
    p = tmp_path / "x.xyz"
    p.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="cannot tell the event format"):
        eventsim.read_events(p)
    with pytest.raises(FileNotFoundError):
        eventsim.read_events(tmp_path / "missing.bin")
