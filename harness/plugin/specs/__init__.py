"""What plugins register (the ``*Spec`` classes) and what the host hands them, one module per kind.

The spec classes are plain frozen dataclasses: a plugin builds one and passes it to the ``register``
callable of a ``harness_register_*`` hook (:mod:`harness.plugin.hookspecs`). Callables in a spec run
later, inside an isolated worker process, so that is where heavy imports belong. The fields every
spec has (``name``, ``params``, ``description``, ``example``) and their checks are in
:mod:`~harness.plugin.specs.common`; each kind's module documents only its own.

Everything is re-exported here: ``from harness.plugin.specs import MethodSpec`` (plugins import the
same names from :mod:`harness.api`).
"""

from __future__ import annotations

from harness.plugin.specs.backend import BackendSpec, Session
from harness.plugin.specs.common import (
    FORMATS,
    NAME_RE,
    Skip,
    SpecError,
    check_common,
    check_formats,
    must_be_callable,
    suggest_name,
)
from harness.plugin.specs.data import TASKS, DatasetContext, DatasetSpec, Split, Splits
from harness.plugin.specs.method import ApplyContext, Artifact, MethodSpec, WeightEncoding
from harness.plugin.specs.model import ModelContext, ModelSpec
from harness.plugin.specs.suite import CellContext, Measurement, MetricSpec, SuiteSpec
from harness.plugin.specs.verifier import VerifierSpec

#: Plugin kinds, their hook suffix and spec class.
KINDS: dict[str, type] = {
    "model": ModelSpec,
    "dataset": DatasetSpec,
    "method": MethodSpec,
    "backend": BackendSpec,
    "suite": SuiteSpec,
    "verifier": VerifierSpec,
}

__all__ = [
    "FORMATS", "KINDS", "NAME_RE", "TASKS",
    "ApplyContext", "Artifact", "BackendSpec", "CellContext", "DatasetContext", "DatasetSpec", "Measurement",
    "MethodSpec", "MetricSpec", "ModelContext", "ModelSpec", "Session", "Skip", "SpecError", "Split", "Splits",
    "SuiteSpec", "VerifierSpec", "WeightEncoding",
    "check_common", "check_formats", "must_be_callable", "suggest_name",
]
