"""Text helpers shared by the fast path's source generators (:mod:`eventsim.kernels.fastpath_gen`,
:mod:`eventsim.kernels.fastpath_layers`, :mod:`eventsim.kernels.fastpath_drive`,
:mod:`eventsim.kernels.fastpath_batch`): the writer of indented lines, exact float literals, the
state argument list every emitted function takes, the threshold expression of a population, the
emitted Conv2d and pooling window walks, and :func:`_helpers`, the functions every emitted module starts with
(the vector tap intrinsic, the lowest set bit, the output range of a window, the batch kernel's worklist sort)."""
from __future__ import annotations

import numpy as np


def _r(f32: bool, expr: str) -> str:
    """``expr`` as a value of the kernel's real type: ``np.float32(expr)`` in float32 mode."""
    return f"np.float32({expr})" if f32 else expr


def _f(x: float) -> str:
    """A float literal that reads back bit for bit."""
    x = float(x)
    if x == np.inf:
        return "np.inf"
    if x == -np.inf:
        return "-np.inf"
    return repr(x)


class _Writer:
    """Collects the emitted source, one indented line at a time."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, text: str = "", indent: int = 0) -> None:
        for line in text.split("\n"):
            self.lines.append(("    " * indent + line) if line else "")

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"


STATE = "V, S, I, U, PRM, W, D, RT, RK, RC, RY, RAST, LT, LN, SNAP_T, SNAP_B"


def _theta(pop, c_expr: str) -> str:
    """Population ``pop``'s threshold of channel ``c_expr``: a literal when every channel has the same."""
    th = pop["theta"]
    return _f(th[0]) if np.all(th == th[0]) else f"PRM[PRM_{pop['p']} + {c_expr}]"


def conv_window(Wd, H, groups: str, ph, kh, sh, OH, pw, kw, sw, OW, woff, Cout, init: str = "",
                decoded: bool = False) -> str:
    """The emitted walk of a Conv2d scatter over the outputs whose window holds input ``pos``:
    ``(ci, y, x)`` of pos (``decoded``: passed by the caller), the group lines, the output range,
    ``init`` (lines before the loops), and per output ``(oy, ox)`` the weight offset ``wb`` of its
    tap (the loop body follows, indented by 3 levels). Both generators use it."""
    head = "    # (ci, y, x) of pos: from the pooling op before" if decoded else f"    ci, y, x = chw(pos, {H}, {Wd})"
    return f'''{head}
{groups}
    oy0, oy1 = out_range(y, {ph}, {kh}, {sh}, {OH})
    ox0, ox1 = out_range(x, {pw}, {kw}, {sw}, {OW})
    n = 0{chr(10) + init if init else ""}
    for oy in range(oy0, oy1):
        ky = y + {ph} - oy * {sh}
        for ox in range(ox0, ox1):
            wb = {woff} + ((cl * {kh} + ky) * {kw} + (x + {pw} - ox * {sw})) * {Cout}'''


def pool_window(H, Wd, val: str, ph, kh, sh, OH, pw, kw, sw, OW) -> str:
    """The emitted walk of a pooling op over the windows that hold input ``pos``: ``(c, y, x)`` of
    pos, the passed value ``val``, the output range, and per window ``(oy, ox)`` its flat output
    ``q`` (the loop body follows, indented by 3 levels). Both generators use it."""
    return f'''    c, y, x = chw(pos, {H}, {Wd})
    val = {val}
    oy0, oy1 = out_range(y, {ph}, {kh}, {sh}, {OH})
    ox0, ox1 = out_range(x, {pw}, {kw}, {sw}, {OW})
    n = 0
    for oy in range(oy0, oy1):
        for ox in range(ox0, ox1):
            q = (c * {OH} + oy) * {OW} + ox'''


def _helpers(w: _Writer, sort: bool = True) -> None:
    w('''
# an index cast to unsigned: Numba then emits no negative-index wraparound code (hot loops only)
U64 = np.uint64

def make_tap(n, ge, kind, f32=False):
    """An intrinsic doing one tap of n channels as vector operations (n <= 64):

        u = V[vo:vo+n] + a*W[wo:wo+n]                  (kind 'scalar', 'vector': IF)
        u = V[vo:vo+n] + (a*W[wo:wo+n])*S[so:so+n]     (kind 'lif': scaled time)
        V[vo:vo+n] = u
        return the lane mask of u > theta (u >= theta when ge), bit i for lane i

    theta: the scalar argument th ('scalar'), T[to:to+n] ('vector': per channel), S[to:to+n]
    ('lif': theta*s). Multiply and add stay separate instructions without fast-math flags (no fused
    multiply-add): bit for bit the scalar code's arithmetic. f32: V, W and a are float32
    (<n x float>); S and T stay float64 arrays of float32 values, converted exactly (fptrunc)."""
    vt = ir.VectorType(ir.FloatType() if f32 else ir.DoubleType(), n)
    dvt = ir.VectorType(ir.DoubleType(), n)
    align = 4 if f32 else 8
    lanes0 = ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n)

    def splat(builder, x):
        one = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, ir.Constant(vt, ir.Undefined), lanes0)

    def vector_at(context, builder, aryty, ary, offset, t=vt):
        data = context.make_array(aryty)(context, builder, ary).data
        return builder.bitcast(builder.gep(data, [offset]), t.as_pointer())

    def real(builder, x):   # float64 values (of float32 values, in f32 mode) as vt
        return builder.fptrunc(x, vt) if f32 else x

    def load64(context, builder, sig, args, i, j):
        return real(builder, builder.load(vector_at(context, builder, sig.args[i], args[i], args[j], dvt), align=8))

    def codegen(context, builder, sig, args):
        vp = vector_at(context, builder, sig.args[0], args[0], args[1])
        prod = builder.fmul(splat(builder, args[4]), builder.load(vector_at(context, builder, sig.args[2], args[2], args[3]), align=align))
        if kind == "lif":
            prod = builder.fmul(prod, load64(context, builder, sig, args, 5, 6))
            th = load64(context, builder, sig, args, 5, 7)
        elif kind == "vector":
            th = load64(context, builder, sig, args, 5, 6)
        else:
            th = splat(builder, builder.fptrunc(args[5], ir.FloatType()) if f32 else args[5])
        u = builder.fadd(builder.load(vp, align=align), prod)
        builder.store(u, vp, align=align)
        mask = builder.bitcast(builder.fcmp_ordered(">=" if ge else ">", u, th), ir.IntType(n))
        return builder.zext(mask, ir.IntType(64))

    i64, f64 = types.int64, types.float64
    fa = types.float32 if f32 else f64   # the type of a
    if kind == "lif":
        def typer(typingctx, V, vo, W, wo, a, S, so, to):
            return types.uint64(V, i64, W, i64, fa, S, i64, i64), codegen
    elif kind == "vector":
        def typer(typingctx, V, vo, W, wo, a, T, to):
            return types.uint64(V, i64, W, i64, fa, T, i64), codegen
    else:
        def typer(typingctx, V, vo, W, wo, a, th):
            return types.uint64(V, i64, W, i64, fa, f64), codegen
    return intrinsic(typer)


def make_acc(n, f32=False):
    """An intrinsic adding one event to n readout outputs as vector operations (n <= 64):

        S[so:so+n] = S[so:so+n] + a*W[wo:wo+n]

    in float64 (the readout's type; f32: the float32 weights and a are widened exactly, fpext).
    Multiply and add stay separate instructions: bit for bit the scalar loop's arithmetic."""
    dvt = ir.VectorType(ir.DoubleType(), n)
    wvt = ir.VectorType(ir.FloatType() if f32 else ir.DoubleType(), n)
    lanes0 = ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n)

    def vector_at(context, builder, aryty, ary, offset, t):
        data = context.make_array(aryty)(context, builder, ary).data
        return builder.bitcast(builder.gep(data, [offset]), t.as_pointer())

    def codegen(context, builder, sig, args):
        a = builder.fpext(args[4], ir.DoubleType()) if f32 else args[4]
        one = builder.insert_element(ir.Constant(dvt, ir.Undefined), a, ir.Constant(ir.IntType(32), 0))
        av = builder.shuffle_vector(one, ir.Constant(dvt, ir.Undefined), lanes0)
        w = builder.load(vector_at(context, builder, sig.args[2], args[2], args[3], wvt), align=4 if f32 else 8)
        if f32:
            w = builder.fpext(w, dvt)
        yp = vector_at(context, builder, sig.args[0], args[0], args[1], dvt)
        builder.store(builder.fadd(builder.load(yp, align=8), builder.fmul(av, w)), yp, align=8)
        return context.get_dummy_value()

    def typer(typingctx, S, so, W, wo, a):
        return types.void(S, types.int64, W, types.int64, types.float32 if f32 else types.float64), codegen
    return intrinsic(typer)


@intrinsic
def lowest_bit(typingctx, m):
    """Index of the lowest set bit of the uint64 m (m != 0)."""
    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return types.int64(types.uint64), codegen

@njit(inline="always", **INTERNAL)
def out_range(i, pad, k, stride, n_out):
    """Outputs o whose window (o*stride - pad + [0, k)) contains input i >= 0: lo <= o < hi.
    Unsigned arithmetic (the arguments after i are constants): divisions by constants without
    the sign fix-ups of floor division."""
    top = U64(i + pad)
    k1, s = U64(k - 1), U64(stride)
    lo = (top - k1 + s - U64(1)) // s if top >= k1 else U64(0)
    return np.int64(lo), np.int64(min(top // s + U64(1), U64(n_out)))


@njit(inline="always", **INTERNAL)
def chw(pos, h, w):
    """(c, y, x) of the flat (C, H, W) index pos >= 0 (h, w constants), in unsigned arithmetic."""
    u, hw, uw = U64(pos), U64(h) * U64(w), U64(w)
    c = u // hw
    r = u - c * hw
    y = r // uw
    return np.int64(c), np.int64(y), np.int64(r - y * uw)
''')
    if sort:   # the batch kernel's worklists (the continuous one reads bitmaps in order)
        w('''
@njit(**INTERNAL)
def sift_down(a, lo, root, end):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[U64(lo + child)] < a[U64(lo + child + 1)]:
            child += 1
        if a[U64(lo + root)] >= a[U64(lo + child)]:
            return
        a[U64(lo + root)], a[U64(lo + child)] = a[U64(lo + child)], a[U64(lo + root)]
        root = child


@njit(**INTERNAL)
def sort_range(a, lo, n):
    """Sort a[lo:lo + n] in place, without allocating: insertion sort (worklists of one instant
    are short), heap sort beyond 32 entries. Indices are unsigned (U64): no negative-index
    wraparound code in the inner loops."""
    if n > 32:
        for root in range(n // 2 - 1, -1, -1):
            sift_down(a, lo, root, n)
        for end in range(n - 1, 0, -1):
            a[U64(lo)], a[U64(lo + end)] = a[U64(lo + end)], a[U64(lo)]
            sift_down(a, lo, 0, end)
        return
    for i in range(lo + 1, lo + n):
        x = a[U64(i)]
        j = i
        while j > lo and a[U64(j - 1)] > x:
            a[U64(j)] = a[U64(j - 1)]
            j -= 1
        a[U64(j)] = x
''')
