"""The ``torch-sparse-cpu`` backend: eager PyTorch on the CPU with pruned weights in sparse kernels.

Each Linear and (ungrouped) Conv2d whose weight is at least ``min_sparsity`` zeros is rebuilt on a
``torch.sparse`` weight: CSR (compressed rows, for unstructured zeros) or BSR (square blocks, for
the ``block`` method's tiles, as SparseByteNN's fine-grained group sparsity; Xu et al. 2023), and
multiplied with ``torch.sparse``'s kernels (MKL sparse BLAS on x86). A Conv2d runs as an im2col
matrix product (``torch.nn.functional.unfold``, then the sparse weight times the columns); grouped
and depthwise convolutions, and every layer below ``min_sparsity``, stay dense. The timing loop and
the checks against the reference are those of every in-process backend (:class:`TorchCPUSession`).

MKL's BSR kernels take square blocks only: ``layout="auto"`` picks BSR when the artifact claims a
square ``block_shape`` that tiles the layer and CSR otherwise (``block``'s default 4x1 tiles run as
CSR); the session's ``info`` says which layers went which way.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from harness.api import CPU_CORES, Artifact, BackendSpec, Param
from harness_plugins.backends.torch_cpu import TorchCPUSession, available
from harness_plugins.backends.torch_cpu import fingerprint as dense_fingerprint

LAYOUTS = ("auto", "csr", "bsr")


def _sparse_weight(matrix: Any, layout: str, block: int | None) -> Any:
    """``matrix`` (out, in) as a CSR or BSR tensor (torch warns that both are beta on every conversion)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if layout == "bsr":
            return matrix.to_sparse_bsr((block, block))
        return matrix.to_sparse_csr()


def _modules():
    """The sparse layer classes, built on first use so that importing this module stays free of torch."""
    import torch
    from torch import nn

    class SparseLinear(nn.Module):
        """``y = x W^T + b`` with ``W`` sparse: computed as ``(W x^T)^T``, the sparse-times-dense
        product MKL implements."""

        def __init__(self, weight: Any, bias: Any, layout: str):
            super().__init__()
            self.weight_sparse, self.bias, self.layout = weight, bias, layout

        def forward(self, x: Any) -> Any:
            lead = x.shape[:-1]
            flat = x.reshape(-1, x.shape[-1])
            y = (self.weight_sparse @ flat.t()).t()
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*lead, y.shape[-1])

    class SparseConv2d(nn.Module):
        """An ungrouped Conv2d as im2col: ``unfold`` the input into columns ``(C kh kw, N L)``, multiply
        by the sparse ``(out, C kh kw)`` weight, fold the result back to ``(N, out, H', W')``."""

        def __init__(self, conv: Any, weight: Any, layout: str):
            super().__init__()
            self.weight_sparse, self.layout = weight, layout
            self.bias = conv.bias
            self.kernel_size, self.stride = conv.kernel_size, conv.stride
            self.padding, self.dilation = conv.padding, conv.dilation
            self.out_channels = conv.out_channels

        def forward(self, x: Any) -> Any:
            n, _, h, w = x.shape
            cols = torch.nn.functional.unfold(x, self.kernel_size, dilation=self.dilation, padding=self.padding,
                                              stride=self.stride)
            k, length = cols.shape[1], cols.shape[2]
            y = self.weight_sparse @ cols.transpose(0, 1).reshape(k, n * length)
            y = y.reshape(self.out_channels, n, length).transpose(0, 1)
            if self.bias is not None:
                y = y + self.bias[None, :, None]
            ho = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
            wo = (w + 2 * self.padding[1] - self.dilation[1] * (self.kernel_size[1] - 1) - 1) // self.stride[1] + 1
            return y.reshape(n, self.out_channels, ho, wo)

    return SparseLinear, SparseConv2d


def choose_layout(layout: str, shape: tuple[int, int], block_shape: Any) -> tuple[str, int | None]:
    """``(layout, block size)`` for one weight matrix of ``shape``: BSR needs a square block that tiles it.

    ``auto`` takes BSR with the artifact's claimed square ``block_shape`` when it tiles the matrix, CSR
    otherwise; ``bsr`` insists (a ValueError names why when it cannot), ``csr`` always gives CSR.
    """
    if layout == "csr":
        return "csr", None
    square = (isinstance(block_shape, (list, tuple)) and len(block_shape) == 2
              and int(block_shape[0]) == int(block_shape[1]) and int(block_shape[0]) > 1)
    fits = square and shape[0] % int(block_shape[0]) == 0 and shape[1] % int(block_shape[0]) == 0
    if fits:
        return "bsr", int(block_shape[0])
    if layout == "bsr":
        raise ValueError(f"torch-sparse-cpu: layout='bsr' needs the artifact to claim a square block_shape that "
                         f"tiles every sparse layer (MKL's BSR kernels take square blocks); it claims "
                         f"{block_shape!r} for a {shape[0]}x{shape[1]} weight: use layout='auto' or 'csr'")
    return "csr", None


def sparsify(module: Any, min_sparsity: float, layout: str = "auto", block_shape: Any = None,
             conv: bool = True) -> dict:
    """Replace, in place, each Linear (and ungrouped Conv2d when ``conv``) of ``module`` whose weight has
    at least ``min_sparsity`` zeros by its sparse counterpart; return what was done, layer by layer.

    The returned dict has ``sparse`` (``{name: "csr"|"bsr 4x4"}``), ``dense`` (``{name: why}``) and the
    share of all conv+linear weights that now live in sparse kernels (``sparse_weight_share``).
    """
    from torch import nn

    sparse_linear, sparse_conv = _modules()
    done: dict[str, str] = {}
    dense: dict[str, str] = {}
    total = in_sparse = 0
    for name, layer in list(module.named_modules()):
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        w = layer.weight.detach()
        total += w.numel()
        zeros = float((w == 0).sum()) / max(w.numel(), 1)
        if zeros < min_sparsity:
            dense[name] = f"sparsity {zeros:.3f} < min_sparsity {min_sparsity:g}"
            continue
        if isinstance(layer, nn.Conv2d):
            if not conv:
                dense[name] = "conv=false"
                continue
            if layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                dense[name] = "grouped, depthwise or non-zero/str padding conv: no im2col route"
                continue
        matrix = w.reshape(w.shape[0], -1).contiguous()
        kind, block = choose_layout(layout, tuple(matrix.shape), block_shape)
        sw = _sparse_weight(matrix, kind, block)
        bias = None if layer.bias is None else layer.bias.detach()
        new = sparse_linear(sw, bias, kind) if isinstance(layer, nn.Linear) else sparse_conv(layer, sw, kind)
        _set_submodule(module, name, new)
        done[name] = kind if block is None else f"bsr {block}x{block}"
        in_sparse += w.numel()
    return {"sparse": done, "dense": dense, "sparse_weight_share": in_sparse / total if total else 0.0}


def _set_submodule(root: Any, name: str, new: Any) -> None:
    """Put ``new`` at dotted path ``name`` under ``root`` (``setattr`` on the parent)."""
    parent = root
    *path, last = name.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, last, new)


class TorchSparseCPUSession(TorchCPUSession):
    """A :class:`TorchCPUSession` whose sparse-enough layers run in ``torch.sparse`` kernels."""

    def __init__(self, artifact: Artifact, threads: int, min_sparsity: float, layout: str, conv: bool):
        super().__init__(artifact, threads)
        claims = artifact.manifest.get("claims") or {}
        report = sparsify(self.module, min_sparsity, layout, claims.get("block_shape"), conv)
        kinds = sorted(set(report["sparse"].values()))
        self.info = {**self.info, "mode": "eager, torch.sparse", "min_sparsity": min_sparsity,
                     "layout": layout, "sparse_layers": len(report["sparse"]),
                     "dense_layers": len(report["dense"]), "sparse_kinds": kinds,
                     "sparse_weight_share": round(report["sparse_weight_share"], 4)}
        self.layers = report


def open_session(artifact: Artifact, params: Mapping[str, Any]) -> TorchSparseCPUSession:
    """Open a session on the artifact's torch module, its sparse layers converted."""
    return TorchSparseCPUSession(artifact, int(params["threads"]), float(params["min_sparsity"]),
                                 str(params["layout"]), bool(params["conv"]))


def fingerprint(params: Mapping[str, Any]) -> dict:
    """The torch build, threading and sparse routing this backend measures with."""
    import torch

    return {**dense_fingerprint(params), "sparse": "torch.sparse", "min_sparsity": float(params["min_sparsity"]),
            "layout": str(params["layout"]), "conv": bool(params["conv"]),
            "mkl": bool(torch.backends.mkl.is_available())}


TORCH_SPARSE_CPU = BackendSpec(
    name="torch-sparse-cpu", session=open_session, accepts=("torch",), available=available,
    fingerprint=fingerprint,
    params=(Param("threads", int, default=1, min=1, max=CPU_CORES, help="torch intra-op threads"),
            Param("min_sparsity", float, default=0.5, min=0.0, max=1.0,
                  help="a layer whose weight has fewer zeros than this share stays dense"),
            Param("layout", str, default="auto", choices=LAYOUTS,
                  help="auto: BSR for a claimed square block_shape that tiles the layer, else CSR"),
            Param("conv", bool, default=True, help="run sparse ungrouped Conv2d layers as im2col sparse matmuls")),
    description="PyTorch eager on the CPU with sparse-enough Linear/Conv2d weights in torch.sparse CSR/BSR "
                "kernels (conv as im2col), timed in-process",
)
