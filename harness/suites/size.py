"""The size suite: parameters, sparsity, bytes and FLOPs of an artifact (ShrinkBench's definitions).

It does not depend on the backend, so it runs once per artifact.
"""

from __future__ import annotations

import gzip

from harness.api import CellContext, Measurement, MetricSpec, SuiteSpec, hookimpl

METRICS = (
    MetricSpec("params", "count", False, "parameters of the artifact"),
    MetricSpec("nonzero_params", "count", False, "parameters that are not zero"),
    MetricSpec("sparsity", "fraction", None, "1 - nonzero_params / params, over every parameter"),
    MetricSpec("weight_sparsity", "fraction", None,
               "share of zeros in the weight kernels and matrices (tensors of 2+ dimensions): the scope "
               "of pruning methods' sparsity claims"),
    MetricSpec("compression_ratio", "ratio", True, "params / nonzero_params (ShrinkBench)"),
    MetricSpec("onnx_bytes", "bytes", False, "size of the serialized ONNX model"),
    MetricSpec("gzip_bytes", "bytes", False, "size of the ONNX model gzipped (level 9)"),
    MetricSpec("flops", "FLOPs", False, "dense FLOPs of one sample's forward pass (torch.utils.flop_counter)"),
    MetricSpec("nonzero_flops", "FLOPs", False, "FLOPs scaled by each Conv/Linear layer's weight density"),
    MetricSpec("theoretical_speedup", "ratio", True, "flops / nonzero_flops (ShrinkBench)"),
)


def run(ctx: CellContext) -> list[Measurement]:
    """Measure the artifact on disk."""
    from harness.analysis import onnx_param_counts, torch_param_counts

    art = ctx.artifact
    if "torch" in art.formats:
        counts, counted_from = torch_param_counts(art.load_torch()), "torch module parameters"
    else:
        counts, counted_from = onnx_param_counts(art.file("onnx")), "ONNX weight initializers"
    params, nz = counts["params"], counts["nonzero_params"]
    info = {"counted_from": counted_from, "formats": list(art.formats), "claims": art.manifest.get("claims")}
    out = [
        Measurement("params", params, "count", info=info),
        Measurement("nonzero_params", nz, "count", info=info),
        Measurement("sparsity", 1 - nz / params if params else None, "fraction", info=info),
        Measurement("weight_sparsity", 1 - counts["nonzero_weights"] / counts["weights"] if counts["weights"]
                    else None, "fraction", info=info),
        Measurement("compression_ratio", params / nz if nz else None, "ratio", info=info),
    ]
    if "onnx" in art.formats:
        data = art.file("onnx").read_bytes()
        out.append(Measurement("onnx_bytes", len(data), "bytes"))
        out.append(Measurement("gzip_bytes", len(gzip.compress(data, compresslevel=9, mtime=0)), "bytes"))
    analysis = art.manifest.get("analysis") or {}
    if analysis.get("flops"):
        finfo = {"method": "torch.utils.flop_counter, batch 1", "layers": analysis.get("layers")}
        out.append(Measurement("flops", analysis["flops"], "FLOPs", info=finfo))
        out.append(Measurement("nonzero_flops", analysis["nonzero_flops"], "FLOPs", info=finfo))
        nzf = analysis["nonzero_flops"]
        out.append(Measurement("theoretical_speedup", analysis["flops"] / nzf if nzf else None, "ratio"))
    return out


@hookimpl
def harness_register_suites(register):
    """Register the standard size suite."""
    register(SuiteSpec(name="size", run=run, per_backend=False, metrics=METRICS,
                       description="parameters, sparsity, bytes and FLOPs of the artifact"))
