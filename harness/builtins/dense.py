"""The ``dense`` method: no compression, the baseline every method is compared against.

A built-in plugin, so the baseline is there whatever plugins are installed: the suites that compare
with the dense model (accuracy, latency, robustness) and a suite file's default method list rely on
it. The smallest complete method plugin, registered as any other is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import BASELINE_METHOD, ApplyContext, MethodSpec, hookimpl


def apply_dense(ctx: ApplyContext) -> Any:
    """The dense baseline: the module unchanged (a torch module, or an ONNX file passed through)."""
    return ctx.module


def dense_claims(params: Mapping[str, Any]) -> dict:
    """The dense baseline promises nothing."""
    return {}


DENSE = MethodSpec(
    name=BASELINE_METHOD, apply=apply_dense, claims=dense_claims, consumes=("torch", "onnx"),
    description="no compression: the baseline every method is compared against",
)


@hookimpl
def harness_register_methods(register):
    """Register ``dense``."""
    register(DENSE)
