"""Resumable evaluation: per-sample traces saved as they are computed.

``eventsim evaluate`` keeps every finished sample's trace in ``OUT/.partial/`` (one ``.npz`` per
sample, each written atomically, plus ``manifest.json`` with a fingerprint of the model and the
settings). An interrupted run (Ctrl-C, a crash, a lost machine) leaves complete samples and no
half-written file; ``--resume`` reuses them when the fingerprint matches and computes only the rest.
A finished run deletes the folder. Results are identical to an uninterrupted run because each
sample is simulated independently.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_path, atomic_write_text
from .interrupts import deferred

__all__ = ["TraceStore", "network_fingerprint"]


def network_fingerprint(network) -> str:
    """SHA-256 over every layer's type, parameters and array bytes (and the input shape)."""
    h = hashlib.sha256(repr(network.input_shape).encode())
    for layer in network.layers:
        h.update(type(layer).__name__.encode())
        for f in fields(layer):
            value = getattr(layer, f.name)
            if isinstance(value, np.ndarray):
                h.update(f.name.encode() + repr(value.shape).encode())
                h.update(np.ascontiguousarray(value, dtype=np.float64).tobytes())
            else:
                h.update(f"{f.name}={value!r}".encode())
    h.update(json.dumps(network.metadata, sort_keys=True, default=str).encode())
    return h.hexdigest()


class TraceStore:
    """A folder of per-sample traces for one (model, data, settings) fingerprint."""

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any], resume: bool) -> None:
        self.folder = Path(folder)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
        manifest = self.folder / "manifest.json"
        if manifest.exists():
            try:
                found = json.loads(manifest.read_text())
            except json.JSONDecodeError:
                found = None
            if resume and found != self.fingerprint:
                differing = sorted(k for k in self.fingerprint if (found or {}).get(k) != self.fingerprint[k])
                raise ValueError(f"--resume: the interrupted run in {self.folder} used different settings "
                                 f"({', '.join(differing) or 'unreadable manifest'}); drop --resume to start over")
            if not resume:
                shutil.rmtree(self.folder)
        elif resume and self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(manifest, json.dumps(self.fingerprint, sort_keys=True) + "\n")

    def _path(self, index: int) -> Path:
        return self.folder / f"sample_{index:07d}.npz"

    def load(self, indices) -> dict[int, Any]:
        """Traces already stored for ``indices`` (unreadable files are recomputed, not trusted)."""
        from .samples import SampleTrace
        done = {}
        for i in indices:
            path = self._path(i)
            if not path.exists():
                continue
            try:
                with np.load(path, allow_pickle=False) as z:
                    meta = json.loads(bytes(z["meta"]).decode())
                    done[i] = SampleTrace(index=meta["index"], label=meta["label"], times_us=z["times_us"],
                                          logits=z["logits"], synops=z["synops"], macs=z["macs"],
                                          spikes=z["spikes"], spikes_per_layer=z["spikes_per_layer"],
                                          n_events=meta["n_events"], duration_us=meta["duration_us"],
                                          predictions=z["predictions"] if "predictions" in z.files else None)
            except (OSError, ValueError, KeyError, EOFError):
                path.unlink(missing_ok=True)
        return done

    def add(self, trace) -> None:
        meta = {"index": trace.index, "label": trace.label, "n_events": trace.n_events,
                "duration_us": trace.duration_us}
        with deferred(), atomic_path(self._path(trace.index)) as tmp:   # Ctrl-C: after the write
            with open(tmp, "wb") as fh:
                np.savez(fh, times_us=trace.times_us, logits=trace.logits, synops=trace.synops, macs=trace.macs,
                         spikes=trace.spikes, spikes_per_layer=trace.spikes_per_layer,
                         **({} if trace.predictions is None else {"predictions": trace.predictions}),
                         meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
