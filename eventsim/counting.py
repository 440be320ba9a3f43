"""Exact counting of synaptic operations, MACs and energy.

Conventions
-----------
* A **synop** is one spike (event) delivered to one existing synapse of a weighted layer
  (:class:`~eventsim.network.Conv2d`, :class:`~eventsim.network.Linear`). Targets that fall into
  padding do not exist and never count. With ``convention="nonzero"`` (NeuroBench's
  ``SynapticOperations``) synapses whose weight is exactly 0 do not count either; with ``"all"``
  (sinabs, SpikingJelly) they do.
* The number of synops a spike at input position ``i`` causes is its **out-degree** ``d_i``, so a
  layer's synops are ``Σ_i n_i · d_i`` with ``n_i`` the number of events arriving at ``i``. Events
  keep their multiplicity through pooling: a spike that reaches two overlapping pooling windows
  arrives twice at the next weighted layer; a spike max-pool passes at most one event per window
  per step.
* A weighted layer whose input is *analog* (an image fed every step, or the output of another
  weighted layer without neurons in between) performs dense **MACs**: ``Σ_i d_i`` per step,
  whatever the input values.
* Pooling, Flatten and Add are routing: they cost no synops.

Energy is ``synops · E_AC + MACs · E_MAC`` from a named :class:`EnergyTable`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Conv2d, Layer, Linear

__all__ = ["CONVENTIONS", "out_degree", "synapse_counts", "EnergyTable", "energy_tables",
           "register_energy_table", "get_energy_table", "energy_pj"]

CONVENTIONS = ("all", "nonzero")


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"synop convention {convention!r} is not one of {CONVENTIONS} "
                         "('all': every existing synapse, as sinabs/SpikingJelly; "
                         "'nonzero': skip zero weights, as NeuroBench)")
    return convention


def _valid_taps(size: int, kernel: int, stride: int, pad: int, out_size: int) -> np.ndarray:
    """``valid[k, i]``: input coordinate ``i`` reaches an output through kernel tap ``k``."""
    i = np.arange(size)[None, :]
    k = np.arange(kernel)[:, None]
    n = i + pad - k
    return (n >= 0) & (n % stride == 0) & (n // stride < out_size)


def out_degree(layer: Layer, input_shape: tuple, convention: str = "all") -> np.ndarray:
    """Number of existing synapses leaving each input position of a weighted layer.

    Returns an int64 array of ``input_shape``. Independent of input values; computed once per
    network with vectorised NumPy (no materialised connectivity matrix).
    """
    check_convention(convention)
    if isinstance(layer, Linear) or getattr(layer, "kind", None) == "Recurrent":
        w = layer.weight
        if convention == "all":
            return np.full(input_shape, w.shape[0], dtype=np.int64)
        return np.count_nonzero(w, axis=0).astype(np.int64).reshape(input_shape)
    if isinstance(layer, Conv2d):
        c_in, h, w_in = input_shape
        c_out, cin_g, kh, kw = layer.weight.shape
        _, oh, ow = layer.output_shape(tuple(input_shape))
        cout_g = c_out // layer.groups
        vy = _valid_taps(h, kh, layer.stride[0], layer.padding[0], oh).astype(np.int64)
        vx = _valid_taps(w_in, kw, layer.stride[1], layer.padding[1], ow).astype(np.int64)
        # per input channel and tap: how many output channels hold a synapse there
        if convention == "all":
            taps = np.full((c_in, kh, kw), cout_g, dtype=np.int64)
        else:
            nz = (layer.weight != 0).reshape(layer.groups, cout_g, cin_g, kh, kw).sum(axis=1)
            taps = nz.reshape(c_in, kh, kw).astype(np.int64)
        return np.einsum("cab,ay,bx->cyx", taps, vy, vx).astype(np.int64)
    raise ValueError(f"out_degree: {type(layer).__name__} has no synapses")


def synapse_counts(network, convention: str = "all") -> dict[str, int]:
    """Total number of synapses per weighted layer: the MACs of one dense step."""
    counts = {}
    for i, layer in enumerate(network.layers):
        if layer.synaptic:
            counts[layer.name] = int(out_degree(layer, network.input_shape_of(i), convention).sum())
    return counts


# ----------------------------------------------------------------------------- energy


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation in pJ. ``e_ac_pj`` per synop (accumulate), ``e_mac_pj`` per MAC."""

    name: str
    e_ac_pj: float
    e_mac_pj: float
    source: str

    def energy_pj(self, synops: float, macs: float) -> float:
        return float(synops) * self.e_ac_pj + float(macs) * self.e_mac_pj


_TABLES: dict[str, EnergyTable] = {}


def register_energy_table(table: EnergyTable) -> EnergyTable:
    """Add a table to the registry (replacing one of the same name)."""
    if table.e_ac_pj < 0 or table.e_mac_pj < 0:
        raise ValueError(f"energy table {table.name!r}: energies must be >= 0")
    _TABLES[table.name] = table
    return table


register_energy_table(EnergyTable(
    "45nm", 0.9, 4.6,
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014: "
    "45 nm CMOS, 32-bit float add 0.9 pJ, 32-bit float multiply 3.7 pJ (MAC = 4.6 pJ)."))
register_energy_table(EnergyTable(
    "45nm-int32", 0.1, 3.2,
    "M. Horowitz, ISSCC 2014: 45 nm CMOS, 32-bit integer add 0.1 pJ, 32-bit integer multiply "
    "3.1 pJ (MAC = 3.2 pJ)."))
register_energy_table(EnergyTable(
    "45nm-int8", 0.03, 0.23,
    "M. Horowitz, ISSCC 2014: 45 nm CMOS, 8-bit integer add 0.03 pJ, 8-bit integer multiply "
    "0.2 pJ (MAC = 0.23 pJ)."))
register_energy_table(EnergyTable(
    "loihi", 23.6, 23.6,
    "M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', "
    "IEEE Micro 38(1), 2018, Table 1: 23.6 pJ per synaptic spike operation (MACs charged the same)."))


def energy_tables() -> dict[str, EnergyTable]:
    """All registered energy tables by name."""
    return dict(_TABLES)


def get_energy_table(name: str | EnergyTable) -> EnergyTable:
    if isinstance(name, EnergyTable):
        return name
    try:
        return _TABLES[name]
    except KeyError:
        raise ValueError(f"unknown energy table {name!r}; choose one of {sorted(_TABLES)}") from None


def energy_pj(synops: float, macs: float, table: str | EnergyTable = "45nm") -> float:
    """``synops · E_AC + MACs · E_MAC`` in pJ under the named table.

    >>> energy_pj(1000, 10, "45nm")
    946.0
    """
    return get_energy_table(table).energy_pj(synops, macs)
