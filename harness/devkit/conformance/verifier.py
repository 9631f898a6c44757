"""A verifier's contract: verdicts parse, witnesses replay, and no "holds" on a violated property.

The check writes a network whose answers are known exactly: one Gemm layer, ``Y = W x + b``
on the box ``[-1, 1]^4``, so the range of every output is exact. One property is violated on a
large share of the box; the other holds by a margin. Witnesses are replayed in onnxruntime with
VNN-COMP's tolerance (1e-4). The soundness suite (planted counterexamples, scoring) is
separate; this is the contract every verifier must meet first.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from harness.devkit.conformance.clauses import fail, skip
from harness.devkit.conformance.contract import Contract
from harness.verify.vnnlib import VERDICTS, Atom, Property

W = ((1.0, -2.0, 0.5, 1.5), (-1.0, 0.5, 2.0, -0.5))
B = (0.25, -0.1)
BOX = ((-1.0,) * 4, (1.0,) * 4)
#: VNN-COMP replays witnesses in onnxruntime with this absolute tolerance.
ATOL = 1e-4
TIMEOUT_S = 30.0

#: Unsafe when Y_0 >= Y_1 and Y_0 >= 1: reachable (e.g. x = (1, -1, 1, 1)).
VIOLATED = Property(lower=BOX[0], upper=BOX[1], num_outputs=2,
                    unsafe=((Atom("Y_1", "Y_0"), Atom(1.0, "Y_0")),))
#: Unsafe when Y_0 >= 6: unreachable, max Y_0 = 0.25 + 5 = 5.25.
HOLDS = Property(lower=BOX[0], upper=BOX[1], num_outputs=2, unsafe=((Atom(6.0, "Y_0"),),))


def write_network(path: Path) -> Path:
    """The Gemm network as an ONNX file (input ``X`` shaped ``(N, 4)``, output ``Y`` ``(N, 2)``)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array(W, dtype=np.float32), "W")
    b = numpy_helper.from_array(np.array(B, dtype=np.float32), "B")
    node = helper.make_node("Gemm", ["X", "W", "B"], ["Y"], transB=1)
    graph = helper.make_graph([node], "linear", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 2])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def replay(onnx_path: Path, x: list[float]) -> list[float]:
    """The network's outputs at ``x``, in onnxruntime CPU."""
    from harness.verify.replay import Network

    return [float(v) for v in Network(onnx_path)(x)]


def judge(answer: Any, prop: Property, onnx_path: Path, truth: str) -> str:
    """Check one verdict against the known ``truth`` (``holds`` or ``violated``); fail or explain."""
    if not isinstance(answer, dict):
        fail(f"verify() returned {type(answer).__name__}; return a dict like {{'result': 'holds'}}")
    verdict = answer.get("result")
    if verdict == "error":
        fail(f"the verifier gave no answer (error): {answer.get('error') or 'no reason given'}")
    if verdict not in VERDICTS:
        fail(f"result {verdict!r} is not one of {', '.join(VERDICTS)} (exact, lower-case strings)")
    if verdict == "violated":
        w = answer.get("witness")
        if not (isinstance(w, dict) and isinstance(w.get("x"), (list, tuple))):
            fail("'violated' needs a witness {'x': [inputs...], 'y': [outputs...]} (VNN-COMP scores a violation "
                 "without a valid witness as incorrect)")
        x = [float(v) for v in w["x"]]
        if not prop.contains(x, atol=ATOL):
            fail(f"the witness's x={x} lies outside the input box")
        y = replay(onnx_path, x)
        if "y" in w and (len(w["y"]) != len(y) or any(abs(float(a) - b) > ATOL for a, b in zip(w["y"], y))):
            fail(f"the witness's y={list(w['y'])} differs from onnxruntime's {y} at its x (atol {ATOL:g})")
        if not prop.is_unsafe(y, atol=ATOL):
            fail(f"the witness does not replay: onnxruntime gives y={y} at x={x}, outside the unsafe set")
        return f"violated, witness replays in onnxruntime (y={[round(v, 4) for v in y]})"
    if verdict == "holds" and truth == "violated":
        fail("said 'holds' on a property with a counterexample (e.g. x=[1, -1, 1, 1]): an unsound verdict")
    if truth == "holds" and verdict == "holds":
        return "holds (correct)"
    return f"{verdict}: an honest answer, though the property {truth}"


class VerifierContract(Contract):
    """Checks one registered verifier on two properties of a network with known answers."""

    kind = "verifier"

    def check(self) -> None:
        """parameters, network and properties, a violated property, a property that holds."""
        c = self.c
        c.run("parameters", self.parameters)
        c.run("network and properties", self.prepare)
        c.run("verdict on a violated property", lambda: self.verdict(VIOLATED, "violated"),
              needs=["parameters", "network and properties"])
        c.run("verdict on a property that holds", lambda: self.verdict(HOLDS, "holds"),
              needs=["parameters", "network and properties"])

    def prepare(self) -> str:
        for module in ("onnx", "onnxruntime"):
            if importlib.util.find_spec(module) is None:
                skip(f"{module} is not installed; witnesses are replayed in onnxruntime")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.onnx_path = write_network(self.workdir / "linear.onnx")
        for name, prop in (("violated", VIOLATED), ("holds", HOLDS)):
            (self.workdir / f"{name}.vnnlib").write_text(prop.text())
        return "Gemm 4 -> 2 on [-1, 1]^4; one property violated, one that holds"

    def verdict(self, prop: Property, truth: str) -> str:
        path = self.workdir / f"{truth}.vnnlib"
        params = dict(self.values or {})
        if self.spec.tool is None:
            answer = self.spec.verify(self.onnx_path, path, TIMEOUT_S, **params)
        else:  # a VNN-COMP tool folder: called through its scripts, as the harness calls it
            from harness.verify.process import run_verifier

            v = run_verifier(self.spec, params, self.onnx_path, path, TIMEOUT_S, workdir=self.workdir / truth)
            answer = {"result": v.result, "error": v.error}
            if v.witness is not None:
                answer["witness"] = {"x": [float(a) for a in v.witness],
                                     **({"y": [float(b) for b in v.outputs]} if v.outputs is not None else {})}
        return judge(answer, prop, self.onnx_path, truth)
