"""The plugin host: registration through every hook, validation, errors that name plugins,
discovery order, disabling, external distributions and the ``harness plugins`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from harness import __version__
from harness.api import (
    BackendSpec,
    DatasetSpec,
    MethodSpec,
    ModelSpec,
    Param,
    SuiteSpec,
    VerifierSpec,
    hookimpl,
)
from harness.core.errors import UnknownName, UsageError
from harness.plugin.manager import DEFAULT_PLUGINS, DISABLE_ENV, HOOKS, PluginError
from harness.plugin.specs import KINDS

FIRST_PARTY = {
    "models": {"model": ["mlp", "lenet5", "resnet-small", "wide-mlp", "vit-tiny", "resnet18", "resnet50",
                         "mobilenet_v2"]},
    "datasets": {"dataset": ["digits", "synthetic", "imagefolder"]},
    "pruning": {"method": ["random", "global-magnitude", "layer-magnitude"]},
    "quantization": {"method": ["int8-dynamic", "int8-static", "matmul-nbits"]},
    "saliency": {"method": ["gradient", "wanda"]},
    "patterns": {"method": ["n-m", "block"]},
    "structured": {"method": ["channel-l1"]},
    "retraining": {"method": ["finetune", "lottery-ticket"]},
    "weight-quantization": {"method": ["kbit", "splitquant", "mixed-precision"]},
    "lowrank": {"method": ["svd"]},
    "torch-cpu": {"backend": ["torch-cpu", "torch-sparse-cpu"]},
    "onnxruntime-cpu": {"backend": ["onnxruntime-cpu"]},
    "torch-cuda": {"backend": ["torch-cuda", "torch-cuda-kernels"]},
    "wasm": {"backend": ["wasm"]},
    "arm": {"backend": ["arm"]},
    "transformers": {"model": ["hf-encoder", "hf-classifier", "hf-causal-lm", "tiny-lm"]},
    "text": {"dataset": ["text-lm", "text-embedding", "text-classification"]},
    "vision": {"dataset": ["cifar10", "mnist"]},
    "onnx-file": {"model": ["onnx-file"]},
    "verifiers": {"verifier": ["ibp", "crown", "milp", "pgd", "unsound-pgd", "marabou"]},
}
BUILTIN_SUITES = ["accuracy", "latency", "size", "soundness", "verification", "robustness", "robustness-shift",
                  "energy"]
#: A built-in plugin is named after its module; a suite name with a hyphen lives in a module with "_".
PLUGIN_OF = {"robustness-shift": "robustness_shift"}
BUILTINS = {**{PLUGIN_OF.get(name, name): {"suite": [name]} for name in BUILTIN_SUITES},
            "vnncomp": {"verifier": ["vnncomp"]}, "dense": {"method": ["dense"]}}


def _noop(*args, **kwargs):
    return None


def make_spec(kind: str, name: str):
    """A minimal valid spec of ``kind``."""
    return {
        "model": lambda: ModelSpec(name=name, build=_noop),
        "dataset": lambda: DatasetSpec(name=name, load=_noop),
        "method": lambda: MethodSpec(name=name, apply=_noop),
        "backend": lambda: BackendSpec(name=name, session=_noop),
        "suite": lambda: SuiteSpec(name=name, run=_noop),
        "verifier": lambda: VerifierSpec(name=name, verify=_noop),
    }[kind]()


def plugin_registering(kind: str, *specs) -> types.SimpleNamespace:
    """A plugin object whose ``harness_register_<kind>s`` hook registers ``specs``."""

    def impl(register):
        for spec in specs:
            register(spec)

    impl.__name__ = HOOKS[kind]
    return types.SimpleNamespace(**{HOOKS[kind]: hookimpl(impl)})


# --------------------------------------------------------------------------- registration


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_registers_through_its_hook(harness_host, kind):
    spec = make_spec(kind, f"test-{kind}")
    host = harness_host(("myplugin", plugin_registering(kind, spec)), entry_points=False)
    assert host.registry.has(kind, f"test-{kind}")
    reg = host.registry.get(kind, f"test-{kind}")
    assert reg.spec is spec
    assert isinstance(reg.spec, KINDS[kind])
    assert reg.plugin.name == "myplugin"
    assert reg.plugin.source == "extra"
    assert host.registry.plugins["myplugin"].registered == {kind: [f"test-{kind}"]}
    # nothing leaks into the other kinds
    for other in KINDS:
        if other != kind:
            assert not host.registry.has(other, f"test-{kind}")


def test_verifier_is_a_kind_with_its_own_hook(harness_host):
    assert KINDS["verifier"] is VerifierSpec
    assert HOOKS["verifier"] == "harness_register_verifiers"
    host = harness_host(("verif", plugin_registering("verifier", make_spec("verifier", "toy-verifier"))),
                        entry_points=False)
    assert host.registry.names("verifier") == ["toy-verifier", "vnncomp"]  # vnncomp is built in
    assert host.registry.get("verifier", "toy-verifier").plugin.name == "verif"
    assert host.registry.plugins["verif"].as_dict()["kinds"] == ["verifier"]


def test_class_plugin_registering_several_kinds(harness_host):
    class Multi:
        @staticmethod
        @hookimpl
        def harness_register_models(register):
            register(ModelSpec(name="m1", build=_noop))
            register(ModelSpec(name="m2", build=_noop))

        @staticmethod
        @hookimpl
        def harness_register_methods(register):
            register(MethodSpec(name="meth", apply=_noop,
                                params=(Param("sparsity", float, min=0.0, max=1.0),)))

    host = harness_host(("multi", Multi), entry_points=False)
    info = host.registry.plugins["multi"]
    assert info.registered == {"model": ["m1", "m2"], "method": ["meth"]}
    assert info.as_dict()["kinds"] == ["method", "model"]
    assert host.registry.get("model", "m2").plugin is info
    assert host.registry.get("method", "meth").plugin is info


def test_plugin_file_in_directory_registers(harness_host, plugin_dir):
    plugin_dir.write("my_methods", """
        from harness.api import MethodSpec, hookimpl

        def apply(ctx):
            return ctx.module

        @hookimpl
        def harness_register_methods(register):
            register(MethodSpec(name="dir-method", apply=apply))
    """)
    host = harness_host(plugins_dir=plugin_dir.path, entry_points=False)
    reg = host.registry.get("method", "dir-method")
    assert reg.plugin.name == "my_methods"
    assert reg.plugin.source == "directory"
    assert reg.plugin.location == str(plugin_dir.path / "my_methods.py")
    assert host.plugins_dir == str(plugin_dir.path)


def test_directory_skips_underscore_files(harness_host, plugin_dir):
    plugin_dir.write("_helpers", "raise RuntimeError('must not be imported')\n")
    host = harness_host(plugins_dir=plugin_dir.path, entry_points=False)
    assert "_helpers" not in host.registry.plugins


def test_builtin_suites_registered_as_plugins(harness_host):
    host = harness_host(entry_points=False)
    assert host.registry.names("suite") == sorted(BUILTIN_SUITES)
    assert host.registry.names("verifier") == ["vnncomp"]
    assert host.registry.get("verifier", "vnncomp").plugin.source == "builtin"
    for name in BUILTIN_SUITES:
        info = host.registry.get("suite", name).plugin
        assert info.name == PLUGIN_OF.get(name, name)
        assert info.source == "builtin"
        # the host's own distribution (its name is the project's business), at the host's version
        assert info.distribution
        assert info.version == __version__
    # the baseline is built in: there without any plugin package
    assert host.registry.names("method") == ["dense"]
    assert host.registry.get("method", "dense").plugin.source == "builtin"


def test_dense_is_the_builtin_identity(harness_host):
    """dense returns the module as it is (torch or ONNX), claims nothing, and needs no plugin package."""
    host = harness_host(entry_points=False)
    dense = host.registry.get("method", "dense").spec
    module = object()
    assert dense.apply(types.SimpleNamespace(module=module, params={}, seed=0)) is module
    assert dense.claims({}) == {}
    assert dense.params == ()
    assert dense.consumes == ("torch", "onnx") and dense.produces == ("torch", "onnx")


def test_first_party_plugins_attributed(harness_host):
    host = harness_host()
    for plugin, registered in FIRST_PARTY.items():
        info = host.registry.plugins[plugin]
        assert info.source == "entry point"
        assert info.distribution == "harness-plugins"
        for kind, names in registered.items():
            assert sorted(info.registered[kind]) == sorted(names)
            for n in names:
                assert host.registry.get(kind, n).plugin.name == plugin


def test_registry_get_unknown_lists_known(harness_host):
    host = harness_host(entry_points=False)
    with pytest.raises(KeyError) as info:
        host.registry.get("suite", "speed")
    assert "unknown suite 'speed'" in str(info.value)
    assert "accuracy, energy, latency, robustness, robustness-shift, size, soundness, verification" in str(info.value)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_typed_lookups_hand_out_the_spec_of_their_kind(harness_host, kind):
    spec = make_spec(kind, f"test-{kind}")
    host = harness_host(("typed", plugin_registering(kind, spec)), entry_points=False)
    lookup = getattr(host.registry, kind)  # registry.model(name), registry.suite(name), ...
    assert lookup(f"test-{kind}") is spec
    assert host.registry.spec(kind, f"test-{kind}") is spec
    assert host.registry.plugin_of(kind, f"test-{kind}").name == "typed"
    assert spec in host.registry.specs(kind)
    assert [r.spec for r in host.registry.registered(kind) if r.plugin.name == "typed"] == [spec]


def test_typed_lookup_of_an_unknown_name_is_a_usage_error_listing_the_known(harness_host):
    host = harness_host(("two", plugin_registering("method", make_spec("method", "b-meth"),
                                                   make_spec("method", "a-meth"))), entry_points=False)
    with pytest.raises(UnknownName) as info:
        host.registry.method("c-meth")
    assert isinstance(info.value, UsageError) and isinstance(info.value, KeyError)
    assert str(info.value) == "unknown method 'c-meth': did you mean 'b-meth'? (known: a-meth, b-meth, dense)"
    assert (info.value.kind, info.value.name, info.value.known) == ("method", "c-meth", ["a-meth", "b-meth", "dense"])
    with pytest.raises(UnknownName, match=r"unknown model 'x' \(known: none\)"):
        host.registry.model("x")


def test_the_registry_is_written_only_through_add(harness_host):
    host = harness_host(entry_points=False)
    assert not hasattr(host.registry, "items")  # no mapping to write around add()'s checks
    with pytest.raises(PluginError, match="registered twice"):
        host.registry.add("suite", host.registry.suite("latency"), host.registry.plugin_of("suite", "latency"))
    assert host.registry.has("suite", "latency") and not host.registry.has("suite", "mine")


def test_fresh_host_each_call(harness_host):
    first = harness_host(("p", plugin_registering("method", make_spec("method", "only-here"))),
                         entry_points=False)
    second = harness_host(entry_points=False)
    assert first.registry.has("method", "only-here")
    assert not second.registry.has("method", "only-here")
    assert "p" not in second.registry.plugins


# --------------------------------------------------------------------------- errors


def test_duplicate_name_names_both_plugins(harness_host):
    with pytest.raises(PluginError) as info:
        harness_host(("alpha", plugin_registering("method", make_spec("method", "same"))),
                     ("beta", plugin_registering("method", make_spec("method", "same"))),
                     entry_points=False)
    msg = str(info.value)
    assert "'same'" in msg
    assert "registered twice" in msg
    assert '"alpha"' in msg and '"beta"' in msg


def test_duplicate_of_first_party_name_names_distribution(harness_host):
    with pytest.raises(PluginError) as info:
        harness_host(("mine", plugin_registering("method", make_spec("method", "random"))))
    msg = str(info.value)
    assert "method 'random' is registered twice" in msg
    assert '"pruning" (harness-plugins ' in msg
    assert '"mine"' in msg


def test_same_name_in_different_kinds_is_fine(harness_host):
    host = harness_host(("p", plugin_registering("model", make_spec("model", "shared"))),
                        ("q", plugin_registering("dataset", make_spec("dataset", "shared"))),
                        entry_points=False)
    assert host.registry.get("model", "shared").plugin.name == "p"
    assert host.registry.get("dataset", "shared").plugin.name == "q"


def test_two_plugins_with_the_same_name(harness_host, plugin_dir):
    plugin_dir.write("pruning", "")
    with pytest.raises(PluginError) as info:
        harness_host(plugins_dir=plugin_dir.path)
    msg = str(info.value)
    assert "Two plugins are named 'pruning'" in msg
    assert "harness-plugins" in msg
    assert "directory" in msg


BAD_SPECS = {
    "bad name": ("method", lambda: MethodSpec(name="Bad Name", apply=_noop), "'Bad Name'"),
    "uppercase": ("model", lambda: ModelSpec(name="LeNet", build=_noop), "'LeNet'"),
    "not callable": ("method", lambda: MethodSpec(name="m", apply="nope"), "apply must be callable"),
    "unknown format": ("method", lambda: MethodSpec(name="m", apply=_noop, produces=("tflite",)),
                       "produces must name formats"),
    "no accepts": ("backend", lambda: BackendSpec(name="b", session=_noop, accepts=()),
                   "accepts must name formats"),
    "weights declared": ("model", lambda: ModelSpec(name="m", build=_noop, params=(Param("weights", str),)),
                         "'weights' is a host parameter"),
    "duplicate params": ("dataset", lambda: DatasetSpec(name="d", load=_noop,
                                                        params=(Param("n", int), Param("n", int))),
                         "duplicate parameter names"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_invalid_spec_names_plugin(harness_host, case):
    kind, build, detail = BAD_SPECS[case]
    with pytest.raises(PluginError) as info:
        harness_host(("sloppy", plugin_registering(kind, build())), entry_points=False)
    msg = str(info.value)
    assert 'Plugin "sloppy"' in msg
    assert f"invalid {kind}" in msg
    assert detail in msg


def test_params_that_are_not_param_objects_name_plugin(harness_host):
    spec = SuiteSpec(name="s", run=_noop, settings=({"name": "x"},))
    with pytest.raises(PluginError) as info:
        harness_host(("sloppy", plugin_registering("suite", spec)), entry_points=False)
    assert 'Plugin "sloppy"' in str(info.value)
    assert "harness_register_suites" in str(info.value)


def test_params_that_are_not_param_objects_say_so(harness_host):
    spec = SuiteSpec(name="s", run=_noop, settings=({"name": "x"},))
    with pytest.raises(PluginError) as info:
        harness_host(("sloppy", plugin_registering("suite", spec)), entry_points=False)
    assert "invalid suite" in str(info.value)
    assert "harness.api.Param objects" in str(info.value)


def test_wrong_spec_type_names_plugin_and_hook(harness_host):
    with pytest.raises(PluginError) as info:
        harness_host(("confused", plugin_registering("model", make_spec("method", "oops"))),
                     entry_points=False)
    msg = str(info.value)
    assert 'Plugin "confused"' in msg
    assert "harness_register_models" in msg
    assert "expected a harness.api.ModelSpec" in msg


def test_register_non_spec_object(harness_host):
    with pytest.raises(PluginError) as info:
        harness_host(("dicty", plugin_registering("backend", {"name": "b"})), entry_points=False)
    assert 'Plugin "dicty"' in str(info.value)
    assert "BackendSpec" in str(info.value)


def test_directory_plugin_raising_at_import(harness_host, plugin_dir):
    plugin_dir.write("broken_import", """
        import harness_no_such_module_xyz  # noqa: F401
    """)
    with pytest.raises(PluginError) as info:
        harness_host(plugins_dir=plugin_dir.path, entry_points=False)
    msg = str(info.value)
    assert 'Error loading plugin "broken_import"' in msg
    assert "ModuleNotFoundError" in msg
    assert "harness_no_such_module_xyz" in msg
    assert "harness_plugin_file_broken_import" not in sys.modules


def test_directory_plugin_syntax_error(harness_host, plugin_dir):
    plugin_dir.write("syntaxy", "def (:\n")
    with pytest.raises(PluginError) as info:
        harness_host(plugins_dir=plugin_dir.path, entry_points=False)
    assert '"syntaxy"' in str(info.value)
    assert "SyntaxError" in str(info.value)


def test_hook_that_raises_names_plugin_and_hook(harness_host):
    @hookimpl
    def harness_register_datasets(register):
        raise RuntimeError("disk on fire")

    with pytest.raises(PluginError) as info:
        harness_host(("fiery", types.SimpleNamespace(harness_register_datasets=harness_register_datasets)),
                     entry_points=False)
    msg = str(info.value)
    assert 'Plugin "fiery"' in msg
    assert "harness_register_datasets" in msg
    assert "RuntimeError: disk on fire" in msg
    assert isinstance(info.value.__cause__, RuntimeError)


def test_directory_plugin_hook_raises(harness_host, plugin_dir):
    plugin_dir.write("bad_hook", """
        from harness.api import hookimpl

        @hookimpl
        def harness_register_backends(register):
            raise ValueError("no backend today")
    """)
    with pytest.raises(PluginError) as info:
        harness_host(plugins_dir=plugin_dir.path, entry_points=False)
    msg = str(info.value)
    assert '"bad_hook"' in msg
    assert "harness_register_backends" in msg
    assert "no backend today" in msg


def test_misspelled_hook_fails_check_pending(harness_host):
    @hookimpl
    def harness_register_modelz(register):
        register(make_spec("model", "never"))

    with pytest.raises(PluginError) as info:
        harness_host(("typo", types.SimpleNamespace(harness_register_modelz=harness_register_modelz)),
                     entry_points=False)
    msg = str(info.value)
    assert "unknown hook" in msg
    assert "misspelled" in msg
    assert "harness_register_modelz" in msg
    assert '"typo"' in msg


def test_misspelled_hook_in_directory_plugin(harness_host, plugin_dir):
    plugin_dir.write("typo_file", """
        from harness.api import hookimpl

        @hookimpl
        def harness_register_method(register):
            pass
    """)
    with pytest.raises(PluginError) as info:
        harness_host(plugins_dir=plugin_dir.path, entry_points=False)
    msg = str(info.value)
    assert '"typo_file"' in msg
    assert "harness_register_method" in msg


def test_hook_with_wrong_signature(harness_host):
    @hookimpl
    def harness_register_methods(register, extra_arg):
        pass

    with pytest.raises(PluginError) as info:
        harness_host(("sig", types.SimpleNamespace(harness_register_methods=harness_register_methods)),
                     entry_points=False)
    assert 'Error registering plugin "sig"' in str(info.value)
    assert "extra_arg" in str(info.value)


def test_missing_plugins_dir(harness_host, tmp_path):
    with pytest.raises(PluginError) as info:
        harness_host(plugins_dir=tmp_path / "nowhere", entry_points=False)
    assert "nowhere" in str(info.value)
    assert "does not exist" in str(info.value)


# --------------------------------------------------------------------------- disabling and order


def test_disable_plugins_env(harness_host, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "pruning, latency")
    host = harness_host()
    assert "pruning" not in host.registry.plugins
    assert "latency" not in host.registry.plugins
    for name in ("random", "global-magnitude", "layer-magnitude"):
        assert not host.registry.has("method", name)
    assert host.registry.has("method", "dense")  # the baseline is built in, not pruning's
    assert "int8-dynamic" in host.registry.names("method")  # other plugins' methods stay
    assert host.registry.names("suite") == sorted(set(BUILTIN_SUITES) - {"latency"})
    assert "models" in host.registry.plugins


def test_disable_plugins_env_blocks_directory_and_extra(harness_host, monkeypatch, plugin_dir):
    plugin_dir.write("blocked_file", "raise RuntimeError('must not be imported')\n")
    monkeypatch.setenv(DISABLE_ENV, "blocked_file,blocked_extra")
    host = harness_host(("blocked_extra", plugin_registering("method", make_spec("method", "gone"))),
                        ("kept_extra", plugin_registering("method", make_spec("method", "kept"))),
                        plugins_dir=plugin_dir.path, entry_points=False)
    assert "blocked_file" not in host.registry.plugins
    assert "blocked_extra" not in host.registry.plugins
    assert host.registry.names("method") == ["dense", "kept"]


def test_without_disable_env_everything_loads(harness_host, monkeypatch):
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    host = harness_host()
    assert set(BUILTINS) | set(FIRST_PARTY) <= set(host.registry.plugins)


def test_discovery_order(harness_host, plugin_dir):
    plugin_dir.write("zz_dir_b", "")
    plugin_dir.write("aa_dir_a", "")
    host = harness_host(("extra_one", types.SimpleNamespace()), plugins_dir=plugin_dir.path)
    infos = list(host.registry.plugins.values())
    names = [p.name for p in infos]
    sources = [p.source for p in infos]
    rank = {"builtin": 0, "entry point": 1, "directory": 2, "extra": 3}
    assert [rank[s] for s in sources] == sorted(rank[s] for s in sources)
    assert names[:len(DEFAULT_PLUGINS)] == [m.rsplit(".", 1)[-1] for m in DEFAULT_PLUGINS]
    entry = [p.name for p in infos if p.source == "entry point"]
    assert set(FIRST_PARTY) <= set(entry)
    assert entry == sorted(entry)
    assert [p.name for p in infos if p.source == "directory"] == ["aa_dir_a", "zz_dir_b"]
    assert names[-1] == "extra_one"


# --------------------------------------------------------------------------- external distribution

EXT_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "harness-ext-demo"
version = "0.3.0"
description = "a demo third-party harness plugin"

[project.entry-points.harness]
mymethod = "harness_ext_demo.plugin"

[tool.setuptools]
packages = ["harness_ext_demo"]
"""

EXT_PLUGIN = """\
from harness.api import MethodSpec, hookimpl


def apply(ctx):
    return ctx.module


@hookimpl
def harness_register_methods(register):
    register(MethodSpec(name="ext-prune", apply=apply, description="returns the model unchanged"))
"""

EXT_BROKEN = """\
raise ImportError("harness_ext_demo needs libfoo")
"""


def install_distribution(root: Path, plugin_source: str) -> Path:
    """Build and install the demo distribution into ``root/site``; return that folder."""
    pkg = root / "pkg"
    (pkg / "harness_ext_demo").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(EXT_PYPROJECT)
    (pkg / "harness_ext_demo" / "__init__.py").write_text("")
    (pkg / "harness_ext_demo" / "plugin.py").write_text(plugin_source)
    site = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--target", str(site), str(pkg)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(site.glob("harness_ext_demo-0.3.0.dist-info"))
    return site


def cli_with_site(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    env.pop(DISABLE_ENV, None)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def ext_site(tmp_path_factory):
    return install_distribution(tmp_path_factory.mktemp("ext_ok"), EXT_PLUGIN)


@pytest.fixture(scope="module")
def broken_ext_site(tmp_path_factory):
    return install_distribution(tmp_path_factory.mktemp("ext_broken"), EXT_BROKEN)


def test_external_distribution_is_discovered(ext_site, tmp_path):
    proc = cli_with_site(ext_site, "plugins", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    infos = {p["name"]: p for p in json.loads(proc.stdout)}
    ext = infos["mymethod"]
    assert ext["source"] == "entry point"
    assert ext["distribution"] == "harness-ext-demo"
    assert ext["version"] == "0.3.0"
    assert ext["location"] == "harness_ext_demo.plugin"
    assert ext["kinds"] == ["method"]
    assert ext["registered"] == {"method": ["ext-prune"]}
    # the first-party plugins are still there, and nobody else claims ext-prune
    assert set(FIRST_PARTY) <= set(infos)
    owners = [n for n, p in infos.items() if "ext-prune" in p["registered"].get("method", [])]
    assert owners == ["mymethod"]


def test_external_distribution_in_text_listing(ext_site, tmp_path):
    proc = cli_with_site(ext_site, "plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = [i for i, line in enumerate(lines) if line.startswith("mymethod  ")]
    assert len(head) == 1
    assert "[entry point harness-ext-demo 0.3.0]" in lines[head[0]]
    assert lines[head[0] + 1].strip() == "method: ext-prune"


def test_external_distribution_method_usable_in_suite_file(ext_site, tmp_path):
    suite = tmp_path / "ext.toml"
    suite.write_text(textwrap.dedent("""
        name = "ext"
        [[matrix]]
        models = ["lenet5"]
        datasets = ["digits"]
        methods = ["ext-prune"]
        backends = ["torch-cpu"]
        suites = ["size"]
    """))
    code = ("import sys; from harness.plugin.manager import load_host; from harness.plan.suitefile import load_plan; "
            "h = load_host(); p = load_plan(sys.argv[1], h.registry); "
            "print([(c.method.name, h.registry.get('method', c.method.name).plugin.distribution) "
            "for c in p.cells])")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ext_site), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", code, str(suite)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[('ext-prune', 'harness-ext-demo')]"


def test_external_distribution_failing_import(broken_ext_site, tmp_path):
    proc = cli_with_site(broken_ext_site, "plugins", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert 'Error loading plugin "mymethod" (harness-ext-demo 0.3.0)' in proc.stderr
    assert "ImportError: harness_ext_demo needs libfoo" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_external_distribution_failing_import_can_be_disabled(broken_ext_site, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(broken_ext_site), env.get("PYTHONPATH")) if p)
    env[DISABLE_ENV] = "mymethod"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "plugins", "--json"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mymethod" not in {p["name"] for p in json.loads(proc.stdout)}


# --------------------------------------------------------------------------- the plugins command


def test_cli_plugins_json(harness_cli):
    proc = harness_cli("plugins", "--json", env={DISABLE_ENV: ""})
    assert proc.returncode == 0, proc.stderr
    infos = {p["name"]: p for p in json.loads(proc.stdout)}
    for name, registered in {**FIRST_PARTY, **BUILTINS}.items():
        p = infos[name]
        assert p["kinds"] == sorted(registered)
        for kind, names in registered.items():
            assert sorted(p["registered"][kind]) == sorted(names)
    assert infos["pruning"]["source"] == "entry point"
    assert infos["pruning"]["distribution"] == "harness-plugins"
    assert infos["pruning"]["location"] == "harness_plugins.pruning"
    assert infos["accuracy"]["source"] == "builtin"
    assert infos["accuracy"]["distribution"]
    assert infos["accuracy"]["version"] == __version__


def infos_text_dist(out: str, name: str) -> str:
    """The distribution shown in the text listing's header line of plugin ``name``."""
    line = next(line for line in out.splitlines() if line.startswith(f"{name}  ["))
    return line.split("[", 1)[1].split("]", 1)[0].split()[1]


def test_cli_plugins_text(harness_cli):
    proc = harness_cli("plugins", env={DISABLE_ENV: ""})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "pruning  [entry point harness-plugins " in out
    assert "method: random, global-magnitude, layer-magnitude" in out
    dense = f"dense  [builtin {infos_text_dist(out, 'dense')} {__version__}]  harness.builtins.dense"
    assert f"{dense}\n    method: dense" in out
    assert "model: mlp, lenet5, resnet-small" in out
    assert "dataset: digits, synthetic, imagefolder" in out
    assert "backend: torch-cpu" in out and "backend: onnxruntime-cpu" in out
    assert "method: int8-dynamic" in out
    assert f"accuracy  [builtin {infos_text_dist(out, 'accuracy')} {__version__}]" in out
    for suite in BUILTIN_SUITES:
        assert f"suite: {suite}" in out


def test_cli_plugins_dir_lists_directory_plugin(harness_cli, plugin_dir):
    plugin_dir.write("local_models", """
        from harness.api import ModelSpec, hookimpl

        def build(ctx):
            raise NotImplementedError

        @hookimpl
        def harness_register_models(register):
            register(ModelSpec(name="tiny-local", build=build))
    """)
    proc = harness_cli("--plugins-dir", plugin_dir.path, "plugins", "--json", env={DISABLE_ENV: ""})
    assert proc.returncode == 0, proc.stderr
    infos = {p["name"]: p for p in json.loads(proc.stdout)}
    local = infos["local_models"]
    assert local["source"] == "directory"
    assert local["distribution"] is None
    assert local["location"] == str(plugin_dir.path / "local_models.py")
    assert local["registered"] == {"model": ["tiny-local"]}
    assert list(infos)[-1] == "local_models"

    text = harness_cli("--plugins-dir", plugin_dir.path, "plugins", env={DISABLE_ENV: ""})
    assert text.returncode == 0, text.stderr
    assert "local_models  [directory]" in text.stdout
    assert "model: tiny-local" in text.stdout


def test_cli_plugins_dir_from_env(harness_cli, plugin_dir):
    plugin_dir.write("env_plugin", "")
    proc = harness_cli("plugins", "--json", env={"HARNESS_PLUGINS_DIR": str(plugin_dir.path), DISABLE_ENV: ""})
    assert proc.returncode == 0, proc.stderr
    assert "env_plugin" in {p["name"] for p in json.loads(proc.stdout)}


def test_cli_broken_directory_plugin_exits_2(harness_cli, plugin_dir):
    plugin_dir.write("kaput", "1 / 0\n")
    proc = harness_cli("--plugins-dir", plugin_dir.path, "plugins", env={DISABLE_ENV: ""})
    assert proc.returncode == 2
    assert 'Error loading plugin "kaput"' in proc.stderr
    assert "ZeroDivisionError" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_disable_env(harness_cli):
    proc = harness_cli("plugins", "--json", env={DISABLE_ENV: "pruning,latency"})
    assert proc.returncode == 0, proc.stderr
    names = {p["name"] for p in json.loads(proc.stdout)}
    assert "pruning" not in names and "latency" not in names
    assert {"quantization", "accuracy"} <= names


# --------------------------------------------------------------------------- no heavy imports

HEAVY = ("torch", "onnxruntime", "pandas", "sklearn")


def test_load_host_and_cli_import_do_not_import_heavy_libraries(tmp_path):
    code = ("import sys; from harness.plugin.manager import load_host; load_host(); import harness.cli; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_api_import_is_cheap(tmp_path):
    """harness.api, which every plugin imports at module level, pulls in no numerical library."""
    import harness.api

    code = f"import sys, harness.api; print(sorted(m for m in {HEAVY + ('numpy', 'onnx')!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert all(hasattr(harness.api, name) for name in harness.api.__all__)


def test_help_and_plugins_commands_do_not_import_heavy_libraries(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from harness.cli import cli
        for args in (["--help"], ["plugins"], ["plugins", "--json"]):
            try:
                cli.main(args, standalone_mode=False, obj={{}})
            except SystemExit as exc:
                assert not exc.code, exc.code
        print("HEAVY=" + repr(sorted(m for m in {HEAVY!r} if m in sys.modules)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    assert "pruning" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY=[]"
