"""The evaluation pipeline: records agree with direct simulations, results.json has its schema."""
from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

import eventsim as es
from eventsim.cli import main
from eventsim.evaluate import evaluate

EVENT_DTYPE = [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")]


def toy_net(seed=0):
    rng = np.random.default_rng(seed)
    return es.Network((2, 6, 6), [es.Conv2d(rng.normal(0.3, 0.5, (4, 2, 3, 3)), padding=1), es.IF(threshold=1.0),
                                  es.SumPool2d(2), es.Flatten(), es.Linear(rng.normal(0, 0.5, (3, 36))),
                                  es.Readout()], metadata={"dt_us": 1000})


def toy_events(seed, n=200, t_max=9000):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, t_max, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 6, n), rng.integers(0, 6, n), rng.integers(0, 2, n)
    return ev


class ToySet:
    sensor_size = (6, 6)

    def __init__(self, n=6):
        self.items = [(toy_events(i, t_max=4000 + 1000 * i), i % 3) for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


REQUIRED = {"accuracy", "samples", "spikes_per_sample", "synops_per_sample", "macs_per_sample",
            "energy_pj_per_sample", "energy_table", "synop_convention", "engine", "cutoff", "curve"}


def test_records_match_direct_simulation():
    net, data = toy_net(), ToySet()
    ev = evaluate(net, data, cutoff="time", cutoff_params={"t_us": 3500})
    assert REQUIRED <= set(ev.summary)
    rows = len(ev.summary["curve"])
    assert rows == 9                                          # the longest recording spans 9 steps of 1 ms
    for rec, (events, label) in zip(ev.records, data.items):
        res = es.simulate(net, events, dt_us=1000)
        at = res.at(t_us=3500)
        assert rec["cutoff_t_us"] == 3000 and rec["synops"] == at.synops and rec["spikes"] == at.spikes
        assert rec["prediction"] == int(np.argmax(at.logits))
        assert rec["synops_total"] == res.synops
        assert rec["energy_pj"] == pytest.approx(at.synops * 0.9 + at.macs * 4.6)
    # curve: accuracy at the last grid point = accuracy of the final readouts
    finals = [int(np.argmax(es.simulate(net, e, dt_us=1000).final_logits)) for e, _ in data.items]
    assert ev.summary["curve"][-1]["accuracy"] == pytest.approx(np.mean([f == l for f, (_, l) in zip(finals, data.items)]))
    assert ev.summary["accuracy"] == pytest.approx(np.mean([r["correct"] for r in ev.records]))
    assert ev.summary["cutoff"]["policy"] == "time" and ev.summary["cutoff"]["t_us"] == 3500


def test_shorter_recordings_hold_their_final_state():
    net, data = toy_net(), ToySet()
    ev = evaluate(net, data)
    first = ev.traces[0]                                      # 4 ms recording, padded to 9 rows
    np.testing.assert_array_equal(first.logits[4:], np.repeat(first.logits[3:4], 5, axis=0))
    assert ev.summary["cutoff"]["synops_saving"] == 0.0


def test_write_outputs(tmp_path):
    ev = evaluate(toy_net(), ToySet(), cutoff="confidence", cutoff_params={"epsilon": 0.2})
    written = ev.write(tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert REQUIRED <= set(data)
    assert set(data["curve"][0]) == {"t_us", "accuracy", "synops_per_sample", "energy_pj_per_sample"}
    lines = (tmp_path / "per_sample.csv").read_text().splitlines()
    assert len(lines) == 1 + 6 and lines[0].startswith("index,label,prediction")
    for name in ("accuracy_vs_time.png", "accuracy_vs_cost.png", "spikes_per_layer.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))                  # no temp files left behind
    assert len(written) == 5


def test_sensor_mismatch_is_a_clear_error():
    class Big(ToySet):
        sensor_size = (34, 34)
    with pytest.raises(ValueError, match=r"expects input \(2, 6, 6\).*34×34"):
        evaluate(toy_net(), Big())


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
    assert "no such model file" in capsys.readouterr().err
    path = tmp_path / "m.npz"
    es.save(toy_net(), path)
    assert main(["evaluate", "--model", str(path), "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(path), "--cutoff", "oracle", "--out", str(tmp_path)]) == 2
    assert "unknown cutoff policy 'oracle'" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(path), "--cutoff", "time", "--cutoff-param", "t_us", "--out",
                 str(tmp_path)]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_interrupted_run_resumes_to_identical_results(tmp_path, monkeypatch, capsys):
    import eventsim.evaluate as evmod
    model = tmp_path / "demo.npz"
    es.save(es.load(evmod.DEMO_MODEL_PATH), model)
    args = ["evaluate", "--model", str(model), "--limit", "6", "--no-figures", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    assert not (tmp_path / "full" / ".partial").exists()          # cleaned up after success

    real = evmod.trace_sample
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    out = tmp_path / "cut"
    monkeypatch.setattr(evmod, "trace_sample", flaky)
    assert main(args + ["--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert not (out / "results.json").exists()                     # nothing half-written
    assert len(list((out / ".partial").glob("sample_*.npz"))) == 3
    monkeypatch.setattr(evmod, "trace_sample", real)
    calls["n"] = 0
    # other settings must not silently reuse the partial samples
    assert main(args + ["--out", str(out), "--resume", "--seed", "5"]) == 2
    assert "different settings (seed)" in capsys.readouterr().err
    assert main(args + ["--out", str(out), "--resume"]) == 0
    resumed = json.loads((out / "results.json").read_text())
    for key in ("wall_s", "samples_per_s"):
        full.pop(key), resumed.pop(key)
    assert resumed == full


@pytest.mark.parametrize("command", ["evaluate", "calibrate"])
def test_ctrl_c_swallowed_by_a_finaliser_still_stops_the_run(tmp_path, monkeypatch, capsys, command):
    """A real SIGINT that arrives while a finaliser runs (garbage collection runs them anywhere) is
    printed as "Exception ignored" and dropped by Python itself; the command must still stop after
    the sample in progress (not run to the end, exit 0). ``evaluate`` keeps that sample and points
    at --resume (exit 2); ``calibrate`` has nothing to resume (exit 130)."""
    import os
    import signal
    import sys
    import eventsim.evaluate as evmod
    model = tmp_path / "demo.npz"
    es.save(es.load(evmod.DEMO_MODEL_PATH), model)
    real, calls, swallowed = evmod.trace_sample, {"n": 0}, []

    class SignalledWhileFinalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):     # give the interpreter bytecodes to run the handler on
                pass

    def interrupted_in_a_finaliser(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            SignalledWhileFinalised()   # collected at once: the SIGINT lands inside __del__
        return real(*a, **k)

    monkeypatch.setattr(evmod, "trace_sample", interrupted_in_a_finaliser)
    monkeypatch.setattr(sys, "unraisablehook", lambda u: swallowed.append(u.exc_type))
    # the handler before the run: Python's default_int_handler, or SIG_IGN when the process was
    # started in the background by a non-interactive shell (which ignores SIGINT for it)
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "cut"
    common = ["--model", str(model), "--limit", "6", "--no-progress"]
    if command == "evaluate":
        assert main(["evaluate", *common, "--no-figures", "--out", str(out)]) == 2
        assert "--resume" in capsys.readouterr().err
        assert len(list((out / ".partial").glob("sample_*.npz"))) == 4
    else:
        assert main(["calibrate", *common, "--split", "test", "--output", str(tmp_path / "gap.json")]) == 130
        assert "interrupted" in capsys.readouterr().err
        assert not (tmp_path / "gap.json").exists()
    assert swallowed == [KeyboardInterrupt]                        # Python really dropped it
    assert calls["n"] == 4
    assert signal.getsignal(signal.SIGINT) is before   # handler restored


def test_main_job_without_arguments_runs_async_with_a_calibrated_cutoff(tmp_path, capsys):
    """``eventsim evaluate`` with no arguments: the async engine on the demo set, stopped by the
    shipped gap table; the saving it prints is checked against direct async simulations."""
    import eventsim.evaluate as evmod
    from eventsim.events import load_demo
    assert main(["evaluate", "--out", str(tmp_path), "--no-figures", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["engine"] == "async" and summary["cutoff"]["policy"] == "gap"
    assert summary["samples"] == 100 and summary["dt_us"] == 10_000
    saving = summary["cutoff"]["synops_saving"]
    assert 0 < saving < 1
    assert summary["energy_pj_per_sample"] < summary["energy_pj_per_sample_at_end"]
    assert summary["cutoff"]["t_us_mean"] < summary["curve"][-1]["t_us"]
    assert "saved" in printed and f"{saving:.1%}" in printed and "cost" in printed
    # the records agree with the async engine run directly, read at each sample's cutoff time
    net, data = es.load(evmod.DEMO_MODEL_PATH), load_demo("test")
    grid = 10_000 * np.arange(1, 31)
    for rec in _csv_records(tmp_path)[:5]:
        events, label = data[rec["index"]][:2]
        res = es.simulate(net, events, engine="async", snapshot_times_us=grid, t_stop_us=300_000)
        at = res.at(t_us=rec["cutoff_t_us"])
        assert rec["synops"] == at.synops and rec["spikes"] == at.spikes
        assert rec["prediction"] == int(np.argmax(at.logits))
        assert rec["synops_total"] == res.at(t_us=300_000).synops


def _csv_records(folder):
    import csv
    with open(folder / "per_sample.csv", newline="") as fh:
        return [{k: float(v) if "." in v else int(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def test_shipped_demo_calibration_is_what_calibrate_gives(tmp_path):
    """The shipped table is reproduced by the command its docstring names (on the 300 demo
    training recordings, which the evaluation never sees)."""
    import eventsim.evaluate as evmod
    from eventsim.cutoff import load_calibration
    out = tmp_path / "gap.json"
    assert main(["calibrate", "--engine", "async", "--dt-us", "10000", "--steps", "30", "--epsilon", "0.005",
                 "-o", str(out), "--no-progress"]) == 0
    fresh, shipped = load_calibration(out), load_calibration(evmod.DEMO_CALIBRATION_PATH)
    np.testing.assert_array_equal(fresh["grid_us"], shipped["grid_us"])
    np.testing.assert_allclose(fresh["beta"], shipped["beta"], rtol=1e-12)
    assert shipped["samples"] == 300 and shipped["engine"] == "async"


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_output_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        written = evaluate(toy_net(), ToySet(), cutoff="time", cutoff_params={"t_us": 3000}).write(tmp_path)
        from eventsim.cutoff import save_calibration
        save_calibration(tmp_path / "gap.json", {"beta": [1.0], "grid_us": [1000.0]})
        es.save(toy_net(), tmp_path / "net.npz")
    finally:
        os.umask(old)
    paths = written + [tmp_path / "gap.json", tmp_path / "net.npz"]
    assert len(paths) == 7
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_progress_bar_is_tqdm(capsys):
    evaluate(toy_net(), ToySet(), progress=True)
    err = capsys.readouterr().err
    assert "evaluate (stepped)" in err and "6/6" in err and "100%" in err


def test_ctrl_c_while_a_trace_is_written_waits_for_the_write(tmp_path):
    """A SIGINT inside the trace store's zip write is held until the write is complete (a
    KeyboardInterrupt between zip members left zipfile half-closed, and its own ValueError
    replaced the "interrupted" message); the next checkpoint raises it."""
    import os
    import signal

    from eventsim import interrupts
    from eventsim.samples import trace_sample
    from eventsim.tracestore import TraceStore

    net = es.load(evmod_demo_path())
    events, label = es.events.load_demo("test")[0]
    trace = trace_sample(net, events, label, 0, engine="stepped", steps=5)
    store = TraceStore(tmp_path / "partial", {"x": 1}, resume=False)
    real_savez = np.savez

    def savez_with_ctrl_c(fh, **arrays):
        os.kill(os.getpid(), signal.SIGINT)          # arrives in the middle of the archive
        real_savez(fh, **arrays)

    with interrupts.catch_sigint():
        np.savez = savez_with_ctrl_c
        try:
            store.add(trace)                          # no exception: the write completes
        finally:
            np.savez = real_savez
        with pytest.raises(KeyboardInterrupt):
            interrupts.checkpoint()
    np.testing.assert_array_equal(store.load([0])[0].logits, trace.logits)


def evmod_demo_path():
    from eventsim.evaluate import DEMO_MODEL_PATH
    return DEMO_MODEL_PATH
