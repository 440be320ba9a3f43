"""NIR interchange: read and write ``.nir`` files (the Neuromorphic Intermediate Representation).

* :mod:`~eventsim.nir.files`: ``.nir`` (HDF5) files, read safely, written atomically; the ``nir``
  model format of :func:`eventsim.load` / :func:`eventsim.save`.
* :mod:`~eventsim.nir.importer` / :mod:`~eventsim.nir.exporter`: NIR graph ↔ eventsim ``Network``.
* :mod:`~eventsim.nir.conventions`: how each exporter discretises NIR's continuous-time equations.
* :mod:`~eventsim.nir.graph`: the graph walked in topological order, merges as ``Branch``/``Add``.
* :mod:`~eventsim.nir.meta`: eventsim's own metadata kept inside a NIR file.

The ``nir`` package is imported only when needed (``pip install 'eventsim[nir]'``).
"""
from __future__ import annotations

from .conventions import CONVENTIONS, Convention, register_convention
from .exporter import NIRExportWarning, to_nir_graph
from .files import convert, load_nir, nir_summary, save_nir
from .importer import from_nir_graph

__all__ = ["load_nir", "save_nir", "from_nir_graph", "to_nir_graph", "nir_summary", "convert",
           "NIRExportWarning", "CONVENTIONS", "Convention", "register_convention"]
