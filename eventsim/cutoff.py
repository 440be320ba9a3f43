"""Anytime cutoff policies (a registry) and their calibration.

Every policy is a pure function of one sample's readout history on the evaluation grid,
a :class:`Trace`, and returns the index of the row at which the sample is cut off: its
prediction is the argmax of the readout at that row, and its cost is the counters up to it.

======================  ==============================================================
``none``                run to the end
``time``                stop at ``t_us``: the last row ending at or before it
``synops``              stop when ``budget`` synops are spent: the last row within it
``gap``                 AOI: stop at the first row ``k`` where top-1 minus top-2 of the
                        cumulative readout exceeds ``β_k`` (a scalar ``beta``, one β per row,
                        or a calibrated table, see :func:`calibrate_gap` and :func:`gap_table`)
``confidence``          stop at the first row where ``max softmax(Y) > 1 − ε``
``fixed-exit``          BNTT: stop at the first step whose layer-average batch-norm scale γ
                        falls below ``threshold`` (a property of the network, not of the input)
``first-spike``         stop at the first row with a decided prediction (a network that ends in
                        spikes: its first output spike; see :mod:`eventsim.decoding`)
======================  ==============================================================

A policy that never fires stops at the last row. For a network that ends in spikes the "readout"
is what its decoding makes of the output (:mod:`eventsim.decoding`): ``gap`` and ``confidence``
act on the cumulative output spike counts, and the prediction at the cut is the decoding's.

A calibrated ``gap`` table is indexed one of two ways (its ``"index"`` entry):

* ``"time"`` (the default): a row uses the β of the last grid time ``grid_us`` at or before the
  row's time. Right when every recording shares one grid (event input on a fixed ``dt_us``, the
  async engine's snapshot times): a β belongs to a moment of the recording.
* ``"row"``: row ``k`` uses ``β_k``. Right when the rows are each recording's own step bins
  (``frames``: T equal bins of each recording, so bin ``k`` ends at a different time in every
  recording and ``grid_us`` is only their mean): a β belongs to a step.
  :func:`calibration_index` says which one a network's input encoding needs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ._io import atomic_write_text

__all__ = ["Trace", "Policy", "POLICIES", "register_policy", "make_policy", "top_gap",
           "calibrate_gap", "gap_table", "calibration_index", "save_calibration", "load_calibration",
           "bn_gain_per_step"]

#: how a calibrated ``gap`` table maps onto a trace's rows (see the module docstring)
CALIBRATION_INDEX = ("time", "row")
#: input encodings whose grid rows are each recording's own step bins: calibrate per row
ROW_INDEXED_ENCODINGS = frozenset({"frames"})


@dataclass(frozen=True)
class Trace:
    """One sample's readout history: ``times_us`` (K,), cumulative ``logits`` (K, n) and
    cumulative ``synops`` (K,) at each grid row, and optionally the decoded ``predictions`` (K,)
    (``-1``: undecided; see :mod:`eventsim.decoding`). For a network that ends in spikes the
    logits are its cumulative output spike counts (or its membrane with ``decode="membrane"``)."""

    times_us: np.ndarray
    logits: np.ndarray
    synops: np.ndarray
    predictions: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = len(self.times_us)
        if k == 0 or self.logits.shape[0] != k or len(self.synops) != k:
            raise ValueError(f"Trace: {k} times, {self.logits.shape[0]} logit rows, {len(self.synops)} synop "
                             "rows; they must be equal and non-zero")


def top_gap(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 of each row of ``logits`` (K, n) -> (K,). Zero for a single class."""
    logits = np.asarray(logits, dtype=float)
    if logits.shape[-1] < 2:
        return np.zeros(logits.shape[:-1])
    part = np.sort(logits, axis=-1)
    return part[..., -1] - part[..., -2]


def _softmax_max(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e.max(axis=-1) / e.sum(axis=-1)


def _first_or_last(mask: np.ndarray) -> int:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else len(mask) - 1


@dataclass(frozen=True)
class Policy:
    """A configured policy: ``name``, its parameters, and ``select(trace) -> row index``."""

    name: str
    params: Mapping[str, Any]
    select: Callable[[Trace], int]

    def describe(self) -> dict:
        return {"policy": self.name, **{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                        for k, v in self.params.items()}}


def _policy_none(**_) -> Callable[[Trace], int]:
    return lambda trace: len(trace.times_us) - 1


def _policy_time(t_us: float) -> Callable[[Trace], int]:
    t_us = float(t_us)
    if t_us < 0:
        raise ValueError(f"cutoff time: t_us={t_us} must be >= 0")

    def select(trace: Trace) -> int:
        k = int(np.searchsorted(trace.times_us, t_us, side="right")) - 1
        return max(k, 0)
    return select


def _policy_synops(budget: float) -> Callable[[Trace], int]:
    budget = float(budget)
    if budget < 0:
        raise ValueError(f"cutoff synops: budget={budget} must be >= 0")

    def select(trace: Trace) -> int:
        k = int(np.searchsorted(trace.synops, budget, side="right")) - 1
        return max(k, 0)
    return select


def _policy_gap(beta: Any = None, calibration: Mapping | None = None) -> Callable[[Trace], int]:
    if calibration is not None:
        table = np.asarray(calibration["beta"], dtype=float)
        index = _check_index(calibration.get("index", "time"))
        grid = np.asarray(calibration["grid_us"], dtype=float) if index == "time" else None
    elif beta is not None:
        table, grid = np.atleast_1d(np.asarray(beta, dtype=float)), None
    else:
        raise ValueError("cutoff gap: give beta=<number> or a calibration table (--calibration FILE)")

    def select(trace: Trace) -> int:
        gaps = top_gap(trace.logits)
        if grid is None:
            thresholds = np.broadcast_to(table, gaps.shape) if table.size == 1 else table
        else:
            # the calibrated β of the last grid time at or before each row (inf before the table)
            idx = np.searchsorted(grid, trace.times_us, side="right") - 1
            thresholds = np.where(idx >= 0, table[np.clip(idx, 0, len(table) - 1)], np.inf)
        if thresholds.shape != gaps.shape:
            raise ValueError(f"cutoff gap: {len(thresholds)} thresholds for {len(gaps)} evaluation rows")
        return _first_or_last(gaps > thresholds)
    return select


def _policy_confidence(epsilon: float) -> Callable[[Trace], int]:
    epsilon = float(epsilon)
    if not 0 < epsilon < 1:
        raise ValueError(f"cutoff confidence: epsilon={epsilon} must lie in (0, 1)")
    return lambda trace: _first_or_last(_softmax_max(trace.logits) > 1 - epsilon)


def _policy_first_spike(**_) -> Callable[[Trace], int]:
    """Stop at the first row with a decided prediction: with ``decode="first-spike"`` (or
    ``"counts"``) the moment of the first output spike, the decoding's own anytime answer."""
    def select(trace: Trace) -> int:
        if trace.predictions is None:
            raise ValueError("cutoff first-spike: needs decoded predictions (a network that ends in spikes, "
                             "decode='first-spike' or 'counts')")
        return _first_or_last(np.asarray(trace.predictions) >= 0)
    return select


def bn_gain_per_step(network) -> np.ndarray:
    """Layer-average batch-norm scale per step of a BNTT-style network, (T,).

    Uses ``network.metadata["bn_gamma_mean"]`` when present: the per-step mean of BatchNorm's
    γ over channels, averaged over the per-step BatchNorm layers, which the BNTT importer
    (:func:`eventsim.checkpoints.load_bntt`) records. Otherwise (a network built by hand or read
    from a file that lost the metadata) it falls back to the mean ``|step_gain|`` of every
    population that has one; that folded gain γ/√(σ²+ε) also carries the running variance, so
    thresholds chosen on γ do not carry over to it.
    """
    meta = getattr(network, "metadata", {}) or {}
    if "bn_gamma_mean" in meta:
        return np.asarray(meta["bn_gamma_mean"], dtype=float)
    gains = [np.abs(layer.step_gain).mean(axis=1) for layer in network.layers
             if getattr(layer, "step_gain", None) is not None]
    if not gains:
        raise ValueError("cutoff fixed-exit: the network has no per-step batch-norm gain (not a BNTT model)")
    steps = min(len(g) for g in gains)
    return np.mean([g[:steps] for g in gains], axis=0)


def _policy_fixed_exit(threshold: float, gains: Any = None, network=None) -> Callable[[Trace], int]:
    if gains is None:
        if network is None:
            raise ValueError("cutoff fixed-exit: needs the network (or gains=) to read its batch-norm gains")
        gains = bn_gain_per_step(network)
    gains = np.asarray(gains, dtype=float)
    below = np.flatnonzero(gains < float(threshold))
    exit_step = int(below[0]) if below.size else None

    def select(trace: Trace) -> int:
        if exit_step is None:
            return len(trace.times_us) - 1
        return min(exit_step, len(trace.times_us) - 1)
    return select


POLICIES: dict[str, Callable[..., Callable[[Trace], int]]] = {
    "none": _policy_none,
    "time": _policy_time,
    "synops": _policy_synops,
    "gap": _policy_gap,
    "confidence": _policy_confidence,
    "fixed-exit": _policy_fixed_exit,
    "first-spike": _policy_first_spike,
}


def register_policy(name: str, factory: Callable[..., Callable[[Trace], int]]) -> None:
    """Add a policy: ``factory(**params)`` returns ``select(trace) -> row index``."""
    POLICIES[name] = factory


def make_policy(name: str, **params: Any) -> Policy:
    """Configure a registered policy, e.g. ``make_policy("time", t_us=50_000)``."""
    factory = POLICIES.get(name)
    if factory is None:
        raise ValueError(f"unknown cutoff policy {name!r}; choose one of {sorted(POLICIES)}")
    try:
        select = factory(**params)
    except TypeError as exc:
        raise ValueError(f"cutoff {name}: bad parameters {sorted(params)} ({exc})") from None
    shown = {k: v for k, v in params.items() if k not in ("network", "calibration")}
    if "calibration" in params and params["calibration"] is not None:
        shown["calibration_epsilon"] = params["calibration"].get("epsilon")
        shown["calibration_index"] = params["calibration"].get("index", "time")
    return Policy(name, shown, select)


# ----------------------------------------------------------------------------- calibration


def calibrate_gap(gaps: np.ndarray, correct: np.ndarray, epsilon: float, min_support: int = 1) -> np.ndarray:
    """Per-row gap thresholds β for a target confidence ``1 − ε``.

    ``gaps`` and ``correct`` are (N samples, K rows): the top-1/top-2 gap of the cumulative readout
    and whether the argmax at that row is the label. For each row, β is the smallest candidate
    (0 or an observed gap) such that the samples with ``gap > β`` number at least ``min_support``
    and are correct with frequency ≥ 1 − ε. Rows where no candidate qualifies get ``inf``
    (never stop there).
    """
    gaps = np.asarray(gaps, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    if gaps.shape != correct.shape or gaps.ndim != 2:
        raise ValueError(f"calibrate_gap: gaps {gaps.shape} and correct {correct.shape} must be equal (N, K)")
    if not 0 < epsilon < 1:
        raise ValueError(f"calibrate_gap: epsilon={epsilon} must lie in (0, 1)")
    n, k = gaps.shape
    beta = np.full(k, np.inf)
    for row in range(k):
        g, c = gaps[:, row], correct[:, row]
        order = np.argsort(-g, kind="stable")
        gs, cs = g[order], c[order]
        # candidate β = 0 and every distinct observed gap; samples strictly above β
        candidates = np.unique(np.concatenate([[0.0], gs]))
        above = n - np.searchsorted(np.sort(g), candidates, side="right")     # count gap > β
        right = np.concatenate([[0], np.cumsum(cs)])                        # correct among top m
        n_correct = right[above]
        ok = (above >= min_support) & (n_correct >= (1 - epsilon) * np.maximum(above, 1))
        if np.any(ok):
            beta[row] = candidates[np.flatnonzero(ok)[0]]
    return beta


def _check_index(index: Any) -> str:
    if index not in CALIBRATION_INDEX:
        raise ValueError(f"gap calibration: index={index!r}; expected one of {list(CALIBRATION_INDEX)} "
                         "('row' for per-recording step bins such as frames, 'time' for a shared grid)")
    return index


def calibration_index(network) -> str:
    """How a ``gap`` calibration for ``network`` must be indexed: ``"row"`` when its input encoding
    (``metadata["input_encoding"]``) makes each recording's rows its own step bins (``frames``),
    else ``"time"``."""
    meta = getattr(network, "metadata", {}) or {}
    return "row" if meta.get("input_encoding") in ROW_INDEXED_ENCODINGS else "time"


def gap_table(gaps: np.ndarray, correct: np.ndarray, grid_us: np.ndarray, epsilon: float, *,
              index: str = "time", min_support: int = 1) -> dict:
    """A calibration table for ``make_policy("gap", calibration=...)`` and :func:`save_calibration`.

    Parameters
    ----------
    gaps, correct : (N, K) arrays
        As for :func:`calibrate_gap` (rows of equal-length, padded traces).
    grid_us : (K,) array
        The rows' times, µs (for ``index="row"`` only a record: the mean bin end times).
    epsilon : float
        Target confidence ``1 − ε``.
    index : ``"time"`` or ``"row"``
        How the table maps onto a trace's rows (see the module docstring; :func:`calibration_index`).

    Returns
    -------
    dict
        ``{"policy": "gap", "epsilon", "index", "grid_us", "beta"}``.
    """
    index = _check_index(index)
    grid_us = np.asarray(grid_us, dtype=float)
    beta = calibrate_gap(gaps, correct, epsilon, min_support)
    if len(grid_us) != len(beta):
        raise ValueError(f"gap_table: {len(grid_us)} grid times for {len(beta)} rows")
    return {"policy": "gap", "epsilon": float(epsilon), "index": index, "grid_us": grid_us, "beta": beta}


def save_calibration(path: str | Path, table: Mapping[str, Any]) -> None:
    """Write a calibration table as JSON (atomically); ``inf`` is stored as ``null``."""
    data = dict(table)
    data["beta"] = [None if not np.isfinite(b) else float(b) for b in np.asarray(table["beta"], dtype=float)]
    data["grid_us"] = [float(t) for t in table["grid_us"]]
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def load_calibration(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such calibration file (make one with `eventsim calibrate`)")
    try:
        data = json.loads(path.read_text())
        data["beta"] = np.array([np.inf if b is None else float(b) for b in data["beta"]])
        data["grid_us"] = np.asarray(data["grid_us"], dtype=float)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a calibration table ({exc})") from None
    if len(data["beta"]) != len(data["grid_us"]):
        raise ValueError(f"{path}: {len(data['beta'])} thresholds for {len(data['grid_us'])} grid times")
    try:
        _check_index(data.get("index", "time"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return data
