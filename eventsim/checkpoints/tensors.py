"""What a checkpoint reader knows of a tensor before (or instead of) reading its data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TensorInfo"]


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as declared in the pickle, before (or instead of) reading its data.

    ``offset`` and ``stride`` count elements, as in PyTorch.
    """

    shape: tuple
    dtype: str
    storage: str
    offset: int
    stride: tuple

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=object)) if self.shape else 1

    def __repr__(self) -> str:
        return f"TensorInfo({self.dtype}, shape={self.shape})"
