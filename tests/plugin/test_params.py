"""Typed parameters: type checks, ranges, choices, required keys, lists and grid expansion."""

from __future__ import annotations

import math

import pytest

from harness.plugin.params import Param, ParamError, expand_grid, validate

SPARSITY = Param("sparsity", float, min=0.0, max=1.0, max_exclusive=True)


def error(params, values, where="") -> ParamError:
    with pytest.raises(ParamError) as info:
        validate(params, values, where=where)
    return info.value


# --------------------------------------------------------------------------- types


def test_float_param_coerces_int_to_float():
    out = validate((Param("lr", float),), {"lr": 1})
    assert out == {"lr": 1.0}
    assert type(out["lr"]) is float


def test_int_param_rejects_float():
    exc = error((Param("n", int),), {"n": 1.0})
    assert exc.key == "n"
    assert "expected an integer" in exc.reason
    assert "float" in exc.reason


def test_int_param_accepts_int_unchanged():
    out = validate((Param("n", int),), {"n": 3})
    assert out == {"n": 3}
    assert type(out["n"]) is int


@pytest.mark.parametrize("typ", [int, float, str])
def test_bool_rejected_for_non_bool_types(typ):
    exc = error((Param("x", typ),), {"x": True})
    assert exc.key == "x"
    assert "boolean" in exc.reason


def test_bool_param_accepts_bool_and_rejects_int():
    assert validate((Param("flag", bool),), {"flag": False}) == {"flag": False}
    exc = error((Param("flag", bool),), {"flag": 1})
    assert exc.key == "flag"
    assert "expected a boolean" in exc.reason


def test_str_param_rejects_number():
    exc = error((Param("profile", str),), {"profile": 3})
    assert exc.key == "profile"
    assert "expected a string" in exc.reason
    assert validate((Param("profile", str),), {"profile": "fast"}) == {"profile": "fast"}


def test_param_error_str_is_key_colon_reason():
    exc = error((Param("n", int),), {"n": "x"})
    assert str(exc) == f"n: {exc.reason}"
    assert isinstance(exc, ValueError)


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize("value", [0.0, 0.5, 0.999])
def test_in_range_values_pass(value):
    assert validate((SPARSITY,), {"sparsity": value}) == {"sparsity": value}


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_out_of_range_values_fail(value):
    exc = error((SPARSITY,), {"sparsity": value})
    assert exc.key == "sparsity"
    assert "out of range" in exc.reason
    assert "[0.0, 1.0)" in exc.reason


def test_min_inclusive_by_default_and_exclusive_on_request():
    inclusive = Param("x", float, min=0.0)
    exclusive = Param("x", float, min=0.0, min_exclusive=True)
    assert validate((inclusive,), {"x": 0.0}) == {"x": 0.0}
    exc = error((exclusive,), {"x": 0.0})
    assert "(0.0, inf]" in exc.reason
    assert validate((exclusive,), {"x": 1e-9}) == {"x": 1e-9}


def test_max_inclusive_by_default():
    p = Param("n", int, min=1, max=8)
    assert validate((p,), {"n": 8}) == {"n": 8}
    assert validate((p,), {"n": 1}) == {"n": 1}
    exc = error((p,), {"n": 9})
    assert "[1, 8]" in exc.reason
    exc = error((p,), {"n": 0})
    assert "[1, 8]" in exc.reason


def test_nan_is_out_of_any_range():
    exc = error((SPARSITY,), {"sparsity": math.nan})
    assert exc.key == "sparsity"
    assert "out of range" in exc.reason


def test_unbounded_float_accepts_inf():
    out = validate((Param("x", float),), {"x": math.inf})
    assert out == {"x": math.inf}


# --------------------------------------------------------------------------- choices, required, defaults


def test_choices():
    p = Param("profile", str, default="default", choices=("smoke", "default", "precise"))
    assert validate((p,), {"profile": "smoke"}) == {"profile": "smoke"}
    exc = error((p,), {"profile": "turbo"})
    assert exc.key == "profile"
    assert "'turbo' is not one of 'smoke', 'default', 'precise'" in exc.reason


def test_required_param_missing():
    exc = error((Param("sparsity", float), Param("n", int, default=1)), {"n": 2})
    assert exc.key == "sparsity"
    assert exc.reason == "is required"


def test_required_property_and_defaults_filled_in():
    req = Param("a", int)
    opt = Param("b", str, default="x")
    assert req.required and not opt.required
    # a default of None still counts as a default
    assert not Param("c", str, default=None).required
    assert validate((req, opt), {"a": 1}) == {"a": 1, "b": "x"}


def test_where_prefixes_key():
    exc = error((Param("n", int),), {"n": "x"}, where="matrix[0].methods[1]")
    assert exc.key == "matrix[0].methods[1].n"
    exc = error((Param("n", int),), {}, where="settings.latency")
    assert exc.key == "settings.latency.n"


def test_unknown_key_names_key_and_lists_known():
    exc = error((Param("beta", int, default=1), Param("alpha", int, default=1)), {"gamma": 1})
    assert exc.key == "gamma"
    assert "unknown parameter" in exc.reason
    assert "known: alpha, beta" in exc.reason


def test_unknown_key_with_no_params():
    exc = error((), {"x": 1}, where="matrix[0].methods[0]")
    assert exc.key == "matrix[0].methods[0].x"
    assert "known: none" in exc.reason


# --------------------------------------------------------------------------- lists


def test_list_param_checks_items():
    p = Param("batch_sizes", list, default=[1], item_type=int, min=1)
    assert validate((p,), {"batch_sizes": [1, 32]}) == {"batch_sizes": [1, 32]}
    exc = error((p,), {"batch_sizes": [1, 0]})
    assert exc.key == "batch_sizes[1]"
    assert "out of range" in exc.reason
    exc = error((p,), {"batch_sizes": [1, 2.5]})
    assert exc.key == "batch_sizes[1]"
    assert "expected an integer" in exc.reason
    exc = error((p,), {"batch_sizes": [True]})
    assert exc.key == "batch_sizes[0]"


def test_list_param_rejects_scalar():
    p = Param("batch_sizes", list, default=[1], item_type=int)
    exc = error((p,), {"batch_sizes": 4})
    assert exc.key == "batch_sizes"
    assert "expected a list" in exc.reason


def test_list_param_value_is_not_a_grid():
    p = Param("batch_sizes", list, default=[1], item_type=int)
    values = validate((p,), {"batch_sizes": [1, 8]})
    assert expand_grid((p,), values) == [{"batch_sizes": [1, 8]}]


def test_grid_list_items_checked_with_index():
    exc = error((SPARSITY,), {"sparsity": [0.5, 1.5]}, where="m")
    assert exc.key == "m.sparsity[1]"
    assert "out of range" in exc.reason
    exc = error((SPARSITY,), {"sparsity": [0.5, "high"]})
    assert exc.key == "sparsity[1]"
    assert "expected a number" in exc.reason


def test_grid_list_items_coerced():
    assert validate((SPARSITY,), {"sparsity": [0, 0.5]}) == {"sparsity": [0.0, 0.5]}


def test_grid_false_rejects_list():
    p = Param("timeout_s", float, default=1.0, grid=False)
    exc = error((p,), {"timeout_s": [1.0, 2.0]})
    assert exc.key == "timeout_s"
    assert "does not take a list" in exc.reason


def test_empty_list_is_an_error():
    exc = error((SPARSITY,), {"sparsity": []})
    assert exc.key == "sparsity"
    assert "empty list" in exc.reason


# --------------------------------------------------------------------------- expand_grid


def test_expand_grid_scalars_give_one_point():
    params = (SPARSITY, Param("n", int, default=1))
    assert expand_grid(params, {"sparsity": 0.5, "n": 1}) == [{"sparsity": 0.5, "n": 1}]


def test_expand_grid_cartesian_product_order_and_size():
    params = (Param("a", int), Param("b", str), Param("c", float, default=0.0))
    values = validate(params, {"a": [1, 2, 3], "b": ["x", "y"], "c": 0.5})
    grid = expand_grid(params, values)
    assert len(grid) == 6
    # key order of the values; the last list varies fastest
    assert grid == [
        {"a": 1, "b": "x", "c": 0.5}, {"a": 1, "b": "y", "c": 0.5},
        {"a": 2, "b": "x", "c": 0.5}, {"a": 2, "b": "y", "c": 0.5},
        {"a": 3, "b": "x", "c": 0.5}, {"a": 3, "b": "y", "c": 0.5},
    ]
    assert all(list(point) == ["a", "b", "c"] for point in grid)


def test_expand_grid_follows_value_key_order():
    params = (Param("a", int), Param("b", int))
    grid = expand_grid(params, {"b": [1, 2], "a": [10, 20]})
    assert grid == [{"b": 1, "a": 10}, {"b": 1, "a": 20}, {"b": 2, "a": 10}, {"b": 2, "a": 20}]


def test_expand_grid_sizes_multiply():
    params = (Param("a", int), Param("b", int), Param("c", int))
    grid = expand_grid(params, {"a": [1, 2], "b": [1, 2, 3], "c": [1, 2, 3, 4]})
    assert len(grid) == 24
    assert len({tuple(sorted(p.items())) for p in grid}) == 24


def test_expand_grid_keeps_list_of_unknown_key_whole():
    assert expand_grid((), {"x": [1, 2]}) == [{"x": [1, 2]}]


def test_describe():
    d = Param("sparsity", float, min=0.0, max=1.0, help="share").describe()
    assert d == {"name": "sparsity", "type": "float", "help": "share", "min": 0.0, "max": 1.0}
    d = Param("profile", str, default="smoke", choices=("smoke",)).describe()
    assert d["default"] == "smoke"
    assert d["choices"] == ("smoke",)


def test_a_machine_limit_is_read_when_a_value_is_checked():
    from harness.plugin.params import MachineLimit

    room = [3]
    p = Param("workers", int, min=1, max=MachineLimit("the workers this machine has", lambda: room[0]))
    assert p.check(3, "workers") == 3
    with pytest.raises(ParamError) as info:
        p.check(4, "workers")
    assert info.value.reason == "4 is out of range: must be in [1, 3] (3: the workers this machine has)"
    room[0] = 8  # another machine validates the same declaration against what it has
    assert p.check(4, "workers") == 4
    assert p.describe()["max"] == 8 and p.describe()["max_is"] == "the workers this machine has"
