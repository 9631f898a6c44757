"""The robustness-shift suite: seeded corruptions at five severities, and mCE against the dense model."""

import json
import sqlite3

import numpy as np
import pytest

from harness.builtins.suites import corruptions

SUITE = """
name = "shift"
seeds = [0]
[[matrix]]
models = ["mlp"]
datasets = ["digits"]
methods = [{ name = "random", sparsity = 0.9 }]
backends = ["onnxruntime-cpu"]
suites = ["accuracy", "robustness-shift"]
[settings.robustness-shift]
samples = 60
"""


def _images(n=6, seed=0):
    x = np.zeros((n, 1, 8, 8), dtype=np.float32)
    x[:, :, 2:6, 3:5] = 1.0  # a bar in the middle
    return x + np.random.default_rng(seed).uniform(0, 0.1, size=x.shape).astype(np.float32)


@pytest.mark.parametrize("name", corruptions.CORRUPTIONS)
def test_each_corruption_is_seeded_graded_and_in_range(name):
    x = _images()
    dist = []
    for s in corruptions.SEVERITIES:
        a = corruptions.corrupt(x, name, s, 0, (0.0, 1.0))
        assert a.shape == x.shape and a.dtype == x.dtype
        assert a.min() >= 0.0 and a.max() <= 1.0
        assert np.array_equal(a, corruptions.corrupt(x, name, s, 0, (0.0, 1.0)))  # a function of its arguments
        dist.append(float(np.abs(a - x).mean()))
    assert dist[0] > 0  # severity 1 changes the images
    assert dist[-1] > dist[0]  # severity 5 changes them more
    if name in ("gaussian-noise", "rotation", "translation", "occlusion"):  # the draws follow the seed
        other_seed = corruptions.corrupt(x, name, 3, 1, (0, 1))
        assert not np.array_equal(corruptions.corrupt(x, name, 3, 0, (0, 1)), other_seed)


def test_channels_move_together_and_bad_names_are_refused():
    x = np.repeat(_images(), 3, axis=1)  # three equal channels
    for name in ("rotation", "translation", "occlusion", "gaussian-blur"):
        a = corruptions.corrupt(x, name, 4, 0, (0.0, 1.0))
        assert np.array_equal(a[:, 0], a[:, 1]) and np.array_equal(a[:, 1], a[:, 2])
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corruptions.corrupt(x, "fog", 1, 0, (0, 1))
    with pytest.raises(ValueError, match="severity 6"):
        corruptions.corrupt(x, "contrast", 6, 0, (0, 1))


def test_suite_reports_mce_against_dense(harness_cli, suite_file, tmp_path):
    db = tmp_path / "s.db"
    proc = harness_cli("run", suite_file(SUITE), "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT c.method, m.metric, m.params, m.value, m.info, m.stats FROM measurements m "
                        "JOIN cells c ON c.id = m.cell_id WHERE c.suite = 'robustness-shift'").fetchall()
    by = {(method, metric, json.loads(params).get("corruption")): (value, info, stats)
          for method, metric, params, value, info, stats in rows}
    # the planner added the dense baseline: its mCE is 1 by definition
    assert by[("dense", "mce", None)][0] == 1.0
    assert by[("dense", "shift_top1_retained", None)][0] == 1.0
    for name in corruptions.CORRUPTIONS:
        errs = json.loads(by[("random", "shift_error", name)][2])["by_severity"]
        assert len(errs) == 5 and by[("random", "shift_error", name)][0] == pytest.approx(np.mean(errs), abs=1e-6)
    # mCE is the mean of the per-corruption ratios of summed errors, recorded in its info
    ce = json.loads(by[("random", "mce", None)][1])["corruption_error"]
    for name, value in ce.items():
        assert value == pytest.approx(by[("random", "shift_error", name)][0] / by[("dense", "shift_error", name)][0],
                                      rel=1e-5)
    assert by[("random", "mce", None)][0] == pytest.approx(np.mean(list(ce.values())))
    shift = by[("random", "shift_top1", None)][0]
    clean = 1 - by[("random", "shift_error", "none")][0]
    assert by[("random", "relative_robustness", None)][0] == pytest.approx(shift / clean)
    assert by[("random", "shift_top1_retained", None)][0] == pytest.approx(shift / by[("dense", "shift_top1", None)][0])
    # 90% random pruning of a 64-unit MLP loses accuracy everywhere: more error than dense under shift
    assert by[("random", "mce", None)][0] > 1.0
