"""Anytime evaluation: dataset × network × engine × cutoff policy → per-sample records → curves.

One simulation per sample records the readout and all counters at every point of the evaluation
grid (every step of length ``dt_us``); cutoff policies and the accuracy-vs-time/synops curves are
computed from those traces without simulating again.

Examples
--------
>>> import eventsim as es
>>> from eventsim.evaluate import DEMO_MODEL_PATH, evaluate
>>> out = evaluate(es.load(DEMO_MODEL_PATH), es.events.load_demo("test"), limit=10, cutoff="time",
...                cutoff_params={"t_us": 150_000})
>>> out.summary["samples"], len(out.summary["curve"]), out.summary["cutoff"]["t_us_mean"]
(10, 10, 150000.0)
"""
from __future__ import annotations

import csv
import io
import json
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import counting
from ._io import atomic_write_text
from .cutoff import Policy, Trace, make_policy, top_gap
from .interrupts import checkpoint
from .network import Network
from .samples import DEFAULT_DT_US, DEFAULT_WINDOW_US, SampleTrace, trace_sample

__all__ = ["evaluate", "Evaluation", "aggregate", "gap_matrix", "DEMO_MODEL_PATH", "DEMO_CALIBRATION_PATH"]

DEMO_MODEL_PATH = Path(__file__).resolve().parent / "data" / "demo" / "model.npz"
#: the demo model's ``gap`` table for the async engine on a 10 ms grid, calibrated on the demo set's
#: 300 training recordings (``eventsim calibrate --engine async --dt-us 10000 --steps 30
#: --epsilon 0.005 -o eventsim/data/demo/gap_async.json``; tests/test_evaluate.py re-derives it)
DEMO_CALIBRATION_PATH = DEMO_MODEL_PATH.parent / "gap_async.json"
PERCENTILES = (10, 50, 90, 99)


@dataclass
class Evaluation:
    """Per-sample records, aggregate summary (the ``results.json`` content) and the traces."""

    summary: dict
    records: list[dict]
    traces: list[SampleTrace] = field(repr=False)
    layer_names: tuple = ()

    def write(self, out_dir: str | Path, figures: bool = True) -> list[Path]:
        """Write ``results.json``, ``per_sample.csv`` and (optionally) PNG figures atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "results.json", out / "per_sample.csv"]
        atomic_write_text(written[0], json.dumps(self.summary, indent=2, allow_nan=False) + "\n")
        buf = io.StringIO()
        if self.records:
            writer = csv.DictWriter(buf, fieldnames=list(self.records[0]))
            writer.writeheader()
            writer.writerows(self.records)
        atomic_write_text(written[1], buf.getvalue())
        if figures and self.records:
            from .figures import write_figures
            written += write_figures(self, out)
        return written


class _Progress:
    """Progress through tqdm on stderr; ``update(done)`` takes the number of samples done so far."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.bar = None
        if enabled and total > 0:
            from tqdm import tqdm
            # in a log file (not a terminal) a line every 5 s, not a redraw every 0.2 s
            self.bar = tqdm(total=total, desc=label, unit="sample", file=sys.stderr,
                            mininterval=0.2 if sys.stderr.isatty() else 5.0)

    def update(self, done: int) -> None:
        if self.bar is None:
            return
        self.bar.update(done - self.bar.n)
        if done >= self.bar.total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _check_sensor(network: Network, dataset: Any) -> None:
    size = getattr(dataset, "sensor_size", None)
    if size is None:
        return
    w, h = int(size[0]), int(size[1])
    shape = network.input_shape
    if len(shape) != 3 or (shape[1], shape[2]) != (h, w):
        from .events.transforms import fit_hint
        fitted = f" after {'; '.join(dataset.transforms)}" if getattr(dataset, "transforms", None) else ""
        raise ValueError(f"the model expects input {shape} (channels, height, width) but the recordings are "
                         f"{w}×{h} (width×height){fitted}; " + (fit_hint(shape, (w, h)) if len(shape) == 3 else
                                                                  "choose a model with a (C, H, W) input"))


def evaluate(network: Network, dataset: Sequence, *, engine: str = "stepped", dt_us: float | None = None,
             steps: int | None = None, cutoff: str | Policy = "none", cutoff_params: dict | None = None,
             energy_table: str = "45nm", synop_convention: str = "all", limit: int | None = None,
             progress: bool = False, workers: int | None = None, scheduler: str | None = None,
             client: Any = None, seed: int = 0, store: Any = None, window_us: float | None = None,
             decode: str = "auto") -> Evaluation:
    """Evaluate ``network`` on a sequence of ``(events, label)`` samples.

    Parameters
    ----------
    engine : ``"stepped"`` or ``"async"``
    dt_us : evaluation grid (and step length), µs; default from ``network.metadata["dt_us"]`` or 10 ms
    steps : number of grid rows; default covers each recording (shorter ones are held at their end)
    cutoff : policy name (see :mod:`eventsim.cutoff`) or a configured :class:`~eventsim.cutoff.Policy`
    energy_table : name of a table in :func:`eventsim.counting.energy_tables`
    synop_convention : ``"all"`` or ``"nonzero"``
    seed : seed of any input randomness (Poisson encoding: ``seed + sample index``)
    workers, scheduler, client : run on Dask (a LocalCluster of ``workers`` processes, an existing
        scheduler address, or a connected client); results equal the serial run's exactly
    store : a :class:`~eventsim.tracestore.TraceStore`: samples it holds are reused, new ones added
        as they finish (what makes ``eventsim evaluate --resume`` possible)
    window_us : recordings longer than this (event input) are simulated as a chain of time windows,
        rounded up to whole steps, with the engine state (membranes, queue, counters, readout)
        carried from one window to the next: on Dask each window is a task, so a lost worker redoes
        one window. Default: :data:`DEFAULT_WINDOW_US` (2 s) on Dask, no splitting in a serial run;
        ``0`` never splits. The results are identical whatever the windows.
    decode : how outputs become predictions (:mod:`eventsim.decoding`): ``"auto"`` (the Readout,
        or the output spike counts of a network that ends in spikes), ``"counts"``,
        ``"first-spike"``, ``"membrane"`` or ``"readout"``
    """
    from .decoding import resolve_decode
    decode = resolve_decode(network, decode)
    counting.check_convention(synop_convention)
    table = counting.get_energy_table(energy_table)
    dt_us = float(dt_us or network.metadata.get("dt_us") or DEFAULT_DT_US)
    steps = steps or network.metadata.get("steps") or network.metadata.get("timesteps")
    steps = int(steps) if steps else None
    if isinstance(cutoff, str):
        params = dict(cutoff_params or {})
        if cutoff == "fixed-exit":
            params.setdefault("network", network)
        cutoff = make_policy(cutoff, **params)
    _check_sensor(network, dataset)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    bar = _Progress(n, f"evaluate ({engine})", progress)
    done = store.load(range(n)) if store is not None else {}
    todo = [i for i in range(n) if i not in done]
    t0, worker_stats = time.perf_counter(), None

    def keep(trace: SampleTrace) -> None:
        done[trace.index] = trace
        if store is not None:
            store.add(trace)
        checkpoint()                    # a Ctrl-C swallowed by a finaliser still stops here

    if window_us is not None and not (np.isfinite(window_us) and window_us >= 0):
        raise ValueError(f"window_us must be >= 0 µs (0: never split a recording), got {window_us!r}")
    try:
        if todo and (workers or scheduler or client is not None):
            from .distributed import trace_distributed
            options = dict(engine=engine, dt_us=dt_us, steps=steps, synop_convention=synop_convention, seed=seed,
                           window_us=DEFAULT_WINDOW_US if window_us is None else window_us, decode=decode)
            _, worker_stats = trace_distributed(network, dataset, todo, options, workers=workers,
                                                scheduler=scheduler, progress=bar, client=client, on_trace=keep,
                                                already=len(done))
        else:
            for i in todo:
                events, label = dataset[i][:2]
                keep(trace_sample(network, events, label, i, engine, dt_us, steps, synop_convention, seed, window_us,
                                  decode))
                bar.update(len(done))
    finally:
        bar.close()
    traces = [done[i] for i in range(n)]
    wall_s = time.perf_counter() - t0
    ev = aggregate(traces, cutoff, table, dt_us, engine, synop_convention,
                   tuple(layer.name for layer in network.layers), wall_s)
    ev.summary["decode"] = decode
    if worker_stats is not None:
        ev.summary["workers"] = worker_stats
    return ev


def aggregate(traces: list[SampleTrace], policy: Policy, table: counting.EnergyTable, dt_us: float, engine: str,
              synop_convention: str, layer_names: tuple, wall_s: float = 0.0) -> Evaluation:
    """Apply the cutoff policy to every trace and reduce to the summary and the curve."""
    if not traces:
        raise ValueError("no samples to evaluate")
    rows = max(len(t.times_us) for t in traces)
    traces = [t.padded(rows, dt_us) for t in traces]
    labels = np.array([t.label for t in traces])
    labelled = labels >= 0
    records = []
    for tr in traces:
        k = policy.select(Trace(tr.times_us, tr.logits, tr.synops, tr.predictions))
        row_preds = _row_predictions(tr)
        pred, final = int(row_preds[k]), int(row_preds[-1])
        records.append({
            "index": tr.index, "label": tr.label, "prediction": pred, "correct": int(pred == tr.label),
            "prediction_final": final, "cutoff_t_us": float(tr.times_us[k]), "cutoff_row": int(k),
            "spikes": int(tr.spikes[k]), "synops": int(tr.synops[k]), "macs": int(tr.macs[k]),
            "energy_pj": table.energy_pj(tr.synops[k], tr.macs[k]),
            "spikes_total": int(tr.spikes[-1]), "synops_total": int(tr.synops[-1]), "macs_total": int(tr.macs[-1]),
            "energy_pj_total": table.energy_pj(tr.synops[-1], tr.macs[-1]),
            "events": tr.n_events, "duration_us": tr.duration_us,
        })
    preds = np.stack([_row_predictions(t) for t in traces])           # (N, K)
    synops = np.stack([t.synops for t in traces]).astype(float)
    macs = np.stack([t.macs for t in traces]).astype(float)
    times = np.stack([t.times_us for t in traces]).mean(axis=0)
    correct = preds == labels[:, None]
    curve = [{"t_us": float(times[k]),
              "accuracy": float(correct[labelled, k].mean()) if labelled.any() else None,
              "synops_per_sample": float(synops[:, k].mean()),
              "energy_pj_per_sample": float(table.energy_pj(synops[:, k].mean(), macs[:, k].mean()))}
             for k in range(rows)]
    rec = {key: np.array([r[key] for r in records], dtype=float) for key in
           ("cutoff_t_us", "synops", "spikes", "macs", "energy_pj", "correct")}
    acc = float(rec["correct"][labelled].mean()) if labelled.any() else None
    final_acc = float(correct[labelled, -1].mean()) if labelled.any() else None
    pct = lambda a: {f"p{p}": float(np.percentile(a, p)) for p in PERCENTILES}
    spikes_layer = np.stack([t.spikes_per_layer for t in traces]).mean(axis=0)   # (K, L)
    summary = {
        "samples": len(traces),
        "labelled_samples": int(labelled.sum()),
        "accuracy": acc,
        "accuracy_at_end": final_acc,
        "spikes_per_sample": float(rec["spikes"].mean()),
        "spikes_per_sample_at_end": float(np.mean([t.spikes[-1] for t in traces])),
        "synops_per_sample": float(rec["synops"].mean()),
        "macs_per_sample": float(rec["macs"].mean()),
        "energy_pj_per_sample": float(rec["energy_pj"].mean()),
        "synops_per_sample_at_end": float(synops[:, -1].mean()),
        "energy_pj_per_sample_at_end": float(table.energy_pj(synops[:, -1].mean(), macs[:, -1].mean())),
        "energy_table": {"name": table.name, "e_ac_pj": table.e_ac_pj, "e_mac_pj": table.e_mac_pj,
                         "source": table.source},
        "synop_convention": synop_convention,
        "engine": engine,
        "dt_us": dt_us,
        "cutoff": {**policy.describe(),
                   "t_us_mean": float(rec["cutoff_t_us"].mean()), "t_us_percentiles": pct(rec["cutoff_t_us"]),
                   "synops_mean": float(rec["synops"].mean()), "synops_percentiles": pct(rec["synops"]),
                   "synops_saving": _saving(rec["synops"].mean(), synops[:, -1].mean())},
        "curve": curve,
        "spikes_per_layer_over_time": {name: [float(v) for v in spikes_layer[:, j]]
                                       for j, name in enumerate(layer_names) if spikes_layer[:, j].any()},
        "wall_s": wall_s,
        "samples_per_s": len(traces) / wall_s if wall_s > 0 else None,
    }
    return Evaluation(summary, records, traces, layer_names)


def _row_predictions(tr: SampleTrace) -> np.ndarray:
    """(K,) prediction per row: the decoding's (spiking outputs), else the readout's argmax
    (``-1`` while the readout is all zero)."""
    if tr.predictions is not None:
        return np.asarray(tr.predictions, np.int64)
    logits = np.asarray(tr.logits)
    return np.where(np.any(logits != 0, axis=1), np.argmax(logits, axis=1), -1)


def _saving(at_cutoff: float, at_end: float) -> float | None:
    return None if at_end == 0 else float(1.0 - at_cutoff / at_end)


def gap_matrix(traces: list[SampleTrace], dt_us: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gaps, correct, grid_us) of padded traces, for :func:`eventsim.cutoff.calibrate_gap`."""
    rows = max(len(t.times_us) for t in traces)
    traces = [t.padded(rows, dt_us) for t in traces]
    logits = np.stack([t.logits for t in traces])
    labels = np.array([t.label for t in traces])
    if np.any(labels < 0):
        raise ValueError("calibration needs labelled samples")
    times = np.stack([t.times_us for t in traces]).mean(axis=0)
    preds = np.stack([_row_predictions(t) if t.predictions is not None else np.argmax(t.logits, axis=1)
                      for t in traces])
    return top_gap(logits), preds == labels[:, None], times


class _CallableModule(types.ModuleType):
    """``eventsim.evaluate`` is both this module and the function :func:`evaluate`: the package
    attribute and ``import eventsim.evaluate as m`` give the module, and calling it runs the
    function, so ``es.evaluate(network, dataset)`` and ``m.trace_sample`` both work."""

    def __call__(self, *args: Any, **kwargs: Any) -> Evaluation:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
