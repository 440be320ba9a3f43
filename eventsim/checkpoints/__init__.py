"""PyTorch checkpoints without torch: a safe ``.pt`` reader and one importer per seed layout.

* :func:`read_checkpoint` / :func:`read_state_dict`: ``torch.save`` files (zip or legacy) read with a
  restricted unpickler; tensors become NumPy arrays; anything but tensors and plain containers is
  refused with :class:`UnsafeCheckpointError` before it can run.
* Importers, registered as model formats for :func:`eventsim.load`:
  ``"diet"`` (:func:`load_diet`), ``"qcfs"`` (:func:`load_qcfs`), ``"aoi"`` (:func:`load_aoi`),
  ``"bntt"`` (:func:`load_bntt`), ``"ann"`` (:func:`load_ann`, ANN→SNN conversion), ``"onnx"``
  (:func:`load_onnx`, ANN→SNN conversion of a ``torch.onnx.export`` file) and ``"pt"`` (whichever
  layout the keys match).
* :func:`describe_checkpoint` for ``eventsim inspect``; :func:`poisson_encode` for BNTT's input.

>>> import eventsim as es
>>> net = es.load("diet.pth", cfg="VGG5", input_shape=(3, 32, 32))     # doctest: +SKIP
"""
from __future__ import annotations

from .aoi import load_aoi
from .bntt import load_bntt
from .common import read_state_dict, split_state_dict
from .convert import ann_forward, convert_ann, load_ann
from .describe import describe_checkpoint
from .diet import load_diet
from ..encodings import poisson_encode  # kept here too: the BNTT recipe imports it from checkpoints
from .onnx_convert import convert_onnx, load_onnx, onnx_forward
from .qcfs import load_qcfs
from .registry import LAYOUTS, Layout, detect_layouts, register_layout
from .torchfile import CheckpointError, TensorInfo, UnsafeCheckpointError, read_checkpoint

__all__ = ["read_checkpoint", "read_state_dict", "split_state_dict", "describe_checkpoint", "CheckpointError",
           "UnsafeCheckpointError", "TensorInfo", "load_diet", "load_qcfs", "load_aoi", "load_bntt", "load_ann",
           "convert_ann", "ann_forward", "load_onnx", "convert_onnx", "onnx_forward", "poisson_encode", "LAYOUTS", "Layout", "register_layout",
           "detect_layouts"]
