"""harness new-plugin: each kind's package installs, is listed, passes its own tests and the
conformance check as written; a method and a backend reach a ranked leaderboard through the
suite file they come with. Refusals are clear and exit with status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from harness.devkit.scaffold import KINDS, names_for

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, cwd: Path, site: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HARNESS_CACHE_DIR=str(cwd / ".cache"))
    env.pop("HARNESS_DISABLE_PLUGINS", None)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One plugin of every kind, written by the CLI and installed (non-editable) into one site folder."""
    root = tmp_path_factory.mktemp("newcomer")
    for kind in KINDS:
        proc = cli("new-plugin", f"harness-demo-{kind}", "--kind", kind, cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert f"Created {kind} plugin 'demo-{kind}' in harness-demo-{kind}/" in proc.stdout
    site = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "--target", str(site),
                           *(str(root / f"harness-demo-{k}") for k in KINDS)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, site


# --------------------------------------------------------------------------- what is written


@pytest.mark.parametrize("kind", KINDS)
def test_package_layout(generated, kind):
    root, _ = generated
    folder = root / f"harness-demo-{kind}"
    package = f"harness_demo_{kind}"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                   and "build" not in p.parts and ".egg-info" not in str(p))
    expected = {".gitignore", "README.md", "conftest.py", "pyproject.toml", f"{package}/__init__.py",
                f"{package}/plugin.py", f"tests/test_{package}.py"}
    expected |= {"suite.toml"} if kind != "verifier" else set()
    expected |= {f"{package}/net.py"} if kind == "model" else set()
    assert set(files) == expected
    meta = tomllib.loads((folder / "pyproject.toml").read_text())
    assert meta["project"]["name"] == f"harness-demo-{kind}"
    assert meta["project"]["dependencies"] == ["compression-harness"]  # never an unpinned torch
    assert meta["project"]["entry-points"]["harness"] == {f"demo-{kind}": f"{package}.plugin"}
    assert (folder / "conftest.py").read_text().count('pytest_plugins = ["harness.testing"]') == 1
    for f in folder.rglob("*"):
        if f.is_file() and f.suffix in (".py", ".toml", ".md"):
            text = f.read_text()
            assert "$" not in text.replace("$$", ""), f  # every placeholder filled
            if f.suffix == ".py":
                compile(text, str(f), "exec")
    assert (os.stat(folder).st_mode & 0o777) != 0o700  # not left private by the temporary folder


def test_templates_ship_in_the_wheel(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    wheel, = tmp_path.glob("compression_harness-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in KINDS:
        assert f"harness/devkit/templates/{kind}/plugin.py.tmpl" in names
    assert "harness/devkit/templates/common/pyproject.toml.tmpl" in names


def test_names_derive_from_the_folder_name():
    assert names_for("harness-my-prune") == {"dist": "harness-my-prune", "package": "harness_my_prune",
                                             "name": "my-prune"}
    assert names_for("fastprune") == {"dist": "fastprune", "package": "fastprune", "name": "fastprune"}


# --------------------------------------------------------------------------- installed


def test_installed_plugins_are_listed(generated):
    root, site = generated
    proc = cli("plugins", "--json", cwd=root, site=site)
    assert proc.returncode == 0, proc.stderr
    infos = {p["name"]: p for p in json.loads(proc.stdout)}
    for kind in KINDS:
        info = infos[f"demo-{kind}"]
        assert info["distribution"] == f"harness-demo-{kind}" and info["version"] == "0.1.0"
        assert info["registered"] == {kind: [f"demo-{kind}"]}


@pytest.mark.parametrize("kind", KINDS)
def test_generated_tests_pass_as_written(generated, kind):
    root, site = generated
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p),
               HARNESS_CACHE_DIR=str(root / ".cache"))
    env.pop("HARNESS_DISABLE_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"harness-demo-{kind}"],
                          capture_output=True, text=True, env=env, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_generated_tests_pass_before_installing(tmp_path):
    """pytest NAME straight after new-plugin: conftest.py puts the package on the path, and the
    conformance check (its workers, its fresh-interpreter import) finds it there too."""
    assert cli("new-plugin", "harness-fresh", "--kind", "method", cwd=tmp_path).returncode == 0
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / ".cache"))
    env.pop("HARNESS_DISABLE_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "harness-fresh"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "5 passed" in proc.stdout


@pytest.mark.parametrize("kind", ["method", "backend", "verifier"])
def test_generated_plugins_pass_check_plugin(generated, kind):
    root, site = generated
    proc = cli("check-plugin", f"harness-demo-{kind}", cwd=root, site=site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"harness-demo-{kind}: " in proc.stdout and " 0 failed, 0 skipped" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind, sort, column", [("method", "top1", "top1"), ("backend", "p90_ms", "p90_ms@b1")])
def test_suite_file_ranks_the_new_plugin(generated, kind, sort, column):
    root, site = generated
    db = root / f"{kind}.db"
    run = cli("run", f"harness-demo-{kind}/suite.toml", "--db", db, "-q", cwd=root, site=site)
    assert run.returncode == 0, run.stderr
    board = json.loads(cli("leaderboard", "--db", db, "--sort", sort, "--format", "json", cwd=root, site=site).stdout)
    field = "method" if kind == "method" else "backend"
    mine = [i for i, row in enumerate(board) if row[field] == f"demo-{kind}"]
    assert mine, board
    values = [row[column] for row in board]
    assert all(v is not None for v in values)
    # Ranked rows come first, best first; flagged rows (a quality gate) follow, unranked.
    ranked = [row[column] for row in board if row.get("rank") is not None]
    assert ranked and ranked == sorted(ranked, reverse=(sort == "top1"))
    assert all(row.get("flags") for row in board[len(ranked):])
    if kind == "method":
        rows = {row["method_params"]: row for row in board if row["method"] == "demo-method"}
        assert rows["sparsity=0.5"]["weight_sparsity"] == pytest.approx(0.5, abs=0.005)
        assert rows["sparsity=0.9"]["weight_sparsity"] == pytest.approx(0.9, abs=0.005)
    else:
        params = {row["backend_params"] for row in board if row["backend"] == "demo-backend"}
        assert params == {"optimization=disable,threads=1", "optimization=all,threads=1"}


# --------------------------------------------------------------------------- refusals


def test_refuses_an_existing_folder(tmp_path):
    (tmp_path / "harness-taken").mkdir()
    proc = cli("new-plugin", "harness-taken", "--kind", "method", cwd=tmp_path)
    assert proc.returncode == 2
    assert "harness-taken already exists: choose another NAME or --dir, or remove the folder" in proc.stderr
    assert list((tmp_path / "harness-taken").iterdir()) == []


@pytest.mark.parametrize("name, reason", [
    ("Harness_Prune", "invalid plugin name 'Harness_Prune': use lower-case letters and digits joined by '-'"),
    ("2prune", "invalid plugin name '2prune'"),
    ("my--prune", "invalid plugin name 'my--prune'"),
    ("harness", "a module named 'harness' is already importable"),
    ("json", "a module named 'json' is already importable"),
    ("class", "'class' is a Python keyword"),
    ("dense", "a method named 'dense' is already registered by plugin \"dense\" (compression-harness "),
    ("pruning", "a plugin named 'pruning' is already installed"),
])
def test_refuses_a_bad_name(tmp_path, name, reason):
    proc = cli("new-plugin", name, "--kind", "method", cwd=tmp_path)
    assert proc.returncode == 2
    assert reason in proc.stderr
    assert not (tmp_path / name).exists()
    assert [p for p in tmp_path.iterdir() if p.name != ".cache"] == []  # no half-written folder


def test_refuses_an_unknown_kind(tmp_path):
    proc = cli("new-plugin", "harness-x", "--kind", "optimizer", cwd=tmp_path)
    assert proc.returncode == 2
    assert "'optimizer' is not one of 'method', 'model', 'dataset', 'backend', 'verifier'" in proc.stderr


def test_dir_option_and_summary(tmp_path):
    proc = cli("new-plugin", "harness-elsewhere", "--kind", "backend", "--dir", "sub/dir", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "sub/dir/harness-elsewhere/harness_elsewhere/plugin.py").is_file()
    assert "pip install -e sub/dir/harness-elsewhere" in proc.stdout
    assert "harness run sub/dir/harness-elsewhere/suite.toml" in proc.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_the_readme_and_description_describe_the_new_plugin_not_its_example(tmp_path, kind):
    from harness.devkit.scaffold import STARTERS, new_plugin

    folder = new_plugin(f"harness-acme-{kind}", kind, tmp_path).folder
    meta = tomllib.loads((folder / "pyproject.toml").read_text())
    assert meta["project"]["description"] == f"The {kind} acme-{kind} for the harness (a plugin made with harness " \
                                             "new-plugin)"
    readme = (folder / "README.md").read_text()
    assert readme.splitlines()[2] == meta["project"]["description"] + "."
    assert f"wrote it from the template's working\nexample, {STARTERS[kind]}, to be replaced by yours" in readme
    plugin = (folder / f"harness_acme_{kind}" / "plugin.py").read_text()
    assert plugin.startswith(f'"""The {kind} acme-{kind} for the harness')
