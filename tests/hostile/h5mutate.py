"""Byte-level fuzzing of HDF5 inputs (``.nir`` files, event caches) in a supervised child process.

libhdf5 parses the file's own metadata in C, where a malformed file could crash the process or
make it loop forever. So the cases run in a child process that reports each case before it
starts; the parent (:func:`supervise`) kills the child when a case takes longer than ``timeout``
seconds and records the case as a hang, or records a crash when the child dies, then resumes
after that case. Case ``i`` flips 1-8 random bytes of a valid file (seeded by ``i``) and
truncates it one time in five; the reader must raise ValueError or return exactly what the
undamaged file holds (outcome ``"differs from the original"`` otherwise). NIR files carry no
checksums, so for them a network with the original layers, names and shapes but other values is
told apart (``"values differ"``): a documented limitation (SECURITY.md), counted, not a failure.

Run by hand: ``python tests/hostile/h5mutate.py nir 0 500`` (child mode prints one line per case).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def mutate(raw: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.2:
        data = data[:rng.randrange(len(data))]
    return bytes(data)


def _child(kind: str, start: int, count: int, base: str | None = None) -> None:
    """Run cases ``start .. start + count - 1`` in a new folder under ``base``; print ``START i``
    before and ``DONE i outcome`` after each."""
    import numpy as np

    import eventsim as es
    from eventsim import events as E
    from hostile import corpus
    folder = Path(tempfile.mkdtemp(prefix="h5mutate-", dir=base))
    good = corpus.good_nir(folder / "g.nir") if kind == "nir" else corpus.good_cache(folder / "g.h5")
    raw = good.read_bytes()
    path = folder / ("m.nir" if kind == "nir" else "m.h5")

    def read(p):
        if kind == "nir":
            return es.load(p)
        with E.open_cache(p) as cache:
            return [(cache[j][0].tolist(), cache[j][1], cache.names[j]) for j in range(len(cache))] + [
                cache.sensor_size, cache.classes, cache.provenance]

    def structure(net):
        """Layer types, names and array shapes: what is left of a network when its values are ignored."""
        return (net.input_shape, [(type(layer).__name__, layer.name, sorted(
            (k, np.shape(v)) for k, v in vars(layer).items() if isinstance(v, np.ndarray))) for layer in net.layers])

    expected = read(good)
    for i in range(start, start + count):
        path.write_bytes(mutate(raw, i))
        print(f"START {i}", flush=True)
        try:
            # a damaged file that still reads must read as the original: no silently wrong number.
            # NIR files have no checksums (SECURITY.md): there, a damaged number is reported
            # separately, and only if the network is otherwise the original one.
            got = read(path)
            outcome = "ok" if got == expected else "differs from the original"
            if outcome != "ok" and kind == "nir" and structure(got) == structure(expected):
                outcome = "values differ"
        except (ValueError, FileNotFoundError):
            outcome = "refused"
        except Exception as exc:   # anything else breaks the contract: report it, keep going
            outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
        print(f"DONE {i} {json.dumps(outcome)}", flush=True)


def supervise(kind: str, start: int, count: int, timeout: float = 30.0) -> dict:
    """Run the cases in child processes; returns ``{"ok": n, "refused": n, "values_differ": [...],
    "hang": [...], "crash": [...], "error": [(case, message), ...]}``."""
    result = {"ok": 0, "refused": 0, "values_differ": [], "hang": [], "crash": [], "error": []}
    with tempfile.TemporaryDirectory(prefix="h5mutate-") as base:   # the children's files, also if killed
        _supervise(kind, start, start + count, timeout, base, result)
    return result


def _supervise(kind: str, nxt: int, end: int, timeout: float, base: str, result: dict) -> None:
    import queue
    import threading
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    while nxt < end:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), kind, str(nxt), str(end - nxt), base],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] and None, daemon=True).start()
        current, began = None, time.monotonic()
        while True:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                line = None
            if line is not None:
                word, _, rest = line.strip().partition(" ")
                if word == "START":
                    current, began = int(rest), time.monotonic()
                elif word == "DONE":
                    i, _, outcome = rest.partition(" ")
                    outcome = json.loads(outcome)
                    if outcome in ("ok", "refused"):
                        result[outcome] += 1
                    elif outcome == "values differ":
                        result["values_differ"].append(int(i))
                    else:
                        result["error"].append((int(i), outcome))
                    current, nxt = None, int(i) + 1
                continue
            if proc.poll() is not None and lines.empty():
                if current is not None:                   # died inside a case
                    result["crash"].append((current, proc.returncode))
                    nxt = current + 1
                elif nxt < end and proc.returncode != 0:  # died before its first case
                    result["crash"].append((nxt, proc.returncode))
                    nxt += 1
                break
            if current is not None and time.monotonic() - began > timeout:
                proc.kill()
                proc.wait()
                result["hang"].append(current)
                nxt = current + 1
                break


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
