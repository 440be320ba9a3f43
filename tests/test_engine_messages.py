"""One message per mistake: both engines (and evaluate's windowed path) check their options and
inputs with the same shared code, so a user sees the same words whichever engine they chose."""
from __future__ import annotations

import numpy as np
import pytest

import eventsim as es
from eventsim.samples import start_sample


def _net():
    return es.Network((2, 4, 4), [es.Flatten(), es.Linear(np.full((3, 32), 0.5)), es.IF(), es.Linear(np.eye(3)),
                                  es.Readout()])


def _events(t, x=0):
    ev = np.zeros(len(t), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    ev["t"], ev["x"] = t, x
    return ev


ENGINES = [dict(engine="stepped", dt_us=1000), dict(engine="async", dt_us=1000),
           dict(engine="async", dt_us=1000, simultaneous="batch")]


def _message(fn) -> str:
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def test_unsorted_events_one_message():
    ev = _events([0, 500, 300, 900])
    messages = {_message(lambda o=o: es.simulate(_net(), ev, **o)) for o in ENGINES}
    messages.add(_message(lambda: start_sample(_net(), ev, 0, window_us=400, engine="async", dt_us=100)))
    assert messages == {"timestamps decrease at event 2: t = 300 µs after 500 µs; sort the events by t first"}


def test_unsorted_across_streamed_chunks_names_the_global_index():
    chunks = [_events([0, 100]), _events([50, 200])]
    msg = _message(lambda: es.simulate(_net(), iter(chunks), engine="async", dt_us=1000, t_stop_us=1000))
    assert msg == "timestamps decrease at event 2: t = 50 µs after 100 µs; sort the events by t first"


def test_out_of_sensor_and_bad_options_one_message():
    ev = _events([0, 10, 20], x=[0, 7, 1])
    assert len({_message(lambda o=o: es.simulate(_net(), ev, **o)) for o in ENGINES}) == 1
    assert "event 1: x=7 lies outside the sensor" in _message(lambda: es.simulate(_net(), ev, **ENGINES[0]))
    bad_dt = {_message(lambda e=e: es.simulate(_net(), _events([0]), engine=e, dt_us=float("nan")))
              for e in ("stepped", "async")}
    assert bad_dt == {"dt_us must be a positive, finite step length in µs, got nan"}
    bad_record = {_message(lambda e=e: es.simulate(_net(), _events([0]), engine=e, dt_us=1000, record="voltage"))
                  for e in ("stepped", "async")}
    assert len(bad_record) == 2 and all(m.startswith("record='voltage': choose from") for m in bad_record)
