"""The verification suite: a verifier on a benchmark with hidden counterexamples, scored as VNN-COMP.

Runs in ``[[verification]]`` tables: one cell per benchmark, method, seed and verifier. Every
instance goes to the verifier in a process of its own; every ``violated`` witness is replayed in
onnxruntime; each verdict is scored against what the benchmark knows
(:func:`harness.api.score_verdict`). Counts are recorded per kind of instance (``planted``, ``clean``,
``peer_violated``, ``peer_holds``, ``unlabelled``), with ``unsound`` (``holds`` where a counterexample
is known), invalid witnesses and the score. A verifier that is unsound or gives an invalid witness is
flagged: shown, never ranked.

Every verdict is stored (in the ``unsound`` measurement's info), so the leaderboard judges each
instance again once every verifier of the benchmark has answered, from the whole store: a ``holds``
where another verifier's witness replays is unsound there (``harness.query.adjudication``).
"""

from __future__ import annotations

from harness.api import (
    INSTANCE_KINDS,
    VIOLATED,
    CellContext,
    Measurement,
    MetricSpec,
    Param,
    ReplayNetwork,
    Skip,
    SuiteSpec,
    check_witness,
    hookimpl,
    load_vnnlib,
    score_verdict,
)

OUTCOMES = ("verified", "falsified", "unknown", "timeout")

METRICS = (
    MetricSpec("verified", "count", None, "instances answered holds (a proof), per kind of instance"),
    MetricSpec("falsified", "count", None, "instances answered violated with a valid witness, per kind"),
    MetricSpec("unknown", "count", None, "instances answered unknown (or an error), per kind"),
    MetricSpec("timeout", "count", None, "instances that ran out of time, per kind"),
    MetricSpec("unsound", "count", False, "holds on an instance whose planted counterexample violates it"),
    MetricSpec("invalid_witness", "count", False, "violated without a witness that replays as a violation"),
    MetricSpec("score", "points", True, "VNN-COMP 2026 score: +10 correct, -150 incorrect, judged across the "
               "benchmark's verifiers"),
    MetricSpec("score_2021", "points", True, "VNN-COMP 2021 score: +10 / -100, votes across the benchmark's "
               "verifiers, time bonus +2 / +1"),
    MetricSpec("disputed", "count", None, "holds where another verifier claimed violated without a replaying witness"),
    MetricSpec("counterexamples_removed", "count", None,
               "planted counterexamples that no longer violate after compression (those instances are unlabelled)"),
    MetricSpec("verify_s", "s", False, "total verifier time over the benchmark's instances"),
)


def run(ctx: CellContext) -> list[Measurement]:
    """Verify every instance of the cell's benchmark and score the verdicts."""
    bench = ctx.benchmark
    instances = bench.instances[: ctx.settings["max_instances"] or None]
    if not instances:
        raise Skip(f"benchmark {bench.name} has no instances")
    nets: dict = {}
    records, counts = [], {k: dict.fromkeys(OUTCOMES, 0) for k in INSTANCE_KINDS}
    unsound = invalid = total = 0
    spent = 0.0
    for inst in instances:
        timeout = ctx.settings["timeout_s"] or inst.timeout or 60.0
        verdict = ctx.verify(inst.onnx, inst.vnnlib, timeout)
        spent += verdict.time_s
        valid, reason = None, ""
        if verdict.result == VIOLATED:
            net = nets.setdefault(inst.onnx, ReplayNetwork(inst.onnx))
            check = check_witness(net, load_vnnlib(inst.vnnlib), verdict.witness)
            valid, reason = check.valid, check.reason
        outcome = score_verdict(inst.kind, verdict.result, valid, reason)
        total += outcome.points
        if outcome.outcome == "unsound":
            unsound += 1
            counts[inst.kind]["verified"] += 1
        elif outcome.outcome == "invalid_witness":
            invalid += 1
        else:
            counts[inst.kind][outcome.outcome] += 1
        records.append({"instance": inst.index, "kind": inst.kind, "onnx": inst.onnx.name, "vnnlib": inst.vnnlib.name,
                        "truth": inst.truth,
                        "result": verdict.result, "raw": verdict.raw, "time_s": round(verdict.time_s, 3),
                        "outcome": outcome.outcome, "points": outcome.points, "witness_valid": valid,
                        "witness_reason": reason or None, "error": verdict.error, "note": inst.note or None})
    info = {"benchmark": bench.name, "verifier": ctx.verifier_name, "instances": records,
            "truth": bench.info.get("truth"),
            "kinds": {k: sum(i.kind == k for i in instances) for k in INSTANCE_KINDS}}
    flags = []
    if unsound:
        flags.append(f"unsound: holds on {unsound} instance{'s' if unsound > 1 else ''} known to be violated")
    if invalid:
        flags.append(f"invalid witness: violated without a valid witness on {invalid} instance"
                     f"{'s' if invalid > 1 else ''}")
    flag = "; ".join(flags) or None
    out = []
    for kind in INSTANCE_KINDS:
        if not info["kinds"][kind]:
            continue
        for name in OUTCOMES:
            out.append(Measurement(name, counts[kind][name], "count", params={"instances": kind},
                                   info={"of": info["kinds"][kind]}))
    out += [
        Measurement("unsound", unsound, "count", flag=flag, info=info),
        Measurement("invalid_witness", invalid, "count", flag=flag),
        Measurement("score", total, "points", flag=flag,
                    info={"max": 10 * len(instances),
                          "scoring": "VNN-COMP 2026 (+10 / -150) from this cell's answers alone; the leaderboard "
                                     "judges across the benchmark's verifiers"}),
        Measurement("verify_s", spent, "s"),
    ]
    if "counterexamples_removed" in bench.info:
        out.append(Measurement("counterexamples_removed", bench.info["counterexamples_removed"], "count",
                               info={"method": bench.info.get("method")}))
    return out


@hookimpl
def harness_register_suites(register):
    """Register the verification suite."""
    register(SuiteSpec(
        name="verification", run=run, per_backend=False, per_verifier=True, on_benchmark=True, metrics=METRICS,
        settings=(
            Param("timeout_s", float, default=0.0, min=0.0, grid=False,
                  help="per-instance timeout (0: each instance's own, from instances.csv)"),
            Param("max_instances", int, default=0, min=0, grid=False,
                  help="verify only the first N instances of each benchmark (0: all)"),
        ),
        description="verifier soundness on benchmarks with hidden counterexamples, scored as VNN-COMP",
    ))
