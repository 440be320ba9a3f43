"""Input encodings that some seed methods apply before their first layer."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["poisson_encode"]


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
