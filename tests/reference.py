"""Slow, obviously-correct references for the stepped engine, written without eventsim's kernels.

* :func:`conv_matrix` materialises a Conv2d as a ``scipy.sparse`` matrix straight from the
  definition ``out[co, oy, ox] = Σ w[co, ci, ky, kx] · x[ci, oy·s + ky − p, ox·s + kx − p]``,
  plus a 0/1 matrix of which synapses *exist* (so zero weights can be told apart from padding).
* :func:`dense_forward` runs a network step by step with NumPy only: dense matrices for weighted
  layers, explicit window loops for pools, and the neuron equations written out again.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

import eventsim as es


def conv_matrix(layer: es.Conv2d, in_shape):
    """(weights, exists) sparse matrices of shape (out_size, in_size) for a Conv2d."""
    c_in, h, w = in_shape
    c_out, cin_g, kh, kw = layer.weight.shape
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cout_g = c_out // layer.groups
    rows, cols, vals = [], [], []
    for co in range(c_out):
        g = co // cout_g
        for oy in range(oh):
            for ox in range(ow):
                r = (co * oh + oy) * ow + ox
                for cl in range(cin_g):
                    ci = g * cin_g + cl
                    for ky in range(kh):
                        iy = oy * sh + ky - ph
                        if not 0 <= iy < h:
                            continue
                        for kx in range(kw):
                            ix = ox * sw + kx - pw
                            if not 0 <= ix < w:
                                continue
                            rows.append(r)
                            cols.append((ci * h + iy) * w + ix)
                            vals.append(layer.weight[co, cl, ky, kx])
    shape = (c_out * oh * ow, c_in * h * w)
    weights = sp.csr_matrix((vals, (rows, cols)), shape=shape)
    exists = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    return weights, exists


def linear_matrix(layer: es.Linear):
    n_out, n_in = layer.weight.shape
    return sp.csr_matrix(layer.weight), sp.csr_matrix(np.ones((n_out, n_in)))


def out_degree_from_matrix(weights, exists, convention: str) -> np.ndarray:
    """Out-degree of each input (column) under a synop convention."""
    if convention == "all":
        return np.asarray(exists.sum(axis=0)).ravel().astype(np.int64)
    return (weights.toarray() != 0).sum(axis=0).astype(np.int64)


def pool_reference(x, n, layer, kind):
    c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((c, oh, ow))
    out_n = None if n is None else np.zeros((c, oh, ow), np.int64)
    for ch in range(c):
        for oy in range(oh):
            for ox in range(ow):
                ys = [oy * sh + ky - ph for ky in range(kh) if 0 <= oy * sh + ky - ph < h]
                xs = [ox * sw + kx - pw for kx in range(kw) if 0 <= ox * sw + kx - pw < w]
                win = x[ch][np.ix_(ys, xs)]
                if kind == "SumPool2d":
                    out[ch, oy, ox] = win.sum()
                elif kind == "AvgPool2d":
                    out[ch, oy, ox] = win.sum() / (kh * kw)
                else:
                    out[ch, oy, ox] = win.max()
                if n is not None:
                    cnt = n[ch][np.ix_(ys, xs)].sum()
                    out_n[ch, oy, ox] = min(cnt, 1) if kind == "MaxPool2d" else cnt
    return out, out_n


def _per_channel(value, channels):
    return np.broadcast_to(np.atleast_1d(np.asarray(value, dtype=float)), (channels,)).copy()


def dense_forward(net: es.Network, frames: np.ndarray, is_events: bool, convention: str = "all",
                  dt_us=None):
    """Reference run. ``frames``: (T, *input_shape). Returns dict of rasters, counts and logits."""
    T = frames.shape[0]
    L = len(net.layers)
    mats, state = {}, {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, es.Conv2d):
            mats[i] = conv_matrix(layer, net.input_shape_of(i))
        elif isinstance(layer, es.Linear):
            mats[i] = linear_matrix(layer)
        elif isinstance(layer, es.NeuronSpec):
            c = net.input_shape_of(i)[0]
            size = int(np.prod(net.shapes[i]))
            v = np.repeat(_per_channel(layer.v_init, c), size // c)
            state[i] = v
    spikes = np.zeros((T, L), np.int64)
    synops = np.zeros((T, L), np.int64)
    macs = np.zeros((T, L), np.int64)
    rasters = {net.layers[i].name: np.zeros((T,) + net.shapes[i], np.int64) for i in state}
    y = np.zeros(int(np.prod(net.output_shape)))
    logits = np.zeros((T, y.size))
    for k in range(T):
        x = frames[k].astype(float)
        n = frames[k].astype(np.int64) if is_events else None
        outs = []
        for i, layer in enumerate(net.layers):
            shape = net.shapes[i]
            if i in mats:
                weights, exists = mats[i]
                deg = out_degree_from_matrix(weights, exists, convention)
                cur = weights @ x.ravel()
                if layer.bias is not None:
                    cur = cur + np.repeat(layer.bias, cur.size // layer.bias.size)
                if n is not None:
                    synops[k, i] = int((n.ravel() * deg).sum())
                else:
                    macs[k, i] = int(deg.sum())
                x, n = cur.reshape(shape), None
            elif layer.kind in ("SumPool2d", "AvgPool2d", "MaxPool2d"):
                x, n = pool_reference(x, n, layer, layer.kind)
            elif isinstance(layer, es.Flatten):
                x = x.reshape(shape)
                n = None if n is None else n.reshape(shape)
            elif isinstance(layer, es.Branch):
                if layer.source == -1:
                    x = frames[k].astype(float)
                    n = frames[k].astype(np.int64) if is_events else None
                else:
                    x, n = outs[layer.source]
            elif isinstance(layer, es.Add):
                if layer.source == -1:
                    sx = frames[k].astype(float)
                    sn = frames[k].astype(np.int64) if is_events else None
                else:
                    sx, sn = outs[layer.source]
                x = x + sx
                n = n + sn if (n is not None and sn is not None) else None
            elif isinstance(layer, es.NeuronSpec):
                c = shape[0]
                per = int(np.prod(shape)) // c
                lam = np.repeat(_per_channel(layer.leak_per_step(dt_us), c), per)
                th = np.repeat(_per_channel(layer.threshold, c), per)
                amp = th if layer.spike_amplitude == "threshold" else np.repeat(_per_channel(layer.spike_amplitude, c), per)
                cur = x.ravel().astype(float)
                if layer.step_gain is not None:
                    cur = cur * np.repeat(_per_channel(layer.step_gain[k], c), per)
                if layer.step_bias is not None:
                    cur = cur + np.repeat(_per_channel(layer.step_bias[k], c), per)
                v = state[i]
                fire = (lambda u: u >= th) if layer.compare == ">=" else (lambda u: u > th)
                if layer.order == "integrate-fire":
                    u = lam * v + cur
                    s = fire(u)
                    u = np.where(s, 0.0 if layer.reset == "zero" else u - th, u)
                else:
                    s = fire(v)
                    if layer.reset == "zero":
                        u = np.where(s, cur, lam * v + cur)
                    else:
                        u = np.where(s, lam * v + cur - th, lam * v + cur)
                state[i] = u
                spikes[k, i] = int(s.sum())
                rasters[layer.name][k] = s.reshape(shape)
                x, n = np.where(s, amp, 0.0).reshape(shape), s.astype(np.int64).reshape(shape)
            elif isinstance(layer, es.Readout):
                y = y + x.ravel()
                logits[k] = y / (k + 1) if layer.mode == "mean" else y
                x, n = y.reshape(shape), None
            outs.append((x, n))
    return {"spikes": spikes, "synops": synops, "macs": macs, "rasters": rasters, "logits": logits}


def neuron_model_forward(net: es.Network, frames: np.ndarray, dt_us: float):
    """Plain-NumPy reference for the models of :mod:`eventsim.neurons` (flat networks: Linear,
    Flatten, IF/LIF/CubaLIF/Threshold, Recurrent, Readout/LI/CubaLI), written from their docstrings:
    ``i ← α·i + g·I``; ``v ← λ·v + i``; spike ``v > θ``; reset; a Recurrent adds ``W·s_{k−1} + b``
    at step ``k``. Returns ``(rasters by layer index, readout per step, synops per step and layer)``."""
    T, L = frames.shape[0], len(net.layers)
    state, syn, fb = {}, {}, {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, es.NeuronSpec):
            state[i] = np.zeros(int(np.prod(net.shapes[i]))) + np.asarray(layer.v_init, float)
            syn[i] = np.zeros_like(state[i])
        if isinstance(layer, es.Recurrent):
            fb[i] = np.zeros(net.shapes[i]), np.zeros(net.shapes[i])
    rasters = {i: np.zeros((T,) + net.shapes[i], np.int64) for i in state}
    out = np.zeros((T, int(np.prod(net.output_shape)))) if net.has_readout else None
    synops = np.zeros((T, L), np.int64)
    y, y_syn = None, None
    for k in range(T):
        x = frames[k].astype(float).ravel()
        for i, layer in enumerate(net.layers):
            if isinstance(layer, es.Linear):
                synops[k, i] = int(x.sum()) * layer.weight.shape[0]   # unit events, "all" synapses
                x = layer.weight @ x + (0 if layer.bias is None else layer.bias)
            elif isinstance(layer, es.Flatten):
                x = x.ravel()
            elif isinstance(layer, es.NeuronSpec):
                cur = x.copy()
                if isinstance(net.layers[i + 1] if i + 1 < L else None, es.Recurrent):
                    w = net.layers[i + 1].weight
                    prev = fb[i + 1][1]
                    cur = cur + w @ prev + (0 if net.layers[i + 1].bias is None else net.layers[i + 1].bias)
                    synops[k, i + 1] = int(prev.sum()) * w.shape[0]
                theta = float(np.asarray(layer.threshold).ravel()[0])
                if isinstance(layer, es.Threshold):
                    lam = 0.0
                elif isinstance(layer, es.LIF):
                    lam = float(np.ravel(layer.leak)[0]) if layer.leak is not None else np.exp(-dt_us * 1e-6 / layer.tau_s)
                else:
                    lam = 1.0
                if isinstance(layer, es.CubaLIF):
                    if layer.syn_leak is not None:
                        a, g = float(np.ravel(layer.syn_leak)[0]), 1.0
                    else:
                        a = np.exp(-dt_us * 1e-6 / layer.tau_syn_s)
                        g = 1 - a
                    syn[i] = a * syn[i] + g * cur
                    cur = syn[i]
                v = lam * state[i] + cur
                s = v > theta
                v = np.where(s, 0.0, v) if layer.reset == "zero" else np.where(s, v - theta, v)
                state[i] = v
                rasters[i][k] = s
                x = s.astype(float)
            elif isinstance(layer, es.Recurrent):
                fb[i] = (None, x.copy())
            elif isinstance(layer, es.Readout):
                if y is None:
                    y, y_syn = np.zeros_like(x), np.zeros_like(x)
                inp = x
                if isinstance(layer, es.CubaLI):
                    a = float(np.ravel(layer.syn_leak)[0]) if layer.syn_leak is not None else np.exp(-dt_us * 1e-6 / layer.tau_syn_s)
                    y_syn = a * y_syn + (1.0 if layer.syn_leak is not None else 1 - a) * inp
                    inp = y_syn
                if isinstance(layer, es.LI):
                    lam = float(np.ravel(layer.leak)[0]) if layer.leak is not None else np.exp(-dt_us * 1e-6 / layer.tau_s)
                    y = lam * y + inp
                else:
                    y = y + inp
                out[k] = y
    return rasters, out, synops
