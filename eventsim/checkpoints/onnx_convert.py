"""ONNX → SNN conversion (format ``"onnx"``): a ReLU/clip CNN exported with ``torch.onnx.export``
becomes an IF network, as the ``"ann"`` format converts an ``nn.Sequential``.

This is the recommended way in for your own PyTorch CNN (``docs/onnx.md``)::

    torch.onnx.export(model.eval(), (example_input,), "model.onnx")
    net = es.load("model.onnx", calibration=train_images)

Operators
---------
``Conv`` (any groups, symmetric padding), ``BatchNormalization`` (folded into the Conv/Gemm
before it), ``Relu``, ``Clip(min=0, max=c)`` (ReLU6, Hardtanh(0, c)), ``Add`` of two tensors
(residual merge: both paths may hold layers, see :mod:`eventsim.graph`), ``Add`` of a constant
right after ``MatMul`` (its bias), ``AveragePool`` (count_include_pad for padding),
``GlobalAveragePool`` and ``ReduceMean`` over H, W, ``Flatten``/``Reshape``/``Squeeze`` to
``(N, features)``, ``Gemm``/``MatMul``, ``Identity``/``Dropout``, and the constant expressions
the exporter writes (``Constant``, ``Shape``, ``Gather``, ``Concat``, ``Unsqueeze``, ...).
``MaxPool`` is refused unless ``max_pool="spike"`` (see below). Every other operator is refused
with an error naming the node and the operator.

Conversion
----------
Each activation becomes an IF population with threshold θ: the clip value, or for a plain ReLU the
``percentile``-th percentile of its positive outputs on ``calibration`` inputs (a NumPy forward
pass of the ANN, :func:`onnx_forward`). Neurons start at ``v₀ = v_init·θ`` (θ/2), fire when
``v ≥ θ``, reset by subtraction and emit spikes of amplitude θ, so every weight stays as trained;
the IF rate times θ approximates ``clip(x, 0, θ)``. An ``Add`` of two paths adds their currents
(or an identity shortcut's spikes of amplitude θ) before the population after it. The model's
output must come from a ``Gemm``/``MatMul``/``Conv`` without activation: it becomes the readout
(``readout="mean"``: the running mean, directly comparable to the ANN's logits).

Max pooling: with ``max_pool="spike"`` a ``MaxPool`` becomes :class:`~eventsim.network.MaxPool2d`,
which passes a spike when any input of its window spikes in that step. Its output rate is the
rate of the union of the input spike trains: at least the largest input rate and at most their
sum, so it over-estimates the ANN's max (it equals it when the window's inputs spike at the same
steps, or when only one input spikes). This rule is tested; accuracy may drop, which is why it
must be asked for.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import network as nw
from ..formats import ModelFormat, register_format
from ..graph import plan
from .convert import check_calibration
from .onnx_graph import INPUT, Act, OnnxGraph, read_onnx
from .torchfile import CheckpointError

__all__ = ["load_onnx", "convert_onnx", "onnx_forward", "onnx_layers"]

ONNX_MAGIC_FIELDS = (b"\x08", )       # ir_version (field 1, varint) opens every exported model


def onnx_layers(graph: OnnxGraph) -> list[nw.Layer]:
    """The layer list (with :class:`~eventsim.checkpoints.onnx_graph.Act` placeholders) of the
    graph, linearised with ``Branch``/``Add`` by :func:`eventsim.graph.plan`."""
    ops = graph.ops
    preds = {INPUT: []}
    preds.update({name: op.inputs for name, op in ops.items()})
    preds["<output>"] = [graph.output]
    order = {name: i for i, name in enumerate(preds)}
    steps = plan(preds, INPUT, "<output>", rank=order.__getitem__,
                 describe=lambda n: f"{graph.source}: node {n!r} ({ops[n].op_type})" if n in ops else repr(n))
    index = {INPUT: -1}
    layers: list[nw.Layer] = []
    names: set[str] = set()

    def emit(layer: nw.Layer, name: str) -> None:
        while name in names:
            name += "_"
        names.add(name)
        layers.append(type(layer)(**{**_init_fields(layer), "name": name}))

    for step in steps:
        if step.node == "<output>":
            continue
        op = ops[step.node]
        if step.kind == "branch":
            emit(nw.Branch(source=index[step.source]), f"{op.name}.branch")
        elif step.kind == "add":
            emit(nw.Add(source=index[step.source]), f"{op.name}.add")
        else:
            for k, layer in enumerate(op.layers):
                emit(layer, layer.name or (op.name if k == 0 else f"{op.name}.{k}"))
            index[op.name] = len(layers) - 1
    last = ops[graph.output].layers
    if not last or not isinstance(last[-1], (nw.Linear, nw.Conv2d)):
        raise CheckpointError(f"{graph.source}: the output comes from node {graph.output!r} "
                              f"({ops[graph.output].op_type}); it must be a Gemm/MatMul/Conv without "
                              "activation, which becomes the readout")
    return layers


def _init_fields(layer: nw.Layer) -> dict:
    return {f: getattr(layer, f) for f, d in layer.__dataclass_fields__.items() if d.init}


# ----------------------------------------------------------------------------- NumPy forward


def _conv(x: np.ndarray, layer: nw.Conv2d) -> np.ndarray:
    (ph, pw), (sh, sw), g = layer.padding, layer.stride, layer.groups
    kh, kw = layer.weight.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]     # N, C, OH, OW, kh, kw
    cin, cout = layer.weight.shape[1], layer.weight.shape[0] // g
    outs = [np.tensordot(win[:, j * cin:(j + 1) * cin], layer.weight[j * cout:(j + 1) * cout],
                         axes=([1, 4, 5], [1, 2, 3])) for j in range(g)]
    out = np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2)
    return out if layer.bias is None else out + layer.bias[:, None, None]


def _pool(x: np.ndarray, layer, reduce) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    fill = -np.inf if reduce is np.max else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    return reduce(sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw], axis=(4, 5))


def onnx_forward(layers: list[nw.Layer], x: np.ndarray, thresholds: dict[int, float] | None = None) -> list[np.ndarray]:
    """Float64 NumPy forward pass of the ANN behind ``layers`` on a batch ``x`` (N, *input_shape).

    An activation computes ``max(x, 0)``, clipped at its clip value
    (:class:`~eventsim.checkpoints.onnx_graph.Act`), at its threshold (an IF population: the
    clipped ANN that the converted SNN approaches), or at ``thresholds[i]`` when given. Returns every
    layer's output (a Readout passes its input: the ANN's logits).
    """
    outs: list[np.ndarray] = []
    h = np.asarray(x, dtype=np.float64)
    for i, layer in enumerate(layers):
        if isinstance(layer, nw.Branch):
            h = x if layer.source == -1 else outs[layer.source]
        elif isinstance(layer, nw.Add):
            h = h + (x if layer.source == -1 else outs[layer.source])
        elif isinstance(layer, nw.Conv2d):
            h = _conv(h, layer)
        elif isinstance(layer, nw.Linear):
            h = h @ layer.weight.T + (0.0 if layer.bias is None else layer.bias)
        elif isinstance(layer, (Act, nw.IF)):
            clip = layer.clip if isinstance(layer, Act) else float(np.max(layer.threshold))
            clip = (thresholds or {}).get(i, clip)
            h = np.maximum(h, 0.0) if clip is None else np.clip(h, 0.0, clip)
        elif isinstance(layer, nw.AvgPool2d):
            h = _pool(h, layer, np.mean)
        elif isinstance(layer, nw.MaxPool2d):
            h = _pool(h, layer, np.max)
        elif isinstance(layer, nw.Flatten):
            h = h.reshape(h.shape[0], -1)
        elif not isinstance(layer, nw.Readout):
            raise ValueError(f"{layer.name}: {type(layer).__name__} has no ANN forward")
        outs.append(h)
    return outs


# ----------------------------------------------------------------------------- conversion


def convert_onnx(graph: OnnxGraph, *, calibration: np.ndarray | None = None, percentile: float = 99.9,
                 v_init: float = 0.5, readout: str = "sum") -> nw.Network:
    """Turn a read ONNX graph into an IF network (see the module docstring for the rules)."""
    layers = onnx_layers(graph)
    source, shape = graph.source, graph.input_shape
    acts = [i for i, layer in enumerate(layers) if isinstance(layer, Act)]
    thresholds = {i: layers[i].clip for i in acts if layers[i].clip is not None}
    how = {i: "clip" for i in thresholds}
    plain = [i for i in acts if i not in thresholds]
    if plain:
        calib = check_calibration(calibration, shape, percentile,
                                  f"{source}: ReLU nodes ({', '.join(layers[i].name for i in plain[:4])}"
                                  f"{', …' if len(plain) > 4 else ''})")
        outs = onnx_forward(layers, calib)
        for i in plain:
            positive = outs[i][outs[i] > 0]
            if positive.size == 0:
                raise CheckpointError(f"{source}: ReLU node {layers[i].name!r} is never active on the "
                                      "calibration data; cannot set its threshold")
            thresholds[i] = float(np.percentile(positive, percentile))
            how[i] = f"p{percentile:g}"
    for i in acts:
        theta = thresholds[i]
        layers[i] = nw.IF(threshold=theta, compare=">=", reset="subtract", v_init=v_init * theta,
                          spike_amplitude="threshold", name=layers[i].name)
    layers.append(nw.Readout(mode=readout, name="readout"))
    meta = {"format": "onnx", "source": source, "input_encoding": "analog", "v_init_fraction": v_init,
            "thresholds": [thresholds[i] for i in acts], "threshold_source": [how[i] for i in acts]}
    try:
        return nw.Network(shape, layers, metadata=meta)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def load_onnx(path: str | os.PathLike, *, calibration: np.ndarray | None = None, percentile: float = 99.9,
              v_init: float = 0.5, readout: str = "sum", max_pool: str = "refuse",
              input_shape: Any = None) -> nw.Network:
    """Read an ONNX model and convert it to an IF network.

    Parameters
    ----------
    path : a self-contained ``.onnx`` file (``torch.onnx.export``).
    calibration : array (N, *input_shape), inputs for the thresholds of plain ReLUs.
    percentile : float in (0, 100], default 99.9: θ of a ReLU is this percentile of its
        positive outputs on ``calibration``.
    v_init : initial membrane as a fraction of θ (default ½).
    readout : ``"sum"`` or ``"mean"`` (the running mean approximates the ANN's logits).
    max_pool : ``"refuse"`` (default: a MaxPool node is an error naming it) or ``"spike"``
        (spike max-pooling; see the module docstring).
    input_shape : ``(C, H, W)`` when the file's input shape is not fixed.

    Raises
    ------
    CheckpointError naming the node and operator for anything unsupported, and for truncated or
    malformed files; ImportError naming ``eventsim[onnx]`` when ``onnx`` is not installed.
    """
    graph = read_onnx(path, input_shape=input_shape, max_pool=max_pool)
    return convert_onnx(graph, calibration=calibration, percentile=percentile, v_init=v_init, readout=readout)


def _detect(path: Path, head: bytes) -> bool:
    return path.suffix.lower() == ".onnx" and head[:1] in ONNX_MAGIC_FIELDS


register_format(ModelFormat("onnx", load_onnx, None, _detect, (".onnx",),
                            "ONNX model of a ReLU/clip CNN (torch.onnx.export), converted to IF neurons; "
                            "needs eventsim[onnx]"))
