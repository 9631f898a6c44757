"""The base of every kind's contract: the thing under test, its parameters, the toy cell it runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.devkit import toy
from harness.devkit.conformance.clauses import Clauses, fail, skip
from harness.devkit.conformance.schema import check_schema
from harness.plugin.manager import Host
from harness.plugin.params import ParamError


@dataclass
class Options:
    """How the contracts run.

    :param model: the model methods, backends and suites are checked with (default ``toy-cnn``).
    :param dataset: the dataset models and the rest are checked with (default ``toy-blobs``).
    :param params: parameter values per thing name, ``{"imagefolder": {"root": "..."}}``; they
        win over the spec's ``example`` and the declared defaults.
    :param cache_dir: the artifact and weights cache of the check.
    :param seed: the seed of every cell the check builds.
    """

    model: str = toy.MODEL
    dataset: str = toy.DATASET
    params: dict[str, dict] = field(default_factory=dict)
    cache_dir: str = ""
    seed: int = 0


class Contract:
    """One registered thing's contract. Subclasses set ``kind`` and implement :meth:`check`."""

    kind = ""
    #: The spec attribute holding its parameter schema.
    schema_attr = "params"

    def __init__(self, host: Host, name: str, options: Options, clauses: Clauses, workdir: Path):
        self.host = host
        self.registry = host.registry
        self.name = name
        self.spec = host.registry.spec(self.kind, name)
        self.options = options
        self.c = clauses
        self.workdir = Path(workdir)
        self.values: dict[str, Any] | None = None
        self._splits = None

    def check(self) -> None:
        """Run every clause of the contract."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared clauses

    def parameters(self) -> str:
        """The schema is sound, refuses bad values by name, and yields values to run with."""
        given = dict(self.options.params.get(self.name, {}))
        if self.spec.example is not None:
            folder = self.workdir / "example"
            folder.mkdir(parents=True, exist_ok=True)
            example = self.spec.example(folder)
            if not isinstance(example, dict):
                fail(f"example(workdir) returned {type(example).__name__}; return a dict of parameter values")
            given = {**example, **given}
        problems, values, line = check_schema(getattr(self.spec, self.schema_attr), given)
        if problems:
            fail("; ".join(problems))
        if values is None:
            skip(f"{line}: give a value with --param {self.name}.KEY=VALUE, or an example(workdir) in the spec")
        self.values = values
        return line

    # ------------------------------------------------------------------ the toy cell

    def component(self, kind: str, name: str) -> dict:
        """``{"name", "params"}`` of a model or dataset the check runs with (validated values)."""
        from harness.devkit.conformance.schema import example_values

        spec = self.registry.spec(kind, name)
        return {"name": name, "params": example_values(spec.params, self.options.params.get(name, {}))}

    def splits(self) -> Any:
        """The check's dataset, loaded once per process."""
        if self._splits is None:
            from harness.build.artifacts import load_dataset
            from harness.core.identity import Component

            self._splits = load_dataset(self.registry, Component(**self.component("dataset", self.options.dataset)),
                                        Path(self.options.cache_dir))
        return self._splits

    def build(self, method: str, params: dict) -> Any:
        """The artifact of ``method`` on the check's model and dataset, with the host's own builder."""
        from harness.build.artifacts import build_artifact

        cell = {"model": self.component("model", self.options.model),
                "dataset": self.component("dataset", self.options.dataset),
                "method": {"name": method, "params": params}, "seed": self.options.seed}
        return build_artifact(self.registry, cell, self.splits(), Path(self.options.cache_dir))

    def cell_label(self) -> str:
        """``toy-cnn on toy-blobs`` for messages."""
        return f"{self.options.model} on {self.options.dataset}"


def parse_params(items: list[str] | tuple[str, ...]) -> dict[str, dict]:
    """``["imagefolder.root=/data", "latency.profile=smoke"]`` -> ``{"imagefolder": {"root": "/data"}, ...}``.

    Values are read as TOML values (``0.5``, ``true``, ``[1, 8, 8]``, ``"text"``); anything that
    is not TOML is taken as a plain string. Raises :class:`ParamError` (a ``ValueError``) on an item
    without ``NAME.KEY=``.
    """
    import tomllib

    out: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        name, dot, param = key.strip().partition(".")
        if not (sep and dot and name and param):
            raise ParamError(f"--param {item!r}", "expected NAME.KEY=VALUE, e.g. imagefolder.root=/data/images")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out.setdefault(name, {})[param.strip()] = value
    return out
