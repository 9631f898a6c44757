"""The robustness suite: certified robust accuracy of a compressed model, by a verifier.

For the first ``samples`` test inputs, the property "no input within ``epsilon`` (L-infinity) of
``x`` is classified other than its label" goes to the cell's verifier (one process per sample).
A sample counts as *certified* when the model classifies it correctly (onnxruntime, the artifact's
ONNX file) and the verifier answers ``holds``; *falsified* when the verifier gives a witness that
replays as a misclassification. Against the ``dense`` model under the same verifier it reports
what pruning or quantization did to verifiable robustness. Runs per verifier of a ``[[matrix]]``
table's ``verifiers``.
"""

from __future__ import annotations

from harness.api import (
    HOLDS,
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
    normalize_onnx_file,
    robustness_property,
)

METRICS = (
    MetricSpec("certified_accuracy", "fraction", True,
               "samples classified correctly and proven robust at epsilon by the verifier"),
    MetricSpec("falsified_fraction", "fraction", False,
               "samples with a valid counterexample within epsilon (from the verifier)"),
    MetricSpec("undecided_fraction", "fraction", False, "correctly classified samples the verifier left open"),
    MetricSpec("certified_accuracy_delta", "fraction", True, "certified accuracy minus dense's, same verifier"),
    MetricSpec("verify_s_per_sample", "s", False, "mean verifier time per verified sample"),
)


def run(ctx: CellContext) -> list[Measurement]:
    """Verify robustness of the first test samples with the cell's verifier."""
    import numpy as np

    s = ctx.settings
    splits = ctx.splits
    if not splits.labelled or splits.num_classes is None:
        raise Skip(f"dataset {ctx.cell['dataset']} has no class labels to be robust about")
    if "onnx" not in ctx.artifact.formats:
        raise Skip("verifiers read ONNX networks; this artifact has none")
    # Verifiers and the replay read the network normalized (constants folded, Identity nodes gone).
    onnx_path = normalize_onnx_file(ctx.artifact.file("onnx"), ctx.workdir / "network.onnx")
    eps = s["epsilon"]
    test = splits.test
    n = min(s["samples"], len(test))
    x = test.x[:n].reshape(n, -1).astype(np.float64)
    labels = test.y[:n]
    net = ReplayNetwork(onnx_path)
    preds = net.batch(x).argmax(axis=1)
    lo_clip, hi_clip = (float(splits.train.x.min()), float(splits.train.x.max())) if s["clip"] else (-np.inf, np.inf)
    records, certified, falsified, undecided, errors, spent = [], 0, 0, 0, [], 0.0
    for i in range(n):
        if preds[i] != labels[i]:
            records.append({"sample": i, "outcome": "misclassified"})
            continue
        lower = np.clip(x[i] - eps, lo_clip, hi_clip)
        upper = np.clip(x[i] + eps, lo_clip, hi_clip)
        path = ctx.workdir / f"sample{i}.vnnlib"
        prop = robustness_property(lower, upper, int(labels[i]), splits.num_classes)
        path.write_text(f"; test sample {i}, label {labels[i]}, epsilon {eps:g}\n" + prop.text())
        verdict = ctx.verify(onnx_path, path, s["timeout_s"])
        spent += verdict.time_s
        outcome = verdict.result
        if verdict.result == HOLDS:
            certified += 1
        elif verdict.result == VIOLATED:
            check = check_witness(net, prop, verdict.witness)
            outcome = "falsified" if check.valid else "invalid_witness"
            falsified += check.valid
            undecided += not check.valid
        else:
            undecided += 1
            if verdict.error:
                errors.append(verdict.error)
        records.append({"sample": i, "outcome": outcome, "time_s": round(verdict.time_s, 3), "error": verdict.error})
    asked = sum(r["outcome"] != "misclassified" for r in records)
    if asked and len(errors) == asked and len(set(errors)) == 1:
        raise Skip(f"verifier {ctx.verifier_name} cannot answer on this network: {errors[0]}")
    invalid = sum(r["outcome"] == "invalid_witness" for r in records)
    flag = (f"invalid witness: violated without a valid witness on {invalid} sample{'s' if invalid > 1 else ''}"
            if invalid else None)
    params = {"epsilon": eps}
    info = {"verifier": ctx.verifier_name, "samples": n, "correct": int((preds == labels).sum()), "clip":
            [lo_clip, hi_clip] if s["clip"] else None, "records": records}
    cert = certified / n
    out = [
        Measurement("certified_accuracy", cert, "fraction", params=params, info=info, flag=flag),
        Measurement("falsified_fraction", falsified / n, "fraction", params=params),
        Measurement("undecided_fraction", undecided / n, "fraction", params=params),
    ]
    if asked:
        out.append(Measurement("verify_s_per_sample", spent / asked, "s", params=params))
    base = cert if ctx.is_baseline else ctx.baseline("certified_accuracy", **params)
    if base is not None:
        out.append(Measurement("certified_accuracy_delta", cert - base, "fraction", params=params,
                               info={"dense_certified_accuracy": base}))
    return out


@hookimpl
def harness_register_suites(register):
    """Register the robustness suite."""
    register(SuiteSpec(
        name="robustness", run=run, per_backend=False, per_verifier=True, needs_baseline=True, metrics=METRICS,
        settings=(
            Param("epsilon", float, default=0.01, min=0.0, min_exclusive=True, grid=False,
                  help="L-infinity radius around each test input"),
            Param("samples", int, default=20, min=1, grid=False, help="first N test samples to verify"),
            Param("timeout_s", float, default=30.0, min=0.1, grid=False, help="per-sample verifier timeout"),
            Param("clip", bool, default=True, grid=False,
                  help="clip each box to the range of the training inputs (e.g. pixels in [0, 1])"),
        ),
        description="certified robust accuracy at epsilon by a verifier, against dense under the same verifier",
        example=lambda workdir: {"samples": 3, "timeout_s": 20.0},
    ))
