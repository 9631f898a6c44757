"""Capacity density: a dense family's fitted curve, effective sizes, and the leaderboard's columns."""

import math

import numpy as np
import pytest

from harness.query import density

SIZES = [100, 200, 400, 800, 1600, 3200]


def _curve(n, e_inf=0.02, e0=0.9, nc=300.0, alpha=1.5):
    return e_inf + (e0 - e_inf) / (1 + (np.asarray(n, dtype=float) / nc) ** alpha)


def test_fit_recovers_a_known_curve_and_inverts_it():
    noise = np.random.default_rng(0).normal(0, 0.002, size=3 * len(SIZES))
    sizes = SIZES * 3
    f = density.fit(sizes, _curve(sizes) + noise)
    assert f is not None and f.points == 18
    assert f.alpha == pytest.approx(1.5, rel=0.1) and f.e_inf == pytest.approx(0.02, abs=0.01)
    assert math.exp(f.log_nc) == pytest.approx(300, rel=0.1) and f.e0 == pytest.approx(0.9, abs=0.05)
    # the dense size whose error is the curve's error at 1000 parameters is about 1000
    eff = f.effective(float(_curve(1000)))
    assert eff == pytest.approx(1000, rel=0.1)
    lo, hi = f.interval(float(_curve(1000)))
    assert lo < eff < hi and hi / lo < 2  # six sizes, three seeds: a tight interval
    assert f.interval(float(_curve(1000))) == (lo, hi)  # seeded draws: the same data, the same interval
    # a model twice as good as its size: density about 2
    got = density.density_of(f, float(_curve(1000)), 500)
    assert got["capacity_density"] == pytest.approx(2, rel=0.1)
    assert got["capacity_density_lo"] < got["capacity_density"] < got["capacity_density_hi"]


def test_no_size_beyond_the_asymptote_or_far_outside_the_family():
    f = density.fit(SIZES * 2, list(_curve(SIZES)) * 2)
    assert f.effective(f.e_inf - 0.001) is None  # no dense model reaches it
    assert f.effective(f.e0 + 0.001) is None  # at chance: no size
    assert f.effective(float(_curve(10))) is None  # ten times below the smallest dense model
    assert f.effective(float(_curve(50))) is not None  # within EXTRAPOLATE of the range
    assert density.density_of(f, f.e_inf / 2, 100) == {c: None for c in density.COLUMNS}


def test_too_few_sizes_fit_nothing():
    assert density.fit([100, 100, 200, 200, 200], [0.2, 0.21, 0.1, 0.11, 0.1]) is None
    assert density.error_of("top1", 0.9) == pytest.approx(0.1)
    assert density.error_of("perplexity", math.e) == pytest.approx(1.0)


def test_leaderboard_columns(tmp_path):
    import pandas as pd

    rows = [{"model": f"mlp(hidden={h})", "dataset": "digits", "method": "dense", "method_params": "",
             "seed": s, "backend": "onnxruntime-cpu", "backend_params": "", "machine": "m", "top1": 1 - e,
             "nonzero_params": n, "flags": None}
            for s in range(2) for h, n, e in zip(range(6), SIZES, _curve(SIZES))]
    rows.append({**rows[0], "model": "mlp(hidden=5)", "method": "global-magnitude", "method_params": "sparsity=0.5",
                 "top1": 1 - float(_curve(1600)), "nonzero_params": 800})
    rows.append({**rows[0], "model": "lenet5", "top1": 0.9, "nonzero_params": 100})  # no family: left empty
    out = density.add_columns(pd.DataFrame(rows))
    assert list(out.columns)[-5:] == [*density.COLUMNS, "flags"]
    pruned = out[out["method"] == "global-magnitude"].iloc[0]
    assert pruned["effective_params"] == pytest.approx(1600, rel=0.05)
    assert pruned["capacity_density"] == pytest.approx(2, rel=0.05)
    assert out[out["model"] == "lenet5"]["capacity_density"].isna().all()
    dense = out[(out["method"] == "dense") & (out["model"] != "lenet5")]
    assert dense["capacity_density"].to_numpy() == pytest.approx(1, rel=0.05)  # the family is on its own curve
    no_family = pd.DataFrame(rows[-1:])
    assert list(density.add_columns(no_family).columns) == list(no_family.columns)
