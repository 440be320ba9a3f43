"""Graph preparation for the NIR importer: collect nodes, check the structure, and fold ``Scale``
and ``Delay`` nodes into their neighbours. The DAG is then ordered as eventsim's layer list (with
:class:`~eventsim.network.Branch` and :class:`~eventsim.network.Add`) by :func:`eventsim.graph.plan`,
which the ONNX importer shares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .conventions import as_numbers
from .meta import GRAPH_KEY, NODE_KEY, decode_json

__all__ = ["Node", "Ctx", "UNSUPPORTED", "collect", "adjacency", "ends", "resolve_input_shape",
           "topological", "fold", "array_field"]

WEIGHTED = ("Affine", "Linear", "Conv2d", "Conv1d")
ROUTING = ("Flatten", "SumPool2d", "AvgPool2d")
NEURONS = ("IF", "LIF", "CubaLIF", "Threshold")
#: populations that can carry a recurrent projection (a cycle population → Affine/Linear → population)
RECURRENT_NEURONS = ("IF", "LIF", "CubaLIF")

#: NIR primitives eventsim cannot run, with the IR addition each would need.
UNSUPPORTED = {
    "NIRGraph": "a nested subgraph (eventsim networks are flat: flatten it first, as nirtorch does "
                "for snnTorch's RLeaky/RSynaptic)",
}


@dataclass
class Node:
    """One NIR node: its fields ``f`` (``node.to_dict()``), eventsim's metadata ``es``, and what
    folding attached to it (the spike ``amplitude`` of a Scale, the ``delay`` of a Delay)."""

    name: str
    type: str
    f: dict
    es: dict
    amplitude: np.ndarray | None = None
    delay: np.ndarray | None = None

    def where(self, fld: str | None = None) -> str:
        return f"node {self.name!r} ({self.type})" + (f" field {fld!r}" if fld else "")


@dataclass
class Ctx:
    """One import: convention and step (``dt`` in the unit of τ), the graph's adjacency, and the
    layers emitted so far (``index`` maps a node name to its layer, -1 for the input)."""

    conv: Any
    dt_us: float | None
    dt: float | None
    reset: str
    legacy: bool
    missing_reset: frozenset
    nodes: dict
    pred: dict
    succ: dict
    lifted: bool = False
    recurrent: dict = field(default_factory=dict)   # population node -> its recurrent weighted Node
    ratios: dict = field(default_factory=dict)      # population node -> bias ratio (charge per step)
    input_shape: tuple = ()
    layers: list = field(default_factory=list)
    index: dict = field(default_factory=dict)
    shapes: list = field(default_factory=list)
    metas: dict = field(default_factory=dict)

    def need_dt(self, node: Node, why: str) -> float:
        if self.dt is None:
            raise ValueError(f"{node.where()}: {why} needs the step length; pass dt_us= "
                             f"(convention {self.conv.name!r})")
        return self.dt

    def nir_shape(self, shape: tuple) -> tuple:
        return shape[:1] + shape[2:] if self.lifted and len(shape) == 3 else shape


# ----------------------------------------------------------------------------- graph structure


def collect(graph, use_metadata: bool):
    if type(graph).__name__ != "NIRGraph":
        raise ValueError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes = {}
    for name, node in graph.nodes.items():
        name = str(name)
        kind = type(node).__name__
        if kind == "NIRGraph":
            raise ValueError(f"node {name!r} (NIRGraph): not supported by eventsim: {UNSUPPORTED['NIRGraph']}")
        data = node.to_dict()
        meta = data.pop("metadata", None) or {}
        data.pop("type", None)
        es = {}
        if use_metadata and NODE_KEY in meta:
            es = decode_json(meta[NODE_KEY], f"node {name!r}")
        nodes[name] = Node(name, kind, data, es)
    edges = []
    for i, edge in enumerate(graph.edges):
        try:
            a, b = (e.decode() if isinstance(e, bytes) else str(e) for e in edge)
        except (TypeError, ValueError):
            raise ValueError(f"edge {i}: expected a (source, target) pair of node names, got {edge!r}") from None
        edges.append((a, b))
    gmeta = {}
    meta = getattr(graph, "metadata", None) or {}
    if use_metadata and isinstance(meta, dict) and GRAPH_KEY in meta:
        gmeta = decode_json(meta[GRAPH_KEY], "graph")
    return nodes, edges, gmeta


def adjacency(nodes: dict, edges: list):
    pred = {n: [] for n in nodes}
    succ = {n: [] for n in nodes}
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ValueError(f"edge ({a!r}, {b!r}): no node named {end!r}; nodes are {sorted(nodes)}")
        if b in succ[a]:
            raise ValueError(f"edge ({a!r}, {b!r}) appears twice")
        succ[a].append(b)
        pred[b].append(a)
    return pred, succ


def ends(ctx: Ctx) -> tuple[str, str | None]:
    nodes = ctx.nodes
    ins = [n for n, node in nodes.items() if node.type == "Input"]
    outs = [n for n, node in nodes.items() if node.type == "Output"]
    if len(ins) > 1 or len(outs) > 1:
        raise ValueError(f"graph has {len(ins)} Input and {len(outs)} Output nodes; eventsim networks "
                         "have exactly one input and one output")
    if not ins:
        roots = [n for n in nodes if not ctx.pred[n]]
        if len(roots) != 1:
            raise ValueError(f"graph has no Input node and {len(roots)} root nodes {roots}; add an Input node")
        ctx.nodes["input"] = Node("input", "Input", {"shape": None}, {})
        ctx.pred["input"], ctx.succ["input"] = [], [roots[0]]
        ctx.pred[roots[0]].insert(0, "input")
        ins = ["input"]
    for n in ins:
        if ctx.pred[n]:
            raise ValueError(f"node {n!r} (Input) has incoming edges from {ctx.pred[n]}")
    if outs and ctx.succ[outs[0]]:
        raise ValueError(f"node {outs[0]!r} (Output) has outgoing edges to {ctx.succ[outs[0]]}")
    return ins[0], (outs[0] if outs else None)


def resolve_input_shape(ctx: Ctx, node: Node, override) -> tuple:
    raw = override if override is not None else node.f.get("shape")
    if raw is None:
        raise ValueError(f"{node.where('shape')}: the input shape is not recorded; pass input_shape=")
    try:
        values = as_numbers(raw, node.where("shape")).reshape(-1)
    except ValueError:
        raise ValueError(f"{node.where('shape')}: expected a tuple of ints, got {raw!r}") from None
    if np.any(values != np.round(values)):
        raise ValueError(f"{node.where('shape')}: expected a tuple of ints, got {raw!r}")
    shape = tuple(int(s) for s in values)
    if not shape or min(shape) < 1:
        raise ValueError(f"{node.where('shape')}: expected positive sizes, got {shape}")
    if any(n.type == "Conv1d" for n in ctx.nodes.values()):
        if len(shape) != 2:
            raise ValueError(f"{node.where('shape')}: a graph with Conv1d needs a (channels, length) "
                             f"input, got {shape}")
        ctx.lifted = True
        shape = (shape[0], 1, shape[1])
    ctx.input_shape = shape
    return shape


def recurrent_edges(ctx: Ctx) -> None:
    """Take the cycles ``population → w → population`` (``w`` an Affine or Linear with no other
    edge, as snnTorch's RLeaky/RSynaptic export) out of the graph into ``ctx.recurrent``; the
    importer adds them back as a :class:`~eventsim.neurons.Recurrent` after the population."""
    for name in list(ctx.nodes):
        node = ctx.nodes[name]
        if node.type not in ("Affine", "Linear") or len(ctx.pred[name]) != 1 or ctx.pred[name] != ctx.succ[name]:
            continue
        (pop,) = ctx.pred[name]
        if ctx.nodes[pop].type not in RECURRENT_NEURONS:
            raise ValueError(f"{node.where()}: a recurrent cycle through a {ctx.nodes[pop].type} node "
                             f"{pop!r}; eventsim's Recurrent feeds back into IF, LIF or CubaLIF populations")
        if pop in ctx.recurrent:
            raise ValueError(f"node {pop!r}: two recurrent projections onto one population")
        ctx.recurrent[pop] = node
        ctx.succ[pop].remove(name)
        ctx.pred[pop].remove(name)
        del ctx.pred[name], ctx.succ[name], ctx.nodes[name]


def topological(ctx: Ctx) -> list[str]:
    indeg = {n: len(p) for n, p in ctx.pred.items()}
    ready = [n for n in ctx.nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s in ctx.succ[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(ctx.nodes):
        stuck = [n for n in ctx.nodes if indeg[n] > 0]
        back = next((p, n) for n in stuck for p in ctx.pred[n] if p in stuck)
        raise ValueError(f"graph has a cycle (e.g. edge {back[0]!r} → {back[1]!r}); eventsim networks "
                         "are feed-forward except for a population's own recurrent projection (population → Affine → "
                         "the same population)")
    return order


def contract(ctx: Ctx, name: str) -> None:
    """Remove a single-input node, connecting its input to each of its outputs."""
    (p,) = ctx.pred[name]
    i = ctx.succ[p].index(name)
    ctx.succ[p][i:i + 1] = [s for s in ctx.succ[name] if s not in ctx.succ[p]]
    for s in ctx.succ[name]:
        if p in ctx.pred[s]:
            raise ValueError(f"node {name!r} ({ctx.nodes[name].type}) and a parallel edge both connect "
                             f"{p!r} to {s!r}; eventsim cannot fold it")
        ctx.pred[s][ctx.pred[s].index(name)] = p
    del ctx.pred[name], ctx.succ[name], ctx.nodes[name]


# ----------------------------------------------------------------------------- folding


def fold(ctx: Ctx, order: list[str]) -> None:
    for name in order:
        node = ctx.nodes.get(name)
        if node is None or node.type not in ("Scale", "Delay"):
            continue
        preds, succs = ctx.pred[name], ctx.succ[name]
        if len(preds) != 1:
            raise ValueError(f"{node.where()}: has {len(preds)} inputs; eventsim folds a {node.type} "
                             "only into a single neighbouring layer")
        p = ctx.nodes[preds[0]]
        alone = ctx.succ[p.name] == [name]
        values = array_field(node, "delay" if node.type == "Delay" else "scale")
        if node.type == "Delay":
            if p.type not in WEIGHTED or not alone or p.delay is not None:
                raise ValueError(f"{node.where()}: a Delay must directly follow a weighted node "
                                 "(Affine, Linear, Conv) that feeds nothing else; eventsim has "
                                 "per-layer synaptic delays only")
            p.delay = values
        elif p.type in WEIGHTED and alone and _scale_rows(p, values):
            pass
        elif p.type in NEURONS and alone and p.amplitude is None and (
                values.size == 1 or np.all(values == values.flat[0])
                or (p.es.get("fields") or {}).get("spike_amplitude") == "threshold"):
            p.amplitude = values
        elif len(succs) == 1 and ctx.nodes[succs[0]].type in WEIGHTED and ctx.pred[succs[0]] == [name] \
                and _scale_columns(ctx.nodes[succs[0]], values):
            pass
        elif p.type in NEURONS and alone and p.amplitude is None:
            p.amplitude = values      # must equal the threshold per channel (checked when mapped)
        else:
            raise ValueError(f"{node.where()}: cannot fold this Scale into the {p.type} before it or the "
                             "layer after it (IR addition needed: a Scale layer, or per-channel spike "
                             "amplitudes)")
        contract(ctx, name)


def array_field(node: Node, fld: str, ndim: int | None = None) -> np.ndarray:
    if fld not in node.f or node.f[fld] is None:
        raise ValueError(f"{node.where(fld)}: missing")
    arr = as_numbers(node.f[fld], node.where(fld))
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{node.where(fld)}: expected a {ndim}-D array, got shape {arr.shape}")
    return arr


def _scale_rows(node: Node, s: np.ndarray) -> bool:
    """Fold ``y·s`` into a weighted node's output rows; False if ``s`` varies within a channel."""
    w = array_field(node, "weight")
    n_out = w.shape[0]
    flat = s.reshape(-1) if s.size in (1, n_out) else s.reshape(n_out, -1) if s.size % n_out == 0 else None
    if flat is None or (flat.ndim == 2 and np.any(flat != flat[:, :1])):
        return False
    rows = flat if flat.ndim == 1 else flat[:, 0]
    node.f["weight"] = w * rows.reshape((-1,) + (1,) * (w.ndim - 1))
    if node.f.get("bias") is not None:
        node.f["bias"] = array_field(node, "bias") * rows
    return True


def _scale_columns(node: Node, s: np.ndarray) -> bool:
    """Fold ``x·s`` on a weighted node's input into its weight; False if not per input channel."""
    w = array_field(node, "weight")
    if node.type in ("Affine", "Linear"):
        if s.size not in (1, w.shape[1]):
            return False
        node.f["weight"] = w * s.reshape(1, -1)
        return True
    groups = int(np.asarray(node.f.get("groups", 1)))
    c_in = w.shape[1] * groups
    if s.size == 1:
        per = np.full(c_in, float(s.flat[0]))
    elif s.size % c_in == 0 and np.all(s.reshape(c_in, -1) == s.reshape(c_in, -1)[:, :1]):
        per = s.reshape(c_in, -1)[:, 0]
    else:
        return False
    per_group = per.reshape(groups, -1)                       # (G, Cin/G)
    out_group = np.repeat(np.arange(groups), w.shape[0] // groups)
    cols = per_group[out_group]                                # (Cout, Cin/G)
    node.f["weight"] = w * cols.reshape(cols.shape + (1,) * (w.ndim - 2))
    return True
