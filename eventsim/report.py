"""Plain-text tables for networks and results (figures live in :mod:`eventsim.figures`)."""
from __future__ import annotations

import numpy as np

from .network import Add, Branch, Conv2d, LIF, Linear, Network, NeuronSpec, Readout, _Pool2d


def _fmt_param(value) -> str:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        return f"{arr[0]:.6g}"
    return f"[{arr.size} ch: {arr.min():.4g}..{arr.max():.4g}]"


def describe_layer(layer) -> str:
    """One-line description of a layer's configuration."""
    if isinstance(layer, Conv2d):
        out, cin_g, kh, kw = layer.weight.shape
        text = f"{layer.in_channels}->{out} k={kh}x{kw} s={layer.stride[0]}x{layer.stride[1]} p={layer.padding[0]}x{layer.padding[1]}"
        if layer.groups > 1:
            text += f" g={layer.groups}"
        return text + (" +bias" if layer.bias is not None else "")
    if isinstance(layer, Linear):
        return f"{layer.weight.shape[1]}->{layer.weight.shape[0]}" + (" +bias" if layer.bias is not None else "")
    if isinstance(layer, _Pool2d):
        return f"k={layer.kernel_size[0]}x{layer.kernel_size[1]} s={layer.stride[0]}x{layer.stride[1]}"
    if isinstance(layer, Add):
        return f"+ layer {layer.source}" if layer.source >= 0 else "+ input"
    if isinstance(layer, Branch):
        return f"from layer {layer.source}" if layer.source >= 0 else "from input"
    if isinstance(layer, NeuronSpec):
        parts = [f"θ={_fmt_param(layer.threshold)}", f"v{layer.compare}θ", f"reset={layer.reset}"]
        if isinstance(layer, LIF):
            parts.append(f"λ={_fmt_param(layer.leak)}" if layer.leak is not None else f"τ={layer.tau_s:g}s")
        parts += _synapse_text(layer)
        if np.any(np.asarray(layer.v_init) != 0):
            parts.append(f"v0={_fmt_param(layer.v_init)}")
        if layer.order != "integrate-fire":
            parts.append(layer.order)
        if layer.spike_amplitude != 1.0:
            parts.append(f"amp={layer.spike_amplitude if isinstance(layer.spike_amplitude, str) else _fmt_param(layer.spike_amplitude)}")
        if layer.step_count is not None:
            parts.append(f"per-step gain/bias T={layer.step_count}")
        if layer.refractory_us:
            parts.append(f"refractory={layer.refractory_us:g}µs")
        return " ".join(parts)
    if isinstance(layer, Readout):
        leak = getattr(layer, "leak", None), getattr(layer, "tau_s", None)
        if leak != (None, None):   # neurons.LI / CubaLI
            text = f"leaky readout λ={_fmt_param(leak[0])}" if leak[0] is not None else f"leaky readout τ={leak[1]:g}s"
            return " ".join([text] + _synapse_text(layer))
        return f"accumulate ({layer.mode})"
    if layer.kind == "Recurrent":
        return f"feedback {layer.weight.shape[1]}->{layer.weight.shape[0]} one step later" + (
            " +bias" if layer.bias is not None else "")
    return ""


def _synapse_text(layer) -> list[str]:
    """The current-based synapse of a neurons.CubaLIF / CubaLI, if any."""
    if getattr(layer, "syn_leak", None) is not None:
        return [f"synapse α={_fmt_param(layer.syn_leak)}"]
    if getattr(layer, "tau_syn_s", None) is not None:
        return [f"synapse τ={layer.tau_syn_s:g}s"]
    return []


def network_table(network: Network) -> str:
    """Layers, output shapes, configuration and parameter counts as an aligned text table."""
    rows = [("#", "layer", "output shape", "parameters", "configuration")]
    rows.append(("", "input", str(network.input_shape), "", ""))
    for i, layer in enumerate(network.layers):
        n = network.parameter_count(i)
        rows.append((str(i), layer.name, str(network.shapes[i]), str(n) if n else "", describe_layer(layer)))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = ["  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    lines.append(f"total parameters: {network.parameter_count()}")
    neurons = sum(int(np.prod(network.shapes[i])) for i, l in enumerate(network.layers) if isinstance(l, NeuronSpec))
    lines.append(f"spiking neurons: {neurons}")
    if network.metadata:
        lines.append("metadata: " + ", ".join(f"{k}={v}" for k, v in network.metadata.items()))
    return "\n".join(lines)
