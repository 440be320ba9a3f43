"""Issue #19's speed targets and the resolution sweep: the asynchronous engine in continuous time
against the stepped engine and the peers at fixed time bins.

Per network and per recording, one thread, in this one process, on the same real N-MNIST test
recordings:

* ``async``: ``es.simulate(net, events, engine="async")``, continuous time, exact timing, on the raw
  event array. It is warmed up until the automatic choice runs the compiled fast path, and every
  timed call is checked to have run it (``res.info["path"] == "fast"``).
* ``stepped``, ``sinabs``, ``SpikingJelly`` at 10 ms, 1 ms and 0.1 ms bins (34, 340 and 3,400 steps
  cover the 340 ms of every recording); inputs are binned beforehand, outside the timed region;
  the peers run in float32 (their default) without counters.
* ``async_f32``: ``async`` with ``dtype="float32"``, the peers' precision (information beside the
  targets, which are judged on the default float64).
* ``batch``: the asynchronous engine in batch mode on the same 10 ms steps as the stepped engine,
  on the same binned frames. Warmed up like ``async`` until the automatic choice runs the fast
  path's batch kernel; every timed call is checked to have run it.

Tools take turns per round and each keeps its fastest round (the machine is shared).
"""
from __future__ import annotations

import math
from types import ModuleType

import numpy as np

import eventsim as es
from eventsim.engines.inputs import events_to_steps
from eventsim.events import LocalNMNIST

from .cases import Case, with_compare
from .common import seconds_per_sample
from .data import DT_US, STEPS

__all__ = ["BINS_US", "TARGETS", "load_events", "time_targets", "verdicts", "precision_ratios", "format_targets"]

#: bin widths of the resolution sweep (µs)
BINS_US = (10_000, 1_000, 100)
SPAN_US = DT_US * STEPS                     # 340 ms: every test recording ends before it
#: (key, label, minimum ratio, table header); ratio = other tool's time / async (continuous) time,
#: except batch: stepped time / batch-mode time
TARGETS = (
    ("stepped_10000", "async vs stepped engine, 10 ms bins", 1.5, "vs stepped 10 ms"),
    ("sinabs_10000", "async vs sinabs, 10 ms bins", 3.0, "vs sinabs 10 ms"),
    ("SpikingJelly_10000", "async vs SpikingJelly, 10 ms bins", 3.0, "vs SpikingJelly 10 ms"),
    ("sinabs_1000", "async vs sinabs, 1 ms bins", 25.0, "vs sinabs 1 ms"),
    ("batch", "batch mode vs stepped engine, same 10 ms steps", 1.0, "batch vs stepped, 10 ms"),
)


def load_events(n: int, root) -> list[np.ndarray]:
    """The first ``n`` test recordings as event arrays (``t, x, y, p``), t in µs."""
    data = LocalNMNIST(root, "test")
    events = [data[i][0] for i in range(min(n, len(data)))]
    late = [int(e["t"].max()) for e in events if len(e) and e["t"].max() >= SPAN_US]
    if late:
        raise ValueError(f"a recording ends at {max(late)} µs, after the {SPAN_US} µs the bins cover")
    return events


def _async_runner(net: es.Network, warm: list, **options):
    """``(run, paths)``: ``run(input)`` simulates and records the path each call took in ``paths``.
    Warmed up on ``warm[:3]`` first (the automatic choice compiles the fast path on call 3), whose
    paths are not recorded."""
    paths = []

    def run(ev):
        res = es.simulate(net, ev, engine="async", **options)
        paths.append(res.info.get("path"))
        return res
    for ev in warm[:3]:
        run(ev)
    paths.clear()
    return run, paths


def time_targets(case: Case, events: list[np.ndarray], peers: dict[str, ModuleType],
                 fine_samples: int = 5, rounds: int = 3) -> dict:
    """Mean seconds per recording of every tool and bin width on ``case``.

    Parameters
    ----------
    case : the network
    events : recordings (event arrays); all of them are timed at 10 ms and 1 ms bins and in
        continuous time, the first ``fine_samples`` at 0.1 ms bins (3,400 steps)
    peers : available peer adapters (sinabs and SpikingJelly are used when present)
    rounds : interleaved rounds (best kept) at 10 ms and 1 ms; 0.1 ms runs one round

    Returns
    -------
    dict
        ``{"async": s, "async_fine": s (on the fine subset), "async_f32": s, "batch": s,
        "stepped_<dt>": s, "<peer>_<dt>": s, "samples": n, "fine_samples": m, "rounds": r,
        "async_paths": [...], "async_f32_paths": [...], "batch_paths": [...]}`` (the paths of the
        timed calls)
    """
    import torch
    net = case.network
    run_async, paths = _async_runner(net, events)
    run_f32, paths_f32 = _async_runner(net, events, dtype="float32")
    fine = min(fine_samples, len(events))
    jobs = {"async": (run_async, list(events)), "async_fine": (run_async, list(events[:fine])),
            "async_f32": (run_f32, list(events))}
    frames10 = [events_to_steps(ev, net.input_shape, DT_US, STEPS) for ev in events]
    run_batch, batch_paths = _async_runner(net, frames10, dt_us=DT_US, simultaneous="batch")
    jobs["batch"] = (run_batch, frames10)
    for dt in BINS_US:
        steps = SPAN_US // dt
        recs = events if dt >= 1000 else events[:fine]
        frames = frames10 if dt == DT_US else [events_to_steps(ev, net.input_shape, dt, steps) for ev in recs]
        jobs[f"stepped_{dt}"] = ((lambda f, dt=dt: es.simulate(net, f, engine="stepped", dt_us=dt)), frames)
        for name in ("sinabs", "SpikingJelly"):
            if name not in peers:
                continue
            module = peers[name]
            kwargs = {"dtype": torch.float32} | ({"count": False} if name == "sinabs" else {})
            run, prepare = module.timer(module.build(with_compare(net, module.COMPARE), **kwargs))
            jobs[f"{name}_{dt}"] = (run, [prepare(f) for f in frames])
    best = {key: math.inf for key in jobs}
    for r in range(rounds):
        for key, (run, inputs) in jobs.items():
            if r and key.endswith("_100"):
                continue
            best[key] = min(best[key], seconds_per_sample(run, inputs, warmup=1 if r == 0 else 0))
    best.update(samples=len(events), fine_samples=fine, rounds=rounds, async_paths=sorted(set(paths)),
                async_f32_paths=sorted(set(paths_f32)), batch_paths=sorted(set(batch_paths)))
    return best


def verdicts(t: dict) -> list[dict]:
    """Each target of :data:`TARGETS` on one network's timings: ratio, minimum, PASS/MISS."""
    out = []
    for key, label, minimum, _ in TARGETS:
        if key == "batch":
            ratio = t["stepped_10000"] / t["batch"]
        elif key in t:
            ratio = t[key] / t["async"]
        else:
            out.append(dict(key=key, label=label, minimum=minimum, ratio=None, verdict="SKIPPED"))
            continue
        fast = t.get("batch_paths", ["fast"]) == ["fast"] if key == "batch" else t["async_paths"] == ["fast"]
        out.append(dict(key=key, label=label, minimum=minimum, ratio=ratio,
                        verdict="PASS" if ratio >= minimum and fast else "MISS"))
    return out


def precision_ratios(t: dict) -> list[tuple[str, float]]:
    """``(peer, its 10 ms time / async float32 time)``: the comparison at the peers' precision
    (information, not a target: the targets are judged on the default float64)."""
    if "async_f32" not in t:
        return []
    return [(p, t[f"{p}_10000"] / t["async_f32"]) for p in ("sinabs", "SpikingJelly") if f"{p}_10000" in t]


def _tools(t: dict) -> list[str]:
    return [p for p in ("stepped", "sinabs", "SpikingJelly") if f"{p}_10000" in t]


def sweep_rows(t: dict) -> list[tuple[str, str, list[str]]]:
    """Resolution sweep of one network: per tool, ms per recording at each bin and × async."""
    rows = []
    for tool in _tools(t):
        cells = []
        for dt in BINS_US:
            ref = t["async_fine"] if dt < 1000 else t["async"]
            cells.append(f"{t[f'{tool}_{dt}'] * 1e3:.1f} ({t[f'{tool}_{dt}'] / ref:.1f}×)")
        rows.append((tool, f"{t['async'] * 1e3:.2f}", cells))
    return rows


def format_targets(targets: dict) -> str:
    """Plain-text block printed by run_peers.py: per network the targets, then the sweep."""
    lines = []
    for case, t in targets.items():
        lines.append(f"{case}: async (continuous, path {'/'.join(map(str, t['async_paths']))}) "
                     f"{t['async'] * 1e3:.2f} ms per recording ({t['samples']} recordings; "
                     f"{t['async_fine'] * 1e3:.2f} ms on the {t['fine_samples']} of the 0.1 ms sweep)")
        for v in verdicts(t):
            ratio = "n/a" if v["ratio"] is None else f"{v['ratio']:.2f}×"
            lines.append(f"  {v['label']:48s} {ratio:>8s}  target ≥ {v['minimum']:g}×  {v['verdict']}")
        if precision_ratios(t):
            lines.append(f"  at the peers' precision: async dtype='float32' {t['async_f32'] * 1e3:.2f} ms "
                         f"(path {'/'.join(map(str, t['async_f32_paths']))}); "
                         + ", ".join(f"vs {p} 10 ms {r:.2f}×" for p, r in precision_ratios(t)) + " (information)")
        lines.append("  resolution sweep, ms per recording (time / async continuous): "
                     + "  ".join(f"{dt / 1000:g} ms" for dt in BINS_US))
        for tool, _, cells in sweep_rows(t):
            lines.append(f"    {tool:13s} " + "   ".join(cells))
    return "\n".join(lines)
