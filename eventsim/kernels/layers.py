"""Per-step layer kernels for the stepped engine: fan-out by index arithmetic.

Conv and pool connectivity is never materialised: each non-zero input scatters into the outputs
its kernel taps reach, ``oy = (y + pad − ky) / stride`` when that is an integer inside the output.
"""
import numpy as np
from numba import njit

from ..config import JIT


@njit(**JIT)
def conv2d_scatter(x, w, sh, sw, ph, pw, groups, out):
    """``out[co, oy, ox] += Σ x[ci, y, x] · w[co, ci mod Cin/G, ky, kx]`` over the non-zero inputs."""
    c_in, h, wd = x.shape
    c_out, cin_g, kh, kw = w.shape
    oh, ow = out.shape[1], out.shape[2]
    cout_g = c_out // groups
    for ci in range(c_in):
        g = ci // cin_g
        cl = ci - g * cin_g
        co0 = g * cout_g
        for y in range(h):
            for xx in range(wd):
                a = x[ci, y, xx]
                if a == 0.0:
                    continue
                for ky in range(kh):
                    ny = y + ph - ky
                    if ny < 0 or ny % sh != 0:
                        continue
                    oy = ny // sh
                    if oy >= oh:
                        continue
                    for kx in range(kw):
                        nx = xx + pw - kx
                        if nx < 0 or nx % sw != 0:
                            continue
                        ox = nx // sw
                        if ox >= ow:
                            continue
                        for co in range(co0, co0 + cout_g):
                            out[co, oy, ox] += a * w[co, cl, ky, kx]


@njit(**JIT)
def linear_scatter(x, w_t, out):
    """``out[o] += Σ_i x[i] · w_t[i, o]`` over the non-zero inputs (``w_t`` is the transposed weight)."""
    n_in, n_out = w_t.shape
    for i in range(n_in):
        a = x[i]
        if a == 0.0:
            continue
        for o in range(n_out):
            out[o] += a * w_t[i, o]


@njit(**JIT)
def weighted_events(count, degree):
    """``Σ_i count[i] · degree[i]``: synops caused by ``count`` events (flat arrays)."""
    total = 0
    for i in range(count.shape[0]):
        if count[i] != 0:
            total += count[i] * degree[i]
    return total


@njit(**JIT)
def pool2d(x, n, kh, kw, sh, sw, ph, pw, mode, out, out_n):
    """Pool values ``x`` and event counts ``n`` (both ``(C, H, W)``).

    ``mode`` 0 = sum, 1 = average (divide by ``kh·kw``, padding included), 2 = spike max
    (value = window maximum, at most one event per window). Averages divide the window sum
    by the window area, as ``torch.nn.functional.avg_pool2d`` does.
    """
    c, h, wd = x.shape
    oh, ow = out.shape[1], out.shape[2]
    area = float(kh * kw)
    for ch in range(c):
        for oy in range(oh):
            for ox in range(ow):
                acc = 0.0
                cnt = 0
                best = -np.inf
                any_in = False
                for ky in range(kh):
                    y = oy * sh - ph + ky
                    if y < 0 or y >= h:
                        continue
                    for kx in range(kw):
                        xx = ox * sw - pw + kx
                        if xx < 0 or xx >= wd:
                            continue
                        val = x[ch, y, xx]
                        acc += val
                        cnt += n[ch, y, xx]
                        any_in = True
                        if val > best:
                            best = val
                if mode == 0:
                    out[ch, oy, ox] = acc
                    out_n[ch, oy, ox] = cnt
                elif mode == 1:
                    out[ch, oy, ox] = acc / area
                    out_n[ch, oy, ox] = cnt
                else:
                    out[ch, oy, ox] = best if any_in else 0.0
                    out_n[ch, oy, ox] = 1 if cnt > 0 else 0


@njit(**JIT)
def count_events(block):
    """Non-zero entries of a ``(steps, positions)`` block of event counts, step by step in position
    order: ``(step, position, count)`` (what :func:`numpy.nonzero` gives, in one pass per array)."""
    n = 0
    for v in block.ravel():
        if v != 0.0:
            n += 1
    k, pos, cnt = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    i = 0
    for s in range(block.shape[0]):
        for p in range(block.shape[1]):
            v = block[s, p]
            if v != 0.0:
                k[i], pos[i], cnt[i] = s, p, np.int64(v)
                i += 1
    return k, pos, cnt
