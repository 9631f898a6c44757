"""A backend's contract: available() with a reason, outputs that agree with the reference backend,
a timing loop that returns raw samples, and a timed call that computes: its outputs on rotated inputs
equal the reference's (MLPerf TEST01, :func:`harness.measure.honesty.check_timed_call`, the check every
latency cell runs)."""

from __future__ import annotations

import math

from harness.devkit import toy
from harness.devkit.conformance.clauses import fail, jsonable, skip
from harness.devkit.conformance.contract import Contract
from harness.measure.timing import TimingPlan, TimingResult
from harness.plugin.specs import Skip

#: A short plan: the check wants the loop's shape, not a figure.
PLAN = TimingPlan(warmup_iters=3, warmup_s=0.0, min_samples=5, min_time_s=0.0, max_time_s=10.0)
BATCHES = (1, 5)
#: Rotated inputs the timed call is checked on.
ROTATED = 32
TIMED = "outputs under timing match the reference"


class BackendContract(Contract):
    """Checks one registered backend on the ``toy-identity`` artifact of the check's model."""

    kind = "backend"

    def check(self) -> None:
        """parameters, available, fingerprint, session, outputs, timing loop, close."""
        c = self.c
        c.run("parameters", self.parameters)
        rest = ("fingerprint", "session", "outputs match the reference backend", "timing loop", TIMED, "close")
        if not c.run("available", self.available):
            for clause in rest:
                c.record(clause, "skip", "needs available, which did not pass")
            return
        if not self.is_available:
            for clause in rest:
                c.record(clause, "skip", f"backend not available here: {self.reason}")
            return
        c.run("fingerprint", self.fingerprint, needs=["parameters"])
        c.run("session", self.session, needs=["parameters"])
        c.run("outputs match the reference backend", self.outputs, needs=["session"])
        c.run("timing loop", self.timing, needs=["session"])
        c.run(TIMED, self.timed_call, needs=["session"])
        c.run("close", self.close, needs=["session"])

    def available(self) -> str:
        answer = self.spec.available()
        if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool)
                and isinstance(answer[1], str)):
            fail(f"available() returned {answer!r}; return a tuple (ok: bool, reason: str), "
                 "e.g. (False, 'onnxruntime is not installed')")
        self.is_available, self.reason = answer
        if not self.is_available and not self.reason.strip():
            fail("available() returned (False, ''): say why, e.g. (False, 'no CUDA device'); the reason is "
                 "recorded with every skipped cell")
        return f"answers {answer!r}" + ("" if self.is_available else ": not available here, with a reason")

    def fingerprint(self) -> str:
        fp = self.spec.fingerprint(self.values)
        if not isinstance(fp, dict) or not jsonable(fp):
            fail(f"fingerprint(params) returned {fp!r}; return a dict of JSON values (the device and runtime)")
        return ", ".join(f"{k}={v}" for k, v in list(fp.items())[:6]) or "empty"

    def session(self) -> str:
        self.artifact = self.build(toy.METHOD, {})
        fmt = next((f for f in self.spec.accepts if f in self.artifact.formats), None)
        if fmt is None:
            skip(f"accepts {'/'.join(self.spec.accepts)}; the artifact has {'/'.join(self.artifact.formats)}")
        try:
            self.sess = self.spec.session(self.artifact, self.values)
        except Skip as exc:  # its runtime is not prepared or not present here: not the plugin's fault
            skip(str(exc))
        info = getattr(self.sess, "info", None)
        if not isinstance(info, dict) or not jsonable(info):
            fail(f"the session's info is {info!r}; set info to a dict of JSON values (runtime, version, threads, "
                 "...): it is stored with every measurement")
        missing = [m for m in ("run", "time", "close") if not callable(getattr(self.sess, m, None))]
        if missing:
            fail(f"the session has no {', '.join(missing)}; subclass harness.api.InProcessSession (and implement "
                 "bind) or implement run(x), time(batches, plan) and close()")
        return f"{type(self.sess).__name__} on the {fmt} file; info {info}"

    def reference(self):
        """The reference backend on the check's artifact, in the runtime of the backend's format."""
        from harness.measure.reference import ReferenceSession

        runtime = "onnxruntime" if "onnx" in self.spec.accepts and "onnx" in self.artifact.formats else "torch"
        try:
            return ReferenceSession(self.artifact, runtime)
        except ImportError:
            return ReferenceSession(self.artifact, "torch")

    def outputs(self) -> str:
        import numpy as np

        from harness.measure.reference import compare_outputs

        ref = self.reference()
        x = self.splits().test.x
        worst, agree = 0.0, 1.0
        try:
            for bs in BATCHES:
                got = np.asarray(self.sess.run(np.ascontiguousarray(x[:bs])))
                cmp = compare_outputs(got, ref.run(x[:bs]))
                if not cmp["ok"]:
                    fail(f"batch of {bs}: {cmp['why']} (reference: {ref.info['runtime']})")
                worst, agree = max(worst, cmp["max_abs_diff"]), min(agree, cmp["top1_agreement"])
        finally:
            ref.close()
        return (f"batches {', '.join(map(str, BATCHES))}: max abs diff {worst:.2g} against {ref.info['runtime']}, "
                f"top-1 agreement {agree:.0%}")

    def timing(self) -> str:
        import numpy as np

        x = self.splits().test.x
        batches = [np.ascontiguousarray(x[i:i + 1]) for i in range(4)]
        result = self.sess.time(batches, PLAN)
        if not isinstance(result, TimingResult):
            fail(f"time(batches, plan) returned {type(result).__name__}; return harness.api.TimingResult "
                 "(harness.api.time_calls builds one)")
        samples = list(result.samples_s)
        problems = []
        if len(samples) < PLAN.min_samples:
            problems.append(f"{len(samples)} samples, fewer than the plan's min_samples={PLAN.min_samples}")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in samples):
            problems.append("samples_s must be positive finite seconds per call")
        if not (isinstance(result.inner_loops, int) and result.inner_loops >= 1):
            problems.append(f"inner_loops {result.inner_loops!r} must be an int >= 1")
        if result.warmup_iters < PLAN.warmup_iters:
            problems.append(f"warmup_iters {result.warmup_iters} is below the plan's {PLAN.warmup_iters}")
        if not (isinstance(result.timer, str) and result.timer):
            problems.append("timer must name the clock used")
        if not jsonable(result.info):
            problems.append("info must hold JSON values")
        if problems:
            fail("; ".join(problems))
        median = sorted(samples)[len(samples) // 2]
        return (f"{len(samples)} raw samples (median {median * 1e6:.1f} us), {result.inner_loops} call(s) per "
                f"sample, {result.warmup_iters} warm-up calls, timer {result.timer}")

    def timed_call(self) -> str:
        """Time the session on rotated inputs, then check its timed call on them against the reference."""
        import numpy as np

        from harness.measure.honesty import check_timed_call, precision

        x = self.splits().test.x
        batches = [np.ascontiguousarray(x[i:i + 1]) for i in range(min(ROTATED, len(x)))]
        ref = self.reference()
        try:
            reference = [np.asarray(ref.run(b)) for b in batches]
        finally:
            ref.close()
        self.sess.time(batches, PLAN)  # through the timing path first, as a latency cell does
        check = check_timed_call(self.sess, batches, reference,
                                 precision(self.values, self.artifact.manifest.get("claims")))
        if check.ok is None:
            fail(f"{check.message}; subclass harness.api.InProcessSession (its timing loop times bind(x)'s call) or "
                 "implement timed_outputs(batches): what the timed call computes for each batch")
        if not check.ok:
            fail(check.message + ("" if "does not run the model" not in check.message else
                                  "; the call bind(x) returns (or time() times) must run the model on x's contents "
                                  "each time it is called"))
        return f"{check.message}; source: {check.info['source']}"

    def close(self) -> str:
        self.sess.close()
        return "released"
