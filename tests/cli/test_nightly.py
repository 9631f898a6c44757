"""suites/nightly.toml plans, and the documented nightly workflow uses commands that exist."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_nightly_suite_plans(harness_host):
    from harness.plan.suitefile import load_plan

    plan = load_plan(ROOT / "suites" / "nightly.toml", harness_host().registry)
    assert plan.name == "nightly" and plan.settings["latency"]["profile"] == "nightly"
    assert plan.settings["accuracy"]["quality_gate"] == 0.99
    assert {c.method.name for c in plan.cells} >= {"dense", "global-magnitude", "layer-magnitude", "int8-dynamic"}


def test_workflow_example_runs_the_nightly_with_a_tag_compares_and_reports():
    text = (ROOT / "examples" / "nightly.yml").read_text()
    assert "harness run suites/nightly.toml --no-resume --tag nightly" in text
    assert "harness compare previous latest" in text and "harness report -o site/index.html" in text
    # Every harness option the workflow passes is one the CLI accepts.
    for command, options in (("run", ["--no-resume", "--tag", "--quiet"]), ("compare", ["--format"]),
                             ("report", ["-o"]), ("sql", ["--format"])):
        helptext = subprocess.run([sys.executable, "-m", "harness.cli", command, "--help"], capture_output=True,
                                  text=True, check=True).stdout
        for option in options:
            assert re.search(rf"(^|[\s,]){re.escape(option)}[\s,/=]", helptext), (command, option)
