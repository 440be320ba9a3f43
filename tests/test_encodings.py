"""Input encodings used by evaluate, against the seed models' own input builders."""
from __future__ import annotations


import numpy as np
import pytest

import eventsim as es
from eventsim.encodings import encode



def _net(encoding, **meta):
    return es.Network((2, 34, 34), [es.Flatten(), es.Linear(np.zeros((10, 2312))), es.Readout()],
                      metadata={"input_encoding": encoding, **meta})


@pytest.fixture(scope="module")
def samples(nmnist_dir):
    from eventsim.events import LocalNMNIST
    data = LocalNMNIST(nmnist_dir, "test")
    return [data[i] for i in range(3)]


def test_analog_and_frames_match_seed_input_builders(samples):
    import nmnist_data
    for events, _ in samples:
        enc = encode(_net("analog"), events, steps=8, dt_us=1000)
        np.testing.assert_array_equal(enc.inputs, nmnist_data.count_image(events))
        assert enc.input_kind == "analog" and enc.steps == 8
        enc = encode(_net("frames"), events, steps=10)
        np.testing.assert_array_equal(enc.inputs, nmnist_data.count_frames(events, 10))
        span = events["t"][-1] + 1
        np.testing.assert_allclose(enc.times_us, span / 10 * np.arange(1, 11))


def test_poisson_is_seeded_per_sample(samples):
    events = samples[0][0]
    net = _net("poisson", poisson_rescale=2.0)
    a = encode(net, events, index=3, steps=10, seed=7).inputs
    b = encode(net, events, index=3, steps=10, seed=7).inputs
    c = encode(net, events, index=4, steps=10, seed=7).inputs
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # spike probability per step is image / rescale: compare the empirical rate on one draw
    image = encode(_net("analog"), events, steps=1).inputs
    many = encode(net, events, index=0, steps=2000, seed=1).inputs.mean(axis=0)
    assert np.abs(many - image / 2.0).max() < 0.05


def test_missing_steps_and_unknown_encoding(samples):
    events = samples[0][0]
    with pytest.raises(ValueError, match="needs a number of steps"):
        encode(_net("frames"), events)
    with pytest.raises(ValueError, match="unknown"):
        encode(_net("holograms"), events, steps=3)
