"""PGD towards the unsafe set on an affine / ReLU chain, in numpy: the ``milp`` verifier's warm start
and its per-sub-box attack without importing torch (seconds of every verifier process's minute).

The same attack as :func:`harness.api.strong_pgd` (signed gradient steps of a fraction of each box's
half-width, projected back into the box, the best point kept), on the same *spec margin*
``min_k max_r (a_k[r] @ y - b_k[r])``; its gradient is back-propagated by hand through the chain
(the row that attains the margin, then each affine map's transpose and each ReLU's active mask).
Points it returns are only candidates: the caller replays each in onnxruntime before using it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness_plugins.verifiers.network import Affine, Network


def stack(outputs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Output conjunctions as padded arrays ``(K, R, n_out)`` and ``(K, R)`` (padding repeats a row)."""
    rows = max(len(b) for _, b in outputs)
    a_all = np.stack([np.concatenate([a, np.repeat(a[:1], rows - len(a), 0)]) for a, _ in outputs])
    b_all = np.stack([np.concatenate([b, np.repeat(b[:1], rows - len(b), 0)]) for _, b in outputs])
    return a_all.astype(np.float64), b_all.astype(np.float64)


def margin_and_grad(net: Network, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The spec margin of each row of ``x`` (M, n_in) and its gradient (a subgradient at ties)."""
    acts, h = [], x
    for op in net.ops:
        if isinstance(op, Affine):
            h = h @ op.w.T + op.b
        else:
            acts.append(h > 0)
            h = np.maximum(h, 0.0)
    vals = np.einsum("mo,kro->mkr", h, a) - b[None]
    r = vals.argmax(axis=2)  # (M, K)
    per_k = np.take_along_axis(vals, r[..., None], axis=2)[..., 0]
    k = per_k.argmin(axis=1)
    margin = per_k[np.arange(len(x)), k]
    g = a[k, r[np.arange(len(x)), k]]  # (M, n_out)
    for op in reversed(net.ops):
        if isinstance(op, Affine):
            g = g @ op.w
        else:
            g = g * acts.pop()
    return margin, g


def pgd(net: Network, lower: np.ndarray, upper: np.ndarray, a: np.ndarray, b: np.ndarray, *, restarts: int,
        schedule: Sequence[tuple[float, int]], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """PGD on a batch of boxes ``(N, n_in)``, every step size of ``schedule`` from fresh random starts;
    ``(best point, its margin)`` per box."""
    n = len(lower)
    lo, hi = np.tile(lower, (restarts, 1)), np.tile(upper, (restarts, 1))
    half = (hi - lo) / 2
    best_x, best_m = lower.copy(), np.full(n, np.inf)

    def keep(x: np.ndarray, m: np.ndarray) -> None:
        m = m.reshape(restarts, n)
        idx = m.argmin(axis=0)
        vals = m[idx, np.arange(n)]
        better = vals < best_m
        best_x[better] = x.reshape(restarts, n, -1)[idx, np.arange(n)][better]
        best_m[better] = vals[better]

    for step, steps in schedule:
        x = lo + rng.random(lo.shape) * (hi - lo)
        for _ in range(steps):
            m, g = margin_and_grad(net, x, a, b)
            keep(x, m)
            x = np.clip(x - step * half * np.sign(g), lo, hi)
        keep(x, margin_and_grad(net, x, a, b)[0])
    return best_x, best_m
