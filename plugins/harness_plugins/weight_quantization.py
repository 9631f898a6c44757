"""Weight-only quantization to k bits, fake-quantized in a torch module: ``kbit``, ``splitquant`` and
``mixed-precision``.

- ``kbit``: per-channel symmetric weights, Krishnamoorthi 2018, Quantizing deep convolutional networks
  for efficient inference: A whitepaper; bit widths as studied by Dettmers & Zettlemoyer 2023, The
  case for 4-bit precision;
- ``splitquant``: Song & Lin 2025, SplitQuant: Layer Splitting for Low-Bit Neural Network Quantization;
- ``mixed-precision``: Cai et al. 2020, ZeroQ (KL-divergence sensitivity per layer) and Yao et al. 2021,
  HAWQ-V3 (bits per layer by integer programming).

The weights of every Conv2d and Linear layer are replaced by their quantized values (integer codes
times a scale) while staying float32 tensors, so the artifact runs unchanged on every backend and
its accuracy is that of the k-bit weights. Each method records how each weight would be stored
packed (``ctx.encodings``: code bits, cluster-index bits, scales, zero points), from which the size
suite reports ``bits_per_weight`` and ``packed_bytes``. Biases stay float32, as integer kernels
keep them at 32 bits. Observers and fake-quantization are torch.ao's
(``PerChannelMinMaxObserver``, ``torch.fake_quantize_per_channel_affine``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, WeightEncoding, hookimpl
from harness_plugins._layers import SCOPE, named_layers

BITS = (2, 3, 4, 5, 6, 7, 8)


def quantize_symmetric(weight: Any, bits: int) -> Any:
    """Per-output-channel symmetric fake quantization: codes in ``[-(2^(k-1) - 1), 2^(k-1) - 1]`` (the
    narrow range, so zero is a code and the grid is symmetric), scale ``max|w| / (2^(k-1) - 1)`` per channel.
    At 2 bits the codes are -1, 0 and 1 (ternary)."""
    import torch
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    qmax = 2 ** (bits - 1) - 1
    observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                        quant_min=-qmax, quant_max=qmax)
    w = weight.detach()
    observer(w)
    scale, zero_point = observer.calculate_qparams()
    return torch.fake_quantize_per_channel_affine(w, scale.float(), zero_point.int(), 0, -qmax, qmax)


def quantize_affine(weight: Any, bits: int) -> Any:
    """Per-output-channel asymmetric fake quantization with codes ``0 .. 2^k - 1``; the range of each
    channel always includes zero, so zero stays exactly zero."""
    import torch
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    qmax = 2 ** bits - 1
    observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine,
                                        quant_min=0, quant_max=qmax)
    w = weight.detach()
    observer(w)
    scale, zero_point = observer.calculate_qparams()
    return torch.fake_quantize_per_channel_affine(w, scale.float(), zero_point.int(), 0, 0, qmax)


def _set_weight(layer: Any, value: Any) -> None:
    import torch

    with torch.no_grad():
        layer.weight.copy_(value)


def apply_kbit(ctx: ApplyContext) -> Any:
    """Quantize every conv and linear weight to ``bits`` bits, per output channel, symmetric."""
    bits = int(ctx.params["bits"])
    for name, layer in named_layers(ctx.module):
        _set_weight(layer, quantize_symmetric(layer.weight, bits))
        ctx.encodings[f"{name}.weight"] = WeightEncoding(bits=bits, scales=layer.weight.shape[0]).as_dict()
    return ctx.module


def kbit_claims(params: Mapping[str, Any]) -> dict:
    """k-bit codes per output channel, symmetric: at most 2^k - 1 distinct values in each channel."""
    bits = int(params["bits"])
    return {"weight_bits": bits, "weight_scope": SCOPE, "granularity": "per-channel", "symmetric": True,
            "max_levels_per_channel": 2 ** bits - 1}


def split_clusters(weight: Any, clusters: int = 3) -> Any:
    """Cluster index (0 = lowest values) of every weight of one layer: 1-D k-means over the layer's weights
    (scikit-learn), started from the 1/6, 1/2 and 5/6 quantiles so the result is deterministic."""
    import numpy as np
    import torch
    from sklearn.cluster import KMeans

    values = weight.detach().flatten().double().numpy().reshape(-1, 1)
    start = np.quantile(values, (np.arange(clusters) + 0.5) / clusters).reshape(-1, 1)
    if len(np.unique(values)) < clusters:  # too few distinct values to split: one cluster
        return torch.zeros(weight.shape, dtype=torch.long)
    km = KMeans(n_clusters=clusters, init=start, n_init=1, random_state=0).fit(values)
    rank = np.argsort(np.argsort(km.cluster_centers_.ravel()))
    return torch.from_numpy(rank[km.labels_]).reshape(weight.shape)


def apply_splitquant(ctx: ApplyContext) -> Any:
    """SplitQuant: split each layer's weights into three clusters by k-means (lower, middle and upper
    values), quantize each cluster as its own layer (``bits`` bits per output channel, its own scale and
    zero point) and sum them back: outliers no longer stretch the scale of the many small weights."""
    import torch

    bits = int(ctx.params["bits"])
    for name, layer in named_layers(ctx.module):
        w = layer.weight.detach()
        cluster = split_clusters(w)
        out = torch.zeros_like(w)
        for c in range(3):
            part = torch.where(cluster == c, w, torch.zeros_like(w))
            out += torch.where(cluster == c, quantize_affine(part, bits), torch.zeros_like(w))
        _set_weight(layer, out)
        channels = w.shape[0]
        # Stored as one k-bit code plus a 2-bit cluster index per weight, and a scale and zero point
        # per cluster and channel: the three split layers' information without their zeros.
        ctx.encodings[f"{name}.weight"] = WeightEncoding(bits=bits, index_bits=2, scales=3 * channels,
                                                         zero_points=3 * channels).as_dict()
    return ctx.module


def splitquant_claims(params: Mapping[str, Any]) -> dict:
    """k-bit codes in three clusters per layer, each with its own per-channel scale."""
    bits = int(params["bits"])
    return {"weight_bits": bits, "weight_scope": SCOPE, "clusters": 3, "index_bits": 2,
            "granularity": "per-channel per cluster", "symmetric": False,
            "max_levels_per_channel": 3 * 2 ** bits}


def output_kl(reference: Any, logits: Any) -> float:
    """Mean KL divergence of the softmax of ``logits`` from that of ``reference`` (ZeroQ's sensitivity)."""
    import torch

    p = torch.log_softmax(reference, 1)
    q = torch.log_softmax(logits, 1)
    return float(torch.nn.functional.kl_div(q, p, log_target=True, reduction="batchmean"))


def layer_sensitivity(module: Any, x: Any, bits: tuple[int, ...] = BITS) -> dict[str, dict[int, float]]:
    """``{layer: {bits: KL}}``: how far the outputs on ``x`` move when that layer alone is quantized."""
    import torch

    layers = named_layers(module)
    with torch.no_grad():
        reference = module.eval()(x)
        out: dict[str, dict[int, float]] = {}
        for name, layer in layers:
            original = layer.weight.detach().clone()
            out[name] = {}
            for b in bits:
                _set_weight(layer, quantize_symmetric(original, b))
                out[name][b] = output_kl(reference, module(x))
            _set_weight(layer, original)
    return out


def assign_bits(sensitivity: dict[str, dict[int, float]], sizes: dict[str, int], budget: float, *,
                method: str = "mixed-precision") -> dict[str, int]:
    """Bits per layer minimising the summed sensitivity with the weight-weighted mean bits <= ``budget``:
    the integer program of HAWQ-V3, solved with ``scipy.optimize.milp`` (HiGHS)."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    names = list(sensitivity)
    options = [(name, b) for name in names for b in sorted(sensitivity[name])]
    cost = np.array([sensitivity[name][b] for name, b in options])
    one_each = np.array([[1.0 if name == n else 0.0 for name, _ in options] for n in names])
    total = sum(sizes.values())
    weight_bits = np.array([[sizes[name] * b / total for name, b in options]])
    constraints = [LinearConstraint(one_each, 1, 1), LinearConstraint(weight_bits, -np.inf, budget)]
    result = milp(cost, constraints=constraints, integrality=np.ones(len(options)), bounds=Bounds(0, 1))
    if not result.success:
        raise ValueError(f"{method}: no assignment of {min(BITS)}-{max(BITS)} bits fits a mean of "
                         f"{budget} bits ({result.message})")
    chosen = {name: b for (name, b), z in zip(options, result.x) if z > 0.5}
    return {name: chosen[name] for name in names}


def apply_mixed_precision(ctx: ApplyContext) -> Any:
    """Measure each layer's sensitivity on the calibration split (output KL divergence with that layer
    alone at 2..8 bits), choose bits per layer under the mean-bits budget by integer programming, and
    quantize each layer per output channel, symmetric, at its bits."""
    import numpy as np
    import torch

    budget = float(ctx.params["bits"])
    x = torch.from_numpy(np.ascontiguousarray(ctx.splits.calibration.x))
    return quantize_by_cost(ctx, layer_sensitivity(ctx.module, x), budget, method="mixed-precision")


def quantize_by_cost(ctx: ApplyContext, cost: dict[str, dict[int, float]], budget: float, *, method: str) -> Any:
    """Bits per layer from ``cost`` (layer -> bits -> cost) under the mean-bits ``budget``
    (:func:`assign_bits`), then each layer quantized per output channel, symmetric, at its bits, and its
    encoding recorded: the allocation step every mixed-precision method shares."""
    layers = named_layers(ctx.module)
    sizes = {name: layer.weight.numel() for name, layer in layers}
    bits = assign_bits(cost, sizes, budget, method=method)
    for name, layer in layers:
        _set_weight(layer, quantize_symmetric(layer.weight, bits[name]))
        ctx.encodings[f"{name}.weight"] = WeightEncoding(bits=bits[name], scales=layer.weight.shape[0]).as_dict()
    return ctx.module


def mixed_claims(params: Mapping[str, Any]) -> dict:
    """Per-layer bits among 2..8 whose weight-weighted mean is at most the budget (recorded per tensor)."""
    return {"weight_bits_mean_max": float(params["bits"]), "weight_bits_choices": list(BITS), "weight_scope": SCOPE,
            "granularity": "per-channel", "symmetric": True, "weight_bits_per_tensor": "artifact encodings"}


KBIT = MethodSpec(
    name="kbit", apply=apply_kbit, claims=kbit_claims,
    params=(Param("bits", int, min=2, max=8, help="bits per weight, 2 to 8"),),
    source="Krishnamoorthi 2018, Quantizing deep convolutional networks for efficient inference: A whitepaper "
           "(per-channel symmetric weights); Dettmers & Zettlemoyer 2023, The case for 4-bit precision "
           "(torch.ao.quantization)",
    description="k-bit per-channel symmetric weight quantization, fake-quantized (runs on every backend)",
)

SPLITQUANT = MethodSpec(
    name="splitquant", apply=apply_splitquant, claims=splitquant_claims,
    params=(Param("bits", int, min=2, max=8, help="bits per weight code, 2 to 8"),),
    source="Song & Lin 2025, SplitQuant: Layer Splitting for Low-Bit Neural Network Quantization "
           "(scikit-learn KMeans, torch.ao.quantization)",
    description="each layer's weights split into three k-means clusters, each quantized with its own "
                "per-channel scale and zero point",
)

MIXED_PRECISION = MethodSpec(
    name="mixed-precision", apply=apply_mixed_precision, claims=mixed_claims,
    params=(Param("bits", float, min=2.0, max=8.0, help="budget: mean bits per weight over all layers"),),
    source="Cai et al. 2020, ZeroQ: A Novel Zero Shot Quantization Framework (KL sensitivity); Yao et al. 2021, "
           "HAWQ-V3: Dyadic Neural Network Quantization (bit allocation by integer programming) "
           "(scipy.optimize.milp, torch.ao.quantization)",
    description="per-layer bits (2-8) from calibration sensitivity under a mean-bits budget, per-channel "
                "symmetric",
)


@hookimpl
def harness_register_methods(register):
    """Register ``kbit``, ``splitquant`` and ``mixed-precision``."""
    for spec in (KBIT, SPLITQUANT, MIXED_PRECISION):
        register(spec)
