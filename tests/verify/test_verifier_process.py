"""Verifiers in processes of their own: VNN-COMP tool folders (real scripts written here) through
the vnncomp verifier, Python verifiers through ``harness.verify.child``, timeouts that kill a tool
and its children, and failures (a crash, a host that fails to load, an unreadable answer) that become error verdicts
with the reason, never unknown."""

from __future__ import annotations

import os
import sys
import time

import pytest
from vnncomp_sample import SAMPLE

from harness.api import check_witness
from harness.plugin.manager import load_host
from harness.verify.process import run_verifier
from harness.verify.vnnlib import load


#: counterexample, else unknown. prepare_instance.sh leaves a mark, as real tools convert the network.
def make_tool(folder, run_body: str, prepare_body: str | None = None):
    """A tool folder with VNN-COMP's scripts; ``run_body`` sees $ONNX $VNNLIB $RESULT $TIMEOUT."""
    folder.mkdir(parents=True)
    header = 'ONNX="$3"; VNNLIB="$4"; RESULT="$5"; TIMEOUT="$6"\n'
    (folder / "run_instance.sh").write_text("#!/bin/bash\n" + header + run_body + "\n")
    if prepare_body is not None:
        (folder / "prepare_instance.sh").write_text("#!/bin/bash\n" + prepare_body + "\n")
    return folder


@pytest.fixture(scope="module")
def host():
    return load_host()


def vnncomp(host, folder, **extra):
    spec = host.registry.get("verifier", "vnncomp").spec
    return spec, {"tool": str(folder), "category": "test", "prepare_timeout_s": 30.0, "label": "", **extra}


def test_a_competition_tool_finds_a_counterexample_that_replays(host, toy_vnnlib, tmp_path):
    tool = make_tool(tmp_path / "sampler", f'exec {sys.executable} "$(dirname "$0")/sample.py" "$ONNX" "$VNNLIB" '
                     '"$RESULT" "$TIMEOUT"', prepare_body='echo "$1 $2" > "$(dirname "$0")/prepared"')
    (tool / "sample.py").write_text(SAMPLE)
    spec, params = vnncomp(host, tool)
    verdict = run_verifier(spec, params, toy_vnnlib.onnx, toy_vnnlib.violated, 30.0, workdir=tmp_path / "run")
    assert verdict.result == "violated" and verdict.raw == "sat", verdict.error
    assert check_witness(toy_vnnlib.onnx, load(toy_vnnlib.violated), verdict.witness).valid
    assert (tool / "prepared").read_text().split() == ["v1", "test"]  # the competition's arguments
    honest = run_verifier(spec, params, toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "run2")
    assert honest.result == "unknown" and honest.error is None


@pytest.mark.parametrize("written, verdict", [("unsat", "holds"), ("sat", "violated"), ("timeout", "timeout"),
                                              ("holds", "holds"), ("unsat\n", "holds")])
def test_verdict_words_from_a_tool(host, toy_vnnlib, tmp_path, written, verdict):
    tool = make_tool(tmp_path / "t", f'printf "{written}\\n" > "$RESULT"')
    v = run_verifier(*vnncomp(host, tool), toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "run")
    assert v.result == verdict
    if verdict == "violated":  # sat with no witness: read as such; the scorer will find it invalid
        assert v.witness is None


def test_garbage_and_failures_are_errors_with_the_reason(host, toy_vnnlib, tmp_path):
    garbage = make_tool(tmp_path / "g", 'echo "probably safe" > "$RESULT"')
    v = run_verifier(*vnncomp(host, garbage), toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "g-run")
    assert v.result == "error" and "unrecognised verdict 'probably safe'" in v.error
    silent = make_tool(tmp_path / "s", 'echo "segfault" >&2; exit 3')
    v = run_verifier(*vnncomp(host, silent), toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "s-run")
    assert v.result == "error" and v.error == "run_instance.sh exited with status 3: segfault"
    mute = make_tool(tmp_path / "m", 'true')
    v = run_verifier(*vnncomp(host, mute), toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "m-run")
    assert v.result == "error" and v.error == "the tool wrote no result file"
    said = make_tool(tmp_path / "e", 'echo error > "$RESULT"')
    v = run_verifier(*vnncomp(host, said), toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "e-run")
    assert v.result == "error" and v.error == "the tool reported an error"
    unprepared = make_tool(tmp_path / "p", 'echo unsat > "$RESULT"', prepare_body='echo "no licence" >&2; exit 1')
    v = run_verifier(*vnncomp(host, unprepared), toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "p-run")
    assert v.result == "error" and "prepare_instance.sh exited with status 1: no licence" in v.error
    undecided = make_tool(tmp_path / "u", 'echo unknown > "$RESULT"')
    v = run_verifier(*vnncomp(host, undecided), toy_vnnlib.onnx, toy_vnnlib.holds, 30.0, workdir=tmp_path / "u-run")
    assert v.result == "unknown" and v.error is None  # the tool ran and could not decide


def test_a_tool_past_its_timeout_is_killed_with_its_children(host, toy_vnnlib, tmp_path):
    pidfile = tmp_path / "child.pid"
    tool = make_tool(tmp_path / "slow", f'sleep 300 & echo $! > {pidfile}; wait')
    v = run_verifier(*vnncomp(host, tool), toy_vnnlib.onnx, toy_vnnlib.holds, 1.0, workdir=tmp_path / "run",
                     grace_s=0.5)
    assert v.result == "timeout" and "killed" in v.error
    child = int(pidfile.read_text())
    for _ in range(50):  # the kill is sent; give the kernel a moment to reap
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the tool's child {child} outlived the timeout")


PLUGIN = '''
import time
from harness.api import Param, VerifierSpec, hookimpl


def crash(onnx_path, vnnlib_path, timeout_s):
    raise RuntimeError("solver exploded")


def sleepy(onnx_path, vnnlib_path, timeout_s):
    time.sleep(60)


def confused(onnx_path, vnnlib_path, timeout_s):
    return {"result": "sat"}


def tuned(onnx_path, vnnlib_path, timeout_s, answer="holds"):
    return {"result": answer, "info": {"timeout_s": timeout_s}}


@hookimpl
def harness_register_verifiers(register):
    register(VerifierSpec(name="crash", verify=crash))
    register(VerifierSpec(name="sleepy", verify=sleepy))
    register(VerifierSpec(name="confused", verify=confused))
    register(VerifierSpec(name="tuned", verify=tuned, params=(Param("answer", str, default="holds"),)))
'''


def test_python_verifiers_from_a_plugin_folder(plugin_dir, toy_vnnlib, tmp_path):
    plugin_dir.write("myverifiers", PLUGIN)
    host = load_host(plugin_dir.path)

    def run(name, params=None, timeout=30.0, **kw):
        spec = host.registry.get("verifier", name).spec
        return run_verifier(spec, params or {}, toy_vnnlib.onnx, toy_vnnlib.holds, timeout,
                            workdir=tmp_path / name, plugins_dir=str(plugin_dir.path), **kw)

    crashed = run("crash")
    assert crashed.result == "error" and crashed.error == "RuntimeError: solver exploded"
    assert "solver exploded" in crashed.info["traceback"]
    confused = run("confused")
    assert confused.result == "error" and "returned 'sat'; expected a dict with result one of" in confused.error
    tuned = run("tuned", {"answer": "unknown"})
    assert tuned.result == "unknown" and 0 < tuned.info["timeout_s"] <= 30.0  # parameters arrive as keywords
    assert run("tuned", {"answer": "holds"}).result == "holds"
    slept = run("sleepy", timeout=1.0, grace_s=0.5)
    assert slept.result == "timeout" and "killed" in slept.error


#: Loads in the harness's own process, raises in the verifier's child (as a plugin whose import
#: depends on its environment does): the child's host fails, not the parent's.
BROKEN_IN_CHILD = '''
import sys

if getattr(sys.modules["__main__"].__spec__, "name", None) == "harness.verify.child":
    raise ImportError("libsolver.so: cannot open shared object file")
'''


def test_a_plugin_that_fails_to_load_in_the_child_is_an_error(plugin_dir, toy_vnnlib, tmp_path):
    plugin_dir.write("fragile", BROKEN_IN_CHILD)
    host = load_host(plugin_dir.path)  # the parent's host loads
    v = run_verifier(host.registry.verifier("milp"), {}, toy_vnnlib.onnx, toy_vnnlib.holds, 30.0,
                     workdir=tmp_path / "run", plugins_dir=str(plugin_dir.path))
    assert v.result == "error"
    assert v.error.startswith("loading the plugins failed:") and "libsolver.so" in v.error and "fragile" in v.error


def test_a_child_that_cannot_start_the_harness_is_an_error(host, toy_vnnlib, tmp_path, monkeypatch):
    # ``python -m`` puts the working folder first on sys.path: a broken package there shadows the harness.
    shadow = tmp_path / "shadow" / "harness"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise SystemExit('harness: broken install')\n")
    monkeypatch.chdir(shadow.parent)
    v = run_verifier(host.registry.verifier("milp"), {}, toy_vnnlib.onnx, toy_vnnlib.holds, 30.0,
                     workdir=tmp_path / "run")
    assert v.result == "error" and "exited with status 1" in v.error and "broken install" in v.error
