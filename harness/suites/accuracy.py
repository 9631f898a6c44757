"""The accuracy suite: the task metric from the target backend's own outputs.

Scores the whole test split through the cell's backend (after export and
compression), and compares with the ``dense`` model on the same backend. A
result that keeps less than ``quality_gate`` of the dense top1 (0.99 by default,
as MLPerf's closed division) is flagged: shown, never ranked.
"""

from __future__ import annotations

from harness.api import CellContext, Measurement, MetricSpec, Param, Skip, SuiteSpec, hookimpl

METRICS = (
    MetricSpec("top1", "fraction", True, "top-1 accuracy on the whole test split, from the backend's outputs"),
    MetricSpec("top1_delta", "fraction", True, "top1 minus the dense model's top1 on the same backend"),
    MetricSpec("top1_retained", "ratio", True, "top1 divided by the dense model's top1 on the same backend"),
)


def run(ctx: CellContext) -> list[Measurement]:
    """Score the test split through the backend's session."""
    import numpy as np

    if not ctx.splits.labelled:
        raise Skip(f"dataset {ctx.cell['dataset']} has no meaningful labels (latency-only data)")
    if ctx.splits.num_classes is None:
        raise Skip(f"dataset {ctx.cell['dataset']} is not a classification dataset")
    bs = ctx.settings["batch_size"]
    test = ctx.splits.test
    session = ctx.open_session()
    try:
        preds = []
        for start in range(0, len(test), bs):
            out = np.asarray(session.run(test.x[start:start + bs]))
            preds.append(out.reshape(len(out), -1).argmax(axis=1))
        info = dict(session.info)
    finally:
        session.close()
    pred = np.concatenate(preds)
    top1 = float((pred == test.y).mean())
    info.update({"n": int(len(test)), "batch_size": bs, "split": "test"})
    out = [Measurement("top1", top1, "fraction", info=info, stats={"correct": int((pred == test.y).sum())})]
    base = top1 if ctx.is_baseline else ctx.baseline("top1")
    if base is not None:
        out.append(Measurement("top1_delta", top1 - base, "fraction", info={"dense_top1": base}))
        retained = top1 / base if base else None
        gate = ctx.settings["quality_gate"]
        flag = None
        if retained is not None and retained < gate:
            flag = f"quality gate: top1 retained {retained:.4g} < {gate:g}"
        out.append(Measurement("top1_retained", retained, "ratio", flag=flag,
                               info={"dense_top1": base, "quality_gate": gate}))
    return out


@hookimpl
def harness_register_suites(register):
    """Register the standard accuracy suite."""
    register(SuiteSpec(
        name="accuracy", run=run, needs_baseline=True, metrics=METRICS,
        settings=(Param("batch_size", int, default=256, min=1, grid=False,
                        help="batch size used to score the test split"),
                  Param("quality_gate", float, default=0.99, min=0.0, max=1.0, grid=False,
                        help="flag results whose top1 retained is below this (MLPerf's 99%): a flagged "
                             "result is shown but never ranked")),
        description="task metric from the backend's own outputs, against dense on the same backend",
    ))
