"""The ``paired`` kind of finding: configurations paired by the study (equal parameter counts), judged pair
by pair from the data; and the findings files of the LRP-QViT and CompactifAI studies."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_studies import Board  # the leaderboard writer of the studies tests (same folder)

from harness.query.refs import QueryError
from harness.report.studies import findings, load, report

SUITES = Path(__file__).resolve().parents[2] / "suites"
TT_LM = SUITES / "tensor-train-lm.findings.toml"
NEW = [SUITES / f"{name}.findings.toml" for name in ("lrp-qvit-study", "tensor-train-minilm", "tensor-train-lm")]


def _lm_board(path, tt_better: bool):
    b = Board(path)
    good, bad = [3.0, 3.1, 3.05], [4.0, 4.2, 4.1]
    for bond, rank in ((8, 8), (16, 16)):
        tt, svd = {"bond": bond, "cores": 3}, {"rank": rank, "energy": 0.9}
        b.add("tensor-train", tt, "accuracy", good if tt_better else bad, "perplexity", model="tiny-lm")
        b.add("svd", svd, "accuracy", bad if tt_better else good, "perplexity", model="tiny-lm")
        b.add("tensor-train", tt, "size", [1000 * bond] * 3, "total_params", model="tiny-lm")
        b.add("svd", svd, "size", [1000 * bond + 7] * 3, "total_params", model="tiny-lm")
        steps = {"steps": [{"name": "tensor-train", "params": tt}, {"name": "finetune", "params": {"epochs": 1}}]}
        b.add("tensor-train+finetune", steps, "accuracy", [2.0, 2.1, 2.05], "perplexity", model="tiny-lm")
    b.close()


@pytest.mark.parametrize("tt_better", [True, False])
def test_matched_pairs_are_judged_from_the_data_whichever_way_it_goes(tmp_path, tt_better):
    db = tmp_path / "s.db"
    _lm_board(db, tt_better)
    by_key = {f.key: f for f in findings(load(db), [TT_LM])}
    tt = by_key["tt-beats-svd-lm"]
    # Two raw pairs measured; the healed svd side was not, so those pairs are not judged.
    assert len(tt.checks) == 2
    assert tt.verdict == ("reproduced" if tt_better else "not reproduced")
    assert "(total_params 8000 vs 8007)" in tt.checks[0][1]
    # Healed 2.0-2.1 against raw tensor trains at 3.0-3.1 (tt_better) or 4.0-4.2: healing lowers it either way.
    assert by_key["healing-recovers"].verdict == "reproduced"


def test_the_new_studies_findings_files_are_valid_and_render(tmp_path):
    db = tmp_path / "s.db"
    Board(db).add("dense", {}, "accuracy", [0.97] * 3, "top1", model="vit-tiny").close()
    text = report(db, NEW)
    assert "Relevance-guided bit allocation (LRP)" in text and "**not measured**" in text
    assert "CompactifAI on MiniLM" in text


def test_a_matched_finding_needs_pairs_of_configurations(tmp_path):
    path = tmp_path / "bad.findings.toml"
    path.write_text('[[findings]]\nkey = "x"\nclaim = "c"\nsource = "s"\nrule = "r"\nkind = "paired"\n'
                    'metric = "perplexity"\nbetter = "smaller"\npairs = [[{ method = "svd" }]]\n')
    db = tmp_path / "s.db"
    Board(db).close()
    with pytest.raises(QueryError, match="better = 'higher' or 'lower', pairs as"):
        report(db, [path])
