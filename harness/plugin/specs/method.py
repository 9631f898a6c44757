"""Compression methods: the spec, what ``apply`` is handed (:class:`ApplyContext`), how packed
tensors are recorded (:class:`WeightEncoding`) and the :class:`Artifact` a method's output becomes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.plugin.params import Param
from harness.plugin.specs.common import check_common, check_formats, must_be_callable
from harness.plugin.specs.data import Splits


@dataclass(frozen=True)
class ApplyContext:
    """Handed to :attr:`MethodSpec.apply`. Frozen: a field cannot be reassigned (``ctx.module = m`` raises
    :class:`dataclasses.FrozenInstanceError`): return the new module; what a field holds may change in place.

    :param module: the dense model (a private copy: change it in place or build a new one): a torch
        module, or, for a model that provides ``onnx`` (and methods that consume it), the
        :class:`pathlib.Path` of its ONNX file.
    :param params: validated method parameters (one grid point).
    :param seed: the cell's seed (the host seeds torch, numpy and random before ``apply``).
    :param splits: the dataset; use ``splits.calibration`` for calibration data.
    :param workdir: an empty folder for files the method writes.
    :param export_onnx: ``export_onnx(module, path)`` writes a single-file ONNX model with a dynamic
        batch dimension (and sequence dimension for token inputs), the same way the host exports
        every artifact.
    :param encodings: how the returned torch module's tensors are meant to be stored when that is
        not their dtype: a method whose float weights hold fake-quantized values (k-bit codes times a
        scale) records ``encodings["fc1.weight"] = WeightEncoding(bits=4, scales=120).as_dict()`` for
        each such parameter (named as in ``module.named_parameters()``). The host writes them to the
        artifact's manifest (``encodings``), and the size suite counts ``bits_per_weight`` and
        ``packed_bytes`` from them. Steps of a pipeline share one mapping.
    """

    module: Any
    params: Mapping[str, Any]
    seed: int
    splits: Splits
    workdir: Path
    input_shape: tuple[int, ...]
    export_onnx: Callable[[Any, Path], Path]
    encodings: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightEncoding:
    """How one tensor of a torch artifact is stored when packed, for the size suite.

    :param bits: bits of each element's code (a k-bit quantized weight: ``k``).
    :param index_bits: extra bits per element that select among several codebooks or scales
        (SplitQuant's cluster index: 2); 0 for plain quantization.
    :param scales: float32 scale factors stored with the tensor (one per output channel for
        per-channel quantization, per cluster and channel for SplitQuant).
    :param zero_points: integer zero points stored with the tensor, one byte each (0 when symmetric).

    Packed size: ``ceil(numel * (bits + index_bits) / 8) + 4 * scales + zero_points`` bytes. Sparse
    formats are not assumed: a zero costs as much as any other code.
    """

    bits: int
    index_bits: int = 0
    scales: int = 0
    zero_points: int = 0

    def packed_bytes(self, numel: int) -> int:
        """Bytes of a tensor of ``numel`` elements stored this way."""
        return -(-numel * (self.bits + self.index_bits) // 8) + 4 * self.scales + self.zero_points

    def as_dict(self) -> dict:
        """The JSON form recorded in ``ApplyContext.encodings`` and the manifest."""
        return {"bits": self.bits, "index_bits": self.index_bits, "scales": self.scales,
                "zero_points": self.zero_points}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WeightEncoding:
        """Read a recorded encoding back."""
        return cls(bits=int(d["bits"]), index_bits=int(d.get("index_bits", 0)), scales=int(d.get("scales", 0)),
                   zero_points=int(d.get("zero_points", 0)))


@dataclass(frozen=True)
class MethodSpec:
    """A compression method.

    :param apply: ``apply(ctx) -> torch.nn.Module | pathlib.Path``: the compressed model, either a
        torch module (the host saves it and exports it to ONNX) or the path of an ONNX file the
        method wrote under ``ctx.workdir``.
    :param consumes: the formats of dense model ``apply`` can work on: ``("torch",)`` (the default)
        for methods that need a torch module, ``("torch", "onnx")`` for methods that also take an
        ONNX file (``ctx.module`` is then a :class:`pathlib.Path`). The planner skips a model whose
        format the method does not consume, with the reason.
    :param produces: the artifact formats ``apply`` yields (``("torch", "onnx")`` for a torch module,
        ``("onnx",)`` for an ONNX file). The planner uses it to skip backends that cannot run the
        artifact before anything is built.
    :param claims: ``claims(params) -> dict``: what the method promises about its artifact, e.g.
        ``{"sparsity": 0.9, "sparsity_scope": "conv+linear weights"}`` or ``{"weight_bits": 8}``, for
        the soundness suite to check. The first-party methods use: ``sparsity`` (share of zeros) with
        ``sparsity_scope``; ``n_m`` (``"2:4"``); ``block_shape`` (zeros in whole tiles);
        ``channel_sparsity`` with ``channel_rule`` and ``structured`` (layers really shrank);
        ``weight_bits`` with ``weight_scope``, ``granularity``, ``symmetric`` and
        ``max_levels_per_channel``; ``weight_bits_mean_max`` (mixed precision: the per-tensor bits are in
        the artifact's ``encodings``); ``max_rank`` or ``retained_energy`` with ``rank_scope``.
    :param source: the paper or library the method follows.

    ``name``, ``params``, ``description`` and ``example`` are the fields every spec has
    (:mod:`harness.plugin.specs.common`).
    """

    name: str
    apply: Callable[[ApplyContext], Any]
    params: tuple[Param, ...] = ()
    produces: tuple[str, ...] = ("torch", "onnx")
    consumes: tuple[str, ...] = ("torch",)
    claims: Callable[[Mapping[str, Any]], dict] | None = None
    source: str = ""
    description: str = ""
    example: Callable[[Path], dict] | None = None

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        check_common(self)
        must_be_callable(self, "apply", "apply(ctx) -> torch.nn.Module | pathlib.Path")
        if self.claims is not None:
            must_be_callable(self, "claims", "claims(params) -> dict")
        check_formats(self, "produces", ": ('torch', 'onnx') when apply returns a torch module, ('onnx',) when "
                      "it returns the path of an ONNX file")
        check_formats(self, "consumes")


# --------------------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class Artifact:
    """A compressed model on disk, built once and shared by every backend and suite.

    :param path: its folder in the artifact cache.
    :param key: its content hash (model, weights, dataset, method, parameters, seed, plugin versions).
    :param manifest: ``artifact.json``: what built it, its claims, input shape, analysis figures.
    """

    path: Path
    key: str
    manifest: Mapping[str, Any]

    @property
    def formats(self) -> tuple[str, ...]:
        """The formats present: a subset of ``("torch", "onnx")``."""
        return tuple(self.manifest.get("formats", ()))

    def file(self, fmt: str) -> Path:
        """The file of one format (``module.pt`` or ``model.onnx``)."""
        if fmt not in self.formats:
            raise KeyError(f"artifact {self.key} has no {fmt!r} format (has {', '.join(self.formats)})")
        return self.path / {"torch": "module.pt", "onnx": "model.onnx"}[fmt]

    def load_torch(self) -> Any:
        """Load the torch module (in eval mode), running no code from the file (:mod:`harness.core.safeload`)."""
        from harness.core.safeload import load_module

        module = load_module(self.file("torch"), what=f"artifact {self.key}: module file",
                             instead="delete the folder and the harness builds the artifact again")
        return module.eval()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's input shape."""
        return tuple(self.manifest["input_shape"])

    @classmethod
    def open(cls, path: Path, *, verified: bool = False) -> Artifact:
        """Open a built artifact folder.

        Its files are checked against their recorded sha256 (``sha256.json``, written when a cache
        entry is published) when the folder has them, and must have them with ``verified=True``;
        a mismatch raises :class:`harness.core.files.CorruptEntry` naming the file.
        """
        from harness.core.files import HASHES, CorruptEntry, check_entry

        if verified or (path / HASHES).is_file():
            why = check_entry(path)
            if why is not None:
                raise CorruptEntry(f"artifact {path.name} is corrupt ({why}): delete the folder {path} and the "
                                   "harness builds it again")
        manifest = json.loads((path / "artifact.json").read_text())
        return cls(path=path, key=manifest["key"], manifest=manifest)
