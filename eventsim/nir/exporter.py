"""eventsim :class:`~eventsim.network.Network` → NIR graph (see :mod:`eventsim.nir`).

Each layer becomes one NIR node named after the layer (plus a ``Scale`` node for a spike
amplitude other than 1 and a ``Delay`` node for a synaptic delay); an :class:`~eventsim.network.Add`
becomes an extra edge into the node after it, since NIR sums everything arriving at a node; a
:class:`~eventsim.network.Branch` makes the next node read the branch source's node instead of the
node before it (the layer order is kept in the graph's metadata, so eventsim reads it back as it was).
Neurons are written with unit input gain under the chosen convention (``R·k = 1``), so the
threshold is written unchanged.

What NIR cannot express (subtractive reset since NIR 1.0.6, ``v_init``, ``compare='>='``,
``order='fire-integrate'``, per-step gain/bias, refractory period, ``Readout(mode='mean')``) is
kept in the node's ``metadata["eventsim"]`` (JSON) so that eventsim reads it back exactly; other
tools ignore it, so :func:`to_nir_graph` warns (:class:`NIRExportWarning`), or refuses with
``strict=True``.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import fields
from typing import Any

import numpy as np

from .. import network as nw
from .. import neurons as nn
from .conventions import Convention, full, get_convention
from .meta import GRAPH_KEY, NODE_KEY, encode_json, require_nir

__all__ = ["to_nir_graph", "NIRExportWarning"]


class NIRExportWarning(UserWarning):
    """A layer property that NIR cannot express was kept only in eventsim's node metadata."""


def to_nir_graph(network: nw.Network, *, convention: str | Convention = "exact",
                 dt_us: float | None = None, strict: bool = False):
    """Convert ``network`` to a ``nir.NIRGraph``.

    Parameters
    ----------
    network : Network
    convention : name of a :mod:`~eventsim.nir.conventions` convention
        (``"exact"``, ``"euler"``, ``"snntorch"``, ``"sinabs"``) deciding ``τ`` and ``r``.
    dt_us : step length in µs; needed for per-step leaks and, under ``"euler"``, for every
        neuron. Defaults to ``network.metadata["dt_us"]``, then to the convention's default.
    strict : raise ValueError instead of warning when a layer property is not expressible in NIR.
    """
    nir = require_nir()
    conv = get_convention(convention)
    if dt_us is None:
        dt_us = network.metadata.get("dt_us", conv.default_dt_us)
    if dt_us is not None and not (float(dt_us) > 0 and np.isfinite(float(dt_us))):
        raise ValueError(f"dt_us must be a positive number of µs, got {dt_us!r}")
    ex = _Exporter(nir, network, conv, None if dt_us is None else float(dt_us))
    graph = ex.run()
    if ex.issues:
        lines = "; ".join(f"{name}: {msg}" for name, msg in ex.issues)
        if strict:
            raise ValueError(f"not expressible in NIR (strict=True): {lines}")
        warnings.warn(f"kept in eventsim metadata only (other NIR tools ignore it): {lines}",
                      NIRExportWarning, stacklevel=3)
    return graph


def _layer_meta(layer: nw.Layer, **extra: Any) -> dict:
    """Every init field of ``layer`` except weights, for an exact eventsim round trip."""
    values = {f.name: getattr(layer, f.name) for f in fields(layer) if f.init and f.name != "weight"}
    values.update(extra)
    return {NODE_KEY: encode_json({"layer": type(layer).__name__, "fields": values})}


class _Exporter:
    def __init__(self, nir, network: nw.Network, conv: Convention, dt_us: float | None):
        self.nir, self.net, self.conv, self.dt_us = nir, network, conv, dt_us
        self.dt = conv.step(dt_us)
        self.issues: list[tuple[str, str]] = []
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ driver
    def run(self):
        net, nir = self.net, self.nir
        names = {layer.name for layer in net.layers}
        in_name = _free("input", names)
        out_name = _free("output", names | {in_name})
        self.nodes[in_name] = nir.Input(input_type=np.array(net.input_shape))
        producers: dict[int, list[str]] = {-1: [in_name]}
        current, adds, branch = [in_name], [], None
        order = []
        for i, layer in enumerate(net.layers):
            if isinstance(layer, nn.Recurrent):   # a cycle population → rec → population
                node = _export_recurrent(self, i, layer)
                pop = current[0]
                self.nodes[layer.name] = node
                self.edges += [(pop, layer.name), (layer.name, pop)]
                producers[i] = current
                continue
            if isinstance(layer, nw.Add):
                current = current + producers[layer.source]
                adds.append(layer.name)
                producers[i] = current
                continue
            if isinstance(layer, nw.Branch):       # the next node reads an earlier layer's output
                current, adds, branch = list(producers[layer.source]), [], layer.name
                producers[i] = current
                continue
            chain = self.export_layer(i, layer)
            first = chain[0][0]
            if adds or branch:
                meta = json.loads(chain[0][1].metadata[NODE_KEY])
                meta.update({"adds": adds} if adds else {})
                meta.update({"branch": branch} if branch else {})
                chain[0][1].metadata[NODE_KEY] = encode_json(meta)
            for name, node in chain:
                self.nodes[name] = node
                order.append(name)
            self.edges += [(src, first) for src in current]
            self.edges += [(a[0], b[0]) for a, b in zip(chain, chain[1:])]
            current, adds, branch = [chain[-1][0]], [], None
            producers[i] = current
        out_meta = {NODE_KEY: encode_json({"layer": "Output", "adds": adds})} if adds else {}
        self.nodes[out_name] = nir.Output(output_type=np.array(net.output_shape), metadata=out_meta)
        self.edges += [(src, out_name) for src in current]
        meta = {GRAPH_KEY: encode_json({"convention": self.conv.name, "dt_us": self.dt_us,
                                        "input_shape": list(net.input_shape), "order": order,
                                        "metadata": _jsonable(net.metadata)})}
        try:
            return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=meta, type_check=True)
        except (ValueError, AssertionError, NotImplementedError) as exc:  # pragma: no cover - exporter bug
            raise ValueError(f"the nir package rejected the exported graph: {exc}") from None

    def export_layer(self, i: int, layer: nw.Layer) -> list[tuple[str, Any]]:
        handler = _EXPORTERS.get(type(layer))
        if handler is None:
            raise ValueError(f"{layer.name}: {type(layer).__name__} has no NIR primitive; "
                             f"NIR can express {sorted(c.__name__ for c in _EXPORTERS)} and Add")
        return handler(self, i, layer)

    # ------------------------------------------------------------------ helpers
    def need_dt(self, layer: nw.Layer, why: str) -> float:
        if self.dt is None:
            raise ValueError(f"{layer.name}: {why} needs the step length; pass dt_us= "
                             f"(convention {self.conv.name!r})")
        return self.dt

    def dynamics(self, layer: nw.NeuronSpec) -> np.ndarray | None:
        """Per-channel τ of a LIF population (in the convention's unit), or None when it does not
        leak (IF, or LIF with λ = 1 everywhere)."""
        if not isinstance(layer, nw.LIF):
            return None
        if layer.tau_s is not None and self.conv.continuous:
            return np.array(float(layer.tau_s))
        if self.dt is None and self.conv.tau_unit == "s":
            self.need_dt(layer, "converting a per-step leak to NIR's time constant τ")
        if layer.leak is None and self.dt_us is None:
            self.need_dt(layer, f"tau_s={layer.tau_s} under convention {self.conv.name!r}")
        lam = np.asarray(layer.leak_per_step(self.dt_us), dtype=np.float64)
        if np.all(lam == 1.0):
            return None
        if np.any(lam == 1.0):
            raise ValueError(f"{layer.name}.leak: some channels have λ = 1 (no leak) and others not; "
                             "NIR's LIF needs a finite τ in every channel")
        return self.conv.tau(lam, self.dt)

    def gains(self, layer: nw.Layer, tau: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(k, c/k)`` per channel for the population (``c/k`` None if it needs an unknown Δt)."""
        conv, dt = self.conv, self.dt
        if dt is None and not conv.continuous:
            self.need_dt(layer, f"NIR's r under convention {conv.name!r}")
        if tau is None:
            k = np.asarray(conv.if_spike_gain(dt), dtype=np.float64)
            ratio = None if dt is None else conv.if_const_gain(dt) / k
        else:
            k = np.asarray(conv.spike_gain(tau, dt), dtype=np.float64)
            ratio = None if dt is None else conv.const_gain(tau, dt) / k
        return k, ratio

    def bias_to_nir(self, i: int, layer: nw.Layer) -> np.ndarray | None:
        """The layer's bias in NIR's units (a current), given the population it feeds."""
        if layer.bias is None or not np.any(layer.bias):
            return layer.bias
        target, reused = self.population_fed_by(i)
        if isinstance(target, (nn.CubaLIF, nn.CubaLI, nn.LI)) and not reused:
            ratio = self.cuba_ratio(target)
            if ratio is None:
                self.need_dt(layer, "converting a bias (charge per step) to NIR's current")
            return layer.bias / ratio
        if isinstance(target, (nw.NeuronSpec, nw.Readout)) and not reused:
            _, ratio = self.gains(target, self.dynamics(target) if isinstance(target, nw.NeuronSpec) else None)
            if ratio is None:
                self.need_dt(layer, "converting a bias (charge per step) to NIR's current")
            return layer.bias / ratio
        if self.conv.unit_bias or target is None:
            return layer.bias
        raise ValueError(f"{layer.name}: its bias does not feed a single neuron population, so it "
                         f"cannot be converted to a current under convention {self.conv.name!r}; "
                         "use convention='euler' (bias = charge per step)")

    def population_fed_by(self, i: int) -> tuple[nw.Layer | None, bool]:
        """The layer whose input current is layer ``i``'s output (through ``Add`` merges, which
        sum currents), and whether that output also reaches other layers."""
        net, reused, j = self.net, False, i
        while True:
            targets = net.consumers(j)
            nxt = net.layers[j + 1] if j + 1 < len(net.layers) else None
            doubled = isinstance(nxt, nw.Add) and nxt.source == j       # x + x: reaches the Add twice
            reused = reused or len(targets) > 1 or doubled
            if not targets:
                return None, reused
            j = targets[0]
            if not isinstance(net.layers[j], nw.Add):
                return net.layers[j], reused

    def cuba_ratio(self, layer) -> Any:
        """Bias ratio (charge per step per unit NIR current) of a CubaLIF/CubaLI/LI, as the importer's
        ``_cuba_params`` (None when it needs an unknown Δt)."""
        conv, dt = self.conv, self.dt
        if conv.continuous:
            if isinstance(layer, (nn.CubaLIF, nn.CubaLI)):
                return dt
            return None if dt is None else conv.const_gain(layer.tau_s, dt) * layer.tau_s
        tau_m = self.leaky_tau(layer, "leak", "tau_s")
        if isinstance(layer, (nn.CubaLIF, nn.CubaLI)):
            tau_s = self.leaky_tau(layer, "syn_leak", "tau_syn_s")
            return np.asarray(conv.const_gain(tau_s, dt)) / np.asarray(conv.spike_gain(tau_s, dt))
        return np.asarray(conv.const_gain(tau_m, dt)) / np.asarray(conv.spike_gain(tau_m, dt))

    def leaky_tau(self, layer, leak_attr: str, tau_attr: str) -> np.ndarray:
        """τ of a per-step leak under a per-step convention (tau forms refused: their per-step input
        gain differs from the importer's)."""
        if getattr(layer, leak_attr) is None:
            raise ValueError(f"{layer.name}: {tau_attr}= exports under convention='exact' only; give "
                             f"{leak_attr}= (per step) for convention {self.conv.name!r}")
        lam = np.asarray(getattr(layer, leak_attr), dtype=np.float64)
        if np.any(lam == 1.0):
            raise ValueError(f"{layer.name}.{leak_attr}: λ = 1 has no finite NIR time constant")
        return self.conv.tau(lam, self.need_dt(layer, "converting a per-step leak to τ"))

    def delay_node(self, layer: nw.Layer, shape) -> list[tuple[str, Any]]:
        if not layer.delay_us:
            return []
        if self.conv.tau_unit == "steps":
            if self.dt_us is None:
                self.need_dt(layer, "a delay counted in steps")
            d = layer.delay_us / self.dt_us
        else:
            d = layer.delay_us * 1e-6
        return [(f"{layer.name}.delay", self.nir.Delay(delay=full(d, shape)))]


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return repr(value.tolist()) if value.size <= 4 else f"<array of shape {value.shape}>"
    return repr(value)


def _free(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    return name


def _jsonable(meta: dict) -> dict:
    try:
        json.dumps(meta, default=float)
        return meta
    except (TypeError, ValueError):
        return {k: str(v) for k, v in meta.items()}


# ----------------------------------------------------------------------------- per-layer exporters


def _export_conv(ex: _Exporter, i: int, layer: nw.Conv2d):
    in_shape, out_shape = ex.net.input_shape_of(i), ex.net.shapes[i]
    bias = ex.bias_to_nir(i, layer)
    node = ex.nir.Conv2d(    # nir types a Conv2d input as weight.shape[1]: wrong for groups > 1
        input_shape=tuple(in_shape[1:]) if layer.groups == 1 else None, weight=layer.weight, stride=tuple(layer.stride),
        padding=tuple(layer.padding), dilation=(1, 1), groups=layer.groups,
        bias=np.zeros(layer.weight.shape[0]) if bias is None else bias, metadata=_layer_meta(layer))
    return [(layer.name, node)] + ex.delay_node(layer, out_shape)


def _export_linear(ex: _Exporter, i: int, layer: nw.Linear):
    bias = ex.bias_to_nir(i, layer)
    meta = _layer_meta(layer)
    node = (ex.nir.Linear(weight=layer.weight, metadata=meta) if bias is None
            else ex.nir.Affine(weight=layer.weight, bias=bias, metadata=meta))
    return [(layer.name, node)] + ex.delay_node(layer, ex.net.shapes[i])


def _export_pool(ex: _Exporter, i: int, layer):
    cls = ex.nir.SumPool2d if isinstance(layer, nw.SumPool2d) else ex.nir.AvgPool2d
    node = cls(kernel_size=np.array(layer.kernel_size), stride=np.array(layer.stride),
               padding=np.array(layer.padding), metadata=_layer_meta(layer))
    return [(layer.name, node)]


def _export_flatten(ex: _Exporter, i: int, layer: nw.Flatten):
    node = ex.nir.Flatten(input_type={"input": np.array(ex.net.input_shape_of(i))}, start_dim=0,
                          end_dim=-1, metadata=_layer_meta(layer))
    return [(layer.name, node)]


_NOT_IN_NIR = {
    "v_init": lambda l: np.any(l.v_init != 0), "compare": lambda l: l.compare != ">",
    "order": lambda l: l.order != "integrate-fire", "step_gain": lambda l: l.step_gain is not None,
    "step_bias": lambda l: l.step_bias is not None, "refractory_us": lambda l: l.refractory_us > 0,
    "multi_spike": lambda l: l.multi_spike, "v_min": lambda l: l.v_min is not None,
}


def _export_neuron(ex: _Exporter, i: int, layer: nw.NeuronSpec):
    shape = ex.net.input_shape_of(i)
    tau = ex.dynamics(layer)
    k, _ = ex.gains(layer, tau)
    r = full(1.0 / k, shape)
    theta = full(layer.threshold, shape)
    zeros = np.zeros(shape)
    meta = _layer_meta(layer)
    if layer.reset == "subtract":
        ex.issues.append((layer.name, "reset='subtract' (NIR >= 1.0.6 only resets to v_reset; "
                                      "load with reset='subtract' in other tools)"))
    ex.issues += [(layer.name, f"{name}={_short(getattr(layer, name))}")
                  for name, test in _NOT_IN_NIR.items() if test(layer)]
    if tau is None:
        node = ex.nir.IF(r=r, v_threshold=theta, v_reset=zeros, metadata=meta)
    else:
        node = ex.nir.LIF(tau=full(tau, shape), r=r, v_leak=zeros, v_threshold=theta,
                          v_reset=zeros, metadata=meta)
    chain = [(layer.name, node)]
    amp = theta if layer.spike_amplitude == "threshold" else layer.spike_amplitude
    if np.any(np.asarray(amp) != 1.0):
        chain.append((f"{layer.name}.amplitude", ex.nir.Scale(scale=full(amp, shape))))
    return chain


def _export_readout(ex: _Exporter, i: int, layer: nw.Readout):
    k, _ = ex.gains(layer, None)
    if layer.mode != "sum":
        ex.issues.append((layer.name, f"mode={layer.mode!r} (NIR's integrator sums)"))
    node = ex.nir.I(r=full(1.0 / k, ex.net.shapes[i]), metadata=_layer_meta(layer))
    return [(layer.name, node)]


def _cuba_fields(ex: _Exporter, layer, shape) -> dict:
    """NIR ``tau_mem``/``tau`` (``tau_syn``), ``r`` and ``w_in`` with unit gain ``K = 1`` (see the
    importer): ``exact`` from ``tau_s``/``tau_syn_s``, the others from per-step leaks."""
    cuba = isinstance(layer, (nn.CubaLIF, nn.CubaLI))
    out: dict[str, Any] = {}
    if ex.conv.continuous:
        if layer.tau_s is None or (cuba and layer.tau_syn_s is None):
            raise ValueError(f"{layer.name}: a per-step leak exports under a per-step convention "
                             "(e.g. convention='snntorch' or 'euler' with dt_us=); 'exact' needs tau_s/tau_syn_s")
        tau_m = np.array(float(layer.tau_s))
        out["r"] = full(tau_m, shape)
        if cuba:
            out["tau_syn"] = full(layer.tau_syn_s, shape)
    else:
        tau_m = ex.leaky_tau(layer, "leak", "tau_s")
        k = np.asarray(ex.conv.spike_gain(tau_m, ex.dt), dtype=np.float64)
        if cuba:
            tau_s = ex.leaky_tau(layer, "syn_leak", "tau_syn_s")
            k = k * np.asarray(ex.conv.spike_gain(tau_s, ex.dt), dtype=np.float64)
            out["tau_syn"] = full(tau_s, shape)
        out["r"] = full(1.0 / k, shape)
    out["tau_mem" if cuba else "tau"] = full(tau_m, shape)
    if cuba:
        out["w_in"] = np.ones(shape)
    out["v_leak"] = np.zeros(shape)
    return out


def _export_cuba(ex: _Exporter, i: int, layer: nn.CubaLIF):
    shape = ex.net.input_shape_of(i)
    theta = full(layer.threshold, shape)
    if layer.reset == "subtract":
        ex.issues.append((layer.name, "reset='subtract' (NIR >= 1.0.6 only resets to v_reset; "
                                      "load with reset='subtract' in other tools)"))
    ex.issues += [(layer.name, f"{name}={_short(getattr(layer, name))}")
                  for name, test in _NOT_IN_NIR.items() if test(layer)]
    node = ex.nir.CubaLIF(v_threshold=theta, v_reset=np.zeros(shape), metadata=_layer_meta(layer),
                          **_cuba_fields(ex, layer, shape))
    chain = [(layer.name, node)]
    amp = theta if layer.spike_amplitude == "threshold" else layer.spike_amplitude
    if np.any(np.asarray(amp) != 1.0):
        chain.append((f"{layer.name}.amplitude", ex.nir.Scale(scale=full(amp, shape))))
    return chain


def _export_leaky_readout(ex: _Exporter, i: int, layer: nn.LI):
    shape = ex.net.shapes[i]
    cls = ex.nir.CubaLI if isinstance(layer, nn.CubaLI) else ex.nir.LI
    return [(layer.name, cls(metadata=_layer_meta(layer), **_cuba_fields(ex, layer, shape)))]


def _export_threshold(ex: _Exporter, i: int, layer: nn.Threshold):
    shape = ex.net.input_shape_of(i)
    ex.issues += [(layer.name, f"{name}={_short(getattr(layer, name))}")
                  for name, test in _NOT_IN_NIR.items() if name != "order" and test(layer)]
    chain = [(layer.name, ex.nir.Threshold(threshold=full(layer.threshold, shape), metadata=_layer_meta(layer)))]
    amp = full(layer.threshold, shape) if layer.spike_amplitude == "threshold" else layer.spike_amplitude
    if np.any(np.asarray(amp) != 1.0):
        chain.append((f"{layer.name}.amplitude", ex.nir.Scale(scale=full(amp, shape))))
    return chain


def _export_recurrent(ex: _Exporter, i: int, layer: nn.Recurrent):
    pop = ex.net.layers[i - 1]
    bias = layer.bias
    if bias is not None and np.any(bias):
        if isinstance(pop, nn.CubaLIF):
            ratio = ex.cuba_ratio(pop)
        else:
            _, ratio = ex.gains(pop, ex.dynamics(pop))
        if ratio is None:
            ex.need_dt(layer, "converting a bias (charge per step) to NIR's current")
        bias = bias / ratio
    meta = _layer_meta(layer)
    return (ex.nir.Linear(weight=layer.weight, metadata=meta) if bias is None
            else ex.nir.Affine(weight=layer.weight, bias=bias, metadata=meta))


_EXPORTERS = {
    nn.CubaLIF: _export_cuba, nn.LI: _export_leaky_readout, nn.CubaLI: _export_leaky_readout,
    nn.Threshold: _export_threshold,
    nw.Conv2d: _export_conv, nw.Linear: _export_linear, nw.SumPool2d: _export_pool,
    nw.AvgPool2d: _export_pool, nw.Flatten: _export_flatten, nw.IF: _export_neuron,
    nw.LIF: _export_neuron, nw.Readout: _export_readout,
}
