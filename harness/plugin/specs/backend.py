"""Backends: the spec and the :class:`Session` it opens on an artifact."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.plugin.params import Param
from harness.plugin.specs.common import check_common, check_formats, must_be_callable
from harness.plugin.specs.method import Artifact

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

    from harness.plugin.timingplan import TimingPlan, TimingResult


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
    :param node_resources: ``node_resources(cache_dir) -> dict``: the custom Ray resources this machine
        offers the backend's cells (``arm``: ``{"arm_qemu": 1}`` once its emulated root is prepared under
        ``cache_dir``); added to the resources of the local Ray instance the harness starts. ``None``:
        nothing beyond what Ray and the harness find themselves.

    ``name``, ``params``, ``description`` and ``example`` are the fields every spec has
    (:mod:`harness.plugin.specs.common`).
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
        check_common(self)
        check_formats(self, "accepts", ": ('onnx',) for a runtime of ONNX files, ('torch',) for torch modules, "
                      "both in order of preference")
        must_be_callable(self, "session", "session(artifact, params) -> Session")
        must_be_callable(self, "available", "available() -> (bool, str)")
        must_be_callable(self, "fingerprint", "fingerprint(params) -> dict")
