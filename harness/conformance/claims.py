"""Do a method's claims hold on the artifact it built?

Checked claims (keys of ``MethodSpec.claims(params)``):

- ``sparsity``: the share of zeros over ``sparsity_scope`` is within 0.5 percentage points.
  Scopes: ``"conv+linear weights"`` and ``"weights"`` (tensors of two or more dimensions,
  the default) or ``"all parameters"``.
- ``channel_sparsity``: the share of output channels (dimension-0 slices of conv and linear
  weights) that are entirely zero is within 0.5 percentage points (torch artifacts).
- ``weight_bits``: every weight tensor holds at most ``2 ** weight_bits`` distinct values.
- ``weight_dtype``: every weight tensor of the ONNX file (or module) has this numpy dtype.

``sparsity_scope`` qualifies ``sparsity``; other keys (``activation``, ...) are recorded,
not measured. Every format the artifact holds is checked: a claim must hold on what runs.
"""

from __future__ import annotations

from typing import Any

from harness.specs import Artifact

#: How far a measured share may be from a claimed one: 0.5 percentage points.
SHARE_TOLERANCE = 0.005
SCOPES = ("weights", "conv+linear weights", "all parameters")
MEASURED = ("sparsity", "channel_sparsity", "weight_bits", "max_levels_per_channel", "weight_dtype")
#: Keys that qualify a measured claim rather than make one.
QUALIFIERS = ("sparsity_scope",)


def _torch_tensors(artifact: Artifact) -> tuple[list[Any], list[Any], list[Any]]:
    """(all parameters, weight tensors, conv/linear weights) of the torch module, as numpy arrays."""
    import torch

    module = artifact.load_torch()
    params = [p.detach().numpy() for p in module.parameters()]
    weights = [p for p in params if p.ndim >= 2]
    layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    conv_linear = [m.weight.detach().numpy() for m in module.modules() if isinstance(m, layers)]
    return params, weights, conv_linear


def _onnx_tensors(artifact: Artifact) -> tuple[list[Any], list[Any]]:
    """(all numeric initializers but quantization scales/zero points, those of 2+ dimensions)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(artifact.file("onnx")))
    params = []
    for init in model.graph.initializer:
        name = init.name.lower()
        if len(init.dims) == 0 or "scale" in name or "zero_point" in name:
            continue
        arr = numpy_helper.to_array(init)
        if np.issubdtype(arr.dtype, np.number):
            params.append(arr)
    return params, [a for a in params if a.ndim >= 2]


def _zeros_share(tensors: list[Any]) -> float | None:
    import numpy as np

    total = sum(t.size for t in tensors)
    return None if not total else 1.0 - sum(int(np.count_nonzero(t)) for t in tensors) / total


def _tensors(artifact: Artifact) -> dict[str, dict[str, list[Any]]]:
    """Per format present: ``{"all": [...], "weights": [...], "conv+linear": [...] (torch only)}``."""
    out: dict[str, dict[str, list[Any]]] = {}
    if "torch" in artifact.formats:
        params, weights, conv_linear = _torch_tensors(artifact)
        out["torch"] = {"all": params, "weights": weights, "conv+linear": conv_linear}
    if "onnx" in artifact.formats:
        params, weights = _onnx_tensors(artifact)
        # In an exported graph conv and linear weights are the initializers of 2+ dimensions.
        out["onnx"] = {"all": params, "weights": weights, "conv+linear": weights}
    return out


def check_claims(artifact: Artifact, claims: dict) -> list[tuple[str, bool | None, str]]:
    """``(claim, ok, reason)`` for every claim; ``ok`` is ``None`` for claims that are not measured."""
    results: list[tuple[str, bool | None, str]] = []
    tensors = _tensors(artifact)
    for key, claimed in claims.items():
        if key in QUALIFIERS:
            continue
        if key not in MEASURED:
            results.append((key, None, f"{key}={claimed!r} is recorded, not measured"))
            continue
        if key == "sparsity" and claims.get("sparsity_scope", "weights") not in SCOPES:
            results.append((key, None, f"sparsity over {claims['sparsity_scope']!r} is recorded, not measured "
                                       f"(the check measures the scopes {', '.join(map(repr, SCOPES))})"))
            continue
        try:
            if key == "channel_sparsity" and claims.get("structured"):
                results.append((key, *_check_removed_channels(float(claimed), artifact)))
                continue
            results.append((key, *_check_one(key, claimed, claims, tensors)))
        except (TypeError, ValueError) as exc:
            results.append((key, False, f"{key}={claimed!r}: {exc}"))
    return results


def _check_one(key: str, claimed: Any, claims: dict, tensors: dict) -> tuple[bool, str]:

    measured = []
    bad = []
    if key == "sparsity":
        scope = claims.get("sparsity_scope", "weights")
        if scope not in SCOPES:
            return False, (f"unknown sparsity_scope {scope!r}; use one of {', '.join(map(repr, SCOPES))}")
        pick = {"weights": "weights", "conv+linear weights": "conv+linear", "all parameters": "all"}[scope]
        for fmt, t in tensors.items():
            share = _zeros_share(t[pick])
            if share is None:
                bad.append(f"{fmt}: no tensors in scope {scope!r}")
                continue
            measured.append(f"{fmt} {share:.4f}")
            if abs(share - float(claimed)) > SHARE_TOLERANCE:
                bad.append(f"{fmt}: measured {share:.4f} over {scope}, claimed {float(claimed):.4f} "
                           f"(tolerance {SHARE_TOLERANCE * 100:g} percentage points)")
        what = f"sparsity over {scope}"
    elif key == "channel_sparsity":
        if "torch" not in tensors:
            return True, "not measurable on an ONNX-only artifact (channel layout is ambiguous); not checked"
        rows = [(w.reshape(w.shape[0], -1) == 0).all(axis=1) for w in tensors["torch"]["conv+linear"]]
        total = sum(len(r) for r in rows)
        share = sum(int(r.sum()) for r in rows) / total if total else 0.0
        measured.append(f"torch {share:.4f}")
        if abs(share - float(claimed)) > SHARE_TOLERANCE:
            bad.append(f"torch: {share:.4f} of output channels are all zero, claimed {float(claimed):.4f}")
        what = "share of all-zero output channels"
    elif key in ("weight_bits", "max_levels_per_channel"):
        # A quantization group is a tensor, or one output channel when the claim says per-channel
        # (each channel has its own scale); clusters with their own scales multiply the levels.
        per_channel = str(claims.get("granularity", "")).startswith("per-channel")
        if key == "weight_bits":
            bits = int(claimed)
            limit = 2 ** bits * (int(claims.get("clusters", 1)) if per_channel else 1)
        else:
            per_channel, limit = True, int(claimed)
        group = "output channel" if per_channel else "weight tensor"
        for fmt, t in tensors.items():
            worst = max((_levels(w, per_channel) for w in t["weights"]), default=0)
            measured.append(f"{fmt} at most {worst} distinct values per {group}")
            if worst > limit:
                bad.append(f"{fmt}: a {group} holds {worst} distinct values, more than the {limit} claimed")
        what = f"{claimed}-bit weights" if key == "weight_bits" else f"at most {claimed} levels per channel"
    else:  # weight_dtype
        for fmt, t in tensors.items():
            dtypes = sorted({str(w.dtype) for w in t["weights"]})
            measured.append(f"{fmt} {'/'.join(dtypes)}")
            if dtypes != [str(claimed)]:
                bad.append(f"{fmt}: weight tensors are {'/'.join(dtypes)}, claimed {claimed}")
        what = "weight dtype"
    if bad:
        return False, "; ".join(bad)
    return True, f"{what}: {', '.join(measured)} (claimed {claimed!r})"


def _levels(w: Any, per_channel: bool) -> int:
    """Distinct values in ``w``, or the most in any one output channel. Exporters may store a Linear
    weight transposed, so a 2-D tensor counts by whichever axis holds the channels (the fewer levels)."""
    import numpy as np

    if not per_channel or w.ndim < 2:
        return len(np.unique(w))
    rows = max(len(np.unique(r)) for r in w.reshape(w.shape[0], -1))
    if w.ndim == 2:
        return min(rows, max(len(np.unique(c)) for c in w.T))
    return rows


def _check_removed_channels(claimed: float, artifact: Artifact) -> tuple[bool, str]:
    """Structured pruning removes channels: each pruned layer keeps max(1, floor(C x (1 - s))) of the
    reference model's C output channels (the artifact records C per layer); untouched layers keep C."""
    import math

    import torch

    reference = (artifact.manifest.get("analysis") or {}).get("reference_out_channels")
    if "torch" not in artifact.formats or not reference:
        return False, "structured claim, but the artifact lacks the torch module or the reference channel counts"
    layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    now = {name: int(m.weight.shape[0]) for name, m in artifact.load_torch().named_modules() if isinstance(m, layers)}
    pruned, bad = 0, []
    for name, before in reference.items():
        if name not in now or now[name] == before:
            continue
        expected = max(1, math.floor(before * (1 - claimed)))
        pruned += 1
        if now[name] != expected:
            bad.append(f"{name}: {now[name]} of {before} output channels kept, the rule keeps {expected}")
    if claimed > 0 and pruned == 0:
        bad.append("no layer lost an output channel")
    if bad:
        return False, "; ".join(bad)
    return True, f"{pruned} layer(s) shrunk to max(1, floor(C x (1 - {claimed}))) output channels of the reference"
