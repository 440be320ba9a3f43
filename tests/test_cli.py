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
