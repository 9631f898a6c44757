"""The ``torch-cuda-kernels`` backend: ``torch-cuda`` with compression-exploiting kernels on the Linear layers.

- ``kernels="semi-structured"``: each Linear whose weight has at most 2 non-zeros in every 4 consecutive
  inputs (an ``n-m`` 2:4 artifact) and fits the CUTLASS shape rules (fp16/bf16: rows a multiple of 32,
  columns of 64) gets its weight through ``torch.sparse.to_sparse_semi_structured``, so ``F.linear``
  runs the sparse tensor-core kernel (Mishra et al. 2021, NVIDIA 2:4; PyTorch's semi-structured sparsity
  tutorial). fp16 or bf16 only, as the kernels are.
- ``kernels="int8"``: each Linear (sizes multiples of 8) of an artifact claiming 8 or fewer weight bits runs
  as int8 weights (one
  scale per output channel, exact for ``kbit``'s per-channel grid) times int8 activations (one scale per
  row, quantized per call) through ``torch._int_mm``, rescaled to the compute dtype (Dettmers et al.
  2022, LLM.int8(); Jacob et al. 2018).

The comparison is against the same model, dense, in the same dtype and mode: the ``dense`` cell on this
backend keeps every layer dense (nothing is 2:4 or claims low bits). The selection and int8 conversion
run on the CPU and are tested there; the kernels need a CUDA device, and without one every cell is
``skipped`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import Artifact, BackendSpec, Param, Skip
from harness_plugins.backends import torch_cuda

KERNELS = ("semi-structured", "int8")
#: CUTLASS's 2:4 kernels in fp16/bf16: the sparse weight's rows and columns must be multiples of these.
SEMI_ROWS, SEMI_COLS = 32, 64


def is_2_4(weight: Any) -> bool:
    """Whether every group of 4 consecutive inputs of every output row has at most 2 non-zeros."""
    rows, cols = weight.shape
    if cols % 4:
        return False
    return bool(((weight.reshape(rows, cols // 4, 4) != 0).sum(-1) <= 2).all())


def semi_structured_plan(module: Any) -> dict[str, str]:
    """``{name: "2:4" | why it stays dense}`` for every Linear of ``module``."""
    from torch import nn

    plan = {}
    for name, layer in module.named_modules():
        if not isinstance(layer, nn.Linear):
            continue
        rows, cols = layer.weight.shape
        if rows % SEMI_ROWS or cols % SEMI_COLS:
            plan[name] = f"dense: {rows}x{cols} is not a multiple of {SEMI_ROWS}x{SEMI_COLS}"
        elif not is_2_4(layer.weight.detach()):
            plan[name] = "dense: weight is not 2:4 sparse"
        else:
            plan[name] = "2:4"
    return plan


def quantize_rows(x: Any) -> tuple[Any, Any]:
    """Symmetric int8 codes of each row of ``x`` (2-D) and the row scales: ``x ~ codes * scale[:, None]``."""
    import torch

    scale = x.abs().amax(dim=1).clamp(min=1e-12).float() / 127.0
    codes = torch.round(x.float() / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return codes, scale


#: ``torch._int_mm`` on CUDA: inner and output sizes multiples of 8, and more than 16 rows (padded to this).
INT8_MULTIPLE, INT8_MIN_ROWS = 8, 17


def _int8_linear_class():
    import torch
    from torch import nn

    class Int8Linear(nn.Module):
        """``y = x W^T + b`` as ``torch._int_mm(int8 x, int8 W^T)`` rescaled by the row and channel scales."""

        def __init__(self, layer: Any):
            super().__init__()
            codes, scale = quantize_rows(layer.weight.detach())
            self.register_buffer("weight_codes", codes)  # (out, in); its .t() is the column-major operand
            self.register_buffer("weight_scale", scale)
            self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().clone())

        def forward(self, x: Any) -> Any:
            lead = x.shape[:-1]
            flat = x.reshape(-1, x.shape[-1])
            rows = flat.shape[0]
            if rows < INT8_MIN_ROWS:  # the CUDA kernel wants more than 16 rows: pad with zeros, drop after
                flat = torch.nn.functional.pad(flat, (0, 0, 0, INT8_MIN_ROWS - rows))
            xq, xs = quantize_rows(flat)
            acc = torch._int_mm(xq, self.weight_codes.t())[:rows]
            y = (acc.float() * xs[:rows, None] * self.weight_scale[None, :]).to(x.dtype)
            if self.bias is not None:
                y = y + self.bias.to(x.dtype)
            return y.reshape(*lead, y.shape[-1])

    return Int8Linear


def to_int8(module: Any) -> dict[str, str]:
    """Replace, in place, every Linear of ``module`` whose sizes are multiples of 8 by its int8
    ``torch._int_mm`` counterpart; ``{name: "int8" | why it stays dense}``."""
    from torch import nn

    int8_linear = _int8_linear_class()
    plan = {}
    for name, layer in list(module.named_modules()):
        if not isinstance(layer, nn.Linear):
            continue
        if layer.in_features % INT8_MULTIPLE or layer.out_features % INT8_MULTIPLE:
            plan[name] = f"dense: {layer.out_features}x{layer.in_features} is not a multiple of {INT8_MULTIPLE}"
            continue
        parent = module
        *path, last = name.split(".")
        for part in path:
            parent = getattr(parent, part)
        setattr(parent, last, int8_linear(layer))
        plan[name] = "int8"
    return plan


def to_semi_structured(module: Any, plan: Mapping[str, str]) -> list[str]:
    """Give every Linear the plan marks ``2:4`` its weight as a semi-structured sparse tensor (on the device)."""
    from torch import nn
    from torch.sparse import to_sparse_semi_structured

    done = []
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Linear) and plan.get(name) == "2:4":
            layer.weight = nn.Parameter(to_sparse_semi_structured(layer.weight.detach()), requires_grad=False)
            done.append(name)
    return done


class TorchCudaKernelsSession(torch_cuda.TorchCudaSession):
    """A :class:`torch_cuda.TorchCudaSession` whose Linear layers run 2:4 sparse or int8 kernels."""

    def __init__(self, artifact: Artifact, params: Mapping[str, Any]):
        kernels = params["kernels"]
        if kernels == "semi-structured" and params["dtype"] not in ("fp16", "bf16"):
            raise Skip("semi-structured (2:4) kernels run in fp16 or bf16: set dtype = \"fp16\" or \"bf16\"")
        super().__init__(artifact, params)
        bits = (artifact.manifest.get("claims") or {}).get("weight_bits")
        if kernels == "semi-structured":
            plan = semi_structured_plan(self.module)
            to_semi_structured(self.module, plan)
        elif isinstance(bits, (int, float)) and bits <= 8:
            plan = to_int8(self.module)
        else:  # the dense baseline and every artifact not claiming low bits: dense, as the comparison needs
            plan = {}
        self.info = {**self.info, "kernels": kernels,
                     "converted_layers": sum(1 for v in plan.values() if not v.startswith("dense")),
                     "dense_layers": sum(1 for v in plan.values() if v.startswith("dense"))}


def open_session(artifact: Artifact, params: Mapping[str, Any]) -> TorchCudaKernelsSession:
    """Open a session on the artifact's torch module, its eligible Linear layers converted."""
    return TorchCudaKernelsSession(artifact, params)


def fingerprint(params: Mapping[str, Any]) -> dict:
    """``torch-cuda``'s fingerprint and the kernels asked for."""
    return {**torch_cuda.fingerprint(params), "kernels": params["kernels"]}


TORCH_CUDA_KERNELS = BackendSpec(
    name="torch-cuda-kernels", session=open_session, accepts=("torch",), available=torch_cuda.available,
    fingerprint=fingerprint, resources=lambda params: {"GPU": 1},
    params=(*torch_cuda.TORCH_CUDA.params,
            Param("kernels", str, default="int8", choices=KERNELS,
                  help="int8: int8 weights and activations via torch._int_mm (artifacts claiming <= 8 bits); "
                       "semi-structured: 2:4 Linear weights via to_sparse_semi_structured (fp16/bf16)")),
    description="torch-cuda with 2:4 semi-structured sparse or int8 (torch._int_mm) kernels on the Linear layers",
)
