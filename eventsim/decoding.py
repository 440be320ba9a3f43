"""How outputs become predictions: readout, output spike counts, first output spike, membrane.

A network that ends in a :class:`~eventsim.network.Readout` is read by its accumulated value
``Y``. A network that ends in a spiking population (sinabs, snnTorch and SpikingJelly classifiers
usually do) is read from that population, in one of three ways:

==================  ===============================================================================
``"counts"``        the output spike counts so far (the default for a spiking last layer);
                    the prediction is the neuron with the most spikes (lowest index on ties),
                    ``-1`` (undecided) while no output neuron has spiked
``"first-spike"``   the neuron that spiked first wins; ties (spikes at one instant, or in one step of
                    the stepped engine) go to the larger count so far, then to the lowest index;
                    ``-1`` before the first output spike. The logits are the counts, so that
                    ``confidence`` and ``gap`` cutoffs work on the counts
``"membrane"``      the last population's membrane potential at the row end; argmax, lowest index
                    on ties (a population that was never driven sits at ``v_init``)
``"readout"``       the :class:`~eventsim.network.Readout`'s value (the default where there is one)
==================  ===============================================================================

``decode="auto"`` picks ``"counts"`` for a network that ends in a spiking population, else
``"readout"`` (a network that ends in neither has empty logits and predicts ``-1``). Every row
of a result (every snapshot, :meth:`~eventsim.result.SimulationResult.at`) has a prediction, so
every cutoff policy works with every decoding.

What each engine records for this, at no cost to the user's ``record=`` choice: the stepped
engine keeps the output population's counts and membrane per step; the asynchronous engine reads
the output spikes from its spike log in emission order (exact also at a synop-budget snapshot
taken between two spikes of one instant), and the membrane from ``record="membrane"``.

Example
-------
>>> import numpy as np, eventsim as es
>>> net = es.Network((1, 1, 1), [es.Flatten(), es.Linear(np.array([[0.6], [0.3]])), es.IF(threshold=1.0)])
>>> res = es.simulate(net, np.ones((1, 1, 1)), steps=4, input_kind="analog")
>>> res.logits.tolist(), res.info["predictions"].tolist()
([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 1.0]], [-1, 0, 0, 0])
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .network import Network, NeuronSpec
from .result import SimulationResult

__all__ = ["DECODINGS", "resolve_decode", "needed_records", "decode_result", "decode_counts",
           "decode_first_spike", "decode_membrane"]

DECODINGS = ("auto", "readout", "counts", "first-spike", "membrane")
_SPIKE_DECODINGS = ("counts", "first-spike", "membrane")


def resolve_decode(network: Network, decode: str | None) -> str:
    """The decoding a network runs with: ``decode`` checked against the network, ``"auto"`` resolved."""
    decode = "auto" if decode is None else decode
    if decode not in DECODINGS:
        raise ValueError(f"decode={decode!r}: choose one of {DECODINGS}")
    last = network.layers[-1]
    if decode == "auto":
        if isinstance(last, NeuronSpec):
            return "counts"
        return "readout"      # a Readout, or no output at all (empty logits, prediction -1)
    if decode == "readout" and not network.has_readout and isinstance(last, NeuronSpec):
        raise ValueError(f"decode='readout' needs a Readout as the last layer, but the network ends in {last.name}; "
                         f"use decode='counts', 'first-spike' or 'membrane' for a network that ends in spikes")
    if decode in _SPIKE_DECODINGS and not isinstance(last, NeuronSpec):
        raise ValueError(f"decode={decode!r} reads the last layer's spikes or membrane, but the network ends in "
                         f"{last.name} ({last.kind}); use decode='readout' (or 'auto')")
    return decode


def needed_records(decode: str, engine: str) -> tuple[str, ...]:
    """What the asynchronous engine must record for a decoding (the stepped engine needs nothing)."""
    if engine != "async" or decode == "readout":
        return ()
    return ("spike_times", "membrane") if decode == "membrane" else ("spike_times",)


def decode_counts(counts: np.ndarray) -> np.ndarray:
    """Per row prediction from cumulative counts ``(K, n)``: argmax (lowest index on ties), ``-1`` if all zero."""
    counts = np.asarray(counts)
    if counts.shape[1] == 0:
        return np.full(counts.shape[0], -1, np.int64)
    return np.where(counts.max(axis=1) > 0, np.argmax(counts, axis=1), -1).astype(np.int64)


def decode_first_spike(counts: np.ndarray, first_t: np.ndarray) -> np.ndarray:
    """Per row prediction from cumulative counts ``(K, n)`` and the first spike time of each neuron
    ``(n,)`` (``inf``: never). At row ``k`` the candidates are the neurons that have spiked by then;
    the earliest wins, then the larger count at ``k``, then the lowest index; ``-1`` if none."""
    counts = np.asarray(counts)
    first_t = np.asarray(first_t, dtype=np.float64)
    preds = np.full(counts.shape[0], -1, np.int64)
    for k in range(counts.shape[0]):
        fired = np.flatnonzero(counts[k] > 0)
        if fired.size:
            t_min = first_t[fired].min()
            tied = fired[first_t[fired] == t_min]
            best = counts[k, tied].max()
            preds[k] = int(tied[counts[k, tied] == best][0])
    return preds


def decode_membrane(membrane: np.ndarray) -> np.ndarray:
    """Per row prediction from the membrane ``(K, n)``: argmax, lowest index on ties."""
    membrane = np.asarray(membrane)
    if membrane.shape[1] == 0:
        return np.full(membrane.shape[0], -1, np.int64)
    return np.argmax(membrane, axis=1).astype(np.int64)


def _output_counts(network: Network, res: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative output counts per row ``(K, n)`` and each output neuron's first spike time ``(n,)``."""
    n = int(np.prod(network.output_shape))
    K = res.steps
    if res.engine == "stepped":
        per_step = np.asarray(res.info["output_counts"], np.int64).reshape(K, n)
        counts = np.cumsum(per_step, axis=0)
        ever = counts[-1] > 0 if K else np.zeros(n, bool)
        first_row = np.argmax(per_step > 0, axis=0)
        first_t = np.where(ever, np.asarray(res.times_us, float)[first_row] if K else np.inf, np.inf)
        return counts, first_t
    t_log, neuron_log = res.info["output_spikes"]
    upto = np.cumsum(res.spikes_per_row[:, len(network.layers) - 1])     # output spikes by each row end
    counts = np.zeros((K, n), np.int64)
    done = 0
    running = np.zeros(n, np.int64)
    for k in range(K):
        stop = int(upto[k])
        np.add.at(running, neuron_log[done:stop], 1)
        done = stop
        counts[k] = running
    first_t = np.full(n, np.inf)
    # the first occurrence of each neuron in emission order carries its first spike time
    seen, idx = np.unique(neuron_log, return_index=True)
    first_t[seen] = np.asarray(t_log, float)[idx]
    return counts, first_t


def _output_membrane(network: Network, res: SimulationResult) -> np.ndarray:
    n = int(np.prod(network.output_shape))
    if res.engine == "stepped":
        return np.asarray(res.info["output_membrane"], np.float64).reshape(res.steps, n)
    return np.asarray(res.membranes[network.layers[-1].name], np.float64).reshape(res.steps, n)


def decode_result(network: Network, res: SimulationResult, decode: str,
                  keep_records: tuple[str, ...] = ("spikes", "membrane", "spike_times")) -> SimulationResult:
    """``res`` with ``logits`` and per-row ``info["predictions"]`` of a resolved decoding (``"readout"``:
    ``res`` itself, its ``info["decode"]`` set).

    ``keep_records``: what the caller asked to record; what was recorded only for decoding is dropped.
    """
    if decode == "readout":        # the readout's argmax, as before: no per-row predictions stored
        res.info["decode"] = decode    # the engine's own dict, made for this result: no copy of it
        return res
    info = dict(res.info)
    info["decode"] = decode
    try:
        counts, first_t = _output_counts(network, res)
        membrane = _output_membrane(network, res) if decode == "membrane" else None
    except KeyError:
        raise ValueError(f"decode={decode!r}: the run did not record what this decoding needs (a resumed run "
                         "decodes as its first window was set up: pass the same decode= to every window)") from None
    if decode == "counts":
        logits, preds = counts.astype(np.float64), decode_counts(counts)
    elif decode == "first-spike":
        logits, preds = counts.astype(np.float64), decode_first_spike(counts, first_t)
        info["first_spike_us"] = first_t
    else:
        logits = membrane
        preds = decode_membrane(logits)
    info["predictions"] = preds
    info.pop("output_counts", None)
    info.pop("output_membrane", None)
    info.pop("output_spikes", None)
    membranes = res.membranes if "membrane" in keep_records else {}
    if "spike_times" not in keep_records:
        info.pop("spike_times", None)
    return replace(res, logits=logits, info=info, membranes=membranes)

