"""NeuroBench 2.3 adapter: its ``SynapticOperations`` and ``ActivationSparsity`` metrics on an
snnTorch model wrapped in NeuroBench's ``SNNTorchModel``.

NeuroBench measures a model that some framework simulates; its documented path for spiking
models is snnTorch. The eventsim network becomes a flat ``torch.nn.Module`` of ``torch.nn`` layers
and ``snntorch.Leaky(beta=1, reset_mechanism="subtract", init_hidden=True)`` (IF; fires on
``v > θ``), run one step at a time by ``SNNTorchModel``; the readout is the sum over steps of the
last layer's output (NeuroBench's ``Aggregate`` post-processor).

NeuroBench's counting (``neurobench.metrics.utils.layers.single_layer_MACs``): per forward call of
a Conv/Linear layer, the input is **binarised** (every non-zero becomes 1) and the weights too, and
the count is the sum of a convolution of the two: one operation per non-zero input element and
existing synapse with a **non-zero weight** (``"nonzero"`` convention, padding excluded). Calls
whose input holds anything but 0/±1 are booked as ``Effective_MACs``, the others as
``Effective_ACs``; their sum is NeuroBench's synop count. Event counts > 1 in one bin therefore
count once, and a pooled input counts once per non-zero pooled value.

The driver mirrors ``neurobench.benchmarks.Benchmark.run`` for one sample (register hooks, run the
model, call each metric, reset hooks) but lets exceptions through: ``Benchmark.run`` turns a
failing metric into a silent 0.0.
"""
from __future__ import annotations

import numpy as np

import eventsim as es

from .common import PeerRun, PeerStatus, peer_status
from .torch_common import check_if_population, load_weights, readout_last, scalar_threshold, torch_layer

__all__ = ["NAME", "COMPARE", "status", "build", "simulate", "timer"]

NAME = "NeuroBench"
COMPARE = ">"
MODULES = ("snntorch", "neurobench.models", "neurobench.metrics.workload", "neurobench.metrics.utils.layers")


def status() -> PeerStatus:
    """Whether NeuroBench (and snnTorch, which it imports) imports here."""
    st = peer_status(NAME, "neurobench", MODULES)
    if st.available:
        from importlib.metadata import version
        st = PeerStatus(st.name, True, f"{st.version} (on snnTorch {version('snntorch')})")
    return st


def _net_class():
    import torch

    class FlatSNN(torch.nn.Module):
        """Layers as direct children ``l0, l1, ...`` (NeuroBench and snnTorch look at children).

        ``forward(x)`` runs one step and returns ``(output, None)`` as ``SNNTorchModel`` expects;
        ``reset()`` zeroes every Leaky membrane (``snntorch.utils.reset`` only finds Leaky
        modules that are direct children of the net it is given).
        """

        def __init__(self, modules):
            super().__init__()
            for i, mod in enumerate(modules):
                self.add_module(f"l{i}", mod)

        def forward(self, x):
            for mod in self.children():
                x = mod(x)
            return x, None

        def reset(self):
            import snntorch as snn
            for mod in self.children():
                if isinstance(mod, snn.Leaky):
                    mod.reset_mem()
    return FlatSNN


def build(network: es.Network, dtype=None, hooks: bool = True):
    """NeuroBench-wrapped snnTorch twin of ``network``: ``(SNNTorchModel, names)``.

    ``names[i]`` is the eventsim layer of child ``l{i}`` (None for casts). ``hooks=True`` registers
    NeuroBench's activation and connection hooks (needed by its metrics, not by timing).
    """
    import torch
    import snntorch as snn
    from neurobench.models import SNNTorchModel

    from .torch_common import AsDtype
    dtype = dtype or torch.float64
    readout_last(network, NAME)
    modules, names = [], []
    for spec in network.layers[:-1]:
        extra = None
        mod = torch_layer(spec)
        if isinstance(spec, es.NeuronSpec):
            check_if_population(spec, COMPARE, NAME)
            mod = snn.Leaky(beta=1.0, threshold=scalar_threshold(spec, NAME), reset_mechanism="subtract",
                            init_hidden=True)
            extra = AsDtype(dtype)
        elif mod is None:
            raise ValueError(f"{NAME}: {spec.name} ({type(spec).__name__}) has no adapter")
        modules.append(mod)
        names.append(spec.name)
        if extra is not None:
            modules.append(extra)
            names.append(None)
    net = _net_class()(modules).to(dtype)
    load_weights(net.children(), names, network)
    model = SNNTorchModel(net)
    if hooks:
        model.register_hooks()
    return model, names


def _input(frames: np.ndarray, model):
    import torch
    dtype = next(p for p in model.__net__().parameters()).dtype
    return torch.from_numpy(np.asarray(frames)).to(dtype).unsqueeze(0)    # (B=1, T, C, H, W)


def simulate(model, frames: np.ndarray, label: int = 0) -> PeerRun:
    """One sample through NeuroBench: SynapticOperations, ActivationSparsity, per-layer counts, spikes.

    Parameters
    ----------
    model : ``(SNNTorchModel, names)`` from :func:`build` (with hooks)
    frames : (T, C, H, W) array of event counts per 10 ms step
    label : fills the ``(data, target)`` pair the metrics take; none of them reads it

    Returns
    -------
    PeerRun
        Keyed by eventsim layer names: rasters, NeuroBench's count per weighted layer; ``extra``
        holds ``Effective_ACs``, ``Effective_MACs``, ``Dense``, ``ActivationSparsity`` and their sum.
    """
    import torch
    from neurobench.metrics.utils.layers import single_layer_MACs
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    model_, names = model
    x = _input(frames, model_)
    data = (x, torch.tensor([label]))
    child_names = {f"l{i}": n for i, n in enumerate(names)}
    weighted = [n for child, n in zip(model_.__net__().children(), names)
                if isinstance(child, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            preds = model_(x)                                       # (B, T, n_out)
            synops_metric = SynapticOperations()
            synops_metric.reset()
            ops = synops_metric(model_, preds, data)
            sparsity = ActivationSparsity()(model_, preds, data)
            # per layer, with NeuroBench's own function, exactly as SynapticOperations applies it
            per_layer = {}
            for name, hook in zip(weighted, model_.connection_hooks):
                total = 0
                for inputs in hook.inputs:
                    spikes = inputs[0] if len(inputs) == 1 else inputs
                    total += single_layer_MACs(spikes, hook.layer)[0]
                per_layer[name] = int(total)
            rasters = {}
            for hook in model_.activation_hooks:
                rasters[child_names[hook.name]] = torch.stack(
                    [o.detach()[0] for o in hook.activation_outputs]).numpy().astype(np.uint8)
    finally:
        model_.reset_hooks()
    extra = {"effective_acs": int(ops["Effective_ACs"]), "effective_macs": int(ops["Effective_MACs"]),
             "dense": int(ops["Dense"]), "activation_sparsity": float(sparsity),
             "synops_total": int(ops["Effective_ACs"]) + int(ops["Effective_MACs"])}
    return PeerRun(logits=preds.sum(1)[0].double().numpy(), rasters=rasters, synops=per_layer, extra=extra)


def timer(model):
    """A one-argument callable: snnTorch's step loop inside ``SNNTorchModel`` (build with ``hooks=False``)."""
    import torch
    model_, _ = model

    def run(x):
        with torch.no_grad():
            return model_(x).sum(1)
    return run, (lambda frames: _input(frames, model_))
