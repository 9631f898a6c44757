"""The SoundnessBench-style generator, benchmark folders (generated, imported, compressed) and
VNN-COMP scoring."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import torch

from harness.api import check_witness
from harness.build.benchmarks import compress
from harness.core.identity import Component
from harness.plugin.manager import load_host
from harness.verify.attack import stack_outputs, strong_pgd
from harness.verify.benchmarks import materialize, read_folder
from harness.verify.points import CORRECT, INCORRECT, score
from harness.verify.soundnessbench import Recipe, generate
from harness.verify.vnnlib import load

RECIPE = Recipe(arch="mlp", planted=2, clean=2, epochs=800, eval_restarts=100, timeout=30.0, seed=0)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sb") / "mlp"
    summary = generate(folder, RECIPE)
    return folder, summary


def test_layout_is_soundnessbench_and_vnncomp(bench):
    folder, summary = bench
    assert {p.name for p in folder.iterdir()} >= {"model.onnx", "model.pt", "data.pt", "instances.csv", "vnnlib",
                                                   "benchmark.json"}
    rows = [line.split(",") for line in (folder / "instances.csv").read_text().splitlines()]
    assert len(rows) == summary["instances"] == summary["planted"] + summary["clean"]
    assert all(r[0] == "model.onnx" and r[1] == f"vnnlib/{i}.vnnlib" and r[2] == "30" for i, r in enumerate(rows))
    assert summary["planted"] >= 1 and summary["clean"] == 2
    assert json.loads((folder / "benchmark.json").read_text())["recipe"]["epochs"] == 800
    data = torch.load(folder / "data.pt", weights_only=True)
    assert [cex is not None for _, _, cex in data] == [k == "planted" for k in summary["kinds"]]


def test_planted_counterexamples_sit_at_the_box_edge_and_replay(bench):
    folder, summary = bench
    data = torch.load(folder / "data.pt", weights_only=True)
    eps, r = RECIPE.epsilon, RECIPE.data_range
    for i, (x0, label, cex) in enumerate(data):
        prop = load(folder / "vnnlib" / f"{i}.vnnlib")
        assert label == 1 and prop.lower == pytest.approx(tuple(np.maximum(x0.numpy() - eps, -r)))
        if cex is None:
            continue
        shift = np.abs(cex.numpy() - x0.numpy())
        at_edge = (shift >= 0.98 * eps - 1e-6) | np.isclose(np.abs(cex.numpy()), r)
        assert at_edge.any() and (shift[~at_edge] <= r / 100 + 1e-6).all()
        assert check_witness(folder / "model.onnx", prop, cex.numpy()).valid  # misclassified, in onnxruntime


def test_a_strong_attack_misses_the_planted_counterexamples(bench):
    folder, _ = bench
    model = torch.load(folder / "model.pt", weights_only=False)
    data = torch.load(folder / "data.pt", weights_only=True)
    planted = [(x0, cex) for x0, _, cex in data if cex is not None]
    x0 = torch.stack([p[0] for p in planted])
    prop = load(folder / "vnnlib" / "0.vnnlib")
    a, b = stack_outputs(prop.matrices())
    lo = torch.clamp(x0 - RECIPE.epsilon, -1, 1)
    hi = torch.clamp(x0 + RECIPE.epsilon, -1, 1)
    # A different seed than the generator's own filter: the counterexamples stay hidden.
    _, margins = strong_pgd(model, lo, hi, a, b, restarts=50, generator=torch.Generator().manual_seed(99))
    assert (margins > 0).all()


def test_generation_is_deterministic(bench, tmp_path):
    folder, summary = bench
    again = generate(tmp_path / "again", RECIPE)
    assert again["kinds"] == summary["kinds"]
    assert (tmp_path / "again" / "vnnlib" / "0.vnnlib").read_text() == (folder / "vnnlib" / "0.vnnlib").read_text()


def test_reading_a_generated_folder_labels_its_instances(bench, tmp_path):
    folder, summary = bench
    b = read_folder(folder, tmp_path)
    assert [i.kind for i in b.instances] == summary["kinds"]
    assert all(i.counterexample is not None for i in b.instances if i.kind == "planted")
    assert b.counts() == {"planted": summary["planted"], "clean": summary["clean"], "peer_violated": 0, "peer_holds": 0,
                          "unlabelled": 0}


def test_materialize_caches_by_recipe(tmp_path):
    params = {k: v for k, v in RECIPE.__dict__.items() if k != "seed"}
    params.update(planted=1, clean=1, epochs=300)
    first = materialize(Component("soundnessbench", params), 0, tmp_path)
    mtime = (first.instances[0].onnx).stat().st_mtime_ns
    second = materialize(Component("soundnessbench", params), 0, tmp_path)
    assert second.root == first.root and second.instances[0].onnx.stat().st_mtime_ns == mtime
    assert first.name == "soundnessbench/mlp" and first.info["generated"]["recipe"]["epochs"] == 300


def test_compression_replays_counterexamples(bench, tmp_path):
    folder, summary = bench
    host = load_host()
    original = read_folder(folder, tmp_path)
    pruned = compress(original, host.registry, Component("global-magnitude", {"sparsity": 0.5}), 0, tmp_path)
    assert all(i.onnx != original.instances[0].onnx for i in pruned.instances)
    removed = pruned.info["counterexamples_removed"]
    assert pruned.counts()["planted"] + removed == summary["planted"]
    for inst in pruned.instances:
        if inst.kind == "planted":  # still violates on the pruned network
            assert check_witness(inst.onnx, load(inst.vnnlib), inst.counterexample).valid
        elif inst.counterexample is not None:
            assert inst.kind == "unlabelled" and "does not violate on this network" in inst.note
    assert compress(original, host.registry, Component("dense", {}), 0, tmp_path) is original


def test_importing_a_vnncomp_folder_with_gzipped_files(bench, tmp_path):
    folder, summary = bench
    comp = tmp_path / "acme" / "onnx"
    comp.mkdir(parents=True)
    (tmp_path / "acme" / "vnnlib").mkdir()
    (comp / "net.onnx.gz").write_bytes(gzip.compress((folder / "model.onnx").read_bytes()))
    for i in range(2):
        shutil.copy(folder / "vnnlib" / f"{i}.vnnlib", tmp_path / "acme" / "vnnlib" / f"p{i}.vnnlib")
    (tmp_path / "acme" / "instances.csv").write_text(
        "onnx/net.onnx,vnnlib/p0.vnnlib,12\nonnx/net.onnx,vnnlib/p1.vnnlib,7\n")
    b = read_folder(tmp_path / "acme", tmp_path / "cache")
    assert [i.kind for i in b.instances] == ["unlabelled", "unlabelled"]
    assert [i.timeout for i in b.instances] == [12, 7]
    # Unpacked into the cache as shipped (``source``); verifiers read its normalized copy (``onnx``).
    assert b.instances[0].source.read_bytes() == (folder / "model.onnx").read_bytes()
    assert b.instances[0].onnx != b.instances[0].source and b.instances[0].onnx.is_file()
    with pytest.raises(FileNotFoundError, match="no instances.csv"):
        read_folder(tmp_path / "acme" / "onnx", tmp_path / "cache")


@pytest.mark.parametrize("kind, result, valid, outcome, points", [
    ("planted", "holds", None, "unsound", INCORRECT),
    ("clean", "holds", None, "verified", CORRECT),
    ("unlabelled", "holds", None, "verified", CORRECT),
    ("planted", "violated", True, "falsified", CORRECT),
    ("clean", "violated", True, "falsified", CORRECT),
    ("planted", "violated", False, "invalid_witness", INCORRECT),
    ("clean", "unknown", None, "unknown", 0),
    ("planted", "timeout", None, "timeout", 0),
])
def test_vnncomp_2026_scoring(kind, result, valid, outcome, points):
    scored = score(kind, result, valid)
    assert (scored.outcome, scored.points) == (outcome, points)
    assert (CORRECT, INCORRECT) == (10, -150)
