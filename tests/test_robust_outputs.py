"""Every output eventsim writes is atomic: a write interrupted half-way (an exception or Ctrl-C
injected after part of the new content reached the disk) leaves the previous file byte for byte
and no temporary file behind. Covered: ``eventsim.save`` (native ``.npz`` and ``.nir``),
``build_cache``, ``Evaluation.write`` (``results.json``, ``per_sample.csv``, the PNG figures) and
calibration tables; a source scan checks that no other write site bypasses the atomic helpers.
A real SIGINT sent to an ``eventsim evaluate`` child process leaves only complete per-sample
files, and ``--resume`` finishes with exactly the results of an uninterrupted run.
"""
from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import eventsim as es
from eventsim import events as E
from eventsim.cutoff import load_calibration, save_calibration
from eventsim.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]
EVENT_DTYPE = [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")]


class Interrupted(BaseException):
    """Stands in for KeyboardInterrupt without disturbing pytest's own handling of Ctrl-C."""


def half_then(exc):
    """A replacement writer: write half of what the real one would, then raise ``exc``."""
    def fail(real, target, *args, **kwargs):
        real(target, *args, **kwargs)
        path = Path(target) if not hasattr(target, "write") else None
        if path is not None and path.exists():
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        raise exc
    return fail


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def small_net(scale=1.0):
    return es.Network((2, 4, 4), [es.Conv2d(np.full((2, 2, 3, 3), 0.3 * scale), padding=1), es.IF(),
                                  es.SumPool2d(2), es.Flatten(), es.Linear(np.full((3, 8), 0.5)), es.Readout()],
                      metadata={"dt_us": 1000})


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), Interrupted()], ids=["exception", "interrupt"])
@pytest.mark.parametrize("suffix", [".npz", ".nir"])
def test_save_interrupted_keeps_the_old_model(tmp_path, monkeypatch, exc, suffix):
    if suffix == ".nir":
        nir = pytest.importorskip("nir")
        module, name = nir, "write"
    else:
        module, name = np, "savez_compressed"
    path = tmp_path / f"model{suffix}"
    es.save(small_net(), path)
    before = _snapshot(tmp_path)
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda target, *a, **k: half_then(exc)(real, target, *a, **k))
    with pytest.raises(type(exc)):
        es.save(small_net(2.0), path)
    assert _snapshot(tmp_path) == before                     # old bytes, no temporary file
    monkeypatch.undo()
    assert es.load(path) == small_net()
    es.save(small_net(2.0), path)                            # and an uninterrupted save replaces it
    assert es.load(path) == small_net(2.0) and sorted(_snapshot(tmp_path)) == [path.name]


def _samples(n, rng):
    out = []
    for i in range(n):
        ev = np.zeros(20, EVENT_DTYPE)
        ev["t"] = np.sort(rng.integers(0, 5000, 20))
        ev["x"], ev["y"], ev["p"] = rng.integers(0, 4, 20), rng.integers(0, 4, 20), rng.integers(0, 2, 20)
        out.append((ev, i % 3))
    return out


def test_build_cache_interrupted_mid_write(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "c.h5"
    E.build_cache(path, {"test": _samples(3, rng)}, sensor_size=(4, 4), progress=False, chunk_events=8)
    before = _snapshot(tmp_path)

    def interrupted():
        yield from _samples(5, rng)                          # several chunks reach the temporary file
        raise Interrupted()

    with pytest.raises(Interrupted):
        E.build_cache(path, {"test": interrupted()}, sensor_size=(4, 4), progress=False, chunk_events=8)
    assert _snapshot(tmp_path) == before
    assert len(E.open_cache(path)) == 3


@pytest.fixture(scope="module")
def evaluation():
    rng = np.random.default_rng(1)
    return evaluate(small_net(), _samples(4, rng))


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), Interrupted()], ids=["exception", "interrupt"])
@pytest.mark.parametrize("victim", ["results.json", "per_sample.csv", "accuracy_vs_cost.png"])
def test_evaluation_outputs_interrupted(tmp_path, monkeypatch, evaluation, exc, victim):
    """Interrupt the write of one output file: it keeps its old content, files written before it
    are complete new ones, and no temporary file is left."""
    import eventsim._io as io_mod
    import matplotlib.figure
    evaluation.write(tmp_path, figures=True)
    old = _snapshot(tmp_path)
    assert victim in old
    new = evaluate(small_net(1.5), _samples(4, np.random.default_rng(2)))

    real_text, real_savefig = io_mod.atomic_write_text, matplotlib.figure.Figure.savefig

    def write_text(path, text):
        if Path(path).name == victim:
            with io_mod.atomic_path(path) as tmp:
                tmp.write_text(text[: len(text) // 2])
                raise exc
        real_text(path, text)

    def savefig(self, fname, *args, **kwargs):
        real_savefig(self, fname, *args, **kwargs)
        if victim.endswith(".png") and Path(str(fname)).name.startswith(f".{victim}."):   # atomic_path's temp
            data = Path(fname).read_bytes()
            Path(fname).write_bytes(data[: len(data) // 2])
            raise exc

    import eventsim.evaluate as ev_mod
    monkeypatch.setattr(ev_mod, "atomic_write_text", write_text)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    with pytest.raises(type(exc)):
        new.write(tmp_path, figures=True)
    after = _snapshot(tmp_path)
    assert sorted(after) == sorted(old), "a temporary file was left behind"
    assert after[victim] == old[victim]
    order = ["results.json", "per_sample.csv", "accuracy_vs_time.png", "accuracy_vs_cost.png"]
    for name in order[: order.index(victim)]:                # written before the interruption: new
        if name.endswith(".json"):
            assert after[name] != old[name]


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), Interrupted()], ids=["exception", "interrupt"])
def test_calibration_interrupted(tmp_path, monkeypatch, exc):
    path = tmp_path / "gap.json"
    save_calibration(path, {"beta": [0.5, np.inf], "grid_us": [1000, 2000], "epsilon": 0.01})
    before = _snapshot(tmp_path)
    real = Path.write_text

    def half(self, text, *a, **k):
        real(self, text[: len(text) // 2], *a, **k)
        raise exc

    monkeypatch.setattr(Path, "write_text", half)
    with pytest.raises(type(exc)):
        save_calibration(path, {"beta": [0.1, 0.2], "grid_us": [1000, 2000], "epsilon": 0.05})
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    assert load_calibration(path)["beta"].tolist() == [0.5, np.inf]


# ----------------------------------------------------------------------------- every write site

#: Calls that create or overwrite a file, by attribute or function name.
_WRITERS = {"write_text", "write_bytes", "savefig", "save", "savez", "savez_compressed", "write", "dump",
            "to_csv", "tofile"}
#: ``(file, function)`` sites allowed to write without ``atomic_path``, each with its reason.
_ALLOWED = {
    ("_io.py", "atomic_write_text"): "writes the temporary file of atomic_path",
    ("_io.py", "atomic_write_bytes"): "writes the temporary file of atomic_path",
    ("events/cache.py", "build_cache"): "mkstemp beside the target + os.replace, cleaned up on BaseException",
    ("events/cache.py", "_write_split"): "writes into build_cache's temporary file",
    ("events/cache.py", "_append"): "writes into build_cache's temporary file",
    ("formats.py", "save"): "dispatches to the format's saver (native and NIR savers: atomic, tested above)",
    ("nir/files.py", "convert"): "eventsim.save",
    ("cli.py", "_cmd_convert"): "eventsim.save",
}


def _scan(source: str, rel: str) -> list:
    """``(file, function, line, call)`` for every call in ``source`` that may write a file outside
    a ``with atomic_path(...)`` block."""
    sites = []

    def visit(node, func, atomic):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            func = node.name
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "id",
                                                                    getattr(item.context_expr.func, "attr", ""))
                == "atomic_path" for item in node.items):
            atomic = True
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            mode = None
            if name in ("open", "File") and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                mode = node.args[1].value
            for kw in node.keywords:
                if name in ("open", "File") and kw.arg == "mode" and isinstance(kw.value, ast.Constant):
                    mode = kw.value.value
            writes = (name in _WRITERS and name != "write") or (
                name in ("open", "File") and isinstance(mode, str) and any(c in mode for c in "wax+"))
            if name == "write" and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "nir":
                writes = True                                # nir.write(path, graph)
            if writes and not atomic:
                sites.append((rel, func, node.lineno, ast.unparse(node)[:80]))
        for child in ast.iter_child_nodes(node):
            visit(child, func, atomic)

    visit(ast.parse(source), None, False)
    return sites


def _write_sites():
    pkg = ROOT / "eventsim"
    return [site for path in sorted(pkg.rglob("*.py"))
            for site in _scan(path.read_text(), path.relative_to(pkg).as_posix())]


def test_every_file_write_is_atomic():
    bad = [s for s in _write_sites() if (s[0], s[1]) not in _ALLOWED]
    # writes to stderr/stdout streams and in-memory buffers are not files
    bad = [s for s in bad if not any(w in s[3] for w in ("sys.stderr", "sys.stdout", "buf.", "writer."))]
    assert not bad, "file writes outside atomic_path:\n" + "\n".join(map(str, bad))


def test_the_scan_flags_plain_writes():
    """Control: the scan flags direct writes and accepts the same writes inside atomic_path."""
    source = ("def f(p, fig):\n    open(p, 'w').close()\n    p.write_text('y')\n    fig.savefig(p)\n"
              "    with atomic_path(p) as t:\n        t.write_text('z')\n        fig.savefig(t)\n"
              "    open(p, 'rb').read()\n")
    assert [line for _, _, line, _ in _scan(source, "x.py")] == [2, 3, 4]


# ----------------------------------------------------------------------------- a real Ctrl-C


def _cli(*args):
    """``eventsim ARGS`` as a child process (stdout/stderr captured)."""
    return subprocess.Popen([sys.executable, "-c", "import sys; from eventsim.cli import main; sys.exit(main())",
                             *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stable_results(folder):
    data = json.loads((folder / "results.json").read_text())
    for key in ("wall_s", "samples_per_s"):
        data.pop(key, None)
    return data


def test_sigint_during_evaluate_keeps_finished_samples_and_resumes(tmp_path):
    """``eventsim evaluate`` on the demo set, interrupted by a real SIGINT once a few samples are
    done: exit status 2 with a message naming ``--resume``, no results file, only complete sample
    files (each one loads) and no temporary file; ``--resume`` then writes exactly the results of
    an uninterrupted run, and removes the partial folder."""
    args = ["evaluate", "--limit", "100", "--no-figures", "--no-progress"]
    full = _cli(*args, "--out", str(tmp_path / "full"))
    assert full.wait(timeout=600) == 0, full.stderr.read()
    out = tmp_path / "cut"
    proc = _cli(*args, "--out", str(out))
    deadline = time.monotonic() + 600
    while len(list((out / ".partial").glob("sample_*.npz"))) < 3 and proc.poll() is None:
        assert time.monotonic() < deadline, "no sample finished in 10 minutes"
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2 and "--resume" in err, err
    assert not (out / "results.json").exists() and not (out / "per_sample.csv").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")], "temporary files left behind"
    kept = sorted((out / ".partial").glob("sample_*.npz"))
    assert 3 <= len(kept) < 100
    for path in kept:
        with np.load(path, allow_pickle=False) as z:
            assert {"logits", "synops", "meta"} <= set(z.files)
    resumed = _cli(*args, "--out", str(out), "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert _stable_results(out) == _stable_results(tmp_path / "full")
    assert not (out / ".partial").exists()
