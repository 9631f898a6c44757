"""A suite file's problems come all together, and a misspelled name gets the nearest real one."""

from __future__ import annotations

import pytest

from harness.plan.suitefile import SuiteFileError, plan_from_dict
from harness.plugin.manager import load_host


@pytest.fixture(scope="module")
def registry():
    return load_host().registry


def problems(data: dict, registry) -> list[tuple[str, str]]:
    with pytest.raises(SuiteFileError) as info:
        plan_from_dict(data, registry, path="bad.toml")
    return info.value.problems


def test_every_bad_value_of_one_entry_is_reported_not_only_the_first(registry):
    data = {"name": "t", "matrix": [{
        "models": ["lenet5"], "datasets": ["digits"], "suites": ["size"], "backends": ["torch-cpu"],
        "methods": [{"name": "global-magnitude", "sparsity": 1.5, "amount": 3}],
    }], "settings": {"latency": {"batch_sizes": "one", "profile": "no-such-profile"}}}
    found = dict(problems(data, registry))
    assert "out of range" in found["matrix[0].methods[0].sparsity"]
    assert "unknown parameter 'amount'" in found["matrix[0].methods[0].amount"]
    assert "settings.latency.batch_sizes" in found and "settings.latency.profile" in found


def test_every_step_of_a_pipeline_is_checked(registry):
    data = {"name": "t", "matrix": [{
        "models": ["lenet5"], "datasets": ["digits"], "suites": ["size"], "backends": ["torch-cpu"],
        "methods": [{"pipeline": [{"name": "global-magnitud"}, {"name": "kbit", "bits": 99}]}],
    }]}
    found = dict(problems(data, registry))
    assert "did you mean 'global-magnitude'?" in found["matrix[0].methods[0].pipeline[0]"]
    assert "matrix[0].methods[0].pipeline[1].bits" in found


@pytest.mark.parametrize("key, wrong, right", [
    ("methods", "global-magnitud", "global-magnitude"),
    ("models", "lenet", "lenet5"),
    ("backends", "onnxruntime-cp", "onnxruntime-cpu"),
    ("suites", "accuracyy", "accuracy"),
])
def test_an_unknown_plugin_name_gets_a_did_you_mean(registry, key, wrong, right):
    entry = {"models": ["lenet5"], "datasets": ["digits"], "methods": ["dense"], "backends": ["torch-cpu"],
             "suites": ["size"], key: [wrong]}
    found = dict(problems({"name": "t", "matrix": [entry]}, registry))
    reason = found[f"matrix[0].{key}[0]"]
    assert reason.startswith(f"unknown {key[:-1]} {wrong!r}: did you mean {right!r}? (known: ")


def test_a_misspelled_key_or_settings_table_gets_a_did_you_mean(registry):
    data = {"name": "t", "seed": [0], "matrix": [{"models": ["lenet5"], "datasets": ["digits"], "method": ["dense"],
                                                  "backends": ["torch-cpu"], "suites": ["size"]}],
            "settings": {"latncy": {}}}
    found = dict(problems(data, registry))
    assert "did you mean 'seeds'?" in found["seed"]
    assert "did you mean 'methods'?" in found["matrix[0].method"]
    assert "did you mean 'latency'?" in found["settings.latncy"]


def test_a_name_nothing_resembles_gets_no_guess(registry):
    entry = {"models": ["lenet5"], "datasets": ["digits"], "methods": ["zzzzqqq"], "backends": ["torch-cpu"],
             "suites": ["size"]}
    reason = dict(problems({"name": "t", "matrix": [entry]}, registry))["matrix[0].methods[0]"]
    assert "did you mean" not in reason and reason.startswith("unknown method 'zzzzqqq' (known: ")
