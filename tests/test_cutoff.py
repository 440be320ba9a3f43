"""Cutoff policies on hand-computed readout traces, and gap calibration against brute force."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.cutoff import (Trace, bn_gain_per_step, calibrate_gap, load_calibration, make_policy,
                             save_calibration, top_gap)

TIMES = np.array([10.0, 20.0, 30.0, 40.0])
LOGITS = np.array([[0.0, 0.0, 0.0],      # gap 0
                   [1.0, 0.5, 0.0],      # gap 0.5
                   [3.0, 1.0, 0.0],      # gap 2
                   [3.0, 4.0, 0.0]])     # gap 1, class 1 now leads
SYNOPS = np.array([5, 50, 500, 5000])
TRACE = Trace(TIMES, LOGITS, SYNOPS)


@pytest.mark.parametrize("name,params,row", [
    ("none", {}, 3),
    ("time", {"t_us": 25}, 1),          # last row ending at or before 25 µs
    ("time", {"t_us": 30}, 2),
    ("time", {"t_us": 5}, 0),
    ("synops", {"budget": 499}, 1),     # 500 would exceed the budget
    ("synops", {"budget": 500}, 2),
    ("gap", {"beta": 0.4}, 1),          # first gap strictly above 0.4
    ("gap", {"beta": 2.0}, 3),          # never strictly above 2: run to the end
    ("gap", {"beta": [9, 9, 1.5, 9]}, 2),
    ("confidence", {"epsilon": 0.2}, 2),  # softmax(3,1,0) max = 0.844 > 0.8; row 1 gives 0.51
    ("confidence", {"epsilon": 0.01}, 3),
])
def test_policies_on_hand_computed_trace(name, params, row):
    assert make_policy(name, **params).select(TRACE) == row


def test_confidence_row_values_by_hand():
    e = np.exp([3.0, 1.0, 0.0])
    assert e.max() / e.sum() == pytest.approx(0.8437947)
    e = np.exp([1.0, 0.5, 0.0])
    assert e.max() / e.sum() < 0.8


def test_gap_with_calibration_table_uses_grid_times():
    table = {"grid_us": np.array([20.0, 30.0]), "beta": np.array([0.1, np.inf]), "epsilon": 0.1}
    # row 0 (t=10) is before the table: never stop; row 1 (t=20) uses β=0.1 → gap 0.5 > 0.1
    assert make_policy("gap", calibration=table).select(TRACE) == 1


def test_fixed_exit_reads_bn_gain():
    net = es.Network((2,), [es.Linear(np.eye(2)),
                            es.IF(step_gain=np.array([[1.0, 1.0], [0.6, 0.4], [0.2, 0.2], [0.1, 0.1]])),
                            es.Linear(np.eye(2)), es.Readout()])
    np.testing.assert_allclose(bn_gain_per_step(net), [1.0, 0.5, 0.2, 0.1])
    assert make_policy("fixed-exit", threshold=0.3, network=net).select(TRACE) == 2
    assert make_policy("fixed-exit", threshold=0.05, network=net).select(TRACE) == 3
    with pytest.raises(ValueError, match="not a BNTT model"):
        make_policy("fixed-exit", threshold=0.3,
                    network=es.Network((2,), [es.Linear(np.eye(2)), es.Readout()]))


def test_policy_errors():
    with pytest.raises(ValueError, match="unknown cutoff policy"):
        make_policy("oracle")
    with pytest.raises(ValueError, match="beta"):
        make_policy("gap")
    with pytest.raises(ValueError, match="epsilon"):
        make_policy("confidence", epsilon=1.5)
    with pytest.raises(ValueError, match="bad parameters"):
        make_policy("time", budget=3)


def test_top_gap():
    np.testing.assert_allclose(top_gap(LOGITS), [0, 0.5, 2, 1])


def brute_force_beta(g, c, eps, min_support=1):
    """Try every candidate threshold in increasing order; keep the first that meets 1 − ε."""
    for beta in sorted(set([0.0] + list(g))):
        above = g > beta
        if above.sum() >= min_support and c[above].sum() >= (1 - eps) * max(above.sum(), 1):
            return beta
    return np.inf


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 30), k=st.integers(1, 4),
       eps=st.sampled_from([0.01, 0.05, 0.1, 0.3]), support=st.integers(1, 3))
def test_calibrate_gap_matches_brute_force(data, n, k, eps, support):
    gaps = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]), min_size=n * k,
                                       max_size=n * k))).reshape(n, k)
    correct = np.array(data.draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k))).reshape(n, k)
    beta = calibrate_gap(gaps, correct, eps, support)
    expected = [brute_force_beta(gaps[:, j], correct[:, j], eps, support) for j in range(k)]
    np.testing.assert_array_equal(beta, expected)


def test_calibration_roundtrip(tmp_path):
    path = tmp_path / "cal.json"
    save_calibration(path, {"policy": "gap", "epsilon": 0.05, "grid_us": [1.0, 2.0], "beta": [0.5, np.inf]})
    data = load_calibration(path)
    np.testing.assert_array_equal(data["beta"], [0.5, np.inf])
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a calibration table"):
        load_calibration(path)
