"""Reading ``.onnx`` files for :mod:`eventsim.checkpoints.onnx_graph`: the protobuf model (with
tensors kept beside it only in the model's own folder), node attributes, tensors, and the NumPy
evaluation of the constant expressions that exporters write (``Shape``/``Gather``/``Concat``/... for
``x.view(x.size(0), -1)``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .torchfile import CheckpointError

__all__ = ["require_onnx", "load_model", "attrs", "tensor", "checked", "CONST_OPS", "reshape_target",
           "squeeze", "unsqueeze"]


def require_onnx():
    """Import and return the ``onnx`` package, or raise ImportError naming the extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("reading ONNX (.onnx) files needs the 'onnx' package: "
                          "pip install 'eventsim[onnx]'  (or: pip install onnx)") from exc
    return onnx


def load_model(path: Path):
    onnx = require_onnx()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:     # protobuf raises DecodeError, RuntimeWarning-like errors, ...
        raise CheckpointError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}); "
                              "the file is truncated or not ONNX") from None
    if not model.HasField("graph") or not model.graph.node:
        raise CheckpointError(f"{path}: ONNX model without a graph (no nodes); the file is truncated or not ONNX")
    load_external(model, path)
    return model


def load_external(model, path: Path) -> None:
    """Read tensors kept in files beside the model (``torch.onnx.export`` writes ``model.onnx.data``
    for the dynamo exporter): only plain files in the model's folder, within their size."""
    from onnx import TensorProto
    from onnx.external_data_helper import load_external_data_for_model
    folder = path.resolve().parent
    external = False
    for init in model.graph.initializer:
        if init.data_location != TensorProto.EXTERNAL:
            continue
        external = True
        info = {e.key: e.value for e in init.external_data}
        where = f"{path}: tensor {init.name!r} is stored in {info.get('location')!r}"
        location = info.get("location", "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or target.parent != folder:
            raise CheckpointError(f"{where}; eventsim reads external tensor files only from the model's own folder")
        if not target.is_file():
            raise CheckpointError(f"{where}, which is missing; keep it beside the .onnx file "
                                  "(or export with external_data=False)")
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError:
            raise CheckpointError(f"{where} with a malformed offset/length") from None
        if offset < 0 or (length >= 0 and offset + length > target.stat().st_size):
            raise CheckpointError(f"{where} at bytes {offset}+{length}, past the end of that "
                                  f"{target.stat().st_size}-byte file; it is truncated")
    if external:
        try:
            load_external_data_for_model(model, str(folder))
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot read its external tensor data ({exc})") from None


def attrs(node) -> dict[str, Any]:
    from onnx import AttributeProto, helper, numpy_helper
    out = {}
    for a in node.attribute:
        out[a.name] = numpy_helper.to_array(a.t) if a.type == AttributeProto.TENSOR else helper.get_attribute_value(a)
        if isinstance(out[a.name], bytes):
            out[a.name] = out[a.name].decode("utf-8", "replace")
    return out


def tensor(init, source: str) -> np.ndarray:
    from onnx import numpy_helper
    try:
        return numpy_helper.to_array(init)
    except Exception as exc:
        raise CheckpointError(f"{source}: tensor {init.name!r} cannot be read ({exc}); the file is corrupt") from None


def checked(shape: tuple, where: str) -> tuple:
    """``shape``, unless it declares more values than a loaded model may hold per layer (a file
    declares a huge shape for free; the calibration pass would then exhaust memory)."""
    from ..formats import MAX_LAYER_VALUES
    values = int(np.prod(shape, dtype=object))
    if values > MAX_LAYER_VALUES:
        raise CheckpointError(f"{where} has shape {shape} ({values:,} values), more than the "
                              f"{MAX_LAYER_VALUES:,} a loaded model may declare per layer")
    return shape


# ----------------------------------------------------------------------------- constant folding


def reshape_target(shape, target, allowzero=0):
    out = [int(s) for s in np.asarray(target).reshape(-1)]
    if not allowzero:
        out = [shape[i] if s == 0 and i < len(shape) else s for i, s in enumerate(out)]
    if out.count(-1) == 1:
        known = int(np.prod([s for s in out if s != -1]))
        out[out.index(-1)] = int(np.prod(shape)) // max(known, 1)
    return tuple(out)


def unsqueeze(ins, a):
    axes = a.get("axes") if ins[1:2] == [None] or len(ins) < 2 else ins[1]
    x = ins[0]
    for ax in sorted(int(v) % (x.ndim + len(np.atleast_1d(axes))) for v in np.atleast_1d(axes)):
        x = np.expand_dims(x, ax)
    return x


def squeeze(ins, a):
    axes = a.get("axes") if len(ins) < 2 or ins[1] is None else ins[1]
    return np.squeeze(ins[0], axis=None if axes is None else tuple(int(v) for v in np.atleast_1d(axes)))


def slice_(ins, a):
    x, starts, ends = ins[0], ins[1], ins[2]
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
    steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), dtype=int)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _binary(fn: Callable) -> Callable:
    """An elementwise op on two constants whose broadcast result is checked for size first."""
    def apply(ins, a):
        checked(np.broadcast_shapes(np.shape(ins[0]), np.shape(ins[1])), "a constant expression")
        return fn(ins[0], ins[1])
    return apply


CONST_OPS: dict[str, Callable] = {
    "Constant": None, "Shape": None,
    "Identity": lambda ins, a: ins[0],
    "Cast": lambda ins, a: ins[0],
    "Gather": lambda ins, a: np.take(ins[0], ins[1].astype(np.int64), axis=a.get("axis", 0)),
    "Concat": lambda ins, a: np.concatenate([np.atleast_1d(v) for v in ins], axis=a["axis"]),
    "Unsqueeze": unsqueeze, "Squeeze": squeeze, "Slice": slice_,
    "Reshape": lambda ins, a: ins[0].reshape(reshape_target(ins[0].shape, ins[1], a.get("allowzero", 0))),
    "Mul": _binary(np.multiply), "Div": _binary(np.divide), "Add": _binary(np.add), "Sub": _binary(np.subtract),
}
