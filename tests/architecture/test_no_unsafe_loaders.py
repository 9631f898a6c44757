"""No loader that can run code from a file remains in the harness, the first-party plugins or the benchmarks.

Every module of ``harness/``, ``plugins/`` (tests included: they are shipped as examples) and ``bench/`` is read
with ``ast``. A hit is a call of ``pickle.load``/``loads`` (and ``dill``, ``marshal``, ``joblib``,
``cloudpickle``, ``shelve``), ``pandas.read_pickle``, ``numpy.load(allow_pickle=True)``, ``torch.load``
without a literal ``weights_only=True``, or the ``eval``/``exec`` builtins (``module.eval()`` is a
method, not the builtin). Files from users, downloads and the cache are read through
:mod:`harness.core.safeload` instead. The project's own tests under ``tests/`` are not scanned:
they build hostile files and prove them hostile with the unsafe call.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("harness", "plugins", "bench")
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "marshal", "joblib", "cloudpickle", "shelve"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _kw_true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def unsafe_calls(source: str, filename: str = "<string>") -> list[str]:
    """``file:line: call`` for every call in ``source`` that could run code from a file."""
    hits = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        base, _, attr = name.rpartition(".")
        bad = (
            (base in PICKLERS and attr in ("load", "loads", "open"))
            or name in ("pd.read_pickle", "pandas.read_pickle")
            or (attr == "load" and base in ("np", "numpy") and _kw_true(node, "allow_pickle"))
            or (name == "torch.load" and not _kw_true(node, "weights_only"))
            or name in ("eval", "exec", "builtins.eval", "builtins.exec")
        )
        if bad:
            hits.append(f"{filename}:{node.lineno}: {ast.get_source_segment(source, node) or name}")
    return hits


def test_no_unsafe_loader_in_the_harness_or_its_plugins():
    hits = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if ".venv" in path.parts or "node_modules" in path.parts:
                continue
            hits += unsafe_calls(path.read_text(), str(path.relative_to(ROOT)))
    assert hits == [], "unsafe loaders:\n" + "\n".join(hits)


def test_the_scan_finds_each_kind_of_unsafe_call():
    """The check can fail: each forbidden form is found, the safe forms are not."""
    bad = [
        "pickle.load(f)", "pickle.loads(b)", "dill.load(f)", "marshal.loads(b)", "joblib.load(p)",
        "pd.read_pickle(p)", "np.load(p, allow_pickle=True)", "torch.load(p)",
        "torch.load(p, weights_only=False)", "torch.load(p, map_location='cpu')", "eval(s)", "exec(s)",
        "builtins.exec(s)",
    ]
    for code in bad:
        assert unsafe_calls(code), code
    good = ["module.eval()", "torch.load(p, map_location='cpu', weights_only=True)", "np.load(p)",
            "model.eval().to('cpu')", "json.loads(s)", "self.exec_module(m)"]
    for code in good:
        assert not unsafe_calls(code), code
