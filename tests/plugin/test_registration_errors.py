"""Errors that teach: each mistake a plugin author makes gets a message naming the plugin, its
distribution and what to change, at registration or when the harness first uses the thing."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from harness.api import (
    BackendSpec,
    DatasetSpec,
    MethodSpec,
    ModelSpec,
    Param,
    SuiteSpec,
    hookimpl,
)
from harness.core.errors import UsageError
from harness.devkit import toy
from harness.plugin.manager import DISABLE_ENV, PluginError


def _noop(*args, **kwargs):
    return None


def hook(kind_hook: str, body) -> types.SimpleNamespace:
    """A plugin object whose ``kind_hook`` runs ``body(register)``."""

    def impl(register):
        return body(register)

    impl.__name__ = kind_hook
    return types.SimpleNamespace(**{kind_hook: hookimpl(impl)})


def error(harness_host, *plugins, **kwargs) -> str:
    with pytest.raises(PluginError) as info:
        harness_host(*plugins, entry_points=kwargs.pop("entry_points", False), **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- duplicate names


def test_duplicate_name_says_how_to_resolve_it(harness_host):
    same = lambda reg: reg(MethodSpec(name="same", apply=_noop))  # noqa: E731
    msg = error(harness_host, ("alpha", hook("harness_register_methods", same)),
                ("beta", hook("harness_register_methods", same)))
    assert "method 'same' is registered twice" in msg
    assert '"alpha"' in msg and '"beta"' in msg
    assert "Names are unique per kind: rename one (the name= of its MethodSpec, e.g. 'beta-same')" in msg
    assert f"{DISABLE_ENV}=beta" in msg


def test_duplicate_of_an_installed_name_names_its_distribution(harness_host):
    msg = error(harness_host, ("mine", hook("harness_register_methods",
                                            lambda reg: reg(MethodSpec(name="global-magnitude", apply=_noop)))),
                entry_points=True)
    assert '"pruning" (harness-plugins ' in msg
    assert "rename one" in msg and f"{DISABLE_ENV}=mine" in msg


def test_two_plugins_with_one_name_say_what_to_rename(harness_host, plugin_dir):
    plugin_dir.write("pruning", "")
    msg = error(harness_host, plugins_dir=plugin_dir.path, entry_points=True)
    assert "Two plugins are named 'pruning'" in msg
    assert "rename one (its entry point's name, or its file's)" in msg


# --------------------------------------------------------------------------- wrong types


def test_spec_of_another_kind_says_which_hook_it_belongs_to(harness_host):
    msg = error(harness_host, ("confused", hook("harness_register_models",
                                                lambda reg: reg(MethodSpec(name="m", apply=_noop)))))
    assert 'Plugin "confused"' in msg
    assert "through harness_register_models, expected a harness.api.ModelSpec" in msg
    assert "a MethodSpec is registered through harness_register_methods: move this register() call" in msg


def test_non_spec_says_how_to_build_one(harness_host):
    msg = error(harness_host, ("dicty", hook("harness_register_backends", lambda reg: reg({"name": "b"}))))
    assert "expected a harness.api.BackendSpec" in msg
    assert "build one: register(BackendSpec(name=..., session=...)), with BackendSpec from harness.api" in msg


def test_list_of_specs_registered_at_once(harness_host):
    specs = [DatasetSpec(name="d1", load=_noop), DatasetSpec(name="d2", load=_noop)]
    msg = error(harness_host, ("bulk", hook("harness_register_datasets", lambda reg: reg(specs))))
    assert "call register() once per spec: for spec in specs: register(spec)" in msg


def test_hook_that_returns_specs_instead_of_registering(harness_host):
    msg = error(harness_host, ("returner", hook("harness_register_methods",
                                                lambda reg: [MethodSpec(name="lost", apply=_noop)])))
    assert 'Plugin "returner"' in msg
    assert "harness_register_methods returned [MethodSpec(name='lost'" in msg
    assert "registration hooks return nothing: call register(spec) for each spec instead" in msg


# --------------------------------------------------------------------------- hooks


def test_misspelled_hook_suggests_the_real_one(harness_host):
    msg = error(harness_host, ("typo", hook("harness_register_modelz", _noop)))
    assert 'Plugin "typo"' in msg and "unknown hook (misspelled?)" in msg
    assert "'harness_register_modelz': did you mean 'harness_register_models'?" in msg
    assert "The hooks are harness_register_backends, harness_register_datasets" in msg


def test_hook_without_the_harness_prefix(harness_host, plugin_dir):
    plugin_dir.write("noprefix", """
        from harness.api import hookimpl

        @hookimpl
        def register_methods(register):
            pass
    """)
    msg = error(harness_host, plugins_dir=plugin_dir.path)
    assert '"noprefix"' in msg
    assert "'register_methods': did you mean 'harness_register_methods'?" in msg


def test_hook_without_hookimpl_is_not_silently_ignored(harness_host, plugin_dir):
    plugin_dir.write("undecorated", """
        from harness.api import MethodSpec

        def harness_register_methods(register):
            register(MethodSpec(name="never-seen", apply=lambda ctx: ctx.module))
    """)
    msg = error(harness_host, plugins_dir=plugin_dir.path)
    assert 'Plugin "undecorated"' in msg
    assert "defines harness_register_methods without @hookimpl, so the harness would never call it" in msg
    assert "from harness.api import hookimpl" in msg


def test_hook_with_extra_arguments(harness_host):
    @hookimpl
    def harness_register_methods(register, options):
        pass

    msg = error(harness_host, ("sig", types.SimpleNamespace(harness_register_methods=harness_register_methods)))
    assert 'Error registering plugin "sig"' in msg and "options" in msg
    assert "Registration hooks take exactly one argument: @hookimpl def harness_register_<kind>s(register)" in msg


@pytest.mark.parametrize("option", ["tryfirst", "trylast", "hookwrapper", "wrapper"])
def test_ordering_options_are_refused_as_the_manual_says(harness_host, plugin_dir, option):
    """hookspecs: tryfirst, trylast and wrappers do not apply to registration hooks; loading refuses them."""
    body = "yield" if "wrapper" in option else "register(MethodSpec(name='ordered', apply=lambda ctx: ctx.module))"
    plugin_dir.write("ordered", f"""
        from harness.api import MethodSpec, hookimpl

        @hookimpl({option}=True)
        def harness_register_methods(register):
            {body}
    """)
    msg = error(harness_host, plugins_dir=plugin_dir.path)
    assert 'Plugin "ordered" (directory: ' in msg
    assert f"marks harness_register_methods({option}=True) with @hookimpl options that registration hooks do " \
           "not take" in msg
    assert "Write a plain @hookimpl (see harness.api.hookspecs), or run without it with " \
           f"{DISABLE_ENV}=ordered" in msg


def test_plugin_errors_carry_the_plugin_they_blame(harness_host):
    """A PluginError is a usage error whose ``plugin`` is the label its message names."""
    with pytest.raises(PluginError) as info:
        harness_host(("late", types.SimpleNamespace(
            harness_register_models=hookimpl(trylast=True)(lambda register: None))), entry_points=False)
    assert isinstance(info.value, UsageError)
    assert info.value.plugin.startswith('"late" (extra: ') and f"Plugin {info.value.plugin} " in str(info.value)


def test_ordering_option_under_another_function_name_is_refused(harness_host):
    """``specname`` does not hide the hook: the option is refused on the hook it implements."""

    @hookimpl(trylast=True, specname="harness_register_models")
    def fallback_models(register):
        register(ModelSpec(name="fallback", build=_noop))

    msg = error(harness_host, ("late", types.SimpleNamespace(fallback_models=fallback_models)))
    assert 'Plugin "late"' in msg and "harness_register_models(trylast=True)" in msg


def test_ordering_options_on_an_unknown_hook_name_the_unknown_hook(harness_host):
    """An option on a misspelled hook is not mistaken for an ordering problem: the typo is the error."""
    msg = error(harness_host, ("typo", types.SimpleNamespace(
        harness_register_modelz=hookimpl(trylast=True)(lambda register: None))))
    assert "did you mean 'harness_register_models'?" in msg and "trylast" not in msg


# --------------------------------------------------------------------------- exceptions


def test_raising_in_registration_points_at_the_line(harness_host, plugin_dir):
    path = plugin_dir.write("fiery", """
        from harness.api import hookimpl

        @hookimpl
        def harness_register_datasets(register):
            raise RuntimeError("disk on fire")
    """)
    msg = error(harness_host, plugins_dir=plugin_dir.path)
    assert 'Plugin "fiery" (directory: ' in msg
    assert "failed in harness_register_datasets: RuntimeError: disk on fire" in msg
    assert f"(at {path}:6 in harness_register_datasets)" in msg
    assert f"Fix the error, or run without it with {DISABLE_ENV}=fiery" in msg


def test_raising_at_import_points_at_the_line(harness_host, plugin_dir):
    path = plugin_dir.write("kaput", "import os\n\nVALUE = 1 / 0\n")
    msg = error(harness_host, plugins_dir=plugin_dir.path)
    assert 'Error loading plugin "kaput"' in msg
    assert f"ZeroDivisionError: division by zero (at {path}:3 in <module>)" in msg
    assert f"{DISABLE_ENV}=kaput" in msg


def test_installed_plugin_failing_at_import_names_its_distribution(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "harness_broken_demo").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "harness-broken-demo"\nversion = "0.2.0"\n'
        '[project.entry-points.harness]\nbroken = "harness_broken_demo.plugin"\n'
        '[tool.setuptools]\npackages = ["harness_broken_demo"]\n')
    (pkg / "harness_broken_demo" / "__init__.py").write_text("")
    (pkg / "harness_broken_demo" / "plugin.py").write_text("import harness_no_such_dependency\n")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(pkg)], check=True, capture_output=True)
    code = "from harness.plugin.manager import load_host; load_host()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert 'Error loading plugin "broken" (harness-broken-demo 0.2.0): ModuleNotFoundError' in proc.stderr
    assert "plugin.py:1 in <module>" in proc.stderr
    assert f"{DISABLE_ENV}=broken (or pip uninstall harness-broken-demo)" in proc.stderr


# --------------------------------------------------------------------------- invalid specs


@pytest.mark.parametrize("kind_hook, spec, detail", [
    ("harness_register_methods", MethodSpec(name="Bad Name", apply=_noop),
     "lower-case letters, digits, '-', '_' or '.', starting with a letter (e.g. 'bad-name')"),
    ("harness_register_methods", MethodSpec(name="m", apply="apply"),
     "apply must be callable, got 'apply': pass the function object, not its name or its result; "
     "the host calls it as apply(ctx)"),
    ("harness_register_methods", MethodSpec(name="m", apply=_noop, produces="onnx"),
     "('onnx',) when it returns the path of an ONNX file"),
    ("harness_register_backends", BackendSpec(name="b", session=_noop, accepts=("tflite",)),
     "('onnx',) for a runtime of ONNX files"),
    ("harness_register_models", ModelSpec(name="m", build=_noop, params=(Param("weights", str),)),
     "the host loads a state_dict file given as weights"),
    ("harness_register_suites", SuiteSpec(name="s", run=_noop, settings=({"name": "x"},)),
     "declare each parameter as Param('name', float"),
    ("harness_register_datasets", DatasetSpec(name="d", load=_noop, params=(Param("n", int), Param("n", int))),
     "declare n once"),
    ("harness_register_datasets", DatasetSpec(name="d", load=_noop, example={"root": "/data"}),
     "example must be a function example(workdir) -> dict"),
])
def test_invalid_spec_says_what_to_change(harness_host, kind_hook, spec, detail):
    msg = error(harness_host, ("sloppy", hook(kind_hook, lambda reg: reg(spec))))
    assert 'Plugin "sloppy"' in msg and "registered an invalid" in msg
    assert detail in msg


# --------------------------------------------------------------------------- at run time


def toy_cell(method: str, dataset: str = toy.DATASET, model: str = toy.MODEL) -> dict:
    return {"model": {"name": model, "params": {}}, "dataset": {"name": dataset, "params": {}},
            "method": {"name": method, "params": {}}, "seed": 0}


def test_apply_returning_the_wrong_type(harness_host, toy_splits, tmp_path):
    from harness.build.artifacts import build_artifact

    plugin = hook("harness_register_methods",
                  lambda reg: reg(MethodSpec(name="lazy", apply=lambda ctx: {"weights": "somewhere"})))
    host = harness_host((toy.PLUGIN_NAME, toy), ("lazy-plugin", plugin), entry_points=False)
    with pytest.raises(TypeError) as info:
        build_artifact(host.registry, toy_cell("lazy"), toy_splits, tmp_path)
    msg = str(info.value)
    assert "method lazy of plugin \"lazy-plugin\"" in msg
    assert "apply(ctx) returned {'weights': 'somewhere'}" in msg
    assert "return the compressed torch.nn.Module" in msg
    assert not any((tmp_path / "artifacts").iterdir())  # nothing half-built is left to trust


def test_load_returning_the_wrong_type(harness_host, tmp_path):
    from harness.build.artifacts import load_dataset
    from harness.core.identity import Component

    plugin = hook("harness_register_datasets",
                  lambda reg: reg(DatasetSpec(name="dicty", load=lambda ctx: {"x": [], "y": []})))
    host = harness_host(("dicty-plugin", plugin), entry_points=False)
    with pytest.raises(TypeError) as info:
        load_dataset(host.registry, Component("dicty", {}), tmp_path)
    assert 'dataset dicty of plugin "dicty-plugin"' in str(info.value)
    assert "load(ctx) returned dict; return harness.api.Splits(train=Split(x, y)" in str(info.value)


def test_build_returning_the_wrong_type(harness_host, toy_splits, tmp_path):
    from harness.build.artifacts import build_artifact

    plugin = hook("harness_register_models", lambda reg: reg(ModelSpec(name="ghost", build=lambda ctx: "Net")))
    host = harness_host((toy.PLUGIN_NAME, toy), ("ghost-plugin", plugin), entry_points=False)
    with pytest.raises(TypeError) as info:
        build_artifact(host.registry, toy_cell(toy.METHOD, model="ghost"), toy_splits, tmp_path)
    assert 'model ghost of plugin "ghost-plugin"' in str(info.value)
    assert "build(ctx) returned str; return a torch.nn.Module" in str(info.value)


def test_cli_prints_the_lesson_without_a_traceback(harness_cli, plugin_dir):
    plugin_dir.write("typo_cli", """
        from harness.api import hookimpl

        @hookimpl
        def harness_register_backend(register):
            pass
    """)
    proc = harness_cli("--plugins-dir", plugin_dir.path, "plugins", env={DISABLE_ENV: ""})
    assert proc.returncode == 2
    assert "did you mean 'harness_register_backends'?" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["harness_register_method", "harness_regster_methods"])
def test_a_misspelled_hook_without_hookimpl_gets_both_fixes_at_once(harness_host, plugin_dir, name):
    """Decorating a misspelled hook would only lead to the next error (unknown hook): the first one says both."""
    plugin_dir.write("typo", f"""
        from harness.api import MethodSpec

        def {name}(register):
            register(MethodSpec(name="never-seen", apply=lambda ctx: ctx.module))
    """)
    msg = error(harness_host, plugins_dir=plugin_dir.path)
    assert f"defines {name} without @hookimpl, so the harness would never call it" in msg
    assert f"{name} is no hook either (misspelled?): rename it harness_register_methods and decorate it " \
           "with @hookimpl" in msg
    assert "documented in harness.api.hookspecs" in msg


def test_the_hooks_manual_the_messages_name_is_public():
    import harness.api

    assert harness.api.hookspecs.harness_register_methods.__doc__
