"""The soundness suite: are a result's claims true, and was it measured honestly?

Per backend cell, four checks (``[settings.soundness] checks`` selects them):

- **claims**: the method's claims measured on the artifact (:mod:`harness.claims`): ``claims_ok``.
- **agreement**: the backend's outputs on the whole test split against the reference backend's
  (``onnxruntime-cpu`` for artifacts with ONNX, else ``torch-cpu``): ``max_abs_diff`` (relative to
  the largest reference output, at least 1) and ``top1_agreement``, against per-precision
  thresholds (:data:`THRESHOLDS`).
- **test01** (MLPerf's TEST01): outputs produced by the timing path
  (:meth:`harness.api.Session.timed_outputs`) equal the accuracy-mode outputs (``Session.run``) on
  sampled inputs, within the precision's tolerance.
- **test04** (MLPerf's TEST04): one input repeated is not more than ``test04_threshold`` (10%)
  faster than rotated distinct inputs (a result cache would be), from interleaved timing rounds.

A failed check flags its measurement, and so its leaderboard row: shown with the reason, never
ranked.
"""

from __future__ import annotations

from harness.api import CellContext, Measurement, MetricSpec, Param, Skip, SuiteSpec, TimingPlan, hookimpl

#: Per precision: (largest max_abs_diff relative to max(1, max |reference output|), smallest top-1
#: agreement). fp32 kernels differ in summation order only (~1e-6 on logits); fp16 keeps ~3 decimal
#: digits and bf16 ~2, accumulated over layers; int8 runs of the same quantized graph may differ
#: by a quantization step where runtimes quantize activations differently.
THRESHOLDS = {"fp32": (1e-4, 0.99), "fp16": (1e-2, 0.98), "bf16": (5e-2, 0.97), "int8": (5e-2, 0.98)}
CHECKS = ("claims", "agreement", "test01", "test04")
#: A short timing plan for the audits (they compare, they do not report latency).
AUDIT_PLAN = TimingPlan(warmup_iters=10, warmup_s=0.05, min_samples=20, min_time_s=0.1, max_time_s=2.0)
TEST04_ROUNDS = 3

METRICS = (
    MetricSpec("claims_ok", "bool", True, "1 when every checked claim of the method holds on the artifact"),
    MetricSpec("claims_unchecked", "count", False, "claims the suite has no check for (reported, not passed)"),
    MetricSpec("max_abs_diff", "ratio", False,
               "largest output difference from the reference backend, over max(1, max |reference output|)"),
    MetricSpec("top1_agreement", "fraction", True, "share of test samples whose top-1 class matches the reference"),
    MetricSpec("test01_ok", "bool", True, "1 when outputs of the timing path equal accuracy-mode outputs (TEST01)"),
    MetricSpec("test01_max_abs_diff", "ratio", False, "largest difference between timed and accuracy-mode outputs"),
    MetricSpec("test04_ok", "bool", True, "1 when a repeated input is not much faster than rotated inputs (TEST04)"),
    MetricSpec("test04_ratio", "ratio", None, "median latency of one repeated input over rotated inputs"),
)


def precision(ctx: CellContext) -> str:
    """The cell's numeric precision: the backend's ``dtype`` (fp16/bf16), int8 for quantized artifacts, else fp32."""
    dtype = (ctx.cell.get("backend_params") or {}).get("dtype")
    if dtype in ("fp16", "bf16"):
        return dtype
    claims = ctx.artifact.manifest.get("claims") or {}
    bits = claims.get("weight_bits")
    if isinstance(bits, (int, float)) and bits <= 8:
        return "int8"
    return "fp32"


def _relative_diff(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    return float(np.abs(a - b).max()) / scale if a.size else 0.0


def _outputs(session, x, bs: int):
    import numpy as np

    outs = [np.asarray(session.run(x[i:i + bs]), dtype=np.float64) for i in range(0, len(x), bs)]
    return np.concatenate([o.reshape(len(o), -1) for o in outs])


def check_claims(ctx: CellContext) -> list[Measurement]:
    """claims_ok and claims_unchecked."""
    from harness.claims import check_artifact

    report = check_artifact(ctx.artifact)
    fails = report.failures()
    flag = None
    if fails:
        f = fails[0]
        flag = (f"soundness: claim {f.claim} {f.claimed} not true of the artifact: measured {f.measured} "
                f"({f.format}, {f.detail})" + (f"; and {len(fails) - 1} more" if len(fails) > 1 else ""))
    info = {"claims": ctx.artifact.manifest.get("claims"), "checks": [c.as_dict() for c in report.checks],
            "unchecked": report.unchecked}
    return [Measurement("claims_ok", float(report.ok), "bool", info=info, flag=flag),
            Measurement("claims_unchecked", len(report.unchecked), "count", info={"unchecked": report.unchecked})]


def check_agreement(ctx: CellContext, session, prec: str) -> list[Measurement]:
    """max_abs_diff and top1_agreement against the reference backend on the test split."""
    s = ctx.settings
    ref_name = s["reference_onnx"] if "onnx" in ctx.artifact.formats else s["reference_torch"]
    x = ctx.splits.test.x
    if not len(x):
        raise Skip("the dataset's test split is empty")
    mine = _outputs(session, x, s["batch_size"])
    info = {"reference": ref_name, "precision": prec, "n": int(len(x))}
    if ctx.backend_name == ref_name and not ctx.cell.get("backend_params", {}).get("dtype"):
        info["note"] = "this backend is the reference"
        ref = mine
    else:
        ref_session = ctx.open_backend(ref_name)
        try:
            ref = _outputs(ref_session, x, s["batch_size"])
            info["reference_session"] = dict(ref_session.info)
        finally:
            ref_session.close()
    if mine.shape != ref.shape:
        flag = f"soundness: outputs shaped {mine.shape[1:]}, reference {ref_name} gives {ref.shape[1:]}"
        return [Measurement("max_abs_diff", None, "ratio", info=info, flag=flag)]
    diff = _relative_diff(mine, ref)
    agree = float((mine.argmax(axis=1) == ref.argmax(axis=1)).mean())
    max_diff, min_agree = THRESHOLDS[prec]
    info["thresholds"] = {"max_abs_diff": max_diff, "top1_agreement": min_agree}
    flag = None
    if diff > max_diff or agree < min_agree:
        flag = (f"soundness: disagrees with {ref_name}: max_abs_diff {diff:.3g} (limit {max_diff:g}), "
                f"top1_agreement {agree:.4g} (limit {min_agree:g}), {prec}")
    return [Measurement("max_abs_diff", diff, "ratio", info=info, flag=flag),
            Measurement("top1_agreement", agree, "fraction", info=info, flag=flag)]


def audit_batches(ctx: CellContext) -> list:
    """Distinct input batches from the test split for the audits."""
    from harness.suites.latency import input_batches

    x = ctx.splits.test.x if len(ctx.splits.test) else ctx.splits.train.x
    return input_batches(x, ctx.settings["audit_batch_size"], ctx.settings["audit_samples"])


def check_test01(ctx: CellContext, session, prec: str) -> list[Measurement]:
    """Outputs of the timing path against accuracy-mode outputs (after a timing run)."""
    batches = audit_batches(ctx)
    if not hasattr(session, "timed_outputs"):
        return [Measurement("test01_ok", None, "bool",
                            info={"note": f"backend {ctx.backend_name} has no timed_outputs: TEST01 cannot run"})]
    session.time(batches, AUDIT_PLAN)  # through the timing path first, as a performance run would
    timed = session.timed_outputs(batches)
    accurate = [session.run(b) for b in batches]
    tol = THRESHOLDS[prec][0]
    if len(timed) != len(accurate) or any(getattr(t, "shape", None) != getattr(a, "shape", None)
                                          for t, a in zip(timed, accurate)):
        diff = float("inf")
    else:
        diff = max(_relative_diff(t, a) for t, a in zip(timed, accurate))
    ok = diff <= tol
    info = {"batches": len(batches), "batch_size": ctx.settings["audit_batch_size"], "tolerance": tol,
            "precision": prec}
    flag = None if ok else (f"soundness: TEST01: outputs of the timing path differ from accuracy-mode outputs "
                            f"(max_abs_diff {diff:.3g} > {tol:g})")
    return [Measurement("test01_ok", float(ok), "bool", info=info, flag=flag),
            Measurement("test01_max_abs_diff", diff if diff != float("inf") else None, "ratio", info=info,
                        flag=flag)]


def check_test04(ctx: CellContext, session) -> list[Measurement]:
    """A repeated input against rotated inputs, timed in interleaved rounds."""
    import statistics

    if session.info.get("emulated"):
        return [Measurement("test04_ok", None, "bool", info={"note": "timed under emulation: TEST04 not applicable"})]
    batches = audit_batches(ctx)
    if len(batches) < 2:
        return [Measurement("test04_ok", None, "bool", info={"note": "needs audit_samples >= 2"})]
    rotated, repeated = [], []
    for _ in range(TEST04_ROUNDS):
        rotated += session.time(batches, AUDIT_PLAN).samples_s
        repeated += session.time(batches[:1], AUDIT_PLAN).samples_s
    ratio = statistics.median(repeated) / statistics.median(rotated)
    limit = 1.0 - ctx.settings["test04_threshold"]
    ok = ratio >= limit
    info = {"rounds": TEST04_ROUNDS, "median_repeated_ms": statistics.median(repeated) * 1e3,
            "median_rotated_ms": statistics.median(rotated) * 1e3, "distinct_inputs": len(batches),
            "limit": limit}
    flag = None if ok else (f"soundness: TEST04: one repeated input runs {1 - ratio:.0%} faster than rotated "
                            f"inputs (more than {ctx.settings['test04_threshold']:.0%}): results may be cached")
    return [Measurement("test04_ok", float(ok), "bool", info=info, flag=flag),
            Measurement("test04_ratio", ratio, "ratio", info=info, flag=flag)]


def run(ctx: CellContext) -> list[Measurement]:
    """Run the selected checks on the cell."""
    checks = ctx.settings["checks"]
    out: list[Measurement] = []
    if "claims" in checks:
        out += check_claims(ctx)
    if not any(c in checks for c in ("agreement", "test01", "test04")):
        return out
    prec = precision(ctx)
    session = ctx.open_session()
    try:
        if "agreement" in checks:
            out += check_agreement(ctx, session, prec)
        if "test04" in checks:
            out += check_test04(ctx, session)
        if "test01" in checks:
            out += check_test01(ctx, session, prec)
    finally:
        session.close()
    return out


@hookimpl
def harness_register_suites(register):
    """Register the soundness suite."""
    register(SuiteSpec(
        name="soundness", run=run, metrics=METRICS,
        settings=(
            Param("checks", list, default=list(CHECKS), item_type=str, choices=CHECKS, grid=False,
                  help="which checks to run: claims, agreement, test01, test04"),
            Param("batch_size", int, default=256, min=1, grid=False, help="batch size of the agreement check"),
            Param("audit_batch_size", int, default=1, min=1, grid=False, help="batch size of TEST01 and TEST04"),
            Param("audit_samples", int, default=4, min=1, grid=False,
                  help="distinct input batches sampled for TEST01 and rotated in TEST04"),
            Param("test04_threshold", float, default=0.10, min=0.0, max=1.0, grid=False,
                  help="a repeated input may be at most this much faster than rotated inputs (MLPerf: 10%)"),
            Param("reference_onnx", str, default="onnxruntime-cpu", grid=False,
                  help="reference backend for artifacts with an ONNX file"),
            Param("reference_torch", str, default="torch-cpu", grid=False,
                  help="reference backend for torch-only artifacts"),
        ),
        description="claims true of the artifact, agreement with the reference backend, MLPerf TEST01 and TEST04",
    ))
