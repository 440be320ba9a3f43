"""ONNX model → a DAG of eventsim layers (see :mod:`eventsim.checkpoints.onnx_convert`).

The model is read with the ``onnx`` package (protobuf: no code runs; see
:mod:`~eventsim.checkpoints.onnx_file`). Each ONNX node on the data path becomes one :class:`Op`:
the layers it contributes and the ops it reads. Constant sub-expressions (``Constant``, ``Shape`` of a tensor of known shape,
``Gather``, ``Concat``, ``Unsqueeze``, … — what ``torch.onnx.export`` writes for
``x.view(x.size(0), -1)``) are evaluated with NumPy while reading; data-path ``Identity``,
``Dropout`` and reshapes that keep the shape are dropped, ``BatchNormalization`` is folded into the
``Conv``/``Gemm`` before it, and a constant ``Add`` after a ``MatMul`` becomes its bias.
Activations (``Relu``, ``Clip`` with min 0) become :class:`Act` markers that the converter turns
into IF populations once their thresholds are known.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import network as nw
from .common import fold_batchnorm
from .onnx_file import CONST_OPS, attrs, checked, load_model, require_onnx, reshape_target, squeeze, tensor, unsqueeze
from .torchfile import CheckpointError

__all__ = ["Act", "Op", "OnnxGraph", "read_onnx", "require_onnx", "SUPPORTED_OPS"]

INPUT = "<input>"
MAX_POOL_RULES = ("refuse", "spike")


@dataclass(frozen=True, eq=False)
class Act(nw.Layer):
    """Placeholder for an activation (ReLU when ``clip`` is None, else ``clip(x, 0, clip)``)."""

    clip: float | None = None
    name: str | None = None
    kind = "Act"

    def output_shape(self, input_shape):
        return input_shape


@dataclass
class Op:
    """One data-path ONNX node: its layers (possibly none, for a sum) and the ops it reads
    (several: their outputs are summed before the layers)."""

    name: str
    op_type: str
    inputs: list[str]
    layers: list = field(default_factory=list)


@dataclass
class OnnxGraph:
    """The data-path ops in file order, the input shape (without the batch axis) and the op whose
    output is the model's output."""

    ops: dict[str, Op]
    input_shape: tuple[int, ...]
    output: str
    source: str


# ----------------------------------------------------------------------------- reading


class _Reader:
    def __init__(self, model, source: str, input_shape, max_pool: str):
        self.g, self.source, self.max_pool = model.graph, source, max_pool
        self.const: dict[str, np.ndarray] = {}
        self.shape: dict[str, tuple[int, ...]] = {}     # per-sample shape of each data value
        self.producer: dict[str, str] = {}              # data value -> op name (INPUT for the input)
        self.ops: dict[str, Op] = {}
        self.uses: dict[str, int] = {}
        for node in self.g.node:
            for v in node.input:
                self.uses[v] = self.uses.get(v, 0) + 1
        for v in self.g.output:
            self.uses[v.name] = self.uses.get(v.name, 0) + 1
        for init in self.g.initializer:
            self.const[init.name] = tensor(init, source)
        self.input_shape = self._input(input_shape)

    def _input(self, override) -> tuple[int, ...]:
        data = [v for v in self.g.input if v.name not in self.const]
        if len(data) != 1:
            raise CheckpointError(f"{self.source}: the model has {len(data)} data inputs "
                                  f"({[v.name for v in data]}); eventsim networks have one")
        v = data[0]
        dims = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        if override is not None:
            try:
                shape = tuple(int(s) for s in override)
            except (TypeError, ValueError):
                raise CheckpointError(f"input_shape={override!r}: expected a tuple of ints") from None
        elif len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            raise CheckpointError(f"{self.source}: input {v.name!r} has shape {dims} (None: not fixed); "
                                  "pass input_shape=(C, H, W)")
        else:
            shape = tuple(dims[1:])
        if not shape or min(shape) < 1 or len(shape) not in (1, 3):
            raise CheckpointError(f"{self.source}: input shape {shape}; expected (C, H, W) or (features,) "
                                  "without the batch axis")
        self.shape[v.name] = checked(shape, f"{self.source}: input {v.name!r}")
        self.producer[v.name] = INPUT
        return shape

    # ------------------------------------------------------------------ helpers
    def where(self, node) -> str:
        return f"{self.source}: node {node.name!r} ({node.op_type})"

    def fail(self, node, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where(node)}: {what}")

    def c(self, node, i: int, what: str, required: bool = True) -> np.ndarray | None:
        """Constant input ``i`` of ``node`` (None when absent and optional)."""
        if i >= len(node.input) or not node.input[i]:
            if required:
                raise self.fail(node, f"missing input {i} ({what})")
            return None
        name = node.input[i]
        if name not in self.const:
            raise self.fail(node, f"its {what} ({name!r}) is computed from the data; eventsim needs a constant")
        return self.const[name]

    def data(self, node, i: int = 0) -> str:
        name = node.input[i] if i < len(node.input) else ""
        if name not in self.producer:
            raise self.fail(node, f"input {name!r} is neither the model input nor computed from it")
        return name

    def add_op(self, node, inputs: list[str], layers: list, out_shape: tuple) -> None:
        name = node.name or f"{node.op_type}_{len(self.ops)}"
        while name in self.ops or name == INPUT:
            name += "_"
        self.ops[name] = Op(name, node.op_type, [self.producer[v] for v in inputs], layers)
        self.alias(node.output[0], name, out_shape)

    def alias(self, value: str, op: str, shape: tuple) -> None:
        self.producer[value] = op
        self.shape[value] = checked(tuple(int(s) for s in shape), f"{self.source}: value {value!r}")

    def single_use_op(self, value: str) -> Op | None:
        """The op producing ``value`` if ``value`` is read once and that op ends in a weighted layer."""
        op = self.ops.get(self.producer.get(value))
        if op is None or self.uses.get(value, 0) != 1 or not op.layers:
            return None
        return op if isinstance(op.layers[-1], (nw.Conv2d, nw.Linear)) else None

    # ------------------------------------------------------------------ driver
    def run(self) -> OnnxGraph:
        for node in self.g.node:
            if node.op_type in CONST_OPS and all(v in self.const or (v in self.shape and node.op_type == "Shape")
                                                   or not v for v in node.input):
                self.const_node(node)
                continue
            handler = _HANDLERS.get(node.op_type) if not node.domain or node.domain == "ai.onnx" else None
            if handler is None:
                raise self.fail(node, f"operator {node.op_type!r}{' of domain ' + repr(node.domain) if node.domain else ''} "
                                      f"is not supported; eventsim converts {sorted(SUPPORTED_OPS)}")
            try:
                handler(self, node)
            except CheckpointError:
                raise
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise self.fail(node, f"malformed or unsupported attributes or inputs "
                                      f"({type(exc).__name__}: {exc})") from None
        outs = [v.name for v in self.g.output]
        if len(outs) != 1 or outs[0] not in self.producer or self.producer[outs[0]] == INPUT:
            raise CheckpointError(f"{self.source}: the model has outputs {outs}; eventsim needs exactly one, "
                                  "computed from the input")
        return OnnxGraph(self.ops, self.input_shape, self.producer[outs[0]], self.source)

    def const_node(self, node) -> None:
        a = attrs(node)
        op = node.op_type
        try:
            if op == "Constant":
                key = next(iter(a))
                value = np.asarray(a[key])
            elif op == "Shape":
                v = node.input[0]
                value = (np.asarray(self.const[v].shape) if v in self.const
                         else np.array((1,) + self.shape[v]))[a.get("start", 0):a.get("end")]
            else:
                ins = [self.const.get(v) for v in node.input]
                value = CONST_OPS[op](ins, a)
        except CheckpointError:
            raise
        except Exception as exc:
            raise self.fail(node, f"cannot evaluate this constant expression ({type(exc).__name__}: {exc})") from None
        self.const[node.output[0]] = np.asarray(value)


# ----------------------------------------------------------------------------- data-path handlers


def _pads(r: _Reader, node, a: dict) -> tuple[int, int]:
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise r.fail(node, f"auto_pad={a['auto_pad']!r}; eventsim needs explicit symmetric padding")
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(p) != 4 or p[0] != p[2] or p[1] != p[3]:
        raise r.fail(node, f"pads={p} is not symmetric (top=bottom, left=right); eventsim has no asymmetric padding")
    return (p[0], p[1])


def _spatial(r: _Reader, node, value: str) -> tuple[int, int, int]:
    shape = r.shape[value]
    if len(shape) != 3:
        raise r.fail(node, f"input of shape {shape}; expected (C, H, W)")
    return shape


def _conv(r: _Reader, node) -> None:
    a = attrs(node)
    x = r.data(node)
    w = r.c(node, 1, "weight").astype(np.float64)
    b = r.c(node, 2, "bias", required=False)
    if w.ndim != 4:
        raise r.fail(node, f"weight of shape {w.shape}; eventsim converts 2-D convolutions only")
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        raise r.fail(node, f"dilations={a['dilations']}; eventsim's Conv2d has no dilation")
    _spatial(r, node, x)
    layer = nw.Conv2d(w, None if b is None else b.astype(np.float64), stride=tuple(a.get("strides", [1, 1])),
                      padding=_pads(r, node, a), groups=int(a.get("group", 1)), name=node.name or None)
    r.add_op(node, [x], [layer], _out(r, node, layer, r.shape[x]))


def _out(r: _Reader, node, layer, shape) -> tuple:
    try:
        return tuple(layer.output_shape(shape))
    except ValueError as exc:
        raise r.fail(node, str(exc)) from None


def _gemm(r: _Reader, node) -> None:
    a = attrs(node)
    x = r.data(node)
    if a.get("transA", 0):
        raise r.fail(node, "transA=1 (the data transposed) has no eventsim form")
    w = r.c(node, 1, "weight").astype(np.float64)
    w = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))
    c = r.c(node, 2, "bias", required=False)
    bias = None
    if c is not None:
        bias = np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1) * float(a.get("beta", 1.0)), (w.shape[0],))
    _linear(r, node, x, w, bias)


def _matmul(r: _Reader, node) -> None:
    x = r.data(node)
    w = r.c(node, 1, "weight")
    if w.ndim != 2:
        raise r.fail(node, f"weight of shape {w.shape}; eventsim converts x @ W with a 2-D W")
    _linear(r, node, x, w.astype(np.float64).T, None)


def _linear(r: _Reader, node, x: str, w: np.ndarray, bias) -> None:
    shape = r.shape[x]
    if len(shape) != 1:
        raise r.fail(node, f"input of shape {shape} is not flat; flatten it before the linear layer")
    layer = nw.Linear(w, None if bias is None else np.array(bias), name=node.name or None)
    r.add_op(node, [x], [layer], _out(r, node, layer, shape))


def _batchnorm(r: _Reader, node) -> None:
    a = attrs(node)
    x = r.data(node)
    if a.get("training_mode", 0):
        raise r.fail(node, "training_mode=1; export the model in eval() mode")
    op = r.single_use_op(x)
    if op is None:
        raise r.fail(node, "a BatchNormalization is folded into the Conv/Gemm/MatMul right before it, and "
                           "this one follows another operator (or a layer whose output is also used elsewhere)")
    layer = op.layers[-1]
    c = layer.weight.shape[0]
    gamma, beta, mean, var = (np.asarray(r.c(node, i, what), dtype=np.float64).reshape(-1)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    if any(v.shape != (c,) for v in (gamma, beta, mean, var)):
        raise r.fail(node, f"parameters of shapes {[v.shape for v in (gamma, beta, mean, var)]}; expected ({c},)")
    w, b = fold_batchnorm(layer.weight, layer.bias, mean, var, gamma, beta, float(a.get("epsilon", 1e-5)))
    kw = {k: getattr(layer, k) for k in ("stride", "padding", "groups") if hasattr(layer, k)}
    op.layers[-1] = type(layer)(w, b, name=layer.name, **kw)
    r.alias(node.output[0], op.name, r.shape[x])


def _relu(r: _Reader, node) -> None:
    x = r.data(node)
    r.add_op(node, [x], [Act(None, name=node.name or None)], r.shape[x])


def _clip(r: _Reader, node) -> None:
    a = attrs(node)
    x = r.data(node)
    lo = r.c(node, 1, "min", required=False) if len(node.input) > 1 else a.get("min")
    hi = r.c(node, 2, "max", required=False) if len(node.input) > 2 else a.get("max")
    lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
    hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
    if lo != 0.0:
        raise r.fail(node, f"Clip(min={lo}, max={hi}); eventsim converts clips with min 0 (ReLU, ReLU6, "
                           "a trained clip) to IF neurons with threshold max")
    if hi is not None and not (hi > 0 and np.isfinite(hi)):
        raise r.fail(node, f"Clip max={hi}; needs a positive finite value")
    r.add_op(node, [x], [Act(hi, name=node.name or None)], r.shape[x])


def _add(r: _Reader, node) -> None:
    consts = [v in r.const for v in node.input[:2]]
    if any(consts):      # x + b: the bias of the MatMul/Gemm/Conv before it
        x = node.input[consts.index(False)]
        b = np.asarray(r.const[node.input[consts.index(True)]], dtype=np.float64)
        op = r.single_use_op(x) if x in r.producer else None
        c = None if op is None else op.layers[-1].weight.shape[0]
        per_channel = c is not None and (b.size == 1 or (
            b.size == c and (b.ndim <= 2 if isinstance(op.layers[-1], nw.Linear) else b.ndim >= 3 and b.shape[-3] == c)))
        if not per_channel:
            raise r.fail(node, "adds a constant that is not the bias of the linear layer right before it; "
                               "eventsim has no constant-offset layer")
        layer = op.layers[-1]
        bias = (0.0 if layer.bias is None else layer.bias) + np.broadcast_to(b.reshape(-1), (c,))
        kw = {k: getattr(layer, k) for k in ("stride", "padding", "groups") if hasattr(layer, k)}
        op.layers[-1] = type(layer)(layer.weight, bias, name=layer.name, **kw)
        r.alias(node.output[0], op.name, r.shape[x])
        return
    xa, xb = r.data(node, 0), r.data(node, 1)
    if r.shape[xa] != r.shape[xb]:
        raise r.fail(node, f"adds shapes {r.shape[xa]} and {r.shape[xb]}; eventsim adds equal shapes only "
                           "(no broadcasting)")
    r.add_op(node, [xa, xb], [], r.shape[xa])


def _avgpool(r: _Reader, node) -> None:
    a = attrs(node)
    x = r.data(node)
    pads = _pads(r, node, a)
    if any(pads) and not a.get("count_include_pad", 0):
        raise r.fail(node, "padding with count_include_pad=0; eventsim's AvgPool2d counts the padding "
                           "(PyTorch's default count_include_pad=True)")
    k = tuple(int(v) for v in a["kernel_shape"])
    layer = nw.AvgPool2d(k, stride=tuple(a.get("strides", k)), padding=pads, name=node.name or None)
    _pool(r, node, x, layer, a)


def _maxpool(r: _Reader, node) -> None:
    a = attrs(node)
    x = r.data(node)
    if r.max_pool != "spike":
        raise r.fail(node, "max pooling of spikes is not the max of rates, so eventsim does not convert it "
                           "silently: pass max_pool='spike' to use spike max-pooling (an output spikes when any "
                           "input in its window spikes; its rate is at least the largest input rate), or "
                           "replace MaxPool2d with AvgPool2d and retrain")
    if len(node.output) > 1 and r.uses.get(node.output[1]):
        raise r.fail(node, "the indices output of MaxPool is used; eventsim has no such output")
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        raise r.fail(node, f"dilations={a['dilations']}; eventsim's pools have no dilation")
    k = tuple(int(v) for v in a["kernel_shape"])
    layer = nw.MaxPool2d(k, stride=tuple(a.get("strides", k)), padding=_pads(r, node, a), name=node.name or None)
    _pool(r, node, x, layer, a)


def _pool(r: _Reader, node, x: str, layer, a: dict) -> None:
    shape = _spatial(r, node, x)
    out = _out(r, node, layer, shape)
    if a.get("ceil_mode", 0):
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
        ceil = (-(-(shape[1] + 2 * ph - kh) // sh) + 1, -(-(shape[2] + 2 * pw - kw) // sw) + 1)
        if ceil != out[1:]:
            raise r.fail(node, f"ceil_mode=1 gives output {ceil}, floor gives {out[1:]}; eventsim's pools "
                               "round down (use ceil_mode=False)")
    r.add_op(node, [x], [layer], out)


def _global_pool(r: _Reader, node, keep: bool = True) -> None:
    x = r.data(node)
    c, h, w = _spatial(r, node, x)
    layers = [nw.AvgPool2d((h, w), name=node.name or None)]
    if not keep:
        layers.append(nw.Flatten(name=f"{node.name}.flatten" if node.name else None))
    r.add_op(node, [x], layers, (c, 1, 1) if keep else (c,))


def _reducemean(r: _Reader, node) -> None:
    a = attrs(node)
    x = r.data(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = r.c(node, 1, "axes")
    nd = len(r.shape[x]) + 1
    axes = sorted(int(v) % nd for v in np.atleast_1d(axes if axes is not None else []))
    if axes != [2, 3] or nd != 4:
        raise r.fail(node, f"a mean over axes {axes} of a {nd}-D tensor; eventsim converts the global average "
                           "pool (mean over axes 2 and 3 of N×C×H×W)")
    _global_pool(r, node, keep=bool(a.get("keepdims", 1)))


def _reshape_like(r: _Reader, node) -> None:
    """Flatten, Reshape, Squeeze, Unsqueeze on the data path: a Flatten to (features,) or nothing."""
    a = attrs(node)
    x = r.data(node)
    shape = r.shape[x]
    full = (1,) + shape
    try:
        if node.op_type == "Flatten":
            axis = int(a.get("axis", 1)) % len(full)
            new = (int(np.prod(full[:axis])), int(np.prod(full[axis:])))
        elif node.op_type == "Reshape":
            new = reshape_target(full, r.c(node, 1, "shape"), a.get("allowzero", 0))
        else:
            axes = a.get("axes") if len(node.input) < 2 else r.c(node, 1, "axes")
            fn = squeeze if node.op_type == "Squeeze" else unsqueeze
            new = fn([np.empty(full), axes if axes is None else np.asarray(axes)], {}).shape
    except (ValueError, IndexError, TypeError) as exc:
        raise r.fail(node, f"cannot apply it to shape {full} ({exc})") from None
    if int(np.prod(new)) != int(np.prod(full)) or not new or new[0] != 1:
        raise r.fail(node, f"reshapes {full} to {tuple(new)}; eventsim keeps the batch axis first")
    per_sample = tuple(new[1:])
    if per_sample == shape:
        r.alias(node.output[0], r.producer[x], shape)
    elif len(per_sample) == 1:
        r.add_op(node, [x], [nw.Flatten(name=node.name or None)], per_sample)
    else:
        raise r.fail(node, f"reshapes {full} to {tuple(new)}; eventsim's only reshape is a Flatten to (N, features)")


def _identity(r: _Reader, node) -> None:
    x = r.data(node)
    if node.op_type == "Dropout" and len(node.output) > 1 and r.uses.get(node.output[1]):
        raise r.fail(node, "the mask output of Dropout is used; export the model in eval() mode")
    r.alias(node.output[0], r.producer[x], r.shape[x])


_HANDLERS: dict[str, Callable[[_Reader, Any], None]] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm,
    "Relu": _relu, "Clip": _clip, "Add": _add, "AveragePool": _avgpool, "MaxPool": _maxpool,
    "GlobalAveragePool": _global_pool, "ReduceMean": _reducemean, "Flatten": _reshape_like,
    "Reshape": _reshape_like, "Squeeze": _reshape_like, "Unsqueeze": _reshape_like,
    "Identity": _identity, "Dropout": _identity,
}

#: operators eventsim converts (data path) or evaluates (constant expressions)
SUPPORTED_OPS = frozenset(_HANDLERS) | frozenset(CONST_OPS)


def read_onnx(path: str | os.PathLike, input_shape=None, max_pool: str = "refuse") -> OnnxGraph:
    """Read ``path`` as the data-path ops of a ReLU/clip CNN (see the module docstring).

    Raises :class:`~eventsim.checkpoints.torchfile.CheckpointError` naming the node and its operator
    for anything eventsim cannot convert, and for truncated or malformed files.
    """
    if max_pool not in MAX_POOL_RULES:
        raise CheckpointError(f"max_pool={max_pool!r}: choose one of {MAX_POOL_RULES}")
    path = Path(path)
    model = load_model(path)
    return _Reader(model, path.name, input_shape, max_pool).run()
