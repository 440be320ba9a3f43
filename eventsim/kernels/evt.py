"""Decoders of Prophesee EVT 3.0 (16-bit words) and EVT 2.0 (32-bit words) event streams.

Each kernel decodes one chunk of words and carries the decoder state (an int64 array, slots
``S_*``) to the next chunk, so a file of any length streams through in bounded memory. The layout
and the time rule are documented in :mod:`eventsim.events.raw`; here:

* EVT 3.0, type = bits 15..12: ``0x0`` ADDR_Y (y = bits 10..0), ``0x2`` ADDR_X (one event at
  x = bits 10..0, p = bit 11), ``0x3`` VECT_BASE_X (base x, p), ``0x4`` VECT_12 / ``0x5`` VECT_8
  (an event at ``base_x + i`` for each set bit ``i`` of bits 11..0 / 7..0, then ``base_x += 12 / 8``),
  ``0x6`` TIME_LOW (bits 11..0), ``0x8`` TIME_HIGH (bits 23..12 of the 24-bit time), ``0xA``
  EXT_TRIGGER (value = bit 0, channel = bits 11..8), ``0x7``/``0xE``/``0xF`` CONTINUED_4 / OTHERS /
  CONTINUED_12 (no event).
* EVT 2.0, type = bits 31..28: ``0x0``/``0x1`` CD_OFF/CD_ON (t low = bits 27..22, x = bits 21..11,
  y = bits 10..0), ``0x8`` TIME_HIGH (bits 33..6 = bits 27..0), ``0xA`` EXT_TRIGGER (t low =
  bits 27..22, channel = bits 12..8, value = bit 0), ``0xE``/``0xF`` OTHERS / CONTINUED.

Time: a TIME_HIGH value lower than the previous one by at least half its range is a wrap of the
24-bit (EVT3) / 34-bit (EVT2) time and is counted; a smaller decrease is an error. A CD event whose
time is earlier than the previous event's by at most ``max_backstep_us`` gets the previous event's
time (time never decreases); by more, an error. Errors are returned as a status code and the index
of the offending word (kernels do not format messages). A ``count_*`` pass sizes the output; the
decoders write the packed event and trigger records directly (no column arrays to assemble).
"""
import numpy as np
from numba import njit

from ..config import JIT

# decoder state slots
S_Y, S_BASE_X, S_VPOL, S_HIGH, S_LOW, S_WRAPS, S_T_LAST, S_SEEN_HIGH = range(8)
STATE_SIZE = 8

# status codes
OK, UNKNOWN_WORD, HIGH_BACKWARDS, TIME_BACKWARDS, X_OUTSIDE, Y_OUTSIDE = range(6)

EVT3_ADDR_Y, EVT3_ADDR_X, EVT3_VECT_BASE_X, EVT3_VECT_12, EVT3_VECT_8 = 0x0, 0x2, 0x3, 0x4, 0x5
EVT3_TIME_LOW, EVT3_CONTINUED_4, EVT3_TIME_HIGH, EVT3_EXT_TRIGGER = 0x6, 0x7, 0x8, 0xA
EVT3_OTHERS, EVT3_CONTINUED_12 = 0xE, 0xF
EVT3_HIGH_BITS, EVT3_LOW_BITS = 12, 12          # 24-bit time
EVT2_CD_OFF, EVT2_CD_ON, EVT2_TIME_HIGH, EVT2_EXT_TRIGGER, EVT2_OTHERS, EVT2_CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xE, 0xF
EVT2_HIGH_BITS, EVT2_LOW_BITS = 28, 6           # 34-bit time


def new_state() -> np.ndarray:
    """A fresh decoder state (before the first word of a file)."""
    return np.zeros(STATE_SIZE, dtype=np.int64)


@njit(**JIT)
def count_evt3(words):
    """``(events, triggers)`` that EVT 3.0 ``words`` encode (the output sizes of :func:`decode_evt3`)."""
    n_events = 0
    n_triggers = 0
    for i in range(words.size):
        w = np.int64(words[i])
        kind = w >> 12
        if kind == EVT3_ADDR_X:
            n_events += 1
        elif kind == EVT3_VECT_12 or kind == EVT3_VECT_8:
            bits = w & (0xFFF if kind == EVT3_VECT_12 else 0xFF)
            while bits:
                n_events += bits & 1
                bits >>= 1
        elif kind == EVT3_EXT_TRIGGER:
            n_triggers += 1
    return n_events, n_triggers


@njit(**JIT)
def count_evt2(words):
    """``(events, triggers)`` that EVT 2.0 ``words`` encode."""
    n_events = 0
    n_triggers = 0
    for i in range(words.size):
        kind = np.int64(words[i]) >> 28
        if kind == EVT2_CD_OFF or kind == EVT2_CD_ON:
            n_events += 1
        elif kind == EVT2_EXT_TRIGGER:
            n_triggers += 1
    return n_events, n_triggers


@njit(**JIT)
def _set_high(state, high, high_bits):
    """Apply a TIME_HIGH value; returns False when it steps back without wrapping."""
    old = state[S_HIGH]
    if state[S_SEEN_HIGH] and high != old:
        if high < old:
            if old - high < (np.int64(1) << (high_bits - 1)):
                return False
            state[S_WRAPS] += 1
        state[S_LOW] = 0            # a new high period: the old low no longer applies
    state[S_HIGH] = high
    state[S_SEEN_HIGH] = 1
    return True


@njit(**JIT)
def _event_time(state, now, max_backstep_us):
    """The time of an event decoded at ``now``: kept at the last event's time within the tolerance;
    -1 when it steps back further."""
    if now < state[S_T_LAST]:
        if state[S_T_LAST] - now > max_backstep_us:
            return -1
        return state[S_T_LAST]
    state[S_T_LAST] = now
    return now


@njit(**JIT)
def decode_evt3(words, state, width, height, max_backstep_us, out, trig):
    """Decode EVT 3.0 ``words`` into the event records ``out`` and trigger records ``trig`` (sized
    by :func:`count_evt3`); returns ``(events written, triggers written, status, word index)``.
    On an error the records before word ``word index`` are written."""
    k = 0
    m = 0
    shift = EVT3_HIGH_BITS + EVT3_LOW_BITS
    for i in range(words.size):
        w = np.int64(words[i])
        kind = w >> 12
        if kind == EVT3_ADDR_Y:
            state[S_Y] = w & 0x7FF
        elif kind == EVT3_TIME_LOW:
            state[S_LOW] = w & 0xFFF
        elif kind == EVT3_TIME_HIGH:
            if not _set_high(state, w & 0xFFF, EVT3_HIGH_BITS):
                return k, m, HIGH_BACKWARDS, i
        elif kind == EVT3_VECT_BASE_X:
            state[S_BASE_X] = w & 0x7FF
            state[S_VPOL] = (w >> 11) & 1
        elif kind == EVT3_ADDR_X or kind == EVT3_VECT_12 or kind == EVT3_VECT_8:
            now = _event_time(state, (state[S_WRAPS] << shift) + (state[S_HIGH] << EVT3_LOW_BITS) + state[S_LOW],
                              max_backstep_us)
            if now < 0:
                return k, m, TIME_BACKWARDS, i
            row = state[S_Y]
            if row >= height:
                return k, m, Y_OUTSIDE, i
            if kind == EVT3_ADDR_X:
                col = w & 0x7FF
                if col >= width:
                    return k, m, X_OUTSIDE, i
                out[k]["t"] = now
                out[k]["x"] = col
                out[k]["y"] = row
                out[k]["p"] = (w >> 11) & 1
                k += 1
            else:
                n_bits = 12 if kind == EVT3_VECT_12 else 8
                base = state[S_BASE_X]
                for b in range(n_bits):
                    if (w >> b) & 1:
                        if base + b >= width:
                            return k, m, X_OUTSIDE, i
                        out[k]["t"] = now
                        out[k]["x"] = base + b
                        out[k]["y"] = row
                        out[k]["p"] = state[S_VPOL]
                        k += 1
                state[S_BASE_X] = base + n_bits
        elif kind == EVT3_EXT_TRIGGER:
            trig[m]["t"] = (state[S_WRAPS] << shift) + (state[S_HIGH] << EVT3_LOW_BITS) + state[S_LOW]
            trig[m]["id"] = (w >> 8) & 0xF
            trig[m]["value"] = w & 1
            m += 1
        elif kind == EVT3_OTHERS or kind == EVT3_CONTINUED_4 or kind == EVT3_CONTINUED_12:
            pass
        else:
            return k, m, UNKNOWN_WORD, i
    return k, m, OK, words.size


@njit(**JIT)
def decode_evt2(words, state, width, height, max_backstep_us, out, trig):
    """Decode EVT 2.0 ``words``; arguments and result as :func:`decode_evt3` (sizes: :func:`count_evt2`)."""
    k = 0
    m = 0
    shift = EVT2_HIGH_BITS + EVT2_LOW_BITS
    for i in range(words.size):
        w = np.int64(words[i])
        kind = w >> 28
        if kind == EVT2_CD_OFF or kind == EVT2_CD_ON:
            now = _event_time(state, (state[S_WRAPS] << shift) + (state[S_HIGH] << EVT2_LOW_BITS) + ((w >> 22) & 0x3F),
                              max_backstep_us)
            if now < 0:
                return k, m, TIME_BACKWARDS, i
            col = (w >> 11) & 0x7FF
            row = w & 0x7FF
            if col >= width:
                return k, m, X_OUTSIDE, i
            if row >= height:
                return k, m, Y_OUTSIDE, i
            out[k]["t"] = now
            out[k]["x"] = col
            out[k]["y"] = row
            out[k]["p"] = kind
            k += 1
        elif kind == EVT2_TIME_HIGH:
            if not _set_high(state, w & 0xFFFFFFF, EVT2_HIGH_BITS):
                return k, m, HIGH_BACKWARDS, i
        elif kind == EVT2_EXT_TRIGGER:
            trig[m]["t"] = (state[S_WRAPS] << shift) + (state[S_HIGH] << EVT2_LOW_BITS) + ((w >> 22) & 0x3F)
            trig[m]["id"] = (w >> 8) & 0x1F
            trig[m]["value"] = w & 1
            m += 1
        elif kind == EVT2_OTHERS or kind == EVT2_CONTINUED:
            pass
        else:
            return k, m, UNKNOWN_WORD, i
    return k, m, OK, words.size
