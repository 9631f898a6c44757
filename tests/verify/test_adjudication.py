"""Adjudication across the verifiers of one benchmark, from their stored verdict records."""

from __future__ import annotations

import pytest

from harness.verify.adjudication import adjudicate


def rec(i, result, valid=None, kind="unlabelled", time_s=2.0, truth=None):
    return {"instance": i, "vnnlib": f"{i}.vnnlib", "onnx": "net.onnx", "kind": kind, "result": result,
            "witness_valid": valid, "time_s": time_s, "truth": truth}


def test_a_holds_where_another_verifiers_witness_replays_is_unsound_and_flagged():
    judged = adjudicate({"pgd": [rec(0, "violated", True), rec(1, "unknown")],
                         "canary": [rec(0, "holds"), rec(1, "holds")]})
    canary = judged["canary"]
    assert canary.counts["unsound"] == 1 and canary.counts["verified"] == 1 and canary.score == -150 + 10
    assert canary.flags == ["unsound: holds on 1 instance known to be violated (1 by another verifier's replaying "
                            "witness)"]
    assert "a witness of pgd replays" in canary.instances[0]["why"]
    assert judged["pgd"].score == 10 and not judged["pgd"].flags


def test_planted_and_peer_violated_instances_count_as_known_violated():
    judged = adjudicate({"v": [rec(0, "holds", kind="planted"),
                               rec(1, "holds", kind="peer_violated", truth={"agree": ["nnenum", "oval"]})]})
    assert judged["v"].counts["unsound"] == 2 and judged["v"].score == -300
    assert "peers agree it is violated (nnenum, oval)" in judged["v"].instances[1]["why"]


def test_a_replaying_witness_beats_the_peers_holds():
    judged = adjudicate({"v": [rec(0, "violated", True, kind="peer_holds", truth={"agree": ["a", "b"]})]})
    assert judged["v"].score == 10 and "contradicts the peers' holds (a, b)" in judged["v"].instances[0]["why"]


@pytest.mark.parametrize(("conflicts", "holders", "credited"), [
    ("odd_one_out", 2, True), ("odd_one_out", 1, False), ("voting", 2, True), ("ignore", 2, False)])
def test_a_holds_disputed_without_a_witness_is_scored_by_the_conflict_rule(conflicts, holders, credited):
    cells = {f"h{k}": [rec(0, "holds")] for k in range(holders)}
    cells["liar"] = [rec(0, "violated", False)]
    judged = adjudicate(cells, conflicts=conflicts)
    assert judged["liar"].counts["invalid_witness"] == 1 and judged["liar"].score == -150
    assert judged["liar"].flags[0].startswith("invalid witness")
    for k in range(holders):
        j = judged[f"h{k}"]
        assert j.counts["disputed"] == 1 and j.score == (10 if credited else 0) and not j.flags


def test_the_2021_score_of_the_same_answers_votes_and_awards_the_time_bonus():
    # Overheads: each cell's smallest decided time (1 s for all three); times below 1 s count as 1 s.
    judged = adjudicate({"a": [rec(0, "holds", time_s=1.0), rec(1, "holds", time_s=1.0)],
                         "b": [rec(0, "holds", time_s=1.0), rec(1, "holds", time_s=4.0)],
                         "c": [rec(0, "violated", True, time_s=1.0), rec(1, "unknown")]})
    # Instance 0: two holds against one violated: 2021 believes the majority, whatever the witness says.
    assert judged["c"].score_2021 == -100 and judged["a"].score_2021 == 12 + 12 and judged["b"].score_2021 == 12 + 11
    assert judged["a"].counts["unsound"] == 1  # while the 2026 judgement follows the witness


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown conflict rule"):
        adjudicate({"a": [rec(0, "holds")]}, conflicts="majority")
