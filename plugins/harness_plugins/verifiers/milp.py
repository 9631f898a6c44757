"""A complete verifier for small ReLU networks: a mixed-integer program solved by HiGHS.

The network is encoded exactly (Tjeng et al. 2019): each affine map as equalities, each unstable
ReLU ``z in [l, u]`` with a binary ``a``: ``h >= z``, ``h >= 0``, ``h <= z - l (1 - a)``,
``h <= u a``; stable ReLUs need no binary; a max-pool takes one binary per member. The big-M
bounds come from CROWN (:mod:`harness_plugins.verifiers.bounds`), which also settles the output
conjunctions it can prove before any MILP is built. For each remaining conjunction ``a @ y <= b``
the program minimises ``t`` subject to ``a_r @ y - t <= b_r`` and ``t <= 0``: infeasible means the
conjunction is unreachable; a solution is a counterexample, with the largest violation found.
``scipy.optimize.milp`` (HiGHS) solves it within the time left.
"""

from __future__ import annotations

import time

import numpy as np

from harness_plugins.verifiers.bounds import crown_bounds, prove
from harness_plugins.verifiers.network import Affine, Network, Relu

#: A solution whose violation is smaller than this is treated as numerically undecided.
MIN_VIOLATION = 1e-6


class _Program:
    """Variables, bounds, integrality and sparse constraint rows, built incrementally."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.rlo: list[float] = []
        self.rhi: list[float] = []

    def var(self, lo: np.ndarray, hi: np.ndarray, integer: bool = False) -> np.ndarray:
        start = len(self.lb)
        self.lb += [float(v) for v in lo]
        self.ub += [float(v) for v in hi]
        self.integer += [int(integer)] * len(lo)
        return np.arange(start, start + len(lo))

    def row(self, cols, vals, lo: float, hi: float) -> None:
        r = len(self.rlo)
        self.rows += [r] * len(cols)
        self.cols += [int(c) for c in cols]
        self.vals += [float(v) for v in vals]
        self.rlo.append(lo)
        self.rhi.append(hi)


def _encode(net: Network, lower: np.ndarray, upper: np.ndarray, bounds: list) -> tuple[_Program, np.ndarray,
                                                                                            np.ndarray, int]:
    """The network over the box: ``(program, input vars, output vars, binaries)``."""
    prog = _Program()
    x = prog.var(lower, upper)
    h = x
    binaries = 0
    for i, op in enumerate(net.ops):
        lo_out, hi_out = bounds[i + 1]
        if isinstance(op, Affine):
            z = prog.var(lo_out, hi_out)
            for r in range(len(z)):
                nz = np.nonzero(op.w[r])[0]
                prog.row(np.concatenate([[z[r]], h[nz]]), np.concatenate([[1.0], -op.w[r, nz]]), op.b[r], op.b[r])
            h = z
        elif isinstance(op, Relu):
            lo_in, hi_in = bounds[i]
            out = np.empty(len(h), dtype=np.int64)
            for j in range(len(h)):
                lo, hi = lo_in[j], hi_in[j]
                if hi <= 0:
                    out[j] = prog.var([0.0], [0.0])[0]
                elif lo >= 0:
                    out[j] = h[j]
                else:
                    y = prog.var([0.0], [hi])[0]
                    a = prog.var([0.0], [1.0], integer=True)[0]
                    binaries += 1
                    prog.row([y, h[j]], [1.0, -1.0], 0.0, np.inf)                # y >= z
                    prog.row([y, h[j], a], [1.0, -1.0, -lo], -np.inf, -lo)      # y <= z - l (1 - a)
                    prog.row([y, a], [1.0, -hi], -np.inf, 0.0)                  # y <= u a
                    out[j] = y
            h = out
        else:
            lo_in, hi_in = bounds[i]
            out = np.empty(len(op.groups), dtype=np.int64)
            for g, members in enumerate(op.groups):
                members = np.unique(members)
                top = hi_in[members].max()
                best = members[lo_in[members].argmax()]
                others = [m for m in members if m != best]
                if not others or lo_in[best] >= hi_in[others].max():
                    out[g] = h[best]
                    continue
                y = prog.var([lo_in[members].max()], [top])[0]
                sel = prog.var(np.zeros(len(members)), np.ones(len(members)), integer=True)
                binaries += len(members)
                for m, a in zip(members, sel):
                    prog.row([y, h[m]], [1.0, -1.0], 0.0, np.inf)
                    prog.row([y, h[m], a], [1.0, -1.0, top - lo_in[m]], -np.inf, top - lo_in[m])
                prog.row(sel, np.ones(len(sel)), 1.0, 1.0)
                out[g] = y
            h = out
    return prog, x, h, binaries


def _solve_term(prog: _Program, x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray,
                time_limit: float) -> tuple[str, np.ndarray | None, dict]:
    """One output conjunction: ``('holds' | 'violated' | 'timeout' | 'unknown', x, info)``."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    n = len(prog.lb) + 1
    t = n - 1
    rows, cols, vals = list(prog.rows), list(prog.cols), list(prog.vals)
    rlo, rhi = list(prog.rlo), list(prog.rhi)
    for r in range(len(b)):
        nz = np.nonzero(a[r])[0]
        idx = len(rlo)
        rows += [idx] * (len(nz) + 1)
        cols += [int(c) for c in y[nz]] + [t]
        vals += [float(v) for v in a[r, nz]] + [-1.0]
        rlo.append(-np.inf)
        rhi.append(float(b[r]))
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(rlo), n)).tocsr()
    c = np.zeros(n)
    c[t] = 1.0
    res = milp(c, integrality=np.array(prog.integer + [0]), bounds=Bounds(prog.lb + [-np.inf], prog.ub + [0.0]),
               constraints=LinearConstraint(matrix, rlo, rhi),
               options={"time_limit": max(time_limit, 0.1), "presolve": True, "disp": False})
    info = {"status": int(res.status), "message": str(res.message)}
    if res.status == 2:
        return "holds", None, info
    if res.x is not None:
        info["t"] = float(res.x[t])
        return "violated", np.asarray(res.x[x]), info
    return ("timeout" if res.status == 1 else "unknown"), None, info


def verify_box(net: Network, lower: np.ndarray, upper: np.ndarray, outputs: list, deadline: float) -> dict:
    """Decide one input box against its output conjunctions; a verifier's result dict."""
    bounds = crown_bounds(net, lower, upper)
    proved, pinfo = prove(net, lower, upper, outputs, "crown", bounds)
    if proved:
        return {"result": "holds", "info": {"by": "crown", "margins": pinfo["margins"]}}
    prog, x, y, binaries = _encode(net, lower, upper, bounds)
    info: dict = {"binaries": binaries, "variables": len(prog.lb), "constraints": len(prog.rlo), "terms": []}
    undecided = None
    for (a, b), margin in zip(outputs, pinfo["margins"]):
        if margin > 0:
            info["terms"].append({"by": "crown"})
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return {"result": "timeout", "info": info}
        result, witness, tinfo = _solve_term(prog, x, y, a, b, left)
        info["terms"].append(tinfo)
        if result == "violated":
            out = net.forward(witness)[0]
            if np.all(a @ out <= b) and tinfo.get("t", 0.0) <= -MIN_VIOLATION:
                return {"result": "violated", "witness": witness, "outputs": out, "info": info}
            undecided = "unknown"
            tinfo["note"] = "the solution does not violate in float64 replay (numerically at the boundary)"
        elif result != "holds":
            undecided = undecided or result
    return {"result": undecided or "holds", "info": info}
