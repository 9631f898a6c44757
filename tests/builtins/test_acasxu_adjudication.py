"""The unsound canary on real competition networks (VNN-COMP 2021 ACAS Xu), which have no planted
counterexamples: caught by another verifier's replaying witness once every verifier of the benchmark
has answered (also across stores merged afterwards), and by the peers' published verdicts.

Three instances, each copied byte-for-byte from the competition (tests/data/vnncomp2021/acasxu):
``3_6``/prop_2 (violated; ``pgd`` finds a witness), ``1_9``/prop_7 (violated; the attacks find none)
and ``1_1``/prop_3 (holds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
ACAS = DATA / "vnncomp2021" / "acasxu"
INSTANCES = [("ACASXU_run2a_3_6_batch_2000.onnx", "prop_2.vnnlib"),
             ("ACASXU_run2a_1_9_batch_2000.onnx", "prop_7.vnnlib"),
             ("ACASXU_run2a_1_1_batch_2000.onnx", "prop_3.vnnlib")]


def suite(verifiers: str, truth: bool) -> str:
    extra = f', truth = "{DATA / "vnncomp2021_results"}"' if truth else ""
    return f"""
name = "acasxu"
seeds = [0]

[[verification]]
benchmarks = [{{ name = "folder", path = "acasxu"{extra} }}]
verifiers = [{verifiers}]

[settings.verification]
timeout_s = 30
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("acasxu")
    (tmp / "acasxu").mkdir()
    (tmp / "acasxu" / "instances.csv").write_text("".join(f"{ACAS / o},{ACAS / v},30\n" for o, v in INSTANCES))
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp / "cache"))

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=900, cwd=tmp)
        assert proc.returncode == 0, proc.stderr
        return proc

    runs = {"pgd": ('{ name = "pgd", restarts = 20, steps = 50 }', False), "canary": ('"unsound-pgd"', False),
            "canary_truth": ('"unsound-pgd"', True)}
    for name, (verifiers, truth) in runs.items():
        (tmp / f"{name}.toml").write_text(suite(verifiers, truth))
        cli("run", tmp / f"{name}.toml", "--db", tmp / f"{name}.db", "-q")
    cli("merge", tmp / "pgd.db", tmp / "canary.db", "-o", tmp / "merged.db")

    def board(db, *args):
        out = cli("leaderboard", "--db", tmp / db, "--sort", "score", "--format", "json", "--columns", "all", *args)
        return {r["backend"]: r for r in json.loads(out.stdout)}

    return board


def test_alone_the_canary_cannot_be_caught_on_unlabelled_instances(stores):
    canary = stores("canary.db")["unsound-pgd"]
    assert canary["score"] == 30 and canary["unsound"] == 0 and canary["rank"] == 1 and canary["flags"] is None


def test_another_verifiers_replaying_witness_catches_the_canary_in_a_merged_store(stores):
    board = stores("merged.db")
    pgd, canary = board["pgd"], board["unsound-pgd"]
    assert pgd["falsified@instances=unlabelled"] == 1 and pgd["score"] == 10 and pgd["flags"] is None
    assert canary["unsound"] == 1 and canary["score"] == -150 + 10 + 10
    assert canary["flags"] == "unsound: holds on 1 instance known to be violated (1 by another verifier's " \
                              "replaying witness)"
    assert canary["rank"] is None and pgd["rank"] == 1
    # VNN-COMP 2021's vote: one holds against one violated is a tie, so 2021 would not have caught it.
    assert canary["score_2021"] == 2 * 12 and pgd["score_2021"] == 0
    # The judgement uses every verifier of the benchmark, whatever the query shows.
    only = stores("merged.db", "--backend", "unsound-pgd")
    assert set(only) == {"unsound-pgd"} and only["unsound-pgd"]["flags"] == canary["flags"]


def test_the_peers_published_verdicts_catch_the_canary_and_are_stored_with_the_run(stores):
    canary = stores("canary_truth.db")["unsound-pgd"]
    assert canary["verified@instances=peer_violated"] == 2 and canary["verified@instances=peer_holds"] == 1
    assert canary["unsound"] == 2 and canary["score"] == -150 * 2 + 10 and canary["rank"] is None
    assert canary["flags"].startswith("unsound: holds on 2 instances known to be violated")
