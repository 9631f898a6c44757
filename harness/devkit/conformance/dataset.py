"""A dataset's contract: splits with the declared shapes and labels, loaded the same way twice."""

from __future__ import annotations

from typing import Any

from harness.core.identity import fingerprint_splits
from harness.devkit.conformance.clauses import fail, skip
from harness.devkit.conformance.contract import Contract
from harness.plugin.specs import DatasetContext, Skip, Splits

SPLITS = ("train", "calibration", "test")


class DatasetContract(Contract):
    """Checks one registered dataset."""

    kind = "dataset"

    def check(self) -> None:
        """parameters, load, splits, deterministic, metric."""
        c = self.c
        c.run("parameters", self.parameters)
        c.run("load", self.load, needs=["parameters"])
        c.run("splits", self.shapes, needs=["load"])
        c.run("deterministic", self.deterministic, needs=["load"])
        c.run("metric", self.metric)

    def _load(self) -> Any:
        folder = self.workdir / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            out = self.spec.load(DatasetContext(params=self.values, cache_dir=folder))
        except Skip as exc:  # its data is not on this machine (a dataset read from the user's disk)
            skip(str(exc))
        if not isinstance(out, Splits):
            fail(f"load(ctx) returned {type(out).__name__}; return harness.api.Splits(train=..., calibration=..., "
                 "test=..., input_shape=..., num_classes=..., fingerprint=...)")
        return out

    def load(self) -> str:
        self.first = self._load()
        s = self.first
        sizes = "/".join(str(len(getattr(s, n).x)) for n in SPLITS)
        return (f"{sizes} train/calibration/test samples of shape {tuple(s.input_shape)}, "
                f"{s.num_classes} classes, {'labelled' if s.labelled else 'unlabelled (latency only)'}")

    def shapes(self) -> str:
        import numpy as np

        s = self.first
        problems = []
        if not isinstance(s.input_shape, tuple) or not all(isinstance(v, int) and v > 0 for v in s.input_shape):
            problems.append(f"input_shape {s.input_shape!r} must be a tuple of positive ints")
        if self.spec.task == "classification" and not (isinstance(s.num_classes, int) and s.num_classes >= 2):
            problems.append(f"num_classes {s.num_classes!r}: a classification dataset needs an int >= 2")
        for name in SPLITS:
            split = getattr(s, name)
            x, y = split.x, split.y
            if isinstance(x, dict):  # named inputs (token ids, masks) sharing the batch dimension
                lengths = {k: len(v) for k, v in x.items() if isinstance(v, np.ndarray)}
                if len(lengths) != len(x) or len(set(lengths.values())) != 1:
                    problems.append(f"{name}.x: named inputs must be numpy arrays with one batch size, got "
                                    f"{ {k: getattr(v, 'shape', type(v).__name__) for k, v in x.items()} }")
                elif not next(iter(lengths.values())):
                    problems.append(f"{name} is empty")
                continue
            if not isinstance(x, np.ndarray) or x.dtype != np.float32:
                problems.append(f"{name}.x must be a float32 numpy array, got "
                                f"{getattr(x, 'dtype', type(x).__name__)}")
                continue
            if x.shape[1:] != tuple(s.input_shape):
                problems.append(f"{name}.x has samples shaped {x.shape[1:]}, not input_shape {tuple(s.input_shape)}")
            if len(x) == 0:
                problems.append(f"{name} is empty (methods calibrate on calibration, models train on train, "
                                "suites score test)")
            if s.labelled:
                if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
                    problems.append(f"{name}.y must be an int64 array shaped ({len(x)},), got "
                                    f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}")
                elif s.num_classes and len(y) and (y.min() < 0 or y.max() >= s.num_classes):
                    problems.append(f"{name}.y has labels in [{y.min()}, {y.max()}], outside [0, {s.num_classes})")
        if problems:
            fail("; ".join(problems))
        return "inputs of the declared shape" + (", int64 labels in range" if s.labelled else "")

    def deterministic(self) -> str:
        second = self._load()
        if not self.first.fingerprint:
            fail("fingerprint is empty: set Splits.fingerprint to a hash of the data (it is part of every cache "
                 "key built from it)")
        # the data itself, hashed by the harness, whatever the plugin's own fingerprint says
        a, b = fingerprint_splits(self.first), fingerprint_splits(second)
        if a != b:
            fail("two loads with the same parameters gave different data: seed every random choice "
                 "(a fixed seed, not the run's)")
        if self.first.fingerprint != second.fingerprint:
            fail(f"two loads of the same data gave different fingerprints ({self.first.fingerprint[:12]}..., "
                 f"{second.fingerprint[:12]}...): hash the arrays, not the time or a random value")
        return f"same data and fingerprint {self.first.fingerprint[:12]}... twice"

    def metric(self) -> str:
        produced = {m.name for suite in self.registry.specs("suite") for m in suite.metrics}
        if self.spec.metric not in produced:
            fail(f"metric {self.spec.metric!r} is produced by no registered suite (known: "
                 f"{', '.join(sorted(produced))}); use one of them or register a suite that produces it")
        return f"scored by {self.spec.metric!r}"
