"""Input splitting for ``milp`` on ReLU networks: branch and bound over the input box, in numpy.

A heap holds sub-boxes with the output conjunctions not yet ruled out on them, ordered by their
parent's worst CROWN margin (the sub-box closest to a counterexample first: the work to prove that a
property holds is the same in any order, a violation is found sooner). Each round takes a batch and:

- bounds it by forward symbolic intervals (:func:`.symbolic.forward_bounds`, cheap); a sub-box on
  which they rule out every open conjunction is done;
- bounds the rest by CROWN (:func:`crown_batch`), back-substituting only for the neurons the forward
  bounds leave unstable in that box; a conjunction whose lower bound of some row clears its
  threshold by more than :data:`MARGIN` is unreachable there (the objective takes the better of two
  sound lower slopes per row);
- evaluates each sub-box's centre, the corner CROWN points to and a short PGD's best point; one in the
  unsafe set that replays in onnxruntime is the counterexample;
- gives a sub-box with at most :data:`MILP_UNSTABLE` unstable ReLUs (an input box before any split: at
  most :data:`MILP_ROOT`), or one narrower than :data:`MILP_WIDTH`, to the exact MILP
  (:func:`harness_plugins.verifiers.milp.verify_box`);
- splits any other in two along the input dimension of largest width times the CROWN sensitivity of
  the open conjunctions (ReluVal's "smear"; the widest dimension when the sensitivities tie).

The property holds when the heap empties, is violated at the first replaying counterexample, and is
``timeout`` when the time runs out first. Every bound is sound, so "holds" is a proof up to floating
point, against which :data:`MARGIN` guards.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

import numpy as np

from harness_plugins.verifiers.bounds import relu_relaxation
from harness_plugins.verifiers.network import Affine, Network, Relu
from harness_plugins.verifiers.symbolic import forward_bounds

#: A conjunction counts as ruled out on a box only when a row's lower bound clears its threshold by
#: more than this (floating-point rounding in the bounds, which are computed in float64).
MARGIN = 1e-9
#: Sub-boxes bounded together per round.
BATCH = 64
#: A sub-box with at most this many unstable ReLUs goes to the MILP instead of being split (0: on
#: ACAS Xu, splitting with these bounds is cheaper than HiGHS on any sub-box; measured in bench/acasxu.py).
MILP_UNSTABLE = 0
#: A sub-box narrower than this in every dimension goes to the MILP whatever its unstable ReLUs
#: (CROWN's relaxation no longer shrinks there: a tie in the outputs, a face of the unsafe set).
MILP_WIDTH = 1e-4
#: An input box (before any split) with at most this many unstable ReLUs goes to the MILP whole: a
#: small network's exact encoding is cheaper than splitting (ACAS Xu's boxes have 83 to 299).
MILP_ROOT = 64


def splittable(net: Network) -> bool:
    """Whether the network is the alternating affine / ReLU chain the batched bounds handle."""
    return bool(net.ops) and all(isinstance(op, (Affine, Relu)) for op in net.ops)


def _backward(net: Network, lam: np.ndarray, upto: int, relax: dict, lower: np.ndarray,
              upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower bounds of ``lam[b] @ v`` (``v``: output of ``ops[:upto]``) per box; and the input-space
    coefficients (for the split choice and the attack corner). ``lam``: (B, R, n)."""
    batch, rows = lam.shape[:2]
    const = np.zeros((batch, rows))
    for i in range(upto - 1, -1, -1):
        op = net.ops[i]
        if isinstance(op, Affine):
            const = const + lam @ op.b
            lam = (lam.reshape(batch * rows, -1) @ op.w).reshape(batch, rows, -1)  # one matrix product
        else:
            lo_s, up_s, up_c = relax[i]
            neg = np.minimum(lam, 0.0)
            const = const + np.matmul(neg, up_c[:, :, None])[..., 0]
            # pos * lo_s + neg * up_s, with pos = lam - neg
            lam = lam * lo_s[:, None, :] + neg * (up_s - lo_s)[:, None, :]
    mid, rad = (upper + lower) / 2, (upper - lower) / 2
    value = np.einsum("brn,bn->br", lam, mid) - np.einsum("brn,bn->br", np.abs(lam), rad) + const
    return value, lam


def _tighten(net: Network, upto: int, relax: dict, lower: np.ndarray, upper: np.ndarray, lo: np.ndarray,
             hi: np.ndarray, every: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of ``ops[upto - 1]``'s output intersected with CROWN's bounds, computed for every
    neuron (``every``) or, per box, only for its unstable ones (padded to the batch's largest count)."""
    batch, n = lo.shape
    mask = np.ones_like(lo, dtype=bool) if every else (lo < 0) & (hi > 0)
    m = int(mask.sum(axis=1).max())
    if m == 0:
        return lo, hi
    idx = np.argsort(~mask, axis=1, kind="stable")[:, :m]  # each box's unstable neurons first
    valid = np.take_along_axis(mask, idx, axis=1)
    rows = np.zeros((batch, m, n))
    np.put_along_axis(rows, idx[..., None], valid[..., None].astype(np.float64), axis=2)
    value, _ = _backward(net, np.concatenate([rows, -rows], axis=1), upto, relax, lower, upper)
    old_lo, old_hi = np.take_along_axis(lo, idx, axis=1), np.take_along_axis(hi, idx, axis=1)
    lo, hi = lo.copy(), hi.copy()
    np.put_along_axis(lo, idx, np.where(valid, np.maximum(old_lo, value[:, :m]), old_lo), axis=1)
    np.put_along_axis(hi, idx, np.where(valid, np.minimum(old_hi, -value[:, m:]), old_hi), axis=1)
    return lo, np.maximum(hi, lo)


def crown_batch(net: Network, lower: np.ndarray, upper: np.ndarray, prior: list | None = None) -> tuple[list, dict]:
    """CROWN bounds of every op's input for a batch of boxes ``(B, n)``: ``(bounds, relaxations)``.

    ``bounds[i]`` is ``(lo, hi)`` of ``ops[i]``'s input (then the output), as
    :func:`harness_plugins.verifiers.bounds.crown_bounds` lists them for one box; each pre-activation
    is CROWN's bound intersected with the interval through the preceding affine map, and with
    ``prior`` (sound bounds in the same layout, e.g. :func:`.symbolic.forward_bounds`) when given.
    With ``prior``, CROWN's backward pass runs, per box, only for the neurons ``prior`` leaves
    unstable there: a neuron it shows stable keeps its (exact) relaxation.
    """
    bounds: list = [(lower, upper)]
    relax: dict = {}
    lo, hi = lower, upper
    for i, op in enumerate(net.ops):
        if isinstance(op, Affine):
            mid, rad = (hi + lo) / 2, (hi - lo) / 2
            c, r = mid @ op.w.T + op.b, rad @ np.abs(op.w).T
            lo, hi = c - r, c + r
            if prior is not None:
                lo, hi = np.maximum(lo, prior[i + 1][0]), np.minimum(hi, prior[i + 1][1])
                hi = np.maximum(hi, lo)
            if i + 1 < len(net.ops) and i > 0:  # a pre-activation below other ReLUs: CROWN tightens it
                lo, hi = _tighten(net, i + 1, relax, lower, upper, lo, hi, every=prior is None)
        else:
            relax[i] = relu_relaxation(lo, hi)
            lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        bounds.append((lo, hi))
    return bounds, relax


def _unstable(bounds: list, net: Network) -> np.ndarray:
    """Unstable ReLUs per box."""
    count = np.zeros(len(bounds[0][0]), dtype=np.int64)
    for i, op in enumerate(net.ops):
        if isinstance(op, Relu):
            lo, hi = bounds[i]
            count += ((lo < 0) & (hi > 0)).sum(axis=1)
    return count


def _objective(net: Network, a: np.ndarray, relax: dict, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray,
                                                                                                        np.ndarray]:
    """Lower bounds of ``a @ y`` per box (B, R) and their input-space coefficients, the better of two
    sound choices of the unstable ReLUs' lower slopes: CROWN-Ada's 0 or 1, and the upper chord's
    slope (DeepPoly's parallel bound); each row of each box keeps whichever is higher."""
    objective = np.broadcast_to(a, (len(lower), *a.shape))
    value, lam = _backward(net, objective, len(net.ops), relax, lower, upper)
    chord = {i: (up_s, up_s, up_c) for i, (_, up_s, up_c) in relax.items()}
    other, lam2 = _backward(net, objective, len(net.ops), chord, lower, upper)
    better = other > value
    return np.where(better, other, value), np.where(better[..., None], lam2, lam)


def _settled(net: Network, lower: np.ndarray, upper: np.ndarray, active: list[list[int]], outputs: list,
             relax: dict) -> np.ndarray:
    """Per box, whether the bounds of ``relax`` rule out every one of its ``active`` conjunctions."""
    open_ = np.zeros(len(lower), dtype=bool)
    for t, (a, b) in enumerate(outputs):
        mine = np.array([t in act for act in active])
        if not mine.any():
            continue
        value, _ = _backward(net, np.broadcast_to(a, (len(lower), *a.shape)), len(net.ops), relax, lower, upper)
        open_ |= mine & ((value - b).max(axis=1) <= MARGIN)
    return ~open_


def search(net: Network, boxes: list, outputs: list, deadline: float, replays: Callable[[np.ndarray], bool],
           milp: Callable[..., dict], attack: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> dict:
    """Branch and bound over ``boxes`` against the output conjunctions ``outputs``; a result dict.

    ``replays(x)`` says whether ``x`` is a counterexample in onnxruntime; ``milp(lower, upper,
    conjunctions, deadline)`` decides one sub-box exactly (the MILP verifier's :func:`verify_box`);
    ``attack(lower, upper)``, when given, returns candidate points (a short PGD) for a batch of boxes.
    """
    terms = list(range(len(outputs)))
    # A heap on the parent's worst margin: the sub-boxes closest to a counterexample first (the work to
    # prove a property holds is the same in any order; a violation is found sooner).
    queue: list = [(-np.inf, n, lo, hi, terms, 0) for n, (lo, hi) in enumerate(boxes)]
    count = len(queue)
    stats = {"boxes": 0, "by_forward": 0, "milp": 0, "splits": 0, "max_queue": len(queue)}
    timed_out = False
    while queue:
        if time.monotonic() > deadline:
            timed_out = True
            break
        batch = [heapq.heappop(queue)[2:] for _ in range(min(BATCH, len(queue)))]
        lower = np.stack([b[0] for b in batch])
        upper = np.stack([b[1] for b in batch])
        # Cheap forward bounds first: the sub-boxes they settle need no backward pass for every layer.
        prior, prelax = forward_bounds(net, lower, upper)
        keep = ~_settled(net, lower, upper, [b[2] for b in batch], outputs, prelax)
        stats["by_forward"] += int((~keep).sum())
        if not keep.any():
            continue
        batch, lower, upper = [b for b, k in zip(batch, keep) if k], lower[keep], upper[keep]
        bounds, relax = crown_batch(net, lower, upper, [(lo[keep], hi[keep]) for lo, hi in prior])
        unstable = _unstable(bounds, net)
        stats["boxes"] += len(batch)
        # Per conjunction, CROWN on its rows for the whole batch; the input-space coefficients guide
        # the attack corner and the split.
        open_terms: list[list[int]] = [[] for _ in batch]
        sense = np.zeros_like(lower)
        worst = np.full(len(batch), np.inf)
        candidates = [(lower + upper) / 2]
        for t in terms:
            a, b = outputs[t]
            value, lam = _objective(net, a, relax, lower, upper)
            margin = (value - b).max(axis=1) - MARGIN  # > 0: some row rules the conjunction out on that box
            row = (value - b).argmax(axis=1)
            best = lam[np.arange(len(batch)), row]  # (B, n0): the row that came closest to a proof
            candidates.append(np.where(best > 0, lower, upper))  # the corner minimising that row's bound
            for k, (_, _, active, _) in enumerate(batch):
                if t in active and margin[k] <= 0:
                    open_terms[k].append(t)
                    sense[k] += np.abs(best[k])
                    worst[k] = min(worst[k], margin[k])
        if attack is not None:
            candidates.append(attack(lower, upper))
        points = np.concatenate(candidates)
        ys = net.forward(points)
        for t in terms:
            a, b = outputs[t]
            hit = np.all(ys @ a.T <= b, axis=1)
            for idx in np.nonzero(hit)[0]:
                if replays(points[idx]):
                    return {"result": "violated", "witness": points[idx], "outputs": ys[idx],
                            "info": {"by": "split", **stats}}
        for k, (lo, hi, _, depth) in enumerate(batch):
            if not open_terms[k]:
                continue
            if unstable[k] <= (MILP_ROOT if depth == 0 else MILP_UNSTABLE) or (hi - lo).max() <= MILP_WIDTH:
                stats["milp"] += 1
                res = milp(lo, hi, [outputs[t] for t in open_terms[k]], deadline)
                if res["result"] == "violated" and replays(res["witness"]):
                    return {**res, "info": {"by": "split+milp", **stats}}
                if res["result"] == "holds":
                    continue
                if res["result"] == "timeout":
                    timed_out = True
                    break
            width = hi - lo
            score = width * np.maximum(sense[k], 1e-12)
            d = int(np.argmax(score if score.max() > 0 else width))
            if width[d] <= 1e-9:
                d = int(np.argmax(width))
            if width[d] <= 1e-9:
                return {"result": "unknown", "info": {"by": "split", "note": "a sub-box too small to split", **stats}}
            mid = (lo[d] + hi[d]) / 2
            left_hi, right_lo = hi.copy(), lo.copy()
            left_hi[d], right_lo[d] = mid, mid
            heapq.heappush(queue, (worst[k], count, lo, left_hi, open_terms[k], depth + 1))
            heapq.heappush(queue, (worst[k], count + 1, right_lo, hi, open_terms[k], depth + 1))
            count += 2
            stats["splits"] += 1
        if timed_out:
            break
        stats["max_queue"] = max(stats["max_queue"], len(queue))
    if timed_out:
        return {"result": "timeout", "info": {"by": "split", "open": len(queue), **stats}}
    return {"result": "holds", "info": {"by": "split", **stats}}
