"""Peer verdicts as truth: the published VNN-COMP 2021 results and plain truth files, by the agreement rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.verify.truth import agreed, read_truth

RESULTS = Path(__file__).resolve().parents[1] / "data" / "vnncomp2021_results"


def test_agreement_needs_two_tools_and_no_dissent():
    assert agreed({"a": "holds", "b": "holds"}).verdict == "holds"
    assert agreed({"a": "holds"}).verdict is None  # one tool is not agreement
    split = agreed({"a": "holds", "b": "holds", "c": "violated"})
    assert split.verdict is None and split.disputed and split.agree == ("a", "b") and split.disagree == ("c",)


def test_the_published_acasxu_verdicts_the_issue_names():
    truth = read_truth(RESULTS, benchmark="acasxu")
    for name in ("ACASXU_run2a_1_9_batch_2000-prop_7", "ACASXU_run2a_2_9_batch_2000-prop_8",
                 "ACASXU_run2a_1_5_batch_2000-prop_2", "ACASXU_run2a_3_6_batch_2000-prop_2"):
        t = truth[name]
        assert t.verdict == "violated" and {"nnenum", "a-b-CROWN"} <= set(t.agree) and not t.disagree, (name, t)
    assert truth["ACASXU_run2a_1_1_batch_2000-prop_3"].verdict == "holds"
    assert len(truth) == 186  # every scored instance of 2021's acasxu
    assert sum(t.verdict is not None for t in truth.values()) == 180
    disputed = [n for n, t in truth.items() if t.disputed]
    assert disputed and all(truth[n].verdict is None for n in disputed)  # 2021 had conflicts: no truth there


def test_a_plain_truth_file(tmp_path):
    f = tmp_path / "truth.csv"
    f.write_text("instance,truth\nnet_a-prop_1,unsat\nnet_a-prop_2,violated\n")
    assert {n: t.verdict for n, t in read_truth(f).items()} == {"net_a-prop_1": "holds", "net_a-prop_2": "violated"}
    f.write_text("onnx,vnnlib,truth\n./x/net_a.onnx.gz,./x/prop_1.vnnlib,sat\n")
    assert read_truth(f)["net_a-prop_1"].verdict == "violated"


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty truth file"),
    ("name,verdict\na,holds\n", "header must be instance,truth"),
    ("instance,truth\na,maybe\n", r"truth.csv:2: truth must be holds, violated, unsat or sat, got 'maybe'"),
    ("instance,truth\na,holds,x\n", "truth.csv:2: expected 2 columns"),
    ("instance,truth\na,holds\na,sat\n", "a is given both holds and violated"),
])
def test_a_bad_truth_file_is_refused_with_the_reason(tmp_path, text, message):
    f = tmp_path / "truth.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_truth(f)


def test_binary_files_are_refused_as_truth_and_as_results(tmp_path):
    f = tmp_path / "truth.csv"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff,\x00")
    with pytest.raises(ValueError, match="header must be instance,truth"):
        read_truth(f)
    f.write_bytes(b"instance,truth\n" + b'"' + b"x" * 200_000 + b'",sat\n')  # past csv's field size limit
    with pytest.raises(ValueError, match="not a truth file: field larger than field limit"):
        read_truth(f)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "tool.csv").write_bytes(b"\x89PNG\x00\x00,\xff\n")
    with pytest.raises(ValueError, match=r"tool.csv:1: expected 6 columns"):
        read_truth(tmp_path / "results")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no <tool>.csv results files"):
        read_truth(tmp_path / "empty")
