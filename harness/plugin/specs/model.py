"""Models: the spec and what ``build`` and ``train`` are handed (:class:`ModelContext`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.plugin.params import Param
from harness.plugin.specs.common import SpecError, check_common, check_formats, must_be_callable
from harness.plugin.specs.data import Splits


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
    :param pretrained: ``pretrained(ctx) -> dict`` for a model whose ``build`` loads pretrained weights
        (a local Hugging Face folder): where they come from, with a ``sha256`` of their content, which
        keys the artifact cache instead of the seed.
    :param provides: the format of the dense model ``build`` returns: ``("torch",)`` for a torch
        module, ``("onnx",)`` for the path of an ONNX file (a model that never was a torch module).
        Methods that consume neither are skipped by the planner with the reason.

    Every model also takes the host-handled parameter ``weights``: the path of a ``state_dict``
    file saved with ``torch.save``, loaded instead of training.

    ``name``, ``params``, ``description`` and ``example`` are the fields every spec has
    (:mod:`harness.plugin.specs.common`).
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
        check_common(self)
        check_formats(self, "provides", one=True)
        if any(p.name == "weights" for p in self.params):
            raise SpecError(f"{self.name}: 'weights' is a host parameter of every model; do not declare it "
                            "(the host loads a state_dict file given as weights = \"file.pt\" for you)")
        must_be_callable(self, "build", "build(ctx) -> torch.nn.Module")
        if self.train is not None:
            must_be_callable(self, "train", "train(module, ctx) -> dict | None")
