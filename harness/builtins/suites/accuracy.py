"""The accuracy suite: the task metric from the target backend's own outputs.

Scores the whole test split through the cell's backend (after export and compression), and
compares with the ``dense`` model on the same backend. It dispatches on the dataset's task:

- ``classification``: ``top1`` (and ``top5`` above 5 classes) from the logits;
- ``language-modelling``: ``perplexity`` of the next tokens of ``x["input_ids"]``, lower is better;
- ``embedding``: ``fidelity`` (mean cosine similarity with the dense model's embedding of the same
  text) and ``retrieval`` (share of each text's k nearest neighbours under the dense model that are
  kept), both from running the dense artifact on the same backend too.

A result that keeps less than ``quality_gate`` of the dense quality (0.99 by default, as MLPerf's
closed division) is flagged: shown, never ranked. Every cell also compares the backend's outputs with
the reference backend's on the same batches (``check_agreement``, :func:`harness.api.check_agreement`;
the reference's outputs are computed once per artifact and cached): a backend that computes another
function is flagged, whatever else the suite file names.
"""

from __future__ import annotations

from harness.api import (
    CHECK_METRICS,
    CellContext,
    Measurement,
    MetricSpec,
    Param,
    Skip,
    SuiteSpec,
    batch_len,
    check_agreement,
    check_measurement,
    hookimpl,
    output_precision,
    reference_outputs,
    take,
)
from harness.builtins.suites import metrics

METRICS = (
    MetricSpec("top1", "fraction", True, "top-1 accuracy on the whole test split, from the backend's outputs"),
    MetricSpec("top1_delta", "fraction", True, "top1 minus the dense model's top1 on the same backend"),
    MetricSpec("top1_retained", "ratio", True, "top1 divided by the dense model's top1 on the same backend"),
    MetricSpec("top5", "fraction", True, "top-5 accuracy (datasets of more than 5 classes)"),
    MetricSpec("top5_delta", "fraction", True, "top5 minus the dense model's top5 on the same backend"),
    MetricSpec("perplexity", "ratio", False,
               "exp of the mean next-token negative log-likelihood on the held-out split (language modelling)"),
    MetricSpec("perplexity_retained", "ratio", True,
               "the dense model's perplexity divided by this one, same backend (1: no loss)"),
    MetricSpec("fidelity", "cosine", True,
               "mean cosine similarity of each embedding with the dense model's, same backend and texts"),
    MetricSpec("retrieval", "fraction", True,
               "share of each text's k nearest neighbours under the dense model kept (parameter k)"),
    CHECK_METRICS["agreement"],
)


def _run(open_session, x, bs: int) -> tuple[list, dict]:
    session = open_session()
    try:
        return metrics.batched_outputs(session, x, bs), dict(session.info)
    finally:
        session.close()


class _Own:
    """The cell's own outputs on the test split (one pass), kept for the agreement check."""

    def __init__(self, ctx: CellContext):
        self.ctx = ctx
        self.outs: list | None = None

    def __call__(self, open_session, x, bs: int) -> tuple[list, dict]:
        outs, info = _run(open_session, x, bs)
        self.outs = outs
        return outs, info

    def agreement(self) -> Measurement:
        """``check_agreement``: these outputs against the reference backend's on the same batches."""
        ctx, bs = self.ctx, self.ctx.settings["batch_size"]
        x = ctx.splits.test.x
        batches = [take(x, slice(start, start + bs)) for start in range(0, batch_len(x), bs)]
        reference, ref_info = reference_outputs(ctx.artifact, batches)
        prec = output_precision(ctx.cell.get("backend_params"), ctx.artifact.manifest.get("claims"))
        # Top-1 agreement means the class (or the next token); an embedding's largest coordinate means nothing.
        return check_measurement(check_agreement(self.outs, reference, prec, top1=ctx.task != "embedding",
                                                 runtime=ref_info["runtime"]))


def _gate(ctx: CellContext, name: str, retained: float | None) -> str | None:
    gate = ctx.settings["quality_gate"]
    if retained is not None and retained < gate:
        return f"quality gate: {name} retained {retained:.4g} < {gate:g}"
    return None


def classification(ctx: CellContext, info: dict, own: _Own) -> list[Measurement]:
    """top1 (and top5 above 5 classes) with their deltas against dense."""
    import numpy as np

    test = ctx.splits.test
    if test.y is None:
        raise Skip(f"dataset {ctx.cell['dataset']} has no labels to score classification against")
    outs, sinfo = own(ctx.open_session, test.x, ctx.settings["batch_size"])
    info.update(sinfo)
    logits = np.concatenate([o.reshape(len(o), -1) for o in outs])
    correct = metrics.topk_correct(logits, test.y, 1)
    top1 = float(correct.mean())
    out = [Measurement("top1", top1, "fraction", info=info, stats={"correct": int(correct.sum())})]
    base = top1 if ctx.is_baseline else ctx.baseline("top1")
    if base is not None:
        out.append(Measurement("top1_delta", top1 - base, "fraction", info={"dense_top1": base}))
        retained = top1 / base if base else None
        out.append(Measurement("top1_retained", retained, "ratio", flag=_gate(ctx, "top1", retained),
                               info={"dense_top1": base, "quality_gate": ctx.settings["quality_gate"]}))
    if (ctx.splits.num_classes or 0) > 5:
        top5 = float(metrics.topk_correct(logits, test.y, 5).mean())
        out.append(Measurement("top5", top5, "fraction", info=info))
        base5 = top5 if ctx.is_baseline else ctx.baseline("top5")
        if base5 is not None:
            out.append(Measurement("top5_delta", top5 - base5, "fraction", info={"dense_top5": base5}))
    return out


def language_modelling(ctx: CellContext, info: dict, own: _Own) -> list[Measurement]:
    """Perplexity of the held-out split's next tokens; retained against dense."""
    import math

    x = ctx.splits.test.x
    if not isinstance(x, dict) or "input_ids" not in x:
        raise Skip(f"dataset {ctx.cell['dataset']}: language modelling needs inputs named input_ids")
    bs = ctx.settings["batch_size"]
    outs, sinfo = own(ctx.open_session, x, bs)
    info.update(sinfo)
    nll, count = 0.0, 0
    for i, logits in enumerate(outs):
        part = take(x, slice(i * bs, (i + 1) * bs))
        s, n = metrics.next_token_nll(logits, part["input_ids"], part.get("attention_mask"))
        nll, count = nll + s, count + n
    ppl = math.exp(nll / count)
    info.update({"tokens": count, "nll_nats": nll / count})
    out = [Measurement("perplexity", ppl, "ratio", info=info, stats={"tokens": count, "nll": nll / count})]
    base = ppl if ctx.is_baseline else ctx.baseline("perplexity")
    if base is not None:
        retained = base / ppl if ppl else None
        out.append(Measurement("perplexity_retained", retained, "ratio", flag=_gate(ctx, "perplexity", retained),
                               info={"dense_perplexity": base, "quality_gate": ctx.settings["quality_gate"]}))
    return out


def embedding(ctx: CellContext, info: dict, own: _Own) -> list[Measurement]:
    """Fidelity and retrieval agreement of embeddings against the dense model's, same backend."""
    import numpy as np

    x = ctx.splits.test.x
    bs = ctx.settings["batch_size"]
    outs, sinfo = own(ctx.open_session, x, bs)
    info.update(sinfo)
    emb = np.concatenate([o.reshape(len(o), -1) for o in outs])
    if ctx.is_baseline or ctx.open_dense_session is None:
        dense = emb
    else:
        dense = np.concatenate([o.reshape(len(o), -1) for o in _run(ctx.open_dense_session, x, bs)[0]])
    fid = metrics.cosine_fidelity(emb, dense)
    fidelity = float(fid.mean())
    finfo = {**info, "quality_gate": ctx.settings["quality_gate"], "dimensions": int(emb.shape[1])}
    out = [Measurement("fidelity", fidelity, "cosine", info=finfo, flag=_gate(ctx, "fidelity", fidelity),
                       stats={"min": float(fid.min()), "n": int(len(fid))})]
    k = min(ctx.settings["retrieval_k"], len(emb) - 1)
    if k >= 1:
        kept = metrics.retrieval_agreement(emb, dense, k)
        out.append(Measurement("retrieval", float(kept.mean()), "fraction", params={"k": k}, info=info,
                               stats={"min": float(kept.min())}))
    return out


TASKS = {"classification": classification, "language-modelling": language_modelling, "embedding": embedding}


def run(ctx: CellContext) -> list[Measurement]:
    """Score the test split through the backend's session, by the dataset's task."""
    if not ctx.splits.labelled:
        raise Skip(f"dataset {ctx.cell['dataset']} has no meaningful labels (latency-only data)")
    if ctx.task == "classification" and ctx.splits.num_classes is None:
        raise Skip(f"dataset {ctx.cell['dataset']} is not a classification dataset")
    score = TASKS.get(ctx.task)
    if score is None:
        raise Skip(f"the accuracy suite does not score task {ctx.task!r}")
    info = {"n": int(len(ctx.splits.test)), "batch_size": ctx.settings["batch_size"], "split": "test",
            "task": ctx.task}
    own = _Own(ctx)
    out = score(ctx, info, own)
    if own.outs is not None:
        out.append(own.agreement())
    return out


@hookimpl
def harness_register_suites(register):
    """Register the standard accuracy suite."""
    register(SuiteSpec(
        name="accuracy", run=run, needs_baseline=True, metrics=METRICS,
        settings=(Param("batch_size", int, default=256, min=1, max=65536, grid=False,
                        help="batch size used to score the test split"),
                  Param("quality_gate", float, default=0.99, min=0.0, max=1.0, grid=False,
                        help="flag results whose top1 (perplexity, fidelity) retained is below this "
                             "(MLPerf's 99%): a flagged result is shown but never ranked"),
                  Param("retrieval_k", int, default=10, min=1, grid=False,
                        help="embedding task: neighbours compared per text")),
        description="task metric from the backend's own outputs, against dense on the same backend",
    ))
