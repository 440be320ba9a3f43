"""eventsim: run trained spiking networks on event-camera recordings, one spike at a time.

The public API (see DESIGN.md and the README)::

    import eventsim as es
    net = es.Network(input_shape=(2, 34, 34), layers=[...])
    res = es.simulate(net, inputs, engine="stepped", steps=10)
    events = es.read_events("recording.bin")
    net = es.load("model.pt", format="diet")

Submodules are imported lazily so that ``import eventsim`` and ``eventsim --help`` stay fast.
"""
from __future__ import annotations

import importlib

from .network import (IF, LIF, Add, AvgPool2d, Branch, Conv2d, Flatten, Layer, Linear, MaxPool2d, Network,
                      NeuronSpec, Readout, SumPool2d)
from .neurons import LI, CubaLI, CubaLIF, Recurrent, Threshold

from . import evaluate  # the module is callable: es.evaluate(network, dataset) is evaluate.evaluate(...)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "simulate": "eventsim.engines",
    "SimulationResult": "eventsim.result",
    "Counts": "eventsim.result",
    "EnergyTable": "eventsim.counting",
    "energy_tables": "eventsim.counting",
    "energy_pj": "eventsim.counting",
    "synapse_counts": "eventsim.counting",
    "load": "eventsim.formats",
    "save": "eventsim.formats",
    "read_events": "eventsim.events",
    "fit_recording": "eventsim.events",
}

__all__ = ["IF", "LIF", "Add", "AvgPool2d", "Branch", "Conv2d", "Flatten", "Layer", "Linear", "MaxPool2d",
           "Network", "NeuronSpec", "Readout", "SumPool2d", "evaluate", "CubaLIF", "Threshold", "LI", "CubaLI",
           "Recurrent", *_LAZY]


# submodules reachable as attributes without an explicit import (``es.events.load_demo``)
_SUBMODULES = ("events", "counting", "cutoff", "engines", "formats", "checkpoints")


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"eventsim.{name}")
        globals()[name] = module
        return module
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
