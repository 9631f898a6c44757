"""Projected gradient descent (Madry et al. 2018) towards a property's unsafe set, in torch.

One implementation serves the benchmark generator (adversarial training, and the strong attack
that decides which planted counterexamples stay hidden) and the ``pgd`` falsifier. The attack
minimises the *spec margin* ``min_k max_r (a_k[r] @ y - b_k[r])`` of the outputs ``y``: it is
``<= 0`` exactly when some output conjunction ``a_k @ y <= b_k`` of the unsafe set holds.
Steps are signed gradients scaled by each box's half-width (an L-infinity attack), projected back
into the box; every restart starts at a uniformly random point of its box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: SoundnessBench's final evaluation, shortened: (step as a fraction of the half-width, steps).
STRONG_SCHEDULE = ((0.25, 1), (0.25, 100), (0.02, 100), (0.02, 250), (0.01, 500))


def spec_margin(y: Any, a: Any, b: Any) -> Any:
    """``min_k max_r (a[k, r] @ y - b[k, r])`` per row of ``y`` (``a``: (K, R, n_out), ``b``: (K, R))."""
    import torch

    vals = torch.einsum("no,kro->nkr", y, a) - b.unsqueeze(0)
    return vals.max(dim=2).values.min(dim=1).values


def stack_outputs(outputs: Sequence[tuple[Any, Any]], dtype: Any = None) -> tuple[Any, Any]:
    """Output conjunctions ``[(a, b), ...]`` (numpy) as padded tensors ``(K, R, n_out)`` and ``(K, R)``.

    Conjunctions with fewer rows are padded with copies of their first row (a max is unchanged).
    """
    import numpy as np
    import torch

    rows = max(len(b) for _, b in outputs)
    a_all = np.stack([np.concatenate([a, np.repeat(a[:1], rows - len(a), 0)]) for a, _ in outputs])
    b_all = np.stack([np.concatenate([b, np.repeat(b[:1], rows - len(b), 0)]) for _, b in outputs])
    dtype = dtype or torch.float32
    return torch.tensor(a_all, dtype=dtype), torch.tensor(b_all, dtype=dtype)


def pgd(forward: Callable[[Any], Any], lower: Any, upper: Any, a: Any, b: Any, *, restarts: int, steps: int,
        step: float, generator: Any = None) -> tuple[Any, Any]:
    """One PGD run on a batch of boxes; ``(best inputs, their margins)`` per box.

    ``lower``/``upper``: (N, *shape) tensors; ``forward`` maps (M, *shape) to (M, n_out).
    ``restarts`` starts per box, ``steps`` steps of ``step`` times the box's half-width.
    Tracks the best point seen (before and after every step).
    """
    import torch

    n = lower.shape[0]
    shape = tuple(lower.shape[1:])
    lo = lower.repeat(restarts, *([1] * len(shape)))
    hi = upper.repeat(restarts, *([1] * len(shape)))
    half = (hi - lo) / 2
    x = lo + torch.rand(lo.shape, generator=generator, dtype=lo.dtype) * (hi - lo)
    best_m = torch.full((n,), float("inf"), dtype=lo.dtype)
    best_x = lower.clone()

    def keep(x: Any, m: Any) -> None:
        m = m.view(restarts, n)
        vals, idx = m.min(dim=0)
        better = vals < best_m
        if better.any():
            chosen = x.view(restarts, n, *shape)[idx, torch.arange(n)]
            best_x[better] = chosen[better]
            best_m[better] = vals[better]

    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        m = spec_margin(forward(x), a, b)
        (grad,) = torch.autograd.grad(m.sum(), x)
        keep(x.detach(), m.detach())
        x = torch.min(torch.max(x.detach() - step * half * grad.sign(), lo), hi)
    with torch.no_grad():
        keep(x, spec_margin(forward(x), a, b))
    return best_x, best_m


def strong_pgd(forward: Callable[[Any], Any], lower: Any, upper: Any, a: Any, b: Any, *, restarts: int,
               schedule: Sequence[tuple[float, int]] = STRONG_SCHEDULE, generator: Any = None) -> tuple[Any, Any]:
    """PGD with every step size of ``schedule`` in turn, each from fresh random starts; the best per box."""
    import torch

    best_x, best_m = None, None
    for step, steps in schedule:
        x, m = pgd(forward, lower, upper, a, b, restarts=restarts, steps=steps, step=step, generator=generator)
        if best_m is None:
            best_x, best_m = x, m
        else:
            better = m < best_m
            best_x = torch.where(better.view(-1, *([1] * (x.dim() - 1))), x, best_x)
            best_m = torch.minimum(m, best_m)
    return best_x, best_m
