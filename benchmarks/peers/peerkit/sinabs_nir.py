"""sinabs and NIR (tests/test_sinabs.py, benchmarks/bench_sinabs.py): sinabs twins of
eventsim networks, their NIR export by ``sinabs.nir.to_nir`` and sinabs's own simulation of a NIR
file (``sinabs.nir.from_nir``) with every spiking layer's output recorded per step."""
from __future__ import annotations

import numpy as np

import eventsim as es


def sinabs_twin(net: es.Network):
    """A ``torch.nn.Sequential`` of sinabs layers with ``net``'s weights (no biases, as the peer
    nets), default sinabs neurons (``IAFSqueeze``: MultiSpike, subtract reset); a Readout becomes
    a spiking ``IAFSqueeze`` (θ = 1), so the network ends in spikes as sinabs classifiers do."""
    import torch
    import sinabs.layers as sl
    mods = []
    for layer in net.layers:
        if isinstance(layer, es.Conv2d):
            m = torch.nn.Conv2d(layer.in_channels, layer.weight.shape[0], layer.weight.shape[2:], stride=layer.stride,
                                padding=layer.padding, groups=layer.groups, bias=False)
            m.weight.data = torch.tensor(layer.weight, dtype=torch.float32)
        elif isinstance(layer, es.Linear):
            m = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[0], bias=False)
            m.weight.data = torch.tensor(layer.weight, dtype=torch.float32)
        elif isinstance(layer, es.IF):
            m = sl.IAFSqueeze(batch_size=1, spike_threshold=float(layer.threshold))
        elif isinstance(layer, es.Readout):
            m = sl.IAFSqueeze(batch_size=1, spike_threshold=1.0)
        elif isinstance(layer, es.SumPool2d):
            m = sl.SumPool2d(layer.kernel_size)
        elif isinstance(layer, es.Flatten):
            m = torch.nn.Flatten()
        else:
            raise ValueError(f"{layer.name}: no sinabs twin for {layer.kind}")
        mods.append(m)
    return torch.nn.Sequential(*mods)


def export_nir(net: es.Network, path):
    """``net``'s sinabs twin exported by ``sinabs.nir.to_nir`` and written to ``path``. sinabs
    leaves ``Conv2d.input_shape`` and ``Flatten.input_type`` empty, which ``nir.write`` cannot
    store: they are filled in from the shapes (what a user does before ``nir.write``)."""
    import nir
    import torch
    from sinabs.nir import to_nir
    seq = sinabs_twin(net)
    sample = torch.zeros((2,) + tuple(net.input_shape))
    seq(sample)
    graph = to_nir(seq, sample)
    shape = tuple(net.input_shape)
    for i, module in enumerate(seq):
        node = graph.nodes[str(i)]
        if isinstance(node, nir.Conv2d) and node.input_shape is None:
            node.input_shape = np.array(shape[1:])
        if isinstance(node, nir.Flatten) and (node.input_type or {}).get("input") is None:
            node.input_type = {"input": np.array(shape)}
        shape = tuple(module(torch.zeros((1,) + shape)).shape[1:])
    nir.write(str(path), graph)
    return path


class SinabsRun:
    """sinabs's own simulation of a NIR file, ``sinabs.nir.from_nir``.

    ``double=True`` runs it in float64 (``model.double()``): sinabs's ``MultiSpike`` returns float32
    spikes, which are whole numbers and so exact; a pre-hook casts them back to float64 before
    each weighted layer. eventsim computes in float64, so this removes the float32 rounding of
    the membranes, which otherwise flips a spike at an exact threshold boundary now and then
    (2 of 1.4 million neuron-steps on the first recordings). ``double=False``: sinabs as it ships.
    """

    def __init__(self, path, double: bool = True):
        import nir
        import sinabs.layers as sl
        import torch
        from sinabs.nir import from_nir
        self.model = from_nir(nir.read(str(path)), batch_size=1)
        self.dtype = torch.float64 if double else torch.float32
        if double:
            self.model.double()
            for module in self.model.modules():
                if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                    module.register_forward_pre_hook(lambda mod, args: tuple(a.double() for a in args))
        self.spikes = {}
        for name, module in self.model.named_modules():
            if isinstance(module, sl.IAFSqueeze):
                module.register_forward_hook(
                    lambda mod, inp, out, name=name: self.spikes.__setitem__(name, out.detach().numpy().copy()))

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Spikes per step of every spiking layer for one recording ``(T, C, H, W)`` of counts."""
        import sinabs
        import torch
        sinabs.reset_states(self.model)
        self.spikes.clear()
        with torch.no_grad():
            self.model(torch.tensor(np.asarray(frames), dtype=self.dtype))
        return dict(self.spikes)
