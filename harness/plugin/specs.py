"""What plugins register (the ``*Spec`` classes) and what the host hands them.

The spec classes are plain frozen dataclasses: a plugin builds one and passes it
to the ``register`` callable of a ``harness_register_*`` hook. Callables in a
spec run later, inside an isolated worker process, so that is where heavy
imports belong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.core.errors import UsageError
from harness.plugin.params import Param

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

    from harness.plugin.timingplan import TimingPlan, TimingResult

#: Names of plugins' things: lower-case words joined by ``-``, ``_`` or digits.
NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")

#: Artifact formats the host knows how to store.
FORMATS = ("torch", "onnx")


class SpecError(UsageError, ValueError):
    """A spec is malformed (raised at registration, with the plugin's name)."""


def suggest_name(name: Any) -> str:
    """A valid name close to ``name`` (``"Bad Name"`` -> ``"bad-name"``), for error messages."""
    text = re.sub(r"[^a-z0-9_.-]+", "-", str(name).strip().lower()).strip("-")
    text = re.sub(r"^[^a-z]+", "", text)
    return text or "my-thing"


def must_be_callable(spec: Any, attr: str, signature: str) -> None:
    """Raise :class:`SpecError` unless ``spec.<attr>`` is callable, saying how to pass it."""
    value = getattr(spec, attr)
    if not callable(value):
        raise SpecError(f"{spec.name}: {attr} must be callable, got {value!r}: pass the function object, not "
                        f"its name or its result; the host calls it as {signature}")


def _check_common(spec: Any) -> None:
    if not isinstance(spec.name, str) or not NAME_RE.match(spec.name):
        raise SpecError(f"name {spec.name!r} must match {NAME_RE.pattern}: lower-case letters, digits, '-', '_' "
                        f"or '.', starting with a letter (e.g. {suggest_name(spec.name)!r})")
    for p in spec.params:
        if not isinstance(p, Param):
            raise SpecError(f"{spec.name}: params must be harness.api.Param objects, got {p!r}: declare each "
                            "parameter as Param('name', float, default=..., min=..., max=..., help='...')")
    names = [p.name for p in spec.params]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SpecError(f"{spec.name}: duplicate parameter names {names}: declare {', '.join(dup)} once")
    example = getattr(spec, "example", None)
    if example is not None and not callable(example):
        raise SpecError(f"{spec.name}: example must be a function example(workdir) -> dict, got {example!r}")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Split:
    """One split of a dataset: inputs ``x`` and labels ``y`` (int64, ``(N,)``, or ``None``).

    ``x`` is one float32 array ``(N, *input_shape)`` (images, features), or a dict of named arrays
    sharing the batch dimension, passed to the model by name and in order: integer token ids
    ``{"input_ids": (N, T) int64, "attention_mask": (N, T) int64}`` for transformers. ``y`` is
    ``None`` where the task needs no labels (language modelling scores next tokens of ``x``;
    embeddings are compared with the dense model's).
    """

    x: np.ndarray | Mapping[str, np.ndarray]
    y: np.ndarray | None

    def __len__(self) -> int:
        from harness.core.inputs import batch_len

        return batch_len(self.x)


@dataclass(frozen=True)
class Splits:
    """A loaded dataset: train, calibration and test splits.

    :param input_shape: shape of one sample, without the batch dimension (of the first input,
        for named inputs: ``(T,)`` for token ids).
    :param num_classes: number of classes for classification, else ``None``.
    :param labelled: ``False`` for inputs without meaningful labels (latency-only data);
        the accuracy suite skips such datasets and models are not trained on them.
    :param fingerprint: a content hash of the data, part of every cache key built from it.
    """

    train: Split
    calibration: Split
    test: Split
    input_shape: tuple[int, ...]
    num_classes: int | None
    labelled: bool = True
    fingerprint: str = ""


@dataclass(frozen=True)
class DatasetContext:
    """Handed to :attr:`DatasetSpec.load`: the validated parameters and a cache folder."""

    params: Mapping[str, Any]
    cache_dir: Path


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset. ``load(ctx) -> Splits`` must be deterministic: the same splits every call.

    :param task: what the accuracy suite scores, one of :data:`TASKS`: ``"classification"`` (top1,
        and top5 above 5 classes, from the model's logits), ``"language-modelling"`` (perplexity of
        the next tokens of ``x["input_ids"]`` from the model's ``(N, T, vocab)`` logits) or
        ``"embedding"`` (fidelity and neighbour retrieval of the model's ``(N, D)`` embeddings
        against the dense model's on the same backend).
    :param metric: the headline metric of the task (``"top1"``, ``"perplexity"``, ``"fidelity"``).
    :param example: ``example(workdir) -> dict``: parameter values ``harness check-plugin`` runs the
        contract with; it may write files under ``workdir`` (an image folder, a weights file). Needed
        only when a required parameter has no default the check can guess (a path, a free string).
    """

    name: str
    load: Callable[[DatasetContext], Splits]
    task: str = "classification"
    metric: str = "top1"
    params: tuple[Param, ...] = ()
    description: str = ""
    example: Callable[[Path], dict] | None = None

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        _check_common(self)
        must_be_callable(self, "load", "load(ctx) -> Splits")
        if self.task not in TASKS:
            raise SpecError(f"{self.name}: task must be one of {TASKS}, got {self.task!r}")


#: The tasks the accuracy suite knows how to score.
TASKS = ("classification", "language-modelling", "embedding")


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelContext:
    """Handed to :attr:`ModelSpec.build` and :attr:`ModelSpec.train`.

    :param params: validated model parameters (``weights`` is handled by the host).
    :param input_shape: one sample's shape, from the dataset.
    :param num_classes: output size, from the dataset.
    :param seed: the cell's seed (the host seeds torch before ``build``).
    :param splits: the dataset, for ``train``.
    """

    params: Mapping[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int | None
    seed: int
    splits: Splits | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model architecture and where its weights come from.

    :param build: ``build(ctx) -> torch.nn.Module``, the architecture with a seeded initialisation.
    :param train: ``train(module, ctx) -> None``, the reference training recipe, run on the dataset's
        train split when no weights file is given. The host caches the trained weights by content
        hash (model, plugin version, dataset fingerprint, seed, parameters), so it runs once.
        ``None`` keeps the seeded initialisation.
    :param weights: one line on where the reference weights come from, for listings.
    :param example: ``example(workdir) -> dict``: parameter values ``harness check-plugin`` runs the
        contract with; it may write files under ``workdir`` (an image folder, a weights file). Needed
        only when a required parameter has no default the check can guess (a path, a free string).
    :param pretrained: ``pretrained(ctx) -> dict`` for a model whose ``build`` loads pretrained weights
        (a local Hugging Face folder): where they come from, with a ``sha256`` of their content, which
        keys the artifact cache instead of the seed.
    :param provides: the format of the dense model ``build`` returns: ``("torch",)`` for a torch
        module, ``("onnx",)`` for the path of an ONNX file (a model that never was a torch module).
        Methods that consume neither are skipped by the planner with the reason.

    Every model also takes the host-handled parameter ``weights``: the path of a ``state_dict``
    file saved with ``torch.save``, loaded instead of training.
    """

    name: str
    build: Callable[[ModelContext], Any]
    train: Callable[[Any, ModelContext], None] | None = None
    task: str = "classification"
    params: tuple[Param, ...] = ()
    weights: str = "seeded initialisation"
    provides: tuple[str, ...] = ("torch",)
    pretrained: Callable[[ModelContext], dict] | None = None
    description: str = ""
    example: Callable[[Path], dict] | None = None

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        _check_common(self)
        bad = [f for f in self.provides if f not in FORMATS]
        if len(self.provides) != 1 or bad:
            raise SpecError(f"{self.name}: provides must name one format among {FORMATS}, got {self.provides}")
        if any(p.name == "weights" for p in self.params):
            raise SpecError(f"{self.name}: 'weights' is a host parameter of every model; do not declare it "
                            "(the host loads a state_dict file given as weights = \"file.pt\" for you)")
        must_be_callable(self, "build", "build(ctx) -> torch.nn.Module")
        if self.train is not None:
            must_be_callable(self, "train", "train(module, ctx) -> dict | None")


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class ApplyContext:
    """Handed to :attr:`MethodSpec.apply`.

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
    :param example: ``example(workdir) -> dict``: parameter values ``harness check-plugin`` runs the
        contract with; it may write files under ``workdir`` (an image folder, a weights file). Needed
        only when a required parameter has no default the check can guess (a path, a free string).
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
        _check_common(self)
        must_be_callable(self, "apply", "apply(ctx) -> torch.nn.Module | pathlib.Path")
        if self.claims is not None:
            must_be_callable(self, "claims", "claims(params) -> dict")
        bad = [f for f in self.produces if f not in FORMATS]
        if not self.produces or bad or isinstance(self.produces, str):
            raise SpecError(f"{self.name}: produces must name formats among {FORMATS}, got {self.produces!r}: "
                            "('torch', 'onnx') when apply returns a torch module, ('onnx',) when it returns "
                            "the path of an ONNX file")
        bad = [f for f in self.consumes if f not in FORMATS]
        if not self.consumes or bad or isinstance(self.consumes, str):
            raise SpecError(f"{self.name}: consumes must name formats among {FORMATS}, got {self.consumes!r}")


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
        """Load the torch module (in eval mode)."""
        import torch

        module = torch.load(self.file("torch"), weights_only=False, map_location="cpu")
        return module.eval()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's input shape."""
        return tuple(self.manifest["input_shape"])

    @classmethod
    def open(cls, path: Path) -> Artifact:
        """Open a built artifact folder."""
        manifest = json.loads((path / "artifact.json").read_text())
        return cls(path=path, key=manifest["key"], manifest=manifest)


# --------------------------------------------------------------------------- backends


class Session(Protocol):
    """An inference session of a backend on one artifact.

    ``info`` records how it runs (runtime and version, threads, provider, timing method); it is
    stored with every measurement the session produces.
    """

    info: dict

    def run(self, x: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        """Outputs (the model's first output) for one batch of inputs: an array, or a dict of named
        arrays (see :class:`Split`); numpy in, numpy out."""

    def time(self, batches: Sequence[Any], plan: TimingPlan) -> TimingResult:
        """Time inference inside the runtime, rotating among ``batches``; follow ``plan``."""

    def timed_outputs(self, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Optional (MLPerf's TEST01 audit): the outputs of the *timing path* on each of ``batches``.

        Run each batch once through exactly the call :meth:`time` times (the bound call of an
        in-process session, the runner's timed ``session.run``, the replayed CUDA graph) and return
        what it produced. The soundness suite compares them with :meth:`run`'s outputs; a session
        without this method is recorded as not auditable.
        """

    def close(self) -> None:
        """Release the runtime's resources."""


@dataclass(frozen=True)
class BackendSpec:
    """A hardware backend: a runtime that executes artifacts and owns its timing loop.

    :param session: ``session(artifact, params) -> Session``.
    :param accepts: the artifact formats it runs, in order of preference.
    :param available: ``available() -> (ok, reason)``; a backend that is not available turns its
        cells into ``skipped`` records carrying the reason.
    :param fingerprint: ``fingerprint(params) -> dict``: the device and runtime as measured
        (stored with every result).
    :param setup: ``setup(cache_dir) -> str``: prepare what the backend needs (an npm package, an
        emulated root), idempotently; ``harness setup NAME`` calls it and prints the message.
    :param resources: ``resources(params) -> dict``: the Ray resources a cell on this backend needs
        (``{"GPU": 1}``, a custom ``{"wasm": 1}``); the ray executor schedules it only on nodes that
        offer them.
    :param example: ``example(workdir) -> dict``: parameter values ``harness check-plugin`` runs the
        contract with; it may write files under ``workdir`` (an image folder, a weights file). Needed
        only when a required parameter has no default the check can guess (a path, a free string).
    :param node_resources: ``node_resources(cache_dir) -> dict``: the custom Ray resources this machine
        offers the backend's cells (``arm``: ``{"arm_qemu": 1}`` once its emulated root is prepared under
        ``cache_dir``); added to the resources of the local Ray instance the harness starts. ``None``:
        nothing beyond what Ray and the harness find themselves.
    """

    name: str
    session: Callable[[Artifact, Mapping[str, Any]], Session]
    accepts: tuple[str, ...] = ("onnx",)
    params: tuple[Param, ...] = ()
    available: Callable[[], tuple[bool, str]] = field(default=lambda: (True, ""))
    fingerprint: Callable[[Mapping[str, Any]], dict] = field(default=lambda params: {})
    setup: Callable[[Path], str] | None = None
    resources: Callable[[Mapping[str, Any]], dict] = field(default=lambda params: {})
    description: str = ""
    example: Callable[[Path], dict] | None = None
    node_resources: Callable[[Path], dict] | None = None

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        _check_common(self)
        bad = [f for f in self.accepts if f not in FORMATS]
        if not self.accepts or bad or isinstance(self.accepts, str):
            raise SpecError(f"{self.name}: accepts must name formats among {FORMATS}, got {self.accepts!r}: "
                            "('onnx',) for a runtime of ONNX files, ('torch',) for torch modules, both in "
                            "order of preference")
        must_be_callable(self, "session", "session(artifact, params) -> Session")
        must_be_callable(self, "available", "available() -> (bool, str)")
        must_be_callable(self, "fingerprint", "fingerprint(params) -> dict")


# --------------------------------------------------------------------------- suites


@dataclass(frozen=True)
class MetricSpec:
    """A metric a suite produces: its unit, whether higher is better, and what it means."""

    name: str
    unit: str
    higher_is_better: bool | None
    description: str


@dataclass
class Measurement:
    """One measured value: a row of the leaderboard's long table.

    :param params: what else identifies it inside its cell (``{"batch_size": 1}``).
    :param stats: statistics behind the value (n, ci, cv, ...).
    :param samples: raw samples (latency: milliseconds per batch), stored beside it.
    :param info: how it was measured (backend session info, timing method, threads, batch).
    :param flag: why this result failed a gate (``"quality gate: top1 retained 0.95 < 0.99"``), or
        ``None``. A flagged measurement flags its whole leaderboard row: the row is shown with the
        reason but never ranked and never on a Pareto frontier. Suites that check results (the
        accuracy suite's quality gate, the soundness suite) set it.
    """

    metric: str
    value: float | None
    unit: str
    params: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    samples: list[float] | None = None
    info: dict = field(default_factory=dict)
    flag: str | None = None


@dataclass(frozen=True)
class CellContext:
    """Everything a suite needs to measure one cell; handed to :attr:`SuiteSpec.run`.

    :param cell: the cell's identity (model, dataset, method, backend, their parameters, seed).
    :param artifact: the compressed model.
    :param splits: the dataset.
    :param settings: this suite's validated settings from the suite file.
    :param open_session: ``open_session() -> Session`` on the cell's backend (``None`` for suites
        that are not per backend).
    :param baseline: ``baseline(metric, **params) -> float | None``: the value the same cell measured
        with the ``dense`` method in this run (``None`` when there is none).
    :param backend_name: the backend's name, or ``None``.
    :param is_baseline: this cell *is* the dense baseline (compare it with itself).
    :param time_in_processes: ``time_in_processes(batches, plan, processes) -> list[TimingResult]``:
        time the cell's backend in that many fresh processes, one after another (pyperf's worker
        processes), each opening its own session; ``None`` for suites that are not per backend.
    :param task: the dataset's task (:data:`TASKS`).
    :param open_dense_session: ``open_dense_session() -> Session`` on the same backend for the
        ``dense`` artifact of the same model, data and seed (built or taken from the cache), for
        metrics that compare outputs with the dense model's (embedding fidelity); ``None`` for
        suites that are not per backend.
    :param verifier_name: the cell's verifier, for suites with ``per_verifier`` (else ``None``).
    :param verify: ``verify(onnx_path, vnnlib_path, timeout_s) -> harness.verify.verdicts.Verdict``:
        run the cell's verifier on one instance, in its own process (``None`` without a verifier).
    :param benchmark: for suites with ``on_benchmark``: the verification benchmark
        (:class:`harness.verify.benchmarks.Benchmark`); ``artifact`` and ``splits`` are then ``None``.
    :param workdir: a folder private to this cell for files the suite writes (VNN-LIB properties).
    """

    cell: Mapping[str, Any]
    artifact: Artifact | None
    splits: Splits | None
    settings: Mapping[str, Any]
    open_session: Callable[[], Session] | None
    baseline: Callable[..., float | None]
    backend_name: str | None = None
    is_baseline: bool = False
    time_in_processes: Callable[..., list] | None = None
    task: str = "classification"
    open_dense_session: Callable[[], Session] | None = None
    verifier_name: str | None = None
    verify: Callable[..., Any] | None = None
    benchmark: Any = None
    workdir: Path | None = None


@dataclass(frozen=True)
class SuiteSpec:
    """A suite: turns one cell into measurements.

    :param run: ``run(ctx: CellContext) -> list[Measurement]``.
    :param settings: the parameters of its ``[settings.<name>]`` table in a suite file.
    :param per_backend: ``False`` for suites whose result does not depend on the backend (size);
        they run once per artifact.
    :param needs_baseline: the planner adds the ``dense`` cells it compares against when a suite
        file leaves them out.
    :param per_verifier: the suite runs once per verifier of its ``[[matrix]]`` table's ``verifiers``
        (instead of per backend); the leaderboard's ``backend`` column then names the verifier.
    :param on_benchmark: the suite runs on the verification benchmarks of ``[[verification]]``
        tables (once per benchmark, method, seed and verifier), not on a model and dataset.
    :param metrics: the metrics it produces.
    :param exclusive: its cells time things, so no other cell may run beside them on the same
        machine (the local executor runs one cell at a time anyway; the ray executor reserves the
        node).
    :param example: ``example(workdir) -> dict``: settings ``harness check-plugin`` runs it with
        (default: the declared defaults).
    """

    name: str
    run: Callable[[CellContext], list[Measurement]]
    settings: tuple[Param, ...] = ()
    per_backend: bool = True
    needs_baseline: bool = False
    per_verifier: bool = False
    on_benchmark: bool = False
    metrics: tuple[MetricSpec, ...] = ()
    exclusive: bool = False
    description: str = ""
    example: Callable[[Path], dict] | None = None

    @property
    def params(self) -> tuple[Param, ...]:
        """Suites take settings, not parameters (kept for uniform checks)."""
        return self.settings

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        _check_common(self)
        must_be_callable(self, "run", "run(ctx) -> list[Measurement]")
        if self.on_benchmark and not self.per_verifier:
            raise SpecError(f"{self.name}: a suite on verification benchmarks runs per verifier "
                            "(set per_verifier=True)")


# --------------------------------------------------------------------------- verifiers


@dataclass(frozen=True)
class VerifierSpec:
    """A neural-network verifier: an ONNX network, a VNN-LIB property and a timeout in; ``holds``,
    ``violated`` (with a witness), ``unknown`` or ``timeout`` out.

    Every verifier runs one instance per process of its own (:mod:`harness.verify.process`): a
    crash or a hang costs one verdict, and tools with conflicting dependencies keep their own
    environments. Give exactly one of:

    :param verify: ``verify(onnx_path, vnnlib_path, timeout_s, **params) -> dict`` with ``result``
        one of ``holds``, ``violated`` (with ``witness``), ``unknown`` or ``timeout``. A ``witness``
        is ``{"x": [inputs...], "y": [outputs...]}``, flat lists as VNN-COMP's counterexample files;
        ``info`` (a dict) and ``error`` (a string) are recorded too. The verifier's parameters
        arrive as keyword arguments. The host calls it in a fresh Python process
        (``python -m harness.verify.child``) that loads the plugins again; answer within
        ``timeout_s`` (the process is killed a little after it).
    :param tool: ``tool(params) -> folder``: a tool in VNN-COMP's layout, with ``run_instance.sh``
        (and optionally ``prepare_instance.sh``), called as the competition calls it; it brings its
        own environment (a conda env, a container) inside its scripts.
    :param complete: the verifier decides every instance given time (MILP, branch and bound);
        ``False`` for incomplete verifiers and falsifiers. Shown in listings.
    :param available: ``available(params) -> (ok, reason)``; an unavailable verifier's cells are
        ``skipped`` with the reason.
    :param example: see :class:`MethodSpec`.
    """

    name: str
    verify: Callable[..., dict] | None = None
    tool: Callable[[Mapping[str, Any]], Any] | None = None
    params: tuple[Param, ...] = ()
    complete: bool = False
    available: Callable[[Mapping[str, Any]], tuple[bool, str]] = field(default=lambda params: (True, ""))
    description: str = ""
    example: Callable[[Path], dict] | None = None

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        _check_common(self)
        if self.verify is not None and self.tool is not None:
            raise SpecError(f"{self.name}: give verify (a Python function) or tool (a VNN-COMP tool folder), "
                            "not both")
        if self.tool is not None:
            must_be_callable(self, "tool", "tool(params) -> the tool's folder")
        else:
            must_be_callable(self, "verify", "verify(onnx_path, vnnlib_path, timeout_s, **params) -> dict")


#: Plugin kinds, their hook suffix and spec class.
KINDS: dict[str, type] = {
    "model": ModelSpec,
    "dataset": DatasetSpec,
    "method": MethodSpec,
    "backend": BackendSpec,
    "suite": SuiteSpec,
    "verifier": VerifierSpec,
}


class Skip(Exception):
    """Raise from a suite (or a method) to record the cell as ``skipped`` with this reason."""
