"""Verdicts read exactly from VNN-COMP result files, and witnesses judged by replay in onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from harness.api import check_witness
from harness.verify.replay import INPUT_TOL, Network
from harness.verify.verdicts import format_result, parse_verdict, parse_witness, read_result_file, write_result_file
from harness.verify.vnnlib import load


@pytest.mark.parametrize("word, verdict", [
    ("sat", "violated"), ("unsat", "holds"), ("SAT\n", "violated"), ("  unsat  ", "holds"),
    ("violated", "violated"), ("holds", "holds"), ("timeout", "timeout"), ("unknown", "unknown"),
    ("error", "error"), ("unsatisfiable", "error"), ("sat unsat", "error"), ("", "error"),
])
def test_verdict_words_are_matched_whole(word, verdict):
    # "sat" in "unsat" is True in Python: a substring test would turn every proof into a counterexample.
    assert parse_verdict(word)[0] == verdict


def test_unrecognised_words_say_what_was_found():
    result, error = parse_verdict("maybe")
    assert result == "error" and "unrecognised verdict 'maybe'" in error
    assert parse_verdict("error")[1] == "the tool reported an error"


def test_result_file_round_trip(tmp_path):
    path = tmp_path / "result.txt"
    write_result_file(path, "violated", [0.5, -1.25], [3.0, 1e-9])
    verdict = read_result_file(path)
    assert verdict.result == "violated" and verdict.raw == "sat"
    assert verdict.witness.tolist() == [0.5, -1.25] and verdict.outputs.tolist() == [3.0, 1e-9]
    write_result_file(path, "holds")
    assert path.read_text() == "unsat\n" and read_result_file(path).witness is None
    with pytest.raises(ValueError, match="unknown verdict 'sat'"):
        write_result_file(path, "sat")


def test_witness_text_as_competition_tools_write_it():
    x, y = parse_witness("((X_1 2.0)\n (X_0 -1e-3)\n (Y_0  7 )\n)")
    assert x.tolist() == [-1e-3, 2.0] and y.tolist() == [7.0]
    x, _ = parse_witness("((X_0 1.0) (X_2 3.0))")  # a gap: not a witness
    assert x is None
    assert format_result("violated", [1.0]) == "sat\n((X_0 1.0))\n"


def test_missing_or_empty_result_file_is_an_error_with_the_reason(tmp_path):
    none = read_result_file(tmp_path / "none.txt")
    assert none.result == "error" and none.error == "the tool wrote no result file"
    (tmp_path / "empty.txt").write_text("\n\n")
    empty = read_result_file(tmp_path / "empty.txt")
    assert empty.result == "error" and empty.error == "the result file is empty"


@pytest.fixture
def known(toy_vnnlib):
    """The contract network (Gemm 4 -> 2 on [-1, 1]^4) with its violated property."""
    return toy_vnnlib.onnx, load(toy_vnnlib.violated)


def test_a_witness_that_replays_is_valid(known):
    onnx, prop = known
    check = check_witness(onnx, prop, [1.0, -1.0, 1.0, 1.0])
    assert check.valid, check.reason
    assert check.outputs.tolist() == pytest.approx([5.25, -0.1], abs=1e-6)
    assert check_witness(Network(onnx), prop, {"x": [1.0, -1.0, 1.0, 1.0], "y": [0, 0]}).valid  # y is not trusted


@pytest.mark.parametrize("x, reason", [
    ([-1.0, 1.0, -1.0, -1.0], "the witness's outputs satisfy the property"),
    ([1.0 + 2 * INPUT_TOL, -1.0, 1.0, 1.0], "outside the property's box"),
    ([1.0, -1.0, 1.0], "the witness has 3 inputs, the property 4"),
    ([1.0, float("nan"), 1.0, 1.0], "non-finite"),
    (None, "no witness"),
])
def test_invalid_witnesses_say_why(known, x, reason):
    onnx, prop = known
    check = check_witness(onnx, prop, x)
    assert not check.valid and reason in check.reason


def test_inputs_within_the_tolerance_of_the_box_are_accepted(known):
    onnx, prop = known
    assert check_witness(onnx, prop, [1.0 + INPUT_TOL / 2, -1.0, 1.0, 1.0]).valid


def test_network_runs_batches(known):
    onnx, _ = known
    net = Network(onnx)
    xs = np.array([[1.0, -1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    assert net.batch(xs)[:, 0].tolist() == pytest.approx([5.25, 0.25], abs=1e-6)
