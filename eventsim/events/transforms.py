"""Fitting a recording to a model's input: region of interest, centre crop, spatial downsampling and
polarity merge, applied chunk by chunk between reader and engine (memory O(chunk)).

Steps (a :class:`Pipeline` applies them in the order given)::

    roi=WxH+X+Y       keep x in [X, X+W), y in [Y, Y+H); shift to (0, 0)  -> W x H
    crop=WxH          the centred W x H window: X = (width - W) // 2, Y = (height - H) // 2
    downsample=F      integer F: x' = x // F, y' = y // F        -> ceil(width / F) x ceil(height / F)
    downsample=WxH    to W x H: x' = x * W // width, y' = y * H // height
    downsample=2.5    non-integer F: the same rule, to floor(width / F) x floor(height / F)
    merge-polarity    p' = 0 for every event                     -> 1 input channel

Downsampling keeps every event: the events of the source pixels that fall on one output pixel all
arrive there, so several events at one pixel at one time are several input events (the engines add
each one's weights; nothing is deduplicated). For a non-integer factor output pixel ``i`` collects
the source pixels ``x`` with ``x * W // width == i``: ``floor`` or ``ceil`` of ``width / W`` of them,
spread evenly. Events keep their time and order.

>>> import numpy as np
>>> from eventsim.events import make_events
>>> pipe = parse_transforms("roi=4x4+2+0;downsample=2;merge-polarity")
>>> ev = make_events([0, 1, 2], [2, 5, 9], [0, 3, 1], [1, 0, 1])
>>> out, size = pipe.apply(ev, (10, 4)), pipe.output_size((10, 4))
>>> out[["x", "y", "p"]].tolist(), size
([(0, 0, 0), (1, 1, 0)], (2, 2))
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["Roi", "Crop", "Downsample", "MergePolarity", "Pipeline", "parse_transforms", "fit_hint",
           "transforms_from_args"]

Size = tuple[int, int]


def _wh(text: str, what: str) -> Size:
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ValueError(f"{what}: expected WIDTHxHEIGHT of positive integers (e.g. 128x128), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _need(size: Size | None, step: str) -> Size:
    if size is None:
        raise ValueError(f"{step} needs the sensor size, which the recording does not state; use roi=WxH+X+Y or "
                         "an integer downsample factor, or read the file with sensor_size=")
    return size


@dataclass(frozen=True)
class Roi:
    """Region of interest ``width x height`` at ``(x, y)``; events outside are dropped."""

    width: int
    height: int
    x: int = 0
    y: int = 0

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or self.x < 0 or self.y < 0:
            raise ValueError(f"roi: width and height must be >= 1 and x, y >= 0, got {self.spec()}")

    def spec(self) -> str:
        return f"roi={self.width}x{self.height}+{self.x}+{self.y}"

    def output_size(self, size: Size | None) -> Size:
        if size is not None and (self.x + self.width > size[0] or self.y + self.height > size[1]):
            raise ValueError(f"{self.spec()} does not fit in the {size[0]}x{size[1]} sensor")
        return self.width, self.height

    def apply(self, events: np.ndarray, size: Size | None) -> np.ndarray:
        x, y = events["x"], events["y"]
        keep = (x >= self.x) & (x < self.x + self.width) & (y >= self.y) & (y < self.y + self.height)
        out = events[keep]
        out["x"] -= self.x
        out["y"] -= self.y
        return out


@dataclass(frozen=True)
class Crop:
    """The centred ``width x height`` window of the sensor."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"crop: width and height must be >= 1, got {self.width}x{self.height}")

    def spec(self) -> str:
        return f"crop={self.width}x{self.height}"

    def roi(self, size: Size | None) -> Roi:
        w, h = _need(size, self.spec())
        if self.width > w or self.height > h:
            raise ValueError(f"{self.spec()} is larger than the {w}x{h} sensor")
        return Roi(self.width, self.height, (w - self.width) // 2, (h - self.height) // 2)

    def output_size(self, size: Size | None) -> Size:
        return self.roi(size).output_size(size)

    def apply(self, events: np.ndarray, size: Size | None) -> np.ndarray:
        return self.roi(size).apply(events, size)


@dataclass(frozen=True)
class Downsample:
    """Spatial downsampling by an integer or non-integer ``factor``, or to a ``target`` size."""

    factor: float | None = None
    target: Size | None = None

    def __post_init__(self) -> None:
        if (self.factor is None) == (self.target is None):
            raise ValueError("downsample: give either a factor or a target WIDTHxHEIGHT")
        if self.factor is not None and not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"downsample: the factor must be a number >= 1, got {self.factor!r}")

    def spec(self) -> str:
        if self.target is not None:
            return f"downsample={self.target[0]}x{self.target[1]}"
        f = self.factor
        return f"downsample={int(f) if float(f).is_integer() else f}"

    @property
    def integer(self) -> bool:
        return self.factor is not None and float(self.factor).is_integer()

    def output_size(self, size: Size | None) -> Size | None:
        if self.integer:
            f = int(self.factor)
            return None if size is None else (-(-size[0] // f), -(-size[1] // f))
        w, h = _need(size, self.spec())
        out = self.target or (max(1, int(w / self.factor)), max(1, int(h / self.factor)))
        if out[0] > w or out[1] > h:
            raise ValueError(f"{self.spec()} is larger than the {w}x{h} sensor (downsampling cannot enlarge)")
        return out

    def apply(self, events: np.ndarray, size: Size | None) -> np.ndarray:
        out = events.copy()
        if self.integer:
            f = int(self.factor)
            out["x"] //= f
            out["y"] //= f
            return out
        w, h = _need(size, self.spec())
        ow, oh = self.output_size(size)
        out["x"] = events["x"].astype(np.int64) * ow // w
        out["y"] = events["y"].astype(np.int64) * oh // h
        return out


@dataclass(frozen=True)
class MergePolarity:
    """Every event becomes polarity 0: one input channel."""

    def spec(self) -> str:
        return "merge-polarity"

    def output_size(self, size: Size | None) -> Size | None:
        return size

    def apply(self, events: np.ndarray, size: Size | None) -> np.ndarray:
        out = events.copy()
        out["p"] = 0
        return out


@dataclass(frozen=True)
class Pipeline:
    """Transforms applied in order; ``apply(chunk, sensor_size)`` works on any consecutive chunk."""

    steps: tuple = ()

    def output_size(self, size: Size | None) -> Size | None:
        for step in self.steps:
            size = step.output_size(size)
        return size

    @property
    def channels(self) -> int:
        return 1 if any(isinstance(s, MergePolarity) for s in self.steps) else 2

    def apply(self, events: np.ndarray, size: Size | None) -> np.ndarray:
        for step in self.steps:
            events, size = step.apply(events, size), step.output_size(size)
        return events

    def describe(self) -> list[str]:
        """The steps as spec strings (what ``results.json`` records)."""
        return [step.spec() for step in self.steps]

    def __bool__(self) -> bool:
        return bool(self.steps)


def _step(item: str) -> Any:
    name, _, value = item.strip().partition("=")
    name = name.strip().lower().replace("_", "-")
    if name == "roi":
        m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*\+\s*(\d+)\s*\+\s*(\d+)\s*", value)
        if not m:
            raise ValueError(f"roi: expected WIDTHxHEIGHT+X+Y (e.g. 640x480+320+120), got {value!r}")
        return Roi(*(int(g) for g in m.groups()))
    if name == "crop":
        return Crop(*_wh(value, "crop"))
    if name == "downsample":
        if "x" in value:
            return Downsample(target=_wh(value, "downsample"))
        try:
            factor = float(value)
        except ValueError:
            raise ValueError(f"downsample: expected a factor (e.g. 2 or 2.5) or WIDTHxHEIGHT, got {value!r}") from None
        return Downsample(factor=factor)
    if name in ("merge-polarity", "merge-polarities"):
        if value:
            raise ValueError(f"merge-polarity takes no value, got {value!r}")
        return MergePolarity()
    raise ValueError(f"unknown transform {item.strip()!r}: expected roi=WxH+X+Y, crop=WxH, downsample=F or "
                     "downsample=WxH, merge-polarity (separated by ';')")


def parse_transforms(spec: str | Iterable[Any] | Pipeline | None) -> Pipeline:
    """A :class:`Pipeline` from a spec string (``"crop=640x480;downsample=5"``), step objects, or None."""
    if spec is None:
        return Pipeline()
    if isinstance(spec, Pipeline):
        return spec
    if isinstance(spec, str):
        return Pipeline(tuple(_step(item) for item in spec.split(";") if item.strip()))
    steps = []
    for item in spec:
        steps.extend(parse_transforms(item).steps if isinstance(item, (str, Pipeline)) else [item])
    return Pipeline(tuple(steps))


def fit_hint(input_shape: Sequence[int], sensor_size: Sequence[int]) -> str:
    """The flag that fits a ``width x height`` recording to a ``(C, H, W)`` model input."""
    w, h = int(sensor_size[0]), int(sensor_size[1])
    mh, mw = int(input_shape[-2]), int(input_shape[-1])
    if mw > w or mh > h:
        return "the model's input is larger than the recordings; use a model trained at this size or smaller"
    if w % mw == 0 and h % mh == 0 and w // mw == h // mh:
        flag = f"--downsample {w // mw}"
    elif w * mh == h * mw:
        flag = f"--downsample {mw}x{mh}"
    else:
        # keep the aspect: crop the centre to the model's aspect ratio, then downsample
        cw, ch = (h * mw // mh, h) if w * mh > h * mw else (w, w * mh // mw)
        flag = f"--crop {cw}x{ch} --downsample {mw}x{mh}"
    return f"fit the recordings with {flag} (or --roi WxH+X+Y / --downsample {mw}x{mh})"


def transforms_from_args(args: Any) -> Pipeline:
    """The pipeline of the CLI flags: ``--transform`` spec first, then ``--roi``, ``--crop``,
    ``--downsample``, ``--merge-polarity`` in that order."""
    items = [getattr(args, "transform", None) or ""]
    for flag in ("roi", "crop", "downsample"):
        value = getattr(args, flag, None)
        if value is not None:
            items.append(f"{flag}={value}")
    if getattr(args, "merge_polarity", False):
        items.append("merge-polarity")
    return parse_transforms(";".join(i for i in items if i))
