"""VNN-COMP 2021's scoring rule: re-scoring the published results files reproduces the published totals,
and each rule of ``process_results.py`` (verdict words, overhead, conflicts, time bonus) on its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.verify.vnncomp2021 import (
    Row,
    normalize_result,
    read_results_csv,
    read_results_folder,
    score_2021,
    score_instance,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "vnncomp2021_results"


def published() -> dict[str, dict[str, int]]:
    """``{benchmark: {tool: score}}`` from the excerpt of the published output_multioverhead.txt."""
    out: dict[str, dict[str, int]] = {}
    bench = None
    for line in (DATA / "output_multioverhead.excerpt.txt").read_text().splitlines():
        if m := re.fullmatch(r"Category (\S+):", line):
            bench = m.group(1)
        elif m := re.fullmatch(r"(\S+): (-?\d+) \(.*%\)", line):
            out.setdefault(bench, {})[m.group(1)] = int(m.group(2))
    return out


def test_rescoring_the_published_results_reproduces_the_published_totals():
    expected = published()
    assert set(expected) == {"acasxu", "oval21"} and len(expected["acasxu"]) == 13
    got = score_2021(read_results_folder(DATA))
    lines = [f"{'benchmark':10} {'tool':10} {'published':>9} {'re-scored':>9}"]
    for bench, tools in expected.items():
        for tool, score in tools.items():
            lines.append(f"{bench:10} {tool:10} {score:9} {got[bench][tool].score:9}")
    print("\n".join(lines))  # the side-by-side table (pytest -s)
    assert {b: {t: got[b][t].score for t in tools} for b, tools in expected.items()} == expected
    assert set(got["acasxu"]) == set(expected["acasxu"])  # no tool scored that 2021 did not list
    assert got["acasxu"]["nnenum"].percent == 100.0 and round(got["acasxu"]["venus2"].percent, 2) == 93.09


@pytest.mark.parametrize(("word", "verdict"), [
    ("unsat", "holds"), ("SAT", "violated"), ("holds", "holds"), ("violated", "violated"), ("", "unknown"),
    ("no_result_in_file", "unknown"), ("prepare_instance_error_3", "unknown"), ("run_instance_timeout", "timeout"),
    ("error_exit_code_1", "error"), ("timeout", "timeout"), ("unknown", "unknown")])
def test_result_words_are_read_as_2021_read_them(word, verdict):
    assert normalize_result(word) == verdict


def test_an_unexpected_result_names_the_file_and_line(tmp_path):
    f = tmp_path / "tool.csv"
    f.write_text("acasxu,a.onnx,p.vnnlib,0.1,holds,2.0\nacasxu,a.onnx,q.vnnlib,0.1,maybe,2.0\n")
    with pytest.raises(ValueError, match=r"tool.csv:2: unexpected result 'maybe'"):
        read_results_csv(f)
    f.write_text("acasxu,a.onnx,p.vnnlib\n")
    with pytest.raises(ValueError, match=r"tool.csv:1: expected 6 columns"):
        read_results_csv(f)


def test_time_bonus_fastest_and_second_fastest_with_the_0_2_s_tie():
    # b ties with the fastest; the second-fastest time is b's, and c is within 0.2 s of it.
    got = score_instance({"a": ("holds", 1.0), "b": ("holds", 1.15), "c": ("holds", 1.3), "d": ("holds", 2.3),
                          "e": ("timeout", 1.0)})
    assert got == {"a": (12, True), "b": (12, True), "c": (11, False), "d": (10, False), "e": (0, False)}


def test_conflicts_by_each_rule():
    one_against_two = {"a": ("holds", 3.0), "b": ("holds", 4.0), "c": ("violated", 1.0)}
    assert score_instance(one_against_two, "odd_one_out") == {"a": (12, True), "b": (11, False), "c": (-100, False)}
    assert score_instance(one_against_two, "voting") == score_instance(one_against_two, "odd_one_out")
    assert {t: p for t, (p, _) in score_instance(one_against_two, "ignore").items()} == {"a": 0, "b": 0, "c": 0}
    two_against_three = {**one_against_two, "d": ("violated", 2.0), "e": ("holds", 9.0)}
    assert all(p == 0 for p, _ in score_instance(two_against_three, "odd_one_out").values())
    assert score_instance(two_against_three, "voting")["d"] == (-100, False)
    tie = {"a": ("holds", 1.0), "b": ("violated", 1.0)}
    assert all(p == 0 for p, _ in score_instance(tie, "voting").values())
    with pytest.raises(ValueError, match="unknown conflict rule 'vote'"):
        score_instance(tie, "vote")


def test_a_counterexample_random_sampling_also_found_scores_1():
    got = score_instance({"randgen": ("violated", 1.0), "x": ("violated", 1.0), "y": ("unknown", 1.0)})
    assert got == {"randgen": (1, False), "x": (1, False), "y": (0, False)}


def test_overhead_is_subtracted_per_tool_and_times_below_1_s_count_as_1_s():
    rows = lambda tool_times: [Row("b", f"n{i}.onnx", "p.vnnlib", 0.0, "holds", t)  # noqa: E731
                               for i, t in enumerate(tool_times)]
    # Tool "slow" has a 5 s start-up in every run; after its overhead it is as fast as "fast" on n1.
    scores = score_2021({"fast": rows([1.0, 3.0]), "slow": rows([5.0, 7.1])}, random_falsifier=None)["b"]
    assert scores["fast"].points == {"n0-p": 12, "n1-p": 12} and scores["slow"].points == {"n0-p": 12, "n1-p": 12}
    scores = score_2021({"fast": rows([1.0, 3.0]), "slow": rows([5.0, 7.3])}, random_falsifier=None)["b"]
    assert scores["slow"].points["n1-p"] == 11
