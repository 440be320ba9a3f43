"""DAG linearisation (eventsim.graph.plan): on random DAGs, the layer list it plans computes what the
DAG computes (a recursive plain-Python evaluation of the graph), passes the Network's checks, and
an unbranched chain with skips needs no Branch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim as es
from eventsim.graph import plan


@st.composite
def dags(draw):
    """Node 0 is the input, nodes 1..n each read 1-3 earlier nodes; every node leads to node n."""
    n = draw(st.integers(1, 9))
    preds = {"n0": []}
    for i in range(1, n + 1):
        k = draw(st.integers(1, min(3, i)))
        preds[f"n{i}"] = [f"n{j}" for j in draw(st.lists(st.integers(0, i - 1), min_size=k, max_size=k))]
    for i in range(n):          # a node that nobody reads feeds the sink
        if not any(f"n{i}" in p for p in preds.values()):
            preds[f"n{n}"].append(f"n{i}")
    names = list(preds)
    order = draw(st.permutations(names[1:]))       # the file may list nodes in any order
    return {name: preds[name] for name in ["n0"] + list(order)}, f"n{n}"


def _weights(name: str, size: int) -> np.ndarray:
    return np.random.default_rng(int(name[1:])).integers(-3, 4, (size, size)) / 2.0


def _dag_value(preds, name, x, memo):
    """Each node sums its inputs and applies its own matrix (the input node is x)."""
    if name not in memo:
        memo[name] = x if not preds[name] else _weights(name, x.size) @ sum(
            _dag_value(preds, p, x, memo) for p in preds[name])
    return memo[name]


def _list_value(layers, x):
    outs, h = [], x
    for layer in layers:
        if isinstance(layer, es.Branch):
            h = x if layer.source == -1 else outs[layer.source]
        elif isinstance(layer, es.Add):
            h = h + (x if layer.source == -1 else outs[layer.source])
        else:
            h = layer.weight @ h
        outs.append(h)
    return h


def _layers(preds, sink):
    index, layers = {"n0": -1}, []
    for step in plan(preds, "n0", sink):
        if step.kind == "branch":
            layers.append(es.Branch(source=index[step.source]))
        elif step.kind == "add":
            layers.append(es.Add(source=index[step.source]))
        else:
            layers.append(es.Linear(_weights(step.node, 3)))
            index[step.node] = len(layers) - 1
    return layers


@settings(max_examples=150, deadline=None)
@given(dags())
def test_planned_list_computes_the_dag(graph):
    preds, sink = graph
    layers = _layers(preds, sink)
    es.Network((3,), layers)                                   # Branch/Add rules hold
    x = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(_list_value(layers, x), _dag_value(preds, sink, x, {}))
    assert sum(isinstance(l, es.Linear) for l in layers) == len(preds) - 1


def test_chain_with_skips_needs_no_branch_and_projection_needs_one():
    chain = {"in": [], "a": ["in"], "b": ["a"], "c": ["b", "a"], "d": ["c", "in"]}
    assert [s.kind for s in plan(chain, "in", "d")].count("branch") == 0
    block = {"in": [], "c1": ["in"], "c2": ["c1"], "s": ["in"], "m": ["c2", "s"]}
    steps = plan(block, "in", "m")
    assert [(s.kind, s.source, s.node) for s in steps] == [
        ("node", "in", "c1"), ("node", "c1", "c2"), ("branch", "in", "s"), ("node", "in", "s"),
        ("add", "c2", "m"), ("node", "s", "m")]


@pytest.mark.parametrize("preds,match", [
    ({"in": [], "a": ["in", "b"], "b": ["a"], "out": ["b"]}, r"cycle"),
    ({"in": [], "a": ["in"], "dead": ["a"], "out": ["a"]}, r"'dead' does not lead to the Output \('out'\)"),
    ({"in": [], "a": ["ghost"], "out": ["a"]}, r"'a' reads 'ghost', which is no node"),
    ({"in": [], "a": [], "out": ["a", "in"]}, r"'a' has no input"),
], ids=["cycle", "dead-end", "unknown", "orphan"])
def test_errors_name_the_node(preds, match):
    with pytest.raises(ValueError, match=match):
        plan(preds, "in", "out")
