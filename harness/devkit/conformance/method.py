"""A method's contract: sound parameters, an artifact the reference backend runs, claims that hold."""

from __future__ import annotations

import time

from harness.core.errors import describe_exception
from harness.devkit.conformance.claims import check_claims
from harness.devkit.conformance.clauses import fail, jsonable
from harness.devkit.conformance.contract import Contract
from harness.devkit.conformance.report import FAIL, PASS, SKIP


class MethodContract(Contract):
    """Checks one registered method."""

    kind = "method"

    def check(self) -> None:
        """parameters, apply, produces, the reference backend runs it, each claim."""
        c = self.c
        c.run("parameters", self.parameters)
        c.run("apply", self.apply, needs=["parameters"])
        c.run("produces", self.produces, needs=["apply"])
        c.run("reference backend runs the artifact", self.runs, needs=["apply"])
        self.claims()

    def apply(self) -> str:
        t0 = time.perf_counter()
        self.artifact = self.build(self.name, self.values)
        shown = ", ".join(f"{k}={v!r}" for k, v in self.values.items()) or "no parameters"
        return (f"{'+'.join(self.artifact.formats)} artifact of {self.cell_label()} ({shown}) "
                f"in {time.perf_counter() - t0:.1f} s")

    def produces(self) -> str:
        got, declared = set(self.artifact.formats), set(self.spec.produces)
        if got != declared:
            fail(f"apply() yielded {'/'.join(sorted(got))} but the spec declares produces={self.spec.produces}: "
                 f"set produces={tuple(sorted(got))} (a torch module gives ('torch', 'onnx'), an ONNX file "
                 "('onnx',)) so the planner sends the artifact only to backends that can run it")
        return f"{'/'.join(self.spec.produces)} as declared"

    def runs(self) -> str:
        import numpy as np

        from harness.measure.reference import ReferenceSession

        splits = self.splits()
        session = ReferenceSession(self.artifact)
        try:
            out = np.asarray(session.run(splits.test.x))
        finally:
            session.close()
        n = len(splits.test.x)
        if out.shape[0] != n or (splits.num_classes and out.reshape(n, -1).shape[1] != splits.num_classes):
            fail(f"outputs shaped {out.shape} for {n} inputs; expected ({n}, {splits.num_classes})")
        if not np.all(np.isfinite(out)):
            fail("outputs contain NaN or infinity")
        top1 = float((out.reshape(n, -1).argmax(1) == splits.test.y).mean()) if splits.labelled else None
        acc = f"; top-1 {top1:.3f} on the test split" if top1 is not None else ""
        return f"{session.info['runtime']} {session.info['version']}: outputs {out.shape}, finite{acc}"

    def claims(self) -> None:
        c = self.c
        if "apply" in c.not_passed:
            c.record("claims", SKIP, "needs apply, which did not pass")
            return
        claims = dict(self.artifact.manifest.get("claims") or {})
        if self.spec.claims is None:
            c.record("claims", PASS, "none declared (declare claims=lambda params: {...}, e.g. {'sparsity': "
                                     "params['sparsity']}, so the soundness suite can check them)")
            return
        if not jsonable(claims):
            c.record("claims", FAIL, f"claims {claims!r} are not JSON values (numbers, strings, lists, dicts)")
            return
        if not claims:
            c.record("claims", PASS, "none made")
            return
        for key, ok, reason in _measure(self.artifact, claims):
            c.record(f"claim {key}", SKIP if ok is None else (PASS if ok else FAIL), reason)


def _measure(artifact, claims):
    """Measure the claims (kept apart so a failure inside is a failed clause, not a crash)."""
    try:
        return check_claims(artifact, claims)
    except Exception as exc:  # noqa: BLE001 - an unreadable artifact fails the claims
        return [("claims", False, f"cannot measure the artifact: {describe_exception(exc)}")]
