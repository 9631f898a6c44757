"""Paths in suite files: one mechanism (``Param(path=...)``), resolved against the suite file's folder and
checked when the file is validated; bad suite and weights files are named with the reason."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from harness.plan.suitefile import SuiteFileError, load_plan


@pytest.fixture(scope="module")
def registry():
    from harness.plugin.manager import load_host

    return load_host().registry


def _matrix(models=('"mlp"',), datasets=('"digits"',), methods=('"dense"',), backends=('"onnxruntime-cpu"',)):
    return (f'name = "p"\nseeds = [0]\n[[matrix]]\nmodels = [{", ".join(models)}]\n'
            f'datasets = [{", ".join(datasets)}]\nmethods = [{", ".join(methods)}]\n'
            f'backends = [{", ".join(backends)}]\nsuites = ["size"]\n')


def _plan(tmp_path, text, registry):
    folder = tmp_path / "suites"
    folder.mkdir(exist_ok=True)
    path = folder / "s.toml"
    path.write_text(text)
    return load_plan(path, registry)


def _problems(tmp_path, text, registry):
    with pytest.raises(SuiteFileError) as err:
        _plan(tmp_path, text, registry)
    return str(err.value)


def test_every_path_parameter_is_declared_with_its_kind(registry):
    """Parameters that name files say so: the planner, not each plugin, resolves and checks them."""
    from harness.plan.entries import WEIGHTS_PARAM
    from harness.verify.benchmarks import sources

    declared = {("model", "weights"): WEIGHTS_PARAM.path}
    for kind in ("model", "dataset", "backend", "verifier"):
        for spec in registry.specs(kind):
            for p in spec.params:
                if p.path:
                    declared[(kind, f"{spec.name}.{p.name}")] = p.path
    for source in sources().values():
        for p in source.params:
            if p.path:
                declared[("benchmark", f"{source.name}.{p.name}")] = p.path
    assert declared[("model", "onnx-file.path")] == "file"
    assert declared[("model", "weights")] == "file"
    assert declared[("dataset", "imagefolder.root")] == "folder"
    assert declared[("dataset", "text-classification.path")] == "file"
    assert declared[("verifier", "vnncomp.tool")] == "folder"
    assert declared[("benchmark", "folder.path")] == "folder"
    assert declared[("benchmark", "folder.truth")] == "any"
    assert declared[("backend", "arm.known_hosts")] == "new"


def test_a_file_the_plugin_may_create_needs_only_its_folder(tmp_path):
    """``path="new"`` (ssh's known_hosts): resolved like every path; absent is fine, its folder is not."""
    from harness.plan.entries import check_path

    (tmp_path / "ssh").mkdir()
    assert check_path("ssh/known_hosts", "new", tmp_path) == (str((tmp_path / "ssh" / "known_hosts").resolve()), "")
    resolved, why = check_path("nowhere/known_hosts", "new", tmp_path)
    assert resolved == "" and why == f"folder not found: {tmp_path / 'nowhere'}"
    assert check_path("ssh", "new", tmp_path)[1].startswith("is a folder, expected a file")
    assert check_path("ssh/known_hosts", "file", tmp_path)[1].startswith("file not found")


def test_onnx_file_path_and_weights_resolve_against_the_suite_files_folder(tmp_path, registry, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "net.onnx").write_bytes(b"x")
    (tmp_path / "suites" / "w.pt").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)  # a file of that name in the working directory must not be the one taken
    (tmp_path / "net.onnx").write_bytes(b"other")
    text = _matrix(models=('{ name = "onnx-file", path = "net.onnx" }', '{ name = "mlp", weights = "w.pt" }'))
    plan = _plan(tmp_path, text, registry)
    seen = {json.dumps(c.model.as_dict(), sort_keys=True) for c in plan.cells}
    assert any(str(tmp_path / "suites" / "net.onnx") in s for s in seen), seen
    assert any(str(tmp_path / "suites" / "w.pt") in s for s in seen), seen


@pytest.mark.parametrize("entry,what", [
    ('{ name = "onnx-file", path = "missing.onnx" }', "models[0].path: file not found"),
    ('{ name = "onnx-file", path = "adir" }', "models[0].path: is a folder, expected a file"),
    ('{ name = "mlp", weights = "adir" }', "models[0].weights: is a folder, expected a file"),
    ('{ name = "mlp", weights = "missing.pt" }', "models[0].weights: file not found"),
])
def test_a_bad_model_path_is_a_validation_error_naming_key_and_file(tmp_path, registry, entry, what):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "adir").mkdir()
    msg = _problems(tmp_path, _matrix(models=(entry,)), registry)
    assert what in msg and str(tmp_path / "suites") in msg


def test_a_dataset_folder_given_as_a_file_is_a_validation_error(tmp_path, registry):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "afile").write_text("x")
    msg = _problems(tmp_path, _matrix(datasets=('{ name = "imagefolder", root = "afile" }',)), registry)
    assert "datasets[0].root: is a file, expected a folder" in msg


def test_a_path_left_at_its_default_is_not_checked(tmp_path, registry):
    """cifar10's default root may be absent: the dataset skips its cells with the reason, as before."""
    plan = _plan(tmp_path, _matrix(datasets=('"cifar10"',)), registry)
    assert plan.cells


def test_a_package_reference_is_not_a_file_path(tmp_path, registry):
    text = _matrix(models=('{ name = "hf-encoder", path = "package:nowhere_pkg/model" }',),
                   datasets=('"text-embedding"',))
    try:
        _plan(tmp_path, text, registry)
    except SuiteFileError as exc:
        assert "path: not found" not in str(exc)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_a_validation_error(tmp_path, registry):
    (tmp_path / "suites").mkdir()
    w = tmp_path / "suites" / "w.pt"
    w.write_bytes(b"x")
    w.chmod(0)
    msg = _problems(tmp_path, _matrix(models=('{ name = "mlp", weights = "w.pt" }',)), registry)
    assert "not readable" in msg


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01binary", b"name = \"x\"\n\x80\x81"])
def test_a_binary_suite_file_exits_2_naming_the_file(harness_cli, tmp_path, content):
    path = tmp_path / "binary.toml"
    path.write_bytes(content)
    proc = harness_cli("run", path, "--db", tmp_path / "x.db")
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr and "not UTF-8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_weights_and_onnx_files_fail_their_cells_naming_the_file_and_reason(harness_cli, tmp_path):
    import torch

    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "empty.pt").write_bytes(b"")
    (folder / "random.pt").write_bytes(os.urandom(3000))
    torch.save(torch.nn.Linear(64, 64).state_dict(), folder / "trunc.pt")
    (folder / "trunc.pt").write_bytes((folder / "trunc.pt").read_bytes()[:2000])
    torch.save({"nothing": torch.zeros(1)}, folder / "misfit.pt")
    (folder / "random.onnx").write_bytes(os.urandom(500))
    models = [f'{{ name = "mlp", weights = "{n}" }}' for n in ("empty.pt", "random.pt", "trunc.pt", "misfit.pt")]
    models.append('{ name = "onnx-file", path = "random.onnx" }')
    (folder / "s.toml").write_text(_matrix(models=models))
    proc = harness_cli("run", folder / "s.toml", "--db", tmp_path / "x.db", "-q")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    conn = sqlite3.connect(tmp_path / "x.db")
    reasons = [r for (r,) in conn.execute("SELECT reason FROM cells WHERE status = 'failed'")]
    conn.close()
    for name, why in (("empty.pt", "truncated or empty"), ("random.pt", "not a torch"),
                      ("trunc.pt", "truncated"), ("misfit.pt", "does not fit the architecture"),
                      ("random.onnx", "not a valid ONNX model")):
        hits = [r for r in reasons if str(folder / name) in r]
        assert hits and all(why in r for r in hits), (name, reasons)
        assert not any("Errno" in r or "EOFError" in r for r in hits)


def test_a_grid_over_files_resolves_and_checks_each(tmp_path, registry):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "a.onnx").write_bytes(b"x")
    text = _matrix(models=('{ name = "onnx-file", path = ["a.onnx", "b.onnx"] }',))
    msg = _problems(tmp_path, text, registry)
    assert "models[0].path[1]: file not found" in msg and "path[0]" not in msg
    (tmp_path / "suites" / "b.onnx").write_bytes(b"x")
    plan = _plan(tmp_path, text, registry)
    paths = {c.model.params["path"] for c in plan.cells}
    assert paths == {str(tmp_path / "suites" / "a.onnx"), str(tmp_path / "suites" / "b.onnx")}
