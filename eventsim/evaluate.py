"""Anytime evaluation: dataset × network × engine × cutoff policy → per-sample records → curves.

One simulation per sample records the readout and all counters at every point of the evaluation
grid (every step of length ``dt_us``); cutoff policies and the accuracy-vs-time/synops curves are
computed from those traces without simulating again.

>>> import eventsim as es                                              # doctest: +SKIP
>>> out = es.evaluate(es.load("model.npz"), es.events.load_demo("test"))  # doctest: +SKIP
>>> out.summary["accuracy"], out.summary["curve"][-1]                    # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import counting
from ._io import atomic_write_text
from .cutoff import Policy, Trace, make_policy, top_gap
from .interrupts import checkpoint
from .network import Network

__all__ = ["evaluate", "Evaluation", "SampleTrace", "Continuation", "run_cli", "run_calibrate_cli",
           "DEFAULT_DT_US", "DEFAULT_WINDOW_US"]

DEFAULT_DT_US = 10_000.0
DEMO_MODEL_PATH = Path(__file__).resolve().parent / "data" / "demo" / "model.npz"
PERCENTILES = (10, 50, 90, 99)


@dataclass
class SampleTrace:
    """Everything recorded for one sample on the evaluation grid (cumulative values per row)."""

    index: int
    label: int
    times_us: np.ndarray
    logits: np.ndarray
    synops: np.ndarray
    macs: np.ndarray
    spikes: np.ndarray
    spikes_per_layer: np.ndarray  # (K, L) increments
    n_events: int
    duration_us: int
    #: (K,) decoded prediction per row (-1: undecided), see :mod:`eventsim.decoding`
    predictions: np.ndarray | None = None

    def padded(self, rows: int, dt_us: float) -> "SampleTrace":
        """Extend to ``rows`` rows by holding the final state (the recording is over)."""
        k = len(self.times_us)
        if k >= rows:
            return self
        extra = rows - k
        hold = lambda a: np.concatenate([a, np.repeat(a[-1:], extra, axis=0)])
        times = np.concatenate([self.times_us, self.times_us[-1] + dt_us * np.arange(1, extra + 1)])
        return SampleTrace(self.index, self.label, times, hold(self.logits), hold(self.synops), hold(self.macs),
                           hold(self.spikes),
                           np.concatenate([self.spikes_per_layer, np.zeros((extra, self.spikes_per_layer.shape[1]),
                                                                           np.int64)]),
                           self.n_events, self.duration_us,
                           None if self.predictions is None else hold(self.predictions))


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
    """A minimal stderr progress bar (no dependency); silent when disabled or not a terminal log."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = total, label, enabled and total > 0
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self.last < (0.2 if sys.stderr.isatty() else 5.0):
            return
        self.last = now
        frac = done / self.total
        bar = "#" * int(30 * frac)
        rate = done / max(now - self.start, 1e-9)
        tty = sys.stderr.isatty()
        sys.stderr.write(f"{chr(13) if tty else ''}{self.label} [{bar:<30}] {done}/{self.total} "
                         f"({rate:.1f} samples/s){'' if tty else chr(10)}")
        if tty and done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


#: recordings whose first timestamp lies beyond this (e.g. AEDAT 4's wall-clock µs) are timed from
#: their first event; others (N-MNIST, the demo set) from timestamp 0, as their datasets define
ABSOLUTE_TIME_US = 10_000_000


#: On Dask, recordings longer than this are simulated as a chain of windows (state carried across).
#: Each window costs ~15–30 ms of CPU in Dask's task and transfer machinery (measured on 2 cores,
#: for 0.2–1 MB of state): windows should cost several times that to simulate.
DEFAULT_WINDOW_US = 2_000_000


@dataclass
class Continuation:
    """A sample paused between two time windows: what one window task hands to the next.

    ``state`` is the engine's :class:`~eventsim.engines.state.EngineState` at ``state.t_us``; the
    next window covers ``[state.t_us, state.t_us + window_steps·dt_us)`` of the recording (shifted
    by ``shift_us``, see :data:`ABSOLUTE_TIME_US`).
    """

    index: int
    label: int
    engine: str
    options: dict
    window_steps: int
    steps: int
    dt_us: float
    times_us: np.ndarray
    shift_us: int
    n_events: int
    duration_us: int
    state: Any = field(repr=False)
    decode: str = "auto"


def _shifted(events: np.ndarray) -> tuple[np.ndarray, int]:
    if len(events) and int(events["t"][0]) > ABSOLUTE_TIME_US:
        shift = int(events["t"][0])
        events = events.copy()
        events["t"] -= shift
        return events, shift
    return events, 0


def _engine_options(enc: Any, engine: str, convention: str) -> dict:
    if engine == "stepped":
        return dict(dt_us=enc.dt_us, steps=enc.steps, synop_convention=convention, input_kind=enc.input_kind)
    grid = enc.dt_us * np.arange(1, enc.steps + 1)
    span = dict(t_stop_us=float(grid[-1])) if enc.input_kind == "events" and enc.inputs.dtype.names \
        else dict(steps=enc.steps)
    return dict(dt_us=enc.dt_us, snapshot_times_us=grid, synop_convention=convention, input_kind=enc.input_kind,
                **span)


def _window(events: np.ndarray, t_from: float, t_to: float | None) -> np.ndarray:
    t = events["t"]
    lo = int(np.searchsorted(t, t_from, "left"))
    hi = len(events) if t_to is None else int(np.searchsorted(t, t_to, "left"))
    return events[lo:hi]


def _to_trace(res: Any, times_us: np.ndarray, index: int, label: int, n_events: int, duration_us: int) -> SampleTrace:
    if res.logits.shape[1] == 0:
        raise ValueError("the network has no output to evaluate (neither a Readout nor a spiking last layer)")
    if len(res.times_us) != len(times_us):
        raise RuntimeError(f"engine returned {len(res.times_us)} rows for a grid of {len(times_us)}")
    return SampleTrace(index=index, label=int(label), times_us=np.asarray(times_us, float),
                       logits=np.asarray(res.logits, float), synops=res.cumulative("synops"),
                       macs=res.cumulative("macs"), spikes=res.cumulative("spikes"),
                       spikes_per_layer=np.asarray(res.spikes_per_row, np.int64), n_events=n_events,
                       duration_us=duration_us, predictions=res.predictions)


def start_sample(network: Network, events: np.ndarray, label: int, index: int = 0, engine: str = "stepped",
                 dt_us: float = DEFAULT_DT_US, steps: int | None = None, synop_convention: str = "all",
                 seed: int = 0, window_us: float | None = None, decode: str = "auto") -> "SampleTrace | Continuation":
    """Simulate a sample whole, or only its first window when it is longer than ``window_us``.

    Only event input (the ``events`` encoding) on a whole-µs grid is split; a split sample returns a
    :class:`Continuation` for :func:`continue_sample`.
    """
    from .encodings import encode
    from .engines import simulate
    t = np.asarray(events["t"], dtype=np.int64)
    n_events, duration_us = int(len(t)), int(t[-1] - t[0]) if len(t) else 0
    events, shift = _shifted(events)
    enc = encode(network, events, index, steps, dt_us, seed)
    options = _engine_options(enc, engine, synop_convention)
    window_steps = int(math.ceil(window_us / enc.dt_us)) if window_us else 0
    if not (0 < window_steps < enc.steps and enc.input_kind == "events" and getattr(enc.inputs.dtype, "names", None)
            and float(enc.dt_us).is_integer()):
        res = simulate(network, enc.inputs, engine=engine, decode=decode, **options)
        return _to_trace(res, enc.times_us, index, label, n_events, duration_us)
    decreasing = np.flatnonzero(np.diff(np.asarray(enc.inputs["t"])) < 0)
    if decreasing.size:
        i = int(decreasing[0]) + 1
        raise ValueError(f"event {i}: timestamps decrease there; sort the events by t first")
    pause = window_steps * enc.dt_us
    state = simulate(network, _window(enc.inputs, 0, pause), engine=engine, pause_us=pause, decode=decode, **options)
    return Continuation(index, int(label), engine, options, window_steps, enc.steps, enc.dt_us, enc.times_us, shift,
                        n_events, duration_us, state, decode)


def continue_sample(network: Network, events: np.ndarray, cont: Continuation) -> "SampleTrace | Continuation":
    """Simulate the next window of a split sample (``events``: the whole recording, as read)."""
    from .engines import simulate
    events = events.copy() if cont.shift_us else events
    if cont.shift_us:
        events["t"] -= cont.shift_us
    t_from = cont.state.t_us
    t_to = t_from + cont.window_steps * cont.dt_us
    if t_to >= cont.steps * cont.dt_us:       # the last window
        res = simulate(network, _window(events, t_from, None), engine=cont.engine, resume=cont.state,
                       decode=cont.decode)
        return _to_trace(res, cont.times_us, cont.index, cont.label, cont.n_events, cont.duration_us)
    state = simulate(network, _window(events, t_from, t_to), engine=cont.engine, resume=cont.state, pause_us=t_to,
                     decode=cont.decode)
    return replace(cont, state=state)


def trace_sample(network: Network, events: np.ndarray, label: int, index: int = 0, engine: str = "stepped",
                 dt_us: float = DEFAULT_DT_US, steps: int | None = None, synop_convention: str = "all",
                 seed: int = 0, window_us: float | None = None, decode: str = "auto") -> SampleTrace:
    """Simulate one sample and keep its readout and counters on the evaluation grid.

    With ``window_us`` a longer recording is simulated window by window, the engine state carried
    from one to the next (what Dask workers do); the trace is identical either way.
    """
    out = start_sample(network, events, label, index, engine, dt_us, steps, synop_convention, seed, window_us, decode)
    while isinstance(out, Continuation):
        out = continue_sample(network, events, out)
    return out


def _check_sensor(network: Network, dataset: Any) -> None:
    size = getattr(dataset, "sensor_size", None)
    if size is None:
        return
    w, h = int(size[0]), int(size[1])
    shape = network.input_shape
    if len(shape) != 3 or (shape[1], shape[2]) != (h, w):
        raise ValueError(f"the model expects input {shape} (channels, height, width) but the recordings are "
                         f"{w}×{h} (width×height); choose a matching model or crop/downsample the data")


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
    if todo and (workers or scheduler or client is not None):
        from .distributed import trace_distributed
        options = dict(engine=engine, dt_us=dt_us, steps=steps, synop_convention=synop_convention, seed=seed,
                       window_us=DEFAULT_WINDOW_US if window_us is None else window_us, decode=decode)
        _, worker_stats = trace_distributed(network, dataset, todo, options, workers=workers, scheduler=scheduler,
                                            progress=bar, client=client, on_trace=keep, already=len(done))
    else:
        for i in todo:
            events, label = dataset[i][:2]
            keep(trace_sample(network, events, label, i, engine, dt_us, steps, synop_convention, seed, window_us,
                              decode))
            bar.update(len(done))
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


def summary_table(ev: Evaluation) -> str:
    """The printed summary: accuracy, latency and cost at cutoff and at the end."""
    s = ev.summary
    c = s["cutoff"]
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
    lines = [
        f"engine {s['engine']}  grid {s['dt_us']:g} µs  samples {s['samples']}  cutoff {c['policy']}  "
        f"energy table {s['energy_table']['name']}  synops convention {s['synop_convention']}",
        f"{'':<22}{'at cutoff':>14}{'at end':>14}",
        f"{'accuracy':<22}{fmt(s['accuracy'], '>14.3f')}{fmt(s['accuracy_at_end'], '>14.3f')}",
        f"{'synops / sample':<22}{s['synops_per_sample']:>14,.0f}{s['synops_per_sample_at_end']:>14,.0f}",
        f"{'energy pJ / sample':<22}{s['energy_pj_per_sample']:>14,.0f}{s['energy_pj_per_sample_at_end']:>14,.0f}",
        f"{'spikes / sample':<22}{s['spikes_per_sample']:>14,.0f}",
        f"{'latency mean µs':<22}{c['t_us_mean']:>14,.0f}{s['curve'][-1]['t_us']:>14,.0f}",
    ]
    if c.get("synops_saving") is not None:
        lines.append(f"{'synops saving':<22}{c['synops_saving']:>14.1%}")
    if s.get("samples_per_s"):
        lines.append(f"{'throughput':<22}{s['samples_per_s']:>11.1f} samples/s")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI glue


def _parse_params(items: list[str], flag: str = "--cutoff-param") -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE, e.g. t_us=50000 or input_shape=[2,34,34]")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")


def _load_model(args, dataset: Any = None) -> Network:
    """The model of ``--model`` (default: the demo model). PyTorch checkpoints rarely record their
    input size: unless ``--model-option input_shape=...`` says otherwise, the recordings' sensor
    size (2 polarity channels) is used."""
    from .formats import load
    if args.model is None:
        return load(DEMO_MODEL_PATH)
    options = _parse_params(getattr(args, "model_option", []) or [], "--model-option")
    size = getattr(dataset, "sensor_size", None)
    is_checkpoint = any(str(args.model).lower().endswith(s) for s in CHECKPOINT_SUFFIXES)
    if is_checkpoint and size is not None and "input_shape" not in options:
        options["input_shape"] = (2, int(size[1]), int(size[0]))
    return load(args.model, format=args.format, **options)


def run_cli(args) -> int:
    from .cutoff import load_calibration
    from .sources import open_source
    params = _parse_params(args.cutoff_param)
    if args.calibration:
        params["calibration"] = load_calibration(args.calibration)
    dataset = open_source(args.data, args.split, args.root)
    network = _load_model(args, dataset)
    if args.cutoff == "fixed-exit":
        params.setdefault("network", network)
    policy = make_policy(args.cutoff, **params)           # bad policy or parameters fail before any work
    store = _store(args, network, len(dataset))
    try:
        ev = _evaluate_cli(args, network, dataset, policy, store)
    except KeyboardInterrupt:
        from .cli import UserError
        raise UserError(f"interrupted: finished samples are kept in {store.folder}; run the same command "
                        "with --resume to continue") from None
    written = ev.write(args.out, figures=not args.no_figures)
    store.clear()
    print(summary_table(ev))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _store(args, network: Network, n_samples: int):
    from . import __version__
    from .tracestore import TraceStore, network_fingerprint
    fingerprint = {"eventsim": __version__, "network": network_fingerprint(network), "data": args.data,
                   "split": args.split, "root": args.root, "samples": n_samples, "engine": args.engine,
                   "dt_us": args.dt_us, "steps": args.steps, "synop_convention": args.synop_convention,
                   "seed": args.seed, "limit": args.limit, "decode": getattr(args, "decode", "auto")}
    return TraceStore(Path(args.out) / ".partial", fingerprint, resume=getattr(args, "resume", False))


def _evaluate_cli(args, network, dataset, policy, store):
    return evaluate(network, dataset, engine=args.engine, dt_us=args.dt_us, steps=args.steps, cutoff=policy, energy_table=args.energy_table, synop_convention=args.synop_convention,
                  limit=args.limit, progress=not args.no_progress, workers=args.workers, scheduler=args.scheduler,
                  seed=args.seed, store=store, window_us=getattr(args, "window_us", None),
                  decode=getattr(args, "decode", "auto"))


def run_calibrate_cli(args) -> int:
    from .cutoff import calibration_index, gap_table, save_calibration
    from .sources import open_source
    if args.policy != "gap":
        raise ValueError(f"calibrate: only the 'gap' policy has a table to fit (got {args.policy!r})")
    dataset = open_source(args.data, args.split, args.root)
    network = _load_model(args, dataset)
    dt_us = float(args.dt_us or network.metadata.get("dt_us") or DEFAULT_DT_US)
    ev = evaluate(network, dataset, engine=args.engine, dt_us=dt_us, steps=args.steps,
                  synop_convention=args.synop_convention, limit=args.limit, progress=not args.no_progress,
                  workers=args.workers, scheduler=args.scheduler, seed=args.seed,
                  window_us=getattr(args, "window_us", None), decode=getattr(args, "decode", "auto"))
    traces, n = ev.traces, len(ev.traces)
    gaps, correct, grid = gap_matrix(traces, dt_us)
    # frames: rows are each recording's own bins, so β is per row, not per (mean) grid time
    table = gap_table(gaps, correct, grid, args.epsilon, index=calibration_index(network))
    beta = table["beta"]
    save_calibration(args.output, {**table, "samples": n, "engine": args.engine,
                                   "model": str(args.model or "demo")})
    finite = np.isfinite(beta)
    print(f"calibrated gap thresholds for confidence {1 - args.epsilon:.3f} on {n} samples: "
          f"{int(finite.sum())}/{len(beta)} grid times can stop; wrote {args.output}")
    return 0
