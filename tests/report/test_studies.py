"""harness studies: findings judged from the data, whichever way they go, on small generated leaderboards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.identity import digest
from harness.query.refs import QueryError
from harness.report.findings import Stat, compare_means, pareto_front
from harness.report.studies import beside_suites, findings, load, report
from harness.store.db import Store

SEEDS = (0, 1, 2)
SUITES = Path(__file__).resolve().parents[2] / "suites"
#: The findings files of the two studies, beside their suite files.
FILES = [SUITES / "pruning-study.findings.toml", SUITES / "quantization-study.findings.toml"]


class Board:
    """Writes cells straight into a leaderboard, as a run of the harness would."""

    def __init__(self, path, suite_path=None):
        self.store = Store(path)
        self.run = self.store.create_run(suite_name="tiny-study", suite_sha256="x", seeds=list(SEEDS),
                                         machine={"cpu_model": "test cpu", "usable_cores": 2},
                                         suite_path=None if suite_path is None else str(suite_path))

    def add(self, method, params, suite, values, metric, backend="onnxruntime-cpu", model="lenet5", info=None,
            **mparams):
        """One cell per seed; ``values`` one per seed."""
        for seed, value in zip(SEEDS, values, strict=True):
            identity = {"model": model, "dataset": "digits", "method": method, "method_params": params,
                        "seed": seed, "backend": None if suite == "size" else backend, "suite": suite,
                        "metric": metric, "mparams": mparams}
            self.store.record_cell(self.run, {
                "cell_key": digest(identity), "model": model, "model_params": {}, "dataset": "digits",
                "dataset_params": {}, "method": method, "method_params": params, "seed": seed,
                "backend": identity["backend"], "backend_params": {}, "suite": suite, "status": "ok",
                "finished_at": f"2026-01-01T00:00:{seed:02d}"},
                [{"metric": metric, "value": value, "unit": "x", "params": mparams, "info": info or {}}])
        return self

    def close(self):
        self.store.finish_run(self.run, "complete")
        self.store.close()


def _board(path, good: bool):
    """Every finding's data; ``good`` makes each known result hold, otherwise each fails."""
    b = Board(path)
    hi, lo = [0.90, 0.91, 0.92], [0.30, 0.35, 0.32]
    b.add("dense", {}, "accuracy", [0.97, 0.975, 0.98], "top1")
    b.add("global-magnitude", {"sparsity": 0.9}, "accuracy", hi if good else lo, "top1")
    b.add("random", {"sparsity": 0.9}, "accuracy", lo if good else hi, "top1")
    b.add("layer-magnitude", {"sparsity": 0.9}, "accuracy", [0.8, 0.82, 0.81] if good else [0.99] * 3, "top1")
    b.add("global-magnitude", {"sparsity": 0.5}, "accuracy", [0.1, 0.1, 0.1], "top1")  # below 0.9: not judged
    b.add("random", {"sparsity": 0.5}, "accuracy", [0.9, 0.9, 0.9], "top1")
    for bits, top1 in {2: 0.5, 4: 0.969 if good else 0.6, 8: 0.97}.items():
        b.add("kbit", {"bits": bits}, "accuracy", [top1 - 0.002, top1, top1 + 0.002], "top1")
        b.add("kbit", {"bits": bits}, "size", [bits * 1000] * 3, "packed_bytes")
    gate = {"quality_gate": 0.99}  # the accuracy suite records the gate it applied beside top1_retained
    b.add("kbit", {"bits": 8}, "accuracy", [1.0, 0.995, 1.0] if good else [0.9, 0.9, 0.91], "top1_retained",
          info=gate)
    b.add("int8-static", {"per_channel": True}, "accuracy", [1.0, 1.0, 0.998], "top1_retained", info=gate)
    b.add("kbit", {"bits": 3}, "accuracy", [0.50, 0.52, 0.51], "top1")
    for bits in (2, 3):
        b.add("splitquant", {"bits": bits}, "accuracy", [0.93, 0.94, 0.935] if good else [0.4, 0.41, 0.42], "top1")
    for bs in (1, 256):
        b.add("channel-l1", {"sparsity": 0.5}, "latency", [1.5, 1.6, 1.55] if good else [1.0, 0.99, 1.01],
              "speedup", batch_size=bs)
        b.add("global-magnitude", {"sparsity": 0.9}, "latency", [1.0, 0.98, 1.01] if good else [1.3, 1.35, 1.32],
              "speedup", batch_size=bs)
    b.close()


def test_compare_means_uses_twice_the_standard_error():
    a, b = Stat.of([0.9, 0.91, 0.92]), Stat.of([0.3, 0.35, 0.32])
    assert compare_means(a, b) == "higher" and compare_means(b, a) == "lower"
    assert compare_means(Stat.of([0.9, 0.95, 0.85]), Stat.of([0.91, 0.86, 0.93])) == "level"
    one = Stat.of([0.5])
    assert one.std == 0 and compare_means(Stat.of([0.51]), one) == "higher"  # one seed: no error bar
    assert Stat.of([]) is None and Stat.of([1.0, 2.0, 3.0]).text(1) == "2.0 ± 1.0"


def test_pareto_front():
    points = {2: (100, 0.5), 4: (200, 0.96), 8: (400, 0.96), 32: (1600, 0.97)}
    assert pareto_front(points) == [2, 4, 32]
    assert pareto_front({"a": (1, 0.5), "b": (1, 0.5), "c": (2, 0.4)}) == ["a", "b"]  # equal points both stay


@pytest.mark.parametrize("good", [True, False])
def test_every_finding_gets_a_verdict_from_the_data(good, tmp_path):
    db = tmp_path / "s.db"
    _board(db, good)
    verdicts = {f.key: f.verdict for f in findings(load(db), FILES)}
    assert set(verdicts) == {"magnitude-vs-random", "global-vs-layerwise", "8bit-keeps-accuracy", "4bit-pareto",
                             "splitquant-low-bit", "structured-latency"}
    expected_8bit = "reproduced" if good else "partly reproduced (1 of 2 comparisons)"
    for key, verdict in verdicts.items():
        if key == "8bit-keeps-accuracy":
            assert verdict == expected_8bit
        else:
            assert verdict == ("reproduced" if good else "not reproduced"), (key, verdict)


def test_missing_data_is_not_measured(tmp_path):
    db = tmp_path / "s.db"
    Board(db).add("dense", {}, "accuracy", [0.97, 0.97, 0.97], "top1").add(
        "channel-l1", {"sparsity": 0.5}, "latency", [1.5, 1.5, 1.5], "speedup", batch_size=1).close()
    result = {f.key: f for f in findings(load(db), FILES)}
    assert all(f.verdict == "not measured" for f in result.values())
    # Structured timing alone cannot show the contrast: it is reported, not judged.
    assert any("only structured" in n for n in result["structured-latency"].notes)


def test_report_has_runs_findings_and_tables(tmp_path):
    db = tmp_path / "s.db"
    _board(db, True)
    text = report(db, FILES)
    assert text.startswith("# Studies")
    assert "tiny-study" in text and "test cpu, 2 cores" in text
    assert "Global magnitude pruning beats random pruning at high sparsity. | **reproduced**" in text
    assert "0.910 ± 0.010" in text  # global-magnitude at 0.9: mean ± std over the three seeds
    assert "## Quantization: top-1 by bit width" in text and "## Pruning: top-1 by sparsity" in text
    assert "mean top1_retained >= 0.99 (the accuracy suite's quality gate" in text  # the gate the data recorded


def test_cli_writes_the_report(tmp_path, harness_cli):
    db = tmp_path / "s.db"
    _board(db, False)
    out = tmp_path / "docs" / "studies.md"
    files = [arg for f in FILES for arg in ("--findings", f)]
    proc = harness_cli("studies", "--db", db, *files, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "**not reproduced**" in out.read_text()
    printed = harness_cli("studies", "--db", db, *files)
    assert printed.stdout == out.read_text()
    bad = harness_cli("studies", "--db", db, "--findings", tmp_path / "none.toml")
    assert bad.returncode == 2 and "no findings file" in bad.stderr
    missing = harness_cli("studies", "--db", tmp_path / "nope.db")
    assert missing.returncode == 2 and "no leaderboard database" in missing.stderr


def test_pipeline_labels_and_sweeps(tmp_path):
    """A pipeline's swept parameter comes from its step; its label names every step."""
    db = tmp_path / "s.db"
    steps = {"steps": [{"name": "global-magnitude", "params": {"sparsity": 0.9}},
                       {"name": "finetune", "params": {"epochs": 3, "lr": 0.003}}]}
    Board(db).add("global-magnitude+finetune", steps, "accuracy", [0.9, 0.9, 0.9], "top1").close()
    frame = load(db)
    assert set(frame["sparsity"]) == {0.9}
    assert set(frame["label"]) == {"global-magnitude + finetune(epochs=3, lr=0.003)"}
    assert json.loads(frame["method_params"].iloc[0]) == steps


def test_findings_files_are_found_beside_the_runs_suite_files(tmp_path):
    """By default a run of ``suites/NAME.toml`` is judged by ``suites/NAME.findings.toml``."""
    db = tmp_path / "s.db"
    Board(db, suite_path=SUITES / "quantization-study.toml").add("dense", {}, "accuracy", [0.97] * 3, "top1").close()
    assert beside_suites(db) == [SUITES / "quantization-study.findings.toml"]
    text = report(db)
    assert "the rules of `quantization-study.findings.toml`" in text
    assert "SplitQuant beats plain k-bit" in text and "Global magnitude pruning" not in text
    alone = tmp_path / "alone.db"
    Board(alone).close()  # a run without a suite file beside findings
    assert "_No findings file" in report(alone)


@pytest.mark.parametrize("text, message", [
    ('[[findings]]\nkey = "x"\nclaim = "c"\nsource = "s"\nrule = "r"\nkind = "better"\n', "unknown kind 'better'"),
    ('[[findings]]\nkey = "x"\nclaim = "c"\nsource = "s"\nrule = "r"\nkind = "higher"\nmetric = "top1"\n',
     "needs a, b, sweep, at_least or values"),
    ('[[tables]]\nheading = "h"\nkind = "sweep"\nmetric = "top1"\n', "needs sweep, baseline"),
    ('[study]\n', "unknown key 'study'"),
])
def test_a_bad_findings_file_is_a_usage_error_naming_it(tmp_path, text, message):
    path = tmp_path / "bad.findings.toml"
    path.write_text(text)
    db = tmp_path / "s.db"
    Board(db).close()
    with pytest.raises(QueryError, match=message) as err:
        report(db, [path])
    assert str(path) in str(err.value) and err.value.file == str(path)


BREAK_EVEN = SUITES / "break-even-study.findings.toml"


def _break_even_board(path, csr_from: float, bsr_from: float | None):
    """Speedups over dense at batch 32: global-magnitude pays off from ``csr_from`` on torch-sparse-cpu,
    never on torch-cpu; block from ``bsr_from`` (``None``: never)."""
    b = Board(path)
    for s in (0.5, 0.8, 0.9, 0.95, 0.98):
        csr = [2.0, 2.1, 2.05] if s >= csr_from else [0.5, 0.55, 0.52]
        bsr = [1.6, 1.7, 1.65] if bsr_from is not None and s >= bsr_from else [0.9, 1.0, 0.95]
        b.add("global-magnitude", {"sparsity": s}, "latency", csr, "speedup", backend="torch-sparse-cpu",
              batch_size=32)
        b.add("global-magnitude", {"sparsity": s}, "latency", [1.0, 0.99, 1.01], "speedup", backend="torch-cpu",
              batch_size=32)
        b.add("block", {"sparsity": s, "block_rows": 4, "block_cols": 4}, "latency", bsr, "speedup",
              backend="torch-sparse-cpu", batch_size=32)
    b.close()


@pytest.mark.parametrize("csr_from,bsr_from,expected", [
    (0.9, 0.8, {"unstructured-needs-90": "reproduced", "block-breaks-even-earlier": "reproduced"}),
    (0.5, None, {"unstructured-needs-90": "partly reproduced (1 of 2 comparisons)",
                 "block-breaks-even-earlier": "not reproduced"}),
])
def test_break_even_verdicts_follow_the_data(csr_from, bsr_from, expected, tmp_path):
    """The break-even sparsity is the lowest from which every higher one is a real gain; a dense backend
    that never pays off is consistent with 'needs more than 90%', a block method that never does is not."""
    db = tmp_path / "s.db"
    _break_even_board(db, csr_from, bsr_from)
    result = {f.key: f for f in findings(load(db), [BREAK_EVEN])}
    assert {k: result[k].verdict for k in expected} == expected
    assert result["4bit-size-optimal"].verdict == "not measured"
    texts = [t for _, t in result["unstructured-needs-90"].checks]
    assert any(f"torch-sparse-cpu, batch 32, global-magnitude: break-even sparsity {csr_from:g}" in t for t in texts)
    assert any("torch-cpu, batch 32, global-magnitude: no real gain" in t for t in texts)
