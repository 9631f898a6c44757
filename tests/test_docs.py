"""The reference manual cannot drift from the code: every hook, spec and context field, metric,
suite-file key and setting, leaderboard column, fixture and conformance clause is in docs/, and the
complete examples are the code that is tested."""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import re
import typing
from pathlib import Path
from string import Template

import pytest

from harness.api import TimingPlan
from harness.devkit.scaffold import description, names_for
from harness.measure.timing import TimingResult
from harness.plan.matrix import MATRIX_KEYS
from harness.plan.suitefile import EXECUTION_SETTINGS, TOP_KEYS
from harness.plugin import hookspecs, specs
from harness.plugin.params import Param

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KIND_PAGES = {kind: DOCS / "plugins" / f"{kind}.md" for kind in specs.KINDS}


def text(page: Path) -> str:
    return page.read_text()


def all_docs() -> str:
    return "\n".join(text(p) for p in sorted(DOCS.rglob("*.md")))


def rows(page: Path) -> list[str]:
    return [line for line in text(page).splitlines() if line.startswith("|")]


def hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("harness_")]


# --------------------------------------------------------------------------- hooks, specs, contexts


def test_every_hook_is_documented_on_its_kind_page():
    assert len(hook_names()) == len(specs.KINDS)
    for kind, page in KIND_PAGES.items():
        hook = f"harness_register_{kind}s"
        assert hook in hook_names()
        assert f"`{hook}(register)`" in text(page), (hook, page)
    docs = all_docs()
    for hook in hook_names():
        assert hook in docs


@pytest.mark.parametrize("kind", sorted(specs.KINDS))
def test_every_hook_is_typed_and_documented_for_its_kind(kind):
    """``register`` is typed ``Callable[[<Kind>Spec], None]`` and the docstring says how to call it."""
    fn = getattr(hookspecs, f"harness_register_{kind}s")
    spec_cls = specs.KINDS[kind]
    register = typing.get_type_hints(fn)["register"]
    assert typing.get_origin(register) is collections.abc.Callable
    args, returns = typing.get_args(register)
    assert args == [spec_cls] and returns in (None, type(None)), register
    doc = inspect.getdoc(fn)
    assert doc and f":param register: call ``register({spec_cls.__name__}(...))`` once per {kind}" in doc


def test_the_hook_manual_says_where_registration_runs_and_what_is_refused():
    from harness.plugin.manager import ORDERING_OPTIONS

    manual = hookspecs.__doc__
    for place in ("the driver", "every worker process", "every verifier child", "every conformance worker",
                  "cheap and free of side effects"):
        assert place in manual, place
    assert "Fires once" not in all_docs() + manual
    authoring = text(DOCS / "authoring.md")
    for option in ORDERING_OPTIONS:  # what the manager refuses is what the manual and the guide say
        assert f"``{option}" in manual and f"`{option}" in authoring, option


CONTEXTS = {
    "method": [specs.ApplyContext, Param],
    "model": [specs.ModelContext],
    "dataset": [specs.DatasetContext, specs.Splits, specs.Split],
    "backend": [specs.Artifact, TimingPlan, TimingResult],
    "suite": [specs.CellContext, specs.Measurement, specs.MetricSpec],
    "verifier": [],
}


@pytest.mark.parametrize("kind", sorted(specs.KINDS))
def test_every_spec_and_context_field_is_in_a_table_of_its_page(kind):
    table = "\n".join(rows(KIND_PAGES[kind]))
    for cls in [specs.KINDS[kind], *CONTEXTS[kind]]:
        for f in dataclasses.fields(cls):
            assert f"`{f.name}`" in table, (cls.__name__, f.name, KIND_PAGES[kind].name)


def test_artifact_and_session_members_are_documented():
    table = "\n".join(rows(KIND_PAGES["backend"]))
    for member in ("formats", "file(fmt)", "load_torch()", "input_shape", "Artifact.open(path)"):
        assert f"`{member}`" in table
    for member in ("info", "run(x)", "time(batches, plan)", "close()"):
        assert f"`{member}`" in table


def test_timing_plan_defaults_are_the_documented_ones():
    table = rows(KIND_PAGES["backend"])
    for f in dataclasses.fields(TimingPlan):
        line = next(r for r in table if r.startswith(f"| `{f.name}` |"))
        shown = f"{f.default:g}" if isinstance(f.default, (int, float)) else f.default
        assert f"| {shown} |" in line or f"| {f.default} |" in line, line


# --------------------------------------------------------------------------- metrics, settings, schema


@pytest.fixture(scope="module")
def registry():
    from harness.plugin.manager import load_host

    return load_host().registry


def test_every_metric_is_in_the_leaderboard_table_with_its_unit(registry):
    section = text(DOCS / "leaderboard.md").split("\n## Metrics", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    metrics = [m for suite in registry.specs("suite") for m in suite.metrics]
    assert len(metrics) >= 19
    for m in metrics:
        line = next((r for r in table if r.startswith(f"| `{m.name}` |")), None)
        assert line is not None, m.name
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == m.unit, (m.name, cells)
        better = {True: "higher", False: "lower", None: "neither"}[m.higher_is_better]
        assert cells[3] == better, (m.name, cells)


def setting_default(p: Param) -> str:
    if isinstance(p.default, str):
        return f'`"{p.default}"`'
    return f"`{p.default!r}`"


def test_every_setting_is_in_the_suite_file_reference_with_type_and_default(registry):
    page = text(DOCS / "suite-files.md")
    sections = {"execution": EXECUTION_SETTINGS}
    sections.update({suite.name: suite.settings for suite in registry.specs("suite")})
    for section, params in sections.items():
        assert f"## `[settings.{section}]`" in page, section
        body = page.split(f"## `[settings.{section}]`", 1)[1].split("\n## ", 1)[0]
        for p in params:
            line = next((r for r in body.splitlines() if r.startswith(f"| `{p.name}` |")), None)
            assert line is not None, (section, p.name)
            assert setting_default(p) in line, (section, p.name, line)
            kind = {"float": "float", "int": "int", "str": "string", "list": "list", "bool": "bool"}[p.type.__name__]
            assert f"| {kind}" in line, (section, p.name, line)


def test_every_suite_file_key_is_documented():
    table = "\n".join(rows(DOCS / "suite-files.md"))
    for key in (*TOP_KEYS, *MATRIX_KEYS):
        assert f"| `{key}` |" in table, key


def test_latency_profiles_match_the_code():
    from harness.measure.timing import PROFILES

    table = rows(DOCS / "suite-files.md")
    for name, plan in PROFILES.items():
        line = next(r for r in table if r.startswith(f"| `{name}` |"))
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        assert [float(c) for c in cells] == [float(plan[k]) for k in
                                             ("warmup_iters", "warmup_s", "min_samples", "min_time_s", "max_time_s")]


def test_every_table_view_and_column_of_the_leaderboard_is_documented(memory_store):
    page = text(DOCS / "leaderboard.md")
    db = memory_store.db
    for name in db.table_names() + db.view_names():
        assert f"`{name}`" in page, name
        cols = db[name].columns if name in db.table_names() else db.view(name).columns
        section = page
        if name in db.table_names():
            section = page.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        for col in cols:
            assert f"`{col.name}`" in section, (name, col.name)


# --------------------------------------------------------------------------- fixtures, clauses, CLI


def test_every_fixture_is_documented():
    source = (ROOT / "harness" / "testing.py").read_text()
    fixtures = re.findall(r"@pytest\.fixture(?:\([^)]*\))?\ndef (\w+)", source)
    assert {"harness_host", "plugin_dir", "suite_file", "memory_store", "harness_cli", "harness_plugin",
            "plugin_manager", "toy_splits", "toy_model", "toy_apply_context", "toy_artifact", "toy_vnnlib",
            "conformance"} <= set(fixtures)
    table = "\n".join(rows(DOCS / "testing.md"))
    for name in fixtures:
        assert f"| `{name}` |" in table, name


def test_every_conformance_clause_is_documented():
    clauses = set()
    for f in (ROOT / "harness" / "devkit" / "conformance").glob("*.py"):
        clauses |= set(re.findall(r'\.run\("([^"]+)"', f.read_text()))
    clauses |= {"loads and registers", "import is light", "claims", "claim <key>"}
    assert len(clauses) >= 28
    table = "\n".join(rows(DOCS / "authoring.md"))
    for clause in clauses:
        assert f"| `{clause}` |" in table, clause


def test_every_check_plugin_and_new_plugin_option_is_documented():
    from harness.cli import cli

    page = text(DOCS / "authoring.md")
    for command in ("check-plugin", "new-plugin"):
        for param in cli.commands[command].params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert f"`{opt}" in page, (command, opt)


# --------------------------------------------------------------------------- examples and links


def blocks_after(page: Path, marker: str) -> str:
    match = re.search(re.escape(marker) + r"\n```python\n(.*?)```", text(page), re.S)
    assert match, (page, marker)
    return match.group(1)


@pytest.mark.parametrize("kind, file", [("method", "plugin.py"), ("model", "plugin.py"), ("model", "net.py"),
                                        ("dataset", "plugin.py"), ("backend", "plugin.py"),
                                        ("verifier", "plugin.py")])
def test_complete_examples_are_what_new_plugin_writes(kind, file):
    """The examples are the templates (which tests install, test and check), rendered for the name."""
    names = names_for(f"harness-example-{kind}")
    template = (ROOT / "harness" / "devkit" / "templates" / kind / f"{file}.tmpl").read_text()
    rendered = Template(template).substitute(**names, kind=kind, description=description(kind, names["name"]),
                                             harness_version="")
    assert blocks_after(KIND_PAGES[kind], f"<!-- template: {kind}/{file} -->") == rendered


def test_the_suite_example_passes_the_conformance_check(plugin_dir, conformance):
    path = plugin_dir.write("agreement_example", blocks_after(KIND_PAGES["suite"], "<!-- example: suite -->"))
    report = conformance(str(path), isolate=False, params={"agreement": {"samples": 16}})
    assert report.ok, report.text()
    measured = [r for r in report.results if r.check == "measurements"]
    assert measured and "max_abs_diff, top1_agreement" in measured[0].reason


def test_every_python_block_in_the_docs_compiles():
    for page in sorted(DOCS.rglob("*.md")):
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", text(page), re.S)):
            compile(block, f"{page}:{i}", "exec")


def test_relative_links_resolve():
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text(page)):
            assert (page.parent / target).exists(), (page, target)
