"""The public plugin API: everything a plugin author imports comes from here.

A complete method plugin::

    from harness.api import MethodSpec, Param, hookimpl

    def apply(ctx):
        ...  # return the compressed torch module (or the path of an ONNX file)

    @hookimpl
    def harness_register_methods(register):
        register(MethodSpec(name="my-prune", apply=apply,
                            params=(Param("sparsity", float, min=0.0, max=1.0, max_exclusive=True),),
                            claims=lambda p: {"sparsity": p["sparsity"]}))
"""

from harness import hookimpl
from harness.core.paths import cache_dir
from harness.measure.reference import ReferenceSession
from harness.measure.timing import InProcessSession, TimingPlan, TimingResult, time_calls
from harness.plugin.params import Param, ParamError
from harness.plugin.specs import (
    ApplyContext,
    Artifact,
    BackendSpec,
    CellContext,
    DatasetContext,
    DatasetSpec,
    Measurement,
    MethodSpec,
    MetricSpec,
    ModelContext,
    ModelSpec,
    Session,
    Skip,
    Split,
    Splits,
    SuiteSpec,
    VerifierSpec,
    WeightEncoding,
)

__all__ = [
    "hookimpl",
    "cache_dir",
    "Param",
    "ParamError",
    "ApplyContext",
    "Artifact",
    "BackendSpec",
    "CellContext",
    "DatasetContext",
    "DatasetSpec",
    "Measurement",
    "MethodSpec",
    "MetricSpec",
    "ModelContext",
    "ModelSpec",
    "Session",
    "Skip",
    "Split",
    "Splits",
    "SuiteSpec",
    "VerifierSpec",
    "WeightEncoding",
    "InProcessSession",
    "ReferenceSession",
    "TimingPlan",
    "TimingResult",
    "time_calls",
]
