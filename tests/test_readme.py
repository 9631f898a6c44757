"""The README's method plugin, installed as a real distribution, shows up ranked in the leaderboard."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def block(after: str, lang: str) -> str:
    """The first ```lang code block that follows the text ``after`` in the README."""
    start = README.index(after)
    match = re.search(rf"```{lang}\n(.*?)```", README[start:], re.S)
    assert match, f"no {lang} block after {after!r}"
    return match.group(1)


def test_readme_has_exactly_two_quickstart_commands():
    quick = README[README.index("## Quickstart"):README.index("## A tour")]
    commands = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert len(commands) == 2
    assert "suites/quickstart.toml" in commands[0] and "torch==2.13.0" in commands[0]
    assert "pytest" in commands[1]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert commands[0].strip() in ci and commands[1].strip() in ci


def test_readme_method_plugin_is_installed_and_ranked(tmp_path):
    pkg = tmp_path / "harness-halfprune"
    (pkg / "harness_halfprune").mkdir(parents=True)
    (pkg / "harness_halfprune" / "__init__.py").write_text("")
    (pkg / "harness_halfprune" / "plugin.py").write_text(block("`harness_halfprune/plugin.py`", "python"))
    (pkg / "pyproject.toml").write_text(block("and its `pyproject.toml`", "toml"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(pkg)], check=True, capture_output=True)
    suite = tmp_path / "suite.toml"
    suite.write_text("""
name = "readme"
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = [{ name = "channel-l2", amount = 0.25 }]
backends = ["onnxruntime-cpu"]
suites = ["accuracy", "size"]
""")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    db = tmp_path / "r.db"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=600)

    listed = json.loads(cli("plugins", "--json").stdout)
    mine = [p for p in listed if p["name"] == "halfprune"]
    assert mine and mine[0]["distribution"] == "harness-halfprune" and mine[0]["version"] == "0.1.0"
    check = cli("check-plugin", "harness-halfprune")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "PASS  claim channel_sparsity: share of all-zero output channels: torch 0.5000" in check.stdout
    run = cli("run", suite, "--db", db, "-q")
    assert run.returncode == 0, run.stderr
    board = json.loads(cli("leaderboard", "--db", db, "--format", "json", "--sort", "top1").stdout)
    methods = {r["method"]: r for r in board}
    assert set(methods) == {"channel-l2", "dense"}  # dense added as the accuracy baseline
    assert 0.5 < methods["channel-l2"]["top1"] <= 1.0
    assert methods["channel-l2"]["weight_sparsity"] == pytest.approx(0.25, abs=0.05)
