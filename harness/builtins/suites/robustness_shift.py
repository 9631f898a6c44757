"""The robustness-shift suite: accuracy under seeded, severity-graded corruptions and shifts of the test split.

Each corruption of :mod:`harness.builtins.suites.corruptions` (noise, blur, contrast, brightness,
rotation, translation, occlusion) at severities 1 to 5 is applied to the whole test split (seeded by
the cell's seed, so the dense model sees the same inputs), and the cell's backend scores it. Against
the ``dense`` model on the same backend it reports, in the manner of ImageNet-C (Hendrycks &
Dietterich 2019), with the dense model in AlexNet's place:

- ``shift_error@corruption=C``: top-1 error averaged over the five severities (``none``: clean);
- ``mce``: the mean over corruptions of ``CE_C = sum_s E(C, s) / sum_s E_dense(C, s)``: 1 is dense's
  robustness, below 1 is more robust;
- ``relative_mce``: the same with each error's clean error subtracted first (the degradation alone);
- ``shift_top1``: accuracy over every corruption and severity; ``relative_robustness``: that over the
  model's own clean accuracy (how much of its accuracy survives the shift, Hendrycks' relative
  robustness); ``shift_top1_retained``: ``shift_top1`` over dense's (the retained robustness).
"""

from __future__ import annotations

from harness.api import CellContext, Measurement, MetricSpec, Param, Skip, SuiteSpec, hookimpl
from harness.builtins.suites import corruptions, metrics

METRICS = (
    MetricSpec("shift_error", "fraction", False,
               "top-1 error averaged over severities 1-5 of one corruption (parameter corruption; none: clean)"),
    MetricSpec("mce", "ratio", False,
               "mean corruption error relative to dense, ImageNet-C's mCE with dense as the reference (1: dense)"),
    MetricSpec("relative_mce", "ratio", False,
               "mCE of the degradation (corrupted minus clean error) relative to dense's degradation"),
    MetricSpec("shift_top1", "fraction", True, "top-1 accuracy over every corruption and severity"),
    MetricSpec("relative_robustness", "ratio", True, "shift_top1 divided by the model's own clean top-1"),
    MetricSpec("shift_top1_retained", "ratio", True, "shift_top1 divided by the dense model's, same backend"),
)


def _error(session, x, y, bs: int) -> float:
    """Top-1 error of the session's outputs on ``x``."""
    import numpy as np

    logits = np.concatenate([o.reshape(len(o), -1) for o in metrics.batched_outputs(session, x, bs)])
    return 1.0 - float(metrics.topk_correct(logits, y, 1).mean())


def run(ctx: CellContext) -> list[Measurement]:
    """Score the clean and every corrupted test split on the cell's backend (see the module)."""
    import numpy as np

    splits = ctx.splits
    if not splits.labelled or splits.num_classes is None or ctx.task != "classification":
        raise Skip(f"dataset {ctx.cell['dataset']} is not labelled classification data: robustness-shift "
                   "scores top-1 under corruptions")
    test = splits.test
    if not isinstance(test.x, np.ndarray) or test.x.ndim not in (3, 4) or test.x.shape[-1] < 2:
        shape = getattr(test.x, "shape", type(test.x).__name__)
        raise Skip(f"dataset {ctx.cell['dataset']}: robustness-shift corrupts images, (N, C, H, W) or (N, H, W) "
                   f"arrays; its inputs are {shape}")
    n = len(test) if ctx.settings["samples"] == 0 else min(ctx.settings["samples"], len(test))
    x, y = test.x[:n], test.y[:n]
    lo, hi = float(splits.train.x.min()), float(splits.train.x.max())
    bs, seed = ctx.settings["batch_size"], int(ctx.cell.get("seed") or 0)
    session = ctx.open_session()
    try:
        clean, info = _error(session, x, y, bs), dict(session.info)
        per = {}  # corruption -> errors at severities 1..5
        for name in corruptions.CORRUPTIONS:
            per[name] = [_error(session, corruptions.corrupt(x, name, s, seed, (lo, hi)), y, bs)
                         for s in corruptions.SEVERITIES]
    finally:
        session.close()
    info.update({"n": int(n), "batch_size": bs, "seed": seed, "value_range": [lo, hi],
                 "severities": list(corruptions.SEVERITIES), "library": "numpy + scipy.ndimage"})
    out = [Measurement("shift_error", clean, "fraction", params={"corruption": "none"}, info=info)]
    for name, errs in per.items():
        out.append(Measurement("shift_error", float(np.mean(errs)), "fraction", params={"corruption": name},
                               stats={"by_severity": [round(e, 6) for e in errs]},
                               info={"strength": list(corruptions.STRENGTH[name])}))
    shift_top1 = 1.0 - float(np.mean([e for errs in per.values() for e in errs]))
    clean_top1 = 1.0 - clean
    out.append(Measurement("shift_top1", shift_top1, "fraction", info={"clean_top1": clean_top1}))
    out.append(Measurement("relative_robustness", shift_top1 / clean_top1 if clean_top1 else None, "ratio",
                           info={"clean_top1": clean_top1}))
    out += _against_dense(ctx, clean, per, shift_top1)
    return out


def _against_dense(ctx: CellContext, clean: float, per: dict, shift_top1: float) -> list[Measurement]:
    """mCE, relative mCE and retained robustness against the dense cell's errors (none without it)."""
    def base(name: str):
        if ctx.is_baseline:
            return clean if name == "none" else sum(per[name]) / len(per[name])
        return ctx.baseline("shift_error", corruption=name)

    dense_clean = base("none")
    ce, rel, skipped = {}, {}, []
    for name, errs in per.items():
        dense = base(name)
        if dense is None:
            return []
        mean = sum(errs) / len(errs)
        if dense > 0:
            ce[name] = mean / dense
        else:
            skipped.append(name)
        if dense_clean is not None and dense - dense_clean > 0:
            rel[name] = (mean - clean) / (dense - dense_clean)
    out = []
    info = {"corruption_error": {k: round(v, 6) for k, v in ce.items()}, "reference": "dense",
            "undefined": skipped}
    if ce:
        out.append(Measurement("mce", sum(ce.values()) / len(ce), "ratio", info=info))
    if rel:
        out.append(Measurement("relative_mce", sum(rel.values()) / len(rel), "ratio",
                               info={"relative_corruption_error": {k: round(v, 6) for k, v in rel.items()},
                                     "undefined": sorted(set(per) - set(rel))}))
    dense_shift = shift_top1 if ctx.is_baseline else ctx.baseline("shift_top1")
    if dense_shift:
        out.append(Measurement("shift_top1_retained", shift_top1 / dense_shift, "ratio",
                               info={"dense_shift_top1": dense_shift}))
    return out


@hookimpl
def harness_register_suites(register):
    """Register the robustness-shift suite."""
    register(SuiteSpec(
        name="robustness-shift", run=run, needs_baseline=True, metrics=METRICS,
        settings=(Param("batch_size", int, default=256, min=1, max=65536, grid=False,
                        help="batch size used to score each corrupted test split"),
                  Param("samples", int, default=0, min=0, grid=False,
                        help="first N test samples to corrupt (0: the whole test split)")),
        description="top-1 under seeded corruptions and shifts at severities 1-5; mCE against dense",
        example=lambda workdir: {"samples": 40},
    ))
