"""Capacity density: what a compressed model is worth in dense parameters.

After the densing law (Xiao et al. 2024) and the scaling-law papers (Rosenfeld et al. 2020, Kaplan et
al. 2020): over a family of **dense** models of one architecture at several widths (``mlp`` at hidden
1-128, say) on one dataset and backend, the error is fitted against the parameter count by
``scipy.optimize.curve_fit``, whose covariance gives the fit's uncertainty. The curve is a power law
in an envelope, as Rosenfeld et al.'s: ``err(N) = e_inf + (e0 - e_inf) / (1 + (N / Nc) ** alpha)``
(``err`` is 1 - top-1, or the nats of perplexity): near ``e0`` (chance) for the smallest models,
``e_inf + (e0 - e_inf) (Nc / N) ** alpha`` past the knee ``Nc``, ``e_inf`` at the plateau. (A
plain power law ``e_inf + k N ** -alpha`` cannot bend at chance, and on digits put the family's own
widths 8 and 16 at a density near 3.) The dense models' own densities are the fit's check: the
studies report shows them.
A compressed model's **effective parameter count** is the dense size whose fitted error equals its
own; its **capacity density** is that over its nonzero parameters: above 1, it is worth more than a
dense model of its size. The interval comes from 2,000 draws of the fit's parameters from the normal
its covariance describes (seeded: the same data give the same interval); 2.5 and 97.5 percentiles.

An error at or below the fitted plateau ``e_inf`` has no effective size (no dense model reaches it;
on a plateau accuracy no longer tells sizes apart), nor one at or above ``e0`` (chance); an effective
size more than :data:`EXTRAPOLATE` times outside the family's range is not reported either. All are
left empty, never guessed.

The leaderboard adds ``effective_params``, ``capacity_density`` and its interval to every row of a
model whose family was measured (:func:`add_columns`); studies add the same as long rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Columns the leaderboard gains (higher is better for each), as the metric catalogue lists them.
COLUMNS = ("effective_params", "capacity_density", "capacity_density_lo", "capacity_density_hi")
#: How far outside the family's parameter range an effective size is still reported.
EXTRAPOLATE = 4.0
#: The fewest distinct dense sizes a curve is fitted to.
MIN_SIZES = 3
DRAWS = 2000


def error_of(metric: str, value: float) -> float:
    """The fitted quantity: ``1 - top1``, or the nats of a perplexity (``log perplexity``)."""
    return 1.0 - value if metric == "top1" else math.log(value)


@dataclass(frozen=True)
class Fit:
    """A fitted error curve ``e_inf + (e0 - e_inf) / (1 + (N / exp(log_nc)) ** alpha)`` over dense sizes
    ``lo`` to ``hi``."""

    e_inf: float
    e0: float
    log_nc: float
    alpha: float
    cov: Any  # 4x4 covariance of (e_inf, e0, log_nc, alpha); infinite where curve_fit could not estimate it
    lo: float
    hi: float
    points: int

    def error(self, n: Any) -> Any:
        """The fitted error at ``n`` parameters."""
        return _curve(n, self.e_inf, self.e0, self.log_nc, self.alpha)

    @staticmethod
    def _invert(err: float, e_inf: float, e0: float, log_nc: float, alpha: float) -> float:
        if not e_inf < err < e0 or alpha <= 0:
            return math.inf if err <= e_inf else 0.0
        return math.exp(log_nc + math.log((e0 - e_inf) / (err - e_inf) - 1.0) / alpha)

    def effective(self, err: float) -> float | None:
        """The dense size whose fitted error is ``err`` (``None``: at the plateau or chance, or out of range)."""
        n = self._invert(err, self.e_inf, self.e0, self.log_nc, self.alpha)
        return n if self.lo / EXTRAPOLATE <= n <= self.hi * EXTRAPOLATE else None

    def interval(self, err: float) -> tuple[float | None, float | None]:
        """2.5 and 97.5 percentiles of the effective size over draws of the fit's parameters."""
        import numpy as np

        if not np.all(np.isfinite(self.cov)):
            return None, None
        rng = np.random.default_rng(0)
        draws = rng.multivariate_normal([self.e_inf, self.e0, self.log_nc, self.alpha], self.cov, size=DRAWS,
                                        check_valid="ignore")
        e_inf, e0, log_nc, alpha = draws.T
        inside = (e_inf < err) & (err < e0) & (alpha > 0)
        with np.errstate(all="ignore"):  # outside, the formula is not used
            ratio = np.where(inside, (e0 - e_inf) / np.where(inside, err - e_inf, 1.0) - 1.0, 1.0)
            sizes = np.exp(np.clip(log_nc + np.log(np.maximum(ratio, 1e-300)) / np.where(inside, alpha, 1.0),
                                   -700, 700))
        sizes = np.where(inside, sizes, np.where(err <= e_inf, np.inf, 0.0))
        # No interpolation: draws past the plateau are infinite, and inf - inf is no number.
        lo, hi = np.percentile(sizes, 2.5, method="lower"), np.percentile(sizes, 97.5, method="higher")
        return (float(lo) if 0 < lo < math.inf else None), (float(hi) if 0 < hi < math.inf else None)


def _curve(n: Any, e_inf: float, e0: float, log_nc: float, alpha: float) -> Any:
    import numpy as np

    z = np.clip(alpha * (np.log(n) - log_nc), -50.0, 50.0)  # (N / Nc) ** alpha without overflow
    return e_inf + (e0 - e_inf) / (1.0 + np.exp(z))


def fit(sizes: Any, errors: Any) -> Fit | None:
    """The curve through dense ``(sizes, errors)`` (one point per model and seed); ``None`` with fewer than
    :data:`MIN_SIZES` distinct sizes or when the fit does not converge."""
    import warnings

    pairs = [(float(a), float(b)) for a, b in zip(sizes, errors)
             if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a > 0]
    if len({a for a, _ in pairs}) < MIN_SIZES or len(pairs) < 5:
        return None  # decided before numpy and scipy are imported: most leaderboards have no family to fit
    import numpy as np

    n = np.array([a for a, _ in pairs])
    e = np.array([b for _, b in pairs])
    from scipy.optimize import OptimizeWarning, curve_fit  # only when there is a curve to fit (a slow import)

    floor, top = max(float(e.min()), 0.0), float(e.max())
    log_lo, log_hi = math.log(n.min()), math.log(n.max())
    p0 = [floor / 2, top, (log_lo + log_hi) / 2, 1.0]
    bounds = ([0.0, floor + 1e-9, log_lo - 5, 0.05], [floor + 1e-9, max(top, 1.0) * 2, log_hi + 5, 10.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # an inestimable covariance: intervals left empty
            popt, pcov = curve_fit(_curve, n, e, p0=p0, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return Fit(*(float(v) for v in popt), pcov, float(n.min()), float(n.max()), int(len(n)))


def density_of(f: Fit, err: float, nonzero: float) -> dict[str, float | None]:
    """``effective_params``, ``capacity_density`` and its interval for one model."""
    eff = f.effective(err)
    lo, hi = f.interval(err) if eff is not None else (None, None)
    per = nonzero if nonzero and nonzero > 0 else None
    return {"effective_params": eff,
            "capacity_density": eff / per if eff is not None and per else None,
            "capacity_density_lo": lo / per if lo is not None and per else None,
            "capacity_density_hi": hi / per if hi is not None and per else None}


def family_fits(points: Any) -> dict[tuple, tuple[str, Fit]]:
    """``{group: (metric, fit)}`` from ``points``: ``(group, dense, nonzero, metric, value)`` tuples (or a frame
    with those columns, ``group`` a tuple); one fit per group whose dense rows span enough sizes."""
    if hasattr(points, "itertuples"):
        points = points[["group", "dense", "nonzero", "metric", "value"]].itertuples(index=False, name=None)
    dense: dict[tuple, list] = {}
    for group, is_dense, nonzero, metric, value in points:
        if is_dense:
            dense.setdefault(group, []).append((nonzero, metric, value))
    out = {}
    for group, part in dense.items():
        metric = part[0][1]
        f = fit([p[0] for p in part], [error_of(metric, p[2]) for p in part])
        if f is not None:
            out[group] = (metric, f)
    return out


def quality_metric(columns: Any) -> str | None:
    """The task metric a frame scores by: ``top1``, else ``perplexity``, else none."""
    return next((m for m in ("top1", "perplexity") if m in columns), None)


def families(board: Any) -> tuple[list[tuple], dict[tuple, tuple[str, Fit]]]:
    """Each leaderboard row's family (architecture, dataset, backend, its parameters, machine), and the fit of
    every family whose dense rows span enough sizes: ``(groups, {group: (metric, fit)})``. ``board``: a
    :class:`harness.query.board.Board` or a leaderboard DataFrame."""
    from harness.query.board import as_board

    board = as_board(board)
    metric = quality_metric(board.columns)
    if metric is None or "nonzero_params" not in board.columns or board.empty:
        return [], {}
    keys = ("dataset", "backend", "backend_params", "machine")
    group = [(str(r.get("model")).split("(", 1)[0], *(str(r.get(k)) for k in keys)) for r in board.rows]
    points = [(g, r.get("method") == "dense", r["nonzero_params"], metric, r[metric])
              for g, r in zip(group, board.rows) if r.get("nonzero_params") is not None and r.get(metric) is not None]
    return group, family_fits(points)


def add_columns(frame: Any) -> Any:
    """The leaderboard (a :class:`harness.query.board.Board` or a DataFrame; the same kind comes back) with
    :data:`COLUMNS` (before ``flags``) for the rows of every model whose dense family was measured (the
    ``dense`` rows of one architecture at several sizes, same dataset, backend and machine); unchanged when
    there is none."""
    from harness.query.board import Board, as_board, to_frame

    board = as_board(frame)
    group, fits = families(board)
    if not fits:
        return frame
    metric = quality_metric(board.columns)
    rows = []
    for g, row in zip(group, board.rows):
        row = dict(row, **dict.fromkeys(COLUMNS))
        nz, v = row.get("nonzero_params"), row.get(metric)
        if g in fits and nz is not None and v is not None:
            m, f = fits[g]
            row.update(density_of(f, error_of(m, float(v)), float(nz)))
        rows.append(row)
    at = board.columns.index("flags") if "flags" in board.columns else len(board.columns)
    columns = board.columns[:at] + [c for c in COLUMNS if c not in board.columns] + board.columns[at:]
    out = Board(columns, rows)
    return out if isinstance(frame, Board) else to_frame(out)


def curve_points(f: Fit, metric: str, count: int = 60) -> tuple[list[float], list[float]]:
    """``(sizes, values)`` of ``metric`` (top-1 or perplexity) along the fitted curve over the family's range
    (log-spaced), for a plot."""
    import numpy as np

    sizes = np.geomspace(f.lo, f.hi, count)
    err = f.error(sizes)
    return sizes.tolist(), (1.0 - err if metric == "top1" else np.exp(err)).tolist()
