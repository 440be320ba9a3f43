"""Network intermediate representation (IR).

A :class:`Network` is an ordered list of layers, as in ``torch.nn.Sequential``:
synaptic or routing layers (:class:`Conv2d`, :class:`Linear`, the pools,
:class:`Flatten`, :class:`Add`) each followed, where the model spikes, by a
neuron population (:class:`IF`, :class:`LIF`) or, at the end, by a non-spiking
:class:`Readout` that accumulates its input current.

The list is a DAG written in topological order. Each layer reads the output of the layer
before it, except two routing layers: :class:`Branch` starts a new path from the output of an
earlier layer (or the input), and :class:`Add` sums the current flowing through it with the
output of an earlier layer. So both paths of a merge may hold layers; a ResNet block whose
shortcut downsamples with a 1×1 convolution reads::

    k    IF                         block input (spikes)
    k+1  Conv2d, IF, Conv2d         residual path; its current ends at layer k+3
    k+4  Branch(source=k)           the shortcut path starts again from layer k's spikes
    k+5  Conv2d(1×1, stride 2)
    k+6  Add(source=k+3)            shortcut current + residual current
    k+7  IF                         the spiking site after the addition

Every layer is a frozen dataclass that validates itself in ``__post_init__``;
the :class:`Network` derives and checks every shape on construction, so a
mismatch raises :class:`ValueError` naming the layer, the shape it found and the
shape it expected.

Weights are NumPy arrays in PyTorch's layout: Conv2d ``(out, in/groups, kh, kw)``,
Linear ``(out, in)``.

Example
-------
>>> import numpy as np, eventsim as es
>>> net = es.Network(input_shape=(2, 8, 8), layers=[
...     es.Conv2d(np.ones((4, 2, 3, 3)), padding=1), es.IF(threshold=1.0),
...     es.SumPool2d(2), es.Flatten(), es.Linear(np.ones((10, 64))), es.Readout()])
>>> net.shapes[-1]
(10,)
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np

__all__ = [
    "Layer", "Conv2d", "Linear", "AvgPool2d", "SumPool2d", "MaxPool2d", "Flatten", "Add", "Branch",
    "NeuronSpec", "IF", "LIF", "Readout", "Network",
]


def _as_array(value: Any, name: str, ndim: int | None = None) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or infinite values; weights must be finite")
    arr.setflags(write=False)
    return arr


def _pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        try:
            pair = tuple(int(v) for v in value)
        except TypeError:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}") from None
        if len(pair) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def _eq_fields(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or np.shape(x) != np.shape(y) or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


def _hash_key(value: Any) -> Any:
    """A hashable stand-in for a field value that is equal wherever :func:`_eq_fields` says equal:
    an array becomes its shape and a digest of its float64 bytes (``-0.0`` counted as ``0.0``)."""
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value, dtype=np.float64) + 0.0     # -0.0 + 0.0 == +0.0
        return ("array", arr.shape, hashlib.blake2b(arr.tobytes(), digest_size=16).digest())
    return value


def _cached_hash(obj: Any, compute) -> int:
    """The value-based hash of a frozen object, computed once and kept on the object (not pickled:
    ``hash`` of a ``str`` differs between processes)."""
    cached = obj.__dict__.get("_hash")
    if cached is None:
        cached = compute()
        object.__setattr__(obj, "_hash", cached)
    return cached


class _FrozenValue:
    """Value semantics for frozen dataclasses: a hash consistent with ``==``, cached, never pickled."""

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_hash", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _set_weight_and_bias(layer: Layer, label: str, ndim: int) -> None:
    """Validate and freeze ``weight`` (``ndim``-D), ``bias`` (one per output) and ``delay_us``."""
    w = _as_array(layer.weight, f"{label}.weight", ndim=ndim)
    object.__setattr__(layer, "weight", w)
    if layer.bias is not None:
        b = _as_array(layer.bias, f"{label}.bias", ndim=1)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{label}.bias: shape {b.shape}, expected ({w.shape[0]},) to match weight {w.shape}")
        object.__setattr__(layer, "bias", b)
    if not layer.delay_us >= 0:
        raise ValueError(f"{label}.delay_us: must be >= 0, got {layer.delay_us}")


class Layer(_FrozenValue):
    """Base class of every IR node. ``name`` is optional; the network names unnamed layers.

    Layers compare by value (type and every field, arrays element by element) and hash by value:
    ``a == b`` implies ``hash(a) == hash(b)``. The hash digests the weights once per object.
    """

    kind: str = "layer"
    #: layers with weights whose spike input counts as synops (else MACs)
    synaptic: bool = False

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def describe(self) -> str:
        """One-line description of the layer's configuration (the last column of the summary)."""
        return ""

    def __eq__(self, other: object) -> bool:
        return _eq_fields(self, other)

    def __hash__(self) -> int:
        return _cached_hash(self, lambda: hash((type(self).__qualname__,
                                                *(_hash_key(getattr(self, f.name)) for f in fields(self)))))


# ----------------------------------------------------------------------------- synaptic layers


@dataclass(frozen=True, eq=False)
class Conv2d(Layer):
    """2-D convolution, ``I[co, oy, ox] = b[co] + Σ w[co, ci, ky, kx] · x[g·Cin/G + ci, oy·s + ky − p, ox·s + kx − p]``.

    Parameters
    ----------
    weight : array, shape ``(out, in/groups, kh, kw)``
    bias : array ``(out,)`` or None. A bias is a constant current injected every step.
    stride, padding : int or pair of ints
    groups : int
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: Any = 1
    padding: Any = 0
    groups: int = 1
    delay_us: float = 0.0
    name: str | None = None
    kind = "Conv2d"
    synaptic = True

    def __post_init__(self) -> None:
        label = self.name or "Conv2d"
        _set_weight_and_bias(self, label, 4)
        object.__setattr__(self, "stride", _pair(self.stride, f"{label}.stride", 1))
        object.__setattr__(self, "padding", _pair(self.padding, f"{label}.padding", 0))
        if not isinstance(self.groups, (int, np.integer)) or self.groups < 1:
            raise ValueError(f"{label}.groups: must be a positive int, got {self.groups!r}")
        object.__setattr__(self, "groups", int(self.groups))
        if self.weight.shape[0] % self.groups:
            raise ValueError(f"{label}: {self.weight.shape[0]} output channels not divisible by groups={self.groups}")

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    def describe(self) -> str:
        out, _, kh, kw = self.weight.shape
        text = (f"{self.in_channels}->{out} k={kh}x{kw} s={self.stride[0]}x{self.stride[1]} "
                f"p={self.padding[0]}x{self.padding[1]}")
        if self.groups > 1:
            text += f" g={self.groups}"
        return text + (" +bias" if self.bias is not None else "")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = _expect_chw(self, input_shape)
        if c != self.in_channels:
            raise ValueError(
                f"{self.name}: input has {c} channels (shape {input_shape}), expected {self.in_channels} "
                f"(weight {self.weight.shape} with groups={self.groups})")
        kh, kw = self.weight.shape[2:]
        (sh, sw), (ph, pw) = self.stride, self.padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.name}: input {input_shape} is smaller than kernel {(kh, kw)} with padding {self.padding}")
        return (self.weight.shape[0], oh, ow)


@dataclass(frozen=True, eq=False)
class Linear(Layer):
    """Fully connected layer, ``I[o] = b[o] + Σ_i w[o, i] · x[i]``; weight shape ``(out, in)``."""

    weight: np.ndarray
    bias: np.ndarray | None = None
    delay_us: float = 0.0
    name: str | None = None
    kind = "Linear"
    synaptic = True

    def __post_init__(self) -> None:
        label = self.name or "Linear"
        _set_weight_and_bias(self, label, 2)

    def describe(self) -> str:
        return f"{self.weight.shape[1]}->{self.weight.shape[0]}" + (" +bias" if self.bias is not None else "")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 1:
            raise ValueError(f"{self.name}: input shape {input_shape} is not flat; insert a Flatten() before this Linear")
        if input_shape[0] != self.weight.shape[1]:
            raise ValueError(f"{self.name}: input has {input_shape[0]} features, expected {self.weight.shape[1]} (weight {self.weight.shape})")
        return (self.weight.shape[0],)


# ----------------------------------------------------------------------------- routing layers


@dataclass(frozen=True, eq=False)
class _Pool2d(Layer):
    kernel_size: Any = 2
    stride: Any = None
    padding: Any = 0
    name: str | None = None

    def __post_init__(self) -> None:
        label = self.name or self.kind
        k = _pair(self.kernel_size, f"{label}.kernel_size", 1)
        object.__setattr__(self, "kernel_size", k)
        object.__setattr__(self, "stride", k if self.stride is None else _pair(self.stride, f"{label}.stride", 1))
        object.__setattr__(self, "padding", _pair(self.padding, f"{label}.padding", 0))
        if self.padding[0] * 2 > k[0] or self.padding[1] * 2 > k[1]:
            raise ValueError(f"{label}.padding: {self.padding} must be at most half the kernel {k}")

    def describe(self) -> str:
        return f"k={self.kernel_size[0]}x{self.kernel_size[1]} s={self.stride[0]}x{self.stride[1]}"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = _expect_chw(self, input_shape)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.name}: input {input_shape} is smaller than the pooling window {(kh, kw)}")
        return (c, oh, ow)


@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """Average pooling: each spike passes with amplitude ``1/(kh·kw)`` (PyTorch's ``count_include_pad=True``)."""

    kind = "AvgPool2d"


@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """Sum pooling (sinabs): each spike passes with its own amplitude."""

    kind = "SumPool2d"


@dataclass(frozen=True, eq=False)
class MaxPool2d(_Pool2d):
    """Spike max-pool: an output spikes (amplitude = the largest input) if any input in its window spikes."""

    kind = "MaxPool2d"


@dataclass(frozen=True, eq=False)
class Flatten(Layer):
    """Flatten ``(C, H, W)`` to ``(C·H·W,)`` in C order, as ``torch.flatten(x, 1)``."""

    name: str | None = None
    kind = "Flatten"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(input_shape)),)


@dataclass(frozen=True, eq=False)
class Add(Layer):
    """Residual merge: adds the output of layer ``source`` (an index into ``Network.layers``,
    or ``-1`` for the network input) to the current flowing through this point."""

    source: int = -1
    name: str | None = None
    kind = "Add"

    def describe(self) -> str:
        return f"+ layer {self.source}" if self.source >= 0 else "+ input"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape


@dataclass(frozen=True, eq=False)
class Branch(Layer):
    """Start a new path: the output of this layer is the output of layer ``source`` (an index
    into ``Network.layers``, or ``-1`` for the network input), not of the layer before it.

    With :class:`Add` it expresses a merge whose both paths hold layers (a ResNet's downsampling
    shortcut). Routing only: it costs no synops. The layer before a ``Branch`` ends a path; a
    later ``Add`` (or ``Branch``) must use that path's output, else the network refuses it.
    """

    source: int = -1
    name: str | None = None
    kind = "Branch"

    def describe(self) -> str:
        return f"from layer {self.source}" if self.source >= 0 else "from input"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape


# ----------------------------------------------------------------------------- neurons

_COMPARE = (">", ">=")
_RESET = ("subtract", "zero")
_ORDER = ("integrate-fire", "fire-integrate")


@dataclass(frozen=True, eq=False)
class NeuronSpec(Layer):
    """Spiking population integrating the current of the layer before it.

    Per step with input current ``I`` (after the optional per-step gain ``g_t`` and bias ``b_t``,
    ``I ← g_t·I + b_t``, per channel):

    * ``order="integrate-fire"`` (default): ``v ← λ·v + I``; spike ``s = v > θ`` (or ``>=``);
      then reset: ``v ← v − θ·s`` (``"subtract"``) or ``v ← 0`` where ``s`` (``"zero"``).
    * ``order="fire-integrate"`` (older DIET-SNN): ``s = v > θ`` on the previous membrane, then
      ``v ← λ·v + I − θ·s`` (subtract) or ``v ← λ·v·(1 − s) + I`` (zero).

    The emitted spike has amplitude ``spike_amplitude`` (a number, or ``"threshold"`` for θ).
    ``threshold``, ``v_init`` and ``leak`` are scalars or per-channel arrays (channel = first
    axis of the population's shape). IF is ``λ = 1``.

    sinabs semantics (``convention="sinabs"`` of the NIR reader sets them as sinabs's ``from_nir``):

    * ``multi_spike=True``: several spikes in one step, ``n = ⌊u/θ⌋`` for ``u > 0`` (sinabs's
      ``MultiSpike``; with ``compare=">"`` an exact multiple ``u = m·θ`` gives ``m − 1``), each of
      amplitude ``spike_amplitude``; the subtract reset removes ``n·θ``, the zero reset sets 0.
      In continuous time (asynchronous engine) a subtract reset already fires repeatedly while
      ``u`` stays above θ, so the flag changes nothing there.
    * ``v_min``: a membrane floor, ``u ← max(u, v_min)`` after the reset of every step (sinabs's
      ``min_v_mem``; ``from_nir`` gives an IF ``v_min = −θ``). A scalar or per channel.
    """

    threshold: Any = 1.0
    compare: str = ">"
    reset: str = "subtract"
    v_init: Any = 0.0
    order: str = "integrate-fire"
    spike_amplitude: Any = 1.0
    step_gain: Any = None
    step_bias: Any = None
    refractory_us: float = 0.0
    name: str | None = None
    multi_spike: bool = False
    v_min: Any = None
    kind = "neuron"

    def __post_init__(self) -> None:
        label = self.name or self.kind
        object.__setattr__(self, "threshold", _param(self.threshold, f"{label}.threshold"))
        if np.any(self.threshold <= 0):
            raise ValueError(f"{label}.threshold: must be > 0, got {self.threshold}")
        object.__setattr__(self, "v_init", _param(self.v_init, f"{label}.v_init"))
        if self.compare not in _COMPARE:
            raise ValueError(f"{label}.compare: {self.compare!r} is not one of {_COMPARE}")
        if self.reset not in _RESET:
            raise ValueError(f"{label}.reset: {self.reset!r} is not one of {_RESET}")
        if self.order not in _ORDER:
            raise ValueError(f"{label}.order: {self.order!r} is not one of {_ORDER}")
        if isinstance(self.spike_amplitude, str):
            if self.spike_amplitude != "threshold":
                raise ValueError(f"{label}.spike_amplitude: {self.spike_amplitude!r}; use a number or 'threshold'")
        else:
            amp = float(self.spike_amplitude)
            if not np.isfinite(amp) or amp <= 0:
                raise ValueError(f"{label}.spike_amplitude: must be a positive number, got {self.spike_amplitude}")
            object.__setattr__(self, "spike_amplitude", amp)
        for attr in ("step_gain", "step_bias"):
            val = getattr(self, attr)
            if val is not None:
                arr = _as_array(val, f"{label}.{attr}")
                if arr.ndim == 1:
                    arr = _as_array(arr[:, None], f"{label}.{attr}")
                if arr.ndim != 2:
                    raise ValueError(f"{label}.{attr}: expected shape (steps,) or (steps, channels), got {arr.shape}")
                object.__setattr__(self, attr, arr)
        if (self.step_gain is not None and self.step_bias is not None
                and self.step_gain.shape[0] != self.step_bias.shape[0]):
            raise ValueError(f"{label}: step_gain has {self.step_gain.shape[0]} steps but step_bias has {self.step_bias.shape[0]}")
        if self.refractory_us < 0:
            raise ValueError(f"{label}.refractory_us: must be >= 0, got {self.refractory_us}")
        if not isinstance(self.multi_spike, (bool, np.bool_)):
            raise ValueError(f"{label}.multi_spike: expected True or False, got {self.multi_spike!r}")
        object.__setattr__(self, "multi_spike", bool(self.multi_spike))
        if self.v_min is not None:
            object.__setattr__(self, "v_min", _param(self.v_min, f"{label}.v_min"))
            if np.any(self.v_min > 0):
                raise ValueError(f"{label}.v_min: a membrane floor must be <= 0 (the rest potential), "
                                 f"got {self.v_min}")

    def describe(self) -> str:
        parts = [f"θ={_fmt_param(self.threshold)}", f"v{self.compare}θ", f"reset={self.reset}"]
        parts += self._describe_model()
        if np.any(np.asarray(self.v_init) != 0):
            parts.append(f"v0={_fmt_param(self.v_init)}")
        if self.order != "integrate-fire":
            parts.append(self.order)
        if self.spike_amplitude != 1.0:
            amp = self.spike_amplitude
            parts.append(f"amp={amp if isinstance(amp, str) else _fmt_param(amp)}")
        if self.step_count is not None:
            parts.append(f"per-step gain/bias T={self.step_count}")
        if self.refractory_us:
            parts.append(f"refractory={self.refractory_us:g}µs")
        if self.multi_spike:
            parts.append("multi-spike")
        if self.v_min is not None:
            parts.append(f"v_min={_fmt_param(self.v_min)}")
        return " ".join(parts)

    def _describe_model(self) -> list[str]:
        """The model's own parameters for :meth:`describe` (none for IF)."""
        return []

    def leak_per_step(self, dt_us: float | None) -> np.ndarray:
        """Multiplicative leak λ per step (1 for IF)."""
        return np.ones(1)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels = input_shape[0]
        for attr in ("threshold", "v_init") + (("v_min",) if self.v_min is not None else ()):
            _check_channels(self, attr, getattr(self, attr), channels, input_shape)
        for attr in ("step_gain", "step_bias"):
            val = getattr(self, attr)
            if val is not None and val.shape[1] not in (1, channels):
                raise ValueError(f"{self.name}.{attr}: {val.shape[1]} channels, expected 1 or {channels} for input {input_shape}")
        return input_shape

    @property
    def step_count(self) -> int | None:
        """Number of steps covered by the per-step gain/bias, or None if there are none."""
        for val in (self.step_gain, self.step_bias):
            if val is not None:
                return int(val.shape[0])
        return None


@dataclass(frozen=True, eq=False)
class IF(NeuronSpec):
    """Integrate-and-fire population (no leak). See :class:`NeuronSpec`."""

    kind = "IF"


@dataclass(frozen=True, eq=False)
class LIF(NeuronSpec):
    """Leaky integrate-and-fire: ``v ← λ·v + I`` per step, with ``leak`` λ in (0, 1] given
    directly (per layer or per channel) or from ``tau_s`` as ``λ = exp(−Δt/τ)``.
    In continuous time the membrane decays as ``v(t) = v(t₀)·exp(−(t − t₀)/τ)`` with
    ``τ = −Δt / ln λ``."""

    leak: Any = None
    tau_s: float | None = None
    kind = "LIF"

    def __post_init__(self) -> None:
        super().__post_init__()
        label = self.name or "LIF"
        if (self.leak is None) == (self.tau_s is None):
            raise ValueError(f"{label}: give exactly one of leak (per step) or tau_s (seconds)")
        if self.leak is not None:
            leak = _param(self.leak, f"{label}.leak")
            if np.any(leak <= 0) or np.any(leak > 1):
                raise ValueError(f"{label}.leak: must lie in (0, 1], got {leak}")
            object.__setattr__(self, "leak", leak)
        elif not (self.tau_s > 0 and np.isfinite(self.tau_s)):
            raise ValueError(f"{label}.tau_s: must be a positive number of seconds, got {self.tau_s}")

    def _describe_model(self) -> list[str]:
        return [f"λ={_fmt_param(self.leak)}" if self.leak is not None else f"τ={self.tau_s:g}s"]

    def leak_per_step(self, dt_us: float | None) -> np.ndarray:
        if self.leak is not None:
            return np.atleast_1d(self.leak)
        if dt_us is None:
            raise ValueError(f"{self.name}: tau_s={self.tau_s} needs a step length; pass dt_us=")
        return np.atleast_1d(np.exp(-dt_us * 1e-6 / self.tau_s))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.leak is not None:
            _check_channels(self, "leak", self.leak, input_shape[0], input_shape)
        return super().output_shape(input_shape)


@dataclass(frozen=True, eq=False)
class Readout(Layer):
    """Non-spiking output: accumulates its input current, ``Y_t = Y_{t−1} + I_t``.

    ``mode="sum"`` reports the running sum, ``"mean"`` the running sum divided by the
    number of steps so far (BNTT averages over T; the prediction is the same).
    """

    mode: str = "sum"
    name: str | None = None
    kind = "Readout"

    def __post_init__(self) -> None:
        if self.mode not in ("sum", "mean"):
            raise ValueError(f"Readout.mode: {self.mode!r} is not 'sum' or 'mean'")

    def describe(self) -> str:
        return f"accumulate ({self.mode})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape


def _fmt_param(value) -> str:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        return f"{arr[0]:.6g}"
    return f"[{arr.size} ch: {arr.min():.4g}..{arr.max():.4g}]"


def _param(value: Any, name: str) -> np.ndarray:
    arr = _as_array(value, name)
    if arr.ndim > 1:
        raise ValueError(f"{name}: expected a scalar or a per-channel vector, got shape {arr.shape}")
    return arr


def _check_channels(layer: Layer, attr: str, value: np.ndarray, channels: int, shape: tuple) -> None:
    if value.ndim == 1 and value.shape[0] not in (1, channels):
        raise ValueError(f"{layer.name}.{attr}: {value.shape[0]} values, expected 1 or {channels} "
                         f"(one per channel of input shape {shape})")


def _expect_chw(layer: Layer, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{layer.name}: input shape {shape}, expected (channels, height, width)")
    return shape  # type: ignore[return-value]


# ----------------------------------------------------------------------------- network


@dataclass(frozen=True, eq=False, repr=False)
class Network(_FrozenValue):
    """A feed-forward spiking network: ``input_shape`` and an ordered list of layers.

    Unnamed layers are named ``"<index>.<kind>"`` (e.g. ``"0.Conv2d"``). ``shapes[i]`` is the
    output shape of ``layers[i]``. ``metadata`` holds free-form provenance (importer, source file).

    Two networks are equal when their input shapes and layers are (``metadata`` is provenance and
    does not count); the hash follows the same values, so equal networks hash equal. ``repr``
    is the summary table ``eventsim inspect`` prints, not the weights.
    """

    input_shape: tuple[int, ...]
    layers: Sequence[Layer]
    metadata: dict = field(default_factory=dict)
    shapes: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(s) for s in self.input_shape)
        except TypeError:
            raise ValueError(f"input_shape: expected a tuple of ints, got {self.input_shape!r}") from None
        if not shape or min(shape) < 1:
            raise ValueError(f"input_shape: expected positive sizes, got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        layers = list(self.layers)
        if not layers:
            raise ValueError("Network: no layers")
        named = []
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"layers[{i}]: {type(layer).__name__} is not an eventsim layer")
            if layer.name is None:
                layer = _replace_name(layer, f"{i}.{layer.kind}")
            named.append(layer)
        names = [layer.name for layer in named]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"Network: duplicate layer names {sorted(dup)}")
        shapes = []
        for i, layer in enumerate(named):
            if isinstance(layer, Readout) and i != len(named) - 1:
                raise ValueError(f"{layer.name}: a Readout must be the last layer (found at index {i} of {len(named)})")
            if isinstance(layer, (Add, Branch)):
                if isinstance(layer.source, bool) or not isinstance(layer.source, (int, np.integer)):
                    raise ValueError(f"{layer.name}.source: expected a layer index, got {layer.source!r}")
                if not -1 <= layer.source < i:
                    raise ValueError(f"{layer.name}.source: {layer.source} must index an earlier layer (or -1 for the input)")
            if isinstance(layer, Add):
                other = self.input_shape if layer.source == -1 else shapes[layer.source]
                if tuple(other) != tuple(shape):
                    raise ValueError(f"{layer.name}: adds shape {other} from layer {layer.source} to shape {shape}; they must be equal")
            if isinstance(layer, Branch):
                ended = i - 1
                if i == 0 or not any(isinstance(l, (Add, Branch)) and l.source == ended for l in named[i + 1:]):
                    what = "the input is already there" if i == 0 else (
                        f"the path ending at layer {ended} ({named[ended].name}) would be computed for nothing: "
                        f"no later Add(source={ended}) merges it")
                    raise ValueError(f"{layer.name}: a Branch here is not allowed; {what}")
                shape = self.input_shape if layer.source == -1 else shapes[layer.source]
            placement = getattr(layer, "check_placement", None)   # e.g. neurons.Recurrent
            if placement is not None:
                placement(named, i)
            shape = tuple(layer.output_shape(shape))
            shapes.append(shape)
        object.__setattr__(self, "layers", tuple(named))
        object.__setattr__(self, "shapes", tuple(shapes))

    # ------------------------------------------------------------------ queries
    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[-1]

    @property
    def has_branches(self) -> bool:
        """True if some path starts again from an earlier layer (a :class:`Branch`)."""
        return any(isinstance(layer, Branch) for layer in self.layers)

    @property
    def has_readout(self) -> bool:
        return isinstance(self.layers[-1], Readout)

    def input_shape_of(self, index: int) -> tuple[int, ...]:
        """Shape of what layer ``index`` reads."""
        source = self.input_of(index)
        return self.input_shape if source == -1 else self.shapes[source]

    def input_of(self, index: int) -> int:
        """Index of the layer whose output layer ``index`` reads (``-1``: the network input):
        the layer before it, except for a :class:`Branch` (its ``source``)."""
        layer = self.layers[index]
        return layer.source if isinstance(layer, Branch) else index - 1

    def consumers(self, index: int) -> list[int]:
        """Layers that read the output of layer ``index`` (``-1``: the input), in order: the next
        layer unless it is a :class:`Branch`, and every ``Branch`` from it and ``Add`` of it."""
        nxt = index + 1
        out = {nxt} if nxt < len(self.layers) and not isinstance(self.layers[nxt], Branch) else set()
        out.update(j for j, l in enumerate(self.layers) if isinstance(l, (Add, Branch)) and l.source == index)
        return sorted(out)

    def parameter_count(self, index: int | None = None) -> int:
        """Number of weights and biases (of one layer, or of the whole network)."""
        layers = self.layers if index is None else [self.layers[index]]
        total = 0
        for layer in layers:
            for attr in ("weight", "bias"):
                val = getattr(layer, attr, None)
                if val is not None:
                    total += int(np.size(val))
        return total

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Network) and self.input_shape == other.input_shape
                and len(self.layers) == len(other.layers)
                and all(a == b for a, b in zip(self.layers, other.layers)))

    def __hash__(self) -> int:
        return _cached_hash(self, lambda: hash(("Network", self.input_shape, self.layers)))

    def __repr__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A table of layers, output shapes, configuration and parameter counts (what
        ``eventsim inspect`` prints)."""
        rows = [("#", "layer", "output shape", "parameters", "configuration")]
        rows.append(("", "input", str(self.input_shape), "", ""))
        for i, layer in enumerate(self.layers):
            n = self.parameter_count(i)
            rows.append((str(i), layer.name, str(self.shapes[i]), str(n) if n else "", layer.describe()))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = ["  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] for r in rows]
        lines.insert(1, "-" * max(len(line) for line in lines))
        lines.append(f"total parameters: {self.parameter_count()}")
        neurons = sum(int(np.prod(self.shapes[i])) for i, l in enumerate(self.layers) if isinstance(l, NeuronSpec))
        lines.append(f"spiking neurons: {neurons}")
        if self.metadata:
            lines.append("metadata: " + ", ".join(f"{k}={v}" for k, v in self.metadata.items()))
        return "\n".join(lines)


def _replace_name(layer: Layer, name: str) -> Layer:
    kwargs = {f.name: getattr(layer, f.name) for f in fields(layer) if f.init}
    kwargs["name"] = name
    return type(layer)(**kwargs)
