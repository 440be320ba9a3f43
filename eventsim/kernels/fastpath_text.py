"""Text helpers shared by the fast path's source generators (:mod:`eventsim.kernels.fastpath_gen`,
:mod:`eventsim.kernels.fastpath_drive`, :mod:`eventsim.kernels.fastpath_batch`): the writer of
indented lines, exact float literals, the state argument list every emitted function takes, and
the threshold expression of a population."""
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


def conv_window(Wd, H, groups: str, ph, kh, sh, OH, pw, kw, sw, OW, woff, Cout) -> str:
    """The emitted walk of a Conv2d scatter over the outputs whose window holds input ``pos``:
    ``(ci, y, x)`` of pos, the group lines, the output range, and per output ``(oy, ox)`` the weight
    offset ``wb`` of its tap (the loop body follows, indented by 3 levels). Both generators use it."""
    return f'''    x = pos % {Wd}
    y = (pos // {Wd}) % {H}
    ci = pos // {H * Wd}
{groups}
    oy0, oy1 = out_range(y, {ph}, {kh}, {sh}, {OH})
    ox0, ox1 = out_range(x, {pw}, {kw}, {sw}, {OW})
    n = 0
    for oy in range(oy0, oy1):
        ky = y + {ph} - oy * {sh}
        for ox in range(ox0, ox1):
            wb = {woff} + ((cl * {kh} + ky) * {kw} + (x + {pw} - ox * {sw})) * {Cout}'''
