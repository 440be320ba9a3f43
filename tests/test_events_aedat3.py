"""AEDAT 3.1 reader on files built here from the documented cAER layout (no real AEDAT 3.1 recording
is at hand): 28-byte packet headers, polarity events ``uint32 data, int32 timestamp``."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from eventsim import events as E

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01\r\n#!END-HEADER\r\n"


def polarity_word(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


def packet(kind, events, overflow=0, size=8, capacity=None, number=None, valid=None, payload=None):
    """One packet: header + ``events`` as (data, ts) pairs (or ``payload`` bytes)."""
    body = payload if payload is not None else b"".join(struct.pack("<Ii", d, t) for d, t in events)
    n = len(events)
    return struct.pack("<hhiiiiii", kind, 1, size, 4, overflow, n if capacity is None else capacity,
                       n if number is None else number, n if valid is None else valid) + body


def test_polarity_packets_decode_as_the_layout_says(tmp_path):
    """Hand-computed: x/y/p from the bit fields, t = overflow << 31 | ts, invalid events dropped,
    packets of other types (special, IMU) skipped, sensor size from '#Source 1: DVS128'."""
    first = [(polarity_word(1, 2, 1), 10), (polarity_word(127, 127, 0), 20), (polarity_word(5, 5, 1, valid=0), 25)]
    special = packet(0, [(0x12345678, 15)])
    imu = packet(3, [], size=60, payload=b"")
    second = [(polarity_word(3, 4, 0), 5)]
    path = tmp_path / "r.aedat"
    path.write_bytes(HEADER + packet(1, first, valid=2) + special + imu + packet(1, second, overflow=1))
    assert E.detect_format(path) == "aedat3"
    rec = E.read_recording(path)
    assert rec.format == "aedat3" and rec.sensor_size == (128, 128)
    assert rec.events[["t", "x", "y", "p"]].tolist() == [(10, 1, 2, 1), (20, 127, 127, 0), (2**31 + 5, 3, 4, 0)]
    np.testing.assert_array_equal(E.read_aedat3(path), rec.events)


def test_unknown_camera_has_no_size_and_sensor_size_can_be_given(tmp_path):
    path = tmp_path / "r.aedat"
    path.write_bytes(HEADER.replace(b"DVS128", b"Mystery") + packet(1, [(polarity_word(400, 300, 1), 1)]))
    assert E.read_recording(path).sensor_size is None
    with pytest.raises(ValueError, match=r"x = 400 at event 0 \(byte offset \d+\)"):
        E.read_events(path, sensor_size=(346, 260))


@pytest.mark.parametrize("tail,match", [
    (packet(1, [(polarity_word(1, 1, 1), 1)])[:-3], r"declares 1 x 8 bytes of events but 5 bytes remain"),
    (packet(1, [(polarity_word(1, 1, 1), 1)])[:20], r"20 bytes at byte offset \d+ are not a whole 28-byte packet header"),
    (packet(1, [], capacity=-1), r"corrupt AEDAT 3.1 packet header .* eventCapacity -1"),
    (packet(1, [(1, 1)], number=2, capacity=1), r"eventNumber 2"),
    (packet(1, [(polarity_word(1, 1, 1), 1)], size=4, capacity=2), r"polarity packet .* eventSize 4, expected 8"),
    (packet(1, [(polarity_word(1, 1, 1), 5), (polarity_word(1, 1, 1), 4)]), r"timestamps decrease|earlier"),
    (packet(1, [(polarity_word(1, 1, 1), -5)]), r"negative timestamp -5"),
])
def test_corrupt_files_are_refused_with_the_offset(tmp_path, tail, match):
    path = tmp_path / "r.aedat"
    path.write_bytes(HEADER + tail)
    with pytest.raises(ValueError, match=match):
        E.read_events(path)


def test_header_errors(tmp_path):
    path = tmp_path / "r.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(ValueError, match="no '#!END-HEADER' line"):
        E.read_events(path)
    path.write_bytes(HEADER.replace(b"3.1", b"3.0"))
    with pytest.raises(ValueError, match="AEDAT version '3.0' is not supported"):
        E.read_events(path)
