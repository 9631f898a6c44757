"""The size suite: parameters, sparsity, bytes, bits, FLOPs and peak memory of an artifact.

Parameter counts, FLOPs and the theoretical speedup follow ShrinkBench's definitions. It does not
depend on the backend, so it runs once per artifact.
"""

from __future__ import annotations

import gzip

from harness.api import (
    CellContext,
    Measurement,
    MetricSpec,
    SuiteSpec,
    hookimpl,
    onnx_packed_size,
    onnx_param_counts,
    peak_forward_memory,
    take,
    theoretical_speedup,
    torch_args,
    torch_packed_size,
    torch_param_counts,
)

METRICS = (
    MetricSpec("total_params", "count", False, "parameters of the artifact"),
    MetricSpec("nonzero_params", "count", False, "parameters that are not zero"),
    MetricSpec("sparsity", "fraction", None, "1 - nonzero_params / total_params, over every parameter"),
    MetricSpec("weight_sparsity", "fraction", None,
               "share of zeros in the weight kernels and matrices (tensors of 2+ dimensions): the scope "
               "of pruning methods' sparsity claims"),
    MetricSpec("compression_ratio", "ratio", True, "total_params / nonzero_params (ShrinkBench)"),
    MetricSpec("onnx_bytes", "bytes", False, "size of the serialized ONNX model"),
    MetricSpec("gzip_bytes", "bytes", False, "size of the ONNX model gzipped (level 9)"),
    MetricSpec("flops", "FLOPs", False, "dense FLOPs of one sample's forward pass (torch.utils.flop_counter)"),
    MetricSpec("nonzero_flops", "FLOPs", False, "FLOPs scaled by each Conv/Linear layer's weight density"),
    MetricSpec("theoretical_speedup", "ratio", True,
               "the dense reference model's flops / this artifact's nonzero_flops (ShrinkBench)"),
    MetricSpec("bits_per_weight", "bits", False,
               "stored bits per element of the weight kernels and matrices: the dtype's width, or the code "
               "(and cluster-index) bits a method recorded for fake-quantized weights; scales excluded"),
    MetricSpec("packed_bytes", "bytes", False,
               "every parameter and buffer packed at its stored bit width, with quantization scales and zero "
               "points; sparse formats not assumed"),
    MetricSpec("peak_memory_mb", "MiB", False,
               "peak tensor memory (parameters, input, live activations) of a batch-1 forward of the torch "
               "module on CPU, tracked per storage by torch's MemTracker; torch artifacts only"),
)


def run(ctx: CellContext) -> list[Measurement]:
    """Measure the artifact on disk."""
    art = ctx.artifact
    module = None
    if "torch" in art.formats:
        module = art.load_torch()
        counts, counted_from = torch_param_counts(module), "torch module parameters"
        packed = torch_packed_size(module, art.manifest.get("encodings"))
    else:
        counts, counted_from = onnx_param_counts(art.file("onnx")), "ONNX weight initializers"
        packed = onnx_packed_size(art.file("onnx"))
    params, nz = counts["params"], counts["nonzero_params"]
    info = {"counted_from": counted_from, "formats": list(art.formats), "claims": art.manifest.get("claims")}
    out = [
        Measurement("total_params", params, "count", info=info),
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
        out.append(Measurement("theoretical_speedup", theoretical_speedup(analysis), "ratio",
                               info={"reference_flops": analysis.get("reference_flops")}))
    pinfo = {"counted_from": counted_from if module is not None else "ONNX initializers at their stored types",
             "encodings": "recorded by the method" if art.manifest.get("encodings") else "none",
             "per_tensor_bits": packed.get("tensors")}
    out.append(Measurement("bits_per_weight", packed["bits_per_weight"], "bits", info=pinfo))
    out.append(Measurement("packed_bytes", packed["packed_bytes"], "bytes", info=pinfo))
    if module is not None:
        try:
            split = ctx.splits.test if len(ctx.splits.test) else ctx.splits.train
            memory = peak_forward_memory(module, torch_args(take(split.x, slice(0, 1))))
        except ImportError as exc:  # a torch build without the tracker: say so rather than guess
            out.append(Measurement("peak_memory_mb", None, "MiB", info={"reason": f"no tracker: {exc}"}))
        else:
            out.append(Measurement("peak_memory_mb", memory["peak_bytes"] / 2**20, "MiB",
                                   info={k: v for k, v in memory.items() if k != "peak_bytes"}))
    return out


@hookimpl
def harness_register_suites(register):
    """Register the standard size suite."""
    register(SuiteSpec(name="size", run=run, per_backend=False, metrics=METRICS,
                       description="parameters, sparsity, bytes and FLOPs of the artifact"))
