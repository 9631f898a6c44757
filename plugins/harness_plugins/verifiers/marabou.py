"""``marabou``: the Marabou SMT-based complete verifier (Katz et al. 2019) through ``maraboupy``.

Marabou reads the ONNX network itself (its own parser), in the verifier's own process as every
built-in runs (the host's ``harness.verify.child``), with the instance's time limit. The VNN-LIB
property comes from the host's one reader (:func:`harness.api.load_vnnlib`): each box of the input
set and each conjunction of the unsafe output set is one Marabou query (input bounds, output
inequalities ``a_r @ y <= b_r``). The property is violated when some query is ``sat`` with a
solution that replays as a counterexample in onnxruntime, and holds when every query is ``unsat``.

``maraboupy`` is an optional extra: ``pip install 'harness-plugins[marabou]'`` (PyPI 2.0.0, a
binary wheel with no torch dependency).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.api import ReplayNetwork, VerifierSpec, load_vnnlib

#: Marabou's words for the outcome of one query.
SAT, UNSAT = "sat", "unsat"


def available(params: Any) -> tuple[bool, str]:
    """maraboupy must be importable (the optional extra ``marabou``)."""
    import importlib.util

    if importlib.util.find_spec("maraboupy") is None:
        return False, "maraboupy is not installed (pip install 'harness-plugins[marabou]')"
    return True, ""


def _read(onnx_path: Path) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # maraboupy warns that its TensorFlow parser is unavailable
        from maraboupy import Marabou

        return Marabou, Marabou.read_onnx(str(onnx_path))


def _query(onnx_path: Path, lower: Any, upper: Any, a: Any, b: Any, timeout_s: float) -> tuple[str, Any, dict]:
    """One box and one output conjunction: ``(sat | unsat | timeout | unknown, input values, stats)``."""
    import numpy as np

    marabou, net = _read(onnx_path)
    x = np.array(net.inputVars[0]).reshape(-1)
    y = np.array(net.outputVars[0]).reshape(-1)
    if len(x) != len(lower) or len(y) != a.shape[1]:
        raise ValueError(f"the property declares {len(lower)} inputs and {a.shape[1]} outputs, the network has "
                         f"{len(x)} and {len(y)}")
    for var, lo, hi in zip(x, lower, upper):
        net.setLowerBound(int(var), float(lo))
        net.setUpperBound(int(var), float(hi))
    for r in range(len(b)):
        nz = np.nonzero(a[r])[0]
        net.addInequality([int(y[j]) for j in nz], [float(a[r, j]) for j in nz], float(b[r]))
    options = marabou.createOptions(timeoutInSeconds=max(1, int(timeout_s)), verbosity=0)
    exit_code, values, stats = net.solve(options=options, verbose=False)
    word = str(exit_code).strip().lower()
    info = {"exit": str(exit_code)}
    if stats is not None and hasattr(stats, "getTotalTimeInMicro"):
        info["marabou_s"] = stats.getTotalTimeInMicro() / 1e6
    if word == SAT:
        return SAT, np.array([values[int(v)] for v in x], dtype=np.float64), info
    if word == UNSAT:
        return UNSAT, None, info
    return ("timeout" if "timeout" in word else "unknown"), None, info


#: Margins by which a ``sat`` query is tightened when its solution sits on the unsafe set's edge
#: and does not replay in float32 (relative to the bound, at least these absolute amounts).
TIGHTEN = (1e-5, 1e-4, 1e-3)


def _replaying(prop: Any, replay: Any, onnx_path: Path, lower: Any, upper: Any, a: Any, b: Any, x: Any,
               deadline: float) -> dict | None:
    """A witness that replays in onnxruntime, from Marabou's solution ``x`` or, when that lies on the
    edge of the unsafe set, from the same query tightened into its interior; else ``None``."""
    import numpy as np

    for margin in (0.0, *TIGHTEN):
        if margin:
            left = deadline - time.monotonic()
            if left < 1:
                return None
            word, x, _ = _query(onnx_path, lower, upper, a, b - margin * np.maximum(1.0, np.abs(b)), left)
            if word != SAT:
                return None  # the tightened query proves nothing about the original: undecided
        x = np.clip(x, lower, upper)
        y = replay(x)
        if prop.contains(list(x)) and prop.is_unsafe(list(y)):
            return {"x": [float(v) for v in x], "y": [float(v) for v in y]}
    return None


def verify_marabou(onnx_path: Path, vnnlib_path: Path, timeout_s: float) -> dict:
    """Decide the property with Marabou: ``holds``, ``violated`` with a replaying witness, else
    ``timeout`` or ``unknown``."""

    deadline = time.monotonic() + timeout_s - 0.5
    prop = load_vnnlib(vnnlib_path)
    try:
        _read(onnx_path)
    except (NotImplementedError, RuntimeError) as exc:  # Marabou's parser names what it cannot read
        return {"result": "unknown", "error": f"unsupported network (Marabou's ONNX parser): {exc}",
                "info": {"unsupported": str(exc)}}
    replay = ReplayNetwork(onnx_path)
    queries, undecided = [], None
    for box, (lower, upper) in enumerate(prop.input_boxes()):
        for term, (a, b) in enumerate(prop.matrices()):
            left = deadline - time.monotonic()
            if left < 1:
                return {"result": "timeout", "info": {"queries": queries}}
            word, x, info = _query(onnx_path, lower, upper, a, b, left)
            queries.append({"box": box, "term": term, **info})
            if word == SAT:
                witness = _replaying(prop, replay, onnx_path, lower, upper, a, b, x, deadline)
                if witness is not None:
                    return {"result": "violated", "witness": witness, "info": {"queries": queries}}
                queries[-1]["note"] = "Marabou's solution does not violate in onnxruntime (numerically at the edge)"
                undecided = undecided or "unknown"
            elif word != UNSAT:
                undecided = "timeout" if word == "timeout" else (undecided or word)
                if word == "timeout":
                    return {"result": "timeout", "info": {"queries": queries}}
    return {"result": undecided or "holds", "info": {"queries": queries}}


MARABOU = VerifierSpec(
    name="marabou", verify=verify_marabou, complete=True, available=available,
    description="Marabou (maraboupy), an SMT-based complete verifier reading the ONNX network itself: holds, "
                "violated with a witness, timeout or unknown",
)
