"""Prophesee RAW (EVT 3.0 / EVT 2.0) reader against plain decoders of the documented layout written
here (one Python loop over the words, no state beyond the table), on the shared samples (counts and
ranges of ../shared/data/prophesee-evt3/SOURCE.md) and on hand-built word sequences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_shared_data
from eventsim import events as E
from eventsim.events.raw import MAX_BACKSTEP_US, TRIGGER_DTYPE, decode_raw, read_raw

# ----------------------------------------------------------------------------- plain decoders


def plain_evt3(words):
    """The EVT 3.0 table, literally: t = wraps * 2**24 + high * 4096 + low, wraps counted when
    TIME_HIGH drops by at least half its range. Returns lists (t, x, y, p) and triggers (t, id, v)."""
    y = base = vpol = high = low = wraps = 0
    seen = False
    ev, trig = [], []
    for w in words:
        kind, v = w >> 12, w & 0xFFF
        if kind == 0x0:
            y = w & 0x7FF
        elif kind == 0x6:
            low = v
        elif kind == 0x8:
            if seen and v != high:
                if v < high:
                    assert high - v >= 2048
                    wraps += 1
                low = 0
            high, seen = v, True
        elif kind == 0x2:
            ev.append((wraps * 2**24 + high * 4096 + low, w & 0x7FF, y, (w >> 11) & 1))
        elif kind == 0x3:
            base, vpol = w & 0x7FF, (w >> 11) & 1
        elif kind in (0x4, 0x5):
            n = 12 if kind == 0x4 else 8
            for i in range(n):
                if (w >> i) & 1:
                    ev.append((wraps * 2**24 + high * 4096 + low, base + i, y, vpol))
            base += n
        elif kind == 0xA:
            trig.append((wraps * 2**24 + high * 4096 + low, (w >> 8) & 0xF, w & 1))
    return ev, trig


def plain_evt2(words):
    """The EVT 2.0 table: t = wraps * 2**34 + high * 64 + (bits 27..22)."""
    high = wraps = 0
    seen = False
    ev, trig = [], []
    for w in words:
        kind = w >> 28
        if kind in (0, 1):
            ev.append((wraps * 2**34 + high * 64 + ((w >> 22) & 63), (w >> 11) & 0x7FF, w & 0x7FF, kind))
        elif kind == 0x8:
            v = w & 0xFFFFFFF
            if seen and v < high:
                assert high - v >= 2**27
                wraps += 1
            high, seen = v, True
        elif kind == 0xA:
            trig.append((wraps * 2**34 + high * 64 + ((w >> 22) & 63), (w >> 8) & 0x1F, w & 1))
    return ev, trig


def clamp(times):
    """Time kept non-decreasing: the documented rule (an event earlier than the last keeps its time)."""
    return np.maximum.accumulate(np.asarray(times, np.int64)) if len(times) else np.zeros(0, np.int64)


def _words(path, nbytes):
    data = path.read_bytes()
    pos = 0
    while data[pos:pos + 1] == b"%":
        pos = data.index(b"\n", pos) + 1
    return np.frombuffer(data, "<u2" if nbytes == 2 else "<u4", offset=pos).tolist()


def raw_bytes(words, evt="3.0", header=None):
    head = header if header is not None else f"% evt {evt}\n% geometry 1280x720\n"
    dtype = "<u2" if evt == "3.0" else "<u4"
    return head.encode() + np.asarray(words, dtype=dtype).tobytes()


def decode(words, evt="3.0", **kw):
    ev, trig, _ = decode_raw(raw_bytes(words, evt), **kw)
    return ev, trig


# EVT 3.0 word builders
def Y(y): return 0x0000 | y
def X(x, p): return 0x2000 | (p << 11) | x
def BASE(x, p): return 0x3000 | (p << 11) | x
def V12(bits): return 0x4000 | bits
def V8(bits): return 0x5000 | bits
def LOW(t): return 0x6000 | t
def HIGH(t): return 0x8000 | t
def TRIG(ch, v): return 0xA000 | (ch << 8) | v


# EVT 2.0 word builders
def CD(p, tlow, x, y): return (p << 28) | (tlow << 22) | (x << 11) | y
def HIGH2(v): return (0x8 << 28) | v
def TRIG2(tlow, ch, v): return (0xA << 28) | (tlow << 22) | (ch << 8) | v


def rows(ev):
    return [tuple(int(v) for v in r) for r in ev[["t", "x", "y", "p"]].tolist()]


# ----------------------------------------------------------------------------- shared samples


@pytest.fixture(scope="module")
def evt3_path():
    return require_shared_data("prophesee-evt3", "evt3_sample.raw")


@pytest.fixture(scope="module")
def evt2_path():
    return require_shared_data("prophesee-evt3", "evt2_sample.raw")


def test_evt3_sample_matches_source_counts_and_plain_decoder(evt3_path):
    ev = E.read_events(evt3_path)
    rec = E.read_recording(evt3_path)
    assert rec.format == "prophesee_raw" and rec.sensor_size == (1280, 720)
    # SOURCE.md: 219,596 events (p=0: 104,064; p=1: 115,532), x 0-1279, y 0-719
    assert ev.size == 219_596 and int((ev["p"] == 0).sum()) == 104_064 and int((ev["p"] == 1).sum()) == 115_532
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (0, 1279, 0, 719)
    words = _words(evt3_path, 2)
    kinds = np.bincount(np.asarray(words) >> 12, minlength=16)
    assert kinds[[0, 2, 3, 4, 5, 6, 8]].tolist() == [59_640, 197_550, 10_527, 21_242, 10_621, 8_812, 551]
    plain, trig = plain_evt3(words)
    t, x, y, p = (np.array(c) for c in zip(*plain))
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["y"], y)
    np.testing.assert_array_equal(ev["p"], p)
    np.testing.assert_array_equal(ev["t"], clamp(t))
    # the layout's time span: 11,718,656 ... 11,727,457 µs; clamping moves no event by more than ~11 µs
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (11_718_656, 11_727_457)
    assert np.all(np.diff(ev["t"]) >= 0) and trig == []
    # TIME_LOW steps back eleven times right after a TIME_HIGH (SOURCE.md): nine ~11 µs steps where
    # TIME_HIGH repeats, two 4095 -> 0 where it increments. No event falls between an ahead low and
    # the next low, so the events' layout times are already in order and nothing is clamped.
    lows = [w & 0xFFF for w in words if w >> 12 == 6]
    back = [(a, b) for a, b in zip(lows, lows[1:]) if b < a]
    assert len(back) == 11 and sum(a - b <= 12 for a, b in back) == 9 and back.count((4095, 0)) == 2
    np.testing.assert_array_equal(ev["t"], t)


def test_evt3_sample_xyp_equal_the_reference_decode_but_not_its_invented_wraps(evt3_path):
    ref = np.load(require_shared_data("prophesee-evt3", "evt3_sample_expected.npz"))["events"]
    ev = E.read_events(evt3_path)
    for k in "xyp":
        np.testing.assert_array_equal(ev[k], ref[k])
    # the reference adds 4096 µs at each of the eleven backward TIME_LOW steps: 11 x 4096 µs too late
    assert int(ref["t"].max()) == 11_727_457 + 11 * 4096 and int(ev["t"].max()) == 11_727_457


def test_evt2_sample_matches_source_counts_and_plain_decoder(evt2_path):
    ev = E.read_events(evt2_path)
    assert E.read_recording(evt2_path).sensor_size == (640, 480)
    assert ev.size == 539_481 and int((ev["p"] == 0).sum()) == 171_626 and int((ev["p"] == 1).sum()) == 367_855
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (1_317_888, 1_367_888)
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (60, 599, 18, 475)
    words = _words(evt2_path, 4)
    assert int(((np.asarray(words) >> 28) == 8).sum()) == 3_126
    plain, _ = plain_evt2(words)
    assert rows(ev) == plain                                   # already non-decreasing: nothing clamped


@pytest.mark.parametrize("name", ["evt3_sample.raw", "evt2_sample.raw"])
def test_samples_stream_in_chunks_identically(name):
    path = require_shared_data("prophesee-evt3", name)
    whole = read_raw(path)
    chunks = list(E.iter_raw(path, chunk_words=9_973))
    assert len(chunks) > 10 and all(np.all(np.diff(c["t"]) >= 0) for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    stream = E.iter_events(path, chunk_events=50_000)
    assert stream.sensor_size == E.read_recording(path).sensor_size
    np.testing.assert_array_equal(np.concatenate(list(stream)), whole)


# ----------------------------------------------------------------------------- hand-built EVT 3.0


def test_evt3_every_word_type():
    words = [HIGH(5), LOW(7), Y(3), X(10, 1), X(11, 0), BASE(100, 1), V12(0b100000000101), V8(0b10000001),
             LOW(9), TRIG(3, 1), Y(4), 0xE123, 0xF456, 0x7001, X(1279, 0), BASE(0, 0), V8(0b10)]
    ev, trig = decode(words)
    t = 5 * 4096 + 7
    assert rows(ev) == [(t, 10, 3, 1), (t, 11, 3, 0), (t, 100, 3, 1), (t, 102, 3, 1), (t, 111, 3, 1),
                        (t, 112, 3, 1), (t, 119, 3, 1),          # VECT_8 after VECT_12: base 100 + 12
                        (t + 2, 1279, 4, 0), (t + 2, 1, 4, 0)]
    assert trig.dtype == TRIGGER_DTYPE and trig.tolist() == [(5 * 4096 + 9, 3, 1)]
    assert rows(ev) == [tuple(r) for r in plain_evt3(words)[0]]


def test_evt3_24_bit_wrap_is_counted_from_time_high():
    words = [HIGH(4094), LOW(100), Y(0), X(1, 1), HIGH(4095), LOW(5), X(2, 1), HIGH(0), LOW(3), X(3, 1),
             HIGH(1), X(4, 0), HIGH(4095), HIGH(2), X(5, 0)]
    ev, _ = decode(words)
    assert ev["t"].tolist() == [4094 * 4096 + 100, 4095 * 4096 + 5, 2**24 + 3, 2**24 + 4096,
                                2 * 2**24 + 2 * 4096]
    assert rows(ev) == [tuple(r) for r in plain_evt3(words)[0]]


def test_evt3_backward_step_after_time_high_is_kept_at_the_earlier_time():
    # the pattern of the Gen4 sample: lows ... 799, HIGH (same), 811, 800, 801 ...
    words = [HIGH(2861), LOW(798), Y(1), X(1, 1), LOW(799), X(2, 1), HIGH(2861), LOW(811), X(3, 0), LOW(800),
             X(4, 0), LOW(811), X(5, 1), LOW(812), X(6, 1)]
    ev, _ = decode(words)
    base = 2861 * 4096
    assert ev["t"].tolist() == [base + 798, base + 799, base + 811, base + 811, base + 811, base + 812]
    assert ev["x"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(ev["t"], clamp([t for t, *_ in plain_evt3(words)[0]]))


def test_evt3_backward_step_beyond_the_tolerance_is_an_error():
    words = [HIGH(10), LOW(1000), Y(0), X(1, 1), LOW(1000 - MAX_BACKSTEP_US - 1), X(2, 1)]
    with pytest.raises(ValueError, match=r"byte offset 40: time goes backwards: an event at .* 257 µs earlier"):
        decode(words)
    ev, _ = decode(words, max_backstep_us=MAX_BACKSTEP_US + 1)
    assert ev["t"].tolist() == [10 * 4096 + 1000] * 2


def test_evt3_time_high_small_decrease_is_an_error_not_a_wrap():
    with pytest.raises(ValueError, match=r"TIME_HIGH 100 after 200, a decrease smaller than half the 12-bit range"):
        decode([HIGH(200), Y(0), X(0, 1), HIGH(100), X(1, 1)])


def test_evt3_events_between_a_new_time_high_and_its_time_low_start_at_low_zero():
    ev, _ = decode([HIGH(7), LOW(4095), Y(0), X(0, 1), HIGH(8), X(1, 1), LOW(2), X(2, 1)])
    assert ev["t"].tolist() == [7 * 4096 + 4095, 8 * 4096, 8 * 4096 + 2]


@pytest.mark.parametrize("word,kind", [(0x1000, "0x1"), (0x9ABC, "0x9"), (0xB000, "0xB"), (0xC000, "0xC"),
                                       (0xD000, "0xD")])
def test_evt3_undefined_word_types_are_errors(word, kind):
    with pytest.raises(ValueError, match=rf"word 0x{word:04x} at byte offset 34 has type {kind}, which EVT 3.0"):
        decode([HIGH(1), Y(0), word])


def test_evt3_coordinates_outside_the_sensor_are_errors():
    with pytest.raises(ValueError, match=r"event x lies outside the 1280x720 sensor \(size from '% geometry'\)"):
        decode([HIGH(1), Y(0), BASE(1275, 0), V8(0b110000)])
    with pytest.raises(ValueError, match=r"event y lies outside the 1280x720"):
        decode([HIGH(1), Y(720), X(0, 0)])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.one_of(
    st.integers(0, 719).map(Y), st.tuples(st.integers(0, 1279), st.integers(0, 1)).map(lambda a: X(*a)),
    st.tuples(st.integers(0, 1250), st.integers(0, 1)).map(lambda a: BASE(*a)),
    st.integers(0, 0xFFF).map(V12), st.integers(0, 0xFF).map(V8), st.integers(0, 4095).map(LOW),
    st.integers(0, 15).map(lambda c: TRIG(c, c & 1)), st.just(0xE000), st.just(0xF000)), max_size=60),
    st.integers(1, 7))
def test_evt3_random_streams_match_the_plain_decoder(body, chunk):
    """Random well-formed streams (one TIME_HIGH first, VECT bases kept inside the sensor by
    resetting them) decode as the plain table says, in any chunking, with clamped time."""
    words = [HIGH(3)] + [w for w in body]
    # keep vectors inside 1280 columns: a VECT_BASE_X before every vector word
    fixed = []
    for w in words:
        if w >> 12 in (4, 5):
            fixed.append(BASE(1000, 1))
        fixed.append(w)
    plain, trig = plain_evt3(fixed)
    times = [t for t, *_ in plain]
    if len(times) and np.any(np.maximum.accumulate(times) - np.asarray(times) > MAX_BACKSTEP_US):
        with pytest.raises(ValueError, match="time goes backwards"):
            decode(fixed, chunk_words=chunk)
        return
    ev, tr = decode(fixed, chunk_words=chunk)
    assert ev["x"].tolist() == [r[1] for r in plain] and ev["p"].tolist() == [r[3] for r in plain]
    np.testing.assert_array_equal(ev["t"], clamp(times))
    assert tr.tolist() == trig


# ----------------------------------------------------------------------------- hand-built EVT 2.0


def test_evt2_every_word_type_and_the_34_bit_wrap():
    top = 2**28 - 1
    words = [HIGH2(top - 1), CD(1, 5, 3, 4), CD(0, 63, 639, 479), TRIG2(7, 17, 1), (0xE << 28) | 5, (0xF << 28),
             HIGH2(top), CD(1, 0, 1, 1), HIGH2(0), CD(0, 2, 2, 2), HIGH2(3), CD(1, 1, 0, 0)]
    ev, trig = decode(words, "2.0")
    assert rows(ev) == [((top - 1) * 64 + 5, 3, 4, 1), ((top - 1) * 64 + 63, 639, 479, 0), (top * 64, 1, 1, 1),
                        (2**34 + 2, 2, 2, 0), (2**34 + 3 * 64 + 1, 0, 0, 1)]
    assert trig.tolist() == [((top - 1) * 64 + 7, 17, 1)]
    assert rows(ev) == [tuple(r) for r in plain_evt2(words)[0]]


def test_evt2_backward_steps():
    ev, _ = decode([HIGH2(10), CD(1, 40, 0, 0), CD(1, 30, 1, 0), CD(1, 50, 2, 0)], "2.0")
    assert ev["t"].tolist() == [680, 680, 690]
    with pytest.raises(ValueError, match="time goes backwards"):
        decode([HIGH2(10), CD(1, 0, 0, 0), HIGH2(20), CD(1, 0, 0, 0), HIGH2(12), CD(1, 0, 1, 0)], "2.0",
               max_backstep_us=10)
    with pytest.raises(ValueError, match="TIME_HIGH 12 after 20"):
        decode([HIGH2(20), HIGH2(12)], "2.0")
    with pytest.raises(ValueError, match="has type 0x5, which EVT 2.0 does not define"):
        decode([HIGH2(20), 0x5 << 28], "2.0")


# ----------------------------------------------------------------------------- header


@pytest.mark.parametrize("header,size,origin", [
    ("% evt 3.0\n% geometry 640x480\n% plugin_name hal_plugin_gen41_evk3\n", (640, 480), "'% geometry'"),
    ("% format EVT3;height=720;width=1280\n% end\n", (1280, 720), "'% format'"),
    ("% evt 3.0\n% plugin_name hal_plugin_imx636_evk4\n", (1280, 720), "plugin imx636"),
    ("% evt 2.0\n% plugin_name hal_plugin_gen31_fx3\n", (640, 480), "plugin gen31"),
])
def test_sensor_size_from_the_header(header, size, origin):
    evt = "2.0" if "2.0" in header else "3.0"
    _, _, head = decode_raw(raw_bytes([], evt, header))
    assert (head["sensor_size"], head["sensor_size_from"]) == (size, origin)


def test_header_errors():
    with pytest.raises(ValueError, match=r"does not state the sensor size .* pass sensor_size=\(width, height\)"):
        decode_raw(raw_bytes([], header="% evt 3.0\n% plugin_name mystery\n"))
    _, _, head = decode_raw(raw_bytes([], header="% evt 3.0\n"), sensor_size=(304, 240))
    assert head["sensor_size"] == (304, 240)
    with pytest.raises(ValueError, match=r"unsupported Prophesee event format '4.0'"):
        decode_raw(raw_bytes([], header="% evt 4.0\n% geometry 10x10\n"))
    with pytest.raises(ValueError, match=r"no '% evt' or '% format' line"):
        decode_raw(raw_bytes([], header="% geometry 10x10\n"))
    with pytest.raises(ValueError, match=r"sensor size 100000x5 from '% geometry' is impossible"):
        decode_raw(raw_bytes([], header="% evt 3.0\n% geometry 100000x5\n"))
    with pytest.raises(ValueError, match=r"truncated Prophesee RAW file: 3 bytes .* byte offset 29 is incomplete"):
        decode_raw(raw_bytes([HIGH(1)], header="% evt 3.0\n% geometry 10x10\n") + b"\x01")


def test_detection_and_triggers_on_request(tmp_path):
    path = tmp_path / "rec.bin.raw"
    path.write_bytes(raw_bytes([HIGH(1), TRIG(0, 1), Y(2), X(3, 1), TRIG(1, 0)]))
    other = tmp_path / "noext"
    other.write_bytes(path.read_bytes())
    assert E.detect_format(path) == "prophesee_raw" and E.detect_format(other) == "prophesee_raw"
    ev = E.read_raw(path)
    ev2, trig = E.read_raw(path, triggers=True)
    np.testing.assert_array_equal(ev, ev2)
    assert rows(ev) == [(4096, 3, 2, 1)] and trig["id"].tolist() == [0, 1]
    info = E.describe_recording(path)
    assert info["n_events"] == 1 and info["n_triggers"] == 2 and info["evt"] == "3.0"


def test_a_first_word_that_starts_with_a_percent_byte_is_data_not_header():
    """ADDR_X x=37 p=0 is the word 0x2025, bytes '%' ' ': after the header it is an event, because
    the rest of the 'line' is not header text (here the next word, TIME_LOW, holds a 0x00 byte)."""
    header = "% evt 3.0\n% geometry 64x64\n"
    ev, _, head = decode_raw(raw_bytes([0x2025, 0x6000, 0x0001, 0x2026], header=header))
    assert head["data_start"] == len(header) and rows(ev) == [(0, 37, 0, 0), (0, 38, 1, 0)]


def test_streaming_memory_is_bounded_by_the_chunk(tmp_path):
    """2 Mi events (26 MiB as one event array) stream through iter_raw, a fitting pipeline and
    describe_recording with a traced peak of a few MiB: the chunk, not the file."""
    import tracemalloc
    n = 1 << 21
    words = np.empty(2 * n + 1, "<u2")
    words[0] = HIGH(1)
    words[1::2] = Y(5)
    words[2::2] = 0x2000 | (np.arange(n) % 1280)
    path = tmp_path / "big.raw"
    path.write_bytes(raw_bytes(words))
    E.read_raw(path, chunk_words=64)                                     # warm the kernels
    from eventsim.events.transforms import parse_transforms
    pipe = parse_transforms("downsample=10;merge-polarity")
    tracemalloc.start()
    try:
        total = sum(len(pipe.apply(c, (1280, 720))) for c in E.iter_raw(path))
        info = E.describe_recording(path, transform="downsample=10")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == n and info["n_events"] == n and info["sensor_size"] == [128, 72]
    assert peak < 6 * 2**20, f"streaming peaked at {peak / 2**20:.1f} MiB"
