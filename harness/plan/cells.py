"""The cell model: what one unit of work is, how it is identified across runs, and the plan of cells.

A cell's :attr:`Cell.key` is the leaderboard's notion of "the same cell" and is stored: its input
(:attr:`Cell.identity`) must stay byte-identical from release to release.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.core.identity import Component, digest

#: The method every compressed cell is compared against: the reference model, unchanged.
BASELINE_METHOD = "dense"
#: The dataset column of verification-benchmark cells: their instances are VNN-LIB properties.
BENCHMARK_DATASET = "vnnlib"


@dataclass
class Cell:
    """One unit of work: (model, dataset, method + params, seed) x backend (or verifier) x suite.

    A cell of a suite that runs per verifier has ``verifier`` instead of ``backend``; the store and
    the leaderboard keep it in the ``backend`` column (a verifier is what executes the artifact
    there). A verification-benchmark cell (``benchmark``) has the benchmark in ``model`` and
    ``vnnlib`` as its dataset.
    """

    model: Component
    dataset: Component
    method: Component
    seed: int
    backend: Component | None
    suite: str
    skip_reason: str | None = None
    implicit: bool = False  # added by the planner as a baseline
    verifier: Component | None = None
    benchmark: bool = False

    @property
    def engine(self) -> Component | None:
        """The backend or verifier that runs the cell's artifact (``None`` for per-artifact suites).

        Not to be confused with the executors (local, ray) that run cells: an engine is the
        leaderboard's ``backend`` column.
        """
        return self.backend if self.backend is not None else self.verifier

    @property
    def identity(self) -> dict:
        """What identifies the cell across runs (the leaderboard's notion of "the same cell")."""
        engine = self.engine
        # The keys are stored (cell keys are digests of this dict): "backend" names the engine.
        return {
            "model": self.model.name, "model_params": self.model.params,
            "dataset": self.dataset.name, "dataset_params": self.dataset.params,
            "method": self.method.name, "method_params": self.method.params,
            "seed": self.seed,
            "backend": engine.name if engine else None,
            "backend_params": engine.params if engine else {},
            "suite": self.suite,
        }

    @property
    def key(self) -> str:
        """Hash of :attr:`identity`."""
        return digest(self.identity)

    @property
    def artifact_identity(self) -> dict:
        """What the artifact depends on at plan time (the worker adds data and weights hashes)."""
        return {"model": self.model.as_dict(), "dataset": self.dataset.as_dict(),
                "method": self.method.as_dict(), "seed": self.seed}

    @property
    def artifact_group(self) -> str:
        """Cells with the same group share one artifact."""
        return digest(self.artifact_identity)

    def baseline_identity(self) -> dict:
        """The identity of the dense cell this one compares against."""
        ident = dict(self.identity)
        ident["method"], ident["method_params"] = BASELINE_METHOD, {}
        return ident


@dataclass
class Plan:
    """A validated suite file expanded into cells."""

    name: str
    path: str
    text: str
    sha256: str
    seeds: list[int]
    cells: list[Cell]
    settings: dict[str, dict]
    execution: dict
    description: str = ""
    version: str = ""
    problems: list[str] = field(default_factory=list)
