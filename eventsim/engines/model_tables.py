"""Per-model constant tables of the asynchronous engine for the models of :mod:`eventsim.neurons`:
the rows ``C_SLEAK … C_QSYN`` of a current-based population and the ``YC_*`` rows of a leaky readout
(see :mod:`eventsim.kernels.async_layout`)."""
from __future__ import annotations

import numpy as np

from ..network import Network, NeuronSpec, Readout
from ..neurons import CubaLI, CubaLIF, Threshold, synapse_continuous, synapse_per_step

__all__ = ["synapse_rows", "readout_rows"]


def _f64(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


def synapse_rows(spec: NeuronSpec, channels: int, dt_us: float | None, batch: bool):
    """Rows ``C_SLEAK … C_QSYN`` of a :class:`~eventsim.neurons.CubaLIF` (None for other models);
    refuses what the current-based model does not run."""
    if isinstance(spec, Threshold) and not batch:
        raise ValueError(f"{spec.name}: a stateless Threshold has no continuous-time form for spike inputs; "
                         "use simultaneous='batch' (with dt_us=) or engine='stepped'")
    if not isinstance(spec, CubaLIF):
        return None
    if spec.refractory_us or spec.step_gain is not None or spec.order != "integrate-fire":
        raise ValueError(f"{spec.name}: engine='async' runs a CubaLIF without refractory period, per-step "
                         "gain or order='fire-integrate'; use engine='stepped'")
    def per_channel(a):
        return np.broadcast_to(np.asarray(a, np.float64), (channels,))
    rows = np.zeros((5, channels))
    if batch or dt_us is not None:
        alpha, gain = synapse_per_step(spec, dt_us)
        rows[0], rows[1] = per_channel(alpha), per_channel(gain)
    if not batch:
        tau_syn, q = synapse_continuous(spec, dt_us)
        rows[2], rows[3], rows[4] = 1.0 / per_channel(tau_syn), per_channel(q) / per_channel(tau_syn), per_channel(q)
    return rows


def readout_rows(network: Network, dt_us: float | None, batch: bool) -> np.ndarray:
    """``net.nf`` rows ``YC_LEAK, YC_ITAU`` of a leaky readout (one value per output)."""
    if not network.has_readout:
        return _f64([])
    last, shape = network.layers[-1], network.output_shape
    if type(last) is Readout:
        return _f64([])
    per_out = lambda a: np.broadcast_to(np.asarray(a, np.float64).reshape(  # noqa: E731
        (-1,) + (1,) * (len(shape) - 1)), shape).ravel()
    if last.tau_s is not None:
        lam = per_out(np.exp(-dt_us * 1e-6 / last.tau_s)) if dt_us else per_out(np.ones(1))
        itau = per_out(1e-6 / last.tau_s)
    else:
        lam = per_out(last.leak)
        if not batch and dt_us is None:
            raise ValueError(f"{last.name}: a per-step leak needs a step length to become a time constant "
                             "(τ = −Δt / ln λ); pass dt_us=, or give the LI as tau_s=")
        with np.errstate(divide="ignore"):
            itau = np.where(lam == 1.0, 0.0, -np.log(lam) / (dt_us or 1.0))
    rows = [lam, itau] + [np.zeros_like(lam)] * 5
    if isinstance(last, CubaLI):   # α, g per step; 1/τ_syn, q/τ_syn, q (see eventsim.neurons)
        if batch or dt_us is not None:
            rows[2:4] = [per_out(a) for a in synapse_per_step(last, dt_us)]
        if not batch:
            tau_syn, q = synapse_continuous(last, dt_us)
            rows[4:7] = [per_out(1.0 / tau_syn), per_out(q / tau_syn), per_out(q)]
    return _f64(np.concatenate(rows))
