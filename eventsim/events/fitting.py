"""Recordings and data sets fitted to a model's input: the transforms of
:mod:`eventsim.events.transforms` applied while the events stream in from a reader."""
from __future__ import annotations

from typing import Any

import numpy as np

from ._core import EVENT_DTYPE
from .io import Recording, iter_events
from .transforms import Pipeline, parse_transforms

__all__ = ["fit_recording", "fit_source", "FittedSource"]


def fit_recording(path, transforms: Any = None, **read_options: Any):
    """Read a recording and apply ``transforms`` chunk by chunk; returns a
    :class:`~eventsim.events.Recording` with the fitted events and sensor size (``meta["transforms"]``
    lists the steps). Memory: the fitted events plus one chunk (Prophesee RAW streams from disk).

    Examples
    --------
    >>> rec = fit_recording("gen4.raw", "downsample=128x128")   # doctest: +SKIP
    >>> rec.sensor_size                                           # doctest: +SKIP
    (128, 128)
    """
    pipe = parse_transforms(transforms)
    stream = iter_events(path, **read_options)
    size_in = stream.sensor_size
    size = pipe.output_size(size_in)
    parts = [pipe.apply(chunk, size_in) for chunk in stream]
    events = np.concatenate(parts) if parts else np.zeros(0, EVENT_DTYPE)
    return Recording(events, size, stream.format, {**stream.meta, "transforms": pipe.describe(),
                                                   "sensor_size_in": size_in})


class FittedSource:
    """A dataset of ``(events, label)`` with a :class:`Pipeline` applied to each sample.

    ``sensor_size`` is the fitted size, ``channels`` 1 after a polarity merge, else 2. Recordings of
    a file list are streamed through the pipeline (Prophesee RAW: memory O(chunk) beyond the result).
    """

    def __init__(self, dataset: Any, pipeline: Pipeline) -> None:
        self.dataset, self.pipeline = dataset, pipeline
        self.files = getattr(dataset, "files", None)
        size = getattr(dataset, "sensor_size", None)
        if size is None and self.files:
            size = iter_events(self.files[0]).sensor_size
        self.sensor_size_in = None if size is None else (int(size[0]), int(size[1]))
        self.sensor_size = pipeline.output_size(self.sensor_size_in)
        self.channels = pipeline.channels
        self.transforms = pipeline.describe()
        self.labels = getattr(dataset, "labels", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if self.files is not None:
            stream = iter_events(self.files[index])
            if self.sensor_size_in is not None and stream.sensor_size not in (None, self.sensor_size_in):
                raise ValueError(f"{self.files[index]}: sensor {stream.sensor_size[0]}x{stream.sensor_size[1]} differs "
                                 f"from the first recording's {self.sensor_size_in[0]}x{self.sensor_size_in[1]}; "
                                 "fit recordings of one size at a time")
            parts = [self.pipeline.apply(chunk, self.sensor_size_in) for chunk in stream]
            return (np.concatenate(parts) if parts else np.zeros(0, EVENT_DTYPE)), -1
        events, label = self.dataset[index][:2]
        return self.pipeline.apply(events, self.sensor_size_in), label


_NEW_FORMATS = (".raw",)


def fit_source(dataset: Any, transforms: Any = None) -> Any:
    """``dataset`` with ``transforms`` applied (a :class:`FittedSource`); unchanged when there are none,
    except that a list of Prophesee RAW files gets its sensor size from the header."""
    pipe = parse_transforms(transforms)
    files = getattr(dataset, "files", None) or []
    if not pipe and not any(str(f).lower().endswith(_NEW_FORMATS) for f in files):
        return dataset
    return FittedSource(dataset, pipe)
