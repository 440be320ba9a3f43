"""Cutoff policies on hand-computed readout traces, and gap calibration against brute force."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.cutoff import (Trace, bn_gain_per_step, calibrate_gap, calibration_index, gap_table,
                             load_calibration, make_policy, save_calibration, top_gap)
from eventsim.evaluate import evaluate, gap_matrix
from eventsim.samples import SampleTrace
from eventsim.events import make_events

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
    assert data.get("index", "time") == "time"               # tables written before "index" existed
    save_calibration(path, {"policy": "gap", "epsilon": 0.05, "index": "row", "grid_us": [1.0, 2.0],
                            "beta": [0.5, np.inf]})
    assert load_calibration(path)["index"] == "row"
    save_calibration(path, {"policy": "gap", "epsilon": 0.05, "index": "bins", "grid_us": [1.0], "beta": [0.5]})
    with pytest.raises(ValueError, match="index='bins'"):
        load_calibration(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a calibration table"):
        load_calibration(path)


# ----------------------------------------------------------------------------- gap tables: row vs time

def brute_force_cutoff(gaps: np.ndarray, correct: np.ndarray, eps: float) -> np.ndarray:
    """Per sample: β of every row by brute force on the calibration traces themselves, then the first
    row whose gap clears its own row's β (the last row if none) -- what a per-step calibration means."""
    beta = np.array([brute_force_beta(gaps[:, k], correct[:, k], eps) for k in range(gaps.shape[1])])
    return np.array([next((k for k in range(len(beta)) if g[k] > beta[k]), len(beta) - 1) for g in gaps])


def frame_traces(spans_us, logits, labels) -> list[SampleTrace]:
    """Traces as the ``frames`` encoding makes them: K equal bins of each recording, so row k ends at
    span·(k+1)/K, a different time in every recording."""
    out = []
    for i, (span, lg, lab) in enumerate(zip(spans_us, logits, labels)):
        k = len(lg)
        z = np.zeros(k, np.int64)
        out.append(SampleTrace(i, int(lab), span / k * np.arange(1, k + 1), np.asarray(lg, float), z, z, z,
                               np.zeros((k, 1), np.int64), 0, int(span)))
    return out


# three recordings of 200, 300 and 400 ms in 4 bins: bin ends 50..200, 75..300, 100..400 ms; their
# mean grid is 75, 150, 225, 300 ms. On the time grid the short recording's bin 0 (50 ms) comes before
# the table and its bin 1 (100 ms) gets bin 0's β; the long one's bin 2 (300 ms) gets bin 3's β.
SPANS = np.array([200e3, 300e3, 400e3])
LABELS = np.array([0, 0, 1])
HAND_LOGITS = np.array([
    [[2.0, 0.0], [2.5, 0.0], [3.0, 0.0], [3.0, 1.0]],     # label 0: right from bin 0, gaps 2, 2.5, 3, 2
    [[1.0, 0.0], [1.0, 0.5], [2.0, 0.0], [2.0, 0.0]],     # label 0: right, gaps 1, 0.5, 2, 2
    [[1.5, 0.0], [0.0, 0.5], [2.0, 0.0], [1.0, 2.5]],     # label 1: wrong (gap 1.5), right, wrong (2), right
])
# per-bin β at ε = 0.1 (every stop above β must be right): bin 0 1.5, bin 1 0, bin 2 2, bin 3 0


def test_gap_table_per_row_for_frames_matches_brute_force():
    traces = frame_traces(SPANS, HAND_LOGITS, LABELS)
    gaps, correct, grid = gap_matrix(traces, 1.0)
    np.testing.assert_allclose(grid, [75e3, 150e3, 225e3, 300e3])
    eps = 0.1
    want = brute_force_cutoff(gaps, correct, eps)
    np.testing.assert_array_equal(want, [0, 1, 1])
    table = gap_table(gaps, correct, grid, eps, index="row")
    assert table["index"] == "row" and table["epsilon"] == eps
    np.testing.assert_array_equal(table["beta"], [1.5, 0.0, 2.0, 0.0])
    got = [make_policy("gap", calibration=table).select(Trace(t.times_us, t.logits, t.synops)) for t in traces]
    np.testing.assert_array_equal(got, want)
    # the same table read on the mean time grid moves the bins of the short and long recordings
    by_time = make_policy("gap", calibration={**table, "index": "time"})
    assert [by_time.select(Trace(t.times_us, t.logits, t.synops)) for t in traces] == [1, 1, 1]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(2, 12), k=st.integers(1, 6), eps=st.sampled_from([0.05, 0.1, 0.3]))
def test_gap_table_per_row_matches_brute_force_for_any_spans(data, n, k, eps):
    spans = np.array(data.draw(st.lists(st.integers(1, 50), min_size=n, max_size=n)), float) * 1e4
    logits = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), min_size=n * k * 3,
                                         max_size=n * k * 3))).reshape(n, k, 3)
    labels = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    traces = frame_traces(spans, logits, labels)
    gaps, correct, grid = gap_matrix(traces, 1.0)
    policy = make_policy("gap", calibration=gap_table(gaps, correct, grid, eps, index="row"))
    got = [policy.select(Trace(t.times_us, t.logits, t.synops)) for t in traces]
    np.testing.assert_array_equal(got, brute_force_cutoff(gaps, correct, eps))


def test_gap_table_by_time_on_a_shared_grid_matches_brute_force():
    """Event input: every recording shares the grid, so time and row indexing agree."""
    logits = HAND_LOGITS
    traces = frame_traces(np.full(3, 400e3), logits, LABELS)
    gaps, correct, grid = gap_matrix(traces, 100e3)
    want = brute_force_cutoff(gaps, correct, 0.1)
    for index in ("time", "row"):
        policy = make_policy("gap", calibration=gap_table(gaps, correct, grid, 0.1, index=index))
        assert [policy.select(Trace(t.times_us, t.logits, t.synops)) for t in traces] == want.tolist()


def test_calibrated_frames_network_end_to_end():
    """A frames network evaluated on recordings of different lengths: the table calibrated the way
    ``calibration_index`` says stops every recording where brute force on its own traces does."""
    rng = np.random.default_rng(3)
    recordings = []
    for i in range(12):
        n, span = 60, int(rng.integers(50_000, 300_000))
        t = np.sort(rng.integers(0, span, n))
        lab = i % 2
        # class 0 recordings light the left column early, class 1 the right column late, plus noise
        x = np.where(rng.random(n) < 0.7, np.where(t < span // 2, 0, 1) if lab else np.zeros(n, int),
                     rng.integers(0, 2, n))
        recordings.append((make_events(t, x, rng.integers(0, 2, n), np.ones(n, int)), lab))
    w = np.array([[1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]])      # input (1, 2, 2) → 2 classes
    net = es.Network((1, 2, 2), [es.Flatten(), es.Linear(w), es.Readout()],
                     metadata={"input_encoding": "frames", "steps": 5})
    assert calibration_index(net) == "row"
    assert calibration_index(es.Network((1, 2, 2), net.layers)) == "time"
    ev = evaluate(net, recordings)
    assert len({tuple(t.times_us) for t in ev.traces}) > 1          # per-recording bins
    gaps, correct, grid = gap_matrix(ev.traces, 1.0)
    table = gap_table(gaps, correct, grid, 0.2, index=calibration_index(net))
    rows = [r["cutoff_row"] for r in evaluate(net, recordings, cutoff=make_policy("gap", calibration=table)).records]
    np.testing.assert_array_equal(rows, brute_force_cutoff(gaps, correct, 0.2))


def test_gap_table_errors():
    g, c = np.zeros((2, 3)), np.ones((2, 3), bool)
    with pytest.raises(ValueError, match="index='bins'"):
        gap_table(g, c, [1, 2, 3], 0.1, index="bins")
    with pytest.raises(ValueError, match="2 grid times for 3 rows"):
        gap_table(g, c, [1, 2], 0.1)
    with pytest.raises(ValueError, match="index='steps'"):
        make_policy("gap", calibration={"beta": [1.0], "grid_us": [1.0], "index": "steps"})
    table = gap_table(g, c, [1, 2, 3], 0.1, index="row")
    with pytest.raises(ValueError, match="3 thresholds for 4 evaluation rows"):
        make_policy("gap", calibration=table).select(TRACE)
