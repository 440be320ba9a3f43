"""Simulation results, shared by both engines.

A result is a sequence of *rows*: one per time step for the stepped engine, one per snapshot time
for the asynchronous engine. Each row holds the readout ``Y`` at the end of the row and the counts
(spikes, synops, MACs, neuron updates) that happened *during* the row, per layer. Cumulative
values up to any row come from :meth:`SimulationResult.at`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

__all__ = ["SimulationResult", "Counts"]


@dataclass(frozen=True)
class Counts:
    """Cumulative readout and counters at one time (``t_us``) or step."""

    t_us: float
    step: int | None
    logits: np.ndarray
    spikes: int
    synops: int
    macs: int
    neuron_updates: int
    spikes_per_layer: Mapping[str, int]
    synops_per_layer: Mapping[str, int]
    macs_per_layer: Mapping[str, int]
    #: the decoded prediction at this time (see :mod:`eventsim.decoding`); None: argmax of ``logits``
    decoded: int | None = None

    @property
    def prediction(self) -> int:
        """Predicted class at this time: the decoding's answer (``-1`` while undecided), else argmax."""
        return self.decoded if self.decoded is not None else _argmax(self.logits)


def _argmax(logits: np.ndarray) -> int:
    """Index of the largest logit; ties go to the lowest index (as ``torch.argmax``/``np.argmax``)."""
    if logits.size == 0:
        return -1
    return int(np.argmax(logits))


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation produced.

    Attributes
    ----------
    engine : ``"stepped"`` or ``"async"``
    layer_names : names of the network's layers; every ``*_per_row`` array has one column each
    times_us : (K,) end time of each row in µs (stepped: ``(k+1)·dt_us``, or ``k+1`` if no dt)
    logits : (K, n_out) at the end of each row, under the decoding (:mod:`eventsim.decoding`): the
        readout, the cumulative output spike counts, or the output membrane
    spikes_per_row, synops_per_row, macs_per_row, neuron_updates_per_row : (K, L) int64 increments
    synop_convention : ``"all"`` (every existing synapse) or ``"nonzero"`` (NeuroBench)
    rasters : ``{layer name: (K, *shape) array}`` of spike counts per row, when recorded
    membranes : ``{layer name: (K, *shape) array}`` of membrane potential at row end, when recorded
    spike_times : ``{layer name: structured array (t_us, neuron)}``, exact spike times (async
        engine, ``record="spike_times"``)
    row_kind : (K,) what closed each row: 0 a time (step end or snapshot time), 1 a synop budget
    info : engine details (e.g. the async engine's ``queue_high_water``)
    """

    engine: str
    layer_names: tuple
    times_us: np.ndarray
    logits: np.ndarray
    spikes_per_row: np.ndarray
    synops_per_row: np.ndarray
    macs_per_row: np.ndarray
    neuron_updates_per_row: np.ndarray
    synop_convention: str = "all"
    dt_us: float | None = None
    rasters: Mapping[str, np.ndarray] = field(default_factory=dict)
    membranes: Mapping[str, np.ndarray] = field(default_factory=dict)
    info: Mapping[str, object] = field(default_factory=dict)

    # ------------------------------------------------------------------ totals
    @property
    def steps(self) -> int:
        return int(self.times_us.shape[0])

    @property
    def spike_times(self) -> Mapping[str, np.ndarray]:
        """Exact spike times per spiking layer: structured arrays with fields ``t_us`` (float64 µs)
        and ``neuron`` (flat index in the layer's ``(C, H, W)`` shape), in emission order."""
        times = self.info.get("spike_times")
        if times is None:
            raise ValueError("spike times were not recorded: simulate(..., engine='async', record='spike_times')")
        return times

    @property
    def row_kind(self) -> np.ndarray:
        """(K,) int: 0 for a row closed at a time (a step end or snapshot time), 1 for a row taken
        the moment the cumulative synop count reached a budget (async ``snapshot_synops``)."""
        kind = self.info.get("row_kind")
        return np.asarray(kind, dtype=np.int64) if kind is not None else np.zeros(self.steps, dtype=np.int64)

    @property
    def final_logits(self) -> np.ndarray:
        return self.logits[-1] if len(self.logits) else np.zeros(0)

    @property
    def prediction(self) -> int:
        """Predicted class at the end of the simulation under the result's decoding
        (:mod:`eventsim.decoding`: argmax of the readout or of the output spike counts, lowest index
        on ties; ``-1`` while a spiking output is undecided)."""
        preds = self.predictions
        if preds is not None:
            return int(preds[-1]) if len(preds) else -1
        return _argmax(self.final_logits)

    @property
    def predictions(self) -> np.ndarray | None:
        """(K,) the decoded prediction at each row end (``-1``: undecided), or None if not decoded."""
        preds = self.info.get("predictions")
        return None if preds is None else np.asarray(preds, np.int64)

    @property
    def spikes(self) -> int:
        return int(self.spikes_per_row.sum())

    @property
    def synops(self) -> int:
        return int(self.synops_per_row.sum())

    @property
    def macs(self) -> int:
        return int(self.macs_per_row.sum())

    @property
    def neuron_updates(self) -> int:
        return int(self.neuron_updates_per_row.sum())

    def _per_layer(self, rows: np.ndarray, upto: int | None = None) -> dict[str, int]:
        totals = rows[:upto].sum(axis=0) if upto is not None else rows.sum(axis=0)
        return {name: int(v) for name, v in zip(self.layer_names, totals)}

    @property
    def spikes_per_layer(self) -> dict[str, int]:
        return self._per_layer(self.spikes_per_row)

    @property
    def synops_per_layer(self) -> dict[str, int]:
        return self._per_layer(self.synops_per_row)

    @property
    def macs_per_layer(self) -> dict[str, int]:
        return self._per_layer(self.macs_per_row)

    @property
    def neuron_updates_per_layer(self) -> dict[str, int]:
        return self._per_layer(self.neuron_updates_per_row)

    def energy_pj(self, table: str = "45nm") -> float:
        """Energy in pJ of the whole run under a named energy table (see :mod:`eventsim.counting`)."""
        from .counting import energy_pj
        return energy_pj(self.synops, self.macs, table)

    # ------------------------------------------------------------------ anytime
    def at(self, t_us: float | None = None, step: int | None = None) -> Counts:
        """Readout and cumulative counters at time ``t_us`` or after step ``step`` (1-based count).

        ``t_us`` selects the last row ending at or before ``t_us``; before the first row the readout
        is zero and nothing has been counted.
        """
        if (t_us is None) == (step is None):
            raise ValueError("at(): give exactly one of t_us= or step=")
        if step is not None:
            if not 0 <= step <= self.steps:
                raise ValueError(f"at(step={step}): must lie in 0..{self.steps}")
            k = int(step)
            t = float(self.times_us[k - 1]) if k else 0.0
        else:
            k = int(np.searchsorted(self.times_us, t_us, side="right"))
            t = float(t_us)
        logits = self.logits[k - 1].copy() if k else np.zeros(self.logits.shape[1])
        preds = self.predictions
        decoded = None if preds is None else (int(preds[k - 1]) if k else -1)
        return Counts(
            t_us=t, step=k,
            logits=logits,
            spikes=int(self.spikes_per_row[:k].sum()),
            synops=int(self.synops_per_row[:k].sum()),
            macs=int(self.macs_per_row[:k].sum()),
            neuron_updates=int(self.neuron_updates_per_row[:k].sum()),
            spikes_per_layer=self._per_layer(self.spikes_per_row, k),
            synops_per_layer=self._per_layer(self.synops_per_row, k),
            macs_per_layer=self._per_layer(self.macs_per_row, k),
            decoded=decoded,
        )

    def cumulative(self, what: str = "synops") -> np.ndarray:
        """(K,) running total of ``spikes``, ``synops``, ``macs`` or ``neuron_updates`` at each row end."""
        rows = {"spikes": self.spikes_per_row, "synops": self.synops_per_row,
                "macs": self.macs_per_row, "neuron_updates": self.neuron_updates_per_row}
        if what not in rows:
            raise ValueError(f"cumulative({what!r}): choose one of {sorted(rows)}")
        return np.cumsum(rows[what].sum(axis=1))

    def summary(self) -> str:
        lines = [f"engine={self.engine} rows={self.steps} prediction={self.prediction} "
                 f"spikes={self.spikes} synops={self.synops} ({self.synop_convention}) macs={self.macs} "
                 f"neuron_updates={self.neuron_updates}"]
        for name, s, y, m in zip(self.layer_names, self.spikes_per_row.sum(0), self.synops_per_row.sum(0),
                                 self.macs_per_row.sum(0)):
            if s or y or m:
                lines.append(f"  {name:<20} spikes={int(s):>10} synops={int(y):>12} macs={int(m):>12}")
        return "\n".join(lines)
