"""Discretisation conventions: how NIR's continuous-time neurons become eventsim's per-step update.

NIR states every neuron as an ODE (times in seconds; ``R`` a resistance)::

    LIF:  τ·dv/dt = (v_leak − v) + R·I        IF / I:  dv/dt = R·I

and leaves the discretisation to each simulator. eventsim's neurons are ``u ← λ·u + I_step``
with ``I_step`` the weighted sum of the incoming spikes of one step plus the bias of the layer
before. A :class:`Convention` fixes, for a step ``Δt`` (in the unit of ``τ``):

* ``λ = leak(τ, Δt)``, the multiplicative leak per step (and its inverse ``tau(λ, Δt)``);
* ``k = spike_gain(τ, Δt)``: a unit-weight spike raises ``v`` by ``R·k``;
* ``c = const_gain(τ, Δt)``: a constant current ``b`` raises ``v`` by ``R·c·b`` per step.

eventsim's membrane is ``u = v / (R·k)`` (so spikes enter with their weight), which makes the
threshold ``θ_u = θ / (R·k)`` and a layer bias ``b_u = b·c/k`` charge per step. The built-in
conventions (``Δt = dt_us·1e-6`` s, or one step where ``τ`` counts steps):

=========== =================== ============ ============= ========= =========== =================
name        λ                   k (LIF)      c (LIF)       k (IF, I) c (IF, I)   used by
=========== =================== ============ ============= ========= =========== =================
exact       exp(−Δt/τ)          1/τ          1 − λ         1         Δt          the ODE solved exactly,
                                                                                 spikes = unit Diracs
euler       1 − Δt/τ            Δt/τ         Δt/τ          Δt        Δt          forward Euler
snntorch    1 − Δt/τ            Δt/τ         Δt/τ          Δt        Δt          snnTorch, Lava (Δt = 100 µs)
sinabs      exp(−1/τ), τ steps  1            1             1         1           sinabs (``r = 1``)
=========== =================== ============ ============= ========= =========== =================

A convention may also set neuron options the exporter's simulator implies beyond NIR
(``Convention.neuron_options``): ``"sinabs"`` gives every IF and LIF sinabs's ``MultiSpike``
(``multi_spike=True``, ``compare=">="``: ``⌊v/θ⌋`` spikes per step), a subtract reset (sinabs's
``from_nir`` ignores ``v_reset``; an explicit ``reset=`` wins) and, for IF, the floor
``v_min = −θ`` (``IAFSqueeze(min_v_mem=−v_threshold)``), as ``sinabs.nir.from_nir`` builds them.

With snnTorch's export ``τ = Δt/(1 − β)``, ``r = τ/Δt``: ``λ = β`` and ``R·k = 1``, so its Leaky
neurons come back unchanged. :func:`register_convention` adds more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Convention", "CONVENTIONS", "register_convention", "get_convention", "per_channel",
           "compress", "full"]

Fn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Convention:
    """One way of discretising NIR's neuron ODEs (see the module docstring for the equations).

    ``tau_unit`` is ``"s"`` (``Δt = dt_us·1e-6``) or ``"steps"`` (``Δt = 1``; ``τ`` and
    ``Delay.delay`` count steps). ``continuous`` conventions need no ``Δt`` for spiking input and
    map a layer-wide ``τ`` onto ``LIF(tau_s=τ)``, which the asynchronous engine runs exactly.
    """

    name: str
    description: str
    leak: Fn             # (tau, dt) -> λ
    tau: Fn              # (λ, dt) -> τ, inverse of leak
    spike_gain: Fn       # (tau, dt) -> k
    const_gain: Fn       # (tau, dt) -> c
    if_spike_gain: Fn    # (dt) -> k for IF and I
    if_const_gain: Fn    # (dt) -> c for IF and I
    tau_unit: str = "s"
    continuous: bool = False
    default_dt_us: float | None = None
    unit_bias: bool = False  # c == k: a bias is charge per step, whatever the population
    #: (NIR node type, θ in eventsim units, reset option) -> neuron fields the exporter's own
    #: simulator implies beyond NIR (sinabs: several spikes per step, a floor, a subtract reset)
    neuron_options: Callable[..., dict] | None = None

    def step(self, dt_us: float | None) -> float | None:
        """``Δt`` in the unit of ``τ``: seconds, or 1 for step-counting conventions."""
        if self.tau_unit == "steps":
            return 1.0
        return None if dt_us is None else float(dt_us) * 1e-6


def _exp_leak(tau, dt):
    return np.exp(-dt / tau)


def _exp_tau(lam, dt):
    with np.errstate(divide="ignore"):
        return -dt / np.log(lam)


def _euler_leak(tau, dt):
    return 1.0 - dt / tau


def _euler_tau(lam, dt):
    with np.errstate(divide="ignore"):
        return dt / (1.0 - lam)


CONVENTIONS: dict[str, Convention] = {}


def register_convention(conv: Convention) -> Convention:
    """Add (or replace) a convention under ``conv.name``."""
    CONVENTIONS[conv.name] = conv
    return conv


register_convention(Convention(
    "exact", "the ODE integrated exactly; a spike is a unit Dirac impulse (async-engine semantics)",
    leak=_exp_leak, tau=_exp_tau,
    spike_gain=lambda tau, dt: 1.0 / tau, const_gain=lambda tau, dt: -np.expm1(-dt / tau),
    if_spike_gain=lambda dt: 1.0, if_const_gain=lambda dt: dt, continuous=True))
_EULER = dict(leak=_euler_leak, tau=_euler_tau, spike_gain=lambda tau, dt: dt / tau,
              const_gain=lambda tau, dt: dt / tau, if_spike_gain=lambda dt: dt,
              if_const_gain=lambda dt: dt, unit_bias=True)
register_convention(Convention(
    "euler", "forward Euler with the input held over the step (pass dt_us)", **_EULER))
register_convention(Convention(
    "snntorch", "forward Euler at snnTorch's/Lava's export step dt = 1e-4 s", **_EULER,
    default_dt_us=100.0))
def _sinabs_neurons(node_type: str, theta, reset: str) -> dict:
    """What sinabs's ``from_nir`` builds (sinabs 3.x): ``IAFSqueeze(spike_threshold=θ,
    min_v_mem=−θ)`` for IF, ``LIFSqueeze(min_v_mem=None, norm_input=False)`` for LIF, both with
    the defaults ``spike_fn=MultiSpike`` (``(v > 0)·trunc(v/θ)`` spikes, i.e. ``⌊v/θ⌋`` with
    ``>=``) and ``reset_fn=MembraneSubtract()``, whatever the file's ``v_reset``."""
    options = {"multi_spike": True, "compare": ">="}
    if reset == "auto":
        options["reset"] = "subtract"
    if node_type == "IF":
        options["v_min"] = -np.asarray(theta, dtype=np.float64)
    return options


register_convention(Convention(
    "sinabs", "tau counted in steps, λ = exp(−1/τ), input not scaled by τ; neurons as sinabs's from_nir "
    "builds them: MultiSpike (⌊v/θ⌋ spikes per step), subtract reset, IF floor v_min = −θ",
    leak=lambda tau, dt: np.exp(-1.0 / tau), tau=lambda lam, dt: -1.0 / np.log(lam),
    spike_gain=lambda tau, dt: np.ones_like(tau), const_gain=lambda tau, dt: np.ones_like(tau),
    if_spike_gain=lambda dt: 1.0, if_const_gain=lambda dt: 1.0, tau_unit="steps", unit_bias=True,
    neuron_options=_sinabs_neurons))


def get_convention(name: str | Convention) -> Convention:
    if isinstance(name, Convention):
        return name
    conv = CONVENTIONS.get(name)
    if conv is None:
        raise ValueError(f"convention={name!r}: choose one of {sorted(CONVENTIONS)}")
    return conv


# ----------------------------------------------------------------------------- parameter shapes


def per_channel(value, shape: tuple[int, ...], where: str, alt_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Reduce a NIR per-neuron parameter to eventsim's per-channel form.

    ``value`` may be a single number or an array of the population ``shape`` (or ``alt_shape``,
    the NIR spelling of a lifted 1-D convolution). Channels are the first axis; every neuron of a
    channel must share the value. Returns a 0-d array when all channels agree, else ``(C,)``.
    """
    arr = as_numbers(value, where)
    if arr.size == 1:
        return arr.reshape(())
    if arr.shape != tuple(shape) and (alt_shape is None or arr.shape != tuple(alt_shape)):
        raise ValueError(f"{where}: shape {arr.shape}, expected a single value or the population "
                         f"shape {tuple(alt_shape or shape)}")
    rows = arr.reshape(shape[0], -1)
    bad = np.flatnonzero(np.any(rows != rows[:, :1], axis=1))
    if bad.size:
        raise ValueError(f"{where}: values differ within channel {int(bad[0])}; eventsim's neuron "
                         "parameters are per channel (IR addition needed: per-neuron parameters)")
    return compress(rows[:, 0])


def as_numbers(value, where: str) -> np.ndarray:
    """``value`` as a finite float64 array; ValueError naming ``where`` for text, complex or
    structured data (which NumPy would otherwise parse or truncate silently), NaN or infinity."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected numbers, got {type(value).__name__}") from None
    if raw.dtype.kind not in "biuf":
        what = "text" if raw.dtype.kind in "SUO" else f"dtype {raw.dtype}"
        raise ValueError(f"{where}: expected numbers, got {what}")
    arr = np.array(raw, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: contains NaN or infinite values")
    return arr


def compress(values: np.ndarray) -> np.ndarray:
    """A 0-d array if all entries are equal, else the array itself."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim and values.size and np.all(values == values.flat[0]):
        return values.reshape(-1)[:1].reshape(())
    return values


def full(value, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast a scalar or per-channel value to a population ``shape`` (channels first)."""
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.shape == tuple(shape):
        return arr.copy()
    if arr.size == 1:
        return np.full(shape, float(arr[0]))
    return np.ascontiguousarray(np.broadcast_to(arr.reshape((-1,) + (1,) * (len(shape) - 1)), shape))
