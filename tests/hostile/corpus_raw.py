"""Hostile recordings of the formats read since issue #21: Prophesee RAW (EVT 3.0 / 2.0) and
AEDAT 3.1. Registered into :data:`hostile.corpus.CASES` (imported at the end of that module)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hostile.corpus import case


def _warm_kernels() -> None:
    """Load (or compile) the EVT kernels once, so that the memory peak of a refusal measures the
    read, not Numba loading its cache on the first call."""
    from eventsim.events.raw import decode_raw
    decode_raw(b"% evt 3.0\n% geometry 8x8\n" + np.asarray([0x8001, 0x2001], "<u2").tobytes())
    decode_raw(b"% evt 2.0\n% geometry 8x8\n" + np.asarray([0x80000001, 0x10000001], "<u4").tobytes())


_warm_kernels()


def _raw(path, words, header="% evt 3.0\n% geometry 1280x720\n", dtype="<u2", tail=b""):
    Path(path).write_bytes(header.encode() + np.asarray(words, dtype=dtype).tobytes() + tail)
    return path


_GOOD3 = [0x8000 | 5, 0x6000 | 7, 0x0000 | 3, 0x2000 | 10]     # TIME_HIGH, TIME_LOW, ADDR_Y, ADDR_X


@case("rec-raw-truncated-word", "recording", ".raw", r"truncated Prophesee RAW file: 9 bytes .* is incomplete")
def _(path, marker):
    return _raw(path, _GOOD3, tail=b"\x01")


@case("rec-raw-truncated-evt2-word", "recording", ".raw", r"truncated Prophesee RAW file: 6 bytes .* not a multiple of 4")
def _(path, marker):
    return _raw(path, [0x80000001], header="% evt 2.0\n% geometry 640x480\n", dtype="<u4", tail=b"\x00\x01")


@case("rec-raw-wrong-evt-header", "recording", ".raw", r"unsupported Prophesee event format '4\.0'")
def _(path, marker):
    return _raw(path, _GOOD3, header="% evt 4.0\n% geometry 1280x720\n")


@case("rec-raw-evt21-header", "recording", ".raw", r"unsupported Prophesee event format 'EVT21'")
def _(path, marker):
    return _raw(path, _GOOD3, header="% format EVT21;height=720;width=1280\n% end\n")


@case("rec-raw-no-evt-header", "recording", ".raw", r"no '% evt' or '% format' line")
def _(path, marker):
    return _raw(path, _GOOD3, header="% geometry 1280x720\n")


@case("rec-raw-absurd-geometry", "recording", ".raw", r"sensor size 4294967296x1 from '% geometry' is impossible")
def _(path, marker):
    return _raw(path, _GOOD3, header="% evt 3.0\n% geometry 4294967296x1\n")


@case("rec-raw-zero-geometry", "recording", ".raw", r"sensor size 0x0 from '% format' is impossible")
def _(path, marker):
    return _raw(path, _GOOD3, header="% format EVT3;height=0;width=0\n")


@case("rec-raw-no-sensor-size", "recording", ".raw", r"does not state the sensor size .* pass sensor_size=")
def _(path, marker):
    return _raw(path, _GOOD3, header="% evt 3.0\n% plugin_name hal_plugin_unknown\n")


@case("rec-raw-endless-header-line", "recording", ".raw", r"header: the line at byte offset 0 has no end")
def _(path, marker):
    Path(path).write_bytes(b"% evt 3.0" + b" " * (3 << 20))
    return path


@case("rec-raw-time-backwards", "recording", ".raw", r"time goes backwards: an event at \d+ µs after one at \d+ µs, "
      r"3000 µs earlier")
def _(path, marker):
    return _raw(path, _GOOD3 + [0x6000 | 3007, 0x2000 | 11, 0x6000 | 7, 0x2000 | 12])


@case("rec-raw-time-high-backwards", "recording", ".raw", r"TIME_HIGH 4 after 900, a decrease smaller than half")
def _(path, marker):
    return _raw(path, [0x8000 | 900, 0x0000, 0x2000, 0x8000 | 4, 0x2000 | 1])


@case("rec-raw-evt2-time-backwards", "recording", ".raw", r"time goes backwards")
def _(path, marker):
    cd = lambda t, x: (1 << 28) | (t << 22) | (x << 11)
    return _raw(path, [0x80000000 | 100, cd(0, 1), 0x80000000 | 90, cd(0, 2)],
                header="% evt 2.0\n% geometry 640x480\n", dtype="<u4")


@case("rec-raw-evt2-words-under-evt3-header", "recording", ".raw",
      r"does not define|outside the 1280x720 sensor|time goes backwards")
def _(path, marker):
    cd = lambda p, t, x, y: (p << 28) | (t << 22) | (x << 11) | y
    return _raw(path, np.asarray([0x80000010, cd(1, 3, 600, 400), cd(0, 5, 100, 50)], "<u4").view("<u2"))


@case("rec-raw-undefined-word", "recording", ".raw", r"has type 0xC, which EVT 3\.0 does not define")
def _(path, marker):
    return _raw(path, _GOOD3 + [0xC123])


@case("rec-raw-outside-geometry", "recording", ".raw", r"event x lies outside the 8x8 sensor")
def _(path, marker):
    return _raw(path, _GOOD3, header="% evt 3.0\n% geometry 8x8\n")


_AEDAT3 = b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


@case("rec-aedat3-capacity-bomb", "recording", ".aedat", r"declares 1073741824 x 8 bytes of events but 8 bytes remain")
def _(path, marker):
    Path(path).write_bytes(_AEDAT3 + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1 << 30, 1, 1) + struct.pack("<Ii", 3, 1))
    return path


@case("rec-aedat3-no-end-header", "recording", ".aedat", r"no '#!END-HEADER' line")
def _(path, marker):
    Path(path).write_bytes(b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n" + bytes(64))
    return path


@case("rec-aedat3-truncated-packet-header", "recording", ".aedat", r"not a whole 28-byte packet header")
def _(path, marker):
    Path(path).write_bytes(_AEDAT3 + bytes(27))
    return path


@case("rec-raw-evt3-words-under-evt2-header", "recording", ".raw",
      r"has type 0x6, which EVT 2\.0 does not define")
def _(path, marker):
    words = np.asarray([0x8000 | 5, 0x6000 | 7, 0x0000 | 3, 0x2000 | 10, 0x2000 | 11, 0x6000 | 9], "<u2")
    return _raw(path, words.view("<u4"), header="% evt 2.0\n% geometry 640x480\n", dtype="<u4")
