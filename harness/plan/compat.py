"""After expansion: duplicates dropped, dense baselines added and ordered first, and the cells that
cannot run (a model the method cannot take, an unavailable backend or verifier, an artifact format
the backend does not run) turned into explicit skips with the reason.
"""

from __future__ import annotations

from harness.core.errors import describe_exception
from harness.core.identity import Component
from harness.plan import pipeline
from harness.plan.cells import BASELINE_METHOD, Cell
from harness.plugin.manager import Registry


def dedupe(cells: list[Cell]) -> list[Cell]:
    """The cells in order, each key once (two tables may list the same cell)."""
    seen: set[str] = set()
    out = []
    for c in cells:
        if c.key not in seen:
            seen.add(c.key)
            out.append(c)
    return out


def add_baselines(cells: list[Cell], registry: Registry) -> list[Cell]:
    """Add the dense cells that suites with ``needs_baseline`` compare against; order them first."""
    have = {c.key for c in cells}
    added = []
    if registry.has("method", BASELINE_METHOD):
        for c in cells:
            if c.method.name == BASELINE_METHOD:
                continue
            if not registry.suite(c.suite).needs_baseline:
                continue
            base = Cell(c.model, c.dataset, Component(BASELINE_METHOD, {}), c.seed, c.backend, c.suite,
                        implicit=True, verifier=c.verifier, benchmark=c.benchmark)
            if base.key not in have:
                have.add(base.key)
                added.append(base)
    ordered = added + cells
    # Dense first (baselines exist before the cells that compare with them), then by artifact,
    # so each artifact is built once and then reused.
    group_order: dict[str, int] = {}
    for c in ordered:
        group_order.setdefault(c.artifact_group, len(group_order))
    return sorted(ordered, key=lambda c: (c.method.name != BASELINE_METHOD, group_order[c.artifact_group]))


def mark_incompatible(cells: list[Cell], registry: Registry) -> None:
    """Turn combinations that cannot run into explicit skips, with the reason."""
    availability: dict[str, tuple[bool, str]] = {}
    for c in cells:
        if c.verifier is not None:
            c.skip_reason = _verifier_skip(c, registry)
            continue
        method = pipeline.resolve(registry, c.method.name, c.method.params)
        model = registry.model(c.model.name)
        if not set(model.provides) & set(method.consumes):
            c.skip_reason = (f"method {c.method.name} works on {'/'.join(method.consumes)} models; "
                             f"model {c.model.name} is {'/'.join(model.provides)}")
            continue
        if c.backend is None:
            continue
        backend = registry.backend(c.backend.name)
        method_produces = method.produces
        if c.backend.name not in availability:
            try:
                availability[c.backend.name] = tuple(backend.available())  # type: ignore[assignment]
            except Exception as exc:  # a broken probe is a reason, not a crash
                availability[c.backend.name] = (False, f"available() raised {describe_exception(exc)}")
        ok, reason = availability[c.backend.name]
        if not ok:
            c.skip_reason = f"backend {c.backend.name} is not available: {reason}"
            continue
        if model.provides == ("onnx",):
            # A model that is an ONNX file yields ONNX artifacts whatever the method.
            method_produces = ("onnx",)
        if not set(backend.accepts) & set(method_produces):
            c.skip_reason = (f"backend {c.backend.name} runs {'/'.join(backend.accepts)} artifacts; "
                             f"method {c.method.name} produces {'/'.join(method_produces)}")


def _verifier_skip(cell: Cell, registry: Registry) -> str | None:
    """Why a verifier cell cannot run (unavailable verifier, a method without ONNX), or ``None``."""
    spec = registry.verifier(cell.verifier.name)
    try:
        ok, reason = spec.available(cell.verifier.params)
    except Exception as exc:  # a broken probe is a reason, not a crash
        ok, reason = False, f"available() raised {describe_exception(exc)}"
    if not ok:
        return f"verifier {cell.verifier.name} is not available: {reason}"
    if not cell.benchmark:
        method = pipeline.resolve(registry, cell.method.name, cell.method.params)
        model = registry.model(cell.model.name)
        if not set(model.provides) & set(method.consumes):
            return (f"method {cell.method.name} works on {'/'.join(method.consumes)} models; "
                    f"model {cell.model.name} is {'/'.join(model.provides)}")
        if "onnx" not in method.produces and model.provides != ("onnx",):
            return (f"verifiers read ONNX networks; method {cell.method.name} produces "
                    f"{'/'.join(method.produces)}")
    return None
