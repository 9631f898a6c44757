"""Sound output bounds of a :class:`~harness_plugins.verifiers.network.Network` over an input box.

- **IBP** (interval bound propagation, Gowal et al. 2018): intervals pushed forward layer by layer.
- **CROWN** (Zhang et al. 2018): linear relaxations propagated backward from each objective to the
  input box; every unstable ReLU ``z in [l, u]`` is bounded above by the chord
  ``u (z - l) / (u - l)`` and below by ``a z`` with ``a`` in {0, 1} chosen by ``u > -l``
  (CROWN-Ada); a max-pool is bounded below by its input with the largest lower bound and above by
  the largest upper bound. Intermediate bounds are CROWN's own, intersected with IBP's.

Both are sound and incomplete: a lower bound above zero is a proof, anything else proves nothing.
"""

from __future__ import annotations

import numpy as np

from harness_plugins.verifiers.network import Affine, MaxPool, Network, Relu


def ibp(net: Network, lower: np.ndarray, upper: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interval bounds of every operation's *input* (index i: the input of ``ops[i]``), then the output."""
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    out = []
    for op in net.ops:
        out.append((lo, hi))
        if isinstance(op, Affine):
            mid, rad = (hi + lo) / 2, (hi - lo) / 2
            c, r = op.w @ mid + op.b, np.abs(op.w) @ rad
            lo, hi = c - r, c + r
        elif isinstance(op, Relu):
            lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        else:
            lo, hi = lo[op.groups].max(axis=1), hi[op.groups].max(axis=1)
    out.append((lo, hi))
    return out


def relu_relaxation(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slopes of the lower and upper relaxations and the upper intercept of each ReLU (CROWN-Ada).

    Elementwise, so one box's ``(n,)`` bounds and a batch of boxes' ``(B, n)`` bounds alike."""
    active, inactive = lo >= 0, hi <= 0
    unstable = ~(active | inactive)
    width = np.where(unstable, hi - lo, 1.0)
    up_slope = np.where(active, 1.0, np.where(unstable, hi / width, 0.0))
    up_icpt = np.where(unstable, -lo * hi / width, 0.0)
    lo_slope = np.where(active, 1.0, np.where(unstable, (hi > -lo).astype(np.float64), 0.0))
    return lo_slope, up_slope, up_icpt


def backward(net: Network, objective: np.ndarray, upto: int, bounds: list, lower: np.ndarray,
             upper: np.ndarray) -> np.ndarray:
    """Lower bounds of ``objective @ v`` where ``v`` is the output of ``ops[:upto]``, by CROWN.

    ``bounds[i]`` holds the (lo, hi) of ``ops[i]``'s input, needed for every ReLU and max-pool
    below ``upto``.
    """
    lam = np.array(objective, dtype=np.float64)
    const = np.zeros(lam.shape[0])
    for i in range(upto - 1, -1, -1):
        op = net.ops[i]
        if isinstance(op, Affine):
            const += lam @ op.b
            lam = lam @ op.w
        elif isinstance(op, Relu):
            lo_s, up_s, up_c = relu_relaxation(*bounds[i])
            pos, neg = np.maximum(lam, 0.0), np.minimum(lam, 0.0)
            const += neg @ up_c
            lam = pos * lo_s + neg * up_s
        else:
            lo, hi = bounds[i]
            glo, ghi = lo[op.groups], hi[op.groups]
            best = op.groups[np.arange(len(op.groups)), glo.argmax(axis=1)]
            top = ghi.max(axis=1)
            # Exact when the best lower bound beats every other member's upper bound.
            others_hi = np.where(op.groups == best[:, None], -np.inf, ghi).max(axis=1)
            exact = lo[best] >= others_hi
            pos, neg = np.maximum(lam, 0.0), np.minimum(lam, 0.0)
            new = np.zeros((lam.shape[0], len(lo)))
            np.add.at(new.T, best, pos.T)
            np.add.at(new.T, best[exact], neg[:, exact].T)
            const += neg[:, ~exact] @ top[~exact]
            lam = new
    mid, rad = (upper + lower) / 2, (upper - lower) / 2
    return lam @ mid - np.abs(lam) @ rad + const


def crown_bounds(net: Network, lower: np.ndarray, upper: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bounds of every operation's input (as :func:`ibp` lists them), tightened by CROWN where it helps."""
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    interval = ibp(net, lower, upper)
    bounds: list = [interval[0]]
    for i in range(1, len(net.ops) + 1):
        lo_i, hi_i = interval[i]
        if i == len(net.ops) or isinstance(net.ops[i], (Relu, MaxPool)):
            n = len(lo_i)
            eye = np.eye(n)
            lo_c = backward(net, eye, i, bounds, lower, upper)
            hi_c = -backward(net, -eye, i, bounds, lower, upper)
            lo_i, hi_i = np.maximum(lo_i, lo_c), np.minimum(hi_i, hi_c)
        elif isinstance(net.ops[i - 1], Relu):
            lo_i, hi_i = np.maximum(bounds[i - 1][0], 0.0), np.maximum(bounds[i - 1][1], 0.0)
        elif isinstance(net.ops[i - 1], MaxPool):
            groups = net.ops[i - 1].groups
            lo_i, hi_i = bounds[i - 1][0][groups].max(axis=1), bounds[i - 1][1][groups].max(axis=1)
        bounds.append((lo_i, np.maximum(hi_i, lo_i)))
    return bounds


def lower_bounds(net: Network, lower: np.ndarray, upper: np.ndarray, objective: np.ndarray,
                 method: str, bounds: list | None = None) -> np.ndarray:
    """Lower bounds of ``objective @ f(x)`` over the box, by ``ibp`` or ``crown`` (``bounds``: the
    box's :func:`crown_bounds`, when the caller has them already)."""
    if method == "ibp":
        bounds = ibp(net, lower, upper)
        # Through the last affine map exactly, then intervals: tighter than bounding the outputs alone.
        last = len(net.ops) - 1
        if isinstance(net.ops[last], Affine):
            w, b = objective @ net.ops[last].w, objective @ net.ops[last].b
            lo, hi = bounds[last]
        else:
            w, b = objective, np.zeros(len(objective))
            lo, hi = bounds[-1]
        return w @ ((lo + hi) / 2) - np.abs(w) @ ((hi - lo) / 2) + b
    if bounds is None:
        bounds = crown_bounds(net, lower, upper)
    return backward(net, objective, len(net.ops), bounds, np.asarray(lower, float), np.asarray(upper, float))


def prove(net: Network, lower: np.ndarray, upper: np.ndarray, outputs: list, method: str,
          bounds: list | None = None) -> tuple[bool, dict]:
    """Whether every output conjunction ``a @ y <= b`` is proven unreachable over the box.

    A conjunction is unreachable when some row's lower bound of ``a_r @ y`` exceeds ``b_r``.
    Returns ``(proved, info)`` with the smallest such margin per conjunction.
    """
    rows = np.concatenate([a for a, _ in outputs])
    rhs = np.concatenate([b for _, b in outputs])
    margins = lower_bounds(net, lower, upper, rows, method, bounds) - rhs
    per_term, start = [], 0
    for a, _ in outputs:
        per_term.append(float(margins[start:start + len(a)].max()) if len(a) else -np.inf)
        start += len(a)
    return all(m > 0 for m in per_term), {"margins": per_term}
