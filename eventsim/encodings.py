"""Input encodings: how a recording becomes the input of a model (a registry).

A model says which encoding it was trained with in ``network.metadata["input_encoding"]``:

=========  ====================================================================================
events     (default) DVS events as they are; step engines bin them as ``floor(t / dt_us)``
frames     AOI-SNN: event counts in ``steps`` equal time bins of ``[0, t_last + 1)`` µs (or of
           ``[0, metadata["window_us"])``), 2 polarity channels (:func:`eventsim.events.to_frames`)
analog     DIET-SNN, QCFS, converted ANNs: the recording's event-count image, divided by its
           largest count (values in [0, 1]), fed every step
poisson    BNTT: that image rate-coded with :func:`poisson_encode`, seeded
           with ``seed + sample index`` (``metadata["poisson_rescale"]``, default 1)
=========  ====================================================================================

Each encoder returns an :class:`Encoded` input ready for :func:`eventsim.simulate`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Encoded", "ENCODINGS", "register_encoding", "encode", "count_image", "poisson_encode"]


def poisson_encode(image: Any, steps: int, seed: int | np.random.Generator, rescale: float = 1.0) -> np.ndarray:
    """Rate-code an analog image as signed spikes, one independent draw per step and pixel.

    ``s[t, i] = sign(x_i)`` where ``rescale · u[t, i] <= |x_i|`` with ``u ~ U[0, 1)``, else 0, so a pixel
    spikes with probability ``min(1, |x_i| / rescale)`` per step. BNTT's ``PoissonGen`` uses
    ``rescale=2``.

    Parameters
    ----------
    image : array_like
        Analog input, any shape (e.g. ``(C, H, W)``), finite.
    steps : int
        Number of time steps T.
    seed : int or numpy.random.Generator
        Explicit seed; the same seed gives the same spikes.
    rescale : float, default 1.0

    Returns
    -------
    numpy.ndarray of int8, shape ``(steps, *image.shape)``
        Values in {-1, 0, 1}; feed to both PyTorch and eventsim. Non-negative images give 0/1
        event counts (``input_kind="events"``).

    Examples
    --------
    >>> s = poisson_encode(np.full((1, 2, 2), 0.5), steps=1000, seed=0)
    >>> round(float(s.mean()), 1)
    0.5
    """
    x = np.asarray(image, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("poisson_encode: image contains NaN or infinite values")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"poisson_encode: steps must be a positive integer, got {steps!r}")
    if not rescale > 0:
        raise ValueError(f"poisson_encode: rescale must be > 0, got {rescale!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    u = rng.random((int(steps),) + x.shape)
    return ((u * rescale <= np.abs(x)) * np.sign(x)).astype(np.int8)


@dataclass(frozen=True)
class Encoded:
    """``inputs`` for the engine, their ``input_kind``, the number of ``steps`` and the step length
    ``dt_us``; ``times_us`` (steps,) is the real time each step ends at."""

    inputs: Any
    input_kind: str
    steps: int
    dt_us: float
    times_us: np.ndarray


def count_image(events: np.ndarray, shape: tuple) -> np.ndarray:
    """Event counts per polarity and pixel over the whole recording, divided by the largest count."""
    from .events import to_frames
    counts = to_frames(events, shape, n_bins=1)[0] if len(events) else np.zeros(shape)
    peak = counts.max()
    return counts / peak if peak > 0 else counts


def _span_us(events: np.ndarray, metadata: dict) -> float:
    if metadata.get("window_us"):
        return float(metadata["window_us"])
    return float(events["t"][-1]) + 1.0 if len(events) else 1.0


def _need_steps(name: str, steps: int | None) -> int:
    if not steps:
        raise ValueError(f"input encoding {name!r} needs a number of steps: pass --steps (steps=)")
    return int(steps)


def _events(network, events, index, steps, dt_us, seed) -> Encoded:
    t_last = int(events["t"][-1]) if len(events) else 0
    n = steps if steps else max(1, t_last // int(dt_us) + 1)
    return Encoded(events, "events", int(n), dt_us, dt_us * np.arange(1, n + 1))


def _frames(network, events, index, steps, dt_us, seed) -> Encoded:
    from .events import to_frames
    n = _need_steps("frames", steps)
    span = _span_us(events, network.metadata)
    frames = to_frames(events, network.input_shape, n_bins=n, t_stop_us=int(round(span)))
    return Encoded(frames.astype(np.int64), "events", n, span / n, span / n * np.arange(1, n + 1))


def _analog(network, events, index, steps, dt_us, seed) -> Encoded:
    n = _need_steps("analog", steps)
    image = count_image(events, network.input_shape)
    return Encoded(image, "analog", n, dt_us, dt_us * np.arange(1, n + 1))


def _poisson(network, events, index, steps, dt_us, seed) -> Encoded:
    n = _need_steps("poisson", steps)
    image = count_image(events, network.input_shape)
    rescale = float(network.metadata.get("poisson_rescale", 1.0))
    spikes = poisson_encode(image, n, seed=np.random.default_rng([int(seed), int(index)]), rescale=rescale)
    kind = "events" if spikes.min() >= 0 else "analog"
    return Encoded(spikes.astype(np.int64), kind, n, dt_us, dt_us * np.arange(1, n + 1))


EncoderFn = Callable[..., Encoded]
ENCODINGS: dict[str, EncoderFn] = {"events": _events, "frames": _frames, "analog": _analog, "poisson": _poisson}


def register_encoding(name: str, fn: EncoderFn) -> None:
    """Add an encoding: ``fn(network, events, index, steps, dt_us, seed) -> Encoded``."""
    ENCODINGS[name] = fn


def encode(network, events: np.ndarray, index: int = 0, steps: int | None = None, dt_us: float = 1000.0,
           seed: int = 0) -> Encoded:
    """Encode one recording the way ``network`` expects (``metadata["input_encoding"]``)."""
    name = network.metadata.get("input_encoding", "events")
    fn = ENCODINGS.get(name)
    if fn is None:
        raise ValueError(f"model input encoding {name!r} is unknown; known: {sorted(ENCODINGS)}")
    return fn(network, events, index, steps, dt_us, seed)
