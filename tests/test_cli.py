"""The command-line interface: help, inspect, and one-line errors for user mistakes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

import eventsim as es
from eventsim.cli import main


def test_help_runs_as_a_console_script():
    out = subprocess.run([sys.executable, "-m", "eventsim.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("evaluate", "inspect", "convert", "calibrate"):
        assert command in out.stdout


def test_inspect_prints_layers_shapes_and_parameters(tmp_path, capsys):
    net = es.Network((2, 8, 8), [es.Conv2d(np.ones((4, 2, 3, 3)), padding=1), es.IF(threshold=[1, 2, 3, 4]),
                                 es.Flatten(), es.Linear(np.ones((10, 256))), es.Readout()])
    path = tmp_path / "net.npz"
    es.save(net, path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0.Conv2d" in out and "(4, 8, 8)" in out and "2->4 k=3x3" in out
    assert "[4 ch: 1..4]" in out
    assert "total parameters: 2632" in out


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eventsim: error:") and "nope.npz" in err and "\n" not in err
    junk = tmp_path / "junk.xyz"
    junk.write_bytes(b"hello")
    assert main(["inspect", str(junk)]) == 2
    assert "unrecognised model file" in capsys.readouterr().err


def test_calibrate_indexes_a_frames_model_by_row(tmp_path, nmnist_dir, capsys):
    """``eventsim calibrate`` on a model fed event-count frames writes a row-indexed gap table (each
    recording's rows are its own bins), which ``evaluate --policy gap`` then reads; an event-input
    model keeps the time-indexed table."""
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gap.json"
    args = ["calibrate", "--model", str(root / "models" / "claims" / "checkpoints" / "aoi_claims.pth"),
            "--format", "aoi", "--model-option", "pool=avg", "--data", str(nmnist_dir), "--split", "test", "--limit", "4", "--steps", "10",
            "--epsilon", "0.1", "--no-progress", "--output", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    table = json.loads(out.read_text())
    assert table["index"] == "row" and len(table["beta"]) == 10
    plain = tmp_path / "gap_events.json"
    assert main(["calibrate", "--model", str(root / "models" / "nmnist" / "nmnist_if.npz"), "--data",
                 str(nmnist_dir), "--split", "test", "--limit", "4", "--epsilon", "0.1", "--no-progress",
                 "--output", str(plain)]) == 0
    assert json.loads(plain.read_text())["index"] == "time"
