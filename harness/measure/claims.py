"""Checking a method's claims against its artifact: the soundness suite's first question, and the
claims clauses of ``harness check-plugin`` (one checker serves both).

A method declares claims (``MethodSpec.claims``, stored in the artifact's manifest); each is
measured on every format of the artifact (the torch module, and the ONNX file as backends run it):

- ``sparsity``: share of zeros within ``sparsity_scope`` (``weights``: tensors of two or more
  dimensions, the default; ``conv+linear weights``; ``all parameters``; N:M's "conv+linear weights
  whose input size ... is a multiple of m"), within 0.5 percentage points, or half a weight per
  layer where layers are too small to round that close.
- ``layer_sparsity``: a number (every layer in scope) or ``{layer: sparsity}``, per layer.
- ``channel_sparsity``: share of output channels entirely zero over the conv and linear layers;
  with ``structured: true``, the share of each layer's output channels *removed* against the dense
  model (the last layer, the classifier, is kept whole).
- ``n_m`` (``"2:4"``): at most n non-zeros in every group of m consecutive inputs of an output, in
  every conv and linear layer whose input size is a multiple of m.
- ``block_shape`` (``[rows, cols]``): zeros come in whole tiles of the ``(out, in x kh x kw)`` matrix.
- ``comparison_group: "output row"``: every output row of a layer prunes as many weights (to one).
- ``weight_bits``: at most ``2 ** bits`` distinct values (``max_levels_per_channel`` if given) per
  quantization group: each output channel (``granularity`` ``per-channel``, the default),
  ``per-tensor``, or a ``quantization_group`` size. With ``symmetric: true`` the values must lie
  on a grid symmetric about zero of ``2 ** (bits - 1) - 1`` levels a side. ``weight_scope: "quantized
  weights"``: only weights stored quantized count (``MatMulNBits`` codes, unpacked). ONNX artifacts are read
  through their quantized initializers (the weight inputs of ``ConvInteger``, ``MatMulInteger``,
  ``QLinear*`` and ``DequantizeLinear``, zero points honoured).
- ``weight_bits_mean_max``: the weight-weighted mean of each tensor's bits (log2 of its most
  distinct values in a channel, rounded up) is at most the claim (each in ``weight_bits_choices``).
- ``weight_dtype``: the element type of the ONNX file's quantized weights.
- ``max_rank``: every factored layer (two conv or linear layers in a row with nothing between)
  has an inner width of at most the claim.
- ``max_bond_dimension``, ``tt_layer_params``: tensor-train layers, :mod:`harness.measure.tensor_trains`.
- ``activation_bits`` and ``format: "QDQ"``: the ONNX graph quantizes activations with
  ``QuantizeLinear`` to that many bits, in QuantizeLinear/DequantizeLinear pairs.

Keys that qualify another claim (:data:`QUALIFIERS`) are read with it. Any other key is reported
as *unchecked*: never silently passed. The weights are read by :mod:`harness.measure.weights`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.measure import tensor_trains
from harness.measure.weights import OnnxReader, Reader, Tensor, TorchReader, on_symmetric_grid, quantization_groups

#: How far a measured share may be from a claimed one: 0.5 percentage points.
SHARE_TOLERANCE = 0.005
SCOPES = ("weights", "conv+linear weights", "all parameters")
DEFAULT_SCOPE = "weights"
#: The scope N:M methods state (the layers the pattern fits).
NM_SCOPE_PREFIX = "conv+linear weights whose input size"
#: ``weight_scope`` of methods quantizing some layers only (MatMulNBits leaves convs float).
QUANTIZED_SCOPE = "quantized weights"
#: Keys that qualify a claim rather than make one.
QUALIFIERS = ("sparsity_scope", "weight_scope", "granularity", "quantization_group", "symmetric",
              "max_levels_per_channel", "weight_bits_choices", "weight_bits_per_tensor", "rank_scope",
              "block_layout", "channel_rule", "structured", "tt_cores", "bond_scope")
MEASURED = ("sparsity", "layer_sparsity", "channel_sparsity", "n_m", "block_shape", "comparison_group",
            "weight_bits", "weight_bits_mean_max", "weight_dtype", "max_rank", "activation_bits", "format",
            *tensor_trains.CLAIMS)


@dataclass
class Check:
    """One claim measured on one format (and one layer, for per-layer claims)."""

    claim: str
    format: str
    claimed: Any
    measured: Any
    ok: bool
    detail: str = ""
    tolerance: float | None = None

    def as_dict(self) -> dict:
        """JSON-able form."""
        return {"claim": self.claim, "format": self.format, "claimed": self.claimed, "measured": self.measured,
                "ok": self.ok, "detail": self.detail, "tolerance": self.tolerance}


@dataclass
class Report:
    """Every claim's checks, and the claims that could not be checked (with why)."""

    checks: list[Check] = field(default_factory=list)
    unchecked: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """All checked claims hold."""
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]

    def of(self, key: str) -> list[Check]:
        """The checks of claim ``key`` (and its per-layer checks)."""
        return [c for c in self.checks if c.claim == key or c.claim.startswith(f"{key}[")]


# ------------------------------------------------------------------ measuring


def _zeros(t: Tensor) -> int:
    import numpy as np

    return int(np.count_nonzero(np.asarray(t.values) == t.zero))


def _size(t: Tensor) -> int:
    import numpy as np

    return int(np.asarray(t.values).size)


def _scoped(tensors: list[Tensor], scope: str, claims: dict) -> list[Tensor] | None:
    """The tensors a scope names; ``None`` for a scope this checker does not know."""
    if scope == "conv+linear weights":
        return [t for t in tensors if t.kind == "conv+linear"]
    if scope == "weights":
        return [t for t in tensors if t.kind != "bias"]
    if scope == "all parameters":
        return list(tensors)
    if scope.startswith(NM_SCOPE_PREFIX) and "n_m" in claims:
        m = int(str(claims["n_m"]).split(":")[1])
        return [t for t in tensors if t.kind == "conv+linear" and t.matrix().shape[1] % m == 0]
    return None


def _share_tolerance(layers: int, count: int) -> float:
    """0.5 points, or half a unit per layer where that many layers cannot round closer."""
    return max(SHARE_TOLERANCE, 0.5 * layers / count) if count else SHARE_TOLERANCE


class _Checker:
    """Measures one format's tensors against the claims."""

    def __init__(self, reader: Reader, claims: dict, report: Report, reference_channels: dict | None):
        self.reader = reader
        self.fmt = reader.format
        self.claims = claims
        self.report = report
        self.reference = reference_channels
        self.all = reader.tensors()

    def add(self, claim: str, claimed: Any, measured: Any, ok: bool, detail: str,
            tolerance: float | None = None) -> None:
        self.report.checks.append(Check(claim, self.fmt, claimed, measured, bool(ok), detail, tolerance))

    def scope(self, key: str, default: str = DEFAULT_SCOPE) -> tuple[str, list[Tensor] | None]:
        scope = str(self.claims.get(key, default))
        return scope, _scoped(self.all, scope, self.claims)

    def sparsity(self, claimed: float) -> None:
        scope, tensors = self.scope("sparsity_scope")
        if tensors is None:
            self.report.unchecked["sparsity"] = f"unknown sparsity_scope {scope!r} (known: {', '.join(SCOPES)})"
            return
        total = sum(_size(t) for t in tensors)
        if not total:
            self.add("sparsity", claimed, None, False, f"no tensors in scope {scope!r}")
            return
        measured = sum(_zeros(t) for t in tensors) / total
        tol = _share_tolerance(len(tensors), total)
        self.add("sparsity", claimed, round(measured, 6), abs(measured - float(claimed)) <= tol, f"over {scope}", tol)

    def layer_sparsity(self, claimed: Any) -> None:
        _, tensors = self.scope("sparsity_scope", "conv+linear weights")
        for t in tensors or []:
            want = claimed.get(t.layer) if isinstance(claimed, dict) else claimed
            if want is None:
                continue
            measured = _zeros(t) / _size(t)
            tol = _share_tolerance(1, _size(t))
            self.add(f"layer_sparsity[{t.layer}]", want, round(measured, 6), abs(measured - float(want)) <= tol,
                     f"of layer {t.layer}", tol)

    def channel_sparsity(self, claimed: float) -> None:
        import numpy as np

        if self.claims.get("structured"):
            now = self.reader.output_channels()
            if now is None or not self.reference:
                return  # removed channels are counted on the torch module against the dense model
            layers = [n for n in self.reference if n in now][:-1]  # the classifier keeps all
            bad = [f"{n} kept {now[n]} of {self.reference[n]}" for n in layers
                   if abs((1 - now[n] / self.reference[n]) - float(claimed)) > max(SHARE_TOLERANCE,
                                                                                1.0 / self.reference[n])]
            removed = sum(self.reference[n] - now[n] for n in layers)
            total = sum(self.reference[n] for n in layers)
            measured = removed / total if total else 0.0
            self.add("channel_sparsity", claimed, round(measured, 6), bool(layers) and not bad,
                     "channels removed against the dense model, per layer but the classifier"
                     + (f"; {'; '.join(bad[:3])}" if bad else ""))
            return
        tensors = [t for t in self.all if t.kind == "conv+linear"]
        rows = [t.matrix() for t in tensors]
        counts = [len(r) for r in rows]
        zero_rows = sum(int(np.all(r == t.zero, axis=1).sum()) for r, t in zip(rows, tensors))
        measured = zero_rows / sum(counts) if sum(counts) else 0.0
        tol = _share_tolerance(len(tensors), sum(counts))
        self.add("channel_sparsity", claimed, round(measured, 6), abs(measured - float(claimed)) <= tol,
                 "all-zero output channels of conv and linear layers", tol)

    def n_m(self, claimed: str) -> None:
        n, m = (int(v) for v in str(claimed).split(":"))
        fits = [t for t in self.all if t.kind == "conv+linear" and t.matrix().shape[1] % m == 0]
        worst, where = 0, ""
        for t in fits:
            groups = (t.matrix() != t.zero).reshape(t.matrix().shape[0], -1, m).sum(axis=2)
            if groups.size and int(groups.max()) > worst:
                worst, where = int(groups.max()), t.layer
        self.add("n_m", claimed, f"at most {worst} of {m}" if fits else None, bool(fits) and worst <= n,
                 f"{len(fits)} layers fit; most non-zeros in a group of {m}: {worst}"
                 + (f" (layer {where})" if where else ""))

    def comparison_group(self, claimed: str) -> None:
        if claimed != "output row":
            self.report.unchecked["comparison_group"] = f"comparison_group={claimed!r}: only 'output row' is measured"
            return
        import numpy as np

        worst, where = 0, ""
        for t in (t for t in self.all if t.kind == "conv+linear"):
            zeros = (t.matrix() == t.zero).sum(axis=1)
            if int(np.ptp(zeros)) > worst:
                worst, where = int(np.ptp(zeros)), t.layer
        self.add("comparison_group", claimed, f"rows differ by up to {worst} zeros", worst <= 1,
                 "every output row of a layer prunes the same share (to one weight)"
                 + (f"; layer {where}" if worst > 1 else ""))

    def block_shape(self, claimed: Any) -> None:
        br, bc = (int(v) for v in claimed)
        partial, tiles = [], 0
        for t in (t for t in self.all if t.kind == "conv+linear"):
            mat = t.matrix() == t.zero
            rows, cols = mat.shape
            for r in range(0, rows, br):
                for c in range(0, cols, bc):
                    tile = mat[r:r + br, c:c + bc]
                    tiles += 1
                    if tile.any() and not tile.all():
                        partial.append(t.layer)
        self.add("block_shape", claimed, f"{len(partial)} of {tiles} tiles partly zero", not partial,
                 "zeros in whole tiles of (out, in x kh x kw)" + (f"; first in layer {partial[0]}" if partial else ""))

    def weight_bits(self, claimed: int) -> None:
        import numpy as np

        bits = int(claimed)
        granularity = self.claims.get("quantization_group", self.claims.get("granularity", "per-channel"))
        limit = int(self.claims.get("max_levels_per_channel", 2 ** bits))
        tensors = [t for t in self.all if t.kind == "conv+linear"]
        if self.claims.get("weight_scope") == QUANTIZED_SCOPE:
            tensors = [t for t in tensors if t.quantized]
        worst, where = 0, ""
        for t in tensors:
            most = max(len(np.unique(g)) for g in quantization_groups(t, granularity))
            if most > worst:
                worst, where = most, t.layer
        ok, detail = worst <= limit, f"more than 2**{bits} = {limit}" if limit == 2 ** bits else \
            f"more than {limit} levels"
        if ok and self.claims.get("symmetric") is True:
            for t in tensors:
                sym_ok, why = on_symmetric_grid(t, bits, granularity)
                if not sym_ok:
                    ok, detail = False, why
                    break
        self.add("weight_bits", claimed, worst, ok and bool(tensors),
                 f"at most {worst} distinct values per {granularity} group (layer {where})"
                 + ("" if ok else f": {detail}"))

    def weight_bits_mean_max(self, claimed: float) -> None:
        import numpy as np

        tensors = [t for t in self.all if t.kind == "conv+linear"]
        choices = self.claims.get("weight_bits_choices")
        per, off = [], []
        for t in tensors:
            most = max(len(np.unique(row)) for row in t.matrix())
            b = max(1, math.ceil(math.log2(most))) if most > 1 else 1
            per.append((b, _size(t)))
            if choices and b > max(choices):
                off.append(f"{t.layer}: {b} bits")
        total = sum(s for _, s in per)
        mean = sum(b * s for b, s in per) / total if total else 0.0
        self.add("weight_bits_mean_max", claimed, round(mean, 4), bool(total) and mean <= float(claimed) + 1e-9
                 and not off, "weight-weighted mean of each tensor's bits (log2 of its most distinct values in a "
                              "channel, rounded up)" + (f"; above the choices: {', '.join(off[:3])}" if off else ""))

    def weight_dtype(self, claimed: str) -> None:
        if self.fmt != "onnx":
            return  # element types are the ONNX file's; a torch module holds floats
        tensors = [t for t in self.all if t.kind == "conv+linear"]
        if self.claims.get("weight_scope") == QUANTIZED_SCOPE:
            tensors = [t for t in tensors if t.quantized]
        dtypes = sorted({str(t.values.dtype) for t in tensors})
        quantized = sum(t.quantized for t in tensors)
        self.add("weight_dtype", claimed, "/".join(dtypes), dtypes == [str(claimed)],
                 f"{quantized} of {len(tensors)} conv and linear weights quantized")

    def max_rank(self, claimed: int) -> None:
        pairs = self.reader.factored_pairs()
        if pairs is None:
            return  # factored layers are told apart on the torch module
        bad = [f"{n} has rank {w}" for n, w in pairs if w > int(claimed)]
        self.add("max_rank", claimed, max((w for _, w in pairs), default=None), bool(pairs) and not bad,
                 f"{len(pairs)} factored layers" + (f"; {'; '.join(bad[:3])}" if bad else "")
                 + ("" if pairs else ": none found (two conv or linear layers in a row)"))

    def tensor_trains(self, key: str, claimed: Any) -> None:
        layers = self.reader.tensor_trains()
        for check in tensor_trains.checks(layers, key, claimed) if layers is not None else ():
            self.add(*check)

    def activations(self, key: str, claimed: Any) -> None:
        graph = self.reader.graph()
        if graph is None:
            return
        from onnx import TensorProto

        inits = {i.name: i for i in graph.initializer}
        quants = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
        deq = sum(n.op_type == "DequantizeLinear" for n in graph.node)
        if key == "format":
            ok = str(claimed).upper() != "QDQ" or (bool(quants) and deq >= len(quants))
            self.add("format", claimed, f"{len(quants)} QuantizeLinear, {deq} DequantizeLinear", ok,
                     "activations quantized in QuantizeLinear/DequantizeLinear pairs")
            return
        eight = {TensorProto.INT8, TensorProto.UINT8}
        types = {inits[n.input[2]].data_type for n in quants if len(n.input) > 2 and n.input[2] in inits}
        ok = bool(quants) and (int(claimed) != 8 or (bool(types) and types <= eight))
        self.add("activation_bits", claimed, f"{len(quants)} activations quantized", ok,
                 "QuantizeLinear on activations, 8-bit zero points")


def check_claims(claims: dict, readers: list[Reader], reference_channels: dict | None = None) -> Report:
    """Check ``claims`` on every format's ``readers``."""
    report = Report()
    for key, claimed in claims.items():
        if key in QUALIFIERS and not (key == "structured" and "channel_sparsity" not in claims):
            continue
        if key not in MEASURED:
            report.unchecked[key] = f"{key}={claimed!r}: no check for this claim; recorded, not measured"
    for reader in readers:
        checker = _Checker(reader, claims, report, reference_channels)
        for key, claimed in claims.items():
            if key not in MEASURED:
                continue
            try:
                by_key = {"activation_bits": checker.activations, "format": checker.activations,
                          **dict.fromkeys(tensor_trains.CLAIMS, checker.tensor_trains)}
                by_key[key](key, claimed) if key in by_key else getattr(checker, key)(claimed)
            except (TypeError, ValueError) as exc:
                report.checks.append(Check(key, reader.format, claimed, None, False, f"cannot read the claim: {exc}"))
    for key in MEASURED:
        if key in claims and not report.of(key) and key not in report.unchecked:
            torch_only = "factored layers are told apart on a torch module; the artifact has none"
            report.unchecked[key] = {"weight_dtype": "element types are read from an ONNX file; the artifact has none",
                                     "max_rank": torch_only, **dict.fromkeys(tensor_trains.CLAIMS, torch_only),
                                     }.get(key, "the artifact's formats do not show it (activations are quantized "
                                                "in an ONNX graph)")
    return report


def check_artifact(artifact: Any) -> Report:
    """Check the claims in an artifact's manifest on each of its formats."""
    claims = dict(artifact.manifest.get("claims") or {})
    readers: list[Reader] = []
    if "torch" in artifact.formats:
        readers.append(TorchReader(artifact.load_torch()))
    if "onnx" in artifact.formats:
        readers.append(OnnxReader(artifact.file("onnx")))
    reference = (artifact.manifest.get("analysis") or {}).get("reference_out_channels")
    return check_claims(claims, readers, reference)
