"""The shift and density studies' findings (kinds ``matched`` and ``exceeds``), their tables, and the
capacity-density plot of the HTML report, on small generated leaderboards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.core.identity import digest
from harness.report.html import build_report
from harness.report.studies import findings, load, report
from harness.store.db import Store

SEEDS = (0, 1, 2)
SUITES = Path(__file__).resolve().parents[2] / "suites"
SHIFT = SUITES / "shift-study.findings.toml"
DENSITY = SUITES / "density-study.findings.toml"
WIDTHS = {8: 100, 16: 200, 32: 400, 64: 800, 128: 1600, 256: 3200}


class Board:
    """Writes cells straight into a leaderboard, as a run of the harness would (with model parameters)."""

    def __init__(self, path):
        self.store = Store(path)
        self.run = self.store.create_run(suite_name="tiny", suite_sha256="x", seeds=list(SEEDS),
                                         machine={"cpu_model": "test cpu", "usable_cores": 2}, machine_hash="m" * 16)

    def add(self, method, params, suite, values, metric, model="mlp", model_params=None):
        for seed, value in zip(SEEDS, values, strict=True):
            mp = model_params or {"hidden": 64}
            backend = None if suite == "size" else "onnxruntime-cpu"
            identity = {"model": model, "mp": mp, "method": method, "method_params": params, "seed": seed,
                        "backend": backend, "suite": suite, "metric": metric}
            self.store.record_cell(self.run, {
                "cell_key": digest(identity), "model": model, "model_params": mp, "dataset": "digits",
                "dataset_params": {}, "method": method, "method_params": params, "seed": seed,
                "backend": backend, "backend_params": {}, "suite": suite, "status": "ok",
                "finished_at": f"2026-01-01T00:00:{seed:02d}"},
                [{"metric": metric, "value": value, "unit": "x", "params": {}, "info": {}}])
        return self

    def close(self):
        self.store.finish_run(self.run, "complete")
        self.store.close()


def _shift_board(path, equal: bool):
    b = Board(path)
    for method, params, top1, robust in (
            ("global-magnitude", {"sparsity": 0.5}, 0.95, 0.60),
            ("random", {"sparsity": 0.25}, 0.955, 0.60),
            ("kbit", {"bits": 4}, 0.952, 0.60 if equal else 0.40),
            ("channel-l1", {"sparsity": 0.75}, 0.85, 0.30),  # far from every other: not compared
            # at chance, equal accuracy but not compared (below at_least), or random-kbit would pair them
            ("random", {"sparsity": 0.9}, 0.12, 0.95), ("kbit", {"bits": 2}, 0.12, 0.30)):
        b.add(method, params, "accuracy", [top1 - 0.002, top1, top1 + 0.002], "top1")
        b.add(method, params, "robustness-shift", [robust - 0.005, robust, robust + 0.005], "relative_robustness")
        b.add(method, params, "robustness-shift", [1.0, 1.01, 1.02], "mce")
    b.close()


@pytest.mark.parametrize("equal", [True, False])
def test_matched_compares_the_closest_configurations(tmp_path, equal):
    db = tmp_path / "s.db"
    _shift_board(db, equal)
    found = {f.key: f for f in findings(load(db), [SHIFT])}
    f = found["equal-accuracy-equal-robustness"]
    assert len(f.checks) == 3  # magnitude-random, magnitude-kbit, random-kbit; channel-l1 has no match
    assert f.verdict == ("reproduced" if equal else "partly reproduced (1 of 3 comparisons)")
    assert any("no global-magnitude and channel-l1 configurations within 0.02 top1" in n for n in f.notes)
    assert found["equal-accuracy-equal-mce"].verdict == "reproduced"
    text = report(db, [SHIFT])
    assert "## Robustness under shift: clean and corrupted top-1" in text
    assert "| random           |       0.25 |" in text


def _density_board(path, good: bool):
    b = Board(path)
    curve = {n: 0.98 - 0.88 / (1 + (n / 300) ** 1.5) for n in WIDTHS.values()}
    for width, n in WIDTHS.items():
        b.add("dense", {}, "accuracy", [curve[n] - 0.001, curve[n], curve[n] + 0.001], "top1",
              model_params={"hidden": width})
        b.add("dense", {}, "size", [n] * 3, "nonzero_params", model_params={"hidden": width})
    wide = {"hidden": 256}
    # a ticket of 800 nonzero weights as good as the dense model of 1600: density 2
    for method, top1 in (("lottery-ticket", curve[1600] if good else curve[400]),
                         ("random", curve[400] if good else curve[1600])):
        b.add(method, {"sparsity": 0.75}, "accuracy", [top1 - 0.001, top1, top1 + 0.001], "top1", model_params=wide)
        b.add(method, {"sparsity": 0.75}, "size", [800] * 3, "nonzero_params", model_params=wide)
    b.close()


@pytest.mark.parametrize("good", [True, False])
def test_exceeds_judges_capacity_density_from_the_fitted_family(tmp_path, good):
    db = tmp_path / "d.db"
    _density_board(db, good)
    frame = load(db)
    cd = frame[(frame["metric"] == "capacity_density") & (frame["method"] == "lottery-ticket")]
    assert set(cd["model"]) == {"mlp(hidden=256)"}  # a family of widths: models named with them
    assert np.mean(cd["value"]) == pytest.approx(2.0 if good else 0.5, rel=0.1)
    f = {f.key: f for f in findings(frame, [DENSITY])}["trained-sparse-density"]
    assert len(f.checks) == 2 and f.verdict == ("reproduced" if good else "not reproduced")
    text = report(db, [DENSITY])
    assert "## Capacity density: the dense family" in text and "mlp(hidden=8)" in text


def test_the_html_report_plots_the_density_curve(tmp_path):
    from harness.query.leaderboard import leaderboard

    db = tmp_path / "d.db"
    _density_board(db, True)
    # filtering on a method keeps its family for the fit, then shows only the method's rows
    board = leaderboard(db, method="lottery-ticket", sort="capacity_density")
    assert set(board["method"]) == {"lottery-ticket"}
    assert board["capacity_density"].to_numpy() == pytest.approx(2.0, rel=0.1)
    assert board["rank"].notna().all()  # higher is better, from the catalogue
    page = build_report(db)
    assert "Capacity density: mlp on digits (onnxruntime-cpu)" in page
    assert "fitted dense curve (18 points)" in page and "capacity_density" in page
