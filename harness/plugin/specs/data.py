"""Datasets: the spec, what ``load`` is handed (:class:`DatasetContext`) and what it returns
(:class:`Splits` of :class:`Split`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.plugin.params import Param
from harness.plugin.specs.common import SpecError, check_common, must_be_callable

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np


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

    ``name``, ``params``, ``description`` and ``example`` are the fields every spec has
    (:mod:`harness.plugin.specs.common`).
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
        check_common(self)
        must_be_callable(self, "load", "load(ctx) -> Splits")
        if self.task not in TASKS:
            raise SpecError(f"{self.name}: task must be one of {TASKS}, got {self.task!r}")


#: The tasks the accuracy suite knows how to score.
TASKS = ("classification", "language-modelling", "embedding")
