"""DAG linearisation: a graph of nodes becomes eventsim's topological layer list.

An importer (ONNX, NIR) sees a directed acyclic graph whose nodes each read one or more
producers (a node with several inputs sums them, as NIR and an ONNX ``Add`` do).
:class:`~eventsim.network.Network` is that DAG written as a list in topological order: each
layer reads the layer before it, :class:`~eventsim.network.Branch` starts a path again from an
earlier layer's output, and :class:`~eventsim.network.Add` adds an earlier layer's output to the
current flowing.

:func:`plan` orders the graph and says, node by node, which ``Branch`` and ``Add`` steps come
before it; the importer then emits the layers of each node and records the index of each node's
output. The order follows chains as long as it can (after a node, a ready node that reads it comes
next), so a ResNet block costs one ``Branch`` per projection shortcut and none for an identity
shortcut; among several candidates the caller's ``rank`` decides (e.g. the order of the nodes
in the file), so an exported network reads back in its own layer order.

>>> steps = plan({"in": [], "a": ["in"], "b": ["in"], "m": ["a", "b"], "out": ["m"]}, "in", "out")
>>> [(s.kind, s.source, s.node) for s in steps]
[('node', 'in', 'a'), ('branch', 'in', 'b'), ('node', 'in', 'b'), ('add', 'a', 'm'), ('node', 'b', 'm'), ('node', 'm', 'out')]
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

__all__ = ["Step", "plan", "reaching"]


class Step(NamedTuple):
    """One step of the plan.

    ``kind`` is ``"branch"`` (emit ``Branch(source=<index of source's output>)``), ``"add"``
    (emit ``Add(source=<index of source's output>)``) or ``"node"`` (emit the layers of ``node``;
    ``source`` is then the producer whose output is flowing into it). ``node`` is the node these
    steps prepare.
    """

    kind: str
    source: str
    node: str


def reaching(preds: Mapping[str, Sequence[str]], sink: str) -> set[str]:
    """Names of the nodes from which ``sink`` can be reached (``sink`` included)."""
    seen, stack = {sink}, [sink]
    while stack:
        for p in preds[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def plan(preds: Mapping[str, Sequence[str]], source: str, sink: str,
         rank: Callable[[str], object] | None = None, describe: Callable[[str], str] = repr) -> list[Step]:
    """Order a DAG as eventsim's layer list.

    Parameters
    ----------
    preds : mapping of every node name to the names of the nodes it reads, in order (a name
        twice: that output is added twice). ``source`` reads nothing.
    source : the graph input (its output is layer index ``-1``).
    sink : the graph output; every node must lead to it.
    rank : sort key breaking ties between ready nodes (default: the order of ``preds``).
    describe : how errors name a node (default ``repr``).

    Returns
    -------
    list of :class:`Step`; ``sink``'s ``"node"`` step is the last one.

    Raises
    ------
    ValueError naming the node for an unknown producer, a cycle, a node without input, or a node
    that does not lead to ``sink``.
    """
    names = list(preds)
    if source not in preds or sink not in preds:
        raise ValueError(f"graph has no node {source if source not in preds else sink!r}")
    position = {n: i for i, n in enumerate(names)}
    key = rank or position.__getitem__
    succ: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for p in preds[n]:
            if p not in preds:
                raise ValueError(f"{describe(n)} reads {p!r}, which is no node of the graph")
            succ[p].append(n)
    if preds[source]:
        raise ValueError(f"{describe(source)} is the input but reads {list(preds[source])}")
    for n in names:
        if n != source and not preds[n]:
            raise ValueError(f"{describe(n)} has no input; every node must be reached from the input")
    alive = reaching(preds, sink)
    dead = [n for n in names if n not in alive]
    if dead:
        raise ValueError(f"{describe(dead[0])} does not lead to the Output ({describe(sink)}); "
                         "an eventsim network has one output")
    waiting = {n: len(set(preds[n])) for n in names}
    ready: list[str] = []
    done: set[str] = set()

    def finish(n: str) -> None:
        done.add(n)
        for s in dict.fromkeys(succ[n]):
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)

    finish(source)
    current, steps = source, []
    while ready:
        follow = [n for n in ready if current in preds[n]]
        n = min(follow or ready, key=key)
        ready.remove(n)
        inputs = list(preds[n])
        if current in inputs:
            inputs.remove(current)
        else:
            first = inputs.pop(0)
            steps.append(Step("branch", first, n))
            current = first
        steps += [Step("add", p, n) for p in inputs]
        steps.append(Step("node", current, n))
        current = n
        finish(n)
    if len(done) != len(names):
        stuck = [n for n in names if n not in done]
        back = next((p, n) for n in stuck for p in preds[n] if p in stuck)
        raise ValueError(f"graph has a cycle (e.g. edge {back[0]!r} → {back[1]!r}); eventsim networks "
                         "are feed-forward (recurrent connections have no IR form)")
    return steps        # every node leads to the sink, so the sink came last
