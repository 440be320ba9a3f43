"""IR additions for the neuron models NIR exporters use beyond IF/LIF: a current-based synapse
(:class:`CubaLIF`), a stateless threshold (:class:`Threshold`), leaky readouts (:class:`LI`,
:class:`CubaLI`) and a one-step-delayed recurrent projection (:class:`Recurrent`).

Per step (stepped engine, and the asynchronous engine's batch mode), with ``I`` the input current
of the step (weighted spikes plus biases):

* :class:`CubaLIF`: ``i ← α·i + g·I``; ``v ← λ·v + i``; spike and reset on ``v`` as
  :class:`~eventsim.network.NeuronSpec` (the synaptic current ``i`` is not reset). ``g = 1`` when
  the synapse is given per step (``syn_leak=α``, snnTorch's ``Synaptic``, Lava's CUBA), and
  ``g = 1 − α`` when it is given as ``tau_syn_s`` (``α = e^{−Δt/τ_syn}``), so that a unit input
  delivers a total charge of 1 to ``v`` (before the membrane leak), as in continuous time.
* :class:`Threshold`: ``s = I > θ``, no state (``λ = 0``, reset to 0).
* :class:`LI`: ``Y ← λ·Y + I``; :class:`CubaLI`: ``i ← α·i + g·I``; ``Y ← λ·Y + i``.
* :class:`Recurrent` after a population: the population's spikes of step ``k``, weighted by
  ``weight`` (plus ``bias`` every step), are added to its input current at step ``k + 1``.

In continuous time (asynchronous engine, ``simultaneous="none"``) with ``τ`` the membrane time
constant and ``τ_syn`` the synaptic one, both in µs::

    di/dt = −i/τ_syn + (q/τ_syn)·I(t)         q = 1 (tau_syn_s), 1/(1 − α) (syn_leak)
    dv/dt = −v/τ + i

so an input spike of weight ``w`` adds ``q·w/τ_syn`` to ``i`` and, without membrane leak, a total
``q·w`` to ``v``: the per-step model's total charge. ``v`` between inputs is a sum of two
exponentials (plus a constant under a constant drive); its next threshold crossing is found by a
bracketed search (:mod:`eventsim.kernels.async_cuba`). A recurrent projection delivers its spikes
``dt_us`` later.

Example
-------
>>> import numpy as np, eventsim as es
>>> net = es.Network((1,), [es.Linear(np.array([[1.0]])), es.CubaLIF(syn_leak=0.5, leak=0.9, threshold=1.5),
...                         es.Linear(np.array([[1.0]])), es.LI(leak=0.5)])
>>> es.simulate(net, np.array([[1], [0], [0], [0]]), dt_us=1000, record="spikes").rasters["1.CubaLIF"].ravel().tolist()
[0, 0, 1, 0]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .network import LIF, Layer, NeuronSpec, Readout, _as_array, _check_channels, _fmt_param, _param

__all__ = ["CubaLIF", "Threshold", "LI", "CubaLI", "Recurrent", "synapse_per_step", "readout_leak"]


def _leak_or_tau(layer, label: str, leak_attr: str, tau_attr: str, allow_one: bool = True) -> None:
    leak, tau = getattr(layer, leak_attr), getattr(layer, tau_attr)
    if (leak is None) == (tau is None):
        raise ValueError(f"{label}: give exactly one of {leak_attr} (per step) or {tau_attr} (seconds)")
    if leak is not None:
        arr = _param(leak, f"{label}.{leak_attr}")
        hi_ok = (arr <= 1) if allow_one else (arr < 1)
        if np.any(arr <= 0) or not np.all(hi_ok):
            bound = "(0, 1]" if allow_one else "(0, 1)"
            raise ValueError(f"{label}.{leak_attr}: must lie in {bound}, got {arr}")
        object.__setattr__(layer, leak_attr, arr)
    else:
        try:
            value = float(tau)
        except (TypeError, ValueError):
            raise ValueError(f"{label}.{tau_attr}: expected a number of seconds, got {tau!r}") from None
        if not (value > 0 and np.isfinite(value)):
            raise ValueError(f"{label}.{tau_attr}: must be a positive number of seconds, got {tau}")
        object.__setattr__(layer, tau_attr, value)


def _per_step(leak, tau_s, dt_us, name: str, what: str) -> np.ndarray:
    if leak is not None:
        return np.atleast_1d(leak)
    if dt_us is None:
        raise ValueError(f"{name}: {what}={tau_s} needs a step length; pass dt_us=")
    return np.atleast_1d(np.exp(-dt_us * 1e-6 / tau_s))


def synapse_per_step(layer, dt_us: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(α, g)`` of a current-based synapse: ``i ← α·i + g·I`` per step."""
    alpha = _per_step(layer.syn_leak, layer.tau_syn_s, dt_us, layer.name, "tau_syn_s")
    gain = np.ones_like(alpha) if layer.syn_leak is not None else 1.0 - alpha
    return alpha, gain


def synapse_continuous(layer, dt_us: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(τ_syn in µs, q)``: continuous time constant and total charge per unit input."""
    if layer.tau_syn_s is not None:
        return np.atleast_1d(layer.tau_syn_s * 1e6), np.ones(1)
    if dt_us is None:
        raise ValueError(f"{layer.name}: a per-step synapse (syn_leak) needs a step length to become a "
                         "time constant (τ_syn = −Δt / ln α); pass dt_us=, or give tau_syn_s=")
    alpha = np.atleast_1d(layer.syn_leak)
    return -dt_us / np.log(alpha), 1.0 / (1.0 - alpha)


def readout_leak(layer: Readout, dt_us: float | None) -> np.ndarray:
    """Leak λ per step of a readout (1 for a plain :class:`~eventsim.network.Readout`)."""
    if not isinstance(layer, LI):
        return np.ones(1)
    return _per_step(layer.leak, layer.tau_s, dt_us, layer.name, "tau_s")


@dataclass(frozen=True, eq=False)
class CubaLIF(LIF):
    """Current-based LIF (NIR ``CubaLIF``, snnTorch ``Synaptic``): a synaptic current with its own
    leak feeds a leaky membrane. Give the synapse as ``syn_leak`` α in (0, 1) per step or
    ``tau_syn_s``, and the membrane as :class:`~eventsim.network.LIF` (``leak`` or ``tau_s``).
    See the module docstring for the equations in both engines."""

    syn_leak: Any = None
    tau_syn_s: float | None = None
    kind = "CubaLIF"

    def __post_init__(self) -> None:
        super().__post_init__()
        label = self.name or "CubaLIF"
        _leak_or_tau(self, label, "syn_leak", "tau_syn_s", allow_one=False)
        if self.multi_spike or self.v_min is not None:
            raise ValueError(f"{label}: multi_spike and v_min (sinabs's IAF options) are not supported "
                             "with a current-based synapse")

    def _describe_model(self) -> list[str]:
        return super()._describe_model() + _synapse_text(self)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.syn_leak is not None:
            _check_channels(self, "syn_leak", self.syn_leak, input_shape[0], input_shape)
        return super().output_shape(input_shape)


@dataclass(frozen=True, eq=False)
class Threshold(NeuronSpec):
    """Stateless threshold (NIR ``Threshold``): ``s = I > θ`` each step, ``v = I`` (λ = 0, reset 0).

    It has no continuous-time form for spike (Dirac) inputs: the asynchronous engine runs it in
    ``simultaneous="batch"`` mode only."""

    reset: str = "zero"
    kind = "Threshold"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reset != "zero" or self.order != "integrate-fire":
            raise ValueError(f"{self.name or 'Threshold'}: a stateless threshold has reset='zero' and "
                             "order='integrate-fire'")

    def leak_per_step(self, dt_us: float | None) -> np.ndarray:
        return np.zeros(1)


@dataclass(frozen=True, eq=False)
class LI(Readout):
    """Leaky, non-spiking readout (NIR ``LI``): ``Y ← λ·Y + I`` per step, ``λ`` given as ``leak``
    or from ``tau_s`` (``λ = e^{−Δt/τ}``); in continuous time ``dY/dt = −Y/τ`` between inputs,
    each input adding its weight. ``leak`` may be per output (1-D output) or per channel."""

    leak: Any = None
    tau_s: float | None = None
    kind = "LI"

    def __post_init__(self) -> None:
        super().__post_init__()
        label = self.name or self.kind
        if self.mode != "sum":
            raise ValueError(f"{label}.mode: a leaky readout reports its state; mode must be 'sum'")
        _leak_or_tau(self, label, "leak", "tau_s")

    def describe(self) -> str:
        text = f"leaky readout λ={_fmt_param(self.leak)}" if self.leak is not None else f"leaky readout τ={self.tau_s:g}s"
        return " ".join([text] + _synapse_text(self))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.leak is not None:
            _check_channels(self, "leak", self.leak, input_shape[0], input_shape)
        return super().output_shape(input_shape)


@dataclass(frozen=True, eq=False)
class CubaLI(LI):
    """Current-based leaky readout (NIR ``CubaLI``): ``i ← α·i + g·I``; ``Y ← λ·Y + i`` per step
    (``g`` as :class:`CubaLIF`); in continuous time the equations of the module docstring."""

    syn_leak: Any = None
    tau_syn_s: float | None = None
    kind = "CubaLI"

    def __post_init__(self) -> None:
        super().__post_init__()
        _leak_or_tau(self, self.name or self.kind, "syn_leak", "tau_syn_s", allow_one=False)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.syn_leak is not None:
            _check_channels(self, "syn_leak", self.syn_leak, input_shape[0], input_shape)
        return super().output_shape(input_shape)


@dataclass(frozen=True, eq=False)
class Recurrent(Layer):
    """Recurrent projection of the population right before it onto itself, one step late:
    ``I_{k+1} += weight · s_k (+ bias)``. Placed after a 1-D population (snnTorch ``RLeaky`` /
    ``RSynaptic``; NIR's cycle ``neuron → Affine → neuron``); its output is the population's spikes
    unchanged, so the next layer reads them as usual. Feedback spikes count as synops of this layer
    when they are delivered (a spike of the last step is never delivered). In continuous time the
    feedback arrives ``delay_us`` later (default: the run's ``dt_us``).
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    delay_us: float | None = None
    name: str | None = None
    kind = "Recurrent"
    synaptic = True

    def __post_init__(self) -> None:
        label = self.name or "Recurrent"
        w = _as_array(self.weight, f"{label}.weight", ndim=2)
        if w.shape[0] != w.shape[1]:
            raise ValueError(f"{label}.weight: shape {w.shape}; a recurrent weight is square (n, n)")
        object.__setattr__(self, "weight", w)
        if self.bias is not None:
            b = _as_array(self.bias, f"{label}.bias", ndim=1)
            if b.shape != (w.shape[0],):
                raise ValueError(f"{label}.bias: shape {b.shape}, expected ({w.shape[0]},)")
            object.__setattr__(self, "bias", b)
        if self.delay_us is not None and not (float(self.delay_us) > 0 and np.isfinite(float(self.delay_us))):
            raise ValueError(f"{label}.delay_us: must be a positive number of µs (or None: one step), "
                             f"got {self.delay_us!r}")

    def describe(self) -> str:
        return (f"feedback {self.weight.shape[1]}->{self.weight.shape[0]} one step later"
                + (" +bias" if self.bias is not None else ""))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 1 or input_shape[0] != self.weight.shape[0]:
            raise ValueError(f"{self.name}: the population before it has shape {input_shape}; a recurrent "
                             f"weight {self.weight.shape} needs a 1-D population of {self.weight.shape[0]}")
        return input_shape

    def check_placement(self, layers, index: int) -> None:
        """Called by :class:`~eventsim.network.Network`: the layer before must be a population."""
        if index == 0 or not isinstance(layers[index - 1], NeuronSpec):
            raise ValueError(f"{self.name}: a Recurrent layer must directly follow a neuron population")
        if isinstance(layers[index - 1], Threshold):
            raise ValueError(f"{self.name}: a Threshold population has no state to feed back into")


def _synapse_text(layer) -> list[str]:
    """The current-based synapse of a :class:`CubaLIF` / :class:`CubaLI`, if any."""
    if getattr(layer, "syn_leak", None) is not None:
        return [f"synapse α={_fmt_param(layer.syn_leak)}"]
    if getattr(layer, "tau_syn_s", None) is not None:
        return [f"synapse τ={layer.tau_syn_s:g}s"]
    return []
