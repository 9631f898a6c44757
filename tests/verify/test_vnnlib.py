"""The minimal VNN-LIB reader: box inputs, output constraints in DNF, clear refusals outside the subset."""

from pathlib import Path

import pytest

from harness.verify.vnnlib import Atom, Property, VnnlibError, load, parse

ROBUSTNESS = """
; a VNN-COMP style local robustness property: is class 0 ever beaten?
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (<= X_0 0.5))
(assert (>= X_0 -0.5))
(assert (and (>= X_1 0.0) (<= X_1 1.0)))
(assert (or
    (and (>= Y_1 Y_0))
    (and (>= Y_2 Y_0) (<= Y_2 3))
))
"""


def test_parses_box_and_disjunction():
    prop = parse(ROBUSTNESS)
    assert prop.lower == (-0.5, 0.0) and prop.upper == (0.5, 1.0)
    assert prop.num_outputs == 3
    assert prop.unsafe == ((Atom("Y_0", "Y_1"),), (Atom("Y_0", "Y_2"), Atom("Y_2", 3.0)))


@pytest.mark.parametrize("y, unsafe", [
    ([1.0, 0.0, 0.0], False),   # class 0 wins
    ([1.0, 2.0, 0.0], True),    # Y_1 >= Y_0
    ([1.0, 0.0, 2.0], True),    # Y_2 >= Y_0 and Y_2 <= 3
    ([1.0, 0.0, 4.0], False),   # Y_2 >= Y_0 but Y_2 > 3
])
def test_unsafe_set(y, unsafe):
    assert parse(ROBUSTNESS).is_unsafe(y) is unsafe


def test_tolerance_on_outputs_and_box():
    prop = parse(ROBUSTNESS)
    assert not prop.is_unsafe([1.0, 0.99995, 0.0])
    assert prop.is_unsafe([1.0, 0.99995, 0.0], atol=1e-4)
    assert prop.contains([0.5, 1.0]) and not prop.contains([0.50001, 1.0])
    assert prop.contains([0.50001, 1.0], atol=1e-4)
    assert not prop.contains([0.0])  # wrong length


def test_text_round_trip():
    prop = parse(ROBUSTNESS)
    assert parse(prop.text()) == prop


def test_strict_comparisons_read_as_non_strict():
    prop = parse("(declare-const X_0 Real)(declare-const Y_0 Real)"
                 "(assert (> X_0 -1))(assert (< X_0 1))(assert (> Y_0 2))")
    assert prop.lower == (-1.0,) and prop.upper == (1.0,)
    assert prop.unsafe == ((Atom(2.0, "Y_0"),),)


def test_several_output_asserts_are_conjoined():
    prop = parse("(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)"
                 "(assert (>= X_0 0))(assert (<= X_0 1))"
                 "(assert (or (>= Y_0 1) (>= Y_1 1)))(assert (<= Y_0 5))")
    assert prop.is_unsafe([2.0, 0.0]) and prop.is_unsafe([0.0, 2.0])
    assert not prop.is_unsafe([6.0, 0.0]) and not prop.is_unsafe([0.0, 0.0])


@pytest.mark.parametrize("text, message", [
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0 1))(assert (>= Y_0 0))",
     "inputs without both bounds: X_0"),
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 0))(assert (<= X_0 1))",
     "no output constraint"),
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 0))(assert (<= X_0 1))"
     "(assert (<= (+ Y_0 Y_0) 1))", "only variables and numbers"),
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 0))(assert (<= X_0 1))"
     "(assert (<= Y_0 X_0))", "mixing inputs and outputs"),
    # a union of two half-lines: each case of the disjunction leaves X_0 unbounded on one side
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (or (>= X_0 0) (<= X_0 1)))(assert (<= Y_0 0))",
     "inputs without both bounds: X_0"),
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 0))(assert (<= X_0 1))"
     "(assert (<= Y_3 0))", "Y_3 is used but not declared"),
    ("(declare-const X_0 Real)(assert (>= X_0 0)", "unbalanced '('"),
    ("(declare-fun f (Real) Real)", "unsupported command"),
    ("(declare-const Z_0 Real)", "unsupported declaration"),
])
def test_refuses_what_it_cannot_read(text, message):
    with pytest.raises(VnnlibError) as info:
        parse(text)
    assert message in str(info.value)


def test_property_written_by_hand_matches_the_parser():
    prop = Property(lower=(0.0,), upper=(1.0,), num_outputs=1, unsafe=((Atom(0.5, "Y_0"),),))
    assert parse(prop.text()) == prop
    assert prop.is_unsafe([0.7]) and not prop.is_unsafe([0.2])


# --------------------------------------------------------------------------- matrices, robustness, gzip


def test_matrices_state_the_unsafe_set_as_a_at_y_le_b():
    import numpy as np

    prop = parse(ROBUSTNESS)
    (a0, b0), (a1, b1) = prop.matrices()
    assert a0.tolist() == [[1.0, -1.0, 0.0]] and b0.tolist() == [0.0]                  # Y_0 - Y_1 <= 0
    assert a1.tolist() == [[1.0, 0.0, -1.0], [0.0, 0.0, 1.0]] and b1.tolist() == [0.0, 3.0]
    rng = np.random.default_rng(0)
    for y in rng.normal(0, 3, (200, 3)):
        assert prop.is_unsafe(list(y)) == any(bool(np.all(a @ y <= b)) for a, b in prop.matrices())


def test_robustness_property_round_trips_and_names_every_other_class():
    from harness.verify.vnnlib import robustness

    prop = robustness([0.0, -1.0], [1.0, 1.0], label=1, num_outputs=3)
    assert parse(prop.text()) == prop
    assert prop.unsafe == ((Atom("Y_1", "Y_0"),), (Atom("Y_1", "Y_2"),))
    assert prop.is_unsafe([2.0, 1.0, 0.0]) and not prop.is_unsafe([0.0, 1.0, 0.5])


def test_gzipped_files_load_and_errors_name_the_file(tmp_path):
    import gzip

    from harness.verify.vnnlib import load

    packed = tmp_path / "p.vnnlib.gz"
    packed.write_bytes(gzip.compress(ROBUSTNESS.encode()))
    assert load(packed) == parse(ROBUSTNESS)
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)(assert (<= X_0 1))")
    with pytest.raises(VnnlibError, match="bad.vnnlib: "):
        load(bad)


ACASXU = Path(__file__).resolve().parents[1] / "data" / "vnncomp2021" / "acasxu"


def test_reads_acasxu_prop_6_as_a_union_of_two_boxes():
    prop = load(ACASXU / "prop_6.vnnlib")
    boxes = prop.input_boxes()
    assert len(boxes) == 2 and prop.num_outputs == 5 and len(prop.unsafe) == 4
    (lo1, hi1), (lo2, hi2) = boxes
    assert (lo1[1], hi1[1]) == (0.11140846, 0.499999896) and (lo2[1], hi2[1]) == (-0.499999896, -0.11140846)
    assert prop.lower[1] == -0.499999896 and prop.upper[1] == 0.499999896  # lower/upper: the hull
    inside = [0.3, 0.2, -0.4995, 0.0, 0.0]
    gap = [0.3, 0.0, -0.4995, 0.0, 0.0]  # in the hull, in neither box
    assert prop.contains(inside) and prop.contains([0.3, -0.2, -0.4995, 0.0, 0.0]) and not prop.contains(gap)
    assert parse(prop.text()) == prop  # written back as a disjunction, read as the same property


def test_input_disjunctions_combine_with_plain_bounds_and_each_other():
    text = """(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)
    (assert (<= X_1 1))(assert (>= X_1 0))
    (assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 2) (<= X_0 3)) (and (>= X_0 5) (<= X_0 4))))
    (assert (or (<= X_1 0.5) (>= X_1 0.25)))
    (assert (<= Y_0 0))"""
    prop = parse(text)
    # {[0,1], [2,3], empty} x {X_1 <= 0.5, X_1 >= 0.25}, each within X_1 in [0, 1]; the empty case adds nothing
    assert prop.input_boxes() == [((0.0, 0.0), (1.0, 0.5)), ((0.0, 0.25), (1.0, 1.0)),
                                  ((2.0, 0.0), (3.0, 0.5)), ((2.0, 0.25), (3.0, 1.0))]
    assert prop.contains([2.5, 0.9]) and not prop.contains([1.5, 0.5])


@pytest.mark.parametrize("text, message", [
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (or (and (>= X_0 1) (<= X_0 0))))(assert (<= Y_0 0))",
     "the input set is empty"),
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (or (and (>= X_0 0) (<= X_0 1) (<= Y_0 0))))",
     "constraints mixing inputs and outputs are not supported"),
    ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (or (and (>= X_0 0) (<= X_0 X_0))))(assert (<= Y_0 0))",
     "input constraints must compare one input with a number"),
])
def test_refuses_input_disjunctions_it_cannot_read(text, message):
    with pytest.raises(VnnlibError, match=message):
        parse(text)
